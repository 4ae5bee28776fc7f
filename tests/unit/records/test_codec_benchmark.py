from gateway.benchmark.codec import CASES, cpu_us_per_event


def test_codec_benchmark_measures_every_case() -> None:
    results = cpu_us_per_event(events=20, rounds=1)
    assert [name for name, _, _ in results] == [name for name, _, _ in CASES]
    assert all(parse > 0 and build > 0 for _, parse, build in results)
