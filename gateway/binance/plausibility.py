"""Plausibility of values Binance sends, before they are trusted (docs/delivery.md), as pure code.

Ids are judged by :class:`gateway.binance.sequence.IdContinuity` (it knows each symbol's last id);
what needs no state is here.
"""

from __future__ import annotations

MAX_EVENT_TIME_SKEW_S = 3600.0
"""Default of ``binance.max_event_time_skew_s``: far beyond clock drift and the time a frame can
wait in the socket while Kafka is down (``kafka.request_timeout_ms``, 120 s), far below a value
that is garbage (``E`` = -5, or in another year)."""


def event_time_problem(event_time_us: int, received_at_us: int, max_skew_s: float) -> str | None:
    """Why an event time cannot be right, or None: more than ``max_skew_s`` from the receive time."""
    skew_s = (event_time_us - received_at_us) / 1e6
    if abs(skew_s) <= max_skew_s:
        return None
    side = "ahead of" if skew_s > 0 else "behind"
    return (
        f"event time {event_time_us} us is {abs(skew_s):.0f}s {side} the receive time "
        f"{received_at_us} us (binance.max_event_time_skew_s {max_skew_s:g})"
    )
