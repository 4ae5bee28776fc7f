"""aiokafka's transient group-coordinator lookups are no ERROR at a normal start."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator

import pytest
from aiokafka.errors import GroupAuthorizationFailedError, GroupCoordinatorNotAvailableError

from gateway.logs import TransientCoordinatorFilter, configure_logging

COORDINATOR = "aiokafka.consumer.group_coordinator"
LOOKUP = "Group Coordinator Request failed: %s"


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """configure_logging changes the root handler and library levels: put them back after.

    The coordinator logger starts each test without filters: a RepeatFilter that an earlier test
    (any gateway run in the same process) left on it would hide these tests' repeated lines."""
    root = logging.getLogger()
    names = ["aiokafka", "websockets", "kafka", COORDINATOR]
    coordinator = logging.getLogger(COORDINATOR)
    saved = (root.handlers[:], root.level, {n: logging.getLogger(n).level for n in names})
    saved_filters = coordinator.filters[:]
    coordinator.filters.clear()
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)
    coordinator.filters[:] = saved_filters


def _stderr_of(emit: Callable[[logging.Logger], None]) -> str:
    stream = io.StringIO()
    configure_logging("INFO", json_format=False)
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    emit(logging.getLogger(COORDINATOR))
    return stream.getvalue()


def test_a_fresh_brokers_coordinator_lookups_log_no_error() -> None:
    # As aiokafka logs them while __consumer_offsets is being created (group_coordinator.py).
    def lookups(log: logging.Logger) -> None:
        for _ in range(5):
            log.error(LOOKUP, GroupCoordinatorNotAvailableError())

    out = _stderr_of(lookups)
    assert "ERROR" not in out and "GroupCoordinatorNotAvailable" not in out


def test_errors_aiokafka_does_not_retry_stay_errors() -> None:
    out = _stderr_of(lambda log: log.error(LOOKUP, GroupAuthorizationFailedError("g")))
    assert "ERROR" in out and "GroupAuthorizationFailed" in out
    other = _stderr_of(lambda log: log.error("Heartbeat failed: %r", ValueError("x")))
    assert "ERROR" in other


def test_a_lookup_failing_past_the_grace_period_is_a_warning() -> None:
    soft = TransientCoordinatorFilter(grace_s=0.0)
    record = logging.LogRecord(
        COORDINATOR, logging.ERROR, "f", 1, LOOKUP, (GroupCoordinatorNotAvailableError(),), None
    )
    logging.getLogger(COORDINATOR).setLevel(logging.WARNING)
    assert soft.filter(record)
    assert record.levelname == "WARNING"
