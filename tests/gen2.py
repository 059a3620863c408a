#!/usr/bin/env python3
"""gen2: an independent generator of realistic affiliate-order lifecycle traffic with
labelled incidents and traps (Western networks impact/CJ/Awin style + a Chinese
marketplace share).  Writes OUT/events.jsonl (sorted by delivery time) and
OUT/incidents.json (the format monitor/evaluate.py loads).

usage: python tests/gen2.py --seed N --out DIR [--publishers N] [--orders-per-day N]
       ordermon replay DIR/events.jsonl --out DIR/alerts.jsonl
       ordermon evaluate --incidents DIR/incidents.json --alerts DIR/alerts.jsonl

Provenance: written on 2026-12-04 by a helper session that was shown the event contract,
``monitor/evaluate.py`` and the README, but not ordermon's detectors, simulator or
``tests/realgen.py``. Four regions (US-East, US-West, EU, CN) with their own daily cycles,
five feeds with their own timestamp styles (one without ``parent_order_id``), refunds in
the merchant's local office hours, a network's nightly reversal batch at 02:00 UTC, a
merchants' nightly confirmation batch, 56 days of simulated history. The detectors were
changed after its first results (see the README): its streams are no longer unseen.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from datetime import UTC, datetime

import numpy as np

H = 3600.0
D = 86400.0
T0 = datetime(2026, 11, 20, tzinfo=UTC).timestamp()  # Friday 00:00 UTC
SPAN = 3 * D
HIST = 56 * D  # simulated history before the stream (return windows + settlement)
T1 = T0 + SPAN

ST_CREATED, ST_PAID, ST_CONF, ST_SET, ST_INV = range(5)
STATUS = ["created", "paid", "confirmed", "settled", "invalidated"]
REASONS = ["refund", "cancel", "fraud", "violation", "data_anomaly", "other"]
R_REFUND, R_CANCEL, R_FRAUD, R_VIOL, R_ANOM, R_OTHER = range(6)

# region: name, utc offset (h, November), share of orders, profile
REGIONS = [
    ("US-East", -5, 0.27, "W"),
    ("US-West", -8, 0.12, "W"),
    ("EU", 1, 0.25, "W"),
    ("CN", 8, 0.36, "C"),
]
# feed: name, pub prefix, order prefix, ts style, emits created, has parent, currency
#  ts styles: 0 Z seconds, 1 Z millis, 2 local offset seconds, 3 local offset micros, 4 +00:00
FEEDS = [
    ("impact", "ir", "IR", 1, True, True),
    ("cj", "cj", "CJ", 2, True, False),
    ("awin", "aw", "AW", 3, True, True),
    ("cn-union", "mm", "", 2, False, True),
    ("cn-jd", "jd", "JD", 0, True, True),
]
REGION_FEEDS = {
    0: ([0, 1], [0.6, 0.4]),
    1: ([0, 1], [0.55, 0.45]),
    2: ([2, 0], [0.8, 0.2]),
    3: ([3, 4], [0.65, 0.35]),
}
CURRENCY = {0: "USD", 1: "USD", 2: "EUR", 3: "CNY"}
AMT_MED = {0: 55.0, 1: 60.0, 2: 45.0, 3: 95.0}

TYPES = ["coupon", "cashback", "content", "loyalty", "subnetwork", "influencer"]
# per cart: cancel, fraud, violation, anomaly, other ; per item: refund ; commission rate
TYPE_RATES = {
    "coupon": (0.060, 0.004, 0.004, 0.0015, 0.003, 0.08, 0.03),
    "cashback": (0.050, 0.008, 0.002, 0.0015, 0.003, 0.10, 0.05),
    "content": (0.040, 0.003, 0.001, 0.0015, 0.002, 0.07, 0.06),
    "loyalty": (0.040, 0.003, 0.001, 0.0015, 0.002, 0.09, 0.04),
    "subnetwork": (0.070, 0.025, 0.012, 0.0015, 0.004, 0.09, 0.05),
    "influencer": (0.080, 0.010, 0.004, 0.0015, 0.003, 0.12, 0.08),
}

# local-hour order intensity (value at hh:00, linearly interpolated)
PROF_W = [
    0.35,
    0.22,
    0.14,
    0.10,
    0.08,
    0.09,
    0.15,
    0.28,
    0.45,
    0.60,
    0.70,
    0.78,
    0.85,
    0.85,
    0.82,
    0.80,
    0.80,
    0.85,
    0.92,
    1.00,
    1.05,
    1.00,
    0.80,
    0.55,
]
PROF_C = [
    0.60,
    0.35,
    0.18,
    0.10,
    0.06,
    0.05,
    0.07,
    0.15,
    0.35,
    0.60,
    0.75,
    0.80,
    0.78,
    0.70,
    0.75,
    0.78,
    0.78,
    0.75,
    0.80,
    0.95,
    1.15,
    1.30,
    1.25,
    0.90,
]
# weekday factor by local weekday (Mon=0)
WEEK_W = [1.0, 1.0, 1.0, 1.02, 1.0, 0.9, 1.05]
WEEK_C = [1.0, 1.0, 1.0, 1.0, 1.02, 1.06, 1.02]
ABL: set = set()  # ablations (diagnosis only): flat-refund-hours, no-confirm-batch, all-parents
REVERSAL_HOUR = 2.0  # network fraud/violation reversal batch, UTC
SETTLE_BATCH = (4.0, 8.0)  # UTC hours of the settlement batch


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Gen:
    def __init__(self, seed: int, n_pub: int, orders_per_day: float):
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.n_pub = n_pub
        self.opd = orders_per_day
        self.next_cart = 10_000_000 * seed
        self.next_sub = 500_000_000 * seed
        self.parts = []  # event column dicts (in stream only)
        self._make_grid()
        self._make_publishers()

    # ------------------------------------------------------------ world
    def _make_grid(self):
        """Per region, per minute from T0-HIST to T1: relative order intensity."""
        self.g0 = T0 - HIST
        nmin = int((HIST + SPAN) / 60)
        tm = self.g0 + 60 * np.arange(nmin) + 30
        self.grid = []
        for _, off, _, prof in REGIONS:
            lt = tm + off * H
            hod = (lt % D) / H
            p = np.array(PROF_W if prof == "W" else PROF_C)
            h0 = np.floor(hod).astype(int)
            fr = hod - h0
            v = p[h0] * (1 - fr) + p[(h0 + 1) % 24] * fr
            wd = (np.floor(lt / D).astype(np.int64) + 3) % 7  # 1970-01-01 was Thursday
            wf = np.array(WEEK_W if prof == "W" else WEEK_C)[wd]
            # weekend mornings start later (western)
            if prof == "W":
                wk = wd >= 5
                late = (hod > 6) & (hod < 11) & wk
                v = np.where(late, v * 0.8, v)
            v = v * wf
            v = v / v[: 7 * 1440].mean()
            self.grid.append(v)

    def _make_publishers(self):
        rng, n = self.rng, self.n_pub
        size = rng.lognormal(0.0, 2.4, n)
        order = np.argsort(-size)
        region = rng.choice(4, n, p=[r[2] for r in REGIONS])
        rate = np.zeros(n)
        for r in range(4):
            m = region == r
            rate[m] = size[m] / size[m].sum() * self.opd * REGIONS[r][2]
        ptype = np.empty(n, dtype=object)
        rank = np.empty(n, int)
        rank[order] = np.arange(n)
        top = rank < max(10, n // 100)
        ptype[top] = rng.choice(TYPES, top.sum(), p=[0.35, 0.35, 0.0, 0.15, 0.15, 0.0])
        ptype[~top] = rng.choice(TYPES, (~top).sum(), p=[0.12, 0.08, 0.40, 0.05, 0.10, 0.25])
        feed = np.zeros(n, int)
        for r in range(4):
            m = region == r
            fs, ps = REGION_FEEDS[r]
            feed[m] = rng.choice(fs, m.sum(), p=ps)
        het = rng.lognormal(0, 0.35, n)
        fhet = rng.lognormal(0, 0.6, n)
        tr = np.array([TYPE_RATES[t] for t in ptype])
        cnmul = np.where(region == 3, 1.25, 1.0)
        self.p_cancel = tr[:, 0] * het * cnmul
        self.p_fraud = tr[:, 1] * fhet
        self.p_viol = tr[:, 2] * fhet
        self.p_anom = tr[:, 3]
        self.p_other = tr[:, 4]
        self.p_refund = np.minimum(tr[:, 5] * het * cnmul, 0.4)
        self.comm = tr[:, 6] * rng.uniform(0.7, 1.3, n)
        self.window = rng.choice([14, 21, 30], n, p=[0.3, 0.3, 0.4]) * D
        self.region, self.feed, self.ptype, self.rate, self.rank = region, feed, ptype, rate, rank
        self.active_from = np.full(n, -np.inf)
        self.pub_names = [
            f"{FEEDS[feed[i]][1]}-{100000 + i * 7 + seed_mix(self.seed)}" for i in range(n)
        ]

    def add_publisher(self, ptype, region, rate, start):
        """A new publisher (appended); returns index."""
        i = self.n_pub
        self.n_pub += 1
        fs, ps = REGION_FEEDS[region]
        feed = fs[0]
        tr = TYPE_RATES[ptype]
        cat = lambda a, v: np.append(a, v)
        self.p_cancel = cat(self.p_cancel, tr[0])
        self.p_fraud = cat(self.p_fraud, tr[1])
        self.p_viol = cat(self.p_viol, tr[2])
        self.p_anom = cat(self.p_anom, tr[3])
        self.p_other = cat(self.p_other, tr[4])
        self.p_refund = cat(self.p_refund, tr[5])
        self.comm = cat(self.comm, tr[6])
        self.window = cat(self.window, 30 * D)
        self.region = cat(self.region, region)
        self.feed = cat(self.feed, feed)
        self.ptype = np.append(self.ptype, ptype)
        self.rate = cat(self.rate, 0.0)
        self.rank = cat(self.rank, -1)
        self.active_from = cat(self.active_from, start)
        self.pub_names.append(f"{FEEDS[feed][1]}-{900000 + i}")
        return i, rate

    # ------------------------------------------------------------ orders
    def carts_by_rate(self, pub_idx, t_lo, t_hi, shape=None, mult=1.0):
        """Poisson carts for publishers in pub_idx over [t_lo,t_hi) following their region's
        diurnal profile; shape(t)->multiplier array optional.  Returns (pub, t_paid)."""
        rng = self.rng
        m0 = int((t_lo - self.g0) // 60)
        m1 = int(math.ceil((t_hi - self.g0) / 60))
        pubs_out, ts_out = [], []
        pub_idx = np.asarray(pub_idx)
        for r in range(4):
            ps = pub_idx[self.region[pub_idx] == r]
            if len(ps) == 0:
                continue
            g = self.grid[r][m0:m1].copy()
            tm = self.g0 + 60 * np.arange(m0, m1)
            if shape is not None:
                g = g * shape(tm + 30)
            g[tm + 60 <= t_lo] = 0
            g[tm >= t_hi] = 0
            tot = g.sum() / 1440.0
            if tot <= 0:
                continue
            lam = self.rate_of(ps) * mult / 1.45 * tot  # 1.45 = mean items per cart
            k = rng.poisson(lam)
            nt = k.sum()
            if nt == 0:
                continue
            cdf = np.cumsum(g)
            cdf /= cdf[-1]
            mi = np.searchsorted(cdf, rng.random(nt))
            t = tm[mi] + rng.random(nt) * 60
            pubs_out.append(np.repeat(ps, k))
            ts_out.append(t)
        if not pubs_out:
            return np.zeros(0, int), np.zeros(0)
        p, t = np.concatenate(pubs_out), np.concatenate(ts_out)
        ok = (t >= t_lo) & (t < t_hi)
        return p[ok], t[ok]

    def rate_of(self, ps):
        return self.rate[ps]

    def build(
        self,
        pub,
        tp,
        force_fate=None,
        force_t=None,
        amt_scale=1.0,
        item=None,
        single=False,
        tag=None,
    ):
        """Carts -> lifecycle events of their sub-orders that fall inside the stream."""
        rng = self.rng
        n = len(pub)
        if n == 0:
            return
        cart = self.next_cart + np.arange(n, dtype=np.int64)
        self.next_cart += n
        nit = np.ones(n, int) if single else np.minimum(rng.geometric(0.68, n), 8)
        # cart fate
        u = rng.random(n)
        c1 = self.p_cancel[pub]
        c2 = c1 + self.p_fraud[pub]
        c3 = c2 + self.p_viol[pub]
        c4 = c3 + self.p_anom[pub]
        c5 = c4 + self.p_other[pub]
        fate = np.select([u < c1, u < c2, u < c3, u < c4, u < c5], [1, 2, 3, 4, 5], 0)
        tci = np.full(n, np.inf)
        payfail = np.zeros(n, bool)
        m = fate == 1
        pf = m & (rng.random(n) < 0.3)
        payfail[pf] = True
        tci[pf] = tp[pf] + 60 + rng.exponential(600, pf.sum())
        mm = m & ~pf
        tci[mm] = tp[mm] + np.minimum(rng.lognormal(math.log(45 * 60), 1.3, mm.sum()), 3 * D)
        for code, fast_share, fast_med in ((2, 0.3, 20 * 60), (3, 0.2, 40 * 60)):
            m = fate == code
            fast = m & (rng.random(n) < fast_share)
            tci[fast] = tp[fast] + rng.lognormal(math.log(fast_med), 0.8, fast.sum())
            b = m & ~fast
            tci[b] = self.reversal_time(tp[b] + rng.uniform(0.6 * D, 3.5 * D, b.sum()))
        m = fate == 4
        tci[m] = tp[m] + rng.uniform(0, 3 * D, m.sum())
        m = fate == 5
        tci[m] = tp[m] + rng.lognormal(math.log(D), 0.7, m.sum())
        if force_fate is not None:
            fate = force_fate.copy()
            tci = force_t.copy()
            payfail[:] = False
        # expand to items
        sp = np.repeat(pub, nit)
        sc = np.repeat(cart, nit)
        stp = np.repeat(tp, nit)
        sfate = np.repeat(fate, nit)
        stci = np.repeat(tci, nit)
        spf = np.repeat(payfail, nit)
        ns = len(sp)
        sid = self.next_sub + np.arange(ns, dtype=np.int64)
        self.next_sub += ns
        reg = self.region[sp]
        med = np.array([AMT_MED[r] for r in range(4)])[reg]
        amt = np.round(rng.lognormal(0, 0.85, ns) * med * amt_scale, 2)
        com = np.round(amt * self.comm[sp], 2)
        if item is None:
            itm = rng.zipf(1.3, ns) % 200000
        else:
            itm = np.full(ns, item)
        off = np.array([REGIONS[r][1] for r in range(4)])[reg] * H
        # refunds (per item) for uninvalidated carts
        # lock/confirm after the return window: half in the merchant's nightly approval
        # batch (local 03:00-06:00), half continuously via API
        tconf = stp + self.window[sp] + rng.exponential(2 * H, ns)
        cb = rng.random(ns) < 0.5
        snapped = self.local_snap(tconf[cb], off[cb], 3.0, 3.0)
        if "no-confirm-batch" not in ABL:
            tconf[cb] = snapped
        tset = tconf + rng.uniform(3 * D, 25 * D, ns)
        batch = rng.random(ns) < 0.4
        tset[batch] = self.utc_snap(tset[batch], *SETTLE_BATCH)
        ref = (sfate == 0) & (rng.random(ns) < self.p_refund[sp])
        early = rng.random(ns) < 0.25
        dly = np.where(
            early, rng.lognormal(math.log(8 * H), 1.0, ns), D + rng.gamma(2.5, 3.2 * D, ns)
        )
        tref = stp + np.minimum(dly, 45 * D)
        late = ~early
        snapped = np.maximum(
            self.local_snap(tref[late], off[late], 9.0, 10.0, beta=True), stp[late] + H
        )
        if "flat-refund-hours" not in ABL:
            tref[late] = snapped
        claw = rng.random(ns) < 0.05
        ref &= (tref < tconf) | claw
        tinv = np.where(sfate > 0, stci + rng.uniform(0, 2, ns), np.inf)
        tinv = np.where(ref, tref, tinv)
        rinv = np.full(ns, -1, np.int8)
        rinv[sfate == 1] = R_CANCEL
        rinv[sfate == 2] = R_FRAUD
        rinv[sfate == 3] = R_VIOL
        rinv[sfate == 4] = R_ANOM
        rinv[sfate == 5] = R_OTHER
        rinv[ref] = R_REFUND
        feeds = self.feed[sp]
        emits_created = np.array([f[4] for f in FEEDS])[feeds]
        tcr = stp - np.minimum(rng.lognormal(math.log(60), 1.0, ns), H)
        # events: (time, status, mask)
        cols = []
        for t, st, mk in (
            (tcr, ST_CREATED, emits_created),
            (stp, ST_PAID, ~spf),
            (tconf, ST_CONF, tconf < tinv),
            (tset, ST_SET, tset < tinv),
            (tinv, ST_INV, np.isfinite(tinv)),
        ):
            ok = mk & (t >= T0) & (t < T1)
            if ok.any():
                k = ok.sum()
                cols.append(
                    dict(
                        t=t[ok],
                        sid=sid[ok],
                        cart=sc[ok],
                        pub=sp[ok].astype(np.int32),
                        st=np.full(k, st, np.int8),
                        rs=(rinv[ok] if st == ST_INV else np.full(k, -1, np.int8)),
                        amt=amt[ok],
                        com=com[ok],
                        item=itm[ok].astype(np.int64),
                        tp=stp[ok],
                    )
                )
        for c in cols:
            self.parts.append(c)

    def reversal_time(self, t):
        day = np.floor(t / D) * D
        tb = day + REVERSAL_HOUR * H
        tb = np.where(tb < t - 0.5 * D, tb + D, tb)
        return tb + np.minimum(self.rng.exponential(12 * 60, len(t)), 3600)

    def local_snap(self, t, off, h0, width, beta=False):
        """Move t into [h0, h0+width) hours of local time on its local day (or the next)."""
        lt = t + off
        day = np.floor(lt / D) * D
        fr = self.rng.beta(2, 2, len(t)) if beta else self.rng.random(len(t))
        x = day + h0 * H + fr * width * H
        x = np.where(x < lt - 2 * H, x + D, x)
        return x - off

    def utc_snap(self, t, h0, h1):
        day = np.floor(t / D) * D
        x = day + h0 * H + self.rng.random(len(t)) * (h1 - h0) * H
        return np.where(x < t, x + D, x)

    def base_traffic(self, exclude=()):
        pubs = np.array([i for i in range(self.n_pub) if self.rate[i] > 0])
        t = self.g0
        while t < T1:
            p, tp = self.carts_by_rate(pubs, t, min(t + D, T1))
            self.build(p, tp)
            t += D

    # ------------------------------------------------------------ table
    def table(self):
        keys = self.parts[0].keys()
        E = {k: np.concatenate([p[k] for p in self.parts]) for k in keys}
        self.parts = []
        return E


def seed_mix(seed):
    return (seed * 7919) % 1000


def cat_events(E, add):
    return {k: np.concatenate([E[k], add[k]]) for k in E}


def sel(E, m):
    return {k: v[m] for k, v in E.items()}


# ---------------------------------------------------------------- incidents


def invalidate_carts(E, carts, t_inv, reason, rng):
    """Invalidate whole carts at t_inv (per cart): drop their later events, add one
    invalidated event per sub-order.  Carts already invalidated before t_inv are skipped."""
    carts = np.asarray(carts)
    t_inv = np.asarray(t_inv)
    tmap = dict(zip(carts.tolist(), t_inv.tolist()))
    inc = np.isin(E["cart"], carts)
    idx = np.nonzero(inc)[0]
    te = np.array([tmap[c] for c in E["cart"][idx].tolist()], dtype=float)
    early_inv = idx[(E["st"][idx] == ST_INV) & (E["t"][idx] < te)]
    skip = set(E["cart"][early_inv].tolist())
    keep_c = np.array([c not in skip for c in E["cart"][idx].tolist()], dtype=bool)
    drop = idx[keep_c & (E["t"][idx] >= te)]
    # sub-orders of the carts (first event of each)
    src = idx[keep_c & (E["t"][idx] < te)]
    _, first = np.unique(E["sid"][src], return_index=True)
    src = src[first]
    m = np.ones(len(E["t"]), bool)
    m[drop] = False
    E2 = sel(E, m)
    add = sel(E, src)
    add["t"] = np.array([tmap[c] for c in add["cart"].tolist()], dtype=float) + rng.uniform(
        0, 2, len(src)
    )
    add["st"] = np.full(len(src), ST_INV, np.int8)
    add["rs"] = np.full(len(src), reason, np.int8)
    ok = add["t"] < T1
    return cat_events(E2, sel(add, ok)), len(set(add["cart"].tolist()))


def fresh_refunds(g, pub, times, amt_scale=1.0, item=None):
    """Refund events for orders paid days before (pre-stream or unseen): only the
    refund step is in the stream."""
    rng = g.rng
    n = len(times)
    sid = g.next_sub + np.arange(n, dtype=np.int64)
    g.next_sub += n
    cart = g.next_cart + np.arange(n, dtype=np.int64)
    g.next_cart += n
    reg = g.region[pub]
    amt = np.round(rng.lognormal(0, 0.6, n) * AMT_MED[reg] * amt_scale, 2)
    return dict(
        t=np.asarray(times, float),
        sid=sid,
        cart=cart,
        pub=np.full(n, pub, np.int32),
        st=np.full(n, ST_INV, np.int8),
        rs=np.full(n, R_REFUND, np.int8),
        amt=amt,
        com=np.round(amt * g.comm[pub], 2),
        item=np.full(n, item if item is not None else 777, np.int64),
        tp=np.asarray(times) - rng.uniform(3 * D, 14 * D, n),
    )


def ramp_times(rng, n, ws, we, ramp):
    """n times in [ws,we) with a density rising linearly over `ramp` seconds then flat."""
    out = []
    while len(out) < n:
        t = rng.uniform(ws, we, 4 * n + 10)
        acc = rng.random(len(t)) < np.minimum((t - ws) / ramp, 1.0)
        out.extend(t[acc].tolist())
    return np.array(out[:n])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--publishers", type=int, default=None)
    ap.add_argument("--orders-per-day", type=float, default=None)
    ap.add_argument(
        "--ablate",
        action="append",
        default=[],
        choices=["flat-refund-hours", "no-confirm-batch", "all-parents"],
        help="diagnosis only: switch off one realistic feature",
    )
    a = ap.parse_args()
    ABL.update(a.ablate)
    t_start = time.time()
    seed = a.seed
    rng0 = np.random.default_rng(1000 + seed)
    n_pub = a.publishers or int(rng0.integers(1500, 4001))
    opd = a.orders_per_day or float(rng0.uniform(180_000, 320_000))
    g = Gen(seed, n_pub, opd)
    rng = g.rng
    incidents = []

    def label(kind, alert_kind, category, ws, we, pubs=None, trap=False, **extra):
        d = dict(
            id=f"s{seed}-{len(incidents):02d}-{kind}",
            kind=kind,
            alert_kind=alert_kind,
            category=category,
            start=iso(ws),
            end=iso(we),
            trap=trap,
        )
        if pubs:
            if len(pubs) == 1:
                d["publisher_id"] = pubs[0]
            else:
                d["publisher_ids"] = list(pubs)
        d.update(extra)
        incidents.append(d)

    # slots for incident starts (hours after T0), shuffled
    slots = list(np.arange(4.0, 68.0, 3.2))
    rng.shuffle(slots)
    slot = lambda: T0 + (slots.pop() + rng.uniform(0, 1.2)) * H

    rank = g.rank
    by_rank = np.argsort(rank)
    pick = lambda lo, hi: int(by_rank[rng.integers(lo, hi)])
    used = set()

    def pick_pub(lo_rate, hi_rate, region=None):
        for _ in range(10000):
            i = int(rng.integers(0, g.n_pub))
            if (
                lo_rate <= g.rate[i] <= hi_rate
                and i not in used
                and (region is None or g.region[i] == region)
            ):
                used.add(i)
                return i
        raise RuntimeError("no publisher in range")

    # ---------------- base traffic
    g.base_traffic()
    print(f"base built {time.time() - t_start:.1f}s", file=sys.stderr)

    # ---------------- traps that are generated as traffic
    # Black-Friday-style promotion of a large publisher (orders x2.5-4, proportional cancels)
    pp = int(by_rank[rng.integers(2, 10)])
    used.add(pp)
    ws = slot()
    dur = rng.uniform(6, 10) * H
    we = ws + dur
    mult = rng.uniform(2.5, 4.0)
    shape = lambda t: np.clip((t - ws) / H, 0, 1) * np.clip((we - t) / H, 0, 1)
    p, tp = g.carts_by_rate(np.array([pp]), ws, we, shape=shape, mult=mult - 1)
    g.build(p, tp)
    label(
        "promotion",
        None,
        None,
        ws,
        we + 2 * H,
        [g.pub_names[pp]],
        trap=True,
        note=f"orders x{mult:.1f} with proportional cancels, {g.rate[pp]:.0f} orders/day base",
    )
    # new large publisher appearing
    tn = T0 + rng.uniform(18, 40) * H
    nrate = rng.uniform(2000, 5000)
    ni, _ = g.add_publisher("coupon", int(rng.choice([0, 2, 3])), nrate, tn)
    g.rate[ni] = nrate
    p, tp = g.carts_by_rate(np.array([ni]), tn, T1)
    g.build(p, tp)
    g.rate[ni] = 0.0  # not part of base (already generated)
    label(
        "new_publisher",
        None,
        None,
        tn,
        T1,
        [g.pub_names[ni]],
        trap=True,
        note=f"new coupon publisher, {nrate:.0f} orders/day from its first minute",
    )

    # brushing: fake orders (small amounts, one shop) mostly invalidated fast
    brush_specs = [(30, 250, rng.uniform(120, 400), rng.uniform(2, 4), 0.75)]
    if seed % 2 == 0:
        brush_specs.append((600, 2500, rng.uniform(40, 80), rng.uniform(2, 3.5), 0.5))
    brush_events = []
    for lo, hi, rph, hrs, fshare in brush_specs:
        bp = pick_pub(lo, hi)
        ws = slot()
        we = ws + hrs * H
        n = rng.poisson(rph * hrs)
        tpb = np.sort(rng.uniform(ws, we, n))
        fast = rng.random(n) < fshare
        ff = np.where(rng.random(n) < 0.6, 3, 2)
        ft = np.where(
            fast, tpb + rng.lognormal(math.log(35 * 60), 0.6, n), g.reversal_time(tpb + 0.7 * D)
        )
        g.build(
            np.full(n, bp),
            tpb,
            force_fate=ff,
            force_t=ft,
            amt_scale=0.15,
            item=424242 + seed,
            single=True,
        )
        label(
            "brushing",
            "publisher_spike",
            "publisher",
            ws,
            we + H,
            [g.pub_names[bp]],
            note=f"+{rph:.0f} fake orders/h for {hrs:.1f} h ({g.rate[bp]:.0f}/day base), "
            f"{fshare:.0%} invalidated violation/fraud within ~35 min",
        )
    # fraud burst extra fake orders are added below (post hoc) with conversion of real ones
    E = g.table()
    print(f"events {len(E['t'])} {time.time() - t_start:.1f}s", file=sys.stderr)

    def carts_paid(pub, ws, we):
        m = (E["pub"] == pub) & (E["st"] <= ST_PAID) & (E["tp"] >= ws) & (E["tp"] < we)
        c, i = np.unique(E["cart"][m], return_index=True)
        return c, E["tp"][m][i]

    # ---------------- fraud bursts
    fb_specs = [
        (300, 3000, 0.35, 0.5, rng.uniform(1, 2), 40),  # obvious
        (2000, 15000, 0.12, 0.0, 3.0, 25),  # subtle, large publisher
        (15, 80, 0.0, 0.0, 0.5, 0),
    ]  # small publisher, 20-35 fake orders
    for lo, hi, frac, extra, hrs, min_tot in fb_specs:
        fp = pick_pub(lo, hi)
        ws = slot()
        we = ws + hrs * H
        c, tpc = carts_paid(fp, ws, we)
        k = rng.random(len(c)) < frac
        E, nconv = invalidate_carts(
            E, c[k], tpc[k] + rng.lognormal(math.log(15 * 60), 0.6, k.sum()), R_FRAUD, rng
        )
        nx = int(rng.poisson(extra * len(c))) if extra else 0
        if lo < 100:
            nx = int(rng.integers(20, 35))
        nx = max(nx, min_tot - nconv)
        if nx:
            tpx = np.sort(rng.uniform(ws, we, nx))
            g.build(
                np.full(nx, fp),
                tpx,
                force_fate=np.full(nx, 2),
                force_t=tpx + rng.lognormal(math.log(12 * 60), 0.6, nx),
            )
            E = cat_events(E, g.table())
        label(
            "fraud_burst",
            "publisher_spike",
            "publisher",
            ws,
            we + 0.5 * H,
            [g.pub_names[fp]],
            note=f"{nconv} of {len(c)} real carts + {nx} fake carts invalidated fraud ~15 min "
            f"after payment over {hrs:.1f} h ({g.rate[fp]:.0f}/day)",
        )

    # ---------------- refund waves (bad product)
    rw_specs = [
        (800, 5000, rng.uniform(1.5, 3.0), rng.uniform(6, 10)),
        (300, 2500, rng.uniform(0.8, 1.3), rng.uniform(6, 9)),
    ]
    for lo, hi, k, hrs in rw_specs:
        rp = pick_pub(lo, hi)
        ws = slot()
        ws = min(ws, T1 - hrs * H - 2 * H)
        we = ws + hrs * H
        m = (
            (E["pub"] == rp)
            & (E["st"] == ST_INV)
            & (E["rs"] == R_REFUND)
            & (E["t"] >= ws)
            & (E["t"] < we)
        )
        nb = int(m.sum())
        nx = int(round(k * max(nb, 5)))
        ts = ramp_times(rng, nx, ws, we, min(3 * H, 0.4 * hrs * H))
        E = cat_events(E, fresh_refunds(g, rp, ts, item=31337 + seed))
        label(
            "refund_wave",
            "publisher_spike",
            "publisher",
            ws,
            we,
            [g.pub_names[rp]],
            note=f"+{nx} refunds over {hrs:.1f} h on {nb} base refunds (x{1 + nx / max(nb, 1):.1f}), "
            f"ramp, {g.rate[rp]:.0f} orders/day",
        )

    # ---------------- tiny publisher trap: 3 refunds in 15 min
    tp_ = pick_pub(0.05, 0.8)
    ws = slot()
    E = cat_events(E, fresh_refunds(g, tp_, np.sort(ws + rng.uniform(0, 900, 3))))
    label(
        "tiny_publisher",
        None,
        None,
        ws,
        ws + 900,
        [g.pub_names[tp_]],
        trap=True,
        note=f"3 refunds within 15 min, {g.rate[tp_]:.2f} orders/day",
    )

    # ---------------- platform glitch: data_anomaly marks good orders invalid
    mags = {1: (2.0, 45, None), 2: (0.7, 90, [0, 1]), 3: (1.2, 60, [2, 3])}
    mag, mins, regs = mags.get(seed, (1.0, 60, None))
    ws = slot()
    we = ws + mins * 60
    minv = (E["st"] == ST_INV) & (E["t"] >= ws) & (E["t"] < we)
    base_inv = len(np.unique(E["cart"][minv]))
    # victims: carts paid in the 36h before, with no events at or after ws
    last = {}
    cand_m = (E["tp"] >= ws - 36 * H) & (E["tp"] < ws - 600) & (E["tp"] >= T0)
    if regs is not None:
        cand_m &= np.isin(g.region[E["pub"]], regs)
    cc = E["cart"][cand_m]
    later = np.unique(E["cart"][(E["t"] >= ws) | (E["st"] == ST_INV)])
    cc = np.setdiff1d(np.unique(cc), later)
    nv = min(int(mag * base_inv), len(cc))
    vic = rng.choice(cc, nv, replace=False)
    E, nconv = invalidate_carts(E, vic, rng.uniform(ws, we, nv), R_ANOM, rng)
    npubs = len(np.unique(E["pub"][np.isin(E["cart"], vic)]))
    label(
        "platform_glitch",
        "platform_spike",
        "platform",
        ws,
        we,
        note=f"{nconv} carts of {npubs} publishers marked data_anomaly "
        f"(+{mag:.0%} of {base_inv} base invalidated carts), regions "
        f"{'all' if regs is None else [REGIONS[r][0] for r in regs]}",
    )

    # ---------------- reason shift: platform relabels a reason for a few hours
    ra, rb = [(R_REFUND, R_OTHER), (R_CANCEL, R_REFUND), (R_REFUND, R_CANCEL)][seed % 3]
    ws = slot()
    we = ws + rng.uniform(2, 4) * H
    m = (E["st"] == ST_INV) & (E["rs"] == ra) & (E["t"] >= ws) & (E["t"] < we)
    E["rs"][m] = rb
    label(
        "reason_shift",
        "reason_shift",
        "data_quality",
        ws,
        we,
        note=f"{m.sum()} invalidations relabelled {REASONS[ra]} -> {REASONS[rb]}",
    )

    # ---------------- lifecycle bug: status sync re-validates invalidated orders and
    # re-sends orders under a sibling publisher id
    ws = slot()
    we = ws + rng.uniform(0.6, 1.5) * H
    lf = int(rng.choice([0, 2, 3]))
    pool = np.nonzero((E["st"] == ST_INV) & (E["t"] < ws) & (g.feed[E["pub"]] == lf))[0]
    nwin = int(((E["t"] >= ws) & (E["t"] < we)).sum())
    nbug = min(len(pool), int(nwin * rng.uniform(0.01, 0.03)))
    pi = rng.choice(pool, nbug, replace=False)
    add = sel(E, pi)
    add["t"] = rng.uniform(ws, we, nbug)
    add["st"] = np.where(rng.random(nbug) < 0.5, ST_CONF, ST_SET).astype(np.int8)
    add["rs"] = np.full(nbug, -1, np.int8)
    E = cat_events(E, add)
    label(
        "lifecycle_bug",
        "lifecycle_violation",
        "data_quality",
        ws,
        we,
        note=f"{nbug} confirmed/settled steps after invalidation from feed {FEEDS[lf][0]}",
    )

    # ---------------- delivery
    n = len(E["t"])
    jit = rng.exponential(4.0, n)
    r = rng.random(n)
    jit[r < 0.02] += rng.exponential(180, (r < 0.02).sum())
    jit[r < 0.003] += rng.uniform(600, 5400, (r < 0.003).sum())
    E["dt"] = E["t"] + jit
    E["eid"] = np.arange(n, dtype=np.int64) + 10**9 * seed
    E["shift"] = np.zeros(n)  # display shift (clock skew)
    E["zstyle"] = np.zeros(n, bool)  # forced 'Z' style
    E["bad"] = np.zeros(n, np.int8)  # malformation code
    feed_e = g.feed[E["pub"]]

    # clock skew: a Chinese feed writes local (UTC+8) wall time with 'Z'
    ws = slot()
    we = ws + rng.uniform(0.7, 2.0) * H
    cf = 3 if seed != 2 else 4
    cpub = np.nonzero(g.feed == cf)[0]
    cpub = cpub[rng.random(len(cpub)) < rng.uniform(0.15, 0.6)]
    m = (E["t"] >= ws) & (E["t"] < we) & np.isin(E["pub"], cpub)
    E["shift"][m] = 8 * H
    E["zstyle"][m] = True
    label(
        "clock_skew",
        "clock_skew",
        "data_quality",
        ws,
        we,
        note=f"{m.sum()} events ({m.sum() / max(1, ((E['t'] >= ws) & (E['t'] < we)).sum()):.1%} of the window) "
        f"of part of feed {FEEDS[cf][0]}'s publishers stamped local time as UTC (+8 h)",
    )

    # volume drop: a feed/region loses a share of its events
    vf, q = [(2, 1.0), (3, 0.6), (0, 0.5)][seed % 3]
    ws = slot()
    we = ws + rng.uniform(1.0, 2.0) * H
    m = (E["dt"] >= ws) & (E["dt"] < we) & (feed_e == vf) & (rng.random(n) < q)
    share = m.sum() / max(1, ((E["dt"] >= ws) & (E["dt"] < we)).sum())
    keep = ~m
    label(
        "volume_drop",
        "volume_drop",
        "data_quality",
        ws,
        we,
        note=f"feed {FEEDS[vf][0]} lost {q:.0%} of its events: {share:.1%} of all traffic",
    )

    # duplicate storm (+ at-least-once base duplicates)
    ws = slot()
    we = ws + rng.uniform(0.5, 1.0) * H
    df_ = int(rng.choice([0, 1, 3]))
    qd = rng.uniform(0.15, 0.4)
    win = (E["dt"] >= ws) & (E["dt"] < we) & (feed_e == df_) & keep
    dup = keep & ((rng.random(n) < 0.0015) | (win & (rng.random(n) < qd)))
    nd_storm = int((dup & win).sum())
    label(
        "duplicate_storm",
        "duplicate_events",
        "data_quality",
        ws,
        we,
        note=f"feed {FEEDS[df_][0]} redelivered {qd:.0%} of its events ({nd_storm})",
    )
    # malformed burst window
    mws = slot()
    mwe = mws + rng.uniform(0.4, 1.0) * H
    mf = int(rng.choice([1, 2, 4]))
    qm = rng.uniform(0.1, 0.4)
    keepi = np.nonzero(keep)[0]
    dupi = np.nonzero(dup)[0]
    idx = np.concatenate([keepi, dupi])
    dts = np.concatenate([E["dt"][keepi], E["dt"][dupi] + rng.uniform(0.5, 600, len(dupi))])
    order = np.argsort(dts, kind="stable")
    idx, dts = idx[order], dts[order]
    feed_i = g.feed[E["pub"][idx]]
    bad = np.zeros(len(idx), np.int8)
    mwin = (dts >= mws) & (dts < mwe) & (feed_i == mf)
    bad[mwin & (rng.random(len(idx)) < qm)] = 1
    bad[rng.random(len(idx)) < 1 / 150000] = 2  # background: truncated line
    bad[(bad == 0) & (rng.random(len(idx)) < 1 / 200000)] = 1
    label(
        "malformed_burst",
        "malformed_events",
        "data_quality",
        mws,
        mwe,
        note=f"feed {FEEDS[mf][0]} wrote {int((bad[mwin] == 1).sum())} malformed lines "
        f"({qm:.0%} of its lines)",
    )

    # daily reversal batch traps
    for d in range(3):
        b0 = T0 + d * D + REVERSAL_HOUR * H
        label(
            "reversal_batch",
            None,
            None,
            b0,
            b0 + H,
            None,
            trap=True,
            note="daily network fraud/violation reversal batch at 02:00 UTC",
        )

    print(f"incidents done, writing {len(idx)} lines {time.time() - t_start:.1f}s", file=sys.stderr)
    os.makedirs(a.out, exist_ok=True)
    write_events(g, E, idx, bad, os.path.join(a.out, "events.jsonl"), rng)
    incidents.sort(key=lambda d: d["start"])
    doc = dict(
        generator="gen2",
        seed=seed,
        start=iso(T0),
        end=iso(T1),
        publishers=g.n_pub,
        orders_per_day=round(opd),
        events=int(len(idx)),
        incidents=incidents,
    )
    with open(os.path.join(a.out, "incidents.json"), "w") as f:
        json.dump(doc, f, indent=1)
    meta = {
        g.pub_names[i]: dict(
            region=REGIONS[int(g.region[i])][0],
            feed=FEEDS[int(g.feed[i])][0],
            type=str(g.ptype[i]),
            orders_per_day=round(float(g.rate[i]), 2),
            p_refund=round(float(g.p_refund[i]), 4),
            p_cancel=round(float(g.p_cancel[i]), 4),
            p_fraud=round(float(g.p_fraud[i] + g.p_viol[i]), 4),
        )
        for i in range(g.n_pub)
    }
    meta[g.pub_names[ni]]["orders_per_day"] = round(nrate, 2)
    with open(os.path.join(a.out, "publishers.json"), "w") as f:
        json.dump(meta, f)
    print(
        f"done {time.time() - t_start:.1f}s: {len(idx)} lines, {g.n_pub} publishers",
        file=sys.stderr,
    )


def fmt_times(t, shift, zstyle, styles, offs):
    out = np.empty(len(t), dtype=object)
    for s in range(5):
        for zs in (False, True):
            m = (styles == s) & (zstyle == zs)
            if not m.any():
                continue
            tt = t[m] + shift[m]
            if zs:
                st = np.datetime_as_string(
                    np.round(tt * 1000).astype(np.int64).astype("datetime64[ms]"), unit="s"
                )
                out[m] = np.char.add(st.astype(str), "Z")
                continue
            if s in (0, 1, 4):
                unit = "ms" if s == 1 else "s"
                st = np.datetime_as_string(
                    np.round(tt * 1000).astype(np.int64).astype("datetime64[ms]"), unit=unit
                )
                out[m] = np.char.add(st.astype(str), "+00:00" if s == 4 else "Z")
            else:
                o = offs[m]
                lt = tt + o * H
                if s == 2:
                    st = np.datetime_as_string(
                        np.round(lt * 1000).astype(np.int64).astype("datetime64[ms]"), unit="s"
                    )
                else:
                    st = np.datetime_as_string(
                        np.round(lt * 1e6).astype(np.int64).astype("datetime64[us]"), unit="us"
                    )
                suf = np.array(
                    [f"{'+' if x >= 0 else '-'}{abs(int(x)):02d}:00" for x in range(-12, 13)]
                )
                out[m] = np.char.add(st.astype(str), suf[o.astype(int) + 12])
    return out


def write_events(g, E, idx, bad, path, rng):
    pub = E["pub"][idx]
    feed = g.feed[pub]
    styles = np.array([f[3] for f in FEEDS])[feed]
    offs = np.array([REGIONS[r][1] for r in range(4)])[g.region[pub]]
    ts = fmt_times(E["t"][idx], E["shift"][idx], E["zstyle"][idx], styles, offs)
    pname = np.array(g.pub_names, dtype=object)[pub]
    oprefix = [f[2] for f in FEEDS]
    has_parent = np.array([f[5] or "all-parents" in ABL for f in FEEDS])[feed]
    cur = [CURRENCY[r] for r in range(4)]
    reg = g.region[pub]
    bad_kinds = rng.integers(0, 6, len(idx))
    with open(path, "w") as f:
        buf = []
        cols = [
            E[k][idx].tolist() for k in ("st", "rs", "sid", "eid", "cart", "item", "amt", "com")
        ]
        for j, (tstr, pn, fd, hp, rr, b, bk, st, rs, sid, eid, cart, item, amt, com) in enumerate(
            zip(
                ts.tolist(),
                pname.tolist(),
                feed.tolist(),
                has_parent.tolist(),
                reg.tolist(),
                bad.tolist(),
                bad_kinds.tolist(),
                *cols,
            )
        ):
            oid = f"{oprefix[fd]}{sid}"
            parts = [
                f'"schema_version":1,"event_id":"{FEEDS[fd][1]}e{eid:x}"',
                f'"order_id":"{oid}"',
            ]
            if hp:
                parts.append(f'"parent_order_id":"{oprefix[fd]}P{cart}"')
            parts.append(f'"publisher_id":"{pn}"')
            parts.append(f'"item_id":"{item}"')
            parts.append(f'"status":"{STATUS[st]}"')
            if st == ST_INV:
                parts.append(f'"reason":"{REASONS[rs]}"')
            parts.append(f'"amount":{amt:.2f},"commission":{com:.2f}')
            parts.append(f'"currency":"{cur[rr]}","occurred_at":"{tstr}"')
            if b == 1:
                if bk == 0:
                    parts = [p for p in parts if not p.startswith('"publisher_id"')]
                elif bk == 1:
                    parts[-2] = (
                        parts[-2]
                        .replace('"amount":', '"amount":"')
                        .replace(',"commission"', '","commission"')
                    )
                elif bk == 2:
                    parts[-1] = f'"currency":"{cur[rr]}","occurred_at":"{tstr[:10]} {tstr[11:19]}"'
                elif bk == 3:
                    parts = [
                        p.replace(f'"status":"{STATUS[st]}"', f'"status":"{STATUS[st].upper()}"')
                        for p in parts
                    ]
                elif bk == 4:
                    parts = [p.replace('"schema_version":1', '"schema_version":"1"') for p in parts]
            line = "{" + ",".join(parts) + "}"
            if b == 2 or (b == 1 and bk == 5):
                line = line[: int(len(line) * 0.6)]
            buf.append(line)
            if len(buf) >= 200000:
                f.write("\n".join(buf) + "\n")
                buf = []
        if buf:
            f.write("\n".join(buf) + "\n")


if __name__ == "__main__":
    main()
