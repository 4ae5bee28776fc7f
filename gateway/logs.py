"""Logging: one JSON line per record (orjson), or readable text for a terminal.

Libraries (websockets, aiokafka) log through stdlib ``logging`` too, so everything lands in one
stream. Structured fields go in ``extra={"event_data": {...}}``.
"""

from __future__ import annotations

import logging
import sys
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
