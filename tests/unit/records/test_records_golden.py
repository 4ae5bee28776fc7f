"""Records are byte-identical to the ones the gateway wrote before issue 16's codec work.

``golden_records.json`` holds, for every official Binance payload (and every market that sends
it), the Kafka records the gateway built before decimals were parsed straight to scaled integers
and events became plain slotted classes: topic, key, value bytes, headers and timestamps. It was
written by this module's ``__main__`` from the code at the commit that added it, and must never be
regenerated to make a test pass: a difference is a change consumers would see.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.binance.markets import Market
from gateway.records.avro import ConfluentFraming, SchemaCatalog, SingleObjectFraming
from gateway.records.builder import RecordBuilder
from gateway.records.topics import TopicNamer
from tests.unit.records.test_records_vectors import CASES, market_cases
from tests.vectors import vector

GOLDEN = Path(__file__).with_name("golden_records.json")
RECEIVED_AT_US = 1_700_000_000_000_123
CATALOG = SchemaCatalog.load()


def builders() -> dict[str, RecordBuilder]:
    ids = {schema.key: 1000 + index for index, schema in enumerate(CATALOG)}
    return {
        "single_object": RecordBuilder(CATALOG, SingleObjectFraming(), TopicNamer(), "gw-1"),
        "confluent": RecordBuilder(CATALOG, ConfluentFraming(ids), TopicNamer("p"), "gw-2"),
    }


def records_of(name: str, market: Any) -> dict[str, list[dict[str, Any]]]:
    """Every record one vector becomes, under both framings, in a JSON-friendly form."""
    from gateway.binance.messages import FrameParser

    frame = orjson.dumps(vector(name))
    events = FrameParser(market).parse(frame, RECEIVED_AT_US, stream=CASES[name].stream)
    result = {}
    for framing, builder in builders().items():
        result[framing] = [
            {
                "topic": r.topic,
                "key": None if r.key is None else r.key.hex(),
                "value": r.value.hex(),
                "headers": [[n, v.hex()] for n, v in r.headers],
                "timestamp_ms": r.timestamp_ms,
                "event_time_ms": r.event_time_ms,
            }
            for r in (builder.build(event) for event in events)  # type: ignore[arg-type]
        ]
    return result


def case_id(name: str, market: Any) -> str:
    return f"{name}@{market.value}"


GOLDEN_RECORDS: dict[str, Any] = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}


def test_every_vector_has_golden_records() -> None:
    assert sorted(GOLDEN_RECORDS) == sorted(case_id(n, m) for n, m in market_cases())


@pytest.mark.parametrize(("name", "market"), list(market_cases()), ids=str)
def test_records_are_byte_identical_to_the_golden_ones(name: str, market: Market) -> None:
    assert records_of(name, market) == GOLDEN_RECORDS[case_id(name, market)]


if __name__ == "__main__":
    GOLDEN.write_text(
        json.dumps({case_id(n, m): records_of(n, m) for n, m in market_cases()}, indent=1) + "\n"
    )
