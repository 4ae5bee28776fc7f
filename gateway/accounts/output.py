"""Where an account stream's results go: its Kafka topic, its metrics and its health.

Shared by the spot and futures sessions so both publish, reconcile and report alike:

* every user-data event becomes a record in the account's topic (:mod:`gateway.accounts.topics`);
* a frame that does not parse, or whose event its schema rejects, becomes a dead letter *in the
  account's topic* too: the shared dead-letter topic is readable by every team, and an account's
  raw frames are not theirs to read; records are built on that topic, and unknown fields and dead
  letters are counted and logged by the publish step the market path uses
  (:class:`gateway.runtime.publishing.PublishStep`);
* after each (re)connect, :meth:`AccountOutput.reconcile` reads the account over REST and
  publishes the ``account_snapshot`` record (:mod:`gateway.binance.reconcile`);
* ``account_stream_up`` / ``account_last_event`` say whether the stream is live and when it last
  carried an event, which is what an alert on "trading blind" needs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

from gateway.accounts.connection import ReconnectNow
from gateway.accounts.rest import SignedRestClient
from gateway.accounts.settings import AccountSettings
from gateway.accounts.topics import account_topic, record_key
from gateway.binance.account_state import AccountHealth, AccountState
from gateway.binance.events.account_snapshot import SnapshotReason
from gateway.binance.events.connection import ControlReply, ServerShutdown
from gateway.binance.messages import Event, RecordEvent
from gateway.binance.reconcile import build_snapshot, reconciliation_calls
from gateway.errors import MessageParseError
from gateway.metrics import Metrics
from gateway.records.builder import RecordBuilder
from gateway.records.topics import RecordSink, TopicNamer
from gateway.runtime.publishing import PublishStep

logger = logging.getLogger(__name__)


class AccountOutput:
    """Publishes one account's records and keeps its health and metrics."""

    def __init__(
        self,
        account: AccountSettings,
        builder: RecordBuilder,
        sink: RecordSink,
        metrics: Metrics,
        namer: TopicNamer,
    ) -> None:
        self.alias = account.alias
        self.market = account.market
        self.topic = account_topic(namer, account)
        self._key = self.alias.encode()
        self._builder = builder
        self._sink = sink
        self._step = PublishStep(
            builder, sink, metrics, market=account.market.value, where=f"account {self.alias}"
        )
        labels = (account.alias, account.market.value)
        self._up = metrics.account_stream_up.labels(*labels)
        self._last_event = metrics.account_last_event.labels(*labels)
        self._reconciliations = metrics.account_reconciliations.labels(*labels)
        self._up.set(0)
        self.state = AccountHealth(account.alias)
        self.last_event_monotonic: float | None = None
        self.events = 0
        self.snapshots = 0
        self.reconnects = 0

    async def publish(self, event: RecordEvent, raw: bytes) -> None:
        """One user-data event of the frame ``raw`` into the account's topic (the frame is
        dead-lettered there if the event's schema rejects it)."""
        record = await self._step.record(
            event, raw, topic=self.topic, key=record_key(event, self.alias)
        )
        if record is None:
            return
        await self._sink.send(record)
        self.events += 1
        self.last_event_monotonic = time.monotonic()
        self._last_event.set(time.time())

    async def published(self, events: Iterable[Event], raw: bytes) -> AsyncIterator[RecordEvent]:
        """Publish a frame's events one at a time, yielding each once it is published, so the
        session reacts to it (listen key expired, stream terminated) in order. A shutdown
        notice is a planned reconnect; control replies are not records."""
        for event in events:
            if isinstance(event, ServerShutdown):
                raise ReconnectNow(SnapshotReason.ROTATION, "Binance announced a shutdown")
            if isinstance(event, ControlReply):
                continue
            await self.publish(event, raw)
            yield event

    async def dead_letter(self, error: MessageParseError, raw: bytes, received_at_us: int) -> None:
        """A frame that did not parse: kept, raw, in the account's own topic."""
        await self._step.dead_letter(
            raw, received_at_us, "parse", error.reason, None, topic=self.topic, key=self._key
        )

    async def reconcile(self, rest: SignedRestClient, reason: str) -> None:
        """Read open orders, balances (and positions) over REST; publish the snapshot record."""
        answers: dict[str, Any] = {}
        for call in reconciliation_calls(self.market):
            answers[call.name] = await rest.request(
                "GET", call.path, dict(call.params), weight=call.weight, signed=True
            )
        now_us = time.time_ns() // 1_000
        snapshot = build_snapshot(
            self.market, self.alias, reason, answers, taken_at_us=now_us, received_at_us=now_us
        )
        await self._sink.send(self._builder.build(snapshot, topic=self.topic, key=self._key))
        self.snapshots += 1
        self._reconciliations.inc()
        logger.info(
            "%s: reconciliation snapshot published (%s): %d open orders, %d balances, %d positions",
            self.alias,
            reason,
            len(snapshot.open_orders),
            len(snapshot.balances),
            len(snapshot.positions),
        )

    def mark_up(self) -> None:
        self.state.set_state(AccountState.UP)
        self._up.set(1)

    def mark_down(self, state: AccountState, error: str | None) -> None:
        """``state``: DOWN (reconnecting) or REJECTED (Binance refused the key)."""
        self.state.set_state(state, error)
        self._up.set(0)

    def health(self) -> dict[str, object]:
        seen = self.last_event_monotonic
        return {
            "account": self.alias,
            "market": self.market.value,
            "topic": self.topic,
            "up": self.state.up,
            "state": self.state.state.value,
            "seconds_since_last_event": None if seen is None else time.monotonic() - seen,
            "events": self.events,
            "snapshots": self.snapshots,
            "reconnects": self.reconnects,
            "last_error": self.state.last_error,
        }
