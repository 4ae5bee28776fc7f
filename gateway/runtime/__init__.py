"""The asyncio shells around the pure core, along the data path.

Frame → record: :mod:`pipeline` (parse, build, publish or dead-letter, with :mod:`publishing`),
trade ids kept continuous by :mod:`sequence` (the shell of ``binance.sequence``), depth books kept
in sync by :mod:`book` (the shell of ``binance.book``), each stream's cadence watched by
:mod:`liveness` (the shell of ``binance.liveness``), whose kline windows :mod:`klines` recovers
from REST (the shell of ``binance.kline_recovery``). Around them: :mod:`shards` runs one shard's
connections, :mod:`ownership` claims shards through the coordinator, :mod:`worker` composes a
worker, :mod:`processes` runs workers as child processes, :mod:`loop` holds the event-loop plumbing.
"""
