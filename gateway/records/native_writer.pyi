"""Types of the compiled record writer (gateway/records/native_writer.pyx)."""

from collections.abc import Callable, Iterable
from typing import Any

OPS: dict[str, int]

class RecordWriter:
    def __init__(
        self, fields: Iterable[tuple[str, str, int, Callable[[bytearray, Any], None]]]
    ) -> None: ...
    def __call__(self, out: bytearray, value: Any) -> None: ...
