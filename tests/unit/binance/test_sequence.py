"""Trade-id continuity: every id reaches Kafka exactly once, in order, or is declared lost."""

from __future__ import annotations

import random
from collections.abc import Iterable

from hypothesis import given, settings, strategies as st

from gateway.binance.sequence import Emit, FetchRange, IdContinuity, IdGap, Rejected


def run(
    continuity: IdContinuity[str],
    deliveries: Iterable[int],
    rest_history_from: int,
    rest_page: int,
    fail_every: int = 0,
) -> list[Emit[str] | IdGap]:
    """Deliver live ids; answer fetches from a REST that keeps ids >= rest_history_from."""
    out: list[Emit[str] | IdGap] = []
    fetches = 0

    def serve() -> None:
        nonlocal fetches
        for request in continuity.requests_to_send():
            fetches += 1
            if fail_every and fetches % fail_every == 0:
                continuity.backfill_failed()
                continue
            first = max(request.first_id, rest_history_from)
            ids = range(first, min(request.last_id, first + rest_page - 1) + 1)
            continuity.receive_backfill((i, f"rest-{i}") for i in ids)
        out.extend(continuity.to_emit())

    for event_id in deliveries:
        continuity.receive_live(event_id, f"live-{event_id}")
        serve()
        while continuity.backfilling:  # settle the fetches this delivery caused
            serve()
    return out


def emits(out: Iterable[Emit[str] | IdGap]) -> list[Emit[str]]:
    """The items, every one of which must be an emitted event (no gap)."""
    items = list(out)
    assert all(isinstance(item, Emit) for item in items), items
    return [item for item in items if isinstance(item, Emit)]


def covered(out: Iterable[Emit[str] | IdGap]) -> list[int]:
    ids: list[int] = []
    for item in out:
        if isinstance(item, Emit):
            ids.append(item.event_id)
        else:
            ids.extend(range(item.first_id, item.last_id + 1))
    return ids


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    count=st.integers(1, 300),
    drop_rate=st.floats(0, 0.4),
    dup_rate=st.floats(0, 0.2),
    history_from=st.integers(1, 150),
    page=st.integers(1, 50),
    fail_every=st.sampled_from([0, 2, 3, 5]),  # every n-th fetch fails transiently
)
def test_every_id_once_in_order_or_declared_lost(
    seed: int,
    count: int,
    drop_rate: float,
    dup_rate: float,
    history_from: int,
    page: int,
    fail_every: int,
) -> None:
    rng = random.Random(seed)
    deliveries = []
    for event_id in range(1, count + 1):
        if event_id == 1 or event_id == count or rng.random() >= drop_rate:
            deliveries.append(event_id)
        if deliveries and rng.random() < dup_rate:
            deliveries.append(rng.choice(deliveries))  # an overlap resending an older id
    continuity: IdContinuity[str] = IdContinuity()
    out = run(continuity, deliveries, history_from, page, fail_every)
    assert covered(out) == list(range(1, count + 1))
    delivered = set(deliveries)
    for item in out:
        if isinstance(item, Emit):
            assert item.backfilled == (item.event_id not in delivered)
            assert item.event == ("rest-" if item.backfilled else "live-") + str(item.event_id)
        else:  # only ids REST no longer has may be declared lost
            assert item.last_id < history_from
            assert not delivered & set(range(item.first_id, item.last_id + 1))


Lagged = tuple[list[Emit[str] | IdGap], list[Rejected[str]], list[tuple[int, int]], int | None, int]


def lagging(
    continuity: IdContinuity[str],
    deliveries: list[int],
    *,
    shortcut: bool,
    serve_every: int,
    drain_every: int,
) -> Lagged:
    """As the gateway runs it: REST answers a fetch only every ``serve_every`` deliveries (live
    ids arrive meanwhile), and what is emitted is taken out only every ``drain_every`` (another
    coroutine holds the publish lock). ``shortcut``: try ``take_next`` first, as
    ``TradeContinuity.receive`` does, and publish a taken id directly."""
    out: list[Emit[str] | IdGap] = []
    rejected: list[Rejected[str]] = []
    pending: list[FetchRange] = []
    progress: list[tuple[int, int]] = []  # published and rejected so far, at each drain

    def drain() -> None:
        out.extend(continuity.to_emit())
        rejected.extend(continuity.to_reject())
        progress.append((len(out), len(rejected)))

    def serve() -> None:
        for request in pending:  # REST keeps ids >= 5, and pages of 7 rows
            first = max(request.first_id, 5)
            ids = range(first, min(request.last_id, first + 6) + 1)
            continuity.receive_backfill((i, f"rest-{i}") for i in ids)
        pending.clear()

    for n, event_id in enumerate(deliveries, 1):
        if shortcut and continuity.take_next(event_id):
            out.append(Emit(event_id, f"live-{event_id}", backfilled=False))
        else:
            continuity.receive_live(event_id, f"live-{event_id}")
        pending.extend(continuity.requests_to_send())
        if n % serve_every == 0:
            serve()
        if n % drain_every == 0:
            drain()
    for _ in range(1000):  # settle every fetch (a bug that never settles fails, not hangs)
        if not (pending or continuity.backfilling):
            break
        serve()
        pending.extend(continuity.requests_to_send())
    else:
        raise AssertionError("the fetches never settle")
    drain()
    return out, rejected, progress, continuity.last_emitted_id, continuity.duplicates


def walk(steps: list[int | None]) -> list[int]:
    """Live ids as a stream delivers them: mostly the next id, sometimes a skip (a hole), a step
    back (an overlap), a far jump (quarantine), or (None) a negative id."""
    ids, position = [], 1
    for step in steps:
        if step is None:
            ids.append(-1)
            continue
        position = max(position + step, 0)
        ids.append(position)
    return ids


STEPS = st.sampled_from([1, 1, 1, 1, 1, 1, 2, 3, 0, -1, -2, -3, -40, 70, 71, -70, None])


@settings(max_examples=500, deadline=None)
@given(
    deliveries=st.lists(STEPS, max_size=120).map(walk),
    resumed_at=st.none() | st.integers(0, 5),
    serve_every=st.integers(1, 6),
    drain_every=st.integers(1, 4),
)
def test_the_steady_state_shortcut_publishes_exactly_what_receive_live_would(
    deliveries: list[int], resumed_at: int | None, serve_every: int, drain_every: int
) -> None:
    """Holes, duplicates, far jumps (quarantine), ids far behind and negative ones (rejected),
    among runs of contiguous ids (the shortcut's case), answered and drained late: the same
    records and dead letters, in the same order, published no later."""
    outcomes = [
        lagging(
            IdContinuity(resumed_at, max_jump=60, max_behind=25, confirmations=3, max_held=50),
            deliveries,
            shortcut=shortcut,
            serve_every=serve_every,
            drain_every=drain_every,
        )
        for shortcut in (False, True)
    ]
    assert outcomes[0] == outcomes[1]


def test_the_shortcut_takes_only_the_next_id_with_nothing_waiting() -> None:
    continuity: IdContinuity[str] = IdContinuity(10)
    assert continuity.take_next(11)
    assert not continuity.take_next(11)  # a duplicate: receive_live counts it
    assert not continuity.take_next(13)  # a hole: receive_live holds it and asks REST
    continuity.receive_live(13, "live-13")
    assert not continuity.take_next(14)  # behind the hole
    assert continuity.requests_to_send() == [FetchRange(12, 12)]
    assert IdContinuity[str]().take_next(1) is False  # the first id sets where it starts


def test_a_resumed_owner_backfills_from_where_the_previous_one_stopped() -> None:
    continuity: IdContinuity[str] = IdContinuity(last_emitted_id=10)
    continuity.receive_live(14, "live-14")
    assert continuity.requests_to_send() == [FetchRange(11, 13)]
    continuity.receive_backfill([(13, "r13"), (11, "r11"), (12, "r12")])
    assert [(e.event_id, e.backfilled) for e in emits(continuity.to_emit())] == [
        (11, True), (12, True), (13, True), (14, False),
    ]  # fmt: skip


def test_duplicates_are_counted_and_dropped() -> None:
    continuity: IdContinuity[str] = IdContinuity()
    for event_id in (1, 2, 2, 1, 3):
        continuity.receive_live(event_id, "x")
    assert [e.event_id for e in emits(continuity.to_emit())] == [1, 2, 3]
    assert continuity.duplicates == 2


def test_holding_too_much_declares_the_oldest_hole_lost_instead_of_growing() -> None:
    continuity: IdContinuity[str] = IdContinuity(max_held=3)
    continuity.receive_live(1, "x")
    for event_id in (5, 6, 7, 8):
        continuity.receive_live(event_id, "x")
    out = continuity.to_emit()
    assert IdGap(2, 4) in out
    assert [e.event_id for e in out if isinstance(e, Emit)] == [1, 5, 6, 7, 8]


def test_a_resumed_owner_drops_the_ids_kafka_already_holds() -> None:
    continuity: IdContinuity[str] = IdContinuity(last_emitted_id=10)
    for event_id in (8, 10, 9):
        continuity.receive_live(event_id, "x")
    assert continuity.duplicates == 3
    assert continuity.to_emit() == []
    assert continuity.requests_to_send() == []  # at or before the seed is no hole
    continuity.receive_live(11, "live-11")
    assert continuity.to_emit() == [Emit(11, "live-11", False)]


def test_an_abandoned_backfill_declares_its_range_and_releases_the_held_events() -> None:
    seq: IdContinuity[str] = IdContinuity(last_emitted_id=10)
    seq.receive_live(14, "e14")
    seq.receive_live(15, "e15")
    assert seq.requests_to_send() == [FetchRange(11, 13)]
    assert seq.holding
    seq.backfill_abandoned()
    assert seq.to_emit() == [IdGap(11, 13), Emit(14, "e14", False), Emit(15, "e15", False)]
    assert not seq.holding and not seq.backfilling
    seq.receive_live(16, "e16")
    assert seq.to_emit() == [Emit(16, "e16", False)]


def test_a_negative_id_and_one_far_behind_are_rejected_with_their_reason() -> None:
    seq: IdContinuity[str] = IdContinuity(last_emitted_id=50_000, max_behind=100)
    for event_id in (-1, 49_950, 40_000, 50_001):
        seq.receive_live(event_id, f"e{event_id}")
    assert [(r.event_id, r.reason.split(" ")[0]) for r in seq.to_reject()] == [
        (-1, "negative"),
        (40_000, "id"),
    ]
    assert seq.duplicates == 1  # 49_950: within the window, an overlap's duplicate
    assert seq.to_emit() == [Emit(50_001, "e50001", False)]


def test_an_id_far_ahead_is_quarantined_and_rejected_when_the_stream_goes_on() -> None:
    seq: IdContinuity[str] = IdContinuity(last_emitted_id=100, max_jump=1000)
    seq.receive_live(1_000_100, "bad")
    assert seq.to_emit() == [] and seq.requests_to_send() == [] and seq.to_reject() == []
    seq.receive_live(101, "e101")
    seq.receive_live(102, "e102")
    [rejected] = seq.to_reject()
    assert (rejected.event_id, rejected.event) == (1_000_100, "bad")
    assert "max_id_jump 1000" in rejected.reason
    assert [e.event_id for e in emits(seq.to_emit())] == [101, 102]  # the state was never poisoned
    assert seq.last_emitted_id == 102


def test_a_jump_confirmed_by_contiguous_ids_becomes_an_ordinary_hole() -> None:
    seq: IdContinuity[str] = IdContinuity(last_emitted_id=100, max_jump=1000, confirmations=3)
    for event_id in (50_000, 50_001):
        seq.receive_live(event_id, f"e{event_id}")
    assert seq.requests_to_send() == []
    seq.receive_live(50_002, "e50002")
    assert seq.requests_to_send() == [FetchRange(101, 49_999)]
    seq.receive_backfill([])  # REST no longer has them
    assert seq.to_emit() == [
        IdGap(101, 49_999),
        Emit(50_000, "e50000", False),
        Emit(50_001, "e50001", False),
        Emit(50_002, "e50002", False),
    ]
    assert seq.to_reject() == []


def test_a_quiet_stream_is_probed_from_its_last_id_unless_a_fetch_reaches_the_live_ids() -> None:
    unknown: IdContinuity[str] = IdContinuity()
    assert unknown.probe_from() is None  # nothing to continue from
    quiet: IdContinuity[str] = IdContinuity(last_emitted_id=100)  # resumed from Kafka
    assert quiet.probe_from() == 101
    quiet.receive_live(101, "live-101")
    assert quiet.probe_from() == 102
    quiet.receive_live(105, "live-105")  # a hole: held, and its fetch is requested
    assert quiet.requests_to_send() == [FetchRange(102, 104)]
    assert quiet.probe_from() is None  # the fetch covers it up to the live ids
    quiet.receive_backfill((i, f"rest-{i}") for i in (102, 103, 104))
    assert quiet.probe_from() == 106
