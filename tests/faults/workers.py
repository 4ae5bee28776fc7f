"""Scale-out test helpers: Kafka's trades by symbol, read until they match the ground truth."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from gateway.consumers.reader import RecordReader

ID_FIELD = {"trade": "trade_id", "agg_trade": "agg_trade_id"}
Key = tuple[str, str, str]  # (market, kind, symbol)


async def trades_in_kafka(
    topics: list[str],
    prefix: str,
    bootstrap: str,
    truth: Mapping[Key, list[int]],
    *,
    partial: frozenset[str] = frozenset(),
    idle_timeout_s: float = 20.0,
) -> dict[Key, list[int]]:
    """(market, kind, symbol) → ids in Kafka's order, read until every key holds at least its
    ground truth's ids (``partial`` symbols excepted), then ``settle`` more, or until Kafka has
    been quiet for ``idle_timeout_s``."""
    ids: dict[Key, list[int]] = defaultdict(list)
    missing = {key: set(sent) for key, sent in truth.items() if key[2] not in partial}
    async with RecordReader(topics, bootstrap_servers=bootstrap) as reader:
        async for record in reader.records(idle_timeout_s):
            market, kind = record.topic.removeprefix(prefix + ".").split(".")
            assert record.key is not None
            key = (market, kind, record.key)
            ids[key].append(record.value[ID_FIELD[kind]])
            if key in missing:
                missing[key].discard(ids[key][-1])
                if not missing[key]:
                    del missing[key]
            if not missing:
                break
        # Anything still arriving (a duplicate would) shows up within a moment.
        async for record in reader.records(idle_timeout_s=2.0):
            market, kind = record.topic.removeprefix(prefix + ".").split(".")
            assert record.key is not None
            ids[(market, kind, record.key)].append(record.value[ID_FIELD[kind]])
    return ids
