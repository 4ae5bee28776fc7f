"""Futures user-data payloads of algo orders and grid strategies (docs/futures-merger.md §3;
vectors ``usdm-user/ALGO_UPDATE.json``, ``CONDITIONAL_ORDER_TRIGGER_REJECT.json``,
``GRID_UPDATE.json``, ``STRATEGY_UPDATE.json``).

Since 2025-12-09 USD-M stop, take-profit and trailing orders live in Binance's Algo Service and
report as ``ALGO_UPDATE``; keys follow the documented example's order. ``o.ia`` (2026-08) is
only sent for trailing orders, where it means something.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.simulator.engine import SymbolSpec
from gateway.simulator.payloads import Payload, format_decimal, price_text, qty_text

TRAILING = "TRAILING_STOP_MARKET"
GRID_OPENED = 8007
"""STRATEGY_UPDATE opCode "new grid strategy"."""


@dataclass(frozen=True, slots=True)
class AlgoOrder:
    """One algo order of the simulated account at one moment of its life (1e-8 units)."""

    spec: SymbolSpec
    algo_id: int
    order_type: str
    side: str
    quantity: int
    trigger_price: int
    status: str
    time_us: int
    order_id: int | None = None
    """The matching-engine order once triggered."""
    average_price: int = 0
    executed: int = 0
    reason: str = ""

    @property
    def client_algo_id(self) -> str:
        return f"simalgo{self.algo_id}"


def algo_update(order: AlgoOrder) -> Payload:
    """``ALGO_UPDATE``."""
    spec, time_ms = order.spec, order.time_us // 1_000
    body: Payload = {
        "caid": order.client_algo_id,
        "aid": order.algo_id,
        "at": "CONDITIONAL",
        "o": order.order_type,
        "s": spec.symbol,
        "S": order.side,
        "ps": "BOTH",
        "f": "GTC",
        "q": qty_text(spec, order.quantity),
        "X": order.status,
        "ai": "" if order.order_id is None else str(order.order_id),
        "ap": price_text(spec, order.average_price),
        "aq": qty_text(spec, order.executed),
        "act": "MARKET" if order.order_id is not None else "0",
        "tp": price_text(spec, order.trigger_price),
        "p": format_decimal(0),
        "V": "EXPIRE_MAKER",
        "wt": "CONTRACT_PRICE",
        "pm": "NONE",
        "cp": False,
        "pP": False,
        "R": False,
        "tt": time_ms if order.order_id is not None else 0,
        "gtd": 0,
        "rm": order.reason,
    }
    if order.order_type == TRAILING:
        body["ia"] = order.order_id is not None
    return {"e": "ALGO_UPDATE", "T": time_ms, "E": time_ms, "o": body}


def conditional_order_trigger_reject(order: AlgoOrder) -> Payload:
    """``CONDITIONAL_ORDER_TRIGGER_REJECT`` (deprecated 2025-12-15; may still arrive)."""
    time_ms = order.time_us // 1_000
    return {
        "e": "CONDITIONAL_ORDER_TRIGGER_REJECT",
        "E": time_ms,
        "T": time_ms,
        "or": {"s": order.spec.symbol, "i": order.order_id or 0, "r": order.reason},
    }


def strategy_update(spec: SymbolSpec, strategy_id: int, status: str, time_us: int) -> Payload:
    """``STRATEGY_UPDATE`` of a grid strategy."""
    time_ms = time_us // 1_000
    return {
        "e": "STRATEGY_UPDATE",
        "T": time_ms,
        "E": time_ms,
        "su": {
            "si": strategy_id,
            "st": "GRID",
            "ss": status,
            "s": spec.symbol,
            "ut": time_ms,
            "c": GRID_OPENED,
        },
    }


def grid_update(
    spec: SymbolSpec, strategy_id: int, price: int, quantity: int, time_us: int
) -> Payload:
    """``GRID_UPDATE``: one grid sub-order filled at ``price``; nothing matched yet."""
    time_ms = time_us // 1_000
    return {
        "e": "GRID_UPDATE",
        "T": time_ms,
        "E": time_ms,
        "gu": {
            "si": strategy_id,
            "st": "GRID",
            "ss": "WORKING",
            "s": spec.symbol,
            "r": format_decimal(0),
            "up": price_text(spec, price),
            "uq": qty_text(spec, quantity),
            "uf": format_decimal(0),
            "mp": format_decimal(0),
            "ut": time_ms,
        },
    }
