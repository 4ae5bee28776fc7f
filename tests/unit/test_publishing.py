"""One publish step for both paths: market frames and an account's frames are built on their
topic, their unknown fields counted and logged once, and what cannot be parsed or encoded is
dead-lettered and counted, with the same bookkeeping (:class:`gateway.runtime.publishing.PublishStep`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
import pytest

from gateway.accounts.output import AccountOutput
from gateway.accounts.settings import AccountSettings
from gateway.binance.markets import Market
from gateway.binance.messages import FrameParser
from gateway.errors import MessageParseError
from gateway.metrics import Metrics
from gateway.records.avro import SchemaCatalog, SingleObjectFraming, decode, read_header
from gateway.records.builder import RecordBuilder
from gateway.records.topics import ProducerRecord, TopicNamer
from gateway.runtime.pipeline import FramePipeline
from tests.vectors import vector

CATALOG = SchemaCatalog.load()


class RecordingSink:
    def __init__(self) -> None:
        self.records: list[ProducerRecord] = []

    async def send(self, record: ProducerRecord, received_ns: int | None = None) -> None:
        self.records.append(record)


@dataclass
class Path:
    feed: Callable[[bytes], Awaitable[None]]
    sink: RecordingSink
    metrics: Metrics
    event: dict[str, object]  # a well-formed frame of this path
    kind: str
    topic: str  # where its records go
    dead_letter_topic: str
    key: bytes | None  # the key of its dead letters


def builder() -> RecordBuilder:
    return RecordBuilder(CATALOG, SingleObjectFraming(), TopicNamer("p"), "gw")


def market_path() -> Path:
    sink, metrics = RecordingSink(), Metrics()
    pipeline = FramePipeline(
        FrameParser(Market.SPOT), builder(), sink, metrics, connection="spot-0"
    )

    trade = vector("spot/trade.json")

    async def feed(raw: bytes) -> None:
        # Received when Binance sent it: the market path dead-letters far-off event times.
        await pipeline(raw, trade["E"] * 1000, 0)

    return Path(feed, sink, metrics, trade, "trade", "p.spot.trade", "p.dead_letter", None)


def account_path(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DESK_KEY", "k3y")
    monkeypatch.setenv("DESK_SECRET", "s3cret")
    account = AccountSettings(
        alias="desk-a", market="spot", api_key_env="DESK_KEY", secret_env="DESK_SECRET"
    )
    sink, metrics = RecordingSink(), Metrics()
    output = AccountOutput(account, builder(), sink, metrics, TopicNamer("p"))
    parser = FrameParser(Market.SPOT)

    async def feed(raw: bytes) -> None:  # what a session does with each frame
        try:
            events = parser.parse(raw, 1)
        except MessageParseError as error:
            await output.dead_letter(error, raw, 1)
            return
        async for _ in output.published(events, raw):
            pass

    balance = vector("spot-user/balanceUpdate.json")["event"]
    topic = "p.spot.account.desk-a"
    return Path(feed, sink, metrics, balance, "balance_update", topic, topic, b"desk-a")


@pytest.fixture(params=["market", "account"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Path:
    return market_path() if request.param == "market" else account_path(monkeypatch)


def decoded(record: ProducerRecord) -> dict[str, object]:
    header = read_header(record.value)
    assert header.fingerprint is not None
    writer = CATALOG.by_fingerprint(header.fingerprint)
    assert writer is not None
    return decode(record.value, header, writer)


async def test_unknown_fields_are_kept_counted_and_logged_once(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    frame = orjson.dumps(path.event | {"Zz": 1})
    with caplog.at_level(logging.WARNING):
        await path.feed(frame)
        await path.feed(frame)
    first, second = path.sink.records
    assert first.topic == second.topic == path.topic  # born there, not re-addressed
    assert decoded(first)["extra"] == {"Zz": "1"}
    assert path.metrics.unknown_fields.labels("spot", path.kind, "Zz").get() == 2
    assert sum("'Zz'" in r.getMessage() for r in caplog.records) == 1


async def test_an_event_its_schema_rejects_is_dead_lettered_at_encode(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    decimal = "d" if path.kind == "balance_update" else "p"
    frame = orjson.dumps(path.event | {decimal: "0.0000000000000000001"})
    with caplog.at_level(logging.WARNING):
        await path.feed(frame)
        await path.feed(orjson.dumps(path.event))  # and the stream goes on
    dead, good = path.sink.records
    assert (dead.topic, good.topic) == (path.dead_letter_topic, path.topic)
    assert decoded(dead)["stage"] == "encode" and decoded(dead)["raw"] == frame
    assert path.metrics.dead_letters.labels("spot", "encode").get() == 1
    assert any("dead-lettered a frame" in r.getMessage() for r in caplog.records)


async def test_a_frame_that_does_not_parse_is_dead_lettered(path: Path) -> None:
    await path.feed(b"{oops")
    [dead] = path.sink.records
    assert (dead.topic, dead.key) == (path.dead_letter_topic, path.key)
    assert decoded(dead)["stage"] == "parse" and decoded(dead)["raw"] == b"{oops"
    assert path.metrics.dead_letters.labels("spot", "parse").get() == 1
