"""Typed Binance events, one frozen dataclass per event kind, grouped by family.

Each module holds a family's classes and the functions that read them off the wire
(``parse_<kind>(payload, ctx)``); :mod:`gateway.binance.messages` dispatches frames to them.
"""
