"""Answers to JSON control messages on a stream connection (pure, no I/O).

``SUBSCRIBE``, ``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS``, ``SET_PROPERTY`` and ``GET_PROPERTY``
(docs/binance.md §2, vector ``spot/control_messages.json``). :func:`answer` takes the message text and the
connection's current state and returns a :class:`ControlOutcome`: the frame to send back and the
changes to apply, or a reason to close the connection.

Error frames follow the documented table verbatim: ``{"code": c, "msg": "..."}``, with ``"id"``
only on the ``Unknown property`` row, as the docs show it. Third-party logs show the live server
wrapping errors as ``{"error": {"code": c, "msg": "..."}, "id": id}``; ``wrap_errors=True``
produces that form so the gateway can be tested against both. Two behaviours come from those
reports, not the docs: an invalid stream in ``SUBSCRIBE`` is answered with code 2
``Invalid request: invalid stream``, and exceeding the stream cap closes the connection.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.simulator.markets import MAX_STREAMS_PER_CONNECTION
from gateway.simulator.payloads import Payload

RequestId = int | str | None

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_STRING_ID = re.compile(r"[A-Za-z0-9]{1,36}")
_METHOD_KEY = re.compile(r'"method"\s*:\s*')
_VARIANTS = "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`"
COMBINED_PROPERTY = "combined"


class Method(enum.Enum):
    """The control methods a stream connection understands."""

    SUBSCRIBE = "SUBSCRIBE"
    UNSUBSCRIBE = "UNSUBSCRIBE"
    LIST_SUBSCRIPTIONS = "LIST_SUBSCRIPTIONS"
    SET_PROPERTY = "SET_PROPERTY"
    GET_PROPERTY = "GET_PROPERTY"


@dataclass(frozen=True, slots=True)
class ControlOutcome:
    """What to do after a control message.

    Apply the changes, then send ``reply``; if ``close_reason`` is set, close the connection
    (policy violation) instead.
    """

    reply: Payload | None = None
    subscribe: tuple[str, ...] = ()
    unsubscribe: tuple[str, ...] = ()
    combined: bool | None = None
    close_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectionView:
    """The parts of a connection's state a control message reads."""

    subscriptions: Collection[str]
    """In subscription order (LIST_SUBSCRIPTIONS returns them so)."""
    combined: bool
    accepts_stream: Callable[[str], bool]
    wrap_errors: bool = False
    unsigned_ids: bool = False
    """Futures: ``id`` must be an unsigned integer (or absent/null), docs/binance.md §2."""


class _ControlError(Exception):
    def __init__(self, code: int, msg: str, *, show_id: bool = False) -> None:
        super().__init__(msg)
        self.code, self.msg, self.show_id = code, msg, show_id


def answer(text: str, view: ConnectionView) -> ControlOutcome:
    """Decide the reply to one control message ``text``."""
    request_id: RequestId = None
    try:
        message = _parse_json(text)
        request_id = _request_id(message, unsigned=view.unsigned_ids)
        method = _method(message, text)
        return _dispatch(method, message.get("params"), request_id, view)
    except _ControlError as error:
        return ControlOutcome(reply=_error_frame(error, request_id, wrap=view.wrap_errors))


def _error_frame(error: _ControlError, request_id: RequestId, *, wrap: bool) -> Payload:
    """An error frame, in the documented flat form or the live server's wrapped form."""
    if wrap:
        return {"error": {"code": error.code, "msg": error.msg}, "id": request_id}
    frame: Payload = {"code": error.code, "msg": error.msg}
    if error.show_id:
        frame["id"] = request_id
    return frame


def _parse_json(text: str) -> dict[str, Any]:
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        line, column = _position(text, exc.pos)
        raise _ControlError(
            3, f"Invalid JSON: expected value at line {line} column {column}"
        ) from None
    if not isinstance(message, dict) or "method" not in message:
        # Not in the docs for non-objects; the closest documented row is used.
        line, column = _position(text, len(text.rstrip()) - 1)
        raise _ControlError(
            2, f"Invalid request: missing field `method` at line {line} column {column}"
        )
    return message


def _request_id(message: dict[str, Any], *, unsigned: bool = False) -> RequestId:
    """Spot accepts a signed 64-bit integer, an alphanumeric string of up to 36, or null;
    futures an unsigned integer."""
    value = message.get("id")
    if value is None:
        return None
    if unsigned:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64:
            return value
        raise _ControlError(2, "Invalid request: request ID must be an unsigned integer")
    if isinstance(value, int) and not isinstance(value, bool) and _INT64_MIN <= value <= _INT64_MAX:
        return value
    if isinstance(value, str) and _STRING_ID.fullmatch(value):
        return value
    raise _ControlError(2, "Invalid request: request ID must be an unsigned integer")


def _method(message: dict[str, Any], text: str) -> Method:
    value = message["method"]
    try:
        return Method(value)
    except ValueError:
        pass
    shown = f"`{value}`" if isinstance(value, str) else orjson.dumps(value).decode()
    line, column = _method_end(text)
    raise _ControlError(
        2,
        f"Invalid request: unknown variant {shown}, expected one of {_VARIANTS}"
        f" at line {line} column {column}",
    )


def _dispatch(
    method: Method, params: Any, request_id: RequestId, view: ConnectionView
) -> ControlOutcome:
    if method is Method.SUBSCRIBE:
        return _subscribe(params, request_id, view)
    if method is Method.UNSUBSCRIBE:
        names = _stream_names(params)
        present = tuple(name for name in names if name in view.subscriptions)
        return ControlOutcome(reply=_result(None, request_id), unsubscribe=present)
    if method is Method.LIST_SUBSCRIPTIONS:
        if params:
            raise _ControlError(2, "Invalid request: too many parameters")
        return ControlOutcome(reply=_result(list(view.subscriptions), request_id))
    if method is Method.SET_PROPERTY:
        value = _property_value(_property_params(params, max_count=2))
        return ControlOutcome(reply=_result(None, request_id), combined=value)
    _property_params(params, max_count=1)
    return ControlOutcome(reply=_result(view.combined, request_id))


def _subscribe(params: Any, request_id: RequestId, view: ConnectionView) -> ControlOutcome:
    names = _stream_names(params)
    if not all(view.accepts_stream(name) for name in names):
        raise _ControlError(2, "Invalid request: invalid stream")
    new = tuple(name for name in dict.fromkeys(names) if name not in view.subscriptions)
    total = len(view.subscriptions) + len(new)
    if total > MAX_STREAMS_PER_CONNECTION:
        return ControlOutcome(
            close_reason=f"Too many streams: {total} > {MAX_STREAMS_PER_CONNECTION}"
        )
    return ControlOutcome(reply=_result(None, request_id), subscribe=new)


def _stream_names(params: Any) -> list[str]:
    if params is None:
        return []
    if not isinstance(params, list) or not all(isinstance(name, str) for name in params):
        raise _ControlError(2, "Invalid request: invalid stream")
    return [str(name) for name in params]


def _property_params(raw_params: Any, *, max_count: int) -> list[Any]:
    """Check ``[name, value?]`` and return it; the only property is ``combined``."""
    params: list[Any] = list(raw_params) if isinstance(raw_params, list) else []
    if len(params) > max_count:
        raise _ControlError(2, "Invalid request: too many parameters")
    if not params or not isinstance(params[0], str):
        raise _ControlError(2, "Invalid request: property name must be a string")
    if params[0] != COMBINED_PROPERTY:
        raise _ControlError(0, "Unknown property", show_id=True)
    return params


def _property_value(params: list[Any]) -> bool:
    if len(params) < 2 or not isinstance(params[1], bool):
        raise _ControlError(1, "Invalid value type: expected Boolean")
    return params[1]


def _result(result: object, request_id: RequestId) -> Payload:
    return {"result": result, "id": request_id}


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of ``text[index]``, as serde_json reports positions."""
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index) + 1
    column = index - text.rfind("\n", 0, index)
    return line, column


def _method_end(text: str) -> tuple[int, int]:
    """Position of the last character of the ``method`` value (where serde reports it)."""
    match = _METHOD_KEY.search(text)
    if match is None:
        return _position(text, len(text) - 1)
    try:
        _, end = json.JSONDecoder().raw_decode(text, match.end())
    except ValueError:
        return _position(text, match.end())
    return _position(text, end - 1)
