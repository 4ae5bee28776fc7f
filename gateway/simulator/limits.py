"""Binance's limits as pure counters: time comes in as an argument, nothing sleeps.

* :class:`MessageRateLimiter` — incoming messages per connection (spot: 5 per second, FACTS §2).
* :class:`WeightCounter` — REST request weight per IP per minute, reported in
  ``X-MBX-USED-WEIGHT-1M`` (FACTS §7).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from types import MappingProxyType

MAX_INCOMING_MESSAGES_PER_S = 5
"""Spot: "5 incoming messages per second" per connection (FACTS §2)."""

REQUEST_WEIGHT_PER_MINUTE = 6_000
"""Spot's REQUEST_WEIGHT limit (FACTS §7); advertised in exchangeInfo."""

ENDPOINT_WEIGHTS: Mapping[str, int] = MappingProxyType(
    {
        # FACTS §7. ping and time are not listed there; Binance documents weight 1 for both.
        "/api/v3/ping": 1,
        "/api/v3/time": 1,
        "/api/v3/exchangeInfo": 20,
        "/api/v3/aggTrades": 4,
        "/api/v3/trades": 25,
        "/api/v3/historicalTrades": 25,
    }
)


class MessageRateLimiter:
    """A sliding one-second window of incoming messages on one connection."""

    def __init__(self, limit: int, window_s: float = 1.0) -> None:
        self._limit = limit
        self._window_s = window_s
        self._times: deque[float] = deque()

    def allow(self, now_s: float) -> bool:
        """Record a message at monotonic time ``now_s``; ``False`` once over the limit."""
        times = self._times
        while times and now_s - times[0] >= self._window_s:
            times.popleft()
        times.append(now_s)
        return len(times) <= self._limit


class WeightCounter:
    """Used request weight per client IP in fixed windows of one clock minute."""

    def __init__(self, window_ms: int = 60_000) -> None:
        self._window_ms = window_ms
        self._used: dict[str, tuple[int, int]] = {}

    def add(self, client: str, weight: int, now_ms: int) -> int:
        """Charge ``weight`` to ``client`` at ``now_ms``; return its weight used this window."""
        window = now_ms // self._window_ms
        current_window, used = self._used.get(client, (window, 0))
        if current_window != window:
            used = 0
        used += weight
        self._used[client] = (window, used)
        return used
