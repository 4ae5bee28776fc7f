"""The spot WebSocket API user-data core against the documented request and reply forms."""

import orjson
import pytest

from gateway.binance.signing import KeyType, Signer, signature_payload
from gateway.binance.user_stream import (
    SUBSCRIBE_METHOD,
    SubscriptionState,
    UserDataSession,
    WsApiReply,
    parse_reply,
)
from gateway.errors import MessageParseError
from tests.vectors import vector

SIGNER = Signer(KeyType.HMAC, b"secret")


def reply_to(payload: object) -> WsApiReply:
    """A WS-API reply frame, parsed as the session receives it."""
    reply = parse_reply(orjson.dumps(payload))
    assert reply is not None
    return reply


def session_with(*aliases: str) -> UserDataSession:
    session = UserDataSession()
    for alias in aliases:
        session.add_account(alias, f"key-{alias}", SIGNER)
    session.connection_opened()
    return session


def test_subscribe_request_has_the_documented_shape_and_a_valid_signature() -> None:
    documented = vector("spot-user/wsapi_user_stream_requests.json")[SUBSCRIBE_METHOD]["request"]
    (text,) = session_with("a").requests_to_send(1_747_385_641_636)
    request = orjson.loads(text)
    assert request["method"] == documented["method"]
    assert set(request["params"]) == set(documented["params"])
    assert request["params"]["apiKey"] == "key-a"
    assert request["params"]["signature"] == SIGNER.sign(signature_payload(request["params"]))


def test_a_documented_success_reply_subscribes_the_account() -> None:
    session = session_with("a", "b")
    texts = session.requests_to_send(1)
    assert len(texts) == 2 and session.requests_to_send(2) == []  # not sent twice
    ids = [orjson.loads(text)["id"] for text in texts]
    reply = vector("spot-user/wsapi_user_stream_requests.json")[SUBSCRIBE_METHOD]["response"]
    change = session.receive_reply(reply_to({**reply, "id": ids[1]}))
    assert change is not None and change.alias == "b" and change.subscription_id == 0
    assert session.state("b") is SubscriptionState.SUBSCRIBED
    assert session.state("a") is SubscriptionState.SUBSCRIBING
    assert session.alias_of(0) == "b" and session.alias_of(7) is None


def test_a_refused_subscription_is_rejected_until_retried() -> None:
    session = session_with("a")
    (text,) = session.requests_to_send(1)
    refusal = {
        "id": orjson.loads(text)["id"],
        "status": 400,
        "error": {"code": -1022, "msg": "Signature for this request is not valid."},
    }
    change = session.receive_reply(reply_to(refusal))
    assert change is not None and change.auth_failure and change.error_code == -1022
    assert session.requests_to_send(2) == []
    session.retry("a")
    assert len(session.requests_to_send(3)) == 1


def test_event_stream_terminated_ends_only_its_subscription() -> None:
    session = session_with("a", "b")
    for sid, text in enumerate(session.requests_to_send(1)):
        reply = {"id": orjson.loads(text)["id"], "status": 200, "result": {"subscriptionId": sid}}
        session.receive_reply(reply_to(reply))
    assert session.receive_terminated(1) == ["b"]
    assert session.state("a") is SubscriptionState.SUBSCRIBED
    assert len(session.requests_to_send(2)) == 1
    assert session.receive_terminated(None) == ["a"]  # the 2025-08-12 form: all of them


def test_events_are_not_replies_and_garbage_is_a_parse_error() -> None:
    assert parse_reply(orjson.dumps(vector("spot-user/eventStreamTerminated.json"))) is None
    assert parse_reply(b'{"id":1,"result":null}') is None  # a stream control reply
    with pytest.raises(MessageParseError):
        parse_reply(b"not json")


def test_unsubscribe_names_the_subscription() -> None:
    session = session_with("a")
    assert session.unsubscribe_request("a") is None
    (text,) = session.requests_to_send(1)
    reply = {"id": orjson.loads(text)["id"], "status": 200, "result": {"subscriptionId": 4}}
    session.receive_reply(reply_to(reply))
    request = orjson.loads(session.unsubscribe_request("a") or "")
    assert request["method"] == "userDataStream.unsubscribe"
    assert request["params"] == {"subscriptionId": 4}
