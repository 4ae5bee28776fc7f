"""Spot user data over the WebSocket API, pure: signed subscriptions and their replies.

Spot listen keys were switched off on 2026-02-20 (docs/binance.md §6.1). Account events now come through
``wss://ws-api.binance.com/ws-api/v3``: ``userDataStream.subscribe.signature`` (no logon, any key
type, signed like a REST request) subscribes one account and answers ``{"subscriptionId": n}``;
events then arrive as ``{"subscriptionId": n, "event": {...}}``; ``eventStreamTerminated`` ends
a subscription (unsubscribe, logout, or Binance's decision) and the gateway subscribes again.
One connection may carry up to 1,000 subscriptions, one per account.

:class:`UserDataSession` tracks the subscriptions of one connection: which account waits for
which request, which subscription id belongs to whom, which must be (re)subscribed. The shell
sends what :meth:`UserDataSession.requests_to_send` returns and feeds back replies and events.
Request texts carry the API key, so they are for the socket only: never log them.
"""

from __future__ import annotations

import enum
import itertools
import logging
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.binance.signing import Signer, signed_params
from gateway.errors import MessageParseError

logger = logging.getLogger(__name__)

SUBSCRIBE_METHOD = "userDataStream.subscribe.signature"
UNSUBSCRIBE_METHOD = "userDataStream.unsubscribe"
REQUEST_WEIGHT = 2
MAX_SUBSCRIPTIONS_PER_SESSION = 1_000
AUTH_ERROR_CODES = frozenset({-2014, -2015, -1022})
"""Bad API key format, unknown key / IP / permission, bad signature: retrying will not help
until someone fixes the key, so the shell backs off for long and says so loudly."""


class SubscriptionState(enum.Enum):
    IDLE = "idle"  # needs a subscribe request
    SUBSCRIBING = "subscribing"
    SUBSCRIBED = "subscribed"
    REJECTED = "rejected"  # Binance refused; waits for retry()


@dataclass(frozen=True, slots=True)
class WsApiReply:
    """A reply to one request: ``status`` 200 with ``result``, or an ``error``."""

    request_id: object
    status: int
    result: object
    error_code: int | None = None
    error_msg: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error_code is None


@dataclass(frozen=True, slots=True)
class SubscriptionChange:
    """What a reply did to an account's subscription (for logs, metrics and health)."""

    alias: str
    state: SubscriptionState
    subscription_id: int | None = None
    error_code: int | None = None
    error_msg: str | None = None

    @property
    def auth_failure(self) -> bool:
        return self.error_code in AUTH_ERROR_CODES


def parse_reply(raw: bytes | str) -> WsApiReply | None:
    """The reply in ``raw``, or ``None`` when ``raw`` is an event (hand it to the FrameParser)."""
    try:
        frame: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        text = raw.encode() if isinstance(raw, str) else raw
        raise MessageParseError("WebSocket API frame is not JSON", payload=text) from exc
    if not isinstance(frame, dict) or "status" not in frame or "id" not in frame:
        return None
    error = frame.get("error")
    if isinstance(error, dict):
        code, msg = error.get("code"), error.get("msg")
        return WsApiReply(
            frame["id"],
            int(frame["status"]),
            None,
            code if isinstance(code, int) else -1,
            str(msg) if msg is not None else "",
        )
    return WsApiReply(frame["id"], int(frame["status"]), frame.get("result"))


@dataclass(slots=True)
class _Account:
    alias: str
    api_key: str
    signer: Signer
    state: SubscriptionState = SubscriptionState.IDLE
    subscription_id: int | None = None


class UserDataSession:
    """The user-data subscriptions of one WebSocket API connection."""

    def __init__(self, *, recv_window_ms: int | None = None) -> None:
        self._accounts: dict[str, _Account] = {}
        self._pending: dict[int, str] = {}  # request id -> alias
        self._ids = itertools.count(1)
        self._recv_window_ms = recv_window_ms

    def add_account(self, alias: str, api_key: str, signer: Signer) -> None:
        """Subscribe ``alias``'s account on this connection (at the next requests_to_send)."""
        if len(self._accounts) >= MAX_SUBSCRIPTIONS_PER_SESSION:
            raise ValueError("a WebSocket API session carries at most 1,000 subscriptions")
        self._accounts[alias] = _Account(alias, api_key, signer)

    def state(self, alias: str) -> SubscriptionState:
        return self._accounts[alias].state

    def subscription_id(self, alias: str) -> int | None:
        return self._accounts[alias].subscription_id

    def alias_of(self, subscription_id: int | None) -> str | None:
        """The account a subscription id belongs to (the only one when ``None`` and alone)."""
        if subscription_id is None:
            return next(iter(self._accounts)) if len(self._accounts) == 1 else None
        for account in self._accounts.values():
            if account.subscription_id == subscription_id:
                return account.alias
        return None

    def connection_opened(self) -> None:
        """A new connection: every subscription is gone and must be made again."""
        self._pending.clear()
        for account in self._accounts.values():
            if account.state is not SubscriptionState.REJECTED:
                account.state = SubscriptionState.IDLE
            account.subscription_id = None

    def requests_to_send(self, now_ms: int) -> list[str]:
        """Signed subscribe requests for every account that needs one (texts hold the API key)."""
        texts = []
        for account in self._accounts.values():
            if account.state is not SubscriptionState.IDLE:
                continue
            request_id = next(self._ids)
            params = signed_params(
                account.signer,
                {"apiKey": account.api_key},
                timestamp_ms=now_ms,
                recv_window_ms=self._recv_window_ms,
            )
            request = {"id": request_id, "method": SUBSCRIBE_METHOD, "params": params}
            texts.append(orjson.dumps(request).decode())
            self._pending[request_id] = account.alias
            account.state = SubscriptionState.SUBSCRIBING
        return texts

    def unsubscribe_request(self, alias: str) -> str | None:
        """The request that ends ``alias``'s subscription, if it has one."""
        account = self._accounts[alias]
        if account.subscription_id is None:
            return None
        request = {
            "id": next(self._ids),
            "method": UNSUBSCRIBE_METHOD,
            "params": {"subscriptionId": account.subscription_id},
        }
        return orjson.dumps(request).decode()

    def receive_reply(self, reply: WsApiReply) -> SubscriptionChange | None:
        """A reply; the change it made to a subscription, or ``None`` (not a subscribe reply)."""
        request_id = reply.request_id
        alias = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
        if alias is None:
            return None
        account = self._accounts[alias]
        result = reply.result
        if reply.ok and isinstance(result, dict) and isinstance(result.get("subscriptionId"), int):
            account.state = SubscriptionState.SUBSCRIBED
            account.subscription_id = result["subscriptionId"]
            return SubscriptionChange(alias, account.state, account.subscription_id)
        account.state = SubscriptionState.REJECTED
        return SubscriptionChange(
            alias, account.state, None, reply.error_code, reply.error_msg or str(result)
        )

    def receive_terminated(self, subscription_id: int | None) -> list[str]:
        """``eventStreamTerminated``: the accounts whose subscription ended (to re-subscribe).

        Without a subscription id (the 2025-08-12 form) every subscription of the session ended.
        """
        ended = [
            account
            for account in self._accounts.values()
            if account.state is SubscriptionState.SUBSCRIBED
            and (subscription_id is None or account.subscription_id == subscription_id)
        ]
        for account in ended:
            account.state = SubscriptionState.IDLE
            account.subscription_id = None
        return [account.alias for account in ended]

    def retry(self, alias: str) -> None:
        """Try a rejected account again at the next requests_to_send (after a backoff)."""
        account = self._accounts[alias]
        if account.state is SubscriptionState.REJECTED:
            account.state = SubscriptionState.IDLE
