"""The checks the fault tests share: for every record kind, each event is delivered exactly once,
recovered from REST, or lies inside a window declared on the status topic.

Trades and aggregate trades are checked against the simulator's history (every id once); depth
diffs by the book's resync; klines against the exchange's candles (each that closed inside a
declared window recovered, each open time closed once); every other kind by its own records: a
pause longer than the stream's cadence must lie inside a declared ``gap`` window of that stream.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import aiohttp

from gateway.consumers.reader import ConsumedRecord

Value = dict[str, Any]
MARKET_GROUPS = frozenset({"spot", "usdm", "coinm"})


def us(value: datetime | None) -> int | None:
    """A decoded timestamp-micros as epoch microseconds."""
    return None if value is None else round(value.timestamp() * 1_000_000)


def by_group_and_kind(records: Iterable[ConsumedRecord]) -> dict[tuple[str, str], list[Value]]:
    """Record values by (topic group, kind) in Kafka's order per partition: ``<prefix>.spot.kline``
    → ``("spot", "kline")``, ``<prefix>.stream_status`` → ``("", "stream_status")``; each value
    gets its key as ``_key``."""
    grouped: dict[tuple[str, str], list[Value]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        *head, kind = record.topic.split(".")
        group = head[-1] if head and head[-1] in MARKET_GROUPS else ""
        grouped[(group, kind)].append({**record.value, "_key": record.key})
    return grouped


def assert_ids_exactly_once(
    values: Sequence[Value], id_field: str, truth: Mapping[str, Sequence[int]]
) -> None:
    """Every id the exchange made, per symbol, exactly once (live or backfilled), nothing else."""
    for symbol, sent in truth.items():
        got = sorted(v[id_field] for v in values if v["_key"] == symbol)
        missing = sorted(set(sent) - set(got))[:5]
        assert got == list(sent), (symbol, id_field, len(got), len(sent), missing)


def assert_resynced(book_snapshots: Sequence[Value], symbols: Iterable[str]) -> None:
    """Depth diffs lost in a hole are recovered by a resync: a ``gap`` snapshot per symbol."""
    for symbol in symbols:
        reasons = [v["reason"] for v in book_snapshots if v["_key"] == symbol]
        assert "gap" in reasons, (symbol, reasons)


Window = tuple[int | None, int | None]


def gap_windows(status: Sequence[Value], market: str) -> dict[str, list[Window]]:
    """The ``gap`` windows declared per stream of ``market`` (start, end; start None: the
    previous owner's last record, end None: open)."""
    windows: dict[str, list[Window]] = defaultdict(list)
    for value in status:
        if value["status"] == "gap" and value["market"] == market:
            start = us(value["window_start_us"])
            assert start is not None or value["reason"] == "taken_over", value
            windows[value["stream"]].append((start, us(value["window_end_us"])))
    return windows


def assert_pauses_declared(
    stream: str,
    values: Sequence[Value],
    windows: Sequence[Window],
    pause_us: int,
    *,
    late_us: int | None = None,
    min_records: int = 5,
) -> int:
    """Each pause of ``stream`` longer than ``pause_us`` lies inside a declared window, and no
    event came twice. Returns how many such pauses there were.

    Times are Binance's event time where the kind has one. Kinds Binance sends without one
    (spot book tickers, partial books) are dated on receipt, and frames that waited behind a
    stalled sink carry late receive times: a pause in receive time is then the wait, the frames
    after it were sent before the hole, and the hole's window starts after them; so it has to
    start within the pause or within ``late_us`` (default: one pause) after it, the time the
    reader took to catch up with what waited.
    """
    dated = values[0].get("event_time_us") is not None if values else True
    field = "event_time_us" if dated else "received_at_us"
    times = sorted(us(v[field]) or 0 for v in values)
    assert len(times) > min_records, (stream, len(times))
    # The same event twice would share its time and ids (a kline's close and the next candle's
    # first update share an event time, not an open time).
    keys = [
        (v[field], v.get("open_time_us"), v.get("update_id", v.get("last_update_id")))
        for v in values
    ]
    assert len(set(keys)) == len(keys), f"{stream}: a record twice"
    pauses = 0
    for before, after in itertools.pairwise(times):
        if after - before <= pause_us:
            continue
        pauses += 1
        if dated:
            # A window with no start (``taken_over``) runs from the previous owner's last record,
            # the one before its end.
            covered = any(
                e == after if s is None else s <= before and (e is None or e >= after)
                for s, e in windows
            )
        else:
            late = pause_us if late_us is None else late_us
            covered = any(s is not None and before <= s <= after + late for s, _ in windows)
        assert covered, f"{stream}: silence {before}..{after} not declared in {windows}"
    return pauses


Candle = tuple[int, int]  # (open, close) epoch microseconds


async def exchange_candles(rest_url: str, path: str, params: Mapping[str, str]) -> list[Candle]:
    """The exchange's 1m candles of one series, from its own REST ``klines`` (the oracle: the
    simulator serves the candles its streams render)."""
    query = {**params, "interval": "1m", "startTime": "0", "limit": "1000"}
    async with aiohttp.ClientSession() as http, http.get(rest_url + path, params=query) as response:
        assert response.status == 200, await response.text()
        rows = await response.json()
    return [(row[0] * 1_000, row[6] * 1_000) for row in rows]


def assert_klines_recovered(
    stream: str,
    market: str,
    values: Sequence[Value],
    status: Sequence[Value],
    candles: Sequence[Candle],
) -> int:
    """Each candle of the exchange that closed inside a bounded ``gap`` window of ``stream`` is in
    Kafka closed (recovered from REST: its closing event was in the hole), every open time is
    closed at most once, and those windows say ``recovered``. Returns how many were recovered."""
    closed = Counter(us(v["open_time_us"]) or 0 for v in values if v["closed"])
    twice = sorted(t for t, n in closed.items() if n > 1)
    assert not twice, f"{stream}: candles closed twice: {twice[:5]}"
    recovered = 0
    for value in status:
        if value["status"] != "gap" or value["market"] != market or value["stream"] != stream:
            continue
        start, end = us(value["window_start_us"]), us(value["window_end_us"])
        if start is None or end is None:
            continue  # a window this worker could not bound is declared, not recovered
        assert value["recovered"] is True, value
        for open_us, close_us in candles:
            if start < close_us < end:
                assert closed[open_us] == 1, f"{stream}: candle {open_us} lost in {start}..{end}"
                recovered += 1
    return recovered
