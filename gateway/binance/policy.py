"""Reconnect policy: capped, jittered backoff and retry-or-fatal classification.

Pure: the caller owns the clock and the sleeping.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from gateway.errors import GatewayError

INITIAL_DELAY_S = 0.5
MAX_DELAY_S = 30.0
FACTOR = 2.0


def backoff(
    initial_s: float = INITIAL_DELAY_S,
    max_s: float = MAX_DELAY_S,
    factor: float = FACTOR,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Yield reconnect delays: exponential, capped at ``max_s``, with full jitter.

    Full jitter (a uniform draw below the exponential ceiling) spreads the reconnects of many
    connections that dropped at once, so they do not hit Binance's per-IP connection budget together.
    """
    draw = (rng or random.Random()).uniform
    ceiling = initial_s
    while True:
        yield draw(0.0, ceiling)
        ceiling = min(ceiling * factor, max_s)


def is_retriable(exc: BaseException) -> bool:
    """Whether a failed connection is worth retrying: network trouble and upstream errors are.

    Anything else is a bug or a configuration error and must surface, not loop.
    """
    if isinstance(exc, GatewayError):
        return exc.retriable
    return isinstance(exc, OSError | TimeoutError | EOFError)
