"""Account reconciliation over REST, pure: which signed calls to make, and the snapshot they give.

After a user-data stream (re)connects, whatever happened while it was down is gone from the
stream. Reading the account's present state closes that hole: open orders plus balances (and
futures positions). These endpoints are ``USER_DATA`` (signed). docs/binance.md §7 lists only market-data
endpoints; paths and weights below are Binance's REST documentation (spot ``rest-api.md``,
USDⓈ-M / COIN-M "Account" and "Trade" pages), without a ``symbol`` filter, which is the dearer
form but the only one that sees every symbol:

=========  ====================================  ======
market     endpoint                              weight
=========  ====================================  ======
spot       ``GET /api/v3/openOrders``            80
spot       ``GET /api/v3/account``               20
usdm       ``GET /fapi/v1/openOrders``           40
usdm       ``GET /fapi/v3/account``              5
usdm       ``GET /fapi/v3/positionRisk``         5
coinm      ``GET /dapi/v1/openOrders``           40
coinm      ``GET /dapi/v1/account``              5
coinm      ``GET /dapi/v1/positionRisk``         1
=========  ====================================  ======

So one spot reconciliation costs 100 of the 6,000 weight a minute, a futures one 46 to 50 of 2,400:
cheap once per reconnect, which is why it is not rate-limited beyond the shared budget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.binance.events.account_snapshot import (
    AccountSnapshot,
    SnapshotBalance,
    SnapshotOrder,
    SnapshotPosition,
)
from gateway.binance.events.base import decimal, integer, text
from gateway.binance.markets import Market
from gateway.errors import MessageParseError

OPEN_ORDERS = "open_orders"
ACCOUNT = "account"
POSITIONS = "positions"


@dataclass(frozen=True, slots=True)
class RestCall:
    """One signed GET: ``name`` keys its answer in :func:`build_snapshot`."""

    name: str
    path: str
    weight: int
    params: Mapping[str, str]


_CALLS: dict[Market, tuple[RestCall, ...]] = {
    Market.SPOT: (
        RestCall(OPEN_ORDERS, "/api/v3/openOrders", 80, {}),
        RestCall(ACCOUNT, "/api/v3/account", 20, {"omitZeroBalances": "true"}),
    ),
    Market.USDM: (
        RestCall(OPEN_ORDERS, "/fapi/v1/openOrders", 40, {}),
        RestCall(ACCOUNT, "/fapi/v3/account", 5, {}),
        RestCall(POSITIONS, "/fapi/v3/positionRisk", 5, {}),
    ),
    Market.COINM: (
        RestCall(OPEN_ORDERS, "/dapi/v1/openOrders", 40, {}),
        RestCall(ACCOUNT, "/dapi/v1/account", 5, {}),
        RestCall(POSITIONS, "/dapi/v1/positionRisk", 1, {}),
    ),
}


def reconciliation_calls(market: Market) -> tuple[RestCall, ...]:
    """The signed calls whose answers make one snapshot of an account on ``market``."""
    return _CALLS[market]


def build_snapshot(
    market: Market,
    alias: str,
    reason: str,
    answers: Mapping[str, Any],
    *,
    taken_at_us: int,
    received_at_us: int,
) -> AccountSnapshot:
    """The snapshot record from the calls' decoded JSON answers (keyed by ``RestCall.name``).

    Raises:
        MessageParseError: an answer is not what Binance documents.
    """
    try:
        orders = [_order(item) for item in _list(answers[OPEN_ORDERS], OPEN_ORDERS)]
        account = answers[ACCOUNT]
        if not isinstance(account, dict):
            raise ValueError("account answer must be an object")
        if market is Market.SPOT:
            balances = [_spot_balance(item) for item in _list(account["balances"], "balances")]
            positions: list[SnapshotPosition] = []
        else:
            balances = [_futures_balance(item) for item in _list(account["assets"], "assets")]
            risk = _list(answers[POSITIONS], POSITIONS)
            positions = [_position(item) for item in risk if decimal(item["positionAmt"], "pa")]
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise MessageParseError(
            f"{market.value} reconciliation answer not understood: {type(exc).__name__}: {exc}"
        ) from exc
    return AccountSnapshot(
        market=market.value,
        account=alias,
        reason=reason,
        taken_at_us=taken_at_us,
        open_orders=orders,
        balances=balances,
        positions=positions,
        received_at_us=received_at_us,
    )


def _list(value: object, name: str) -> Sequence[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError(f"{name} must be a list of objects")
    return value


def _ms_to_us(value: object, name: str) -> int:
    return integer(value, name) * 1_000


def _optional_ms_to_us(item: Mapping[str, Any], key: str) -> int | None:
    value = item.get(key)
    return None if value is None else _ms_to_us(value, key)


def _order(item: Mapping[str, Any]) -> SnapshotOrder:
    side = item.get("positionSide")
    return SnapshotOrder(
        symbol=text(item["symbol"], "symbol"),
        order_id=integer(item["orderId"], "orderId"),
        client_order_id=str(item["clientOrderId"]),
        side=text(item["side"], "side"),
        order_type=text(item["type"], "type"),
        time_in_force=text(item["timeInForce"], "timeInForce"),
        status=text(item["status"], "status"),
        price=decimal(item["price"], "price"),
        quantity=decimal(item["origQty"], "origQty"),
        executed_quantity=decimal(item["executedQty"], "executedQty"),
        position_side=text(side, "positionSide") if side is not None else None,
        created_time_us=_ms_to_us(item["time"], "time"),
        update_time_us=_optional_ms_to_us(item, "updateTime"),
    )


def _spot_balance(item: Mapping[str, Any]) -> SnapshotBalance:
    return SnapshotBalance(
        asset=text(item["asset"], "asset"),
        free=decimal(item["free"], "free"),
        locked=decimal(item["locked"], "locked"),
        wallet_balance=None,
        unrealized_profit=None,
    )


def _futures_balance(item: Mapping[str, Any]) -> SnapshotBalance:
    return SnapshotBalance(
        asset=text(item["asset"], "asset"),
        free=decimal(item["availableBalance"], "availableBalance"),
        locked=None,
        wallet_balance=decimal(item["walletBalance"], "walletBalance"),
        unrealized_profit=decimal(item["unrealizedProfit"], "unrealizedProfit"),
    )


def _position(item: Mapping[str, Any]) -> SnapshotPosition:
    margin = item.get("marginType")
    return SnapshotPosition(
        symbol=text(item["symbol"], "symbol"),
        position_side=text(item.get("positionSide", "BOTH"), "positionSide"),
        position_amount=decimal(item["positionAmt"], "positionAmt"),
        entry_price=decimal(item["entryPrice"], "entryPrice"),
        unrealized_profit=decimal(item["unRealizedProfit"], "unRealizedProfit"),
        margin_type=str(margin) if margin is not None else None,
        update_time_us=_optional_ms_to_us(item, "updateTime"),
    )
