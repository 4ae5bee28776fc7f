"""Where the gateway's CPU goes: an in-process sampler for ``gateway bench``'s profile summary.

A thread looks at the event loop's thread every ``interval_s``, finds the innermost frame that
belongs to a cost centre (:data:`CENTRES`, first match from the inside out), and credits it the CPU
time that thread used since the last look (its own CPU clock, so waiting in the event loop's
``select`` costs nothing). Garbage collection holds the interpreter lock, so the sampler cannot see
it: its time is taken from the collector's own callbacks instead. Cheap enough (a few µs a
millisecond) to leave the figures it explains nearly unchanged, unlike a tracing profiler.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections import defaultdict
from types import FrameType

CENTRES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("garbage collection", ()),  # from gc.callbacks, never matched by a frame
    ("metrics (prometheus)", ("/prometheus_client/", "/gateway/metrics.py")),
    ("Avro encode + record build", ("/fastavro/", "/gateway/records/")),
    ("parse + normalise", ("/gateway/binance/events/", "/gateway/binance/messages.py",
                           "/gateway/binance/merger.py", "/gateway/binance/plausibility.py")),
    ("trade-id continuity", ("/gateway/runtime/sequence.py", "/gateway/binance/sequence.py")),
    ("stream liveness", ("/gateway/runtime/liveness.py", "/gateway/binance/liveness.py")),
    ("frame pipeline + publish step", ("/gateway/runtime/pipeline.py",
                                       "/gateway/runtime/publishing.py")),
    ("Kafka sink (batches, acks)", ("/gateway/adapters/kafka",)),
    ("aiokafka (sender, protocol, compression)", ("/aiokafka/",)),
    ("websockets receive", ("/websockets/", "/gateway/adapters/binance_ws.py")),
    ("event loop (asyncio, uvloop)", ("/asyncio/", "/uvloop/")),
)  # fmt: skip
OTHER = "other"


def centre_of(frame: FrameType | None) -> str:
    """The cost centre of the innermost frame on ``frame``'s stack that has one."""
    while frame is not None:
        path = frame.f_code.co_filename
        for name, markers in CENTRES:
            if any(marker in path for marker in markers):
                return name
        frame = frame.f_back
    return OTHER


class Sampler:
    """Samples one thread (the event loop's: the caller's) until stopped."""

    def __init__(self, interval_s: float = 0.001) -> None:
        self._interval_s = interval_s
        self._thread_id = threading.get_ident()
        self._clock = time.pthread_getcpuclockid(self._thread_id)
        self.cpu_s: defaultdict[str, float] = defaultdict(float)
        self._gc_started: float | None = None
        self._gc_unsampled = 0.0  # collector time not yet taken out of a sample's CPU
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        self._thread.start()

    def stop(self) -> dict[str, float]:
        """Stop sampling; each centre's share of the CPU the thread used (sums to 1)."""
        self._stop.set()
        self._thread.join()
        gc.callbacks.remove(self._on_gc)
        total = sum(self.cpu_s.values())
        ranked = sorted(self.cpu_s.items(), key=lambda item: -item[1])
        return {name: seconds / total for name, seconds in ranked} if total else {}

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started is not None:
            spent = time.perf_counter() - self._gc_started
            self.cpu_s["garbage collection"] += spent
            self._gc_unsampled += spent
            self._gc_started = None

    def _run(self) -> None:
        last = time.clock_gettime(self._clock)
        while not self._stop.wait(self._interval_s):
            frame = sys._current_frames().get(self._thread_id)
            now = time.clock_gettime(self._clock)
            # The collector's time is in the thread's CPU too, but already counted as its own.
            gc_s, self._gc_unsampled = self._gc_unsampled, 0.0
            self.cpu_s[centre_of(frame)] += max(0.0, now - last - gc_s)
            last = now
