"""The USD-M / COIN-M integration (2026-06-30): market-wide streams carry both kinds of contract.

Since then ``!bookTicker``, ``!forceOrder@arr``, ``!miniTicker@arr``, ``!ticker@arr``,
``!contractInfo`` and the mark-price arrays push USD-M and COIN-M contracts alike, each marked
by ``st`` (1 = USD-M, 2 = COIN-M), on either market's connection (docs/futures-merger.md).

The gateway's rule, pure and decided from configuration alone:

* a record goes to the topics of its contract's market (``st``), whichever connection carried it,
  so a COIN-M contract never lands in ``binance.usdm.*`` (:func:`~gateway.binance.events.base.
  contract_market`);
* when both futures markets subscribe the same merged stream, each market's connections keep
  only their own contracts and leave the others to the other market's connections, so no
  contract is published twice (:func:`left_to_other_market`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gateway.binance.markets import Market

MERGED_CHANNELS: dict[str, str] = {
    "!bookTicker": "book_ticker",
    "!forceOrder": "force_order",
    "!miniTicker": "mini_ticker",
    "!ticker": "ticker",
    "!contractInfo": "contract_info",
    "!markPrice": "mark_price",
}
"""Merged market-wide channels (the stream name up to its first ``@``) and the record kind each
carries."""

_OTHER = {Market.USDM: Market.COINM, Market.COINM: Market.USDM}


def other_futures_market(market: Market) -> Market | None:
    """The futures market whose contracts share ``market``'s merged streams; None for spot."""
    return _OTHER.get(market)


def merged_channels(streams: Iterable[str]) -> frozenset[str]:
    """The merged channels among market-wide stream names (``!markPrice@arr@1s`` → ``!markPrice``)."""
    return frozenset(
        channel for s in streams if (channel := s.partition("@")[0]) in MERGED_CHANNELS
    )


def left_to_other_market(
    market: Market, market_wide: Mapping[Market, Iterable[str]]
) -> frozenset[str]:
    """Merged channels that ``market``'s connections carry but whose other-market contracts
    they leave to the other market's connections, because that market subscribes them too."""
    other = other_futures_market(market)
    if other is None or other not in market_wide:
        return frozenset()
    return merged_channels(market_wide.get(market, ())) & merged_channels(market_wide[other])


def other_market_kinds(market: Market, market_wide: Iterable[str]) -> set[tuple[str, str]]:
    """``(market, kind)`` of the other market's topics that ``market``'s merged streams may
    write to: the topics a gateway must create even if it does not stream that market."""
    other = other_futures_market(market)
    if other is None:
        return set()
    return {(other.value, MERGED_CHANNELS[channel]) for channel in merged_channels(market_wide)}
