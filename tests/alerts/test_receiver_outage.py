"""A webhook receiver down for 10 minutes of a run, then back: every alert is delivered
after it returns, in order per alert_id (firing before resolved), none twice; and the
outbox survives a restart of the alert service in the middle of the outage.

Real HTTP on 127.0.0.1; the 10 minutes are simulated on the service's injected clock
(``FakeClock``), so the test takes well under a second of waiting. "Down" means nothing
listens on the receiver's port: connections are refused, as when the receiver's process
is gone. The port is held the whole time (``SO_REUSEPORT``, never listening while down),
so no other process can take it and the receiver comes back at the same URL.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
from collections import Counter

import pytest
from aiohttp import web

from alerts.service import AlertService
from tests.alerts.conftest import Endpoint, FakeClock, make_alert, resolve
from tests.alerts.test_delivery import SECRET, config, sample, service

STEP_S = 5.0  # the simulated service loop ticks this often
OUTAGE_S = 600.0


def _reuseport_socket(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", port))
    return s


class Receiver:
    """A real local webhook endpoint (``Endpoint`` records and answers) that can go down
    and come back on the same port."""

    def __init__(self, path: str = "/hook") -> None:
        self.endpoint = Endpoint()
        self.path = path
        self.sock = _reuseport_socket(0)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self.runner: web.AppRunner | None = None

    async def up(self) -> None:
        app = web.Application()
        app.router.add_post(self.path, self.endpoint.handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()  # listens on the held socket

    async def down(self) -> None:
        """Hold the port with a second, never-listening socket, then stop the server."""
        hold = _reuseport_socket(self.port)
        assert self.runner is not None
        await self.runner.cleanup()
        self.runner, self.sock = None, hold

    def refuses(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except ConnectionRefusedError:
            return True
        return False

    async def close(self) -> None:
        self.endpoint.release.set()
        if self.runner is not None:
            await self.runner.cleanup()
        self.sock.close()


@pytest.fixture
async def receiver():
    r = Receiver()
    yield r
    await r.close()


async def run_for(svc: AlertService, clock: FakeClock, until: float) -> None:
    """The service loop on simulated time: flush due groups, deliver what is due, tick."""
    while clock.now < until:
        await svc.tick()
        clock.advance(STEP_S)


def received(ep: Endpoint) -> list[tuple[str, str]]:
    return [(b["alert_id"], b["status"]) for b in ep.bodies()]


async def test_a_receiver_down_for_ten_minutes_gets_everything_after_it_returns_once_in_order(
    receiver: Receiver, tmp_path
) -> None:
    clock = FakeClock()
    s0 = clock.now
    cfg = config(tmp_path, {"hook": ("webhook", receiver.url)}, max_age="1h")
    a, b, d = (make_alert(publisher=f"pub-{i}") for i in (1, 2, 3))
    c = make_alert("malformed_events", publisher=None)
    await receiver.up()

    first = service(cfg, clock)
    await first.start()
    first.accept(a)
    await run_for(first, clock, s0 + 60)
    assert received(receiver.endpoint) == [(a.alert_id, "firing")]  # delivered while up

    await receiver.down()
    down_at = clock.now
    assert receiver.refuses()
    first.accept(b)
    first.accept(c)
    await run_for(first, clock, s0 + 130)
    first.accept(resolve(a))
    await run_for(first, clock, s0 + 250)
    first.accept(d)  # its group flushes only after the restart
    await run_for(first, clock, s0 + 260)
    pending_before = [(r.key, r.attempts, r.next_at) for r in first.store.pending()]
    failed_first = sample(first, "ordermon_notifications_failed_total", receiver="hook",
                          reason="connection")  # fmt: skip
    await first.close()  # the process stops in the middle of the outage

    second = service(cfg, clock)  # a new process over the same outbox file
    await second.start()
    try:
        # the queue, its retry counts and schedule are as the first process left them
        assert [(r.key, r.attempts, r.next_at) for r in second.store.pending()] == pending_before
        assert pending_before and pending_before[0][1] >= 3
        for alert in (a, b, c, d, resolve(a)):  # the input is redelivered after a restart
            assert second.accept(alert) is False
        await run_for(second, clock, s0 + 300)
        second.accept(resolve(c))
        await run_for(second, clock, s0 + 420)
        second.accept(resolve(b))
        await run_for(second, clock, down_at + OUTAGE_S)
        assert received(receiver.endpoint) == [(a.alert_id, "firing")]  # nothing got through
        assert receiver.refuses()
        failed_second = sample(second, "ordermon_notifications_failed_total", receiver="hook",
                               reason="connection")  # fmt: skip
        waiting = len(second.store.pending())

        await receiver.up()
        back_at = clock.now
        bound = back_at + cfg.delivery.backoff_max + 2 * STEP_S  # at most one back-off later
        while second.store.pending() and clock.now < bound:
            await second.tick()
            clock.advance(STEP_S)
        assert second.store.pending() == [], f"outbox not drained {clock.now - back_at:.0f} s"
        assert second.store.rows("dead") == [] and second.store.rows("rejected") == []
        drained_s = clock.now - back_at
        await run_for(second, clock, clock.now + 600)  # later flushes add nothing
    finally:
        await second.close()

    got = received(receiver.endpoint)
    want = {(x.alert_id, st) for x in (a, b, c) for st in ("firing", "resolved")}
    want.add((d.alert_id, "firing"))
    assert set(got) == want and len(got) == len(want), Counter(got)  # all, none twice
    for x in (a, b, c):
        assert got.index((x.alert_id, "firing")) < got.index((x.alert_id, "resolved"))
    reqs = receiver.endpoint.requests
    assert len({r.headers["Idempotency-Key"] for r in reqs}) == len(reqs)
    for r in reqs[1:]:  # everything after the first went out after the receiver returned
        ts = r.headers["X-Ordermon-Timestamp"]
        assert int(ts) >= int(back_at)
        mac = hmac.new(SECRET.encode(), ts.encode() + b"." + r.body, hashlib.sha256).hexdigest()
        assert r.headers["X-Ordermon-Signature"] == f"v1={mac}"
    assert failed_first >= 3 and failed_second >= 1  # both processes kept retrying
    assert waiting >= 4  # deliveries queued during the outage waited in the outbox
    assert drained_s <= cfg.delivery.backoff_max + 2 * STEP_S
