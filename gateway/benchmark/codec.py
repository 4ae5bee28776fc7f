"""CPU time per event of the codec hot path, parse and record build apart, no I/O.

``python -m gateway.benchmark.codec``: each official payload (``tests/data/binance``) of the kinds
that dominate a busy market is parsed and built into a Kafka record many times; the figure is
process CPU time per event (``time.process_time``), the best of a few rounds, so other work on a
shared machine inflates it less than wall-clock rates.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import orjson

from gateway.binance.markets import Market
from gateway.binance.messages import FrameParser, RecordEvent
from gateway.records.avro import ConfluentFraming, SchemaCatalog
from gateway.records.builder import RecordBuilder
from gateway.records.topics import TopicNamer

# Binance's official example payloads, carried with the tests (sources: tests/data/binance/README.md).
VECTORS_DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "binance"
# One payload per event kind, with the stream it comes on (None: an account event, unwrapped).
CASES: tuple[tuple[str, Market, str | None], ...] = (
    ("spot/trade.json", Market.SPOT, "btcusdt@trade"),
    ("spot/aggTrade.json", Market.SPOT, "btcusdt@aggTrade"),
    ("spot/depth_diff.json", Market.SPOT, "btcusdt@depth@100ms"),
    ("spot/depth_partial.json", Market.SPOT, "btcusdt@depth20@100ms"),
    ("spot/bookTicker.json", Market.SPOT, "btcusdt@bookTicker"),
    ("spot/kline.json", Market.SPOT, "btcusdt@kline_1m"),
    ("spot/miniTicker.json", Market.SPOT, "btcusdt@miniTicker"),
    ("spot/ticker.json", Market.SPOT, "btcusdt@ticker"),
    ("usdm/aggTrade.json", Market.USDM, "btcusdt@aggTrade"),
    ("usdm/depth_diff.json", Market.USDM, "btcusdt@depth@100ms"),
    ("usdm/markPrice.json", Market.USDM, "btcusdt@markPrice@1s"),
    ("usdm-user/ORDER_TRADE_UPDATE.json", Market.USDM, None),
    ("spot-user/executionReport.json", Market.SPOT, None),
)


def frame(name: str, stream: str | None) -> bytes:
    """The payload ``name`` as its connection delivers it (combined-stream wrapped if ``stream``)."""
    payload = orjson.loads((VECTORS_DIR / name).read_bytes())
    return orjson.dumps({"stream": stream, "data": payload} if stream else payload)


def record_builder() -> RecordBuilder:
    """A builder for every schema, registry framing with fixed ids (no registry needed)."""
    catalog = SchemaCatalog.load()
    return RecordBuilder(
        catalog, ConfluentFraming({s.key: 1 for s in catalog}), TopicNamer(), "bench"
    )


def cpu_us_per_event(events: int = 20_000, rounds: int = 5) -> list[tuple[str, float, float]]:
    """(case, parse µs, build µs) per event: the best round of ``events`` frames each."""
    builder = record_builder()
    results = []
    for name, market, stream in CASES:
        raw = frame(name, stream)
        parser = FrameParser(market)
        parse_s = build_s = float("inf")
        for _ in range(rounds):
            started = time.process_time()
            parsed: list[RecordEvent] = []
            for _ in range(events):
                parsed += parser.parse(raw, 1_700_000_000_000_000)  # type: ignore[arg-type]
            parse_s = min(parse_s, time.process_time() - started)
            started = time.process_time()
            for event in parsed:
                builder.build(event)
            build_s = min(build_s, time.process_time() - started)
        results.append((name, parse_s / events * 1e6, build_s / events * 1e6))
    return results


def main() -> None:
    lines = [f"{'payload':24} {'parse':>8} {'build':>8} {'total':>8}  (CPU µs per event)"]
    for name, parse_us, build_us in cpu_us_per_event():
        lines.append(f"{name:24} {parse_us:8.2f} {build_us:8.2f} {parse_us + build_us:8.2f}")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
