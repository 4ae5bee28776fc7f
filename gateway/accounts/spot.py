"""One spot account's connection: a signed WebSocket API user-data subscription.

Spot listen keys are gone (2026-02-20); the session connects to the WebSocket API, sends
``userDataStream.subscribe.signature`` (:mod:`gateway.binance.user_stream`), and publishes the
events that follow. On ``eventStreamTerminated`` it subscribes again on the same connection and
reconciles; a refused subscription ends the connection with the error (an auth failure slows the
retries down, see :mod:`gateway.accounts.stream`). Before Binance's 24-hour cut, or on
``serverShutdown``, it ends with :class:`ReconnectNow` so the next connection re-subscribes.

One account per connection, though the protocol core could carry up to 1,000: each account runs
as its own shard and may live on a different worker, so sharing a socket would tie shards
together; per-IP connection limits (300 attempts per 5 minutes) leave room for many accounts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection

from gateway.accounts.connection import ReconnectNow, open_socket
from gateway.accounts.output import AccountOutput
from gateway.accounts.rest import AccountAuthError, AccountRequestError, SignedRestClient
from gateway.accounts.settings import AccountSettings
from gateway.binance.account_state import AccountState
from gateway.binance.events.account_snapshot import SnapshotReason
from gateway.binance.events.spot_user import EventStreamTerminated
from gateway.binance.markets import Market
from gateway.binance.messages import FrameParser
from gateway.binance.user_stream import (
    SubscriptionChange,
    SubscriptionState,
    UserDataSession,
    parse_reply,
)
from gateway.errors import MessageParseError
from gateway.settings import BinanceSettings

logger = logging.getLogger(__name__)

SPOT_WS_API_URL = "wss://ws-api.binance.com:443/ws-api/v3"


class SpotSession:
    """Subscribes one spot account over the WebSocket API and publishes its events."""

    def __init__(
        self, account: AccountSettings, binance: BinanceSettings, output: AccountOutput
    ) -> None:
        self._account = account
        self._binance = binance
        self._output = output
        self._url = account.ws_api_url or SPOT_WS_API_URL
        self._parser = FrameParser(Market.SPOT)

    async def run(
        self, rest: SignedRestClient, reason: str, established: Callable[[], None]
    ) -> None:
        """One connection, until it fails or needs replacing (ReconnectNow)."""
        session = UserDataSession(recv_window_ms=self._account.recv_window_ms)
        session.add_account(
            self._account.alias,
            self._account.api_key.get_secret_value(),
            self._account.signer(),
        )
        async with open_socket(self._url, self._url, self._binance) as ws:
            session.connection_opened()
            await _send_requests(ws, session)
            deadline = asyncio.timeout(self._binance.rotate_after_s)
            try:
                async with deadline:
                    await self._read(ws, session, rest, reason, established)
            except TimeoutError:
                if not deadline.expired():
                    raise
                raise ReconnectNow(
                    SnapshotReason.ROTATION, "replaced before the 24-hour cut"
                ) from None

    async def _read(
        self,
        ws: ClientConnection,
        session: UserDataSession,
        rest: SignedRestClient,
        reason: str,
        established: Callable[[], None],
    ) -> None:
        async for message in ws:
            raw = message.encode() if isinstance(message, str) else message
            received_at_us = time.time_ns() // 1_000
            try:
                reply = parse_reply(raw)
                if reply is not None:
                    change = session.receive_reply(reply)
                    if change is not None:
                        await self._subscribed(change, rest, reason, established)
                    continue
                events = self._parser.parse(raw, received_at_us)
            except MessageParseError as error:
                await self._output.dead_letter(error, raw, received_at_us)
                continue
            async for event in self._output.published(events, raw):
                if isinstance(event, EventStreamTerminated):
                    ended = session.receive_terminated(event.subscription_id)
                    if ended:
                        logger.warning(
                            "%s: eventStreamTerminated; subscribing again", self._account.alias
                        )
                        self._output.mark_down(AccountState.DOWN, "eventStreamTerminated")
                        reason = SnapshotReason.RESUBSCRIBE
                        await _send_requests(ws, session)

    async def _subscribed(
        self,
        change: SubscriptionChange,
        rest: SignedRestClient,
        reason: str,
        established: Callable[[], None],
    ) -> None:
        if change.state is SubscriptionState.SUBSCRIBED:
            logger.info(
                "%s: spot user data subscribed (subscription %s)",
                self._account.alias,
                change.subscription_id,
            )
            self._output.mark_up()
            established()
            await self._output.reconcile(rest, reason)
            return
        refusal = f"subscription refused: {change.error_code}: {change.error_msg}"
        error_class = AccountAuthError if change.auth_failure else AccountRequestError
        raise error_class(refusal, status=None, code=change.error_code)


async def _send_requests(ws: ClientConnection, session: UserDataSession) -> None:
    for text in session.requests_to_send(int(time.time() * 1_000)):
        await ws.send(text)
