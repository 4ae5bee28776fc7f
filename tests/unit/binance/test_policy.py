import itertools
import random

from gateway.binance.policy import MAX_DELAY_S, backoff, is_retriable
from gateway.errors import (
    ConfigError,
    KafkaDeliveryError,
    MessageParseError,
    StreamDisconnectedError,
)


def test_backoff_is_capped_and_jittered_below_an_exponential_ceiling():
    delays = list(itertools.islice(backoff(0.5, 8.0, 2.0, random.Random(7)), 12))
    ceilings = [min(0.5 * 2**i, 8.0) for i in range(12)]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == len(delays)  # jitter: no two reconnects in lockstep
    assert max(itertools.islice(backoff(rng=random.Random(1)), 200)) <= MAX_DELAY_S


def test_network_and_upstream_errors_retry_everything_else_is_fatal():
    assert is_retriable(OSError("no route"))
    assert is_retriable(TimeoutError())
    assert is_retriable(StreamDisconnectedError("closed"))
    assert is_retriable(KafkaDeliveryError("later"))
    assert not is_retriable(ConfigError("bad url"))
    assert not is_retriable(MessageParseError("junk"))
    assert not is_retriable(KeyError("bug"))
