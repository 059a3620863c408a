"""``ordermon produce EVENTS --broker URL [--topic T] [--rate R]``: the command body.

The lead wires the sub-command; ``main_produce`` takes its argparse Namespace (fields
``events, broker, topic, rate``; optional ``partitions`` to create a missing topic and
``connect_timeout`` in seconds) and returns the exit code:

- 0: every line produced; one summary line on stdout;
- 1: input unreadable, topic missing or mismatched, or some records not delivered;
- 2: no broker reachable at ``--broker`` after ``connect_timeout`` s of retries with
  back-off (10 ms doubling to 0.5 s);
- 130: interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from monitor.replay import InputError
from streams.broker import BrokerUnavailable, bootstrap_of
from streams.produce import produce_file
from streams.topics import ORDERS, TopicError

CONNECT_TIMEOUT = 15.0


def format_summary(r: dict[str, Any], broker: str) -> str:
    line = (
        f"produced {r['produced']:,} events to {r['topic']} on {broker} in {r['seconds']:.1f} s "
        f"({r['events_per_second']:,.0f}/s); {r['failed']:,} failed, "
        f"{r['null_keys']:,} without key, {r['blank']:,} blank lines skipped"
    )
    if r.get("first_error"):
        line += f"; first error: {r['first_error']}"
    return line


def main_produce(args: argparse.Namespace) -> int:
    prog = "ordermon produce"
    try:
        broker = bootstrap_of(args.broker)
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    rate = getattr(args, "rate", None)
    if rate is not None and rate <= 0:
        print(f"{prog}: --rate must be a positive number of events/s", file=sys.stderr)
        return 1
    try:
        result = asyncio.run(
            produce_file(
                args.events,
                broker,
                topic=getattr(args, "topic", None) or ORDERS,
                rate=rate,
                partitions=getattr(args, "partitions", None),
                connect_timeout=getattr(args, "connect_timeout", None) or CONNECT_TIMEOUT,
            )
        )
    except BrokerUnavailable as exc:
        print(f"{prog}: broker unreachable: {exc}", file=sys.stderr)
        return 2
    except (TopicError, InputError, OSError, ValueError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    print(format_summary(result, broker))
    return 1 if result["failed"] else 0


def _parser() -> argparse.ArgumentParser:  # for ``python -m streams.cli_produce`` only
    p = argparse.ArgumentParser(prog="ordermon produce")
    p.add_argument("events", help="JSONL events: a file, a .gz file, or - for stdin")
    p.add_argument("--broker", required=True, help="kafka://host:port or host:port")
    p.add_argument("--topic", default=ORDERS)
    p.add_argument("--rate", type=float, default=None, help="events/s (default: unlimited)")
    p.add_argument("--partitions", type=int, default=None, help="create a missing topic")
    p.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT)
    return p


if __name__ == "__main__":
    sys.exit(main_produce(_parser().parse_args()))
