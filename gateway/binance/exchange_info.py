"""``GET exchangeInfo`` as the listed symbols, pure: which symbols exist and whether they trade.

The shard plan follows listings and delistings through this one answer, so it is read strictly:
a body that is not the documented shape is a :class:`~gateway.errors.ProtocolError` naming what
is wrong, never an empty universe (which would stop every stream). Only the fields the plan
needs survive the parser; filters, rate limits and precisions stay behind.

The three markets differ in one name: spot (``/api/v3``) and USDⓈ-M (``/fapi/v1``) call a
symbol's state ``status``, COIN-M (``/dapi/v1``) ``contractStatus``. Spot states are
``TRADING``, ``HALT``, ``BREAK`` (and ``CANCEL_ONLY`` from 2026-07, docs/binance.md §7 and §8); futures
ones include ``PENDING_TRADING``, ``TRADING``, ``SETTLING``, ``CLOSE``. Only ``TRADING`` streams
data, which is what :attr:`ListedSymbol.is_trading` says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.binance.markets import Market
from gateway.errors import ProtocolError

TRADING = "TRADING"

STATUS_FIELD: dict[Market, str] = {
    Market.SPOT: "status",
    Market.USDM: "status",
    Market.COINM: "contractStatus",
}
"""The field of a ``symbols[]`` entry holding the symbol's state, per market."""


@dataclass(frozen=True, slots=True)
class ListedSymbol:
    """One ``symbols[]`` entry of exchangeInfo, reduced to what the plan selects on."""

    symbol: str
    status: str
    base_asset: str
    quote_asset: str
    contract_type: str | None
    """Futures: ``PERPETUAL``, ``CURRENT_QUARTER``...; spot: None."""
    pair: str | None = None
    """Futures: the underlying pair (``BTCUSD`` for ``BTCUSD_PERP``), which names the pair-keyed
    streams (index price, continuous klines); spot: None."""

    @property
    def is_trading(self) -> bool:
        """Whether Binance streams this symbol's market data now."""
        return self.status == TRADING


def parse_exchange_info(
    market: Market, body: bytes | Mapping[str, Any]
) -> tuple[ListedSymbol, ...]:
    """The symbols of one market's exchangeInfo answer, in the order Binance lists them.

    Raises:
        ProtocolError: the body is not JSON, has no ``symbols`` list, or an entry lacks a field
            (the message names the entry and the field).
    """
    document = _load(market, body)
    entries = document.get("symbols")
    if not isinstance(entries, list):
        raise ProtocolError(f"{market.value} exchangeInfo has no `symbols` list")
    return tuple(_symbol(market, index, entry) for index, entry in enumerate(entries))


def _load(market: Market, body: bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    document: object = body
    if isinstance(body, bytes):
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            shown = body[:80].decode("utf-8", errors="replace")
            raise ProtocolError(f"{market.value} exchangeInfo is not JSON: {shown!r}") from None
    if not isinstance(document, Mapping):
        raise ProtocolError(
            f"{market.value} exchangeInfo is not a JSON object (got {type(document).__name__})"
        )
    return document


def _symbol(market: Market, index: int, entry: Any) -> ListedSymbol:
    if not isinstance(entry, Mapping):
        raise ProtocolError(f"{market.value} exchangeInfo symbols[{index}] is not an object")
    where = f"{market.value} exchangeInfo symbols[{index}]"
    symbol = _text(entry, "symbol", where)
    where = f"{where} ({symbol})"
    return ListedSymbol(
        symbol=symbol,
        status=_text(entry, STATUS_FIELD[market], where),
        base_asset=_text(entry, "baseAsset", where),
        quote_asset=_text(entry, "quoteAsset", where),
        contract_type=(
            _text(entry, "contractType", where, allow_empty=True)
            if market is not Market.SPOT
            else None
        ),
        pair=_optional_text(entry, "pair", where) if market is not Market.SPOT else None,
    )


def _optional_text(entry: Mapping[str, Any], field: str, where: str) -> str | None:
    if entry.get(field) in (None, ""):
        return None
    return _text(entry, field, where)


def _text(entry: Mapping[str, Any], field: str, where: str, *, allow_empty: bool = False) -> str:
    value = entry.get(field)
    if not isinstance(value, str) or not (value or allow_empty):
        kind = "a string" if allow_empty else "a non-empty string"
        raise ProtocolError(f"{where}: `{field}` must be {kind}, got {value!r}")
    return value
