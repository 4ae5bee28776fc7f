"""Stream liveness at run time: the async shell around :mod:`gateway.binance.liveness`.

Every frame's stream is marked delivered (a dict write on the hot path); once a second each
market's :class:`~gateway.binance.liveness.StreamLiveness` says which streams should have spoken
and did not. Each such stream is reported once: a WARNING line, ``gateway_stream_silences_total``
and ``gateway_silent_streams``, the ``/readyz`` body (``silent_streams``) and a ``silent`` record
on ``<prefix>.stream_status``; when it speaks again, a ``resumed`` record and an INFO line. The
same monitor tells each connection how long it may stay silent as a whole before it is replaced
(its most demanding stream's allowance), so a connection of quiet symbols is left alone while
its streams are within their expected cadence.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence

from gateway.binance.liveness import LivenessPolicy, Silence, StreamLiveness, symbol_of
from gateway.binance.markets import Market
from gateway.binance.messages import channel_of
from gateway.metrics import Metrics
from gateway.records.builder import RecordBuilder
from gateway.records.topics import ProducerRecord, RecordSink
from gateway.runtime.klines import KlineRecovery
from gateway.settings import BinanceSettings

logger = logging.getLogger(__name__)

CHECK_INTERVAL_S = 1.0


def _count_silent(live: StreamLiveness) -> float:
    return len(live.silent())


def recovered_elsewhere(settings: BinanceSettings, market: Market, stream: str) -> bool:
    """Whether a lost window of ``stream`` is recovered without a declaration: trades and
    aggregate trades by id (backfill), depth diffs by the book resync (``book_snapshot``)."""
    market_settings = settings.markets[market]
    channel = channel_of(stream)
    if channel in ("trade", "aggTrade"):
        return market_settings.backfill
    return channel == "depth" and market_settings.sync_books


def policy_of(settings: BinanceSettings) -> LivenessPolicy:
    """The configured policy; ``stale_after_s`` is the floor under every allowance."""
    return LivenessPolicy(
        tolerance=settings.liveness_tolerance,
        activity_tolerance=settings.activity_tolerance,
        min_silence_s=settings.stale_after_s,
        first_report_s=settings.silent_stream_report_s,
        max_quiet_s=settings.max_quiet_s,
    )


class LivenessMonitor:
    """Watches every stream of the process's shards, per market."""

    def __init__(
        self,
        settings: BinanceSettings,
        builder: RecordBuilder,
        sink: RecordSink,
        metrics: Metrics,
        *,
        recovered: Callable[[Market, str], bool] = lambda market, stream: False,
        held: Callable[[], bool] = lambda: False,
        klines: KlineRecovery | None = None,
    ) -> None:
        """``klines``: recovers the candles of kline streams' bounded holes from REST before
        their ``gap`` is declared (None: declared only)."""
        self._builder = builder
        self._klines = klines
        self._recovered = recovered
        self._held = held
        self._sink = sink
        self._metrics = metrics
        policy = policy_of(settings)
        self._markets = {
            market: StreamLiveness(policy, futures=market is not Market.SPOT)
            for market in settings.markets
        }
        # Time of each stream's last event (Binance's, else its receive time): the bounds of a
        # silence or a hole.
        self._last_us: dict[tuple[Market, str], int] = {}
        self._resumed: list[tuple[Market, Silence, int]] = []
        self._gaps: list[ProducerRecord] = []  # declared lost windows, sent by the next check
        # Holes whose end is not known yet: (market, stream) → (start_us, reason); start None:
        # the previous owner's last record (it crashed without declaring).
        self._open_gaps: dict[tuple[Market, str], tuple[int | None, str]] = {}
        for market, live in self._markets.items():
            metrics.silent_streams.labels(market.value).set_function(
                functools.partial(_count_silent, live)
            )

    def set_activity(self, market: Market, rates: Mapping[str, float]) -> None:
        """Each symbol's trades per second (the 24 h ticker's count): the rate its trade-driven
        streams are judged by until they showed their own (``min_trades_for_rate`` trades)."""
        live = self._markets.get(market)
        if live is not None:
            for symbol, rate in rates.items():
                live.set_activity(symbol, rate)

    def watch(self, market: Market, streams: Sequence[str]) -> None:
        self._markets[market].watch(tuple(streams), time.monotonic())

    def release(self, market: Market, streams: Sequence[str]) -> None:
        """This worker stops streaming these (its shard moves away or the worker stops): from
        each one's last event until the next owner's first, nothing is read here. Declared as a
        ``gap`` open at its end, unless the kind is recovered elsewhere (the next owner resumes
        trades from Kafka's last id and resyncs books); then the streams are forgotten."""
        for stream in streams:
            key = (market, stream)
            last_us = self._last_us.get(key)
            opened = key in self._open_gaps or self._recovered(market, stream)
            if last_us is not None and not opened:
                self._open_gaps[key] = (last_us, "released")
        self.unwatch(market, streams)

    async def flush(self) -> None:
        """Send what was declared and not sent yet (the worker is stopping: kline windows still
        being recovered are declared not recovered)."""
        if self._klines is not None:
            await self._klines.stop()
        await self._send_declared()

    async def _send_declared(self) -> None:
        gaps, self._gaps = self._gaps, []
        for record in gaps:
            await self._sink.send(record)

    def unwatch(self, market: Market, streams: Sequence[str]) -> None:
        self._markets[market].unwatch(tuple(streams))
        if self._klines is not None:
            self._klines.forget(market, streams)
        for stream in streams:
            self._last_us.pop((market, stream), None)
            opened = self._open_gaps.pop((market, stream), None)
            if opened is not None:
                self.declare_gap(market, stream, opened[0], None, opened[1])

    def subscribed(
        self,
        market: Market,
        streams: Sequence[str],
        *,
        reconnect: bool,
        inherited: bool = False,
    ) -> None:
        """A new connection carries these streams: their silence counts from now.

        After a reconnect, what Binance sent between each stream's last event and its first
        event on the new connection is lost: streams whose kind is recovered elsewhere (trades
        by id, books by resync) are left to that; every other stream that had delivered gets a
        ``gap`` record for that window once its first event arrives (or, if it never does, an
        open-ended one when it is no longer watched).

        ``inherited``: the shard's first connection here, taken from a worker that left the group
        without releasing it (``kill -9``, a pause past its session): that worker declared
        nothing, so every stream not recovered elsewhere gets a ``gap`` (reason ``taken_over``)
        from the previous owner's last record (``window_start_us`` null: this worker never saw
        it) to its first event here.
        """
        self._markets[market].restart(tuple(streams), time.monotonic())
        if not (reconnect or inherited):
            return
        for stream in streams:
            key = (market, stream)
            last_us = self._last_us.get(key)
            if self._recovered(market, stream) or key in self._open_gaps:
                continue
            if reconnect and last_us is not None:
                # Declared when the stream's first event after the hole bounds it (delivered()).
                self._open_gaps[key] = (last_us, "reconnect")
            elif inherited and not reconnect:
                self._open_gaps[key] = (None, "taken_over")

    def declare_gap(
        self, market: Market, stream: str, start_us: int | None, end_us: int | None, reason: str
    ) -> None:
        """Declare a window of ``stream`` lost (sent with the next check). A kline stream's
        bounded window is recovered from REST first, and declared when that is over."""
        klines = self._klines
        if (
            klines is not None
            and start_us is not None
            and end_us is not None
            and klines.recoverable(market, stream)
        ):
            klines.recover(market, stream, start_us, end_us, reason, self._declare)
            return
        self._declare(market, stream, start_us, end_us, reason, None)

    def closed_kline(self, market: Market, stream: str, open_time_us: int) -> None:
        """A closed candle of ``stream`` came live: a recovery leaves it out."""
        if self._klines is not None:
            self._klines.closed.add(market, stream, open_time_us)

    def _declare(
        self,
        market: Market,
        stream: str,
        start_us: int | None,
        end_us: int | None,
        reason: str,
        recovered: bool | None,
    ) -> None:
        if not recovered:  # gateway_stream_gaps_total counts windows lost for good
            self._metrics.stream_gaps.labels(market.value, channel_of(stream)).inc()
        self._gaps.append(
            self._builder.stream_status(
                market=market.value,
                stream=stream,
                symbol=symbol_of(stream),
                status="gap",
                window_start_us=start_us,
                window_end_us=end_us,
                reason=reason,
                detected_at_us=time.time_ns() // 1_000,
                recovered=recovered,
            )
        )

    def delivered(self, market: Market, stream: str, time_us: int) -> None:
        """An event of ``stream`` arrived, dated ``time_us`` (Binance's event time, or the
        receive time for kinds without one). The hot path: no I/O, a few dict operations."""
        key = (market, stream)
        self._last_us[key] = time_us
        if self._open_gaps and key in self._open_gaps:
            start_us, reason = self._open_gaps.pop(key)
            self.declare_gap(market, stream, start_us, time_us, reason)
        resumed = self._markets[market].delivered(stream, time.monotonic())
        if resumed is not None:
            self._resumed.append((market, resumed, time_us))

    def last_event_us(self, market: Market, stream: str) -> int | None:
        """Receive time of the stream's last event, if it had one while watched."""
        return self._last_us.get((market, stream))

    def connection_allowance_s(self, market: Market, streams: Sequence[str]) -> float | None:
        """How long a connection carrying ``streams`` may stay silent as a whole."""
        return self._markets[market].connection_allowance_s(tuple(streams), time.monotonic())

    def quiet_since_subscription(self, market: Market, streams: Sequence[str]) -> list[str]:
        """Which of ``streams`` delivered nothing since their connection (re)opened."""
        return self._markets[market].quiet_since_subscription(tuple(streams))

    def silent(self) -> dict[str, list[str]]:
        """Streams reported silent now, per market (for ``/readyz``)."""
        return {m.value: live.silent() for m, live in self._markets.items() if live.silent()}

    async def run(self) -> None:
        """Check every market once a second until cancelled."""
        while True:
            await asyncio.sleep(CHECK_INTERVAL_S)
            await self.check()

    async def check(self) -> None:
        """Report what fell silent and what resumed since the last check."""
        now_s, now_us = time.monotonic(), time.time_ns() // 1_000
        await self._send_declared()
        resumed, self._resumed = self._resumed, []
        for market, verdict, at_us in resumed:
            logger.info(
                "%s stream %s delivers again",
                market.value,
                verdict.stream,
                extra={"event_data": {"market": market.value, "stream": verdict.stream}},
            )
            record = self._builder.stream_status(
                market=market.value,
                stream=verdict.stream,
                symbol=verdict.symbol,
                status="resumed",
                window_end_us=at_us,
                detected_at_us=now_us,
            )
            await self._sink.send(record)
        if self._held():
            # Kafka is away and the readers wait for it: streams are unread, not silent (the
            # windows this loses are declared when their connections are replaced).
            return
        for market, live in self._markets.items():
            for verdict in live.check(now_s):
                await self._report(market, verdict, now_us)

    async def _report(self, market: Market, verdict: Silence, now_us: int) -> None:
        never = verdict.last_event_s is None
        reason = "never delivered since subscription" if never else "no event within allowance"
        self._metrics.stream_silences.labels(market.value, channel_of(verdict.stream)).inc()
        logger.warning(
            "%s stream %s is silent: %s (allowed %.0fs)",
            market.value,
            verdict.stream,
            reason,
            verdict.allowance_s,
            extra={
                "event_data": {
                    "market": market.value,
                    "stream": verdict.stream,
                    "pace": verdict.pace.value,
                    "allowance_s": verdict.allowance_s,
                }
            },
        )
        record = self._builder.stream_status(
            market=market.value,
            stream=verdict.stream,
            symbol=verdict.symbol,
            status="silent",
            window_start_us=self._last_us.get((market, verdict.stream)),
            expected_silence_ms=int(verdict.allowance_s * 1_000),
            reason=reason,
            detected_at_us=now_us,
        )
        await self._sink.send(record)
