"""User data, pure: futures listen keys, request signatures, and a simulated account's events.

* :class:`ListenKeys` — ``POST/PUT/DELETE /fapi/v1/listenKey`` (FACTS §6.2): one active key per
  API key, valid 60 minutes after creation or the last keepalive; POST on an active key returns
  it and extends it; PUT on an unknown key is ``-1125``.
* :func:`signature_valid` — HMAC-SHA256 over the request's parameters, as the spot WebSocket
  API's ``userDataStream.subscribe.signature`` requires (FACTS §6.1). Ed25519 and RSA keys would
  need the ``cryptography`` package; the simulator accepts HMAC keys only.
* :class:`Account` — turns a fill of the simulated account into the events Binance pushes:
  spot ``executionReport`` + ``outboundAccountPosition``; futures ``ORDER_TRADE_UPDATE``,
  ``TRADE_LITE`` and ``ACCOUNT_UPDATE``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.simulator.engine import UNITS_PER_WHOLE, SymbolSpec
from gateway.simulator.markets import Market
from gateway.simulator.payloads import Payload
from gateway.simulator.payloads_user import (
    UserOrder,
    account_update,
    execution_report,
    order_trade_update,
    outbound_account_position,
    trade_lite,
)


class ListenKeyError(Exception):
    """A listen-key request Binance refuses (HTTP 400, ``{"code", "msg"}``)."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


@dataclass(slots=True)
class _Key:
    api_key: str
    expires_at_s: float


class ListenKeys:
    """Futures listen keys: creation, keepalive, closing and expiry."""

    def __init__(self, validity_s: float, seed: int = 0) -> None:
        self._validity_s = validity_s
        self._keys: dict[str, _Key] = {}
        self._counter = itertools.count()
        self._seed = seed

    def create(self, api_key: str, now_s: float) -> str:
        """``POST``: the API key's active listen key (extended), or a new one."""
        for key, entry in self._keys.items():
            if entry.api_key == api_key and entry.expires_at_s > now_s:
                entry.expires_at_s = now_s + self._validity_s
                return key
        digest = hashlib.sha256(f"{self._seed}:{api_key}:{next(self._counter)}".encode())
        key = digest.hexdigest()  # 64 characters, like Binance's
        self._keys[key] = _Key(api_key, now_s + self._validity_s)
        return key

    def keepalive(self, key: str, now_s: float) -> str:
        """``PUT``: extend a live key by the validity period.

        Raises:
            ListenKeyError: -1125 when the key does not exist (or expired).
        """
        entry = self._keys.get(key)
        if entry is None or entry.expires_at_s <= now_s:
            raise ListenKeyError(-1125, "This listenKey does not exist.")
        entry.expires_at_s = now_s + self._validity_s
        return key

    def close(self, key: str) -> None:
        """``DELETE``: forget the key (its connections are closed by the caller)."""
        self._keys.pop(key, None)

    def is_active(self, key: str, now_s: float) -> bool:
        """Whether ``key`` exists and has not expired."""
        entry = self._keys.get(key)
        return entry is not None and entry.expires_at_s > now_s

    def api_key_of(self, key: str) -> str | None:
        """The API key that created ``key``."""
        entry = self._keys.get(key)
        return None if entry is None else entry.api_key

    def keys_of(self, api_key: str) -> list[str]:
        """The listen keys of an API key."""
        return [key for key, entry in self._keys.items() if entry.api_key == api_key]

    def expire(self, now_s: float) -> list[str]:
        """Remove and return the keys that expired by ``now_s``."""
        expired = [key for key, entry in self._keys.items() if entry.expires_at_s <= now_s]
        for key in expired:
            del self._keys[key]
        return expired


def signature_payload(params: Mapping[str, object]) -> str:
    """The signed text: every parameter but ``signature``, sorted by name, as a query string."""
    return "&".join(
        f"{name}={_text(params[name])}" for name in sorted(params) if name != "signature"
    )


def sign(secret: str, params: Mapping[str, object]) -> str:
    """The HMAC-SHA256 signature (hex) a client sends for ``params``."""
    message = signature_payload(params).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_valid(secret: str, params: Mapping[str, object]) -> bool:
    """Whether ``params["signature"]`` signs the other parameters with ``secret``."""
    given = params.get("signature")
    return isinstance(given, str) and hmac.compare_digest(given.lower(), sign(secret, params))


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Account:
    """The simulated account: its orders' ids and balances, and the events they cause."""

    def __init__(self, market: Market, starting_balance: int = 10_000 * UNITS_PER_WHOLE) -> None:
        self.market = market
        self._order_ids = itertools.count(1_000_000)
        self._trade_ids = itertools.count(1)
        self.balance = starting_balance
        self.positions: dict[str, tuple[int, int]] = {}
        """symbol -> (signed quantity, entry price) for futures."""

    def fill(
        self, spec: SymbolSpec, side: str, price: int, quantity: int, now_us: int
    ) -> list[tuple[str, Payload]]:
        """A limit order placed and fully filled: every user-data event, in push order."""
        order_id = next(self._order_ids)
        trade_id = next(self._trade_ids)

        def order(execution: str, status: str, filled: int) -> UserOrder:
            last = filled
            return UserOrder(
                spec, order_id, f"sim{order_id}", side, price, quantity, filled,
                last, price if filled else 0, trade_id, execution, status, now_us,
            )  # fmt: skip

        new, traded = order("NEW", "NEW", 0), order("TRADE", "FILLED", quantity)
        notional = price * quantity // UNITS_PER_WHOLE
        change = -notional if side == "BUY" else notional
        self.balance += change
        if self.market is Market.SPOT:
            position = outbound_account_position(spec.quote_asset, self.balance, 0, now_us)
            return [
                ("executionReport", execution_report(new)),
                ("executionReport", execution_report(traded)),
                ("outboundAccountPosition", position),
            ]
        held, _ = self.positions.get(spec.symbol, (0, price))
        held += quantity if side == "BUY" else -quantity
        self.positions[spec.symbol] = (held, price)
        update = account_update(spec, self.balance, change, held, price, now_us)
        return [
            ("ORDER_TRADE_UPDATE", order_trade_update(new)),
            ("TRADE_LITE", trade_lite(traded)),
            ("ORDER_TRADE_UPDATE", order_trade_update(traded)),
            ("ACCOUNT_UPDATE", update),
        ]
