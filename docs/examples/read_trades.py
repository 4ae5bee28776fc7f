"""Print every BTCUSDT trade the gateway wrote, with exact prices.

    .venv/bin/python docs/examples/read_trades.py --bootstrap 127.0.0.1:9092 \
        --registry http://127.0.0.1:8081/apis/ccompat/v7 --symbol BTCUSDT --limit 10
"""

from __future__ import annotations

import argparse
import asyncio

from gateway.consumers.reader import RecordReader


async def main(bootstrap: str, registry: str | None, topic: str, symbol: str, limit: int) -> None:
    async with RecordReader([topic], bootstrap_servers=bootstrap, registry_url=registry) as reader:
        seen = 0
        async for record in reader.records(idle_timeout_s=10):
            if record.key != symbol:
                continue
            trade = record.value
            # price and quantity are decimal.Decimal: exact, never float.
            print(
                f"{trade['trade_time_us']:%H:%M:%S.%f} {symbol} #{trade['trade_id']} "
                f"{trade['quantity'].normalize():f} @ {trade['price'].normalize():f}"
            )
            seen += 1
            if seen >= limit:
                return


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--registry", default="http://127.0.0.1:8081/apis/ccompat/v7")
    parser.add_argument("--topic", default="binance.spot.trade")
    parser.add_argument("--symbol", default="BTCUSDT")
    parser.add_argument("--limit", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.bootstrap, args.registry, args.topic, args.symbol, args.limit))
