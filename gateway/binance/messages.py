"""Binance frames in, typed events out: ``FrameParser.parse(raw) -> list[Event]``.

Wire names stop here: ``t``, ``p``, ``E`` become ``trade_id``, ``price``, ``event_time_us``.
Prices and quantities become :class:`~decimal.Decimal` (exact, never float); timestamps become
integer epoch microseconds whatever ``timeUnit`` the connection asked for. Fields Binance adds
tomorrow are kept, JSON-encoded, in ``extra`` so nothing it sends is silently dropped.

Anything that is not a well-formed, known frame raises :class:`MessageParseError`, which the
pipeline turns into a dead-letter record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import orjson

from gateway.binance.markets import Market
from gateway.binance.streams import TimeUnit
from gateway.errors import MessageParseError

Payload = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade (``<symbol>@trade``)."""

    KIND: ClassVar[str] = "trade"

    market: str
    symbol: str
    event_time_us: int
    trade_id: int
    price: Decimal
    quantity: Decimal
    trade_time_us: int
    buyer_is_maker: bool
    best_match: bool | None
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AggTrade:
    """Trades of one taker order at one price (``<symbol>@aggTrade``)."""

    KIND: ClassVar[str] = "agg_trade"

    market: str
    symbol: str
    event_time_us: int
    agg_trade_id: int
    price: Decimal
    quantity: Decimal
    first_trade_id: int
    last_trade_id: int
    trade_time_us: int
    buyer_is_maker: bool
    best_match: bool | None
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ControlReply:
    """Binance's answer to a SUBSCRIBE / LIST_SUBSCRIPTIONS / ... control message."""

    KIND: ClassVar[str] = "control_reply"

    request_id: int | str | None
    result: Any
    error_code: int | None = None
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    """Binance will close this connection for maintenance: reconnect now."""

    KIND: ClassVar[str] = "server_shutdown"

    event_time_us: int


MarketEvent = Trade | AggTrade
Event = Trade | AggTrade | ControlReply | ServerShutdown


@dataclass(frozen=True, slots=True)
class _Context:
    market: str
    to_us: int
    received_at_us: int


def _decimal(value: object, name: str) -> Decimal:
    # Binance sends prices and quantities as strings; a number here would already be a float.
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a decimal string, got {type(value).__name__}")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"{name} is not finite: {value!r}")
    return number


def _int(value: object, name: str) -> int:
    # bool is an int subclass: reject it so a swapped field cannot pass as an id.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {type(value).__name__}")
    return value


def _str(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a boolean, got {type(value).__name__}")
    return value


def _optional_bool(payload: Payload, key: str) -> bool | None:
    return _bool(payload[key], key) if key in payload else None


def _extra(payload: Payload, known: frozenset[str]) -> dict[str, str]:
    if payload.keys() <= known:
        return {}
    return {k: orjson.dumps(v).decode() for k, v in payload.items() if k not in known}


_TRADE_KEYS = frozenset(["e", "E", "s", "t", "p", "q", "T", "m", "M"])
_AGG_TRADE_KEYS = frozenset(["e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M"])


def _trade(payload: Payload, ctx: _Context) -> Trade:
    return Trade(
        market=ctx.market,
        symbol=_str(payload["s"], "s"),
        event_time_us=_int(payload["E"], "E") * ctx.to_us,
        trade_id=_int(payload["t"], "t"),
        price=_decimal(payload["p"], "p"),
        quantity=_decimal(payload["q"], "q"),
        trade_time_us=_int(payload["T"], "T") * ctx.to_us,
        buyer_is_maker=_bool(payload["m"], "m"),
        best_match=_optional_bool(payload, "M"),
        received_at_us=ctx.received_at_us,
        extra=_extra(payload, _TRADE_KEYS),
    )


def _agg_trade(payload: Payload, ctx: _Context) -> AggTrade:
    return AggTrade(
        market=ctx.market,
        symbol=_str(payload["s"], "s"),
        event_time_us=_int(payload["E"], "E") * ctx.to_us,
        agg_trade_id=_int(payload["a"], "a"),
        price=_decimal(payload["p"], "p"),
        quantity=_decimal(payload["q"], "q"),
        first_trade_id=_int(payload["f"], "f"),
        last_trade_id=_int(payload["l"], "l"),
        trade_time_us=_int(payload["T"], "T") * ctx.to_us,
        buyer_is_maker=_bool(payload["m"], "m"),
        best_match=_optional_bool(payload, "M"),
        received_at_us=ctx.received_at_us,
        extra=_extra(payload, _AGG_TRADE_KEYS),
    )


def _server_shutdown(payload: Payload, ctx: _Context) -> ServerShutdown:
    return ServerShutdown(event_time_us=_int(payload["E"], "E") * ctx.to_us)


# Dispatch on the event type ``e``; issue "Records" widens this table to every event kind.
_BY_EVENT_TYPE: dict[str, Callable[[Payload, _Context], Event]] = {
    "trade": _trade,
    "aggTrade": _agg_trade,
    "serverShutdown": _server_shutdown,
}


def _control_reply(message: Payload) -> ControlReply:
    # The docs show errors flat ({"code", "msg", "id"}); the live servers have been seen to wrap
    # them ({"error": {"code", "msg"}, "id"}). Both are errors, never a success.
    if isinstance(message.get("error"), dict):
        message = {**message["error"], "id": message.get("id")}
    if "code" in message:
        return ControlReply(
            request_id=message.get("id"),
            result=None,
            error_code=_int(message["code"], "code"),
            error_message=str(message.get("msg", "")),
        )
    return ControlReply(request_id=message.get("id"), result=message.get("result"))


class FrameParser:
    """Parses the frames of one connection, which fixes the market and the time unit."""

    def __init__(self, market: Market, time_unit: TimeUnit = TimeUnit.MILLISECOND) -> None:
        self.market = market
        self.time_unit = time_unit

    def parse(self, raw: bytes | str, received_at_us: int) -> list[Event]:
        """Turn one WebSocket frame into events; raise MessageParseError if it is not one."""
        payload_bytes = raw.encode() if isinstance(raw, str) else raw
        stream: str | None = None
        try:
            message = orjson.loads(payload_bytes)
            if isinstance(message, dict) and "stream" in message and "data" in message:
                stream = message["stream"]
                message = message["data"]
            ctx = _Context(self.market.value, self.time_unit.to_us, received_at_us)
            return self._events(message, ctx)
        except MessageParseError:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, InvalidOperation) as exc:
            raise MessageParseError(
                f"{type(exc).__name__}: {exc}", stream=stream, payload=payload_bytes
            ) from exc

    def _events(self, message: object, ctx: _Context) -> list[Event]:
        if isinstance(message, list):
            # All-market streams (``!miniTicker@arr``) send arrays: one event per element.
            return [event for item in message for event in self._events(item, ctx)]
        if not isinstance(message, dict):
            raise ValueError(f"expected a JSON object, got {type(message).__name__}")
        event_type = message.get("e")
        if event_type is None:
            if "id" in message and message.keys() & {"result", "code", "error"}:
                return [_control_reply(message)]
            raise ValueError("frame has no event type 'e'")
        handler = _BY_EVENT_TYPE.get(event_type)
        if handler is None:
            raise ValueError(f"unknown event type {event_type!r}")
        return [handler(message, ctx)]
