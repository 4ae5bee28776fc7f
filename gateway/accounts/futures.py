"""One USDⓈ-M or COIN-M account's connection: a listen key, kept alive, and its stream.

Each connection starts with ``POST listenKey``: Binance answers with the active key (extended) or
a new one, so the stream always opens on a key Binance just confirmed. While the connection
lives, a keep-alive loop follows :class:`~gateway.binance.listen_key.ListenKeyCycle` (``PUT``
every 30 minutes by default, retries well before the 60-minute expiry). A ``listenKeyExpired``
event or a ``-1125`` answer ends the connection with :class:`ReconnectNow`; the next one creates
a key, reconnects on the current path (USDⓈ-M ``/private``, COIN-M ``/ws``) and reconciles.

The listen key is a bearer token for the account's events: logs and errors show the URL with
``<listenKey>`` in its place.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection

from gateway.accounts.connection import ReconnectNow, first_of, open_socket
from gateway.accounts.output import AccountOutput
from gateway.accounts.rest import AccountAuthError, AccountRequestError, SignedRestClient
from gateway.accounts.settings import AccountSettings
from gateway.binance.events.account_snapshot import SnapshotReason
from gateway.binance.events.spot_user import ListenKeyExpired
from gateway.binance.listen_key import (
    KEY_MISSING_CODE,
    LISTEN_KEY_PATHS,
    LISTEN_KEY_WEIGHT,
    KeyAction,
    KeyState,
    ListenKeyCycle,
    private_stream_url,
)
from gateway.binance.messages import FrameParser
from gateway.errors import MessageParseError, RestRequestError
from gateway.metrics import Metrics
from gateway.settings import BinanceSettings

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


class FuturesSession:
    """Keeps one futures account's listen key alive and publishes its events."""

    def __init__(
        self,
        account: AccountSettings,
        stream_base_url: str,
        binance: BinanceSettings,
        output: AccountOutput,
        metrics: Metrics,
        cycle: ListenKeyCycle,
        clock: Clock = time.monotonic,
    ) -> None:
        self._account = account
        self._base_url = stream_base_url
        self._binance = binance
        self._output = output
        self._cycle = cycle
        self._clock = clock
        self._path = LISTEN_KEY_PATHS[account.market]
        self._parser = FrameParser(account.market)
        self._renewals = metrics.listen_key_renewals
        self._labels = (account.alias, account.market.value)

    async def run(
        self, rest: SignedRestClient, reason: str, established: Callable[[], None]
    ) -> None:
        """One connection on a freshly confirmed key, until it fails or must be replaced."""
        self._cycle.refresh(self._clock())
        key = await self._create(rest)
        url = private_stream_url(self._account.market, self._base_url, key)
        shown = url.replace(key, "<listenKey>")
        async with open_socket(url, shown, self._binance) as ws:
            logger.info("%s: user-data stream connected (%s)", self._account.alias, shown)
            self._output.mark_up()
            established()
            await self._output.reconcile(rest, reason)
            deadline = asyncio.timeout(self._binance.rotate_after_s)
            try:
                async with deadline:
                    await first_of(self._read(ws), self._keep_alive(rest))
            except TimeoutError:
                if not deadline.expired():
                    raise
                raise ReconnectNow(
                    SnapshotReason.ROTATION, "replaced before the 24-hour cut"
                ) from None

    async def _create(self, rest: SignedRestClient) -> str:
        if self._cycle.action_due(self._clock()) is not KeyAction.CREATE:
            raise AssertionError("refresh() must make a create due")
        try:
            answer = await rest.request("POST", self._path, weight=LISTEN_KEY_WEIGHT)
            key = answer["listenKey"]
            if not isinstance(key, str) or not key:
                raise RestRequestError(f"POST {self._path} answered no listenKey")
        except (RestRequestError, KeyError, TypeError) as exc:
            self._cycle.receive_failure(self._clock())
            if isinstance(exc, RestRequestError):
                raise
            raise RestRequestError(f"POST {self._path} answered no listenKey") from exc
        new = self._cycle.receive_created(key, self._clock())
        self._renewals.labels(*self._labels, "create" if new else "extend").inc()
        if new:
            logger.info(
                "%s: new listen key (generation %d)", self._account.alias, self._cycle.generation
            )
        return key

    async def _keep_alive(self, rest: SignedRestClient) -> None:
        cycle = self._cycle
        while True:
            await asyncio.sleep(cycle.next_wakeup_s(self._clock()))
            action = cycle.action_due(self._clock())
            if action is KeyAction.CREATE:  # it lapsed: only a new key and connection help
                raise ReconnectNow(SnapshotReason.LISTEN_KEY, "listen key lapsed")
            if action is not KeyAction.KEEPALIVE:
                continue
            try:
                await rest.request("PUT", self._path, weight=LISTEN_KEY_WEIGHT)
            except AccountAuthError:
                cycle.receive_failure(self._clock())
                raise
            except AccountRequestError as exc:
                if exc.code != KEY_MISSING_CODE:
                    cycle.receive_failure(self._clock())
                    logger.warning("%s: keep-alive failed: %s", self._account.alias, exc)
                    continue
                cycle.receive_key_missing(self._clock())
                raise ReconnectNow(SnapshotReason.LISTEN_KEY, "listen key unknown (-1125)") from exc
            except RestRequestError as exc:
                cycle.receive_failure(self._clock())
                logger.warning("%s: keep-alive failed: %s", self._account.alias, exc)
                continue
            cycle.receive_kept_alive(self._clock())
            self._renewals.labels(*self._labels, "keepalive").inc()
            logger.debug("%s: listen key kept alive", self._account.alias)

    async def _read(self, ws: ClientConnection) -> None:
        async for message in ws:
            raw = message.encode() if isinstance(message, str) else message
            received_at_us = time.time_ns() // 1_000
            try:
                events = self._parser.parse(raw, received_at_us)
            except MessageParseError as error:
                await self._output.dead_letter(error, raw, received_at_us)
                continue
            async for event in self._output.published(events, raw):
                if isinstance(event, ListenKeyExpired):
                    self._cycle.receive_expired_event(event.listen_key, self._clock())
                    if self._cycle.state is not KeyState.ACTIVE:
                        raise ReconnectNow(SnapshotReason.LISTEN_KEY, "listenKeyExpired")
