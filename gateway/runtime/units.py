"""The worker's units: what it opens when it takes a shard or an account, and closes after.

A market shard is a :class:`~gateway.runtime.shards.ShardRunner` over its market's shared state
(:class:`~gateway.runtime.shards.MarketKeepers`: trade continuity and order books, resumed from
Kafka when the shard is taken); an account is its user-data stream (:class:`AccountUnit`).
:func:`open_markets` builds each market's REST client and keepers once, at start-up.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gateway.accounts.settings import AccountSettings
from gateway.accounts.stream import AccountStream
from gateway.adapters.binance_rest import BinanceRestClient
from gateway.binance.account_state import AccountState
from gateway.binance.exchange_info import ListedSymbol
from gateway.binance.markets import Market
from gateway.binance.sequence import IdBounds
from gateway.errors import GatewayError
from gateway.metrics import Metrics
from gateway.records.builder import RecordBuilder
from gateway.records.topics import RecordSink, TopicNamer
from gateway.runtime.book import BookKeeper
from gateway.runtime.edges import LastIds, RestClients
from gateway.runtime.ownership import Unit
from gateway.runtime.sequence import TradeContinuity
from gateway.runtime.shards import MarketKeepers, ShardContext, ShardRunner
from gateway.runtime.topology import Topology
from gateway.settings import BinanceSettings

logger = logging.getLogger(__name__)

TRADE_CHANNELS = {"trade", "aggTrade"}


class AccountUnit:
    """An account's user-data stream as one of the worker's shards."""

    def __init__(self, stream: AccountStream) -> None:
        self.stream = stream

    async def run(self) -> None:
        await self.stream.run()

    def health(self) -> dict[str, object]:
        return self.stream.health()

    @property
    def streaming(self) -> bool:
        """Down means blind: the worker is not ready while an account it owns is down."""
        return bool(self.stream.health()["up"])

    @property
    def failing(self) -> bool:
        return self.stream.state is AccountState.REJECTED


@dataclass(frozen=True, slots=True)
class Markets:
    """Per market: its one REST client (Binance counts weight per IP) and its shared keepers."""

    rest: Mapping[Market, BinanceRestClient]
    keepers: Mapping[Market, MarketKeepers]

    def held_back(self) -> dict[str, float]:
        """Symbols whose live trades wait behind a hole for longer than held_back_report_s."""
        return {
            f"{market.value} {name}": seconds
            for market, keepers in self.keepers.items()
            if keepers.continuity is not None
            for name, seconds in keepers.continuity.held_back().items()
        }

    async def listings(self) -> dict[Market, tuple[ListedSymbol, ...]]:
        """Each market's exchangeInfo; a market that cannot be asked now is left out (its
        explicit symbols stream as configured; a ``select`` waits for the next poll)."""
        listings = {}
        for market, rest in self.rest.items():
            try:
                listings[market] = await rest.exchange_info()
            except GatewayError as exc:
                logger.warning(
                    "%s exchangeInfo unavailable (%s); retrying later", market.value, exc
                )
        return listings

    async def stop(self) -> None:
        for keeper in self.keepers.values():
            await keeper.stop()


class UnitFactory:
    """Opens the unit of a shard this worker now holds, and forgets its state once stopped."""

    def __init__(
        self,
        topology: Callable[[], Topology],
        context: ShardContext,
        last_ids: LastIds,
        namer: TopicNamer,
        rest: Mapping[Market, BinanceRestClient],
        inherits: Callable[[str], bool] = lambda shard_id: False,
    ) -> None:
        """``inherits(shard_id)``: whether the shard is taken from a worker that left the group
        holding it (its runner declares the windows that worker left open)."""
        self._inherits = inherits
        self._topology = topology
        self._context = context
        self._last_ids = last_ids
        self._namer = namer
        self._rest = rest

    async def open(self, shard_id: str) -> Unit:
        """A shard's runner (its trades resumed from Kafka) or an account's stream, not running."""
        topology = self._topology()
        account = topology.account(shard_id)
        if account is not None:
            return self._account(account)
        ctx = self._context
        shard = topology.shard(shard_id)
        continuity = ctx.keepers[shard.market].continuity
        channels = set(ctx.binance.markets[shard.market].channels)
        if continuity is not None and shard.symbols and channels & TRADE_CHANNELS:
            continuity.resume(await self._last_ids.last_ids(shard.market, shard.symbols))
        return ShardRunner(shard, ctx, inherited=self._inherits(shard_id))

    def close(self, shard_id: str) -> None:
        """Forget a stopped market shard's per-symbol state (an account keeps none)."""
        topology = self._topology()
        if topology.account(shard_id) is not None:
            return
        shard = topology.shard(shard_id)
        self._context.keepers[shard.market].forget(shard.symbols)

    def _account(self, account: AccountSettings) -> AccountUnit:
        ctx, rest = self._context, self._rest.get(account.market)
        return AccountUnit(
            AccountStream(
                account,
                ctx.binance,
                ctx.builder,
                ctx.sink,
                ctx.metrics,
                self._namer,
                rest_budget=rest.budget if rest else None,
            )
        )


async def open_markets(
    binance: BinanceSettings,
    builder: RecordBuilder,
    sink: RecordSink,
    metrics: Metrics,
    rest_clients: RestClients,
    resources: contextlib.AsyncExitStack,
) -> Markets:
    """Each configured market's REST client (closed with ``resources``) and keepers."""
    rest: dict[Market, BinanceRestClient] = {}
    keepers: dict[Market, MarketKeepers] = {}
    for market in binance.markets:
        client = rest[market] = await resources.enter_async_context(
            rest_clients(binance.rest_url(market), market)
        )
        keepers[market] = _keepers(market, binance, client, builder, sink, metrics)
    return Markets(rest, keepers)


def _keepers(
    market: Market,
    binance: BinanceSettings,
    rest: BinanceRestClient,
    builder: RecordBuilder,
    sink: RecordSink,
    metrics: Metrics,
) -> MarketKeepers:
    """The market's trade continuity and books, as its settings ask for them."""
    settings = binance.markets[market]
    continuity = None
    if settings.backfill:
        continuity = TradeContinuity(
            market,
            rest,
            builder,
            sink,
            metrics,
            api_key=settings.api_key.get_secret_value() if settings.api_key else None,
            give_up_s=binance.backfill_give_up_s,
            report_held_s=binance.held_back_report_s,
            plausibility=IdBounds(
                binance.max_id_jump, binance.max_id_behind, binance.id_jump_confirmations
            ),
        )
        if market is not Market.SPOT and not settings.api_key and "trade" in settings.channels:
            logger.warning(
                "%s trade holes can be filled only from the latest 500 trades: set "
                "binance.markets.%s.api_key to fetch them by id (historicalTrades)",
                market.value,
                market.value,
            )
    books = None
    if settings.sync_books:
        books = BookKeeper(
            market,
            rest,
            builder,
            sink,
            metrics,
            depth_limit=settings.book_depth_limit,
            snapshot_interval_s=settings.book_snapshot_interval_s,
        )
    return MarketKeepers(continuity, books)
