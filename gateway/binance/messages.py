"""Binance frames in, typed events out: ``FrameParser.parse(raw) -> list[Event]``.

Wire names stop here: ``t``, ``p``, ``E`` become ``trade_id``, ``price``, ``event_time_us``.
Prices and quantities become exact values, never floats: on the busy streams (trades, depth,
tickers, klines, mark price) a ``Scaled`` integer read straight from Binance's string, the unscaled
value Avro's decimal(38, 18) writes; elsewhere :class:`~decimal.Decimal`. Timestamps become
integer epoch microseconds whatever ``timeUnit`` the connection asked for. Fields Binance adds
tomorrow are kept, JSON-encoded, in ``extra`` so nothing it sends is silently dropped. The event
classes live in :mod:`gateway.binance.events`, one module per family; the dispatch tables in
:mod:`gateway.binance.events.catalog`.

Normalisation, all pure:

* combined-stream wrappers ``{"stream", "data"}`` and user-data wrappers
  ``{"subscriptionId", "event"}`` are unwrapped;
* all-market arrays (``!miniTicker@arr``) become one event per symbol;
* a frame is dispatched on its stream's channel when that channel has a handler (spot
  ``bookTicker`` and partial depth carry no ``e``; futures partial depth and RPI depth carry the
  same ``e`` as diff depth), otherwise on its event type ``e``: both through ``dict`` tables per
  market.

Anything that is not a well-formed, known frame raises :class:`MessageParseError`, which the
pipeline turns into a dead-letter record.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import InvalidOperation

import orjson

from gateway.binance.events.base import Context, Payload, integer
from gateway.binance.events.catalog import (
    CHANNEL_TABLES,
    EVENT_TABLES,
    RECORD_CLASSES,
    AccountEvent,
    Event,
    Handler,
    PublicEvent,
    RecordEvent,
)
from gateway.binance.events.connection import (
    ControlReply,
    ServerShutdown,
    is_control_reply,
    parse_control_reply,
)
from gateway.binance.events.trades import AggTrade, Trade
from gateway.binance.markets import Market
from gateway.binance.streams import TimeUnit
from gateway.errors import MessageParseError

__all__ = [
    "RECORD_CLASSES",
    "AccountEvent",
    "AggTrade",
    "ControlReply",
    "Event",
    "FrameParser",
    "MarketEvent",
    "PublicEvent",
    "RecordEvent",
    "ServerShutdown",
    "Trade",
    "channel_of",
]

MarketEvent = Trade | AggTrade
"""What ``RecordBuilder.build`` handles until it keys by ``partition_key``; prefer RecordEvent."""


def channel_of(stream: str) -> str:
    """``btcusdt@depth5@100ms`` → ``depth5``; ``!bookTicker`` and ``tradingSession`` stay."""
    head, _, rest = stream.partition("@")
    if not rest or head.startswith("!"):
        return head
    return rest.partition("@")[0]


MAX_REMEMBERED_STREAMS = 4096
"""Streams a parser remembers the parser and subscription of: a server naming ever new streams
must not grow its memory without end (a full memo starts again)."""


class FrameParser:
    """Parses the frames of one connection, which fixes the market and the time unit.

    ``stream`` names the stream of a raw ``/ws/<stream>`` connection, whose frames do not say it;
    combined-stream frames name their own. ``subscribed`` (lowercase names), when given, is what
    the connection asked for: a frame naming any other stream is refused, never published as data.
    The caller may grow the collection in place when the connection is retargeted.
    """

    def __init__(
        self,
        market: Market,
        time_unit: TimeUnit = TimeUnit.MILLISECOND,
        *,
        stream: str | None = None,
        left_to_other_market: frozenset[str] = frozenset(),
        subscribed: Collection[str] | None = None,
    ) -> None:
        self.market = market
        self.subscribed = subscribed
        self.time_unit = time_unit
        self.stream = stream
        self.left_to_other_market = left_to_other_market
        """Merged channels (``!bookTicker``) whose other-market contracts this connection drops:
        the other market's connections publish them (:mod:`gateway.binance.merger`)."""
        self.last_stream: str | None = None
        """The stream of the last frame parsed (liveness marks it delivered)."""
        self._by_event_type = EVENT_TABLES[market]
        self._by_channel = CHANNEL_TABLES[market]
        # Per frame, looked up once per stream rather than worked out again (issue 16's hot path).
        self._market_name, self._to_us = market.value, time_unit.to_us
        self._stream_parsers: dict[str, Handler | None] = {}
        self._accepted: set[str] = set()
        """Streams seen to be subscribed to; ``subscribed`` only grows, so they stay so."""

    def parse(
        self, raw: bytes | str, received_at_us: int, stream: str | None = None
    ) -> list[Event]:
        """Turn one WebSocket frame into events; raise MessageParseError if it is not one.

        ``stream`` overrides the connection's stream name for this frame.
        """
        payload_bytes = raw.encode() if isinstance(raw, str) else raw
        stream = stream or self.stream
        try:
            message = orjson.loads(payload_bytes)
            subscription_id = None
            if type(message) is dict:
                if "stream" in message and "data" in message:
                    stream = _stream_name(message["stream"])
                    message = message["data"]
                elif "event" in message and "e" not in message:
                    subscription_id = _subscription_id(message)
                    message = message["event"]
            self.last_stream = stream
            ctx = Context(self._market_name, self._to_us, received_at_us, stream, subscription_id)
            events = self._events(message, ctx)
            if self.subscribed is not None and stream is not None and stream not in self._accepted:
                self._check_subscribed(stream, events, payload_bytes)
            return events
        except MessageParseError:
            raise
        except (
            orjson.JSONDecodeError,
            KeyError,
            TypeError,
            ValueError,
            IndexError,
            AttributeError,
            InvalidOperation,
        ) as exc:
            raise MessageParseError(
                f"{type(exc).__name__}: {exc}", stream=stream, payload=payload_bytes
            ) from exc

    def _check_subscribed(self, stream: str, events: list[Event], payload: bytes) -> None:
        """Data on a stream this connection never asked for is refused. Connection events
        (``serverShutdown`` on ``!serverShutdown``, control replies) come unasked, by design."""
        assert self.subscribed is not None
        if stream.lower() in self.subscribed:
            if len(self._accepted) >= MAX_REMEMBERED_STREAMS:
                self._accepted.clear()
            self._accepted.add(stream)
            return
        if events and all(isinstance(event, ServerShutdown | ControlReply) for event in events):
            return
        raise MessageParseError(
            f"stream {stream!r} is not one this connection subscribed to",
            stream=stream,
            payload=payload,
        )

    def _events(self, message: object, ctx: Context) -> list[Event]:
        if type(message) is dict:
            events = [self._event(message, ctx)]
        elif type(message) is list:
            # All-market streams (``!miniTicker@arr``) send arrays: one event per element.
            events = [self._event(_object(item), ctx) for item in message]
        else:
            raise ValueError(f"expected a JSON object, got {type(message).__name__}")
        shared = self.left_to_other_market
        if shared and ctx.stream is not None and channel_of(ctx.stream) in shared:
            own = ctx.market
            return [e for e in events if getattr(e, "market", own) == own]
        return events

    def _event(self, message: Payload, ctx: Context) -> Event:
        if is_control_reply(message):
            return parse_control_reply(message)
        if ctx.stream is not None:
            memo = self._stream_parsers
            if ctx.stream in memo:
                by_stream = memo[ctx.stream]
            else:
                if len(memo) >= MAX_REMEMBERED_STREAMS:
                    memo.clear()
                by_stream = memo[ctx.stream] = self._by_channel.get(channel_of(ctx.stream))
            if by_stream is not None:
                return by_stream(message, ctx)
        event_type = message.get("e")
        if event_type is None:
            raise ValueError("frame has no event type 'e' and no stream that implies one")
        handler = self._by_event_type.get(event_type)
        if handler is None:
            raise ValueError(f"unknown event type {event_type!r}")
        return handler(message, ctx)


def _object(item: object) -> Payload:
    if type(item) is not dict:
        raise ValueError(f"expected a JSON object in the array, got {type(item).__name__}")
    return item


def _stream_name(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"stream must be a string, got {type(value).__name__}")
    return value


def _subscription_id(wrapper: Payload) -> int | None:
    value = wrapper.get("subscriptionId")
    return None if value is None else integer(value, "subscriptionId")
