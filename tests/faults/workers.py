"""Scale-out test helpers: the workers' shared configuration, and Kafka's trades by symbol."""

from __future__ import annotations

from collections import defaultdict

from gateway.consumer import read_all

ID_FIELD = {"trade": "trade_id", "agg_trade": "agg_trade_id"}


async def trades_in_kafka(
    topics: list[str], prefix: str, bootstrap: str, expected: int, timeout_s: float = 120.0
) -> dict[tuple[str, str, str], list[int]]:
    """(market, kind, symbol) → ids in Kafka's order, reading until ``expected`` arrived."""
    records = await read_all(
        topics, bootstrap_servers=bootstrap, expected=expected, timeout_s=timeout_s, settle_s=2.0
    )
    ids: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        market, kind = record.topic.removeprefix(prefix + ".").split(".")
        assert record.key is not None
        ids[(market, kind, record.key)].append(record.value[ID_FIELD[kind]])
    return ids
