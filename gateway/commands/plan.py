"""Output of ``gateway plan``: the shard plan as a table a person reads, or JSON a script reads.

Only the plan's own figures are printed (ids, markets, counts, connections, weights): never the
settings, which may hold API keys. Without ``--offline`` exchangeInfo is fetched for every
configured market, so a ``select`` shows the symbols it would stream today.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from gateway.accounts.settings import AccountSettings
from gateway.adapters.binance_rest import BinanceRestClient
from gateway.binance.exchange_info import ListedSymbol
from gateway.binance.markets import Market
from gateway.coordination.plan import MARKET_ORDER, ShardPlan, build_plan
from gateway.settings import BinanceSettings


async def fetch_listings(settings: BinanceSettings) -> dict[Market, tuple[ListedSymbol, ...]]:
    """exchangeInfo of every configured market, one market after the other."""
    listings = {}
    for market in MARKET_ORDER:
        if market in settings.markets:
            async with BinanceRestClient(settings.rest_url(market), market) as client:
                listings[market] = await client.exchange_info()
    return listings


async def run_plan(
    settings: BinanceSettings,
    *,
    offline: bool,
    as_json: bool,
    accounts: Sequence[AccountSettings] = (),
) -> None:
    """Build the plan (following exchangeInfo unless ``offline``) and print it; each account
    is a shard of its own after the plan's (its alias and market only, never a credential)."""
    listings = None if offline else await fetch_listings(settings)
    plan = build_plan(settings, listings)
    if as_json:
        body = describe(plan, settings)
        body["accounts"] = [
            {"id": a.shard_id, "market": a.market.value, "key_type": a.key_type.value}
            for a in accounts
        ]
        print(orjson.dumps(body).decode())  # noqa: T201 - the output
    else:
        show(plan, settings, Console(soft_wrap=True), accounts)


def describe(plan: ShardPlan, settings: BinanceSettings) -> dict[str, Any]:
    """The plan as plain data: per shard its size and load, then what needs attention."""
    return {
        "fingerprint": plan.fingerprint,
        "shards": [
            {
                "id": shard.id,
                "market": shard.market.value,
                "symbols": len(shard.symbols),
                "streams": len(shard.streams),
                "connections": plan.connections(shard),
                "weight": shard.weight,
            }
            for shard in plan.shards
        ],
        "oversized": [shard.id for shard in plan.oversized()],
        "warnings": warnings(plan, settings),
    }


def warnings(plan: ShardPlan, settings: BinanceSettings) -> list[str]:
    """One line per thing to look at: selections with nothing to select from, configured
    symbols that do not trade, oversized shards."""
    lines = [
        f"{market.value}: `select` needs exchangeInfo, which was not fetched (--offline): "
        "its shards are shown empty"
        for market in plan.missing_listings
    ]
    lines.extend(
        f"{market.value}: {symbol} is configured but exchangeInfo does not list it as TRADING: "
        "not streamed"
        for market, symbol in plan.not_trading
    )
    for shard in plan.oversized():
        slots = settings.markets[shard.market].shards
        lines.append(
            f"shard {shard.id} does not fit one connection ({len(shard.streams)} streams, "
            f"{plan.connections(shard)} connections): raise binance.markets."
            f"{shard.market.value}.shards above {slots} (e.g. {min(512, slots * 2)})"
        )
    return lines


def show(
    plan: ShardPlan,
    settings: BinanceSettings,
    console: Console,
    accounts: Sequence[AccountSettings] = (),
) -> None:
    """Print the table, a summary line and the warnings."""
    table = Table(title=f"shard plan {plan.fingerprint}")
    for column in ("shard", "market", "symbols", "streams", "connections", "weight"):
        table.add_column(column, justify="left" if column in ("shard", "market") else "right")
    oversized = set(plan.oversized())
    for shard in plan.shards:
        table.add_row(
            shard.id,
            shard.market.value,
            str(len(shard.symbols)),
            str(len(shard.streams)),
            str(plan.connections(shard)),
            f"{shard.weight:g}",
            style="bold red" if shard in oversized else None,
        )
    for account in accounts:
        table.add_row(account.shard_id, account.market.value, "-", "user data", "1", "1")
    console.print(table)
    streams = sum(len(shard.streams) for shard in plan.shards)
    symbols = sum(len(shard.symbols) for shard in plan.shards)
    console.print(
        f"{len(plan.shards)} shards, {symbols} symbols, {streams} streams"
        + (f"; {len(accounts)} account shards" if accounts else "")
    )
    for line in warnings(plan, settings):
        console.print(f"warning: {line}", markup=False, highlight=False)
