"""Connection events: Binance's replies to control messages and its shutdown notice.

They steer the connection and never become records.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gateway.binance.events.base import Context, Payload, event_class, integer, time_us


@event_class
class ControlReply:
    """Binance's answer to a SUBSCRIBE / LIST_SUBSCRIPTIONS / ... control message."""

    KIND: ClassVar[str] = "control_reply"

    request_id: int | str | None
    result: Any
    error_code: int | None = None
    error_message: str | None = None


@event_class
class ServerShutdown:
    """Binance will close this connection for maintenance: reconnect now."""

    KIND: ClassVar[str] = "server_shutdown"

    event_time_us: int


REPLY_KEYS = frozenset(["result", "code", "error"])


def is_control_reply(message: Payload) -> bool:
    """A reply has an ``id`` and a result or an error, and no event type."""
    return "e" not in message and "id" in message and not REPLY_KEYS.isdisjoint(message)


def parse_control_reply(message: Payload) -> ControlReply:
    # The docs show errors flat ({"code", "msg", "id"}); the live servers have been seen to wrap
    # them ({"error": {"code", "msg"}, "id"}). Both are errors, never a success.
    if isinstance(message.get("error"), dict):
        message = {**message["error"], "id": message.get("id")}
    if "code" in message:
        return ControlReply(
            request_id=message.get("id"),
            result=None,
            error_code=integer(message["code"], "code"),
            error_message=str(message.get("msg", "")),
        )
    return ControlReply(request_id=message.get("id"), result=message.get("result"))


def parse_server_shutdown(payload: Payload, ctx: Context) -> ServerShutdown:
    return ServerShutdown(event_time_us=time_us(payload["E"], "E", ctx))
