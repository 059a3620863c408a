"""Fixtures for the delivery tests: a driven clock, alert records, and real local HTTP
endpoints (aiohttp servers on 127.0.0.1) whose answers each test scripts."""

from __future__ import annotations

import asyncio
import json
import socket
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from monitor.alerting import alert_id
from monitor.model import Alert, iso, parse_iso

T0 = parse_iso("2026-11-02T13:40:00Z")
HANG = "hang"


class FakeClock:
    """Wall-clock time that moves only when a test says so."""

    def __init__(self, now: float = T0 + 3600) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_alert(
    kind: str = "publisher_spike",
    publisher: str | None = "pub-0001",
    status: str = "firing",
    start: float = T0,
    end: float | None = None,
    severity: str = "warning",
    evidence: dict[str, Any] | None = None,
    summary: str | None = None,
) -> Alert:
    category = {"publisher_spike": "publisher", "platform_spike": "platform"}.get(
        kind, "data_quality"
    )
    scope = publisher if kind == "publisher_spike" else None
    end = start + 300 if end is None else end
    who = f"Publisher {publisher}" if scope else "Platform-wide"
    return Alert(
        alert_id=alert_id(kind, scope, start),
        kind=kind,
        category=category,
        status=status,
        severity=severity,
        publisher_id=scope,
        reason="fraud" if kind == "publisher_spike" else "data_anomaly",
        window_start=iso(start),
        window_end=iso(end),
        detected_at=iso(end + (600 if status == "resolved" else 0)),
        summary=summary
        or f"{'Resolved: ' if status == 'resolved' else ''}{who}: "
        "invalidations at 6.1x normal (43 vs 7.0 expected).",
        evidence=evidence
        if evidence is not None
        else {"observed": 43, "expected": 7.04, "score": 18.2, "thresholds": {"score": 6.0}},
    )


def resolve(a: Alert, end: float | None = None) -> Alert:
    start = parse_iso(a.window_start)
    return make_alert(
        a.kind, a.publisher_id, "resolved", start, end or start + 1800, a.severity,
        {**a.evidence, "peak_score": 20.0, "windows_active": 6},
    )  # fmt: skip


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Endpoint:
    """A local HTTP endpoint: answers each request with the next scripted behaviour (a
    status, ``(status, headers)``, or ``HANG``), then ``default``; records every request."""

    default: int = 200
    script: deque = field(default_factory=deque)
    requests: list[Request] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    url: str = ""

    async def arrived(self, n: int) -> None:
        """Until ``n`` requests have arrived."""
        async with self.changed:
            await self.changed.wait_for(lambda: len(self.requests) >= n)

    def answer(self, *behaviours: Any) -> None:
        self.script.extend(behaviours)

    def bodies(self) -> list[Any]:
        return [r.json() for r in self.requests]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Request(request.path_qs, dict(request.headers), body))
        async with self.changed:
            self.changed.notify_all()
        b = self.script.popleft() if self.script else self.default
        if b == HANG:
            await self.release.wait()  # until the test ends; the client has timed out
            return web.Response(status=200)
        status, headers = b if isinstance(b, tuple) else (b, {})
        return web.Response(status=status, headers=headers, text=f"answer {status}")


@pytest.fixture
async def endpoints() -> AsyncIterator[Any]:
    """``await endpoints(path)`` starts one more local endpoint; all stop at teardown."""
    runners: list[tuple[web.AppRunner, Endpoint]] = []

    async def start(path: str = "/hook") -> Endpoint:
        ep = Endpoint()
        app = web.Application()
        app.router.add_post(path, ep.handle)
        runner = web.AppRunner(app, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        ep.url = f"http://127.0.0.1:{port}{path}"
        runners.append((runner, ep))
        return ep

    yield start
    for runner, ep in runners:
        ep.release.set()
        await runner.cleanup()


@pytest.fixture
def down_url() -> Iterator[str]:
    """A loopback URL that refuses connections: a bound socket that never listens (held
    for the test, so no other server can take the port)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    finally:
        s.close()
