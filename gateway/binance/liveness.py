"""Per-stream liveness: which streams should have spoken by now and did not.

Pure: stream names and clock values (monotonic seconds) in, verdicts out. Every subscribed stream
gets a pace from its nature (docs/binance.md §3, §4):

* ``FIXED``: Binance pushes it on a timer whatever the market does (klines, tickers, mini
  tickers, partial books, mark and index prices, average and reference prices, market-wide
  arrays). Expected every ``cadence``; silent after ``tolerance`` cadences, at least
  ``min_silence_s``.
* ``ACTIVITY``: it speaks when the symbol trades (trades, aggregate trades, book tickers, depth
  diffs). Expected about as often as the symbol trades: its rate comes from what the symbol's
  trade streams have shown since subscription, or from a prior the caller gives (the 24 h
  ticker's trade count). Silent after ``activity_tolerance`` mean intervals, at least
  ``min_silence_s``; a symbol that trades too rarely to judge (allowance beyond
  ``max_quiet_s``) is not judged.
* ``UNJUDGED``: silence is normal and says nothing (liquidations, contract info, block trades).

A ``FIXED`` stream that never delivered is silent once ``first_report_s`` passed since its
subscription (a name or route Binance accepts and never serves); an ``ACTIVITY`` one once its
symbol is known to trade (its other trade stream delivers, or the prior says so) and it stayed
silent longer than that activity and ``first_report_s`` allow.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = [
    "LivenessPolicy",
    "Pace",
    "Silence",
    "StreamLiveness",
    "pace_of",
    "symbol_of",
]


class Pace(enum.Enum):
    FIXED = "fixed"
    ACTIVITY = "activity"
    UNJUDGED = "unjudged"


_KLINE_INTERVAL_1S = re.compile(r"kline_1s(@|$)")
_SPEED = re.compile(r"@(\d+)(ms|s)$")

# Seconds between pushes, per channel and market (docs/binance.md §3 spot, §4 futures).
_SPOT_FIXED = {
    "kline": 2.0,
    "miniTicker": 1.0,
    "ticker": 1.0,
    "avgPrice": 1.0,
    "referencePrice": 1.0,
    "depth5": 1.0,
    "depth10": 1.0,
    "depth20": 1.0,
}
_FUTURES_FIXED = {
    "kline": 0.25,
    "continuousKline": 0.25,
    "indexPriceKline": 0.25,
    "markPriceKline": 0.25,
    "markPrice": 3.0,
    "indexPrice": 3.0,
    "miniTicker": 2.0,
    "ticker": 2.0,
    "compositeIndex": 1.0,
    "assetIndex": 1.0,
    "depth5": 0.25,
    "depth10": 0.25,
    "depth20": 0.25,
}
_MARKET_WIDE_FIXED = {
    "!miniTicker@arr": 1.0,
    "!ticker@arr": 1.0,
    "!markPrice@arr": 3.0,
    "!markPrice@arr@1s": 1.0,
    "!assetIndex@arr": 1.0,
    "tradingSession": 1.0,
}
_ACTIVITY = frozenset({"trade", "aggTrade", "bookTicker", "depth", "rpiDepth"})
_TRADES = ("trade", "aggTrade")


def _channel(stream: str) -> str:
    rest = stream.partition("@")[2]
    channel = rest.partition("@")[0]
    for prefix in ("kline", "continuousKline", "indexPriceKline", "markPriceKline"):
        if channel.startswith(prefix + "_"):
            return prefix
    if channel.startswith("ticker_"):
        return "ticker"
    return channel


def symbol_of(stream: str) -> str | None:
    """``btcusdt@trade`` → ``BTCUSDT``; market-wide streams have none."""
    if stream.startswith("!") or "@" not in stream:
        return None
    return stream.partition("@")[0].upper()


def pace_of(stream: str, *, futures: bool) -> tuple[Pace, float | None]:
    """The stream's pace and, for ``FIXED``, seconds between pushes."""
    if stream.startswith("!") or "@" not in stream:
        if stream == "!bookTicker" and futures:
            return Pace.FIXED, 5.0  # USDⓈ-M's every 5 s (docs/binance.md §4)
        wide = _MARKET_WIDE_FIXED.get(stream)
        if wide is not None:
            return Pace.FIXED, wide
        if stream.startswith(("!ticker_", "!miniTicker")):
            return Pace.FIXED, 1.0
        return Pace.UNJUDGED, None
    channel = _channel(stream)
    if channel in _ACTIVITY:
        return Pace.ACTIVITY, None
    table = _FUTURES_FIXED if futures else _SPOT_FIXED
    cadence = table.get(channel)
    if cadence is None:
        return Pace.UNJUDGED, None
    speed = _SPEED.search(stream)
    if speed is not None and channel.startswith(("depth", "markPrice", "indexPrice")):
        value = int(speed.group(1))
        cadence = value / 1_000 if speed.group(2) == "ms" else float(value)
    if channel == "kline" and _KLINE_INTERVAL_1S.search(stream) and not futures:
        cadence = 1.0
    return Pace.FIXED, cadence


@dataclass(frozen=True, slots=True)
class LivenessPolicy:
    """How long each kind of stream may stay silent before it is reported."""

    tolerance: float = 10.0
    """A ``FIXED`` stream is silent after this many cadences without an event."""
    activity_tolerance: float = 20.0
    """An ``ACTIVITY`` stream is silent after this many of its symbol's mean trade intervals
    (Poisson: the chance of so long a pause by luck is e^-20)."""
    min_silence_s: float = 60.0
    """No stream is reported silent sooner than this."""
    first_report_s: float = 120.0
    """A stream that never delivered since its subscription is reported after this long."""
    max_quiet_s: float = 3_600.0
    """An ``ACTIVITY`` stream whose allowance would exceed this is too quiet to judge."""
    min_trades_for_rate: int = 50
    """Trades seen before the observed rate is trusted over the prior (more than
    ``activity_tolerance``, or a stream that stopped dead would never be overdue)."""


@dataclass(frozen=True, slots=True)
class Silence:
    """A stream that should have spoken and did not (``resumed`` once it speaks again)."""

    stream: str
    symbol: str | None
    pace: Pace
    last_event_s: float | None
    """Monotonic time of its last event; ``None``: nothing since subscription."""
    allowance_s: float
    """How long it was allowed to stay silent."""
    resumed: bool = False


@dataclass(slots=True)
class _Watched:
    pace: Pace
    cadence_s: float | None
    subscribed_s: float
    """Since when the current connection carries it (silence counts from here)."""
    watched_s: float
    """Since when it is watched at all (its rate counts from here)."""
    last_s: float | None = None
    events: int = 0
    silent: bool = False


class StreamLiveness:
    """What each watched stream last delivered and whether it is overdue."""

    def __init__(self, policy: LivenessPolicy, *, futures: bool) -> None:
        self.policy = policy
        self._futures = futures
        self._streams: dict[str, _Watched] = {}
        self._prior_rate: dict[str, float] = {}  # symbol → trades per second (24 h ticker)

    def watch(self, streams: list[str] | tuple[str, ...], now_s: float) -> None:
        """Start judging these streams (already watched ones keep their history)."""
        for stream in streams:
            if stream not in self._streams:
                pace, cadence = pace_of(stream, futures=self._futures)
                self._streams[stream] = _Watched(pace, cadence, now_s, now_s)

    def unwatch(self, streams: list[str] | tuple[str, ...]) -> None:
        for stream in streams:
            self._streams.pop(stream, None)

    def restart(self, streams: list[str] | tuple[str, ...], now_s: float) -> None:
        """A new connection subscribed these streams: silence counts from now, and what they
        delivered before stays known (for the rate and the hole's start)."""
        for stream in streams:
            watched = self._streams.get(stream)
            if watched is not None:
                watched.subscribed_s = now_s

    def set_activity(self, symbol: str, trades_per_s: float) -> None:
        """A prior for ``symbol``'s trade rate, e.g. the 24 h ticker's count / 86400."""
        self._prior_rate[symbol] = trades_per_s

    def delivered(self, stream: str, now_s: float) -> Silence | None:
        """``stream`` delivered an event; returns a ``resumed`` verdict if it was silent."""
        watched = self._streams.get(stream)
        if watched is None:
            return None
        watched.last_s = now_s
        watched.events += 1
        if watched.silent:
            watched.silent = False
            return Silence(stream, symbol_of(stream), watched.pace, now_s, 0.0, resumed=True)
        return None

    def last_event_s(self, stream: str) -> float | None:
        watched = self._streams.get(stream)
        return None if watched is None else watched.last_s

    def allowance_s(self, stream: str, now_s: float) -> float | None:
        """How long ``stream`` may stay silent; ``None``: it is not judged."""
        watched = self._streams.get(stream)
        if watched is None:
            return None
        return self._allowance(stream, watched, now_s)

    def connection_allowance_s(
        self, streams: list[str] | tuple[str, ...], now_s: float
    ) -> float | None:
        """How long a connection carrying ``streams`` may deliver nothing at all before it is
        dead: its most demanding stream's allowance. ``None``: nothing on it can be judged."""
        # Streams that never delivered (perhaps never served) do not shorten it, unless none
        # delivered: a connection that never delivered anything is dead after first_report_s.
        delivered = [s for s in streams if self.last_event_s(s) is not None]
        allowances = []
        rates: dict[str, float] = {}
        for stream in delivered or streams:
            watched = self._streams.get(stream)
            symbol = symbol_of(stream)
            if watched is not None and watched.pace is Pace.ACTIVITY and symbol is not None:
                rate = self._rate(symbol, now_s)
                if rate is not None:
                    rates[symbol] = rate
                    continue
            allowance = self.allowance_s(stream, now_s)
            if allowance is not None:
                allowances.append(allowance)
        if rates:
            # Silent as a whole only if every symbol on it is: their trades add up (Poisson), so
            # a connection of many slow symbols is as closely watched as one busy symbol.
            total = sum(rates.values())
            allowances.append(
                max(self.policy.activity_tolerance / total, self.policy.min_silence_s)
            )
        return min(allowances, default=None)

    def check(self, now_s: float) -> list[Silence]:
        """Streams that just became silent (each reported once until it speaks again)."""
        found = []
        for stream, watched in self._streams.items():
            if watched.silent:
                continue
            allowance = self._allowance(stream, watched, now_s)
            if allowance is None:
                continue
            since = (
                watched.subscribed_s
                if watched.last_s is None
                else max(watched.last_s, watched.subscribed_s)
            )
            if now_s - since > allowance:
                watched.silent = True
                found.append(
                    Silence(stream, symbol_of(stream), watched.pace, watched.last_s, allowance)
                )
        return found

    def quiet_since_subscription(self, streams: list[str] | tuple[str, ...]) -> list[str]:
        """The watched ``streams`` that delivered nothing on their current connection."""
        quiet = []
        for stream in streams:
            watched = self._streams.get(stream)
            if watched is not None and (
                watched.last_s is None or watched.last_s < watched.subscribed_s
            ):
                quiet.append(stream)
        return quiet

    def silent(self) -> list[str]:
        """Every stream currently reported silent."""
        return [stream for stream, watched in self._streams.items() if watched.silent]

    def _allowance(self, stream: str, watched: _Watched, now_s: float) -> float | None:
        policy = self.policy
        if watched.pace is Pace.UNJUDGED:
            return None
        if watched.pace is Pace.FIXED:
            assert watched.cadence_s is not None
            if watched.last_s is None:
                return policy.first_report_s  # its first event is due within one cadence
            return max(policy.tolerance * watched.cadence_s, policy.min_silence_s)
        rate = self._rate(symbol_of(stream), now_s)
        if rate is None:
            # Nothing known of the symbol's activity yet: it may be quiet; only a silence as
            # long as the quietest judged symbol may keep is reported.
            return policy.max_quiet_s
        allowance = max(policy.activity_tolerance / rate, policy.min_silence_s)
        if watched.last_s is None:
            allowance = max(allowance, policy.first_report_s)
        return None if allowance > policy.max_quiet_s else allowance

    def _rate(self, symbol: str | None, now_s: float) -> float | None:
        """The symbol's trades per second: observed on its trade streams, else the prior."""
        if symbol is None:
            return None
        best: float | None = None
        lower = symbol.lower()
        for channel in _TRADES:
            watched = self._streams.get(f"{lower}@{channel}")
            if watched is None or watched.events < self.policy.min_trades_for_rate:
                continue
            # Over the whole observation, up to now: a symbol that went quiet is allowed more
            # and more silence, yet one that stopped dead is still caught, because with more
            # events than activity_tolerance the allowance grows slower than the silence.
            elapsed = max(now_s - watched.watched_s, 1.0)
            rate = watched.events / elapsed
            best = rate if best is None else max(best, rate)
        if best is not None:
            return best
        prior = self._prior_rate.get(symbol)
        # No trade in 24 h says as little about its pace as no prior: judged after max_quiet_s.
        return prior if prior is not None and prior > 0 else None
