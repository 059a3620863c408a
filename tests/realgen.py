#!/usr/bin/env python3
"""Independent generator of affiliate-order lifecycle events (ordermon event contract v1).

Written from domain knowledge by a reviewer who was not shown ordermon's simulator
(``monitor/simulate.py``) or its other stream builders, so that the detectors are also
judged on traffic they were not tuned on: China-time daily cycles, heavy-tailed
publishers, refunds re-timed to merchant hours, mixed timestamp styles, and incidents
and traps of its own. The realistic-stream figures in the README come from it; CI runs
an incident-free stream of it (``tests/unit/test_independent_stream.py``). Usage:

    python tests/realgen.py --seed 1 --out /tmp/realgen/s1 [--publishers 3500] [--hours 88]
    ordermon replay /tmp/realgen/s1/events.jsonl --out /tmp/realgen/s1/alerts.jsonl
    ordermon evaluate --incidents /tmp/realgen/s1/incidents.json \
        --alerts /tmp/realgen/s1/alerts.jsonl

Writes OUT/events.jsonl (sorted by delivery time, occurred_at jittered/out of order)
and OUT/incidents.json (incidents + traps, the format monitor/evaluate.py reads),
plus OUT/truth.json (extra ground truth: affected publishers, per-incident counts).

Model (all times event time; China local = UTC+8):
* publishers: rank power law (exp 1.2) x lognormal noise, top ~40k sub-orders/day,
  tail < 1/day; each on one producer feed (tb / jd / pdd / impact) with its own timestamp
  style (+08:00, Z with ms, +08:00, Z), cart sizes (pdd/impact single item) and id style;
  category (coupon, cashback, content, comparison, social) sets refund/cancel rates.
* orders: Poisson per publisher-hour with gamma(6) hour-level overdispersion and a
  lognormal day factor, platform diurnal profile (quiet 02-07, peaks 10-12 and 20-23 local),
  weekend = 0.85x with a 45 min later day; 30 days of pre-stream orders so confirmations,
  settlements and refunds of older orders are in steady state from the first minute.
* lifecycle: created -> paid (~96%, seconds-minutes) -> confirmed (~5 d; skipped by pdd)
  -> settled (~6 d later); unpaid carts cancelled ~20 min after creation; cancel after
  payment (~1.5 h); refunds 35% within hours (refund-only), 65% after days, merchant
  refunds pushed into 08-12 local 60% of the time when they would fall at night; fraud
  40% fast (~25 min) / 60% days later; violation, data_anomaly, other with day lags;
  cart-level decisions (cancel, 40% of refunds, fraud, violation) hit all items at once.
* delivery: jitter exp(2 s) + 5% exp(20 s) + 0.5% U(30,75 s); 0.02% late U(150,600 s);
  at-least-once duplicates 0.1-0.4% per feed; 1 in 50k lines truncated.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import zlib

import numpy as np

T0 = 1793894400.0  # 2026-11-05T16:00:00Z = Fri 2026-11-06 00:00 +08:00
LOCAL = 8 * 3600
H = 3600.0
D = 86400.0
HIST_DAYS = 30

PRODUCERS = ["tb", "jd", "pdd", "impact"]
PROD_SHARE = [0.45, 0.25, 0.20, 0.10]
CATS = ["coupon", "cashback", "content", "comparison", "social"]
CAT_SHARE = [0.25, 0.15, 0.30, 0.10, 0.20]
CAT_REFUND = np.array([0.085, 0.06, 0.05, 0.04, 0.07])
CAT_UNPAID = np.array([0.05, 0.03, 0.03, 0.025, 0.035])
CAT_COMM = np.array([0.03, 0.05, 0.12, 0.04, 0.08])
REASONS = ["refund", "cancel", "fraud", "violation", "data_anomaly", "other"]
R_REFUND, R_CANCEL, R_FRAUD, R_VIOL, R_DATA, R_OTHER = range(6)
ST_CREATED, ST_PAID, ST_CONF, ST_SET, ST_INV = range(5)
STATUS = ["created", "paid", "confirmed", "settled", "invalidated"]

# weekday hourly weights, local time (value at hh:30)
W = np.array(
    [
        0.75,
        0.45,
        0.22,
        0.12,
        0.08,
        0.08,
        0.12,
        0.25,
        0.5,
        0.8,
        1.15,
        1.25,
        1.05,
        0.9,
        0.95,
        0.95,
        0.9,
        0.85,
        0.85,
        1.0,
        1.3,
        1.5,
        1.45,
        1.15,
    ]
)
W = W / W.mean()


def diurnal(local_hour_float: np.ndarray) -> np.ndarray:
    x = (local_hour_float - 0.5) % 24
    i = np.floor(x).astype(int)
    f = x - i
    return W[i] * (1 - f) + W[(i + 1) % 24] * f


def iso_z(t: float) -> str:
    return np.datetime_as_string(np.datetime64(int(round(t)), "s")) + "Z"


class Gen:
    def __init__(self, seed: int, n_pubs: int, hours: int, off=(), refund_tod="profile", at=None):
        self.seed = seed
        self.at = at or {}
        self.wave_scale = float(os.environ.get("REALGEN_WAVE_SCALE", "1"))  # experiments
        self.batch_hour = float(os.environ.get("REALGEN_BATCH_HOUR", "10"))  # experiments
        self.off = set(off)
        self.refund_tod = refund_tod
        self.use("init")
        self.n_pubs = n_pubs
        self.t_end = T0 + hours * H
        self.hours = hours
        self.incidents: list[dict] = []
        self.truth: dict = {"seed": seed, "publishers": n_pubs, "hours": hours, "notes": {}}
        self.order_parts: list[dict] = []

    def use(self, name):
        """Independent random stream per block: disabling one block changes no other."""
        self.rng = np.random.default_rng([self.seed, zlib.crc32(name.encode())])

    def uhash(self, a, b, salt):
        """Uniform [0,1) from (a, b, salt) via splitmix64: per-event randomness that does
        not depend on how many other events exist."""
        x = (
            a.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
            + b.astype(np.uint64) * np.uint64(0xBF58476D1CE4E5B9)
            + np.uint64((self.seed * 1000003 + zlib.crc32(salt.encode())) % 2**63)
        )
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
        return (x >> np.uint64(11)).astype(np.float64) / float(2**53)

    # ------------------------------------------------------------ publishers
    def publishers(self):
        rng, n = self.rng, self.n_pubs
        rank = np.arange(1, n + 1)
        size = 40000.0 * rank**-1.2 * np.exp(rng.normal(0, 0.5, n) * (rank > 3))
        self.size = size  # sub-orders per weekday-average day
        self.prod = rng.choice(4, n, p=PROD_SHARE)
        self.cat = rng.choice(5, n, p=CAT_SHARE)
        self.prod[self.cat == 4] = np.where(
            rng.random((self.cat == 4).sum()) < 0.6, 2, self.prod[self.cat == 4]
        )  # social -> mostly pdd
        self.imult = np.exp(rng.normal(0, 0.3, n))  # publisher's own invalidation propensity
        ids = []
        for i in range(n):
            p = self.prod[i]
            if p == 0:
                ids.append(f"mm_{rng.integers(10**7, 10**8)}")
            elif p == 1:
                ids.append(f"jd_{rng.integers(10**9, 2 * 10**9)}")
            elif p == 2:
                ids.append(f"pdd_p{rng.integers(10**6, 10**7)}")
            else:
                ids.append(f"irs_{rng.integers(10**5, 10**6)}")
        self.pub_id = ids
        self.start_at = np.full(n, -np.inf)  # onboarding time (new publisher trap)

    # ------------------------------------------------------------ time grid
    def grid(self):
        h0 = -HIST_DAYS * 24
        self.h0 = h0
        nmin = (self.hours - h0) * 60
        t = T0 + h0 * H + np.arange(nmin) * 60.0 + 30.0
        lt = (t + LOCAL) / H  # local hours since epoch
        lh = lt % 24
        dow = ((np.floor(lt / 24).astype(int)) + 3) % 7  # 0=Mon (1970-01-01 Thu)
        weekend = dow >= 5
        g = np.where(weekend, 0.85 * diurnal(lh - 0.75), diurnal(lh))
        # platform-wide midnight sale at Mon 00:00 local = T0+72h (if in range)
        ts = T0 + 72 * H
        rel = t - ts
        if "sale" not in self.off:
            g = g * np.where((rel >= -45 * 60) & (rel < 0), 0.8, 1.0)  # everyone waits for midnight
            r = np.maximum(rel, 0)
            bump = np.where(rel >= 0, 4.0 * np.exp(-r / (40 * 60)) + 0.5 * np.exp(-r / (4 * H)), 0)
            g = g * (1 + bump)
        self.sale = (ts - 45 * 60, ts + 4 * H)
        self.gmin = g
        self.gcum = np.concatenate([[0.0], np.cumsum(g)])
        self.tmin0 = T0 + h0 * H

    def sample_times(self, hour_idx: np.ndarray) -> np.ndarray:
        """Times inside grid hours hour_idx (0-based from h0), following the minute profile."""
        rng = self.rng
        lo = self.gcum[hour_idx * 60]
        hi = self.gcum[hour_idx * 60 + 60]
        u = lo + rng.random(len(hour_idx)) * (hi - lo)
        m = np.searchsorted(self.gcum, u, side="right") - 1
        frac = (u - self.gcum[m]) / np.maximum(self.gmin[np.minimum(m, len(self.gmin) - 1)], 1e-9)
        return self.tmin0 + (m + np.clip(frac, 0, 1)) * 60.0

    # ------------------------------------------------------------ orders
    def base_parents(self, flash: tuple[int, float, float, float] | None, newpub):
        rng = self.rng
        nh = self.hours - self.h0
        hsum = self.gcum[60::60][:nh] - self.gcum[0:-1:60][:nh]  # minute-weight per hour
        meank = np.where(self.prod <= 1, 1.45, 1.0)
        base = (self.size / 1440.0 / meank)[:, None] * hsum[None, :]
        # hour-level overdispersion: cv 0.41 for small publishers, smoother for big ones
        # (their traffic aggregates many independent channels): shape 6 x (1 + size/3000)
        shape = (6.0 * (1 + self.size / 3000.0))[:, None]
        od = rng.gamma(shape, 1.0 / shape, base.shape)
        days = np.arange(nh) // 24
        dayf = np.exp(rng.normal(0, 0.15, (self.n_pubs, days.max() + 1)))[:, days]
        lam = base * od * dayf
        hstart = T0 + (self.h0 + np.arange(nh)) * H
        self.lam, self.hstart = lam, hstart
        if newpub is not None:
            p, a = newpub
            self.start_at[p] = a
        cnt = rng.poisson(lam)
        pub, hour = np.nonzero(cnt)
        reps = cnt[pub, hour]
        pub = np.repeat(pub, reps)
        hour = np.repeat(hour, reps)
        tc = self.sample_times(hour)
        return pub.astype(np.int32), tc

    def make_orders(
        self,
        pub,
        tc,
        *,
        forced_reason=None,
        forced_ti=None,
        fake=False,
        single=False,
        unpaid_ok=True,
    ):
        """Parents at (pub, tc) -> sub-order arrays with their whole lifecycle."""
        rng = self.rng
        n = len(pub)
        prod = self.prod[pub]
        cat = self.cat[pub]
        if single:
            k = np.ones(n, dtype=np.int64)
        else:
            k = rng.choice([1, 2, 3, 4], n, p=[0.72, 0.17, 0.07, 0.04])
            k[prod >= 2] = 1
        im = self.imult[pub]
        R = CAT_REFUND[cat] * im
        # parent-level
        pay_delay = np.exp(rng.normal(math.log(40), 1.2, n))
        unpaid = rng.random(n) < (CAT_UNPAID[cat] * np.where(prod == 2, 0.7, 1.0))
        if not unpaid_ok:
            unpaid[:] = False
        tp = np.where(unpaid, np.nan, tc + pay_delay)
        u = rng.random(n)
        c_cancel = 0.01
        c_refund = c_cancel + 0.4 * R
        c_fraud = c_refund + 0.002 * im
        c_viol = c_fraud + 0.0012 * im
        preason = np.full(n, -1, dtype=np.int8)
        preason[u < c_viol] = R_VIOL
        preason[u < c_fraud] = R_FRAUD
        preason[u < c_refund] = R_REFUND
        preason[u < c_cancel] = R_CANCEL
        preason[unpaid] = R_CANCEL
        pti = np.full(n, np.inf)
        m = unpaid
        pti[m] = tc[m] + np.exp(rng.normal(math.log(20 * 60), 1.0, m.sum()))
        m = ~unpaid & (preason == R_CANCEL)
        pti[m] = tp[m] + np.exp(rng.normal(math.log(90 * 60), 1.0, m.sum()))
        m = preason == R_REFUND
        pti[m] = tp[m] + self.refund_lag(m.sum())
        m = preason == R_FRAUD
        pti[m] = tp[m] + self.fraud_lag(m.sum())
        m = preason == R_VIOL
        pti[m] = tp[m] + np.exp(rng.normal(math.log(3 * D), 0.6, m.sum()))
        if forced_reason is not None:
            preason = np.asarray(forced_reason, dtype=np.int8).copy()
            pti = np.asarray(forced_ti, dtype=float).copy()
        # expand to items
        par = np.repeat(np.arange(n), k)
        item = np.concatenate([np.arange(x) for x in k]) if n else np.zeros(0, int)
        s_pub = pub[par]
        s_tc = tc[par] + item * 0.0  # same second for all items of a cart
        s_tp = tp[par]
        s_reason = preason[par].copy()
        s_ti = pti[par].copy()
        ns = len(par)
        if forced_reason is None:
            free = s_reason < 0
            paid_s = ~np.isnan(s_tp)
            u2 = rng.random(ns)
            Rs = R[par]
            ims = im[par]
            c1 = 0.6 * Rs
            c2 = c1 + 0.004 * ims
            c3 = c2 + 0.0003
            r_item = np.full(ns, -1, dtype=np.int8)
            r_item[u2 < c3] = R_DATA
            r_item[u2 < c2] = R_OTHER
            r_item[u2 < c1] = R_REFUND
            sel = free & paid_s & (r_item >= 0)
            s_reason[sel] = r_item[sel]
            lag = np.zeros(ns)
            mm = sel & (r_item == R_REFUND)
            lag[mm] = self.refund_lag(mm.sum())
            mm = sel & (r_item == R_OTHER)
            lag[mm] = np.exp(rng.normal(math.log(2 * D), 0.8, mm.sum()))
            mm = sel & (r_item == R_DATA)
            lag[mm] = rng.random(mm.sum()) * 5 * D
            s_ti[sel] = s_tp[sel] + lag[sel]
        # time of day of human/merchant-processed invalidations (refunds, slow fraud,
        # violation audits, other): see refund_time_of_day
        if forced_reason is None:
            mm = (
                np.isfinite(s_ti)
                & (s_reason != R_CANCEL)
                & (s_reason != R_DATA)
                & ((s_reason == R_REFUND) | (s_ti - s_tp > 6 * H))
            )
            if mm.any():
                s_ti[mm] = self.refund_time_of_day(s_ti[mm], s_tp[mm])
        s_tconf = s_tp + np.exp(rng.normal(math.log(5 * D), 0.45, ns))
        s_tset = s_tconf + np.exp(rng.normal(math.log(6 * D), 0.5, ns))
        amount = np.round(np.exp(rng.normal(math.log(45), 0.9, ns)), 2)
        if fake:
            amount = np.round(rng.uniform(3, 25, ns), 2)
        comm = np.round(amount * CAT_COMM[self.cat[s_pub]], 2)
        part = dict(
            pub=s_pub,
            tc=s_tc,
            tp=s_tp,
            reason=s_reason,
            ti=s_ti,
            tconf=s_tconf,
            tset=s_tset,
            amount=amount,
            comm=comm,
            k=k[par],
            item=item,
            parent_local=par,
        )
        self.order_parts.append(part)
        return part

    def refund_time_of_day(self, t, tp):
        rng = self.rng
        n = len(t)
        if self.refund_tod == "none":  # raw lag times (nearly flat over the day)
            return t
        if self.refund_tod == "step":  # v1: 60% of night ones moved to U(08:00, 12:00) local
            lh = ((t + LOCAL) / H) % 24
            night = (lh < 8) & (rng.random(n) < 0.6)
            day0 = np.floor((t + LOCAL) / D) * D - LOCAL
            return np.where(night, day0 + 8 * H + rng.random(n) * 4 * H, t)
        # profile: keep the local date, re-draw the time of day from
        # 50% buyer activity (order curve), 30% merchant working hours 09-18 (1 h ramps), 20% flat
        # (system timeouts); 20% of events keep their raw time (automatic refunds)
        hrs = np.arange(0, 24, 0.25)
        work = np.clip(np.minimum(hrs - 8, 19 - hrs), 0, 1)
        prof = (
            0.5 * diurnal(hrs + 0.125) / diurnal(hrs + 0.125).mean()
            + 0.3 * work / work.mean()
            + 0.2
        )
        cdf = np.cumsum(prof) / prof.sum()
        q = np.searchsorted(cdf, rng.random(n))
        tod = (hrs[q] + rng.random(n) * 0.25) * H
        day0 = np.floor((t + LOCAL) / D) * D - LOCAL
        new = day0 + tod
        new = np.where(new < tp + 600, new + D, new)
        return np.where(rng.random(n) < 0.8, new, t)

    def refund_lag(self, n):
        rng = self.rng
        early = rng.random(n) < 0.35
        return np.where(
            early,
            np.exp(rng.normal(math.log(5 * H), 0.9, n)),
            np.exp(rng.normal(math.log(4.5 * D), 0.6, n)),
        )

    def fraud_lag(self, n):
        rng = self.rng
        fast = rng.random(n) < 0.4
        return np.where(
            fast,
            np.exp(rng.normal(math.log(25 * 60), 0.6, n)),
            np.exp(rng.normal(math.log(2 * D), 0.8, n)),
        )

    # ------------------------------------------------------------ helpers
    def pick_pub(self, target_size, used, prod=None, lo=0.7, hi=1.4):
        cand = [
            i
            for i in range(self.n_pubs)
            if lo * target_size <= self.size[i] <= hi * target_size
            and i not in used
            and (prod is None or self.prod[i] == prod)
            and self.start_at[i] == -np.inf
        ]
        if not cand:
            cand = [
                int(
                    np.argmin(
                        np.abs(self.size - target_size)
                        + 1e9 * np.isin(np.arange(self.n_pubs), list(used))
                    )
                )
            ]
        p = int(self.rng.choice(cand))
        used.add(p)
        return p

    def add_inc(self, id_, kind, alert_kind, category, start, end, pub=None, trap=False, **extra):
        d = {
            "id": id_,
            "kind": kind,
            "alert_kind": alert_kind,
            "category": category,
            "start": iso_z(start),
            "end": iso_z(end),
            "trap": trap,
        }
        if pub is not None:
            d["publisher_id"] = self.pub_id[pub]
        d.update(extra)
        self.incidents.append(d)

    # ------------------------------------------------------------ scenario
    def schedule(self):
        """Random non-overlapping slots for exclusive (platform/data-quality) incidents."""
        rng = self.rng
        excl_blocked = [(self.sale[0] - 2 * H, self.sale[1] + 1 * H), (T0 + 29 * H, T0 + 37 * H)]
        items = [
            ("glitch", 30),
            ("glitch_subtle", 25),
            ("malformed", 15),
            ("dupes", 15),
            ("lifecycle", 20),
            ("skew", 40),
            ("drop", 60),
            ("drop_subtle", 90),
            ("shift", 120),
        ]
        rng.shuffle(items)
        slots = {}
        taken = list(excl_blocked)
        for name, dur in items:
            for _ in range(10000):
                s = T0 + rng.uniform(8 * H, self.hours * H - 4 * H)
                s = math.floor(s / 60) * 60
                e = s + dur * 60
                if all(e + 90 * 60 < a or s > b + 90 * 60 for a, b in taken):
                    taken.append((s, e))
                    slots[name] = (s, e)
                    break
            else:
                raise RuntimeError("no slot for " + name)
        for name, hrs in [(k, v) for k, v in self.at.items() if k in dict(items)]:  # --at overrides
            dur = dict(items)[name]
            slots[name] = (T0 + hrs * H, T0 + hrs * H + dur * 60)
        self.slots = slots
        self.glitch_windows = [slots["glitch"], slots["glitch_subtle"]]

    def pub_slot(self, dur_s, tail_s=0.0, tag=None):
        rng = self.rng
        if tag in self.at:  # --at TAG=HOURS (experiments)
            rng.uniform()
            return T0 + self.at[tag] * H
        for _ in range(10000):
            s = T0 + rng.uniform(8 * H, self.hours * H - dur_s - tail_s - 1 * H)
            s = math.floor(s / 60) * 60
            e = s + dur_s + tail_s
            bad = (
                [(self.sale[0] - H, self.sale[1])]
                + self.glitch_windows
                + [self.slots["drop"], self.slots["drop_subtle"]]
            )
            if all(e + 1800 < a or s > b + 1800 for a, b in bad):
                return s
        raise RuntimeError("no pub slot")

    def build(self):
        rng = self.rng
        self.publishers()
        self.grid()
        self.schedule()
        used: set[int] = set()
        # traps chosen before the base orders (they shape the base intensity)
        batch_pub = self.pick_pub(self.size[4], used, lo=0.8, hi=1.25)
        flash_pub = self.pick_pub(2500, used)
        flash_day = rng.integers(0, 3)  # Fri/Sat/Sun evening
        fa = T0 + flash_day * D + 20 * H
        flash_mult = float(rng.uniform(5, 8))
        new_pub = self.pick_pub(self.size[8], used, lo=0.5, hi=2.0)
        new_at = T0 + rng.uniform(38, 46) * H
        new_at = math.floor(new_at / H) * H
        self.size[new_pub] = 0.0  # its base traffic is generated separately below
        self.use("base")
        pub, tc = self.base_parents(None, (new_pub, new_at))
        self.make_orders(pub, tc)
        self.size[new_pub] = 12000.0
        # extra parents of the flash sale: (mult - 1) x the publisher's own hourly intensity
        self.use("flash")
        sel = (self.hstart >= fa) & (self.hstart < fa + 2 * H)
        hours = np.nonzero(sel)[0]
        if "flash" not in self.off:
            cnt = self.rng.poisson(self.lam[flash_pub, hours] * (flash_mult - 1))
            hh = np.repeat(hours, cnt)
            self.make_orders(np.full(len(hh), flash_pub, np.int32), self.sample_times(hh))
        # livestream: the 2nd-largest publisher (a super-KOL) sells x2.2 for 2 h, Fri 20-22 local
        self.use("livestream")
        live_pub = int(np.argsort(-self.size)[1])
        la = T0 + 20 * H
        hours = np.nonzero((self.hstart >= la) & (self.hstart < la + 2 * H))[0]
        if "livestream" not in self.off:
            cnt = self.rng.poisson(self.lam[live_pub, hours] * 1.2)
            hh = np.repeat(hours, cnt)
            self.make_orders(np.full(len(hh), live_pub, np.int32), self.sample_times(hh))
            self.add_inc(
                "trap-livestream",
                "promotion",
                None,
                "publisher",
                la,
                la + 2 * H,
                pub=live_pub,
                trap=True,
                note="2nd-largest publisher x2.2 orders for 2 h (invalidations proportional); "
                "watch for volume_drop at the same hour on later days",
            )
        # new large publisher from its onboarding hour on
        self.use("newpub")
        if "newpub" not in self.off:
            meank = 1.45 if self.prod[new_pub] <= 1 else 1.0
            nh = self.hours - self.h0
            hsum = self.gcum[60::60][:nh] - self.gcum[0:-1:60][:nh]
            lam = 12000.0 / 1440.0 / meank * hsum * self.rng.gamma(30.0, 1 / 30.0, nh)
            lam[self.hstart < new_at] = 0
            cnt = self.rng.poisson(lam)
            hh = np.repeat(np.arange(nh), cnt)
            self.make_orders(np.full(len(hh), new_pub, np.int32), self.sample_times(hh))
        self.batch_pub = batch_pub
        if "flash" not in self.off:
            self.add_inc(
                "trap-flash-sale",
                "promotion",
                None,
                "publisher",
                fa,
                fa + 2 * H,
                pub=flash_pub,
                trap=True,
                note=f"orders x{flash_mult:.1f}, invalidations proportional",
            )
        if "sale" not in self.off:
            self.add_inc(
                "trap-midnight-sale",
                "platform_sale",
                None,
                "platform",
                self.sale[0],
                self.sale[1],
                trap=True,
                note="0.8x dip 23:15-24:00 local, then 5x at 00:00 decaying",
            )
        if "newpub" not in self.off:
            self.add_inc(
                "trap-new-large-publisher",
                "new_publisher",
                None,
                "publisher",
                new_at,
                new_at + 6 * H,
                pub=new_pub,
                trap=True,
                note="12k sub-orders/day from nothing",
            )
        for d in range(int(self.hours // 24) + 1):
            a = T0 + d * D + self.batch_hour * H
            if T0 + 8 * H < a < self.t_end and "batch" not in self.off:
                self.add_inc(
                    f"trap-refund-batch-day{d}",
                    "refund_batch",
                    None,
                    "publisher",
                    a,
                    a + 15 * 60,
                    pub=batch_pub,
                    trap=True,
                    note=f"publisher's refunds stamped in a daily {self.batch_hour:g}:00 local batch",  # noqa: E501
                )
        self.add_inc(
            "trap-weekend-morning",
            "weekend",
            None,
            "platform",
            T0 + 30 * H,
            T0 + 36 * H,
            trap=True,
            note="Sat 06-12 local: weekend 0.85x, 45 min later day",
        )
        # tiny publisher with 3 refunds in 8 minutes (orders from before the stream)
        self.use("tiny")
        rng = self.rng
        tiny = int(rng.choice([i for i in np.argsort(self.size)[:20].tolist() if i not in used]))
        used.add(tiny)
        ts = self.pub_slot(600)
        tti = ts + np.sort(rng.uniform(0, 480, 3))
        if "tiny" not in self.off:
            self.make_orders(
                np.full(3, tiny, np.int32),
                T0 - rng.uniform(3, 6, 3) * D,
                forced_reason=[R_REFUND] * 3,
                forced_ti=tti,
                single=True,
                unpaid_ok=False,
            )
            self.add_inc(
                "trap-tiny-publisher",
                "tiny_refunds",
                None,
                "publisher",
                ts,
                ts + 600,
                pub=tiny,
                trap=True,
                note="3 refunds in 8 min, publisher has <1 order/day",
            )

        # ---------------- publisher incidents (each its own random stream; --off NAME drops it)
        inv_day = self.size * (CAT_REFUND[self.cat] * self.imult + CAT_UNPAID[self.cat] + 0.017)
        self.pub_specs = []

        def forced(tag, pub, tc, reason, ti, fake=False):
            if tag in self.off:
                return False
            self.make_orders(
                np.full(len(tc), pub, np.int32),
                tc,
                forced_reason=reason,
                forced_ti=ti,
                single=True,
                unpaid_ok=False,
                fake=fake,
            )
            return True

        # fraud burst, subtle: ~1 invalidation/hour normally, 15-30 frauds in 45 min
        self.use("fraud-subtle")
        rng = self.rng
        cand = [i for i in range(self.n_pubs) if 18 <= inv_day[i] <= 32 and i not in used]
        p = int(rng.choice(cand))
        used.add(p)
        n = int(rng.integers(15, 31))
        s = self.pub_slot(45 * 60, tag="fraud-subtle")
        ti = s + np.sort(rng.uniform(0, 45 * 60, n))
        recent = rng.random(n) < 0.6
        tc = np.where(recent, ti - rng.uniform(8 * 60, 55 * 60, n), ti - rng.uniform(1, 3, n) * D)
        if forced("fraud-subtle", p, tc, [R_FRAUD] * n, ti):
            self.add_inc(
                "fraud-subtle",
                "fraud_burst",
                "publisher_spike",
                "publisher",
                s,
                ti.max(),
                pub=p,
                n_fraud=n,
                normal_invalidations_per_day=round(float(inv_day[p]), 1),
            )
        # fraud burst, big: mid-large publisher, fake orders caught within minutes
        self.use("fraud-big")
        rng = self.rng
        p = self.pick_pub(5000, used)
        n = int(rng.integers(60, 140))
        s = self.pub_slot(30 * 60, tag="fraud-big")
        tc = s + np.sort(rng.uniform(-10 * 60, 25 * 60, n))
        ti = tc + 40 + rng.uniform(2 * 60, 15 * 60, n)
        if forced("fraud-big", p, tc, [R_FRAUD] * n, ti, fake=True):
            self.add_inc(
                "fraud-big",
                "fraud_burst",
                "publisher_spike",
                "publisher",
                s,
                ti.max(),
                pub=p,
                n_fraud=n,
                normal_invalidations_per_day=round(float(inv_day[p]), 1),
            )
        # brushing: fake orders surge, most invalidated fast (violation/fraud) 10-90 min later
        for tag, size, nrange, dur, share in (
            ("brushing", 150, (200, 320), 60, 0.85),
            ("brushing-subtle", 600, (60, 100), 45, 0.7),
        ):
            self.use(tag)
            rng = self.rng
            p = self.pick_pub(size, used)
            n = int(rng.integers(*nrange))
            s = self.pub_slot(dur * 60, 95 * 60, tag=tag)
            tc = s + np.sort(rng.uniform(0, dur * 60, n))
            inv = rng.random(n) < share
            reason = np.where(rng.random(n) < 0.65, R_VIOL, R_FRAUD)
            reason = np.where(inv, reason, -1)
            ti = np.where(inv, tc + 40 + rng.uniform(10 * 60, 90 * 60, n), np.inf)
            if forced(tag, p, tc, reason, ti, fake=True):
                self.add_inc(
                    tag,
                    "brushing",
                    "publisher_spike",
                    "publisher",
                    s,
                    float(ti[inv].max()),
                    pub=p,
                    n_fake=n,
                    n_invalidated=int(inv.sum()),
                    normal_orders_per_day=round(float(self.size[p]), 1),
                )
        # refund waves: extra refunds of orders paid 1-4 days earlier, trapezoid in time
        for tag, size, extra_x, dur_h in (
            ("refund-wave", 7000, 2.0, 5),
            ("refund-wave-subtle", 3000, 1.0, 8),
        ):
            self.use(tag)
            rng = self.rng
            p = self.pick_pub(size, used, prod=int(rng.integers(0, 2)))
            rate_h = self.size[p] * CAT_REFUND[self.cat[p]] * self.imult[p] / 24
            n = int(rng.poisson(extra_x * self.wave_scale * rate_h * dur_h))
            s = self.pub_slot(dur_h * H, tag=tag)
            ramp = 45 * 60
            ti = s + rng.uniform(0, 1, n) * (dur_h * H)
            x = ti - s
            keep = rng.random(n) < np.minimum(1, np.minimum(x / ramp, (dur_h * H - x) / ramp))
            ti = np.sort(ti[keep])
            n = len(ti)
            tc = ti - rng.uniform(1, 4, n) * D
            if forced(tag, p, tc, [R_REFUND] * n, ti):
                self.add_inc(
                    tag,
                    "refund_wave",
                    "publisher_spike",
                    "publisher",
                    s,
                    s + dur_h * H,
                    pub=p,
                    n_extra_refunds=n,
                    normal_refunds_per_hour=round(float(rate_h), 1),
                )

        # ---------------- platform glitches: data_anomaly across many publishers
        base = self.order_parts[0]
        for tag, nrange, factor in (
            ("glitch", (250, 400), 1.0),
            ("glitch_subtle", (120, 180), 0.5),
        ):
            self.use(tag)
            rng = self.rng
            npubs = int(rng.integers(*nrange))
            a, b = self.slots[tag]
            normal = int(((base["ti"] >= a) & (base["ti"] < b)).sum())
            n = int(factor * normal)
            w = self.size**0.7
            w[list(used)] = 0
            pubs = rng.choice(self.n_pubs, npubs, replace=False, p=w / w.sum())
            ws = self.size[pubs] / self.size[pubs].sum()
            # every affected publisher loses at least one order, the rest by volume
            pub = np.concatenate([pubs, rng.choice(pubs, max(n - npubs, 0), p=ws)]).astype(np.int32)
            n = len(pub)
            ti = a + rng.uniform(0, b - a, n)
            tc = ti - rng.uniform(0.2, 48, n) * H
            if tag in self.off:
                continue
            self.make_orders(
                pub, tc, forced_reason=[R_DATA] * n, forced_ti=ti, single=True, unpaid_ok=False
            )
            share = np.bincount(pub, minlength=self.n_pubs)
            top = np.argsort(-share)[:3]
            self.add_inc(
                f"platform-{tag}",
                "platform_glitch",
                "platform_spike",
                "platform",
                a,
                b,
                n_extra=n,
                normal_invalidations=normal,
                n_publishers=int(len(set(pub.tolist()))),
                top_publishers=[[self.pub_id[i], int(share[i])] for i in top],
            )
            self.truth["notes"][tag] = sorted(self.pub_id[i] for i in set(pub.tolist()))

    # ------------------------------------------------------------ events
    def events(self):
        self.use("events")
        rng = self.rng
        off = self.off
        o = {k: np.concatenate([p[k] for p in self.order_parts]) for k in self.order_parts[0]}
        # stable global order key per (part, index) so toggling a part keeps other keys
        keys, pid = [], []
        for j, p in enumerate(self.order_parts):
            m = len(p["pub"])
            keys.append(np.arange(m, dtype=np.int64) + j * 10**8)
            pid.append(p["parent_local"].astype(np.int64) + j * 10**8)
        o["key"] = np.concatenate(keys)
        o["parent"] = np.concatenate(pid)
        # batch-refund trap: this publisher's refunds stamped at the next 10:00-10:12 local
        if "batch" not in off:
            m = (o["pub"] == self.batch_pub) & (o["reason"] == R_REFUND) & np.isfinite(o["ti"])
            loc = o["ti"][m] + LOCAL
            bh = self.batch_hour * H
            day = np.floor((loc - bh) / D) + 1
            u = self.uhash(o["key"][m], np.zeros(m.sum(), np.int64), "batch")
            o["ti"][m] = day * D + bh - LOCAL + u * 12 * 60
            self.truth["notes"]["batch_pub"] = self.pub_id[self.batch_pub]
        ti = o["ti"]
        tp = o["tp"]
        prod = self.prod[o["pub"]]
        lo, hi = T0, self.t_end
        ev_o, ev_s, ev_t = [], [], []

        def add(mask, st, t):
            idx = np.nonzero(mask)[0]
            ev_o.append(idx)
            ev_s.append(np.full(len(idx), st, np.int8))
            ev_t.append(t[idx])

        tc = o["tc"]
        inwin = lambda t: (t >= lo) & (t < hi)  # noqa: E731
        add(inwin(tc) & (tc < ti), ST_CREATED, tc)
        paid = ~np.isnan(tp)
        tpv = np.where(paid, tp, np.inf)
        add(paid & inwin(tpv) & (tpv < ti), ST_PAID, tpv)
        add(paid & (prod != 2) & inwin(o["tconf"]) & (o["tconf"] < ti), ST_CONF, o["tconf"])
        add(paid & inwin(o["tset"]) & (o["tset"] < ti), ST_SET, o["tset"])
        add(np.isfinite(ti) & inwin(ti), ST_INV, ti)
        eo = np.concatenate(ev_o)
        es = np.concatenate(ev_s)
        et = np.concatenate(ev_t)
        ek = o["key"][eo]
        U = lambda salt: self.uhash(ek, es.astype(np.int64), salt)  # noqa: E731
        # delivery jitter: exp(2 s) + 5% exp(20 s) + 0.5% U(30, 75 s); 0.02% late 150-600 s
        j = -2.0 * np.log1p(-U("j1"))
        j += np.where(U("j2") < 0.05, -20.0 * np.log1p(-U("j3")), 0)
        j += np.where(U("j4") < 0.005, 30 + 45 * U("j5"), 0)
        j += np.where(U("j6") < 0.0002, 150 + 450 * U("j7"), 0)
        dt = et + j
        eprod = self.prod[o["pub"][eo]]
        # clock skew: one of three pdd hosts writes local wall clock with Z (8 h ahead)
        skew_fmt = np.zeros(len(eo), bool)
        a, b = self.slots["skew"]
        if "skew" not in off:
            host = ek % 3 == 0
            sk = (eprod == 2) & host & (dt >= a) & (dt < b)
            skew_fmt[sk] = True
            self.add_inc(
                "dq-clock-skew",
                "clock_skew",
                "clock_skew",
                "data_quality",
                a,
                b,
                producer="pdd (1 of 3 hosts)",
                n_events=int(sk.sum()),
                share_of_arrivals=round(float(sk.sum() / max(((dt >= a) & (dt < b)).sum(), 1)), 3),
            )
        # reason shift: tb maps refund -> other for 2 h
        ereason = o["reason"][eo].copy()
        a, b = self.slots["shift"]
        if "shift" not in off:
            sh = (eprod == 0) & (es == ST_INV) & (ereason == R_REFUND) & (et >= a) & (et < b)
            ereason[sh] = R_OTHER
            allinv = (es == ST_INV) & (et >= a) & (et < b)
            self.add_inc(
                "dq-reason-shift",
                "reason_shift",
                "reason_shift",
                "data_quality",
                a,
                b,
                producer="tb",
                n_relabelled=int(sh.sum()),
                share_of_invalidations=round(float(sh.sum() / max(allinv.sum(), 1)), 3),
            )
        # volume drops: partitions (by order key) lost
        keep = np.ones(len(eo), bool)
        for tag, npart, parts, note in (
            ("drop", 6, (1, 4), "2 of 6 partitions"),
            ("drop_subtle", 4, (2,), "1 of 4 partitions"),
        ):
            a, b = self.slots[tag]
            if tag in off:
                continue
            h = (ek * 2654435761) % (2**32) % npart
            lost = (dt >= a) & (dt < b) & np.isin(h, parts)
            keep &= ~lost
            self.add_inc(
                f"dq-volume-{tag}",
                "volume_drop",
                "volume_drop",
                "data_quality",
                a,
                b,
                n_lost=int(lost.sum()),
                note=note,
                share=round(float(lost.sum() / max(((dt >= a) & (dt < b)).sum(), 1)), 3),
            )
        # lifecycle bug: jd re-emits 'paid' for orders already confirmed (backward step)
        self.use("lifecycle")
        rng = self.rng
        a, b = self.slots["lifecycle"]
        per5 = int(rng.integers(15, 40))
        bug_o = np.zeros(0, np.int64)
        if "lifecycle" not in off:
            cand = np.nonzero(
                (prod == 1)
                & paid
                & (o["tconf"] < a - 600)
                & (o["tconf"] >= lo)
                & (ti > b)
                & (o["tset"] > b)
            )[0]
            bug_o = rng.choice(cand, min(per5 * 4, len(cand)), replace=False)
            self.add_inc(
                "dq-lifecycle-bug",
                "lifecycle_bug",
                "lifecycle_violation",
                "data_quality",
                a,
                b,
                producer="jd",
                n_events=len(bug_o),
                note="jd re-emits 'paid' for orders already confirmed (backward step)",
            )
        bug_t = a + rng.uniform(0, b - a, len(bug_o))
        # assemble
        nb = len(bug_o)
        eo = np.concatenate([eo[keep], bug_o])
        es = np.concatenate([es[keep], np.full(nb, ST_PAID, np.int8)])
        et = np.concatenate([et[keep], bug_t])
        dt = np.concatenate([dt[keep], bug_t + rng.exponential(2.0, nb)])
        skew_fmt = np.concatenate([skew_fmt[keep], np.zeros(nb, bool)])
        ereason = np.concatenate([ereason[keep], np.full(nb, -1, np.int8)])
        bugflag = np.concatenate([np.zeros(keep.sum(), np.int64), np.ones(nb, np.int64)])
        ek = o["key"][eo]
        ne = len(eo)
        eprod = self.prod[o["pub"][eo]]
        U = lambda salt: self.uhash(ek, es.astype(np.int64) + 7 * bugflag, salt)  # noqa: E731
        # duplicates: background at-least-once + jd retry storm
        dup_rate = np.array([0.002, 0.004, 0.001, 0.003])[eprod]
        d1 = U("d1") < dup_rate
        a, b = self.slots["dupes"]
        storm = (eprod == 1) & (dt >= a) & (dt < b) & ("dupes" not in off)
        ncopy = np.where(d1, 1, 0) + np.where(storm, 1 + (U("d2") < 0.5), 0)
        didx = np.repeat(np.arange(ne), ncopy)
        cu = self.uhash(
            ek[didx], np.arange(len(didx), dtype=np.int64) - np.searchsorted(didx, didx), "d3"
        )
        cu2 = self.uhash(
            ek[didx], np.arange(len(didx), dtype=np.int64) - np.searchsorted(didx, didx), "d4"
        )
        ddel = dt[didx] + np.where(cu < 0.95, -8.0 * np.log1p(-cu2), 30 + 60 * cu2)
        if "dupes" not in off:
            self.add_inc(
                "dq-duplicate-storm",
                "duplicate_storm",
                "duplicate_events",
                "data_quality",
                a,
                b,
                producer="jd",
                n_dupes=int(np.where(storm, ncopy, 0).sum()),
            )
        allidx = np.concatenate([np.arange(ne), didx])
        alldel = np.concatenate([dt, ddel])
        order = np.argsort(alldel, kind="stable")
        allidx = allidx[order]
        alldel = alldel[order]
        self.use("malformed")
        rng = self.rng
        a, b = self.slots["malformed"]
        mal_p = float(rng.uniform(0.03, 0.08))
        self.mal = (a, b, mal_p if "malformed" not in off else 0.0)
        self.ekeys = ek
        self.write(o, eo, es, et, ereason, skew_fmt, allidx, alldel, [])
        if "malformed" not in off:
            self.add_inc(
                "dq-malformed-burst",
                "malformed_burst",
                "malformed_events",
                "data_quality",
                a,
                b,
                producer="tb",
                n_malformed=self.n_mal,
                note=f"{mal_p:.0%} of tb lines truncated / amount as string / no offset",
            )

    def write(self, o, eo, es, et, ereason, skew_fmt, allidx, alldel, extra_lines):
        out = self.out
        pub = o["pub"]
        # per-event strings (for the unique events)
        sec = np.round(et).astype("int64")
        ms = np.round(et * 1000).astype("int64")
        eprod = self.prod[pub[eo]]
        t_local = np.datetime_as_string((sec + LOCAL).astype("datetime64[s]"))
        t_zms = np.datetime_as_string(ms.astype("datetime64[ms]"))
        t_z = np.datetime_as_string(sec.astype("datetime64[s]"))
        ts = np.empty(len(eo), dtype=object)
        for p in range(4):
            m = eprod == p
            if p in (0, 2):
                ts[m] = np.char.add(t_local[m], "+08:00")
            elif p == 1:
                ts[m] = np.char.add(t_zms[m], "Z")
            else:
                ts[m] = np.char.add(t_z[m], "Z")
        m = skew_fmt
        ts[m] = np.char.add(t_local[m], "Z")  # local wall clock written as UTC
        pubs = self.pub_id
        eo_l = eo.tolist()
        es_l = es.tolist()
        er_l = ereason.tolist()
        ts_l = ts.tolist()
        ep_l = eprod.tolist()
        pub_l = pub.tolist()
        par_l = o["parent"].tolist()
        k_l = o["k"].tolist()
        it_l = o["item"].tolist()
        am_l = o["amount"].tolist()
        cm_l = o["comm"].tolist()
        mal_a, mal_b, mal_p = self.mal
        mal_u = self.uhash(
            self.ekeys[allidx], np.arange(len(allidx), dtype=np.int64) * 0 + es[allidx], "mal"
        )
        bg_u = self.uhash(
            self.ekeys[allidx], np.arange(len(allidx), dtype=np.int64) * 0 + es[allidx], "bg"
        )
        ok_l = o["key"].tolist()
        n_mal = 0
        eid_base = self.seed * 10**9
        with open(os.path.join(out, "events.jsonl"), "w") as f:
            buf = []
            for n_i, (i, d) in enumerate(zip(allidx.tolist(), alldel.tolist(), strict=True)):
                oi = eo_l[i]
                p = ep_l[i]
                st = es_l[i]
                pb = pub_l[oi]
                if p == 0:
                    oid = f"{3000000000000 + ok_l[oi]}"
                    head = f'"event_id":"tb{eid_base + i:x}","order_id":"{oid}"'
                    if k_l[oi] > 1:
                        head += f',"parent_order_id":"{2000000000000 + par_l[oi]}"'
                    head += f',"publisher_id":"{pubs[pb]}","adzone_id":"az{pb % 97}{pb}"'
                elif p == 1:
                    oid = f"{250000000000 + par_l[oi]}-{it_l[oi]}"
                    head = f'"event_id":"{zlib.crc32(str(i).encode()):08x}-{eid_base + i:x}","order_id":"{oid}"'  # noqa: E501
                    head += f',"parent_order_id":"{250000000000 + par_l[oi]}"'
                    head += f',"publisher_id":"{pubs[pb]}","site_id":"s{pb}"'
                elif p == 2:
                    oid = f"261106-{ok_l[oi]:015d}"
                    head = f'"event_id":"pdd-{eid_base + i}","order_id":"{oid}","publisher_id":"{pubs[pb]}"'  # noqa: E501
                else:
                    oid = f"IR{ok_l[oi]}"
                    head = f'"event_id":"ir-{eid_base + i}","order_id":"{oid}","publisher_id":"{pubs[pb]}"'  # noqa: E501
                r = er_l[i]
                rs = f',"reason":"{REASONS[r]}"' if st == ST_INV else ""
                cur = ',"currency":"USD"' if p == 3 else ""
                am = am_l[oi] / 7.1 if p == 3 else am_l[oi]
                cm = cm_l[oi] / 7.1 if p == 3 else cm_l[oi]
                line = (
                    f'{{"schema_version":1,{head},"item_id":"i{ok_l[oi] % 100003}",'
                    f'"status":"{STATUS[st]}"{rs},"amount":{am:.2f},"commission":{cm:.2f}'
                    f'{cur},"occurred_at":"{ts_l[i]}"}}'
                )
                if p == 0 and mal_a <= d < mal_b and mal_u[n_i] < mal_p:
                    n_mal += 1
                    v = int(mal_u[n_i] / mal_p * 3)
                    if v == 0:
                        line = line[: len(line) // 2]
                    elif v == 1:
                        line = line.replace(f'"amount":{am:.2f}', f'"amount":"{am:.2f}"')
                    else:
                        line = line.replace("+08:00", "")
                elif bg_u[n_i] < 2e-5:
                    line = line[: len(line) - 7]
                buf.append(line)
                if len(buf) >= 50000:
                    f.write("\n".join(buf) + "\n")
                    buf = []
            if buf:
                f.write("\n".join(buf) + "\n")
        self.n_mal = n_mal
        self.n_lines = len(allidx)

    def run(self, out):
        self.out = out
        os.makedirs(out, exist_ok=True)
        self.build()
        self.events()
        doc = {
            "generator": "realgen",
            "seed": self.seed,
            "start": iso_z(T0),
            "end": iso_z(self.t_end),
            "incidents": sorted(self.incidents, key=lambda d: d["start"]),
        }
        with open(os.path.join(out, "incidents.json"), "w") as f:
            json.dump(doc, f, indent=1)
        self.truth["lines"] = self.n_lines
        self.truth["pub_sizes_top10"] = [
            [self.pub_id[i], round(float(self.size[i]))] for i in np.argsort(-self.size)[:10]
        ]
        with open(os.path.join(out, "truth.json"), "w") as f:
            json.dump(self.truth, f, indent=1)
        print(f"wrote {self.n_lines} lines, {len(self.incidents)} incidents/traps to {out}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--publishers", type=int, default=3500)
    ap.add_argument("--hours", type=int, default=88)
    ap.add_argument(
        "--off",
        default="",
        help="comma list of blocks to leave out: flash,newpub,tiny,"
        "batch,sale,fraud-subtle,fraud-big,brushing,brushing-subtle,refund-wave,"
        "refund-wave-subtle,glitch,glitch_subtle,skew,shift,drop,drop_subtle,lifecycle,"
        "dupes,malformed",
    )
    ap.add_argument(
        "--refund-tod",
        default="profile",
        choices=["profile", "step", "none"],
        help="time of day of merchant-processed invalidations (step = v1 08:00 step)",
    )
    ap.add_argument(
        "--at",
        default="",
        help="NAME=HOURS,... move exclusive incidents (glitch, "
        "glitch_subtle, malformed, dupes, lifecycle, skew, drop, drop_subtle, shift) to "
        "HOURS after the stream start (experiments)",
    )
    a = ap.parse_args()
    at = {k: float(v) for k, v in (x.split("=") for x in a.at.split(",") if x)}
    Gen(a.seed, a.publishers, a.hours, [x for x in a.off.split(",") if x], a.refund_tod, at).run(
        a.out
    )


if __name__ == "__main__":
    main()
