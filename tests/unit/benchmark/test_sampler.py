"""The profile sampler credits the CPU to the innermost frame with a cost centre."""

from __future__ import annotations

import gc
import sys
import time
from types import FrameType
from typing import Any

from gateway.benchmark.sampler import OTHER, Sampler, centre_of


def busy_in(path: str, seconds: float) -> FrameType:
    """Spin for ``seconds`` in a function whose code says it lives at ``path``; its frame."""
    source = (
        "def spin(seconds, clock, getframe):\n"
        "    end = clock() + seconds\n"
        "    while clock() < end:\n"
        "        pass\n"
        "    return getframe()\n"
    )
    scope: dict[str, Any] = {}
    exec(compile(source, path, "exec"), scope)
    frame: FrameType = scope["spin"](seconds, time.thread_time, sys._getframe)
    return frame


def test_the_innermost_frame_with_a_centre_names_it() -> None:
    frame = busy_in("/site-packages/fastavro/_write.py", 0.0)
    assert centre_of(frame) == "Avro encode + record build"
    assert centre_of(sys._getframe()) == OTHER  # a test module is no cost centre
    assert centre_of(None) == OTHER


def test_cpu_spent_in_a_centre_is_credited_to_it_and_gc_apart() -> None:
    sampler = Sampler(interval_s=0.001)
    sampler.start()
    busy_in("/work/gateway/records/builder.py", 0.3)
    garbage = [[i] for i in range(200_000)]
    gc.collect()
    del garbage
    shares = sampler.stop()
    assert abs(sum(shares.values()) - 1) < 1e-9
    # In CPU seconds: most of the 0.3 s spun is credited to the spinning frame's centre (the
    # rest of the run, the collection above all, depends on the test process's heap).
    assert 0.2 < sampler.cpu_s["Avro encode + record build"] < 0.4
    assert sampler.cpu_s["garbage collection"] > 0
