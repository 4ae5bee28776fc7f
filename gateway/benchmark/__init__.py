"""``gateway bench``: the feeder, the reference pipeline and the per-run probe."""
