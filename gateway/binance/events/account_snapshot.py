"""The account reconciliation snapshot: what REST said about an account after a (re)connect.

A stream that was down may have missed fills, cancels and balance changes, and Binance does not
replay them. So after every (re)connect and re-subscription the gateway reads the account over
REST (open orders; balances; futures positions) and publishes one ``account_snapshot`` record in
the account's topic, between the events before and after the outage. A consumer that sees one
replaces its view of the account with it; ``reason`` says why it was taken.

Not parsed from a stream frame: built by :mod:`gateway.binance.reconcile` from REST answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import field
from decimal import Decimal
from typing import ClassVar

from gateway.binance.events.base import Publishable, event_class


@event_class
class SnapshotOrder:
    """One open order, as ``GET openOrders`` lists it."""

    symbol: str
    order_id: int
    client_order_id: str
    side: str
    order_type: str
    time_in_force: str
    status: str
    price: Decimal
    quantity: Decimal
    executed_quantity: Decimal
    position_side: str | None
    created_time_us: int
    update_time_us: int | None


@event_class
class SnapshotBalance:
    """One asset's balance. Spot fills ``free``/``locked``; futures ``wallet_balance``,
    ``free`` (available balance) and ``unrealized_profit``."""

    asset: str
    free: Decimal | None
    locked: Decimal | None
    wallet_balance: Decimal | None
    unrealized_profit: Decimal | None


@event_class
class SnapshotPosition:
    """One non-zero futures position (``GET positionRisk``)."""

    symbol: str
    position_side: str
    position_amount: Decimal
    entry_price: Decimal
    unrealized_profit: Decimal
    margin_type: str | None
    update_time_us: int | None


class SnapshotReason:
    """Why a snapshot was taken (plain strings in the record, like every enum-like value)."""

    START = "start"  # the first connection of this process
    RECONNECT = "reconnect"  # the connection dropped and was opened again
    RESUBSCRIBE = "resubscribe"  # spot: eventStreamTerminated, subscribed again
    LISTEN_KEY = "listen_key"  # futures: the key expired or vanished (-1125), a new one made
    ROTATION = "rotation"  # replaced before Binance's 24-hour cut


@event_class
class AccountSnapshot(Publishable):
    """Open orders, balances and positions of one account, read over REST after a (re)connect."""

    KIND: ClassVar[str] = "account_snapshot"
    ACCOUNT: ClassVar[bool] = True
    KEY_FIELD: ClassVar[str | None] = "account"
    TIME_FIELD: ClassVar[str] = "taken_at_us"

    market: str
    account: str
    reason: str
    taken_at_us: int
    open_orders: Sequence[SnapshotOrder]
    balances: Sequence[SnapshotBalance]
    positions: Sequence[SnapshotPosition]
    received_at_us: int
    extra: Mapping[str, str] = field(default_factory=dict)
