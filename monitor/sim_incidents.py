"""Labelled incidents and traps for ``monitor.simulate``.

``plan(sim)`` draws the incidents (kinds, magnitudes, publishers) and lays them out on
the event-time axis after a 12 h warm-up, one at a time with at least an hour between
them (shrinking durations and gaps, then dropping optional ones, when the stream is
short). Traffic incidents add orders and invalidations through ``Incident.inject``;
feed incidents alter events on their way out through ``Incident.apply``, which the
simulator's ``emit`` calls for every event whose time falls in the incident's minutes.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from monitor import simulate as core
from monitor.model import iso

if TYPE_CHECKING:
    from monitor.simulate import Sim

WARMUP = 12 * 3600.0
GAP = 3600.0
MIN_GAP = 1200.0
TAIL = 1800.0  # keep the last incident's end this far from the stream's end
BRUSH_TAIL = 90  # minutes: brushing invalidations lag the orders by up to this

# kind: alert kind (None for traps), dominant reason, duration range in minutes
# fmt: off
KINDS: dict[str, tuple[str | None, str | None, tuple[int, int]]] = {
    "fraud_burst":         ("publisher_spike", "fraud", (20, 60)),
    "brushing":            ("publisher_spike", "violation", (60 + BRUSH_TAIL, 180 + BRUSH_TAIL)),
    "refund_wave":         ("publisher_spike", "refund", (180, 480)),
    "platform_glitch":     ("platform_spike", "data_anomaly", (20, 60)),
    "malformed_burst":     ("malformed_events", None, (15, 45)),
    "duplicate_storm":     ("duplicate_events", None, (15, 45)),
    "lifecycle_bug":       ("lifecycle_violation", None, (15, 45)),
    "clock_skew":          ("clock_skew", None, (20, 60)),
    "volume_drop":         ("volume_drop", None, (30, 90)),
    "reason_shift":        ("reason_shift", "other", (60, 180)),
    "promotion":           (None, None, (100, 140)),
    "publisher_promotion": (None, None, (100, 140)),
    "tiny_publishers":     (None, None, (60, 120)),
    "new_large_publisher": (None, None, (120, 240)),
}
DESCRIPTIONS = {
    "fraud_burst": "Fake orders of one publisher invalidated as fraud minutes after payment.",
    "brushing": "Order brushing: a jump of small orders, most invalidated as violations.",
    "refund_wave": "A bad product: one publisher's refunds of days-old orders rise for hours.",
    "platform_glitch": "The platform marks good orders of many publishers invalid.",
    "malformed_burst": "A producer writes broken lines.",
    "duplicate_storm": "A producer retry loop redelivers events.",
    "lifecycle_bug": "Impossible steps: backwards, after invalidation, under a second publisher.",
    "clock_skew": "A producer writes Beijing time labelled as UTC (8 h in the future).",
    "volume_drop": "Partitions stop delivering: events are silently lost.",
    "reason_shift": "A producer bug maps invalidation reasons to other.",
    "promotion": "Platform-wide promotion: orders (and their quick cancels) multiply.",
    "publisher_promotion": "A large publisher's live-stream sale multiplies its orders.",
    "tiny_publishers": "Tiny publishers, each with one refund of two orders.",
    "new_large_publisher": "A large publisher appears mid-stream with no history.",
}
# fmt: on
CATEGORY = {"publisher_spike": "publisher", "platform_spike": "platform"}
ALERT_ORDER = [k for k, v in KINDS.items() if v[0] is not None]
TRAP_ORDER = [k for k, v in KINDS.items() if v[0] is None]
# publisher size bands (fraction of publishers ranked by volume) per kind
BANDS = {"fraud_burst": (0.003, 0.06), "brushing": (0.02, 0.25), "refund_wave": (0.001, 0.03),
         "publisher_promotion": (0.001, 0.015)}  # fmt: skip


@dataclass
class Incident:
    kind: str
    minutes: float
    start: float = 0.0
    publisher: int | None = None
    publishers: list[int] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    magnitude: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    pid: str | None = None

    @property
    def end(self) -> float:
        return self.start + self.minutes * 60

    @property
    def trap(self) -> bool:
        return KINDS[self.kind][0] is None

    # ------------------------------------------------------------ traffic

    def inject(self, sim: Sim) -> None:
        """Add the incident's orders and invalidations (traffic kinds only)."""
        fn = getattr(self, f"_inject_{self.kind}", None)
        if fn is not None:
            fn(sim, sim.rng)
        if self.publisher is not None:
            self.pid = sim.P_id[self.publisher]

    def _inject_fraud_burst(self, sim: Sim, rng: random.Random) -> None:
        p, s, e = self.publisher, self.start, self.end
        assert p is not None
        normal = sim.expected_orders(p, s, e, var=0) * sim.P_q[p]
        m = rng.uniform(3, 10)
        extra = max(rng.randint(15, 25), round(m * normal))
        items = [
            sim.add_item(rng.lognormvariate(math.log(150), 0.5), rng.uniform(0.08, 0.2))
            for _ in range(rng.randint(1, 3))
        ]
        for _ in range(extra):
            ti = s + rng.random() * (e - s)
            tp = ti - 360.0 * math.exp(0.6 * rng.gauss(0, 1))
            fake_order(sim, p, tp, core.FRAUD, ti, item=rng.choice(items))
        self.magnitude = {
            "extra_invalidations": extra,
            "expected_invalidations": round(normal, 2),
            "multiplier": round(m, 2),
            "lag_after_payment_min": 6,
        }

    def _inject_brushing(self, sim: Sim, rng: random.Random) -> None:
        p, s = self.publisher, self.start
        assert p is not None
        w = (self.minutes - BRUSH_TAIL) * 60
        normal = sim.expected_orders(p, s, s + w)
        m = rng.uniform(2, 6)
        extra = max(rng.randint(30, 50), round(m * normal))
        share = rng.uniform(0.7, 0.95)
        items = [
            sim.add_item(round(rng.uniform(0.9, 15), 1), rng.uniform(0.1, 0.2)) for _ in range(2)
        ]
        n_inv = 0
        for _ in range(extra):
            tp = s + rng.random() * w
            bad = rng.random() < share
            ti = tp + rng.uniform(600, 5400) if bad else math.inf
            n_inv += bad
            fake_order(
                sim,
                p,
                tp,
                core.VIOLATION,
                ti,
                item=rng.choice(items),
                pay_lag=5 + 25 * rng.random(),
            )
        self.magnitude = {
            "extra_orders": extra,
            "expected_orders": round(normal, 2),
            "order_multiplier": round(m, 2),
            "invalidated": n_inv,
            "orders_minutes": round(w / 60),
            "lag_after_payment_min": [10, 90],
        }

    def _inject_refund_wave(self, sim: Sim, rng: random.Random) -> None:
        p, s, e = self.publisher, self.start, self.end
        assert p is not None
        normal = sim.expected_orders(p, s, e, var=0) * sim.P_q[p] * sim.P_mix[p][0]
        # a bad product pushed hard: refunds at 3-6x for hours, at least a few dozen
        m = rng.uniform(3, 6)
        extra = max(rng.randint(40, 60), round((m - 1) * normal))
        bad = sim.items(p)[0]
        for _ in range(extra):
            ti = s + (e - s) * (rng.random() + rng.random()) / 2  # ramps up, then down
            tp = ti - max(3 * 3600.0, 129600.0 * math.exp(0.7 * rng.gauss(0, 1)))
            fake_order(sim, p, tp, core.REFUND, ti, item=bad)
        self.magnitude = {
            "extra_refunds": extra,
            "expected_refunds": round(normal, 2),
            "multiplier": round(m, 2),
            "item_id": sim.I_id[bad],
        }

    def _inject_platform_glitch(self, sim: Sim, rng: random.Random) -> None:
        s, e = self.start, self.end
        n = len(sim.P_id)
        rates = [sim.expected_orders(p, s, e, var=0) for p in range(n)]
        normal = sum(r * sim.P_q[p] for p, r in enumerate(rates))
        m = rng.uniform(1.5, 4)
        extra = max(rng.randint(25, 40), round((m - 1) * normal))
        active = [p for p in range(n) if rates[p] >= 0.3]  # transacting in the window
        share = rng.uniform(0.3, 1.0)
        affected = sorted(rng.sample(active, max(1, round(share * len(active)))))
        cum = list(core._acc([rates[p] for p in affected]))
        hit = set()
        for p in rng.choices(affected, cum_weights=cum, k=extra):
            ti = s + rng.random() * (e - s)
            fake_order(sim, p, ti - rng.uniform(3600, 4 * 86400), core.DATA_ANOMALY, ti)
            hit.add(p)
        self.magnitude = {
            "extra_invalidations": extra,
            "expected_invalidations": round(normal, 1),
            "multiplier": round(m, 2),
            "active_publishers": len(active),
            "affected_share": round(share, 3),
            "publishers_affected": len(hit),
        }

    def _inject_promotion(self, sim: Sim, rng: random.Random) -> None:
        m = rng.uniform(2, 5)
        extra = sum(sim.spawn(p, self.start, self.end, m - 1) for p in range(len(sim.P_id)))
        self.magnitude = {"order_multiplier": round(m, 2), "extra_parent_orders": extra}

    def _inject_publisher_promotion(self, sim: Sim, rng: random.Random) -> None:
        assert self.publisher is not None
        m = rng.uniform(3, 6)
        extra = sim.spawn(self.publisher, self.start, self.end, m - 1)
        self.magnitude = {"order_multiplier": round(m, 2), "extra_parent_orders": extra}

    def _inject_tiny_publishers(self, sim: Sim, rng: random.Random) -> None:
        half = self.minutes * 30
        for p in self.publishers:
            for k in range(2):
                tp = self.start + rng.random() * half
                ti = tp + rng.uniform(1200, 3600)
                fake_order(
                    sim,
                    p,
                    tp,
                    core.REFUND if k == 0 else core.NO_REASON,
                    ti if k == 0 else math.inf,
                )
        self.magnitude = {"publishers": len(self.publishers), "orders_each": 2, "refunds_each": 1}

    def _inject_new_large_publisher(self, sim: Sim, rng: random.Random) -> None:
        ranked = sorted(range(len(sim.P_id)), key=sim.P_rate.__getitem__, reverse=True)
        rate = sim.P_rate[ranked[min(len(ranked) - 1, rng.randint(5, 19))]]
        q = rng.betavariate(6, 54)
        pid = f"pub-{len(sim.P_id):05d}"
        self.publisher = p = sim.add_publisher(pid, rate, q)
        n = sim.spawn(p, self.start, sim.t1, 1.0)
        self.magnitude = {
            "orders_per_day": round(rate, 1),
            "invalidation_ratio": round(q, 4),
            "parent_orders": n,
        }

    # ------------------------------------------------------------ feed

    def apply(self, sim: Sim, o: int, status: int, code: int, ts: float, a: float, eid: int) -> int:
        """Alter one outgoing event (feed kinds): the new code, or -1 to drop it."""
        k, prm, rnd = self.kind, self.params, sim.rnd
        mag = self.magnitude
        mag["events_in_window"] = mag.get("events_in_window", 0) + 1
        if k == "malformed_burst":
            if rnd() < prm["share"]:
                mag["malformed"] = mag.get("malformed", 0) + 1
                u = rnd()
                return (
                    code
                    | (1 if u < 0.3 else 2 if u < 0.55 else 3 if u < 0.8 else 4 if u < 0.95 else 5)
                    << core.MAL_SHIFT
                )
        elif k == "duplicate_storm":
            if rnd() < prm["share"]:
                mag["redelivered"] = mag.get("redelivered", 0) + 1
                sim.dups += 1
                sim.append(a + 0.5 + 120 * rnd(), ts, o, code, eid)
        elif k == "lifecycle_bug":
            if rnd() < prm["share"]:
                mag["impossible_steps"] = mag.get("impossible_steps", 0) + 1
                self._impossible(sim, o, status, code, ts)
        elif k == "clock_skew":
            if (o * 0x9E3779B1 >> 16) % 20 < prm["shards"]:
                mag["skewed"] = mag.get("skewed", 0) + 1
                return code | core.F_SKEW
        elif k == "volume_drop":
            if (o * 0x9E3779B1 >> 16) % 16 < prm["partitions"]:
                return -1
        elif k == "reason_shift":
            reason = (code >> 3) & 7
            if code & 7 == core.INVALIDATED and reason != core.OTHER and rnd() < prm["share"]:
                mag["remapped"] = mag.get("remapped", 0) + 1
                return code & ~0x38 | core.OTHER << 3
        return code

    def _impossible(self, sim: Sim, o: int, status: int, code: int, ts: float) -> None:
        base = code & 0xC0 | core.NO_REASON << 3
        rnd = sim.rnd
        if status in (core.CONFIRMED, core.SETTLED):  # goes backwards
            new, t = base | core.PAID, ts + 1 + 300 * rnd()
        elif status == core.INVALIDATED:  # a step after the terminal one
            new, t = base | (core.CONFIRMED if rnd() < 0.6 else core.PAID), ts + 30 + 1800 * rnd()
        else:  # the same order under a second publisher
            new, t = code | core.F_PUBX, ts + 60 * rnd()
        eid = sim.neid
        sim.neid += 1
        sim.append(t + 1 - 5 * math.log(1 - rnd()), t, o, new, eid)

    # ------------------------------------------------------------ output

    def record(self, pids: list[str]) -> dict[str, Any]:
        alert_kind, reason, _ = KINDS[self.kind]
        mag = dict(self.magnitude)
        mag.update({k: v for k, v in self.params.items() if k not in mag})
        rec: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "alert_kind": alert_kind,
            "category": CATEGORY.get(alert_kind or "", "data_quality") if alert_kind else None,
            "publisher_id": self.pid,
            "reason": reason,
            "start": iso(self.start),
            "end": iso(self.end),
            "trap": self.trap,
            "magnitude": mag,
            "description": DESCRIPTIONS[self.kind],
        }
        if self.kind == "tiny_publishers":
            rec["publisher_ids"] = [pids[p] for p in self.publishers]
        return rec


def fake_order(
    sim: Sim,
    p: int,
    tp: float,
    reason: int,
    ti: float,
    *,
    item: int | None = None,
    pay_lag: float | None = None,
) -> int:
    """A single-item order of ``p`` paid at ``tp``, invalidated at ``ti`` (inf: never)."""
    tc = tp - (pay_lag if pay_lag is not None else 40.0 * math.exp(sim.rng.gauss(0, 1)))
    kp = sim.nparent
    sim.nparent += 1
    o = sim.new_order(p, kp, 1, tc, item)
    if sim.P_prod[p] != core.JD:
        sim.emit(o, core.CREATED, core.NO_REASON, tc)
    sim.emit(o, core.PAID, core.NO_REASON, tp)
    sim.after_payment(o, tp, reason if ti < math.inf else core.NO_REASON, ti)
    return o


# ---------------------------------------------------------------- planning


def plan(sim: Sim) -> list[Incident]:
    """Draw and place the incidents of this stream; register the feed ones with ``sim``."""
    rng = sim.rng
    avail = sim.t1 - sim.t0 - WARMUP - TAIL
    if avail <= 0:
        return []
    scale = avail / (60 * 3600.0)  # counts below are for a 3-day stream
    wanted = list(ALERT_ORDER) + list(TRAP_ORDER)
    extras = ["fraud_burst"] * 2 + ["brushing"] * rng.randint(1, 2) + ["refund_wave"]
    extras += [k for k in ALERT_ORDER[3:] if rng.random() < 0.5]
    extras += [k for k in ("tiny_publishers", "publisher_promotion") if rng.random() < 0.5]
    rng.shuffle(extras)
    wanted += extras[: round(len(extras) * min(1.0, scale))]
    incs = [Incident(k, rng.uniform(*KINDS[k][2])) for k in wanted]

    def total(xs: list[Incident], gap: float) -> float:
        return sum(i.minutes * 60 for i in xs) + gap * (len(xs) - 1)

    while len(incs) > len(KINDS) and total(incs, GAP) > avail:
        incs.pop()
    gap = GAP
    if total(incs, gap) > avail:  # shrink toward the shortest durations, then the gaps
        lo = sum(KINDS[i.kind][2][0] * 60 for i in incs)
        hi = sum(i.minutes * 60 for i in incs)
        alpha = max(0.0, (avail - gap * (len(incs) - 1) - lo) / (hi - lo))
        for i in incs:
            mn = KINDS[i.kind][2][0]
            i.minutes = mn + alpha * (i.minutes - mn)
        if alpha == 0.0:
            gap = max(MIN_GAP, (avail - lo) / max(1, len(incs) - 1))
        while len(incs) > 1 and total(incs, gap) > avail:
            incs.pop()
    rng.shuffle(incs)
    slack = avail - total(incs, gap)
    cuts = sorted(rng.random() * slack for _ in incs)
    t = sim.t0 + WARMUP
    for i, cut in zip(incs, cuts, strict=True):
        i.minutes = round(i.minutes)
        i.start = float(round(t + cut))
        t += i.minutes * 60 + gap
    _assign(sim, rng, incs)
    incs.sort(key=lambda i: i.start)
    n_inc = n_trap = 0
    for i in incs:
        if i.trap:
            n_trap += 1
            i.id = f"trap-{n_trap:03d}"
        else:
            n_inc += 1
            i.id = f"inc-{n_inc:03d}"
    return incs


def _assign(sim: Sim, rng: random.Random, incs: list[Incident]) -> None:
    """Publishers, magnitudes and feed hooks per incident."""
    n = len(sim.P_id)
    ranked = sorted(range(n), key=sim.P_rate.__getitem__, reverse=True)
    used: set[int] = set()
    for i in incs:
        if i.kind in BANDS:
            lo, hi = BANDS[i.kind]
            band = (
                [
                    p
                    for p in ranked[int(lo * n) : max(int(lo * n) + 3, int(hi * n))]
                    if p not in used
                ]
                or [p for p in ranked if p not in used]
                or ranked
            )
            i.publisher = rng.choice(band)
            used.add(i.publisher)
        elif i.kind == "tiny_publishers":
            tiny = [p for p in ranked if sim.P_rate[p] < 1.5 and p not in used]
            i.publishers = sorted(rng.sample(tiny, min(len(tiny), rng.randint(5, 20))))
            used.update(i.publishers)
        prm = i.params
        if i.kind == "malformed_burst":
            prm["share"] = round(rng.uniform(0.02, 0.2), 3)
        elif i.kind == "duplicate_storm":
            prm["share"] = round(rng.uniform(0.1, 0.4), 3)
        elif i.kind == "lifecycle_bug":
            prm["share"] = round(rng.uniform(0.01, 0.06), 3)
        elif i.kind == "clock_skew":
            prm["shards"] = rng.randint(1, 4)
            prm["share"] = prm["shards"] / 20
            prm["skew_hours"] = 8
        elif i.kind == "volume_drop":
            prm["partitions"] = rng.randint(5, 12)
            prm["share"] = prm["partitions"] / 16
        elif i.kind == "reason_shift":
            prm["share"] = round(rng.uniform(0.4, 0.9), 3)
        if prm:
            first = int((i.start - sim.t0) // 60)
            for m in range(first, min(len(sim.feed), first + int(i.minutes))):
                sim.feed[m] = i


# ---------------------------------------------------------------- malformed lines


NOT_EVENTS = ("null", '"ok"', "<html>502 Bad Gateway</html>", "{}")
WRONG_TYPE_FIELDS = ("amount", "commission", "schema_version", "status", "publisher_id", "order_id")
REQUIRED = ("event_id", "order_id", "publisher_id", "status", "amount", "commission", "occurred_at")


def malform(line: str, kind: int, eid: int) -> str:
    """A broken version of a valid event line: 1 truncated, 2 wrong type, 3 missing or
    forbidden field, 4 bad timestamp, 5 not an event object at all."""
    rng = random.Random(eid)
    if kind == 1:
        return line[: int(len(line) * (0.1 + 0.85 * rng.random()))]
    if kind == 5:
        return rng.choice([*NOT_EVENTS, f"[{line}]", line.replace('"', "'")])
    doc = msgspec.json.decode(line)
    if kind == 2:
        f = rng.choice(WRONG_TYPE_FIELDS)
        if f in ("amount", "commission"):
            doc[f] = rng.choice([str(doc[f]), None, -abs(doc[f]) - 1])
        elif f == "schema_version":
            doc[f] = rng.choice(["1", 2])
        elif f == "status":
            doc[f] = rng.choice([12, "PAID", "refunded"])
        else:
            doc[f] = int(doc[f]) if doc[f].isdigit() else None
    elif kind == 3:
        if doc["status"] == "invalidated" and rng.random() < 0.4:
            del doc["reason"]
        elif doc["status"] != "invalidated" and rng.random() < 0.2:
            doc["reason"] = "refund"
        else:
            del doc[rng.choice(REQUIRED)]
    else:
        ts = doc["occurred_at"]
        epoch = int(dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp())
        doc["occurred_at"] = rng.choice([
            ts[:19], ts[:19].replace("T", " "), f"{ts[8:10]}/{ts[5:7]}/{ts[:4]}{ts[10:19]}",
            epoch, ts[:8] + "32" + ts[10:], "",
        ])  # fmt: skip
    return msgspec.json.encode(doc).decode()
