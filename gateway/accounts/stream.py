"""``AccountStream``: one account's user data into its Kafka topic, until cancelled.

The worker runs one per configured account as its own shard (one worker owns an account, so two
gateways never fight over its listen key) and supervises ``run()``. ``run()`` does not return:
each connection is a session (:mod:`.spot` or :mod:`.futures`); when one ends, the next starts
after a capped, jittered backoff (:func:`gateway.binance.policy.backoff`, reset once a session is
established), re-subscribes, and publishes a reconciliation snapshot. Refused credentials do not
crash-loop: they are logged as an error, shown in ``health()`` and the metrics (state
``rejected``), and tried again every ``auth_retry_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from gateway.accounts.connection import ReconnectNow
from gateway.accounts.futures import Clock, FuturesSession
from gateway.accounts.output import AccountOutput
from gateway.accounts.rest import AccountAuthError, SignedRestClient
from gateway.accounts.settings import AccountSettings
from gateway.accounts.spot import SpotSession
from gateway.binance.account_state import AccountState
from gateway.binance.events.account_snapshot import SnapshotReason
from gateway.binance.listen_key import ListenKeyCycle, ListenKeyTimings
from gateway.binance.markets import ENDPOINTS, Market
from gateway.binance.policy import RestWeightBudget, backoff, is_retriable
from gateway.errors import MessageParseError, UpstreamError
from gateway.metrics import Metrics
from gateway.records.builder import RecordBuilder
from gateway.records.topics import RecordSink, TopicNamer
from gateway.settings import BinanceSettings

logger = logging.getLogger(__name__)

AUTH_RETRY_S = 300.0
"""After Binance refused the credentials: a key is fixed by a person, not by retrying fast."""


class _Session(Protocol):
    async def run(
        self, rest: SignedRestClient, reason: str, established: Callable[[], None]
    ) -> None: ...


class AccountStream:
    """One account's user-data stream, reconnected forever, with health and metrics."""

    def __init__(
        self,
        account: AccountSettings,
        binance: BinanceSettings,
        builder: RecordBuilder,
        sink: RecordSink,
        metrics: Metrics,
        namer: TopicNamer,
        *,
        rest_budget: RestWeightBudget | None = None,
        clock: Clock | None = None,
        auth_retry_s: float = AUTH_RETRY_S,
        backoff_delays: Callable[[], Iterator[float]] = backoff,
    ) -> None:
        self.account = account
        self.name = account.shard_id
        self._binance = binance
        self._output = AccountOutput(account, builder, sink, metrics, namer)
        self._rest_budget = rest_budget
        self._auth_retry_s = auth_retry_s
        self._backoff = backoff_delays
        self._clock = clock or time.monotonic
        self.listen_key: ListenKeyCycle | None = None
        self._session: _Session
        if account.market is Market.SPOT:
            self._session = SpotSession(account, binance, self._output)
        else:
            self.listen_key = ListenKeyCycle(
                ListenKeyTimings(
                    validity_s=account.listen_key_validity_s,
                    keepalive_interval_s=account.listen_key_keepalive_s,
                    retry_s=min(30.0, account.listen_key_keepalive_s / 4),
                )
            )
            self._session = FuturesSession(
                account,
                account.stream_url or _market_url(binance, account.market, "stream"),
                binance,
                self._output,
                metrics,
                self.listen_key,
                self._clock,
            )

    @property
    def topic(self) -> str:
        return self._output.topic

    async def run(self) -> None:
        """Stream until cancelled; every (re)connect re-subscribes and reconciles."""
        account = self.account
        rest_url = account.rest_url or _market_url(self._binance, account.market, "rest")
        reason = SnapshotReason.START
        delays = self._backoff()

        def established() -> None:
            nonlocal delays
            delays = self._backoff()

        async with SignedRestClient(
            rest_url,
            account.market,
            account.api_key,
            account.signer(),
            recv_window_ms=account.recv_window_ms,
            budget=self._rest_budget,
        ) as rest:
            try:
                while True:
                    reason, wait_s = await self._session_once(rest, reason, established, delays)
                    if wait_s > 0:
                        await asyncio.sleep(wait_s)
            finally:
                self._output.mark_down(AccountState.DOWN, None)

    async def _session_once(
        self,
        rest: SignedRestClient,
        reason: str,
        established: Callable[[], None],
        delays: Iterator[float],
    ) -> tuple[str, float]:
        """Run one session; the next snapshot reason and how long to wait before the next."""
        try:
            await self._session.run(rest, reason, established)
            raise UpstreamError("the account connection ended")
        except ReconnectNow as planned:
            logger.info("%s: reconnecting: %s", self.name, planned)
            self._output.mark_down(AccountState.DOWN, str(planned))
            self._output.reconnects += 1
            return planned.reason, next(delays)
        except AccountAuthError as exc:
            logger.error(
                "%s: Binance refused the account's credentials (%s); check the API key, its "
                "permissions and IP whitelist. Trying again in %.0fs",
                self.name,
                exc,
                self._auth_retry_s,
            )
            self._output.mark_down(AccountState.REJECTED, str(exc))
            return SnapshotReason.RECONNECT, self._auth_retry_s
        except (OSError, TimeoutError, UpstreamError, MessageParseError) as exc:
            if not is_retriable(exc) and not isinstance(exc, MessageParseError):
                raise
            delay = next(delays)
            logger.warning("%s: disconnected (%s); reconnecting in %.2fs", self.name, exc, delay)
            self._output.mark_down(AccountState.DOWN, str(exc))
            self._output.reconnects += 1
            return SnapshotReason.RECONNECT, delay

    @property
    def state(self) -> AccountState:
        return self._output.state.state

    def health(self) -> dict[str, object]:
        """Up or down, seconds since the last event, listen-key age: no secrets."""
        health = self._output.health()
        health["name"] = self.name
        cycle = self.listen_key
        if cycle is not None:
            now = self._clock()
            expires = cycle.expires_at_s()
            health["listen_key_age_s"] = cycle.age_s(now)
            health["listen_key_expires_in_s"] = None if expires is None else expires - now
            health["listen_key_state"] = cycle.state.value
        return health


def _market_url(binance: BinanceSettings, market: Market, kind: str) -> str:
    """The market's configured URL (e.g. a simulator's), else Binance's."""
    settings = binance.markets.get(market)
    configured = None
    if settings is not None:
        configured = settings.stream_url if kind == "stream" else settings.rest_url
    endpoints = ENDPOINTS[market]
    return configured or (endpoints.stream_url if kind == "stream" else endpoints.rest_url)
