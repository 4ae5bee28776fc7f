"""User-data event payloads: spot (WebSocket API) and USDⓈ-M / COIN-M (listen keys).

Pure builders (docs/binance.md §6; vectors ``spot-user/``, ``usdm-user/``). Spot events travel wrapped as
``{"subscriptionId": n, "event": {...}}`` on the WebSocket API since the listen-key streams were
retired (2026-02-20); :func:`wsapi_event` wraps them, and without a subscription id produces the
``{"event": {...}}`` form used for ``serverShutdown`` and the 2025-08-12 ``eventStreamTerminated``.
Futures events are raw payloads on the listen-key connection.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.simulator.engine import UNITS_PER_WHOLE, SymbolSpec
from gateway.simulator.markets import Market
from gateway.simulator.payloads import Payload, format_decimal, price_text, qty_text


@dataclass(frozen=True, slots=True)
class UserOrder:
    """One order of the simulated account at one moment of its life (1e-8 units)."""

    spec: SymbolSpec
    order_id: int
    client_order_id: str
    side: str
    price: int
    quantity: int
    filled: int
    last_quantity: int
    last_price: int
    trade_id: int
    execution_type: str
    status: str
    time_us: int

    @property
    def quote_filled(self) -> int:
        """Cumulative quote quantity (price x filled)."""
        return self.price * self.filled // UNITS_PER_WHOLE


def wsapi_event(event: Payload, subscription_id: int | None) -> Payload:
    """Wrap a spot user event as the WebSocket API delivers it."""
    if subscription_id is None:
        return {"event": event}
    return {"subscriptionId": subscription_id, "event": event}


def execution_report(order: UserOrder) -> Payload:
    """Spot ``executionReport`` (the unconditional keys, in the docs' order)."""
    spec, time_ms = order.spec, order.time_us // 1_000
    traded = order.execution_type == "TRADE"
    return {
        "e": "executionReport",
        "E": time_ms,
        "s": spec.symbol,
        "c": order.client_order_id,
        "S": order.side,
        "o": "LIMIT",
        "f": "GTC",
        "q": qty_text(spec, order.quantity),
        "p": price_text(spec, order.price),
        "P": format_decimal(0),
        "F": format_decimal(0),
        "g": -1,
        "C": "",
        "x": order.execution_type,
        "X": order.status,
        "r": "NONE",
        "i": order.order_id,
        "l": qty_text(spec, order.last_quantity),
        "z": qty_text(spec, order.filled),
        "L": price_text(spec, order.last_price),
        "n": "0",
        "N": spec.quote_asset if traded else None,
        "T": time_ms,
        "t": order.trade_id if traded else -1,
        "v": 3,
        "I": order.order_id * 2,
        "w": not traded,
        "m": traded,
        "M": traded,
        "O": time_ms,
        "Z": format_decimal(order.quote_filled),
        "Y": format_decimal(order.last_price * order.last_quantity // UNITS_PER_WHOLE),
        "Q": format_decimal(0),
        "W": time_ms,
        "V": "NONE",
    }


def outbound_account_position(asset: str, free: int, locked: int, time_us: int) -> Payload:
    """Spot ``outboundAccountPosition`` for one changed asset."""
    time_ms = time_us // 1_000
    balance = {"a": asset, "f": format_decimal(free), "l": format_decimal(locked)}
    return {"e": "outboundAccountPosition", "E": time_ms, "u": time_ms, "B": [balance]}


def balance_update(asset: str, delta: int, time_us: int, *, external_lock: bool = False) -> Payload:
    """Spot ``balanceUpdate`` (or ``externalLockUpdate``, which has the same keys)."""
    event = "externalLockUpdate" if external_lock else "balanceUpdate"
    time_ms = time_us // 1_000
    return {"e": event, "E": time_ms, "a": asset, "d": format_decimal(delta), "T": time_ms}


def list_status(
    spec: SymbolSpec, list_id: int, orders: list[tuple[int, str]], time_us: int
) -> Payload:
    """Spot ``listStatus`` of an OCO list whose orders are ``(order id, client id)``."""
    time_ms = time_us // 1_000
    return {
        "e": "listStatus",
        "E": time_ms,
        "s": spec.symbol,
        "g": list_id,
        "c": "OCO",
        "l": "EXEC_STARTED",
        "L": "EXECUTING",
        "r": "NONE",
        "C": f"list{list_id}",
        "T": time_ms,
        "O": [{"s": spec.symbol, "i": order_id, "c": client} for order_id, client in orders],
    }


def event_stream_terminated(time_us: int) -> Payload:
    """Spot ``eventStreamTerminated`` (on unsubscribe or logout)."""
    return {"e": "eventStreamTerminated", "E": time_us // 1_000}


def listen_key_expired(market: Market, listen_key: str, time_us: int) -> Payload:
    """``listenKeyExpired``. The futures docs show ``E`` as a string; spot's legacy one, a number."""
    time_ms = time_us // 1_000
    return {
        "e": "listenKeyExpired",
        "E": str(time_ms) if market.is_futures else time_ms,
        "listenKey": listen_key,
    }


def order_trade_update(order: UserOrder) -> Payload:
    """Futures ``ORDER_TRADE_UPDATE``."""
    spec, time_ms = order.spec, order.time_us // 1_000
    traded = order.execution_type == "TRADE"
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": time_ms,
        "T": time_ms,
        "o": {
            "s": spec.symbol,
            "c": order.client_order_id,
            "S": order.side,
            "o": "LIMIT",
            "f": "GTC",
            "q": qty_text(spec, order.quantity),
            "p": price_text(spec, order.price),
            "ap": price_text(spec, order.last_price if order.filled else 0),
            "sp": "0",
            "x": order.execution_type,
            "X": order.status,
            "i": order.order_id,
            "l": qty_text(spec, order.last_quantity),
            "z": qty_text(spec, order.filled),
            "L": price_text(spec, order.last_price),
            "N": spec.quote_asset,
            "n": "0",
            "T": time_ms,
            "t": order.trade_id if traded else 0,
            "b": "0",
            "a": "0",
            "m": traded,
            "R": False,
            "wt": "CONTRACT_PRICE",
            "ot": "LIMIT",
            "ps": "BOTH",
            "cp": False,
            "AP": "0",
            "cr": "0",
            "pP": False,
            "si": 0,
            "ss": 0,
            "rp": "0",
            "V": "EXPIRE_TAKER",
            "pm": "NONE",
            "gtd": 0,
            "er": "0",
        },
    }


def trade_lite(order: UserOrder) -> Payload:
    """Futures ``TRADE_LITE`` (a fill, sent ahead of the full ORDER_TRADE_UPDATE)."""
    spec, time_ms = order.spec, order.time_us // 1_000
    return {
        "e": "TRADE_LITE",
        "E": time_ms,
        "T": time_ms,
        "s": spec.symbol,
        "q": qty_text(spec, order.quantity),
        "p": price_text(spec, order.price),
        "m": True,
        "c": order.client_order_id,
        "S": order.side,
        "L": price_text(spec, order.last_price),
        "l": qty_text(spec, order.last_quantity),
        "t": order.trade_id,
        "i": order.order_id,
    }


def account_update(
    spec: SymbolSpec, wallet: int, change: int, position: int, entry_price: int, time_us: int
) -> Payload:
    """Futures ``ACCOUNT_UPDATE`` after an order fill: one balance and one position."""
    time_ms = time_us // 1_000
    balance = {
        "a": spec.quote_asset,
        "wb": format_decimal(wallet),
        "cw": format_decimal(wallet),
        "bc": format_decimal(change),
    }
    held = {
        "s": spec.symbol,
        "pa": qty_text(spec, position),
        "ep": price_text(spec, entry_price),
        "bep": price_text(spec, entry_price),
        "cr": "0",
        "up": "0",
        "mt": "cross",
        "iw": "0",
        "ps": "BOTH",
    }
    return {
        "e": "ACCOUNT_UPDATE",
        "E": time_ms,
        "T": time_ms,
        "a": {"m": "ORDER", "B": [balance], "P": [held]},
    }


def margin_call(spec: SymbolSpec, position: int, mark: int, wallet: int, time_us: int) -> Payload:
    """Futures ``MARGIN_CALL`` for one cross position."""
    return {
        "e": "MARGIN_CALL",
        "E": time_us // 1_000,
        "cw": format_decimal(wallet),
        "p": [
            {
                "s": spec.symbol,
                "ps": "LONG",
                "pa": qty_text(spec, position),
                "mt": "CROSSED",
                "iw": "0",
                "mp": format_decimal(mark),
                "up": "0",
                "mm": format_decimal(wallet // 2),
            }
        ],
    }


def account_config_update(
    time_us: int, *, symbol: str | None = None, leverage: int = 20
) -> Payload:
    """Futures ``ACCOUNT_CONFIG_UPDATE``: a symbol's leverage, or (no symbol) multi-assets mode."""
    time_ms = time_us // 1_000
    head: Payload = {"e": "ACCOUNT_CONFIG_UPDATE", "E": time_ms, "T": time_ms}
    if symbol is None:
        return head | {"ai": {"j": True}}
    return head | {"ac": {"s": symbol, "l": leverage}}


def deposit_update(asset: str, wallet: int, change: int, time_us: int) -> Payload:
    """Futures ``ACCOUNT_UPDATE`` for a deposit: reason ``DEPOSIT``, one balance, no position."""
    time_ms = time_us // 1_000
    balance = {
        "a": asset,
        "wb": format_decimal(wallet),
        "cw": format_decimal(wallet),
        "bc": format_decimal(change),
    }
    return {
        "e": "ACCOUNT_UPDATE",
        "E": time_ms,
        "T": time_ms,
        "a": {"m": "DEPOSIT", "B": [balance], "P": []},
    }


# --- signed REST views of the account (what a reconciling client reads) -----------------------


def rest_open_order(market: Market, order: UserOrder) -> Payload:
    """One entry of ``GET openOrders``: spot ``/api/v3``, futures ``/fapi/v1`` or ``/dapi/v1``."""
    spec, time_ms = order.spec, order.time_us // 1_000
    common = {
        "symbol": spec.symbol,
        "orderId": order.order_id,
        "clientOrderId": order.client_order_id,
        "price": price_text(spec, order.price),
        "origQty": qty_text(spec, order.quantity),
        "executedQty": qty_text(spec, order.filled),
        "status": order.status,
        "timeInForce": "GTC",
        "type": "LIMIT",
        "side": order.side,
        "stopPrice": "0",
        "time": time_ms,
        "updateTime": time_ms,
    }
    if market is Market.SPOT:
        return {
            **common,
            "orderListId": -1,
            "cummulativeQuoteQty": format_decimal(order.quote_filled),
            "icebergQty": "0",
            "isWorking": True,
            "workingTime": time_ms,
            "origQuoteOrderQty": "0",
            "selfTradePreventionMode": "NONE",
        }
    return {
        **common,
        "avgPrice": "0",
        "cumQuote": "0",
        "origType": "LIMIT",
        "positionSide": "BOTH",
        "reduceOnly": False,
        "closePosition": False,
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
    }


def rest_spot_account(balances: dict[str, int], time_us: int) -> Payload:
    """``GET /api/v3/account`` (the keys a reconciliation reads, plus the usual flags)."""
    return {
        "makerCommission": 10,
        "takerCommission": 10,
        "canTrade": True,
        "canWithdraw": True,
        "canDeposit": True,
        "updateTime": time_us // 1_000,
        "accountType": "SPOT",
        "balances": [
            {"asset": asset, "free": format_decimal(free), "locked": format_decimal(0)}
            for asset, free in sorted(balances.items())
        ],
        "permissions": ["SPOT"],
    }


def rest_futures_account(balances: dict[str, int], time_us: int) -> Payload:
    """``GET /fapi/v3/account`` / ``/dapi/v1/account``: the ``assets`` part a reconciliation reads."""
    time_ms = time_us // 1_000
    return {
        "assets": [
            {
                "asset": asset,
                "walletBalance": format_decimal(wallet),
                "unrealizedProfit": "0.00000000",
                "marginBalance": format_decimal(wallet),
                "crossWalletBalance": format_decimal(wallet),
                "availableBalance": format_decimal(wallet),
                "maxWithdrawAmount": format_decimal(wallet),
                "updateTime": time_ms,
            }
            for asset, wallet in sorted(balances.items())
        ],
        "positions": [],
    }


def rest_position_risk(
    specs: dict[str, SymbolSpec], positions: dict[str, tuple[int, int]], time_us: int
) -> list[Payload]:
    """``GET /fapi/v3/positionRisk`` / ``/dapi/v1/positionRisk``: every non-zero position."""
    return [
        {
            "symbol": symbol,
            "positionSide": "BOTH",
            "positionAmt": qty_text(specs[symbol], held),
            "entryPrice": price_text(specs[symbol], entry),
            "unRealizedProfit": "0.00000000",
            "marginType": "cross",
            "updateTime": time_us // 1_000,
        }
        for symbol, (held, entry) in sorted(positions.items())
        if held
    ]
