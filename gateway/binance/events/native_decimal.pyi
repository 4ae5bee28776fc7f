"""Types of the compiled decimal reader (gateway/binance/events/native_decimal.pyx)."""

from collections.abc import Callable

from gateway.binance.events.base import Scaled

def set_fallback(reader: Callable[[object, str], Scaled]) -> None: ...
def scaled(value: object, name: str) -> Scaled: ...
