"""The futures listen-key life cycle as a pure state machine; the caller owns clock and I/O.

USDⓈ-M and COIN-M user data still flow through listen keys (docs/binance.md §6.2): ``POST listenKey``
creates one (or returns and extends the active one), ``PUT`` extends it by 60 minutes, and a key
not extended for 60 minutes expires: Binance pushes ``listenKeyExpired`` and closes the stream.
``PUT`` on a key Binance no longer knows answers ``-1125``, after which only a new ``POST`` helps.

The machine decides *what* to do next and *when*; the shell (``gateway.accounts``) performs it
and reports back::

    NO_KEY ──create──► CREATING ──created(key)──► ACTIVE ──due──► RENEWING ──kept_alive──► ACTIVE
      ▲                   │ failed (retry soon)                       │ failed (retry soon, the
      │                   ▼                                           │  key is still valid)
      └──── -1125 / listenKeyExpired / renewals failed past validity ─┘

Keep-alives go out every ``keepalive_interval_s`` (30 minutes by default, half the validity, as
Binance's older spot guidance recommends), so one lost keep-alive still leaves 30 minutes to retry
before the key lapses. A failed request is retried after ``retry_s`` (capped so that retries of a
live key always land before its expiry).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from gateway.binance.markets import Market
from gateway.errors import InvalidStateError

logger = logging.getLogger(__name__)

VALIDITY_S = 3_600.0
"""A key lives 60 minutes after its creation or last keep-alive (docs/binance.md §6.2)."""
KEEPALIVE_INTERVAL_S = 1_800.0
RETRY_S = 30.0
KEY_MISSING_CODE = -1125
"""``This listenKey does not exist.``: the key expired or was closed; POST a new one."""


LISTEN_KEY_PATHS = {Market.USDM: "/fapi/v1/listenKey", Market.COINM: "/dapi/v1/listenKey"}
LISTEN_KEY_WEIGHT = 1


def private_stream_url(market: Market, base_url: str, key: str) -> str:
    """Where a listen key's events stream from (docs/binance.md §1.2, §1.3, §6.2).

    USDⓈ-M: the routed ``/private`` path (unrouted URLs stopped pushing on 2026-04-23); without
    ``events=`` every user-data event type comes. COIN-M keeps ``/ws/<listenKey>``.
    """
    base = base_url.rstrip("/")
    if market is Market.USDM:
        return f"{base}/private/ws?listenKey={key}"
    if market is Market.COINM:
        return f"{base}/ws/{key}"
    raise ValueError(f"{market.value} has no listen keys since 2026-02-20; use the WebSocket API")


class KeyState(enum.Enum):
    NO_KEY = "no_key"
    CREATING = "creating"
    ACTIVE = "active"
    RENEWING = "renewing"


class KeyAction(enum.Enum):
    """What the shell must do now."""

    CREATE = "create"  # POST listenKey
    KEEPALIVE = "keepalive"  # PUT listenKey


@dataclass(frozen=True, slots=True)
class ListenKeyTimings:
    """Validity (Binance's, 60 min) and our keep-alive cadence; tests compress both."""

    validity_s: float = VALIDITY_S
    keepalive_interval_s: float = KEEPALIVE_INTERVAL_S
    retry_s: float = RETRY_S

    def __post_init__(self) -> None:
        if not 0 < self.keepalive_interval_s < self.validity_s:
            raise ValueError("the keep-alive interval must be shorter than the key's validity")
        if self.retry_s <= 0:
            raise ValueError("the retry delay must be positive")


class ListenKeyCycle:
    """When to create, keep alive and re-create one account's listen key.

    Every method takes ``now_s`` (monotonic seconds). ``action_due(now_s)`` says what to do
    now, ``next_wakeup_s(now_s)`` when to ask again; ``receive_*`` feed the outcomes back.
    A new key (``key_changed``) means the stream must reconnect with it.
    """

    def __init__(self, timings: ListenKeyTimings | None = None) -> None:
        self.timings = timings or ListenKeyTimings()
        self.state = KeyState.NO_KEY
        self.key: str | None = None
        self.generation = 0
        """Bumped at every new key: the shell reconnects when it changes."""
        self._renewed_at_s = 0.0
        self._created_at_s = 0.0
        self._due_at_s = 0.0  # next action time in NO_KEY / ACTIVE

    # -- queries ---------------------------------------------------------------------------

    def action_due(self, now_s: float) -> KeyAction | None:
        """The request to send now, if any; the state moves to CREATING / RENEWING."""
        if now_s < self._due_at_s:
            return None
        if self.state is KeyState.NO_KEY:
            self._set(KeyState.CREATING)
            return KeyAction.CREATE
        if self.state is KeyState.ACTIVE:
            if self.expired(now_s):
                self._lose("expired before it could be kept alive")
                self._set(KeyState.CREATING)
                return KeyAction.CREATE
            self._set(KeyState.RENEWING)
            return KeyAction.KEEPALIVE
        return None  # a request is in flight

    def next_wakeup_s(self, now_s: float) -> float:
        """Seconds until :meth:`action_due` may return something (in-flight: a retry tick)."""
        if self.state in (KeyState.CREATING, KeyState.RENEWING):
            return self.timings.retry_s
        return max(0.0, self._due_at_s - now_s)

    def expires_at_s(self) -> float | None:
        """When the current key lapses unless kept alive; ``None`` without a key."""
        if self.key is None:
            return None
        return self._renewed_at_s + self.timings.validity_s

    def expired(self, now_s: float) -> bool:
        expires = self.expires_at_s()
        return expires is not None and now_s >= expires

    def age_s(self, now_s: float) -> float | None:
        """Seconds since the current key was created (health output)."""
        return None if self.key is None else now_s - self._created_at_s

    # -- outcomes --------------------------------------------------------------------------

    def receive_created(self, key: str, now_s: float) -> bool:
        """``POST`` answered ``key``; ``True`` if it is a new key (reconnect with it)."""
        self._expect(KeyState.CREATING)
        new = key != self.key
        if new:
            self.key = key
            self.generation += 1
            self._created_at_s = now_s
        self._renewed(now_s)
        return new

    def refresh(self, now_s: float) -> None:
        """A new connection is about to open: ``POST`` first, whatever the key's state.

        Binance answers ``POST`` with the active key (extended) or a new one if it lapsed, so
        one request both checks the key the connection will use and renews it; the stream is
        only opened on a key Binance just confirmed. The current key is kept so that
        :meth:`receive_created` can tell whether it changed.
        """
        self._set(KeyState.NO_KEY)  # a request still "in flight" was abandoned with its connection
        self._due_at_s = now_s

    def receive_kept_alive(self, now_s: float) -> None:
        """``PUT`` succeeded: the key lives another validity period.

        An answer that arrives after the key was dropped meanwhile (a ``listenKeyExpired`` event
        raced it) is stale and ignored: the new key is already being created.
        """
        if self.state is KeyState.RENEWING:
            self._renewed(now_s)

    def receive_key_missing(self, now_s: float) -> None:
        """``-1125`` on keep-alive: create a new key now."""
        if self.state is not KeyState.RENEWING:
            return  # stale: the key was already dropped and a new one is under way
        self._lose("Binance no longer knows it (-1125)")
        self._due_at_s = now_s

    def receive_expired_event(self, key: str | None, now_s: float) -> None:
        """``listenKeyExpired`` pushed on the stream. An event about an older key is ignored."""
        if key is not None and self.key is not None and key != self.key:
            return
        if self.state is KeyState.CREATING:
            return  # a new key is already on its way
        self._lose("listenKeyExpired")
        self._due_at_s = now_s

    def receive_failure(self, now_s: float) -> None:
        """The request failed (network, 5xx, 429): try again after ``retry_s``.

        A failed keep-alive keeps the key (it is still valid), but the retry is brought forward
        so it happens before the key lapses.
        """
        if self.state is KeyState.CREATING:
            self._set(KeyState.NO_KEY)
            self._due_at_s = now_s + self.timings.retry_s
        elif self.state is KeyState.RENEWING:
            self._set(KeyState.ACTIVE)
            expires = self._renewed_at_s + self.timings.validity_s
            self._due_at_s = min(now_s + self.timings.retry_s, max(now_s, expires - 1.0))
        # Otherwise stale: the key was dropped while the request was in flight.

    # -- internals -------------------------------------------------------------------------

    def _renewed(self, now_s: float) -> None:
        self._renewed_at_s = now_s
        self._due_at_s = now_s + self.timings.keepalive_interval_s
        self._set(KeyState.ACTIVE)

    def _lose(self, why: str) -> None:
        if self.key is not None:
            logger.info("listen key dropped: %s", why)
        self.key = None
        self._set(KeyState.NO_KEY)

    def _expect(self, state: KeyState) -> None:
        if self.state is not state:
            raise InvalidStateError(f"expected {state.name}, in {self.state.name}")

    def _set(self, state: KeyState) -> None:
        if state is not self.state:
            logger.debug("listen key %s -> %s", self.state.name, state.name)
            self.state = state
