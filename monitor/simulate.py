"""A labelled, realistic order-event stream for backtests: ``ordermon simulate``.

``simulate(seed, out_dir)`` writes ``events.jsonl`` (contract events in arrival order)
and ``incidents.json`` (what was injected, when, and how strongly). The traffic is meant
to behave like a Taobao/JD/Pinduoduo affiliate feed, not like a toy, because detectors
tuned on it are later judged on streams from another generator:

- publishers are heavy-tailed (lognormal sizes, the largest capped at a few percent of
  all orders), each with its own invalidation ratio (Beta), reason mix (Dirichlet),
  diurnal shape and day-to-day volume noise (Gamma);
- every order walks ``created -> paid -> confirmed -> settled`` with realistic lags, may
  be invalidated on the way (cancel minutes-hours, refund ~1.5 days, fraud/violation
  hours), and sub-orders of one parent are often refunded together;
- the stream starts in steady state: confirmations, settlements and invalidations of
  orders placed before the stream began arrive from the first minute (sampled by event
  time, then kept only when the order began before the stream's own order horizon);
- three producers (Taobao-, JD- and PDD-like) differ in id formats, optional fields,
  time zone (``+08:00`` vs ``Z``, milliseconds) and delivery (JD polls every 20 s);
- delivery jitter, a few late events, natural redeliveries and a rare malformed line.

Incidents (``monitor/sim_incidents.py``) add or alter traffic and the feed. Everything is
drawn from one ``random.Random(seed)``: the same seed gives the same bytes.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import math
import random
import statistics
from array import array
from pathlib import Path
from typing import Any

from monitor import sim_incidents
from monitor.model import iso

DAY = 86400.0
BIN = 300  # seconds: granularity of the volume profile
HORIZON = 7200.0  # orders placed this long before the start are simulated in full
TZ8 = dt.timezone(dt.timedelta(hours=8))

CREATED, PAID, CONFIRMED, SETTLED, INVALIDATED = range(5)
STATUSES = ("created", "paid", "confirmed", "settled", "invalidated")
REFUND, CANCEL, FRAUD, VIOLATION, DATA_ANOMALY, OTHER = range(6)
REASONS = ("refund", "cancel", "fraud", "violation", "data_anomaly", "other")
NO_REASON = 7
TB, JD, PDD = range(3)  # producers

# Event record code: status | reason << 3 | producer << 6 | flags << 8.
F_SKEW = 1 << 8  # local Beijing time written with a ``Z`` suffix
F_PUBX = 1 << 9  # the order reported under a second publisher
MAL_SHIFT = 10  # malformed line type (1..5) in bits 10-12
F_ANY = ~0xFF

# Hourly order volume in Beijing time relative to the peak (three publisher styles).
PROFILES = (
    (0.55, 0.38, 0.26, 0.19, 0.16, 0.16, 0.21, 0.32, 0.50, 0.70, 0.90, 0.95,
     0.86, 0.80, 0.80, 0.80, 0.77, 0.73, 0.74, 0.82, 0.93, 1.00, 0.97, 0.78),  # mixed
    (0.62, 0.42, 0.27, 0.19, 0.15, 0.15, 0.18, 0.26, 0.40, 0.55, 0.68, 0.72,
     0.66, 0.62, 0.62, 0.63, 0.63, 0.64, 0.70, 0.85, 1.00, 1.00, 0.95, 0.82),  # live/social
    (0.40, 0.27, 0.19, 0.16, 0.15, 0.16, 0.22, 0.38, 0.62, 0.85, 1.00, 1.00,
     0.88, 0.88, 0.93, 0.93, 0.88, 0.80, 0.72, 0.72, 0.76, 0.78, 0.70, 0.55),  # daytime
)  # fmt: skip
PROFILE_SHARE = (0.60, 0.25, 0.15)
PRODUCER_SHARE = (0.55, 0.25, 0.20)
SUBS = [1] * 72 + [2] * 17 + [3] * 7 + [4] * 4  # sub-orders per parent (TB, JD)
MEAN_SUBS = sum(SUBS) / len(SUBS)
BASE_MIX = (0.55, 0.33, 0.04, 0.035, 0.005, 0.04)  # refund cancel fraud violation anomaly other
UNPAID_CANCEL = 0.75  # share of cancels that are never-paid orders closed minutes-hours later
MEAN_ORDERS_PER_DAY = 110.0
SEC = [f"{s:02d}" for s in range(60)]
NZ = 1 << 14
Z = [statistics.NormalDist().inv_cdf((i + 0.5) / NZ) for i in range(NZ)]  # N(0,1) quantiles


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam < 30:
        limit, k, p = math.exp(-lam), 0, rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        return k
    return max(0, int(rng.gauss(lam, math.sqrt(lam)) + 0.5))


def _interp(prof: tuple[float, ...], hour: float) -> float:
    x = hour - 0.5
    i = math.floor(x)
    f = x - i
    return prof[i % 24] * (1 - f) + prof[(i + 1) % 24] * f


class Sim:
    """The world (publishers, volume profile) and the event records being built."""

    def __init__(self, seed: int, t0: float, days: float, n_pub: int) -> None:
        self.rng = rng = random.Random(seed)
        self.rnd = rng.random
        self.t0, self.t1 = t0, t0 + days * DAY
        self.ts0 = t0 - HORIZON
        self.salt = random.Random(seed ^ 0x5EED).getrandbits(64) | 1
        # event records, parallel arrays: arrival, event time, order, code, event id
        self.A, self.T = array("d"), array("d")
        self.K, self.S, self.E = array("q"), array("q"), array("q")
        self.neid = 0
        # orders: publisher, parent number, sub-orders in the parent (+ quantity), item, day
        self.opub, self.okp, self.osub = array("l"), array("q"), bytearray()
        self.oitem, self.oday = array("l"), array("l")
        # items: id, shop and the pre-formatted money fields for quantity 1 and 2
        self.I_id: list[str] = []
        self.I_shop: list[str] = []
        self.I_money: list[tuple[str, str]] = []
        self._A, self._T, self._K = self.A.append, self.T.append, self.K.append
        self._S, self._E = self.S.append, self.E.append
        self._opub, self._okp, self._osub = self.opub.append, self.okp.append, self.osub.append
        self._oitem, self._oday = self.oitem.append, self.oday.append
        self.nparent = 0
        self.feed: list[Any] = [None] * (int((self.t1 - t0) // 60) + 2)
        self.malformed = self.dups = self.dropped = 0
        self._profile()
        self._publishers(n_pub)

    # ------------------------------------------------------------ world

    def _profile(self) -> None:
        """5-minute volume weights per profile: diurnal x weekday x day noise x bin noise."""
        rng = self.rng
        self.nb = nb = int(math.ceil((self.t1 - self.ts0) / BIN))
        dayf: dict[int, float] = {}
        self.bin_day = []
        self.W: list[list[float]] = [[], [], []]
        norm = [sum(_interp(p, h / 12 + 1 / 24) for h in range(288)) for p in PROFILES]
        for b in range(nb):
            local = dt.datetime.fromtimestamp(self.ts0 + b * BIN + BIN / 2, TZ8)
            day = local.toordinal()
            if day not in dayf:
                dayf[day] = rng.gauss(1.0, 0.04) * (1.08 if local.weekday() >= 5 else 1.0)
            self.bin_day.append(day)
            noise = math.exp(rng.gauss(0, 0.06)) * dayf[day]
            hour = local.hour + local.minute / 60 + BIN / 7200
            for v, p in enumerate(PROFILES):
                self.W[v].append(_interp(p, hour) / norm[v] * noise)
        self.hourly = [PROFILES[0][h] for h in range(24)]  # for lags of human actions

    def _publishers(self, n: int) -> None:
        rng = self.rng
        raw = [rng.lognormvariate(0, 2.5) for _ in range(n)]
        cap = min(0.5, rng.uniform(0.04, 0.07) * math.sqrt(3000 / max(n, 1)))
        for _ in range(6):  # cap the largest publishers' share, keep the tail heavy
            total = sum(raw)
            raw = [min(w, cap * total) for w in raw]
        scale = MEAN_ORDERS_PER_DAY * n / sum(raw)
        ids = list(range(n))
        rng.shuffle(ids)  # size is not visible in the id
        self.P_id: list[str] = []
        self.P_rate: list[float] = []  # sub-orders per day
        for p in range(n):
            self.P_id.append(f"pub-{ids[p]:05d}")
            self.P_rate.append(raw[p] * scale)
        self.P_q: list[float] = []  # invalidation ratio
        self.P_unpaid: list[float] = []  # share of buyer orders never paid (cancelled)
        self.P_qpaid: list[float] = []  # invalidation ratio of paid orders
        self.P_mix: list[list[float]] = []  # cumulative reason mix (all invalidations)
        self.P_paidmix: list[list[float]] = []  # cumulative, invalidations after payment
        self.P_prod: list[int] = []  # producer (TB, JD, PDD)
        self.P_var: list[int] = []  # diurnal profile
        self.P_amount: list[float] = []  # log median price
        self.P_static: list[tuple[str, list[str]]] = []  # site id, ad zones
        self.P_items: list[list[int] | None] = []  # promoted items, built on first use
        for _ in range(n):
            self._add_publisher_traits()

    def _add_publisher_traits(self, q: float | None = None) -> None:
        rng = self.rng
        if q is None:
            risky = rng.random() < 0.08
            q = rng.betavariate(5, 20) if risky else rng.betavariate(6, 54)
        g = [rng.gammavariate(40 * m, 1.0) for m in BASE_MIX]
        tot = sum(g) - g[DATA_ANOMALY]
        mix = [x / tot * (1 - 0.005) for x in g]
        mix[DATA_ANOMALY] = 0.005
        unpaid = q * mix[CANCEL] * UNPAID_CANCEL
        paid = list(mix)
        paid[CANCEL] *= 1 - UNPAID_CANCEL
        s = sum(paid)
        self.P_q.append(q)
        self.P_unpaid.append(unpaid)
        self.P_qpaid.append((q - unpaid) / (1 - unpaid))
        self.P_mix.append(_cum(mix))
        self.P_paidmix.append(_cum([x / s for x in paid]))
        prod = _pick(rng, PRODUCER_SHARE)
        self.P_prod.append(prod)
        self.P_var.append(_pick(rng, PROFILE_SHARE))
        self.P_amount.append(math.log(rng.lognormvariate(math.log(60), 0.6)))
        site = rng.randrange(10**8, 10**9)
        zones = [str(rng.randrange(10**10, 10**11)) for _ in range(rng.randint(1, 4))]
        self.P_static.append((str(site), zones))
        self.P_items.append(None)  # item pool, built on first use

    def add_publisher(self, pid: str, rate: float, q: float) -> int:
        """A publisher that joins mid-stream (no history); returns its index."""
        self.P_id.append(pid)
        self.P_rate.append(rate)
        self._add_publisher_traits(q)
        return len(self.P_id) - 1

    def items(self, p: int) -> list[int]:
        """The items publisher ``p`` promotes (global item indexes), built on first use."""
        pool = self.P_items[p]
        if pool is None:
            rng, rnd = self.rng, self.rnd
            n = 4 + int(math.sqrt(self.P_rate[p]))
            shops = [rng.randrange(10**7, 10**9) for _ in range(1 + n // 4)]
            pool = []
            for _ in range(n):
                price = math.exp(self.P_amount[p] + 0.9 * Z[int(rnd() * NZ)])
                if price > 5 and rnd() < 0.4:
                    price = round(price) - 0.1
                rate = min(0.2, max(0.01, math.exp(-3.0 + 0.6 * Z[int(rnd() * NZ)])))
                pool.append(self.add_item(price, rate, rng.choice(shops)))
            self.P_items[p] = pool
        return pool

    def add_item(self, price: float, rate: float, shop: int | None = None) -> int:
        """Register an item (price, commission rate); returns its global index."""
        rng = self.rng
        amount = max(0.5, round(price, 2))
        comm = max(0.01, round(amount * rate, 2))
        self.I_id.append(str(rng.randrange(10**11, 10**12)))
        self.I_shop.append(str(shop if shop is not None else rng.randrange(10**7, 10**9)))
        self.I_money.append(
            (
                f'"amount":{amount},"commission":{comm}',
                f'"amount":{amount * 2},"commission":{comm * 2}',  # quantity 2 (exact doubling)
            )
        )
        return len(self.I_id) - 1

    # ------------------------------------------------------------ orders

    def new_order(self, p: int, kp: int, nsub: int, tc: float, item: int | None = None) -> int:
        """Register one sub-order of parent ``kp``; its JSON is built when written."""
        rnd = self.rnd
        if item is None:
            pool = self.P_items[p] or self.items(p)
            item = pool[int(len(pool) * rnd() * rnd())]  # a few items sell most
        self._opub(p)
        self._okp(kp)
        self._osub(nsub | (16 if rnd() < 0.08 else 0))  # bit 4: quantity 2
        self._oitem(item)
        self._oday(int((tc + 28800.0) // DAY))
        return len(self.opub) - 1

    def lag(self, reason: int, t: float, unpaid: bool = False, thin: bool = True) -> float:
        """Seconds from payment (creation when ``unpaid``) to the invalidation."""
        rnd = self.rnd
        # human-driven steps follow the day: thin the lag by the hour profile
        for _ in range(4 if thin else 1):
            if reason == REFUND:
                d = max(900.0, 129600.0 * math.exp(0.9 * Z[int(rnd() * NZ)]))
            elif reason == CANCEL:
                d = (2100.0 if unpaid else 7200.0) * math.exp(1.0 * Z[int(rnd() * NZ)])
            elif reason == FRAUD:
                return 18000.0 * math.exp(1.0 * Z[int(rnd() * NZ)])
            elif reason == VIOLATION:
                return 36000.0 * math.exp(1.1 * Z[int(rnd() * NZ)])
            elif reason == DATA_ANOMALY:
                return self.rnd() * 4 * DAY
            else:
                d = 86400.0 * math.exp(1.2 * Z[int(rnd() * NZ)])
            h = int(((t + d + 28800.0) % DAY) // 3600)
            if not thin or self.rnd() < self.hourly[h]:
                return d
        return d

    def confirm_lag(self) -> float:
        if self.rnd() < 0.85:  # buyer confirms receipt
            return 388800.0 * math.exp(0.55 * Z[int(self.rnd() * NZ)])
        return 10 * DAY + self.rnd() * DAY  # auto-confirmation

    def settle_lag(self) -> float:
        return 7 * DAY * math.exp(0.5 * Z[int(self.rnd() * NZ)])

    def parent(self, p: int, tc: float) -> None:
        """One buyer order of publisher ``p`` created at ``tc``, with its natural lifecycle."""
        rnd, emit = self.rnd, self.emit
        prod = self.P_prod[p]
        nsub = 1 if prod == PDD else SUBS[int(rnd() * 100)]
        kp = self.nparent
        self.nparent += 1
        items: list[int | None] = [None]
        if nsub > 1:  # distinct items (JD-like ids are parent + item)
            pool = self.P_items[p] or self.items(p)
            base = int(len(pool) * rnd() * rnd())
            items = [pool[(base + s) % len(pool)] for s in range(nsub)]
        if rnd() < self.P_unpaid[p]:  # never paid: closed minutes-hours later
            ti = tc + self.lag(CANCEL, tc, unpaid=True)
            for s in range(nsub):
                o = self.new_order(p, kp, nsub, tc, items[s])
                if prod != JD:
                    emit(o, CREATED, NO_REASON, tc)
                emit(o, INVALIDATED, CANCEL, ti + s)
            return
        tp = tc + min(3600.0, 40.0 * math.exp(1.1 * Z[int(self.rnd() * NZ)]))
        group: tuple[int, float] | None = None
        for s in range(nsub):
            o = self.new_order(p, kp, nsub, tc, items[s])
            if prod != JD:
                emit(o, CREATED, NO_REASON, tc)
            emit(o, PAID, NO_REASON, tp)
            if group is not None and rnd() < 0.6:  # refunded/cancelled together
                reason, ti = group[0], group[1] + rnd() * 5
            elif rnd() < self.P_qpaid[p]:
                reason = bisect.bisect(self.P_paidmix[p], rnd())
                ti = tp + self.lag(reason, tp)
                if nsub > 1 and group is None and reason in (REFUND, CANCEL):
                    group = (reason, ti)
            else:
                reason, ti = NO_REASON, math.inf
            self.after_payment(o, tp, reason, ti)

    def after_payment(self, o: int, tp: float, reason: int, ti: float) -> None:
        """Confirmation, settlement and/or invalidation of a paid order."""
        t1 = self.t1
        if tp + DAY < t1:  # confirmation can fall inside the stream only then
            tconf = tp + self.confirm_lag()
            if tconf < ti and tconf < t1 and self.rnd() < 0.9:  # 10 %: step skipped
                self.emit(o, CONFIRMED, NO_REASON, tconf)
        if ti < t1:
            self.emit(o, INVALIDATED, reason, ti)

    def baseline(self) -> None:
        """Orders of every publisher, day by day: Poisson counts over the 5-min profile."""
        rng, rnd, ts0 = self.rng, self.rnd, self.ts0
        days: dict[int, tuple[int, int]] = {}
        for b, d in enumerate(self.bin_day):
            lo, _ = days.get(d, (b, b))
            days[d] = (lo, b + 1)
        chunks = []
        for lo, hi in days.values():
            cws = [list(_acc(self.W[v][lo:hi])) for v in range(3)]
            chunks.append((lo, hi, cws))
        for lo, hi, cws in chunks:  # a day at a time, in time order (cache-friendly output)
            births: list[tuple[float, int]] = []
            for p in range(len(self.P_id)):
                cw = cws[self.P_var[p]]
                prate = self.P_rate[p] / (1.0 if self.P_prod[p] == PDD else MEAN_SUBS)
                shape = 4.0 + self.P_rate[p] / 100  # big publishers are aggregates: smoother
                n = _poisson(rng, prate * rng.gammavariate(shape, 1 / shape) * cw[-1])
                if n:
                    for b in rng.choices(range(lo, hi), cum_weights=cw, k=n):
                        births.append((ts0 + b * BIN + rnd() * BIN, p))
            births.sort()
            for tc, p in births:
                self.parent(p, tc)

    def spawn(self, p: int, lo: float, hi: float, mult: float) -> int:
        """Extra natural orders of ``p`` over [lo, hi): ``mult`` x its normal volume."""
        lam = mult * self.expected_orders(p, lo, hi) / (1.0 if self.P_prod[p] == PDD else MEAN_SUBS)
        n = _poisson(self.rng, lam)
        w = self.W[self.P_var[p]]
        wmax = max(w[self.bin_of(lo) : self.bin_of(hi) + 1])
        made = 0
        while made < n:
            t = lo + self.rnd() * (hi - lo)
            if self.rnd() * wmax < w[self.bin_of(t)]:
                self.parent(p, t)
                made += 1
        return n

    def bin_of(self, t: float) -> int:
        return min(self.nb - 1, max(0, int((t - self.ts0) // BIN)))

    def expected_orders(self, p: int, lo: float, hi: float, var: int | None = None) -> float:
        """Expected sub-orders of ``p`` over [lo, hi) (event time) at its normal rate."""
        w = self.W[self.P_var[p] if var is None else var]
        tot, b = 0.0, self.bin_of(lo)
        while b < self.nb:
            blo = self.ts0 + b * BIN
            if blo >= hi:
                break
            tot += w[b] * (min(hi, blo + BIN) - max(lo, blo)) / BIN
            b += 1
        return self.P_rate[p] * tot

    def pre_start(self) -> None:
        """Steps, inside the stream, of orders that began before the order horizon.

        Candidate event times are drawn at the steady-state rate; a candidate is kept
        when its sampled lag puts the order's start before ``ts0`` (later orders are
        simulated in full by ``baseline``), so the stream is stationary from minute one.
        """
        rng, rnd = self.rng, self.rnd
        n, span = len(self.P_id), (self.t1 - self.t0) / DAY
        lo, hi = self.bin_of(self.t0), self.nb
        bins = range(lo, hi)
        flat = [0.5 + 0.5 * w * len(bins) / sum(self.W[0][lo:hi]) for w in self.W[0][lo:hi]]
        for status, share, weights in (
            (CONFIRMED, 0.85 * 0.9, self.W[0][lo:hi]),
            (SETTLED, 0.85, flat),
            (INVALIDATED, None, self.W[0][lo:hi]),
        ):
            pw = [r * (self.P_q[p] if share is None else share) for p, r in enumerate(self.P_rate)]
            k = _poisson(rng, sum(pw) * span)
            pubs = rng.choices(range(n), cum_weights=list(_acc(pw)), k=k)
            tbins = sorted(rng.choices(bins, cum_weights=list(_acc(weights)), k=k))
            for p, b in zip(pubs, tbins, strict=True):
                t = max(self.t0, self.ts0 + b * BIN + rnd() * BIN)
                reason = NO_REASON
                if status == CONFIRMED:
                    start = t - self.confirm_lag()
                elif status == SETTLED:
                    start = t - self.confirm_lag() - self.settle_lag()
                else:
                    reason = bisect.bisect(self.P_mix[p], rnd())
                    unpaid = reason == CANCEL and rnd() < UNPAID_CANCEL
                    start = t - self.lag(reason, t, unpaid, thin=False)
                if start < self.ts0:
                    kp = self.nparent
                    self.nparent += 1
                    self.emit(self.new_order(p, kp, 1, start), status, reason, t)

    # ------------------------------------------------------------ delivery

    def emit(self, o: int, status: int, reason: int, ts: float) -> None:
        """Deliver one step: delay, feed incidents, redelivery, the odd malformed line."""
        if ts < self.t0 or ts >= self.t1:
            return
        rnd = self.rnd
        code = status | reason << 3 | self.P_prod[self.opub[o]] << 6
        r = rnd()
        if r < 0.967:
            a = ts + 1.0 - 5.0 * math.log(1.0 - rnd())
        elif r < 0.997:
            a = ts + 60.0 + 120.0 * rnd()
        else:
            a = ts + 600.0 + 6600.0 * rnd()
        if code & 0xC0 == JD << 6:  # JD-like producer polls every 20 s
            a += 20.0 - ts % 20.0
        eid = self.neid
        self.neid += 1
        f = self.feed[int((ts - self.t0) // 60)]
        if f is not None:
            code = f.apply(self, o, status, code, ts, a, eid)
            if code < 0:
                self.dropped += 1
                return
        elif rnd() < 5e-5:  # background: a producer writes a broken line now and then
            code |= (1 if rnd() < 0.6 else 2) << MAL_SHIFT
        self._A(a)
        self._T(ts)
        self._K(o)
        self._S(code)
        self._E(eid)
        if rnd() < 0.002:  # natural redelivery of the very same line
            self.dups += 1
            self.append(a + 5.0 + 1800.0 * rnd(), ts, o, code, eid)

    def append(self, a: float, ts: float, o: int, code: int, eid: int) -> None:
        """Add one event record (arrival, event time, order, code, event id)."""
        self._A(a)
        self._T(ts)
        self._K(o)
        self._S(code)
        self._E(eid)

    # ------------------------------------------------------------ output

    def write(self, path: Path) -> int:
        """Format every event record into its JSON line, in arrival order."""
        A, T, K, S, E = self.A, self.T, self.K, self.S, self.E
        opub, okp, osub, oitem, oday = self.opub, self.okp, self.osub, self.oitem, self.oday
        iid, ishop, imoney = self.I_id, self.I_shop, self.I_money
        pids, sites = self.P_id, [s[0] for s in self.P_static]
        zones = [s[1] for s in self.P_static]
        sr = [
            f'"status":"{STATUSES[c & 7 if c & 7 < 5 else 0]}"'
            + (f',"reason":"{REASONS[c >> 3]}"' if c >> 3 < 6 else "")
            for c in range(64)
        ]
        pre_id = f"{self.salt & 0xFFFFFFFF:08x}"
        cache: dict[int, tuple[str, str]] = {}
        days: dict[int, str] = {}
        seen = self.seen = bytearray(len(self.opub))  # 1: in the stream, 2: placed in it
        out: list[str] = []
        n = 0
        with open(path, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as fh:
            for i in sorted(range(len(A)), key=A.__getitem__):
                c, ts, o = S[i], T[i], K[i]
                ti = int(ts)
                m = ti // 60
                pre = cache.get(m)
                if pre is None:
                    pre = cache[m] = _prefixes(m)
                sec = ti - m * 60
                prod = (c >> 6) & 3
                if c & F_ANY:
                    lt = pre[0] if c & F_SKEW or prod != JD else pre[1]
                    tz = "Z" if c & F_SKEW or prod == JD else "+08:00"
                else:
                    lt, tz = (pre[1], "Z") if prod == JD else (pre[0], "+08:00")
                eid = f"{pre_id}{(E[i] * 0x9E3779B1) & 0xFFFFFFFF:08x}"
                p, sb, it = opub[o], osub[o], oitem[o]
                money = imoney[it][sb >> 4]
                if prod == TB:
                    kp = okp[o]
                    oid = 2_300_000_000_000_000_000 + (o * 7_919_237_011) % 10**18
                    par = oid if sb & 15 == 1 else 1_900_000_000_000_000_000 + kp * 6_700_417
                    zs = zones[p]
                    line = (
                        f'{{"schema_version":1,"event_id":"e-{eid}","order_id":"{oid}",'
                        f'"parent_order_id":"{par}","publisher_id":"{pids[p]}",'
                        f'"site_id":"{sites[p]}","adzone_id":"{zs[kp % len(zs)]}",'
                        f'"item_id":"{iid[it]}",{money},"currency":"CNY",{sr[c & 63]},'
                        f'"occurred_at":"{lt}{SEC[sec]}{tz}"}}'
                    )
                elif prod == JD:
                    num = 250_000_000_000 + okp[o] * 7_919
                    jpar = f'"parent_order_id":"{num}",' if sb & 15 > 1 else ""
                    line = (
                        f'{{"event_id":"e-{eid}","schema_version":1,'
                        f'"publisher_id":"{pids[p]}","order_id":"{num}-{iid[it]}",{jpar}'
                        f'"item_id":"{iid[it]}","shop_id":"{ishop[it]}",{money},{sr[c & 63]},'
                        f'"occurred_at":"{lt}{SEC[sec]}{tz}","src":"jd_union"}}'
                    )
                else:
                    day = days.get(oday[o])
                    if day is None:
                        day = days[oday[o]] = dt.date.fromordinal(oday[o] + 719163).strftime(
                            "%y%m%d"
                        )
                    sn = 100_000_000_000_000 + (o * 3_367_900_313) % (9 * 10**14)
                    cur = ',"currency":"CNY"' if o % 3 else ""
                    line = (
                        f'{{"schema_version":1,"event_id":"e-{eid}",'
                        f'"order_id":"{day}-{sn}","publisher_id":"{pids[p]}",'
                        f'"adzone_id":"{zones[p][0]}_{okp[o] % 97}","item_id":"{iid[it]}",'
                        f"{money}{cur},{sr[c & 63]},"
                        f'"occurred_at":"{lt}{SEC[sec]}.{int((ts - ti) * 1000):03d}{tz}"}}'
                    )
                if c & F_ANY:
                    line = self._special(line, o, c, E[i])
                seen[o] |= 2 if c & 7 < CONFIRMED else 1
                out.append(line)
                if len(out) >= 20000:
                    fh.write("\n".join(out))
                    fh.write("\n")
                    n += len(out)
                    out.clear()
            if out:
                fh.write("\n".join(out))
                fh.write("\n")
                n += len(out)
        return n

    def _special(self, line: str, o: int, c: int, eid: int) -> str:
        if c & F_PUBX:
            p = self.opub[o]
            other = self.P_id[(p + 1 + o % (len(self.P_id) - 1)) % len(self.P_id)]
            line = line.replace(f'"publisher_id":"{self.P_id[p]}"', f'"publisher_id":"{other}"', 1)
        mal = (c >> MAL_SHIFT) & 7
        if mal:
            self.malformed += 1
            line = sim_incidents.malform(line, mal, eid)
        return line


def _prefixes(minute: int) -> tuple[str, str]:
    t = minute * 60
    return (
        dt.datetime.fromtimestamp(t, TZ8).strftime("%Y-%m-%dT%H:%M:"),
        dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:"),
    )


def _acc(xs: list[float]) -> Any:
    s = 0.0
    for x in xs:
        s += x
        yield s


def _cum(ps: list[float]) -> list[float]:
    out = list(_acc(ps))
    out[-1] = 1.0
    return out[:-1]  # bisect(cum, u) gives the index of the drawn category


def _pick(rng: random.Random, shares: tuple[float, ...]) -> int:
    return bisect.bisect(_cum(list(shares)), rng.random())


def simulate(
    seed: int,
    out_dir: str | Path,
    publishers: int = 3000,
    days: float = 3.0,
    start: str = "2026-11-02T00:00:00+08:00",
    incidents: bool = True,
) -> dict[str, Any]:
    """Write ``events.jsonl`` and ``incidents.json`` to ``out_dir``; return a summary."""
    if publishers < 2 or days <= 0:
        raise ValueError("need at least 2 publishers and a positive number of days")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    begin = dt.datetime.fromisoformat(start)
    if begin.tzinfo is None:
        raise ValueError(f"start {start!r} needs a UTC offset, e.g. +08:00")
    t0 = begin.timestamp()
    sim = Sim(seed, t0, days, publishers)
    plan = sim_incidents.plan(sim) if incidents else []
    sim.baseline()
    sim.pre_start()
    for inc in plan:
        inc.inject(sim)
    n_events = sim.write(out / "events.jsonl")
    records = [inc.record(sim.P_id) for inc in plan]
    doc = {
        "seed": seed,
        "start": iso(sim.t0),
        "end": iso(sim.t1),
        "publishers": publishers,
        "days": days,
        "incidents": records,
    }
    (out / "incidents.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return {
        "seed": seed,
        "events": n_events,
        "orders": len(sim.seen) - sim.seen.count(0),  # distinct order ids in the stream
        "orders_placed": sim.seen.count(2) + sim.seen.count(3),  # created or paid in it
        "publishers": len(sim.P_id),
        "incidents": sum(1 for r in records if not r["trap"]),
        "traps": sum(1 for r in records if r["trap"]),
        "malformed_lines": sim.malformed,
        "redelivered_lines": sim.dups,  # natural and storm
        "dropped_events": sim.dropped,
        "start": doc["start"],
        "end": doc["end"],
        "events_path": str(out / "events.jsonl"),
        "incidents_path": str(out / "incidents.json"),
    }


__all__ = ["Sim", "simulate"]
