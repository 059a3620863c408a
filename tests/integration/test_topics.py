"""ensure_topics: creates with the requested partition count, idempotent, clear errors."""

from __future__ import annotations

import pytest

from streams.topics import (
    ALERTS,
    ORDERS,
    ORDERS_DLQ,
    TopicError,
    default_topics,
    ensure_topics,
    topic_partitions,
)


async def test_creates_with_partition_counts_and_is_idempotent(broker, topic_name):
    want = {topic_name: 3, f"{topic_name}.dlq": 1}
    assert await ensure_topics(broker.bootstrap, want) == want
    assert await topic_partitions(broker.bootstrap, list(want)) == want
    assert await ensure_topics(broker.url, want) == want  # again: no error, no change


async def test_wrong_partition_count_is_an_error(broker, topic_name):
    await ensure_topics(broker.bootstrap, {topic_name: 2})
    with pytest.raises(TopicError, match=rf"{topic_name}: has 2 partitions, 5 wanted"):
        await ensure_topics(broker.bootstrap, {topic_name: 5})


async def test_invalid_request_creates_nothing(broker, topic_name):
    with pytest.raises(ValueError, match="partitions must be an int >= 1"):
        await ensure_topics(broker.bootstrap, {topic_name: 0})  # Tansu would accept 0
    assert await topic_partitions(broker.bootstrap, [topic_name]) == {}


async def test_lookup_does_not_auto_create(broker, topic_name):
    # Tansu auto-creates a topic (4 partitions) on a Metadata request naming it.
    assert await topic_partitions(broker.bootstrap, [topic_name]) == {}
    assert await topic_partitions(broker.bootstrap, [topic_name]) == {}


def test_default_names():
    assert (ORDERS, ORDERS_DLQ, ALERTS) == ("orders", "orders.dlq", "ordermon.alerts")
    assert default_topics(6) == {"orders": 6, "orders.dlq": 6, "ordermon.alerts": 1}
