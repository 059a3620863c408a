"""A fast generator of contract events for ``ordermon bench``: millions of lines in seconds.

``monitor/simulate.py`` is the realistic stream (producers, incidents, steady state from
a long horizon) but costs ~15 µs per event and per-publisher set-up, so it cannot give a
million distinct publishers. ``generate`` draws a simpler stream with the same shape:

- buyer orders (1-4 items; items share a ``parent_order_id``) arrive with a diurnal
  profile (``simulate.PROFILES[0]``); publishers are heavy-tailed (lognormal weights),
  and every one of ``publishers`` gets at least one order when there are enough orders,
  so "1M publishers" means 1M distinct publisher ids in the stream;
- each order walks ``created -> paid -> confirmed -> settled``; unpaid orders are cancelled
  minutes-hours later; paid ones are invalidated (per-publisher ratio around 10%; reason
  mix refund/cancel/fraud/violation/data_anomaly/other; cancels within the hour, refunds
  hours-days) with all items of a cart together;
- orders placed up to ``HORIZON_S`` before the start contribute their later steps (the
  stream does not start empty); steps past the end are cut;
- arrival = event time + exponential delivery jitter (a few events arrive out of order),
  0.2% redeliveries of the same line, 0.01% malformed lines (truncated JSON);
- optional incidents (``spike_every`` windows): one publisher's fraud burst in one window
  (orders placed, most invalidated as fraud within 15 minutes), so the detectors fire.

Everything is drawn from one ``random.Random(seed)``: same arguments, same bytes. The
generator is meant to be fast, not a second simulator: no producers' formats, no skew.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from array import array
from bisect import bisect
from dataclasses import dataclass
from itertools import accumulate

from monitor.simulate import PROFILES

START = dt.datetime(2026, 11, 2, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()
WINDOW_S = 300
HORIZON_S = 43200.0  # orders placed this long before the start are generated too
MIX = (0.55, 0.33, 0.04, 0.035, 0.005, 0.04)  # refund cancel fraud violation anomaly other
REASONS = ("refund", "cancel", "fraud", "violation", "data_anomaly", "other")
# (low, high) seconds after payment, per reason: cancels fast, refunds slow
REASON_LAG = ((7200.0, 259200.0), (60.0, 3600.0), (3600.0, 43200.0), (3600.0, 43200.0),
              (3600.0, 172800.0), (3600.0, 172800.0))  # fmt: skip
ITEMS = (1,) * 80 + (2,) * 12 + (3,) * 5 + (4,) * 3
EVENTS_PER_ORDER = 2.3  # events per buyer order in a span of hours-days: sizes the span
DUP_SHARE = 0.002
MALFORMED_SHARE = 0.0001
CRE, PAY, CON, SET, INV = range(5)
STATUS = ("created", "paid", "confirmed", "settled", "invalidated")


@dataclass
class Synth:
    """The generated stream: lines in arrival order, with what the harness needs."""

    lines: list[bytes]
    ts: array  # event time per line (seconds); NaN for a malformed line
    keys: list[bytes]  # the partition key (order_id) per line; b"" for a malformed line
    publishers: int  # distinct publisher ids among the lines
    orders: int  # distinct order ids among the lines
    spikes: int  # injected fraud bursts
    start: float
    end: float  # event time of the last line


class _Iso:
    """RFC 3339 UTC with milliseconds, each second's prefix cached (strftime is slow)."""

    def __init__(self) -> None:
        self.cache: dict[int, str] = {}

    def __call__(self, ts: float) -> str:
        sec = int(ts)
        pre = self.cache.get(sec)
        if pre is None:
            pre = self.cache[sec] = dt.datetime.fromtimestamp(sec, dt.UTC).strftime(
                "%Y-%m-%dT%H:%M:%S."
            )
        return f"{pre}{int((ts - sec) * 1000):03d}Z"


def _diurnal(ts: float) -> float:
    """Relative order volume at ``ts`` (Beijing time), 0..1."""
    hour = ((ts + 8 * 3600) % 86400) / 3600
    return PROFILES[0][int(hour) % 24]


def generate(
    events: int,
    publishers: int,
    seed: int = 7,
    per_window: float = 1500.0,
    spike_every: int = 0,
    start: float = START,
) -> Synth:
    """``events`` lines (exactly) over ``publishers`` publisher ids, ``per_window`` events
    per 5-minute window on average; ``spike_every`` > 0 injects a fraud burst every that
    many windows (from the 16th window on)."""
    if events < 1 or publishers < 1 or per_window <= 0:
        raise ValueError("need events >= 1, publishers >= 1 and per_window > 0")
    span = events / per_window * WINDOW_S * 1.1
    for _ in range(6):
        recs = _records(events, publishers, seed, per_window, spike_every, start, span)
        if len(recs[0]) >= events:
            return _render(recs, events, start)
        span *= 1.5  # too few events in the span (short streams): widen and redraw
    raise RuntimeError(f"could not generate {events} events")


def _records(
    events: int, publishers: int, seed: int, per_window: float, spike_every: int,
    start: float, span: float,
) -> tuple[list[tuple], list[tuple[int, float]], int]:  # fmt: skip
    """Event records ``(arrival, ts, parent, item, status, reason)`` sorted by arrival
    (``item`` -1: a single-item order), the buyer orders ``(publisher, amount)``, and the
    number of spikes."""
    rng = random.Random(seed)
    rnd, unif = rng.random, rng.uniform
    end = start + span
    weights = list(accumulate(rng.lognormvariate(0, 1.6) for _ in range(publishers)))
    times = _order_times(rng, per_window, start - min(HORIZON_S, span), end)
    in_span = sum(1 for x in times if x >= start)
    pubs = rng.choices(range(publishers), cum_weights=weights, k=len(times) - in_span)
    # every publisher gets an order, if there are enough, among the first 85% of the span's
    # orders (the stream is cut at ``events``: the span has a ~10% margin)
    early = int(in_span * 0.85)
    cover = min(publishers, early)
    head = rng.sample(range(publishers), cover) if cover < publishers else list(range(cover))
    head += rng.choices(range(publishers), cum_weights=weights, k=early - cover)
    rng.shuffle(head)
    pubs += head  # ``times`` is sorted: the horizon's orders first
    pubs += rng.choices(range(publishers), cum_weights=weights, k=in_span - early)
    qpub = [0.05 + 0.1 * rnd() for _ in range(4096)]  # invalidation ratio by publisher hash
    jit = [rng.expovariate(0.5) for _ in range(4096)]  # delivery delay (mean 2 s)
    amounts = [round(unif(5.0, 400.0), 2) for _ in range(4096)]
    n_it, mix, lags = len(ITEMS), _MIX_CUM, REASON_LAG
    parents: list[tuple[int, float]] = []
    out: list[tuple] = []
    add = out.append
    for parent, (tc, pub) in enumerate(zip(times, pubs, strict=True)):
        parents.append((pub, amounts[parent & 4095]))
        n_items = ITEMS[int(rnd() * n_it)]
        single = n_items == 1
        paid = rnd() < 0.93
        tp = tc + 5.0 + 110.0 * rnd()
        inv, ti = -1, 0.0
        if not paid:
            if rnd() < 0.75:  # most unpaid orders are closed as cancels
                inv, ti = 1, tc + unif(900.0, 7200.0)
        elif rnd() < qpub[pub & 4095]:
            inv = bisect(mix, rnd())
            lo, hi = lags[inv]
            ti = tp + unif(lo, hi)
        tf = tp + unif(7200.0, 172800.0)
        steps = [(tc, CRE)]
        if paid:
            steps.append((tp, PAY))
        if inv >= 0:
            steps.append((ti, INV))
        elif paid:
            steps += ((tf, CON), (tf + unif(86400.0, 259200.0), SET))
        for item in range(n_items):
            for ts, st in steps:
                ts += item  # the items of a cart a second apart
                if start <= ts < end:
                    add((ts + jit[int(rnd() * 4096)], ts, parent, -1 if single else item, st,
                         inv if st == INV else -1))  # fmt: skip
    spikes = _spikes(rng, parents, out, publishers, weights, start, end, spike_every)
    out.sort()
    return out, parents, spikes


def _order_times(rng: random.Random, per_window: float, t0: float, t1: float) -> list[float]:
    """Buyer-order times from ``t0`` to ``t1``: Poisson per 5-minute bin, diurnal rate."""
    mean_profile = sum(PROFILES[0]) / 24
    lam_peak = per_window / EVENTS_PER_ORDER / mean_profile  # orders per window at the peak
    times: list[float] = []
    b = t0
    while b < t1:
        lam = lam_peak * _diurnal(b + WINDOW_S / 2)
        n = max(0, int(rng.gauss(lam, math.sqrt(lam)) + 0.5))
        times += sorted(b + rng.random() * WINDOW_S for _ in range(n))
        b += WINDOW_S
    return times


def _spikes(rng: random.Random, parents: list[tuple[int, float]], out: list[tuple],
            publishers: int, weights: list[float], start: float, end: float, every: int,
            ) -> int:  # fmt: skip
    """Fraud bursts: 40 orders of one publisher in one window, 85% invalidated as fraud
    2-15 minutes after payment (the detectors' ``publisher_spike``)."""
    if every <= 0:
        return 0
    n = 0
    w = int(start // WINDOW_S) + 16
    while (w + 1) * WINDOW_S + 900 < end:
        pub = rng.choices(range(publishers), cum_weights=weights)[0]
        for _ in range(40):
            tc = w * WINDOW_S + rng.uniform(0, WINDOW_S - 60)
            o = len(parents)
            parents.append((pub, 99.0))
            steps = [(tc, CRE, -1), (tc + 30.0, PAY, -1)]
            if rng.random() < 0.85:
                steps.append((tc + 30.0 + rng.uniform(120.0, 900.0), INV, 2))
            out.extend((ts + 0.5, ts, o, -1, st, r) for ts, st, r in steps)
        n += 1
        w += every
    return n


_MIX_CUM = list(accumulate(MIX))[:-1] + [1.0]


def _render(recs: tuple, events: int, start: float) -> Synth:
    out, parents, spikes = recs
    rng = random.Random(len(out))
    iso = _Iso()
    lines: list[bytes] = []
    ts_out = array("d")
    keys: list[bytes] = []
    pubs = bytearray(max(p for p, _ in parents) + 1)  # publisher seen
    seen = bytearray(5 * len(parents))  # order (parent, item) seen
    nan, status, reasons = math.nan, STATUS, REASONS
    for seq, (_arr, ts, parent, item, st, reason) in enumerate(out):
        if len(lines) >= events:
            break
        pub, amount = parents[parent]
        if item < 0:
            oid, par = f"o{parent}", ""
        else:
            oid, par = f"o{parent}-{item}", f'"parent_order_id":"o{parent}",'
        rea = "" if reason < 0 else f'"reason":"{reasons[reason]}",'
        line = (
            f'{{"schema_version":1,"event_id":"e{seq:x}","order_id":"{oid}",{par}'
            f'"publisher_id":"pub-{pub:07d}","status":"{status[st]}",{rea}'
            f'"amount":{amount},"commission":{amount * 0.04:.2f},"currency":"CNY",'
            f'"occurred_at":"{iso(ts)}"}}'
        ).encode()
        key = oid.encode()
        pubs[pub] = 1
        seen[5 * parent + item + 1] = 1
        lines.append(line)
        ts_out.append(ts)
        keys.append(key)
        u = rng.random()
        if u < DUP_SHARE and len(lines) < events:  # a redelivery (lifecycle de-duplication)
            lines.append(line)
            ts_out.append(ts)
            keys.append(key)
        elif u < DUP_SHARE + MALFORMED_SHARE and len(lines) < events:  # a truncated line
            lines.append(line[: len(line) // 2])
            ts_out.append(nan)
            keys.append(b"")
    last = max((x for x in ts_out[-1000:] if x == x), default=start)
    return Synth(lines, ts_out, keys, pubs.count(1), seen.count(1), spikes, start, last)
