"""The fence on the producer's requests: produce requests wait or fail by the lease's verdict."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.protocol.produce import ProduceRequest

from gateway.adapters.kafka import MembershipFenced, MembershipLapsed, fence_producer
from gateway.coordination.fencing import Verdict


class FakeClient:
    def __init__(self) -> None:
        self.sent: list[object] = []
        self.readied: list[int] = []

    async def ready(self, node_id: int, **kwargs: Any) -> bool:
        self.readied.append(node_id)
        return True

    async def send(self, node_id: int, request: object, **kwargs: Any) -> str:
        self.sent.append(request)
        return "response"


class FakeProducer:
    def __init__(self) -> None:
        self.client = FakeClient()


def produce() -> ProduceRequest:
    return ProduceRequest(required_acks=-1, timeout=1000, topics=[], transactional_id=None)


async def test_produce_requests_go_out_only_while_the_lease_allows() -> None:
    producer = FakeProducer()
    verdict = Verdict.PUBLISH
    fence_producer(producer, lambda: verdict)
    request = produce()
    assert await producer.client.send(1, request) == "response"
    assert producer.client.sent == [request] and producer.client.readied == [1]

    verdict = Verdict.HOLD
    with pytest.raises(MembershipLapsed) as held:
        await producer.client.send(1, produce())
    assert held.value.retriable  # aiokafka keeps the batch and tries again

    verdict = Verdict.REFUSE
    with pytest.raises(MembershipFenced) as refused:
        await producer.client.send(1, produce())
    assert not refused.value.retriable  # the batch fails: never written
    assert producer.client.sent == [request]


async def test_other_requests_are_not_fenced() -> None:
    producer = FakeProducer()
    fence_producer(producer, lambda: Verdict.REFUSE)
    metadata = MetadataRequest(topics=[])
    assert await producer.client.send(1, metadata) == "response"  # the fenced worker can still stop
