"""Control-message replies and errors, against the documented examples in control_messages.json."""

from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from gateway.simulator.control import ConnectionView, ControlOutcome, answer
from gateway.simulator.markets import MAX_STREAMS_PER_CONNECTION
from tests.vectors import vector

DOCS = vector("spot/control_messages.json")
ERRORS = DOCS["errors"]
KNOWN = {"btcusdt@aggTrade", "btcusdt@depth", "btcusdt@trade"}


def view(
    subscriptions: Sequence[str] = (), *, combined: bool = False, wrap_errors: bool = False
) -> ConnectionView:
    return ConnectionView(
        subscriptions=list(subscriptions),
        combined=combined,
        accepts_stream=KNOWN.__contains__,
        wrap_errors=wrap_errors,
    )


def ask(message: str | dict[str, Any], state: ConnectionView | None = None) -> ControlOutcome:
    text = message if isinstance(message, str) else orjson.dumps(message).decode()
    return answer(text, state or view())


def documented_error(row: int, *values: object) -> Any:
    """The docs' error row ``row`` with its ``%s`` placeholders filled in order."""
    text = orjson.dumps(ERRORS[row]).decode()
    for value in values:
        text = text.replace("%s", str(value), 1)
    return orjson.loads(text)


def test_subscribe_as_documented() -> None:
    example = DOCS["SUBSCRIBE"]
    outcome = ask(example["request"])
    assert outcome.reply == example["response"]
    assert outcome.subscribe == ("btcusdt@aggTrade", "btcusdt@depth")


def test_unsubscribe_as_documented() -> None:
    example = DOCS["UNSUBSCRIBE"]
    outcome = ask(example["request"], view(["btcusdt@aggTrade", "btcusdt@depth"]))
    assert outcome.reply == example["response"]
    assert outcome.unsubscribe == ("btcusdt@depth",)


def test_list_subscriptions_as_documented() -> None:
    example = DOCS["LIST_SUBSCRIPTIONS"]
    assert ask(example["request"], view(["btcusdt@aggTrade"])).reply == example["response"]


def test_set_property_as_documented() -> None:
    example = DOCS["SET_PROPERTY"]
    outcome = ask(example["request"])
    assert outcome.reply == example["response"]
    assert outcome.combined is True


def test_get_property_as_documented() -> None:
    example = DOCS["GET_PROPERTY"]
    assert ask(example["request"], view(combined=True)).reply == example["response"]
    assert ask(example["request"], view(combined=False)).reply == {"result": False, "id": 2}


def test_subscribing_again_to_a_held_stream_adds_nothing() -> None:
    outcome = ask(
        {"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1}, view(["btcusdt@trade"])
    )
    assert outcome.reply == {"result": None, "id": 1}
    assert outcome.subscribe == ()


def test_unknown_property_shows_the_id() -> None:
    outcome = ask({"method": "GET_PROPERTY", "params": ["colour"], "id": 9})
    assert (
        outcome.reply == {**ERRORS[0], "id": 9} == {"code": 0, "msg": "Unknown property", "id": 9}
    )


def test_a_non_boolean_combined_value() -> None:
    outcome = ask({"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 1})
    assert outcome.reply == documented_error(1)
    assert outcome.combined is None


def test_a_property_name_that_is_not_a_string() -> None:
    assert ask({"method": "GET_PROPERTY", "params": [1], "id": 1}).reply == documented_error(2)


@pytest.mark.parametrize(
    "request_id",
    [
        "1.5",
        "-9223372036854775809",
        "9223372036854775808",
        "true",
        '"has space"',
        '"' + "x" * 37 + '"',
        '{"a":1}',
    ],
)
def test_invalid_request_ids(request_id: str) -> None:
    text = '{"method":"LIST_SUBSCRIPTIONS","id":' + request_id + "}"
    assert ask(text).reply == documented_error(3)


@pytest.mark.parametrize("request_id", [None, 0, -5, 2**63 - 1, "abc123", "A" * 36])
def test_valid_request_ids_are_echoed(request_id: object) -> None:
    assert ask({"method": "LIST_SUBSCRIPTIONS", "id": request_id}).reply == {
        "result": [],
        "id": request_id,
    }


def test_an_unknown_method_names_it_and_its_position() -> None:
    text = '{"method":"SUBSCRIBEE","params":[],"id":1}'
    # serde reports the position of the method string's closing quote.
    column = text.index('",') + 1
    expected = (
        ERRORS[4]["msg"].replace("%s", "`SUBSCRIBEE`").replace("column 28", f"column {column}")
    )
    assert ask(text).reply == {"code": 2, "msg": expected}


def test_too_many_parameters() -> None:
    assert ask(
        {"method": "GET_PROPERTY", "params": ["combined", True], "id": 1}
    ).reply == documented_error(5)
    assert ask(
        {"method": "SET_PROPERTY", "params": ["combined", True, 1], "id": 1}
    ).reply == documented_error(5)
    assert ask(
        {"method": "LIST_SUBSCRIPTIONS", "params": ["x"], "id": 1}
    ).reply == documented_error(5)


def test_a_missing_method_points_at_the_end_of_the_object() -> None:
    text = '{"params":["btcusdt@trade"],"id":1}'
    expected = ERRORS[6]["msg"].replace("column 73", f"column {len(text)}")
    assert ask(text).reply == {"code": 2, "msg": expected}


def test_invalid_json_reports_line_and_column() -> None:
    assert ask('{"method": SUBSCRIBE}').reply == documented_error(7, 1, 12)
    assert ask("\n\n  nope").reply == documented_error(7, 3, 3)


def test_an_invalid_stream_is_refused_and_nothing_is_subscribed() -> None:
    outcome = ask({"method": "SUBSCRIBE", "params": ["btcusdt@trade", "nope"], "id": 4})
    assert outcome.reply == {"code": 2, "msg": "Invalid request: invalid stream"}
    assert outcome.subscribe == ()


def test_errors_can_be_wrapped_as_the_live_server_sends_them() -> None:
    outcome = ask({"method": "GET_PROPERTY", "params": [1], "id": 7}, view(wrap_errors=True))
    assert outcome.reply == {
        "error": {"code": 2, "msg": "Invalid request: property name must be a string"},
        "id": 7,
    }


def test_going_over_the_stream_cap_closes_the_connection() -> None:
    held = [f"s{i}@trade" for i in range(MAX_STREAMS_PER_CONNECTION)]
    state = ConnectionView(subscriptions=held, combined=False, accepts_stream=lambda name: True)
    outcome = answer(
        orjson.dumps({"method": "SUBSCRIBE", "params": ["x@trade"], "id": 1}).decode(), state
    )
    assert outcome.reply is None
    assert outcome.close_reason == "Too many streams: 1025 > 1024"
