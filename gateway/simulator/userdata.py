"""User data, pure: futures listen keys, request signatures, and a simulated account's events.

* :class:`ListenKeys` — ``POST/PUT/DELETE /fapi/v1/listenKey`` (docs/binance.md §6.2): one active key per
  API key, valid 60 minutes after creation or the last keepalive; POST on an active key returns
  it and extends it; PUT on an unknown key is ``-1125``.
* :func:`signature_valid` — the spot WebSocket API's ``userDataStream.subscribe.signature``
  check (docs/binance.md §6.1): the parameters sorted by name, signed with the API key's HMAC secret (hex)
  or, when the simulator holds a PEM public key for the API key instead of a secret, verified as
  RSA PKCS#1 v1.5 SHA-256 or Ed25519 (base64). :func:`query_signature_valid` checks a signed REST
  query string the same way. Written here, not borrowed from ``gateway.binance.signing``, so a
  signing bug in the gateway cannot hide in the simulator too.
* :class:`Account` — turns a fill, a resting order, a cancel or a deposit of the simulated account
  into the events Binance pushes: spot ``executionReport`` + ``outboundAccountPosition`` /
  ``balanceUpdate``; futures ``ORDER_TRADE_UPDATE``, ``TRADE_LITE`` and ``ACCOUNT_UPDATE``; USD-M
  algo orders ``ALGO_UPDATE`` (and ``CONDITIONAL_ORDER_TRIGGER_REJECT``); futures grid strategies
  ``STRATEGY_UPDATE`` and ``GRID_UPDATE``. It
  also answers the signed REST views a reconciling client reads (open orders, balances,
  positions).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from gateway.simulator.engine import UNITS_PER_WHOLE, SymbolSpec
from gateway.simulator.markets import Market
from gateway.simulator.payloads import Payload
from gateway.simulator.payloads_algo import (
    AlgoOrder,
    algo_update,
    conditional_order_trigger_reject,
    grid_update,
    strategy_update,
)
from gateway.simulator.payloads_user import (
    UserOrder,
    account_update,
    balance_update,
    deposit_update,
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


PEM_PUBLIC_KEY = "-----BEGIN PUBLIC KEY-----"


def sign(secret: str, params: Mapping[str, object]) -> str:
    """The HMAC-SHA256 signature (hex) a client sends for ``params``."""
    message = signature_payload(params).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_valid(key: str, params: Mapping[str, object]) -> bool:
    """Whether ``params["signature"]`` signs the other parameters with ``key``.

    ``key`` is the API key's HMAC secret, or its PEM public key (RSA or Ed25519).
    """
    given = params.get("signature")
    return isinstance(given, str) and payload_signature_valid(key, signature_payload(params), given)


def query_signature_valid(key: str, raw_query: str) -> bool:
    """Whether a REST query string's ``signature`` signs the rest of it, as sent."""
    kept, given = [], None
    for part in raw_query.split("&"):
        name, _, value = part.partition("=")
        if name == "signature":
            given = unquote(value)
        else:
            kept.append(part)
    return given is not None and payload_signature_valid(key, "&".join(kept), given)


def payload_signature_valid(key: str, payload: str, signature: str) -> bool:
    """HMAC (hex) when ``key`` is a secret; RSA or Ed25519 (base64) when it is a public key."""
    data = payload.encode()
    if not key.startswith(PEM_PUBLIC_KEY):
        expected = hmac.new(key.encode(), data, hashlib.sha256).hexdigest()
        return hmac.compare_digest(signature.lower(), expected)
    try:
        public = serialization.load_pem_public_key(key.encode())
        raw = base64.b64decode(signature, validate=True)
        if isinstance(public, RSAPublicKey):
            public.verify(raw, data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public, Ed25519PublicKey):
            public.verify(raw, data)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Account:
    """The simulated account: its orders, balances and positions, and the events they cause."""

    def __init__(self, market: Market, starting_balance: int = 10_000 * UNITS_PER_WHOLE) -> None:
        self.market = market
        self._order_ids = itertools.count(1_000_000)
        self._trade_ids = itertools.count(1)
        self.balance = starting_balance
        """The quote asset's balance (every simulated symbol shares one quote asset)."""
        self.quote_asset = "USD" if market is Market.COINM else "USDT"
        self.assets: dict[str, int] = {}
        """Balances of other assets, changed by :meth:`deposit`."""
        self.positions: dict[str, tuple[int, int]] = {}
        """symbol -> (signed quantity, entry price) for futures."""
        self.open_orders: dict[int, UserOrder] = {}
        """Resting orders by id: what ``GET openOrders`` answers."""
        self.update_time_us = 0
        self._algo_ids = itertools.count(2_000_000)
        self._strategy_ids = itertools.count(176_000_000)
        self.algo_orders: dict[int, AlgoOrder] = {}
        """USD-M algo orders waiting for their trigger, by algo id."""

    def fill(
        self, spec: SymbolSpec, side: str, price: int, quantity: int, now_us: int
    ) -> list[tuple[str, Payload]]:
        """A limit order placed and fully filled: every user-data event, in push order."""
        order_id = next(self._order_ids)
        trade_id = next(self._trade_ids)
        self.quote_asset = spec.quote_asset
        self.update_time_us = now_us

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

    def place(
        self, spec: SymbolSpec, side: str, price: int, quantity: int, now_us: int
    ) -> list[tuple[str, Payload]]:
        """A limit order that rests on the book (open until :meth:`cancel`)."""
        order_id = next(self._order_ids)
        self.update_time_us = now_us
        order = UserOrder(
            spec, order_id, f"sim{order_id}", side, price, quantity, 0, 0, 0, -1, "NEW", "NEW",
            now_us,
        )  # fmt: skip
        self.open_orders[order_id] = order
        return [self._order_event(order)]

    def cancel(self, order_id: int, now_us: int) -> list[tuple[str, Payload]]:
        """Cancel a resting order; ``KeyError`` if it is not open."""
        order = self.open_orders.pop(order_id)
        self.update_time_us = now_us
        canceled = replace(order, execution_type="CANCELED", status="CANCELED", time_us=now_us)
        return [self._order_event(canceled)]

    def deposit(self, asset: str, amount: int, now_us: int) -> list[tuple[str, Payload]]:
        """A deposit of ``amount`` units of ``asset``: a balance change outside trading."""
        self.update_time_us = now_us
        if asset == self.quote_asset:
            self.balance += amount
            total = self.balance
        else:
            total = self.assets[asset] = self.assets.get(asset, 0) + amount
        if self.market is Market.SPOT:
            return [
                ("balanceUpdate", balance_update(asset, amount, now_us)),
                ("outboundAccountPosition", outbound_account_position(asset, total, 0, now_us)),
            ]
        return [("ACCOUNT_UPDATE", deposit_update(asset, total, amount, now_us))]

    def algo_order(
        self, spec: SymbolSpec, side: str, order_type: str, trigger_price: int, now_us: int
    ) -> list[tuple[str, Payload]]:
        """A USD-M conditional order placed in the Algo Service (``ALGO_UPDATE`` NEW)."""
        if self.market is not Market.USDM:
            raise ValueError("ALGO_UPDATE is a USD-M event")
        algo = AlgoOrder(
            spec,
            next(self._algo_ids),
            order_type,
            side,
            spec.lot_size,
            trigger_price,
            "NEW",
            now_us,
        )
        self.algo_orders[algo.algo_id] = algo
        return [("ALGO_UPDATE", algo_update(algo))]

    def trigger_algo(
        self, algo_id: int, now_us: int, *, rejected: bool = False
    ) -> list[tuple[str, Payload]]:
        """The algo order's trigger fired: placed and filled in the matching engine, or
        rejected there (with the deprecated ``CONDITIONAL_ORDER_TRIGGER_REJECT`` first)."""
        algo = self.algo_orders.pop(algo_id)
        order_id = next(self._order_ids)
        if rejected:
            failed = replace(
                algo, status="REJECTED", time_us=now_us, order_id=order_id,
                reason="Reduce Only reject",
            )  # fmt: skip
            return [
                ("CONDITIONAL_ORDER_TRIGGER_REJECT", conditional_order_trigger_reject(failed)),
                ("ALGO_UPDATE", algo_update(failed)),
            ]
        triggered = replace(algo, status="TRIGGERED", time_us=now_us, order_id=order_id)
        finished = replace(
            triggered, status="FINISHED", average_price=algo.trigger_price, executed=algo.quantity
        )
        return [("ALGO_UPDATE", algo_update(triggered)), ("ALGO_UPDATE", algo_update(finished))]

    def grid(self, spec: SymbolSpec, now_us: int) -> list[tuple[str, Payload]]:
        """A futures grid strategy opened and its first sub-order filled."""
        if self.market is Market.SPOT:
            raise ValueError("grid strategies are futures events")
        strategy_id = next(self._strategy_ids)
        return [
            ("STRATEGY_UPDATE", strategy_update(spec, strategy_id, "NEW", now_us)),
            (
                "GRID_UPDATE",
                grid_update(spec, strategy_id, spec.initial_price, spec.lot_size, now_us),
            ),
        ]

    def _order_event(self, order: UserOrder) -> tuple[str, Payload]:
        if self.market is Market.SPOT:
            return ("executionReport", execution_report(order))
        return ("ORDER_TRADE_UPDATE", order_trade_update(order))

    def balances(self) -> dict[str, int]:
        """Every asset's balance (1e-8 units)."""
        return {self.quote_asset: self.balance, **self.assets}
