"""The spot WebSocket API's user-data requests, pure (docs/binance.md §6.1; vector
``spot-user/wsapi_user_stream_requests.json``).

Since the listen-key streams were retired (2026-02-20), spot user data flows over
``/ws-api/v3``: ``userDataStream.subscribe.signature`` subscribes the account of an API key
(no logon, signed request), ``userDataStream.unsubscribe`` drops one or all subscriptions,
``session.subscriptions`` lists them. Events then arrive as
``{"subscriptionId": n, "event": {...}}``. ``userDataStream.subscribe`` needs an Ed25519
``session.logon``, which the simulator does not offer, so it answers it with an error.

Error codes are Binance's general ones (``-1022`` bad signature, ``-2015`` unknown API key,
``-1021`` stale timestamp, ``-1102`` missing parameter); the docs give no WebSocket-API-specific
table, so the REST codes are used with ``status`` 400 (401 for the key).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.simulator.payloads import Payload
from gateway.simulator.userdata import signature_valid

MAX_ACTIVE_SUBSCRIPTIONS = 1_000
MAX_LIFETIME_SUBSCRIPTIONS = 65_535
DEFAULT_RECV_WINDOW_MS = 5_000


class WsApiError(Exception):
    """A refused request: HTTP-like ``status`` plus Binance's ``code`` and ``msg``."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


@dataclass(slots=True)
class WsApiSession:
    """One WebSocket API connection: its subscriptions (id -> API key)."""

    api_keys: Mapping[str, str]
    subscriptions: dict[int, str] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _created: int = 0

    def handle(self, text: str, now_ms: int) -> Payload:
        """Answer one request frame."""
        request_id: Any = None
        try:
            request = orjson.loads(text)
            if not isinstance(request, dict):
                raise WsApiError(400, -1100, "Illegal characters found in a parameter.")
            request_id = request.get("id")
            result = self._dispatch(request.get("method"), request.get("params") or {}, now_ms)
        except orjson.JSONDecodeError:
            return _error(None, WsApiError(400, -1100, "Illegal characters found in a parameter."))
        except WsApiError as error:
            return _error(request_id, error)
        return {"id": request_id, "status": 200, "result": result}

    def _dispatch(self, method: object, params: Any, now_ms: int) -> object:
        if not isinstance(params, dict):
            raise WsApiError(400, -1100, "Illegal characters found in parameter 'params'.")
        if method == "userDataStream.subscribe.signature":
            return {"subscriptionId": self._subscribe_signed(params, now_ms)}
        if method == "userDataStream.subscribe":
            raise WsApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        if method == "userDataStream.unsubscribe":
            self._unsubscribe(params.get("subscriptionId"))
            return {}
        if method == "session.subscriptions":
            return [{"subscriptionId": sid} for sid in self.subscriptions]
        raise WsApiError(400, -1102, f"Unknown method {str(method)[:60]!r}.")

    def _subscribe_signed(self, params: dict[str, Any], now_ms: int) -> int:
        for name in ("apiKey", "timestamp", "signature"):
            if name not in params:
                raise WsApiError(
                    400,
                    -1102,
                    f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
                )
        secret = self.api_keys.get(str(params["apiKey"]))
        if secret is None:
            raise WsApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        if not signature_valid(secret, params):
            raise WsApiError(400, -1022, "Signature for this request is not valid.")
        window = int(params.get("recvWindow", DEFAULT_RECV_WINDOW_MS))
        timestamp = int(params["timestamp"])
        if not (now_ms - window <= timestamp <= now_ms + 1_000):
            raise WsApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        if str(params["apiKey"]) in self.subscriptions.values():
            raise WsApiError(400, -1100, "This account is already subscribed on this session.")
        if len(self.subscriptions) >= MAX_ACTIVE_SUBSCRIPTIONS or (
            self._created >= MAX_LIFETIME_SUBSCRIPTIONS
        ):
            raise WsApiError(400, -1015, "Too many subscriptions on this session.")
        subscription_id = next(self._ids)
        self._created += 1
        self.subscriptions[subscription_id] = str(params["apiKey"])
        return subscription_id

    def _unsubscribe(self, subscription_id: object) -> None:
        if subscription_id is None:
            self.subscriptions.clear()
        elif isinstance(subscription_id, int) and subscription_id in self.subscriptions:
            del self.subscriptions[subscription_id]
        else:
            raise WsApiError(400, -1100, "Invalid subscriptionId.")

    def subscriptions_of(self, api_key: str) -> list[int]:
        """This session's subscription ids for ``api_key``'s account."""
        return [sid for sid, key in self.subscriptions.items() if key == api_key]


def _error(request_id: object, error: WsApiError) -> Payload:
    return {
        "id": request_id,
        "status": error.status,
        "error": {"code": error.code, "msg": error.msg},
    }
