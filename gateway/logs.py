"""Logging: one JSON line per record (orjson), or readable text for a terminal.

Libraries (websockets, aiokafka) log through stdlib ``logging`` too, so everything lands in one
stream. Structured fields go in ``extra={"event_data": {...}}``.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson

# aiokafka and websockets are chatty at INFO about things the gateway already reports itself.
_QUIET_LIBRARIES = ("aiokafka", "websockets", "kafka")


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...event_data}`` as one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        data = getattr(record, "event_data", None)
        if isinstance(data, dict):
            entry.update(data)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "INFO", json_format: bool = True) -> None:
    """Install one handler on the root logger, replacing any earlier one."""
    handler = logging.StreamHandler(sys.stderr)
    if json_format:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    soften_transient_coordinator_errors()


class RepeatFilter(logging.Filter):
    """Lets each message template of a logger through once per ``interval_s``; the next one that
    passes says how many were held back. During a Kafka outage aiokafka logs the same connection
    error thousands of times a second: one line in a while says as much without the flood."""

    def __init__(self, interval_s: float = 30.0) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._last: dict[tuple[str, str], float] = {}
        self._held_back: Counter[tuple[str, str]] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._held_back[key] += 1
            return False
        self._last[key] = now
        if held := self._held_back.pop(key, 0):
            record.msg = f"{record.msg} [{held} more like this in the last {self.interval_s:.0f}s]"
        return True


def quiet_repeats(prefix: str, interval_s: float = 30.0) -> None:
    """Put one RepeatFilter on every logger under ``prefix`` (a parent's filters do not see its
    children's records, so each module logger gets it)."""
    shared = RepeatFilter(interval_s)
    names = [
        n for n in logging.Logger.manager.loggerDict if n == prefix or n.startswith(prefix + ".")
    ]
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):
            logger.addFilter(shared)


_COORDINATOR_LOGGER = "aiokafka.consumer.group_coordinator"
_COORDINATOR_LOOKUP = "Group Coordinator Request failed: %s"


class TransientCoordinatorFilter(logging.Filter):
    """aiokafka logs ERROR for every failed group-coordinator lookup, even the retriable ones it
    retries at once: a fresh broker answers GroupCoordinatorNotAvailable until it has created
    ``__consumer_offsets``, so every first start showed an ERROR that needed no one. Retriable
    lookups failing for less than ``grace_s`` are INFO; a streak longer than that (a broker
    that cannot host the group) comes through as WARNING, so a real problem is still seen."""

    def __init__(self, grace_s: float = 30.0, streak_gap_s: float = 10.0) -> None:
        super().__init__()
        self.grace_s = grace_s
        self.streak_gap_s = streak_gap_s
        self._streak_start: float | None = None
        self._last: float = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != _COORDINATOR_LOOKUP or record.levelno < logging.ERROR:
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        if not args or not getattr(args[0], "retriable", False):
            return True  # not retried by aiokafka: a real error
        now = time.monotonic()
        if self._streak_start is None or now - self._last > self.streak_gap_s:
            self._streak_start = now
        self._last = now
        softer = logging.INFO if now - self._streak_start < self.grace_s else logging.WARNING
        record.levelno, record.levelname = softer, logging.getLevelName(softer)
        # Handlers do not look at loggers' levels again: drop what this logger would not log.
        return logging.getLogger(record.name).isEnabledFor(softer)


def soften_transient_coordinator_errors() -> None:
    """Install :class:`TransientCoordinatorFilter` on aiokafka's group coordinator (once)."""
    logger = logging.getLogger(_COORDINATOR_LOGGER)
    if not any(isinstance(f, TransientCoordinatorFilter) for f in logger.filters):
        logger.addFilter(TransientCoordinatorFilter())
