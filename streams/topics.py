"""Topic names and ``ensure_topics``: create what is missing, verify what exists.

Tansu quirks this works around (measured on 0.6.0):

- a Metadata request for a named topic *auto-creates* it with 4 partitions; so does a
  producer's first send. So existence is checked with an all-topics Metadata request
  (``list_topics``), never by describing the topic by name first;
- CreateTopics with 0 partitions "succeeds": partition counts are validated here;
- CreatePartitions is not implemented: a topic with the wrong count cannot be grown,
  so a mismatch is an error with a clear message, never silently accepted.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.broker import bootstrap_of

ORDERS = "orders"
ORDERS_DLQ = "orders.dlq"
ALERTS = "ordermon.alerts"
DEFAULT_TOPICS = (ORDERS, ORDERS_DLQ, ALERTS)

_TOPIC_EXISTS = 36  # TopicAlreadyExists: a concurrent creator won the race, not an error


class TopicError(RuntimeError):
    """A topic cannot be created, or exists with another partition count."""


async def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    replication: int = 1,
    timeout: float = 15.0,
    configs: Mapping[str, str] | None = None,
) -> dict[str, int]:
    """Create the missing topics of ``{name: partitions}``; verify every partition count.

    Idempotent. Returns ``{name: partitions}`` as the broker reports them. Raises
    ``TopicError`` naming every topic that is wrong, ``ValueError`` for a bad request.
    """
    for name, n in topics.items():
        if not name or not isinstance(n, int) or n < 1:
            raise ValueError(f"topic {name!r}: partitions must be an int >= 1, not {n!r}")
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_of(bootstrap),
        request_timeout_ms=int(timeout * 1000),
        client_id="ordermon-admin",
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        errors: list[str] = []
        if missing:
            new = [
                NewTopic(t, topics[t], replication, topic_configs=dict(configs or {}))
                for t in missing
            ]
            resp = await admin.create_topics(new, timeout_ms=int(timeout * 1000))
            for topic, code, *rest in resp.topic_errors:
                if code not in (0, _TOPIC_EXISTS):
                    msg = rest[0] if rest else None
                    errors.append(f"{topic}: cannot create (error {code}: {msg})")
        got = await describe_partitions(admin, list(topics))
        for t, want in topics.items():
            have = got.get(t)
            if have is None:
                errors.append(f"{t}: missing after create")
            elif have != want:
                errors.append(
                    f"{t}: has {have} partitions, {want} wanted (the broker cannot change a "
                    "topic's partition count here: delete and re-create it, or configure "
                    f"{have} partitions)"
                )
        if errors:
            raise TopicError("; ".join(errors))
        return {t: got[t] for t in topics}
    finally:
        await admin.close()


async def describe_partitions(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Partition counts of the topics in ``names`` that exist (never auto-creates)."""
    existing = set(await admin.list_topics())
    wanted = [n for n in names if n in existing]
    if not wanted:
        return {}
    out: dict[str, int] = {}
    for d in await admin.describe_topics(wanted):
        if d.get("error_code", 0) == 0:
            out[d["topic"]] = len(d["partitions"])
    return out


async def topic_partitions(bootstrap: str, names: list[str]) -> dict[str, int]:
    """``{topic: partitions}`` for those of ``names`` that exist on the broker."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_of(bootstrap))
    await admin.start()
    try:
        return await describe_partitions(admin, names)
    finally:
        await admin.close()


def default_topics(partitions: int = 4, alerts_partitions: int = 1) -> dict[str, int]:
    """The topics ordermon needs: input and dead letters share the input's partitioning."""
    return {ORDERS: partitions, ORDERS_DLQ: partitions, ALERTS: alerts_partitions}
