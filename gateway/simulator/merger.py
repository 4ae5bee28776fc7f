"""What the 2026-06-30 USD-M / COIN-M integration changed in futures payloads, as the simulator
serves them (docs/futures-merger.md §1; vectors ``usdm/*.merged.json``, ``coinm/*.merged.json``).

The simulator's own statement, written from Binance's SDK changelog (USD-M 12.0.0, COIN-M
6.0.0, USD-M 9.1.0 for ``ap``), never from the gateway's parser, so it stays an oracle:

* ``st`` (1 = USD-M, 2 = COIN-M) on aggregate trades, book tickers, depth, mark prices, mini
  tickers, tickers, ``!forceOrder@arr`` and ``!contractInfo``;
* USD-M adds ``ps`` (the pair) wherever COIN-M already had it, ``!forceOrder@arr`` carries
  ``ps`` and ``st`` beside ``o``, and USD-M ``!contractInfo`` no longer carries ``ps``;
* USD-M mark prices carry ``ap`` (the mark price's moving average) since 2026-03-26;
* the market-wide streams (:data:`MERGED_KINDS`) carry both markets' contracts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateway.simulator.markets import Market
from gateway.simulator.payloads import Payload
from gateway.simulator.streams import Kind

_K = Kind
SYMBOL_TYPE = {Market.USDM: 1, Market.COINM: 2}
OTHER_FUTURES = {Market.USDM: Market.COINM, Market.COINM: Market.USDM}

MERGED_KINDS = frozenset(
    {
        _K.ALL_BOOK_TICKER,
        _K.ALL_FORCE_ORDER,
        _K.ALL_MINI_TICKER,
        _K.ALL_TICKER,
        _K.CONTRACT_INFO,
        _K.ALL_MARK_PRICE,
    }
)
"""Market-wide streams that push both futures markets' contracts."""

_WITH_ST = MERGED_KINDS | {
    _K.AGG_TRADE,
    _K.BOOK_TICKER,
    _K.DIFF_DEPTH,
    _K.PARTIAL_DEPTH,
    _K.RPI_DEPTH,
    _K.MARK_PRICE,
    _K.MINI_TICKER,
    _K.TICKER,
}
_USDM_WITH_PS = _WITH_ST - {_K.AGG_TRADE, _K.MARK_PRICE, _K.ALL_MARK_PRICE, _K.CONTRACT_INFO}


def stamp(kind: Kind, market: Market, payload: Any, pairs: Mapping[str, str]) -> Any:
    """``payload`` (an object or an array of them) as Binance sends it since the integration."""
    if market not in SYMBOL_TYPE or kind not in _WITH_ST:
        return payload
    if isinstance(payload, list):
        return [_stamp_one(kind, market, item, pairs) for item in payload]
    return _stamp_one(kind, market, payload, pairs)


def _stamp_one(kind: Kind, market: Market, payload: Payload, pairs: Mapping[str, str]) -> Payload:
    out = dict(payload)
    symbol = out["o"]["s"] if kind is _K.ALL_FORCE_ORDER else out["s"]
    if market is Market.USDM:
        if kind is _K.CONTRACT_INFO:
            del out["ps"]
        elif kind in (_K.MARK_PRICE, _K.ALL_MARK_PRICE):
            out["ap"] = out["p"]  # the simulator's mark price does not move within a period
        elif kind in _USDM_WITH_PS and "ps" not in out:
            out["ps"] = pairs[symbol]
    out["st"] = SYMBOL_TYPE[market]
    return out


def stamped_builder(build: Callable[..., Payload], market: Market) -> Callable[..., Payload]:
    """An ``@aggTrade`` payload builder whose payloads carry ``st``."""
    if market not in SYMBOL_TYPE:
        return build
    st = SYMBOL_TYPE[market]
    return lambda *args: build(*args) | {"st": st}
