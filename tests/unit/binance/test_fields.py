"""The field reader: ``extra`` is exactly what a parser did not read, whichever object came first.

Each reader learns its keys from the first object its parser reads through it, so the proof that
matters is that the first object does not matter: every official vector, parsed first by readers
that know nothing yet, gives the golden records byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from gateway.binance.events.base import Context, Fields, Payload, integer, optional, text
from gateway.binance.events.trades import Trade
from gateway.binance.markets import Market
from gateway.binance.messages import FrameParser
from gateway.errors import MessageParseError
from tests.unit.records.test_records_golden import GOLDEN_RECORDS, case_id, records_of
from tests.unit.records.test_records_vectors import market_cases
from tests.vectors import vector

CTX = Context(market="spot", to_us=1000, received_at_us=1)


@pytest.fixture
def unlearned() -> Iterator[None]:
    """Every parser's reader starts knowing nothing, as in a fresh process."""
    for fields in Fields.every:
        fields.forget()
    yield
    for fields in Fields.every:
        fields.forget()


def _read(fields: Fields, payload: Payload) -> tuple[str, int | None, dict[str, str]]:
    view = fields.view(payload)
    return text(view["s"], "s"), optional(view, "n", integer), fields.unread(view)


def test_the_keys_asked_for_are_known_even_when_absent() -> None:
    fields = Fields()
    assert fields.known is None
    assert _read(fields, {"e": "x", "s": "A"}) == ("A", None, {})
    # "n" was asked for though absent, and "e" is the dispatcher's: neither is unknown later.
    assert fields.known == frozenset({"e", "s", "n"})
    assert _read(fields, {"e": "x", "s": "B", "n": 2, "new": [1]}) == ("B", 2, {"new": "[1]"})


def test_nested_objects_carry_their_path_and_ignored_keys_are_kept_apart() -> None:
    fields = Fields("k", ignored=["B"])
    view = fields.view_in({"e": "kline", "k": {"s": "A", "B": "0", "e": 1}})
    text(view["s"], "s")
    assert fields.ignored(view) == {"k.B": '"0"'}
    # A nested object is no event: its "e" is unknown.
    assert fields.unread(view) == {"k.e": "1"}
    assert fields.known == frozenset({"s", "B"})
    with pytest.raises(ValueError, match="k must be an object"):
        fields.view_in({"k": [1]})
    with pytest.raises(KeyError):
        fields.view_in({})
    assert Fields("ac", optional=True).view_in({}) == {}


def test_a_parser_that_fails_teaches_nothing(unlearned: None) -> None:
    parser = FrameParser(Market.SPOT)
    trade = vector("spot/trade.json")
    with pytest.raises(MessageParseError):
        parser.parse(orjson.dumps({**trade, "q": None, "new": 1}), received_at_us=1)
    [event] = parser.parse(orjson.dumps({**trade, "new": 1}), received_at_us=1)
    assert isinstance(event, Trade)
    assert event.extra == {"new": "1"}


def test_reading_around_the_view_is_a_bug() -> None:
    with pytest.raises(AssertionError):
        Fields().unread({"s": "A"})


CASES = list(market_cases())


@pytest.mark.parametrize(("name", "market"), CASES, ids=str)
def test_any_vector_first_teaches_the_same_keys(name: str, market: Market, unlearned: None) -> None:
    assert records_of(name, market) == GOLDEN_RECORDS[case_id(name, market)]
    # Every other vector, read through the readers this one taught, gives its golden records.
    for other, other_market in CASES:
        assert records_of(other, other_market) == GOLDEN_RECORDS[case_id(other, other_market)]
