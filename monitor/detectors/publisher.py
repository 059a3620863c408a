"""``publisher_spike``: one publisher's invalidations well above its own normal.

Model (per publisher ``p``, per count channel ``c`` = each reason, fast invalidations,
total): the rate per window is Gamma-Poisson with a prior centred on the platform's
invalidations *per order* times ``p``'s own order rate, so a tiny publisher is shrunk
towards "a publisher of its size" and a new large one starts sensible::

    lambda_c = (a_c + k) / (n + k / mu_c),   mu_c = max(orders per window, floor) * rho_c

``a_c`` and the publisher's order count decay with ``halflife_windows``; ``n`` is the
decayed number of windows since the publisher was first seen. The expected count in a
window is ``lambda_c * season * vf * own_day``: the platform's hour-of-day index, the
publisher's own *volume factor* (short-term order rate over long-term, never below 1), so
a promotion that multiplies orders and proportionally their invalidations is no spike,
while brushing (orders up, most of them invalidated fast) still is, and its *own day*:
how its invalidations spread over the day next to the platform's (a publisher in another
time zone, a merchant's office hours), learned over its last days and shrunk towards 1.

Three tests, all ``-log10 p`` under a negative binomial whose dispersion reflects the
uncertainty of the rate (and caps at ``dispersion_cap`` for clumpy real counts):

- *burst*: this window's count (fraud, brushing);
- *sustained*: an exponentially weighted sum with ``short_halflife_windows`` (a refund
  wave of 2-4x over hours is visible after a few windows);
- *CUSUM* on the standardised total (slow shifts of less than 2x), and another on refunds
  alone: a refund wave is diluted in the total by the other reasons. Refunds follow orders
  by days, so both leave out the refunds of a publisher whose refunds have not caught up
  with its orders yet (new to the stream, ``refund_lag_windows``).

Firing needs the Bonferroni threshold over all tests of the window, a minimum excess and a
minimum ratio: one refund of two orders is never an incident.

State is lazy: a publisher costs nothing in windows where it has no events. Decayed sums
are kept scaled by ``g**-w`` so an update touches only the non-zero channels. Every
publisher's state is one row of ``_WIDTH`` doubles in a single flat ``array`` (``data``),
found by ``state: dict[publisher_id, row offset]``; freed rows are reused. Neither the
dict (string keys, integer values) nor the array holds references the cyclic garbage
collector must walk: with one small array object per publisher, each full collection
visited 200k of them and their dict, a third of the run time at a million publishers.
State is bounded (about 480 bytes a publisher with its id, ~630 B of RSS): idle
publishers leave after two weeks, and beyond ``max_publishers`` (a flood of junk ids) the
least valuable leave (``_shrink``); both count in ``evicted``.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import sys
from array import array
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import itemgetter
from typing import Any

import numpy as np

from monitor.detectors.base import Finding, WindowContext, severity_for
from monitor.model import REASON_INDEX, REASONS, Kind, iso
from monitor.stats import bonferroni_threshold, nb_upper_score
from monitor.windows import CHANNELS, FAST, ORDERS, TOTAL

CHANNEL_NAMES: tuple[str, ...] = (*(r.value for r in REASONS), "fast", "total")
_REFUND = REASON_INDEX["refund"]

# state layout (one row of doubles per publisher in ``PublisherSpike.data``)
_BIRTH, _LAST, _O, _OS = 0, 1, 2, 3
_A = 4  # 8 long-decayed channel counts
_X = 12  # 8 short-decayed channel counts
# a CUSUM is 5 doubles from its base: value, excess, expected and windows of its run, and
# the window it was last updated in
_CUS = 20  # on the total
_XL = 25  # hour-scale decayed total: keeps an alert open while its excess lasts
_RCUS = 26  # on refunds: a refund wave is diluted in the total by the other reasons
_CUS_VALUE, _CUS_EXC, _CUS_EXP, _CUS_LAST, _CUS_RUN = range(5)
# the publisher's own time of day: its invalidations in each of ``_BUCKETS`` parts of the
# day (long-decayed, like ``_A``), then the part it is in now (not in its profile until
# that part of the day is over) and which part that is (a serial: -1 none)
_BUCKETS = 12
_PT = 31
_PT_OPEN = _PT + _BUCKETS
_PT_SERIAL = _PT_OPEN + 1
# the publisher's last surge of orders of its own (a promotion): its size - 1, decayed
# (scaled like the sums), for the refunds that follow the orders it sold
_ECHO = _PT_SERIAL + 1
_WIDTH = _ECHO + 1
_WIDTH_V3 = _ECHO  # rows of snapshots taken before the refund echo: restored without one
_WIDTH_V2 = 31  # rows of snapshots taken before the time-of-day profile: restored empty
_WIDTH_V1 = 26  # rows of snapshots taken before the refund CUSUM: restored with it at rest
_EMPTY_ROW = array("d", bytes(8 * _WIDTH))
_AT_REST = (0.0, 0.0, 0.0, 0.0)  # a CUSUM run: value, excess, expected, windows
_REBASE_EVERY = 600  # windows; keeps the g**-w scale factors far from overflow
_SHRINK_TO = 0.8  # over the cap, evict down to this share of it (amortises the ranking)
_RECUR_CAP = 10_000  # publishers whose spikes are remembered for the daily-pattern rule
_RECUR_EPISODES = 8  # spike episodes remembered per publisher


@dataclass(frozen=True, slots=True)
class PublisherParams:
    halflife_windows: float = 288.0  # baseline memory: one day of 5-min windows
    short_halflife_windows: float = 3.0  # the sustained test looks at ~15 min
    volume_halflife_windows: float = 12.0  # volume factor, and how long an excess sustains
    prior_strength: float = 2.0  # pseudo-invalidations of the platform-based prior
    volume_prior_orders: float = 5.0  # pseudo-orders smoothing the volume factor
    min_order_rate: float = 0.02  # floor of orders/window in the prior (unknown publishers)
    dispersion_cap: float = 15.0  # negative binomial size cap: var >= m + m^2/15
    family_alpha: float = 0.002  # false alarms per window across all publishers and tests
    min_count: int = 5  # observed invalidations needed to fire
    min_excess: float = 5.0  # observed - expected needed to fire
    min_ratio: float = 2.5  # observed / expected needed to fire
    sustain_score: float = 2.5  # keeps a firing alert open (hysteresis)
    cusum_allowance: float = 0.75  # standard deviations of slack per window
    cusum_threshold: float = 14.0  # CUSUM of standardised excess that fires (slow waves)
    cusum_min_excess: float = 10.0  # extra invalidations the CUSUM run must hold
    cusum_min_ratio: float = 1.6  # observed / expected over the CUSUM run
    cusum_z_cap: float = 4.0  # one window adds at most this many standard deviations
    cusum_min_age_windows: float = 72.0  # CUSUM needs 6 h of the publisher's own history
    # and the detector a whole day: on the first day every CUSUM stays at rest, as a rise
    # over hours is what a region's office hours look like before their day is known
    # (``_seen_a_day``; 0: from the first window)
    cusum_after_windows: int = 288
    # the same CUSUM on refunds alone: a wave of 2-3x refunds at a publisher whose other
    # reasons are half its invalidations is only 1.5-2x in the total. Its own threshold is
    # higher, as it is a second test of each publisher (0: off)
    refund_cusum_threshold: float = 17.0
    # and a higher ratio: refunds of a sale some days before rise 1.5x over hours, no wave
    refund_cusum_min_ratio: float = 2.0
    # refunds follow orders by hours to days: after a surge of the publisher's own orders
    # (a promotion of its own: orders ``refund_echo_surge`` times its usual rate or more,
    # beyond the platform's, once it has a day of history), its refund expectations stay
    # raised by ``refund_echo_share`` of that surge, fading with a halflife of
    # ``refund_echo_halflife_windows``, so the refunds of the orders it sold are not a
    # "wave" of their own (0: off)
    refund_echo_surge: float = 2.5
    refund_echo_share: float = 0.5
    refund_echo_halflife_windows: float = 144.0
    # refunds follow orders by days, so a publisher new to the stream, or one whose orders
    # just multiplied, has refunds rising for days: both CUSUMs leave its refunds out for
    # this long...
    refund_lag_windows: float = 576.0
    # ...unless it was seen in the detector's first ``start_grace_windows`` (it was there
    # before the detector started) and its refunds per order are at least this share of
    # the platform's (they have caught up with its orders)
    start_grace_windows: int = 24
    refund_settled_share: float = 0.4
    # a spike at the time of day one of the publisher's spikes had on one of the last
    # ``recurring_days`` days, in the same reason and at most ``recurring_max_ratio`` times
    # its size, is a daily pattern (a merchant's refund batch): reported, not raised (0: off)
    recurring_days: int = 3  # a spike recurring within this many days is a daily pattern
    recurring_tolerance_windows: int = 12  # how far that time of day may drift (1 h)
    recurring_max_ratio: float = 3.0  # a recurrence this much larger is raised after all
    # a publisher's own time of day: its expectations follow the platform's hour-of-day
    # index times how its own invalidations were spread over the day relative to the
    # platform's (``_BUCKETS`` parts of the day, over its last days, shrunk towards the
    # platform's spread by this many pseudo-invalidations). A platform serves several time
    # zones, and a merchant's refunds come in its own office hours: judged by the
    # platform's day, a European publisher's every afternoon was a "sustained rise".
    # Used once the publisher has a day of history; 0 turns it off
    own_day_prior: float = 100.0
    # the spread is learned over days: a day's part seen 22 h ago and one seen an hour ago
    # weigh nearly alike, so a publisher whose volume grows does not read its older parts
    # of the day as its quiet ones
    own_day_halflife_windows: float = 288.0 * 7
    own_day_min_ratio: float = 0.67  # the own-day factor is kept within these
    own_day_max_ratio: float = 5.0
    # a rise many publishers share is not news about each of them: when at least
    # ``cohort_min`` publishers (and ``cohort_factor`` times as many as usual) have a CUSUM
    # run well under way in the same channel (refunds, or the total), the runs that fire
    # are reported as part of that shared rise, not raised: a region's rise its publishers'
    # own day has not learned (the CUSUMs rest on the first day, when that was every
    # region's office hours); the platform-wide detectors judge a rise of the whole
    # platform (0: off)
    cohort_min: int = 4
    cohort_factor: float = 3.0
    forget_after_windows: int = 288 * 14  # idle publishers leave after two weeks
    max_publishers: int = 200_000  # memory cap (~500 B each): beyond it, least valuable leave

    def __post_init__(self) -> None:
        if self.max_publishers < 1:
            raise ValueError(f"max_publishers must be >= 1, got {self.max_publishers}")
        if self.refund_echo_halflife_windows <= 0:
            raise ValueError(
                "refund_echo_halflife_windows must be > 0 (refund_echo_surge = 0 turns the "
                f"echo off), got {self.refund_echo_halflife_windows}"
            )


@dataclass(slots=True)
class _Window:
    """One window's publishers as ``score`` saw them, for ``learn``."""

    pubs: dict[str, list[int]]  # ``acc.pubs``: the window they belong to
    keys: list[str]
    vecs: list[list[int]]
    offs: list[int]  # row offsets; -1 for a publisher not tracked yet
    tested: list[int] = field(default_factory=list)  # positions ``score`` tested
    new: list[int] = field(default_factory=list)  # positions of publishers not tracked yet
    # firing or recurring findings: (publisher, carrier channel, its count, recurring)
    spiked: list[tuple[str, int, int, bool]] = field(default_factory=list)
    # CUSUM runs under way (total, refunds), whether each was a shared rise, reports made
    cohort: tuple[list[int], list[bool], int] = ([0, 0], [False, False], 0)


class PublisherSpike:
    name = "publisher_spike"

    def __init__(self, params: PublisherParams | None = None) -> None:
        self.p = params or PublisherParams()
        p = self.p
        self.g = 2.0 ** (-1.0 / p.halflife_windows)
        self.gs = 2.0 ** (-1.0 / p.short_halflife_windows)
        self.gv = 2.0 ** (-1.0 / p.volume_halflife_windows)
        self.gd = 2.0 ** (-1.0 / p.own_day_halflife_windows)
        self.ge = 2.0 ** (-1.0 / p.refund_echo_halflife_windows)
        self._f_echo = 1.0  # ``score`` sets it: turns the scaled echoes into values now
        self.epoch = 0  # window index the scaled sums are relative to
        self.state: dict[str, int] = {}  # publisher -> offset of its row in ``data``
        self.data = array("d")  # the rows, ``_WIDTH`` doubles each
        self.free = array("q")  # offsets of rows no publisher holds
        self.evicted = 0  # publishers whose state was dropped: idle, or over the cap
        self.evicted_cap = 0  # of those, dropped over ``max_publishers``
        # platform order volume, short and long, so the volume factor is relative to the
        # platform's own daily rhythm (the seasonal index already covers that)
        self.plat_os = 0.0
        self.plat_o = 0.0
        self.plat_windows = 0
        # the platform's invalidations by part of the day, as the publishers' (decayed
        # every window): the reference a publisher's own spread is compared with
        self.plat_day = [0.0] * _BUCKETS
        self.plat_day_open = 0.0
        self.plat_day_serial = -1
        self._bucket_windows = 0  # windows per part of the day (set from the window width)
        # ``score`` sets it: (part of the day of the window, the platform's shares by part
        # of the day, the factor that turns the rows' profiles into values as of now)
        self._day_ref: tuple[int, list[float], float] | None = None
        self.first_window: int | None = None  # first window with publishers (None: unknown)
        # spike episodes per publisher, for the daily-pattern rule: [first window, last
        # window, carrier channel, peak count of that channel, 1 if recognised as recurring]
        self.recur: dict[str, list[list[int]]] = {}
        self.recurring = 0  # windows whose spike was recognised as a daily pattern
        # publishers with a CUSUM run under way, usually (decayed mean over ordinary
        # windows), on the total and on refunds; and findings reported as a shared rise
        self.cohort_usual = [0.0, 0.0]
        self.shared = 0
        self._window: _Window | None = None  # ``score`` hands it to ``learn``

    # -- helpers ------------------------------------------------------------------
    def _factors(self, w: int) -> tuple[float, float, float]:
        """Multipliers that turn scaled sums into values as of window ``w - 1``."""
        k = w - 1 - self.epoch
        return self.g**k, self.gs**k, self.gv**k

    def _rates(self, st: array, w: int, f_long: float, ctx: WindowContext) -> tuple:
        """(n, orders/window, lambda per channel) from the history before window ``w``."""
        p = self.p
        age = w - st[_BIRTH]
        n = (1.0 - self.g**age) / (1.0 - self.g) if age > 0 else 0.0
        orate = st[_O] * f_long / n if n > 0 else 0.0
        base = max(orate, p.min_order_rate)
        k = p.prior_strength
        ratio = ctx.order_ratio
        lam = [
            (st[_A + c] * f_long + k) / (n + k / max(base * ratio[c], 1e-6))
            for c in range(CHANNELS)
        ]
        return n, orate, lam

    def _rows_of(self, pubs: dict[str, list[int]]) -> _Window:
        """The window's publishers with their row offsets (-1: not tracked), looked up
        once for ``score`` and ``learn`` (at a million publishers each lookup is a cache
        miss)."""
        return _Window(pubs, list(pubs), list(pubs.values()),
                       list(map(self.state.get, pubs, repeat(-1))))  # fmt: skip

    # -- protocol -----------------------------------------------------------------
    def score(self, ctx: WindowContext) -> list[Finding]:
        p = self.p
        w = ctx.acc.index
        f_long, f_short, f_vol = self._factors(w)
        self._plat_ratio = self._platform_volume_ratio(ctx)
        self._f_echo = self.ge ** (w - self.epoch)
        tests = max(1, ctx.publisher_tests) * (CHANNELS * 2 + 2)
        thr = bonferroni_threshold(p.family_alpha, tests)
        results: dict[str, Any] = {}
        findings: list[Finding] = []
        data, gs, min_count = self.data, self.gs, p.min_count
        win = self._window = self._rows_of(ctx.acc.pubs)
        keys, vecs, offs = win.keys, win.vecs, win.offs
        self._day_ref = self._platform_day(ctx)
        # most publishers of a window have no invalidation in it or in their short memory,
        # and no CUSUM run: nothing to test. Which ones to test is decided in whole-array
        # passes over the window's rows (one Python iteration per publisher of a window was
        # a third of the window close at 100k publishers)
        o = np.array(offs, dtype=np.intp)
        known = o >= 0
        totals = np.fromiter(map(itemgetter(TOTAL), vecs), dtype=np.float64, count=len(vecs))
        rows = np.frombuffer(data, dtype=np.float64)  # a view: released below
        short = np.zeros(len(offs))
        cusum = np.zeros(len(offs))
        short[known] = rows[o[known] + (_X + TOTAL)]
        cusum[known] = rows[o[known] + _CUS] + rows[o[known] + _RCUS]
        del rows  # ``data`` cannot grow while a view of it exists
        # a known publisher is tested with invalidations now, a short memory of at least
        # ``min_count`` or a CUSUM run; a new one with invalidations (or any, at min_count 0)
        test = (totals != 0) | np.where(
            known, ~(short * f_short * gs < min_count) | (cusum > 0), min_count <= 0
        )
        win.tested = np.flatnonzero(test).tolist()
        win.new = np.flatnonzero(~known).tolist()
        for i in win.tested:
            pub, vec, b = keys[i], vecs[i], offs[i]
            st = _fresh_row(w) if b < 0 else data[b : b + _WIDTH]  # a copy: _test only reads
            res = self._test(pub, st, vec, w, ctx, thr, f_long, f_short, f_vol)
            results[pub] = res
            f = res["finding"]
            if f is not None:
                if f.firing:
                    c = _carrier(f)
                    prior = self._recurrence(pub, c, vec[c], w, ctx.acc.width)
                    if prior is not None:  # the baseline stays protected ("anomalous")
                        f = res["finding"] = _as_recurring(f, vec[c], prior, ctx.acc.width)
                    win.spiked.append((pub, c, vec[c], prior is not None))
                findings.append(f)
        ctx.publisher_results = results
        if p.cohort_min:
            findings = self._cohort(results, findings, win)
        return findings

    def _cohort(self, results: dict[str, Any], findings: list[Finding], win: _Window) -> list:
        """Firing CUSUM findings in a channel where many publishers' runs are under way
        become reports of a shared rise (not firing; learned as ordinary)."""
        p = self.p
        counts = [0, 0]
        for res in results.values():
            for i, (run, threshold, ratio) in enumerate((
                (res["cusum"], p.cusum_threshold, p.cusum_min_ratio),
                (res["refund_cusum"], p.refund_cusum_threshold, p.refund_cusum_min_ratio),
            )):  # fmt: skip
                if run is not None and _under_way(run, threshold, ratio, p.cusum_min_excess):
                    counts[i] += 1
        shared = [
            n >= max(p.cohort_min, p.cohort_factor * usual)
            for n, usual in zip(counts, self.cohort_usual, strict=True)
        ]
        win.cohort = (counts, shared, 0)
        if not any(shared):
            return findings
        out = []
        reported = 0
        for f in findings:
            channel = f.evidence.get("test") == "cusum" and f.evidence.get("channel")
            i = 0 if channel == "total" else 1 if channel == CHANNEL_NAMES[_REFUND] else -1
            if f.firing and i >= 0 and shared[i]:
                f = _as_shared(f, counts[i])
                res = results[f.scope or ""]
                res["finding"], res["anomalous"] = f, False
                win.spiked = [x for x in win.spiked if x[0] != f.scope]
                reported += 1
            out.append(f)
        win.cohort = (counts, shared, reported)
        return out

    def _recurrence(self, pub: str, c: int, x: int, w: int, width: int) -> tuple | None:
        """(days before, episode) of an earlier spike of ``pub`` in channel ``c`` at this
        time of day whose peak is at least ``x / recurring_max_ratio``; None if none."""
        p = self.p
        eps = self.recur.get(pub)
        if not eps or not p.recurring_days:
            return None
        day, tol = 86400 // width, p.recurring_tolerance_windows
        for d in range(1, p.recurring_days + 1):
            then = w - d * day
            for ep in eps:
                near = ep[0] - tol <= then <= ep[1] + tol
                if near and ep[2] == c and x <= p.recurring_max_ratio * ep[3]:
                    return d, ep
        return None

    def _remember(self, pub: str, c: int, x: int, recurring: bool, w: int, width: int) -> None:
        """A firing or recurring spike of ``pub`` at window ``w``: extends its latest
        episode (same channel, within the tolerance) or starts one."""
        p = self.p
        horizon = w - p.recurring_days * (86400 // width) - p.recurring_tolerance_windows
        eps = [ep for ep in self.recur.pop(pub, ()) if ep[1] >= horizon]
        last = eps[-1] if eps else None
        if last is not None and last[2] == c and last[1] >= w - p.recurring_tolerance_windows:
            last[1], last[3], last[4] = w, max(last[3], x), last[4] | recurring
        else:
            eps.append([w, w, c, x, int(recurring)])
            del eps[:-_RECUR_EPISODES]
        self.recur[pub] = eps  # to the back: the least recently spiking leave first
        if len(self.recur) > _RECUR_CAP:
            del self.recur[next(iter(self.recur))]

    def recurring_patterns(self) -> list[dict[str, Any]]:
        """Publishers whose latest spike was recognised as a daily pattern (read side)."""
        out = []
        for pub, eps in self.recur.items():
            ep = eps[-1]
            if ep[4]:
                out.append({"publisher_id": pub, "channel": CHANNEL_NAMES[ep[2]],
                            "first_window": ep[0], "last_window": ep[1],
                            "peak": ep[3]})  # fmt: skip
        return out

    def _platform_volume_ratio(self, ctx: WindowContext) -> float:
        """Platform orders over the last ~hour relative to its long-run rate."""
        w = self.plat_windows
        if w < 12:
            return 1.0
        ns = (1.0 - self.gv ** (w + 1)) / (1.0 - self.gv)
        n = (1.0 - self.g**w) / (1.0 - self.g)
        short = self.plat_os * self.gv + ctx.platform[ORDERS]
        return max(0.2, (short / ns) / max(self.plat_o / n, 1e-9))

    # -- the publisher's own time of day ------------------------------------------------
    def _serial(self, w: int, width: int) -> int:
        """Which part of the day (counted since the epoch) window ``w`` is in."""
        if not self._bucket_windows:
            self._bucket_windows = max(1, 86400 // width // _BUCKETS)
        return w // self._bucket_windows

    def _platform_day(self, ctx: WindowContext) -> tuple[int, list[float], float] | None:
        """``_day_ref`` for this window; None before any part of the day is complete."""
        w = ctx.acc.index
        serial = self._serial(w, ctx.acc.width)
        day = _completed(self.plat_day, self.plat_day_serial, self.plat_day_open, serial)
        tot = sum(day)
        if tot <= 0 or not self.p.own_day_prior:
            return None
        return serial, [v / tot for v in day], self.gd ** (w - 1 - self.epoch)

    def _own_day(self, st: array) -> float:
        """This publisher's own-day factor for this window's part of the day: its share of
        invalidations there over the platform's share (1: no profile yet, or the publisher
        was not there for the whole of that part of the day a day ago, when an empty part
        would read as a quiet one)."""
        ref = self._day_ref
        if ref is None:
            return 1.0
        serial, shares, f_day = ref
        s_h = shares[serial % _BUCKETS]
        if s_h <= 0 or (serial - _BUCKETS) * self._bucket_windows < st[_BIRTH]:
            return 1.0
        own = _completed(st[_PT : _PT + _BUCKETS].tolist(), int(st[_PT_SERIAL]), st[_PT_OPEN],
                         serial)  # fmt: skip
        p = self.p
        k = p.own_day_prior
        share = (own[serial % _BUCKETS] * f_day + k * s_h) / (sum(own) * f_day + k)
        return min(max(share / s_h, p.own_day_min_ratio), p.own_day_max_ratio)

    def _there_from_start(self, st: array) -> bool:
        """The publisher was seen in the detector's first ``start_grace_windows``: it was
        there before the detector started, not new to the stream."""
        first = self.first_window
        return first is not None and st[_BIRTH] <= first + self.p.start_grace_windows

    def _seen_a_day(self, w: int) -> bool:
        """The detector has seen ``cusum_after_windows`` windows: the slow-wave test (the
        CUSUMs) runs from then on. Before a whole day has been seen, a rise over hours
        cannot be told from a publisher's or a region's daily rhythm: neither the
        platform's hour of day nor the publisher's own is known yet."""
        after, first = self.p.cusum_after_windows, self.first_window
        return not after or (first is not None and w - first >= after)

    def _test(self, pub, st, vec, w, ctx, thr, f_long, f_short, f_vol) -> dict[str, Any]:
        p = self.p
        n, orate, lam = self._rates(st, w, f_long, ctx)
        age = w - st[_BIRTH]
        day_f = self._own_day(st)
        if day_f < 1.0 and age < p.refund_lag_windows and not self._there_from_start(st):
            # new to the stream: its invalidations grow for days (refunds follow orders),
            # so its first day's hours read as quiet ones; only a busier part counts
            day_f = 1.0
        os_now = st[_OS] * f_vol * self.gv + vec[ORDERS]
        ns_now = (1.0 - self.gv ** (age + 1)) / (1.0 - self.gv)
        own = (os_now + p.volume_prior_orders) / (orate * ns_now + p.volume_prior_orders)
        # platform-wide surge (vs its seasonal forecast) times this publisher's own surge
        # relative to the platform's rhythm: promotions, big or small, raise expectations
        surge = max(1.0, own / self._plat_ratio)
        vf = ctx.volume_factor * surge
        m = vf * day_f  # what the expectations are multiplied by
        # refunds of a surge that has passed: beyond the surge of now, which vf has
        echo = 1.0 + p.refund_echo_share * st[_ECHO] * self._f_echo
        refund_echo = max(1.0, echo / surge)
        short_exposure = min(ctx.season_short, (1.0 - self.gs ** (age + 1)) / (1.0 - self.gs))
        best: tuple | None = None  # (score, test, channel, observed, expected)
        sustain = False
        season, gs, min_count = ctx.season, self.gs, p.min_count
        burst_min = min_count * 0.5
        # below this excess a score can neither sustain nor fire: not worth computing
        min_gap = min(2, p.min_excess)
        expected = [0.0] * CHANNELS
        # the echo's refunds are part of the total's expectation too
        echo_extra = lam[_REFUND] * (refund_echo - 1.0)
        for c in range(CHANNELS):
            lam_c = lam[c] + echo_extra if c in (_REFUND, TOTAL) else lam[c]
            e = lam_c * season * m
            expected[c] = e
            x = vec[c]
            xs = st[_X + c] * f_short * gs + x
            if x < burst_min and xs < min_count:
                continue  # too few for either test (most channels of most publishers)
            size = min(st[_A + c] * f_long + p.prior_strength, p.dispersion_cap)
            es = lam_c * short_exposure * m
            for test, obs, exp in (("burst", x, e), ("sustained", xs, es)):
                if obs < min_count * (0.5 if test == "burst" else 1.0) or obs - exp < min_gap:
                    continue
                s = nb_upper_score(obs, exp, size)
                if s >= p.sustain_score and obs - exp >= 2:
                    sustain = True
                fires = (
                    s >= thr
                    and obs - exp >= p.min_excess
                    and obs >= p.min_ratio * exp
                    and obs >= p.min_count
                )
                if fires and (best is None or s > best[0]):
                    best = (s, test, c, obs, exp)
        # CUSUM on the standardised total, leaving out reasons an open platform-wide alert
        # already covers (a glitch must not build up publisher CUSUMs for later), and the
        # refunds of a publisher whose refunds have not caught up with its orders yet
        # (channels have separate rates, so the reasons' expectations may exceed the total's)
        settled = age >= p.refund_lag_windows or (
            self._there_from_start(st)
            and lam[_REFUND] >= p.refund_settled_share * orate * ctx.order_ratio[_REFUND]
        )
        quiet = ctx.quiet_reasons if settled else ctx.quiet_reasons | {_REFUND}
        e_tot = max(1e-3, expected[TOTAL] - (sum(expected[r] for r in quiet) if quiet else 0))
        x_tot = max(0, vec[TOTAL] - (sum(vec[r] for r in quiet) if quiet else 0))
        size_t = min(st[_A + TOTAL] * f_long + p.prior_strength, p.dispersion_cap)
        slow = self._seen_a_day(w)
        run_t = self._cusum(st, _CUS, x_tot, e_tot, size_t, w) if slow else _AT_REST
        run_r = None
        fired = None  # (channel, run) of the CUSUM that fires, the total's first
        if self._fires(run_t, n, p.cusum_threshold, p.cusum_min_ratio):
            fired = (TOTAL, run_t)
        if p.refund_cusum_threshold > 0 and settled:
            x_r, e_r = (0, 0.0) if _REFUND in quiet else (vec[_REFUND], expected[_REFUND])
            size_r = min(st[_A + _REFUND] * f_long + p.prior_strength, p.dispersion_cap)
            run_r = self._cusum(st, _RCUS, x_r, max(1e-3, e_r), size_r, w) if slow else _AT_REST
            if fired is None and self._fires(
                run_r, n, p.refund_cusum_threshold, p.refund_cusum_min_ratio
            ):
                fired = (_REFUND, run_r)
        # an open alert stays open while the hour-scale excess lasts (a fraud burst's or a
        # brushing wave's tail of late invalidations is the same incident, not a new one)
        xl = st[_XL] * f_vol * self.gv + vec[TOTAL]
        el = (
            lam[TOTAL]
            * m
            * ctx.season
            * min(1.0 / (1.0 - self.gv), (1.0 - self.gv ** (age + 1)) / (1.0 - self.gv))
        )
        if xl - el >= p.min_excess / 2 and xl >= 1.5 * el:
            sustain = True
        finding = None
        if best is not None or fired is not None or sustain:
            finding = self._finding(pub, vec, expected, best, fired, run_t[0], thr, vf, ctx)
        return {
            "expected": expected,
            "vf": vf,
            "cusum": run_t,
            "refund_cusum": run_r,  # None with the refund CUSUM off
            "own_day": day_f,
            # the surge the echo may remember: one against a day of the publisher's own
            # orders (younger, its "usual" rate is a few hours of its daily curve)
            "echo_surge": surge if age >= p.halflife_windows else 1.0,
            "finding": finding,
            # only a firing finding is kept out of the baseline; sustain-level noise is
            # ordinary variation the baseline must learn, or it drifts low
            "anomalous": finding is not None and finding.firing,
        }

    def _cusum(
        self, st: array, base: int, x: float, e: float, size: float, w: int
    ) -> tuple[float, float, float, float]:
        """The CUSUM at ``st[base:]`` after window ``w`` with ``x`` observed where ``e`` was
        expected: (value, excess, expected, windows) of its run, zeros once it is back at
        rest. Windows the publisher was not tested in each take one allowance off."""
        p = self.p
        sd = math.sqrt(e + e * e / size)
        z = min(p.cusum_z_cap, (x - e) / max(sd, 1e-9))
        prev = st[base + _CUS_VALUE]
        if prev <= 0:
            cus = z - p.cusum_allowance
            return (cus, x - e, e, 1.0) if cus > 0 else (0.0, 0.0, 0.0, 0.0)
        silent = max(0.0, w - 1 - st[base + _CUS_LAST])
        cus = prev - p.cusum_allowance * silent + z - p.cusum_allowance
        if cus <= 0:
            return 0.0, 0.0, 0.0, 0.0
        return (cus, st[base + _CUS_EXC] + x - e, st[base + _CUS_EXP] + e,
                st[base + _CUS_RUN] + 1 + silent)  # fmt: skip

    def _fires(
        self, run: tuple[float, float, float, float], n: float, threshold: float, ratio: float
    ) -> bool:
        """A CUSUM run fires: over ``threshold`` and ``ratio``, with enough history (``n``
        windows) and excess."""
        p = self.p
        cus, exc, exp, _ = run
        return (
            n >= p.cusum_min_age_windows
            and cus >= threshold
            and exc >= p.cusum_min_excess
            and exc + exp >= ratio * exp
        )

    def _finding(self, pub, vec, expected, best, fired, cus_total, thr, vf, ctx) -> Finding:
        """The finding of a publisher's window: the best firing burst or sustained test,
        else a firing CUSUM (``fired``: its channel and run), else sustain only."""
        p = self.p
        sustain_only = best is None and fired is None
        reasons = {REASONS[i].value: vec[i] for i in range(6) if vec[i]}
        # dominant reason: the reason channel with the largest excess in this window
        dom = max(range(6), key=lambda i: vec[i] - expected[i])
        reason = REASONS[dom].value if vec[dom] > 0 else None
        cus_exc = cus_run = 0.0
        if best is not None:
            score, test, c, obs, exp = best
            channel = CHANNEL_NAMES[c]
            if c < 6:
                reason = channel
        elif fired is not None:
            c, (score, cus_exc, cus_exp, cus_run) = fired
            test, channel = "cusum", CHANNEL_NAMES[c]
            obs, exp = cus_exc + cus_exp, cus_exp
            if c < 6:
                reason = channel
        else:
            score, test, channel, obs, exp = 0.0, "sustain", "total", vec[TOTAL], expected[TOTAL]
        ratio = obs / max(exp, 1e-9)
        minutes = ctx.acc.width // 60
        fast = vec[FAST]
        if test == "burst":
            what = f"{obs:.0f} {channel if c < 6 else ''} invalidations in {minutes} min".replace(
                "  ", " "
            )
            if channel == "fast":
                what = f"{obs:.0f} invalidations within an hour of payment in {minutes} min"
            if exp < 0.05:
                summary = f"Publisher {pub}: {what} where almost none are normal."
            else:
                summary = f"Publisher {pub}: {what} where {exp:.1f} were expected ({ratio:.0f}x)."
        elif test == "sustained":
            label = "fast " if channel == "fast" else (f"{channel} " if c < 6 else "")
            if exp < 0.1:  # a ratio to almost nothing is not a number a person can use
                summary = (
                    f"Publisher {pub}: about {obs:.0f} {label}invalidations over the last "
                    f"~{minutes * 3} min where almost none are normal."
                )
            else:
                summary = (
                    f"Publisher {pub}: {label}invalidations running at {ratio:.1f}x normal "
                    f"over the last ~{minutes * 3} min (about {obs:.0f} vs {exp:.1f} "
                    f"expected, the latest minutes weighted most)."
                )
        elif test == "cusum":
            label = f"{channel} " if c < 6 else ""
            summary = (
                f"Publisher {pub}: sustained rise in {label}invalidations, {cus_exc:.0f} more "
                f"than expected over the last {cus_run * minutes / 60:.1f} h ({ratio:.1f}x)."
            )
        else:
            summary = f"Publisher {pub}: invalidations still elevated."
        evidence = {
            "test": test,
            "channel": channel,
            "observed": round(obs, 2),
            "expected": round(exp, 3),
            "score": round(score, 2),
            "thresholds": {
                "score": round(thr, 2),
                "min_excess": p.min_excess,
                "min_ratio": p.min_ratio,
                "cusum": p.cusum_threshold,
                "refund_cusum": p.refund_cusum_threshold,
            },
            "window_invalidations": vec[TOTAL],
            "window_expected": round(expected[TOTAL], 3),
            "fast_invalidations": fast,
            "orders": vec[ORDERS],
            "volume_factor": round(vf, 2),
            "reason_mix": reasons,
            "cusum": round(cus_total, 2),
        }
        # the reason carrying the excess: what a platform-wide finding must cover to explain it
        carrier = channel if channel in CHANNEL_NAMES[:6] else reason
        channels = {carrier} if carrier else set()
        return Finding(
            kind=Kind.PUBLISHER_SPIKE,
            scope=pub,
            firing=not sustain_only,
            sustain=True,
            score=score,
            severity=severity_for(score, thr, ratio),
            summary=summary,
            reason=reason,
            evidence=evidence,
            channels=tuple(sorted(channels)),
        )

    def _add(self, pubs: list[str], fresh: array) -> list[int]:
        """Rows for new publishers, each set to ``fresh`` (``_fresh_row``); returns their
        offsets. Free rows are reused first, the most recently freed first; the rest are
        appended. Whole-array passes: at a million publishers ~4,000 arrive a window, and
        one slice assignment and dict insert each took 0.5 s of a 2.5M-event run."""
        free, data = self.free, self.data
        reuse = min(len(pubs), len(free))
        cut = len(free) - reuse
        offs = free[cut:].tolist()[::-1]
        del free[cut:]
        if reuse:
            rows = np.frombuffer(data, dtype=np.float64).reshape(-1, _WIDTH)
            rows[np.array(offs, dtype=np.intp) // _WIDTH] = np.frombuffer(fresh, np.float64)
            del rows  # ``data`` cannot grow while a view of it exists
        start, more = len(data), len(pubs) - reuse
        if more:
            data.extend(fresh * more)
            offs.extend(range(start, start + more * _WIDTH, _WIDTH))
        self.state.update(zip(pubs, offs, strict=True))
        return offs

    def _drop(self, pubs: list[str]) -> None:
        state = self.state
        self.free.extend(map(state.pop, pubs))
        if not state:  # nothing tracked: give the rows back
            self.data, self.free = array("d"), array("q")

    def learn(self, ctx: WindowContext, findings: list[Finding]) -> None:
        w = ctx.acc.index
        if w - self.epoch >= _REBASE_EVERY:
            self._rebase(w)
        k = w - self.epoch
        sc_long, sc_short, sc_vol = self.g**-k, self.gs**-k, self.gv**-k
        sc_day = self.gd**-k
        sc_echo = self.ge**-k
        p = self.p
        results = ctx.publisher_results
        self.plat_os = self.plat_os * self.gv + ctx.platform[ORDERS]
        self.plat_o = self.plat_o * self.g + ctx.platform[ORDERS]
        self.plat_windows += 1
        serial = self._serial(w, ctx.acc.width)
        self._learn_platform_day(serial, ctx.platform[TOTAL])
        if self.first_window is None and ctx.acc.pubs:
            # the first window with publishers in it: empty windows before it close in a
            # stream (a partition's idle mark) and not in a replay
            self.first_window = w
        explained_pubs = ctx.explained
        win, self._window = self._window, None
        if win is None or win.pubs is not ctx.acc.pubs:
            raise RuntimeError("publisher_spike: learn() needs score() of the same window first")
        keys, vecs, offs = win.keys, win.vecs, win.offs
        if win.new:  # new publishers: rows first
            added = self._add([keys[i] for i in win.new], _fresh_row(w))
            for i, b in zip(win.new, added, strict=True):
                offs[i] = b
        d = self.data
        if offs:  # every publisher of the window: last seen, and its orders
            o = np.array(offs, dtype=np.intp)
            orders = np.fromiter(map(itemgetter(ORDERS), vecs), dtype=np.float64,
                                 count=len(vecs))  # fmt: skip
            rows = np.frombuffer(d, dtype=np.float64)  # a view: released below
            rows[o + _LAST] = w
            some = orders != 0
            o, orders = o[some], orders[some]
            rows[o + _O] += orders * sc_long
            rows[o + _OS] += orders * sc_vol
            del rows, o  # ``data`` cannot grow while a view of it exists
        # the tested publishers: CUSUM state, and the invalidations of those with any
        # (every publisher with invalidations is tested)
        for i in win.tested:
            pub, vec, b = keys[i], vecs[i], offs[i]
            x_total = vec[TOTAL]
            res = results.get(pub)
            if res is None:
                if not x_total:
                    continue
                protect = False
            else:
                protect = res["anomalous"]
                surge = res["echo_surge"]
                if p.refund_echo_surge and surge >= p.refund_echo_surge:
                    # a surge of its own orders: its refunds will follow (the larger of
                    # the one before, faded, and this one)
                    d[b + _ECHO] = max(d[b + _ECHO], (surge - 1.0) * sc_echo)
                for base, run in ((_CUS, res["cusum"]), (_RCUS, res["refund_cusum"])):
                    if run is None:
                        continue
                    # evidence already reported: the CUSUMs start afresh
                    cus, exc, exp, windows = _AT_REST if protect else run
                    d[b + base], d[b + base + _CUS_EXC], d[b + base + _CUS_EXP] = cus, exc, exp
                    d[b + base + _CUS_RUN], d[b + base + _CUS_LAST] = windows, w
                if not x_total:
                    continue
            explained = pub in explained_pubs
            if not explained:
                d[b + _XL] += x_total * sc_vol
            # the publisher's own time of day counts what the platform's does (a platform-
            # wide cause included), a spike of its own at most at a high-normal count
            last = int(d[b + _PT_SERIAL])
            if last != serial:
                if last >= 0:
                    d[b + _PT + last % _BUCKETS] += d[b + _PT_OPEN]
                d[b + _PT_OPEN], d[b + _PT_SERIAL] = 0.0, serial
            expected = res["expected"] if protect else None  # type: ignore[index]
            own_x = x_total if expected is None else _high_normal(x_total, expected[TOTAL])
            d[b + _PT_OPEN] += own_x * sc_day
            # any invalidation channel counts only with the total (reasons and fast are
            # parts of it)
            for c in range(CHANNELS):
                x = vec[c]
                if x:
                    # learn at most a high-normal count
                    capped = x if expected is None else _high_normal(x, expected[c])
                    # a platform-wide cause keeps its counts out of the short-term memory
                    # too, or the publisher would alert on it once the platform alert ends
                    d[b + _X + c] += (capped if explained else x) * sc_short
                    # protect the baseline: learn at most what was expected
                    d[b + _A + c] += capped * sc_long
        counts, shared, reported = win.cohort
        for i, n in enumerate(counts):
            if not shared[i]:  # the usual count learns from ordinary windows only
                self.cohort_usual[i] = self.cohort_usual[i] * self.g + n * (1.0 - self.g)
        self.shared += reported
        if self.p.recurring_days:
            for pub, c, x, recurring in win.spiked:
                self._remember(pub, c, x, recurring, w, ctx.acc.width)
                self.recurring += recurring
        if w % 288 == 0:
            self._forget(w)
        if len(self.state) > self.p.max_publishers:
            self._shrink()

    def _learn_platform_day(self, serial: int, x: float) -> None:
        """The platform's invalidations by part of the day; the part that is over joins it."""
        g = self.gd
        self.plat_day = [v * g for v in self.plat_day]
        if serial != self.plat_day_serial:
            if self.plat_day_serial >= 0:
                self.plat_day[self.plat_day_serial % _BUCKETS] += self.plat_day_open * g
            self.plat_day_open, self.plat_day_serial = 0.0, serial
        self.plat_day_open = self.plat_day_open * g + x

    def _rebase(self, w: int) -> None:
        """Rescale every row's decayed sums to epoch ``w``: whole columns of the rows at
        once (free rows too; ``_add`` overwrites them), where a Python loop over 200k
        publishers' 30 fields took 0.35 s a rebase."""
        shift = w - self.epoch
        fl, fs, fv, fd = self.g**shift, self.gs**shift, self.gv**shift, self.gd**shift
        if self.data:
            rows = np.frombuffer(self.data, dtype=np.float64).reshape(-1, _WIDTH)
            rows[:, _O] *= fl
            rows[:, _OS] *= fv
            rows[:, _XL] *= fv
            rows[:, _A : _A + CHANNELS] *= fl
            rows[:, _X : _X + CHANNELS] *= fs
            rows[:, _PT : _PT_OPEN + 1] *= fd
            rows[:, _ECHO] *= self.ge**shift
            del rows  # ``data`` cannot grow while a view of it exists
        self.epoch = w

    def _forget(self, w: int) -> None:
        horizon = w - self.p.forget_after_windows
        d = self.data
        stale = [pub for pub, b in self.state.items() if d[b + _LAST] < horizon]
        self._drop(stale)
        self.evicted += len(stale)

    def _shrink(self) -> None:
        """Over ``max_publishers`` (a flood of new ids): drop the least valuable publishers
        down to 80% of the cap, so the ranking (~30 ms at 200k here) runs once per 20% of
        the cap of newcomers.

        Value is the decayed order plus invalidation mass: it falls with idle time (the
        long half-life) and grows with volume, so a one-order id from a flood never pushes
        out a publisher with real history, and among equals the least recently seen goes
        first. What is lost is cheap to relearn: an evicted publisher comes back on the
        prior "a publisher of its size", which dominates small publishers' rates anyway.
        The scaled sums share one epoch, so they rank without rescaling; ties keep the
        dict's insertion order (checkpointed), so eviction is deterministic.
        """
        keep = int(self.p.max_publishers * _SHRINK_TO)
        state = self.state
        n = len(state) - keep
        # the n smallest by (value, last seen, insertion order) as whole-array passes over
        # the rows (numpy: ~30 ms at 200k where the same passes through Python lists took
        # ~150, the cost a flood of new ids paid once per 40k of them): each row's value
        # gathered in the dict's order, a partition for the cut-off value, the ties at it
        # by last seen (a stable sort keeps insertion order among equals)
        offs = np.fromiter(state.values(), dtype=np.intp, count=len(state))
        rows = np.frombuffer(self.data, dtype=np.float64)  # a view: released below
        vals = rows[offs + _O] + rows[offs + (_A + TOTAL)]
        cut = np.partition(vals, n - 1)[n - 1]
        victim = vals < cut
        need = n - int(np.count_nonzero(victim))
        if need:
            tied = np.flatnonzero(vals == cut)
            if need < len(tied):
                tied = tied[np.argsort(rows[offs[tied] + _LAST], kind="stable")]
            victim[tied[:need]] = True
        del rows  # ``data`` cannot grow while a view of it exists
        self._drop(list(compress(state, victim.tolist())))
        self.evicted += n
        self.evicted_cap += n

    def footprint_bytes(self) -> float:
        """Average bytes per tracked publisher: dict slot, row offset, state row (free rows
        included) and id string."""
        if not self.state:
            return 0.0
        sample = list(self.state.items())[:1000]
        per = sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in sample) / len(sample)
        rows = (sys.getsizeof(self.data) + sys.getsizeof(self.free)) / len(self.state)
        return sys.getsizeof(self.state) / len(self.state) + per + rows

    # -- read side (monitor.overview) -------------------------------------------------------
    def order_rate(self, pub: str) -> float:
        """Long-run orders per window of ``pub`` (0 if unknown)."""
        b = self.state.get(pub)
        if b is None:
            return 0.0
        d = self.data
        w = int(d[b + _LAST]) + 1
        age = w - d[b + _BIRTH]
        n = (1.0 - self.g**age) / (1.0 - self.g) if age > 0 else 0.0
        return d[b + _O] * self.g ** (w - 1 - self.epoch) / n if n > 0 else 0.0

    def largest(self, n: int) -> list[tuple[str, float]]:
        """The ``n`` publishers with the most (decayed) orders, with their order rate. The
        scaled sums share one epoch, so they rank without rescaling."""
        d = self.data
        top = heapq.nlargest(n, self.state.items(), key=lambda kv: d[kv[1] + _O])
        return [(pub, self.order_rate(pub)) for pub, _ in top]

    def snapshot(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "evicted": self.evicted,
            "evicted_cap": self.evicted_cap,
            "platform_orders": [self.plat_os, self.plat_o, self.plat_windows],
            "platform_day": [self.plat_day_serial, self.plat_day_open, self.plat_day],
            "recur": self.recur,
            "recurring": self.recurring,
            "cohort": [*self.cohort_usual, self.shared],
            "first_window": self.first_window,
            "state": {pub: self.data[b : b + _WIDTH].tolist() for pub, b in self.state.items()},
        }

    def restore(self, snap: dict[str, Any]) -> None:
        self._window = None
        self.epoch = snap["epoch"]
        self.evicted = snap["evicted"]
        self.evicted_cap = snap.get("evicted_cap", 0)  # absent before the cap existed
        self.plat_os, self.plat_o, self.plat_windows = snap["platform_orders"]
        # absent before the own time of day: no profile yet (publishers at 1 for a day)
        serial, open_, day = snap.get("platform_day", [-1, 0.0, [0.0] * _BUCKETS])
        self.plat_day_serial, self.plat_day_open, self.plat_day = serial, open_, list(day)
        # absent before the daily-pattern rule: nothing remembered
        self.recur = {pub: [list(ep) for ep in eps] for pub, eps in snap.get("recur", {}).items()}
        self.recurring = snap.get("recurring", 0)
        *usual, self.shared = snap.get("cohort", [0.0, 0.0, 0])  # absent before the rule
        self.cohort_usual = list(usual)
        # absent before the refund CUSUM: every publisher waits for the minimum age
        self.first_window = snap.get("first_window")
        rows = snap["state"]
        self.state = {pub: i * _WIDTH for i, pub in enumerate(rows)}
        self.data = array("d", [x for v in rows.values() for x in _upgrade_row(v)])
        self.free = array("q")


def _upgrade_row(v: list[float]) -> list[float]:
    """A snapshot's publisher row in the current layout: rows from before the refund CUSUM
    get it at rest, rows from before the own time of day an empty profile."""
    if len(v) == _WIDTH_V1:
        v = [*v, *_AT_REST[:3], v[_CUS + _CUS_LAST], 0.0]
    if len(v) == _WIDTH_V2:
        v = [*v, *[0.0] * (_BUCKETS + 1), -1.0]
    if len(v) == _WIDTH_V3:
        v = [*v, 0.0]
    if len(v) != _WIDTH:
        raise ValueError(f"publisher snapshot rows must have {_WIDTH} values each, got {len(v)}")
    return v


def _completed(parts: list[float], open_serial: int, open_value: float, serial: int) -> list:
    """A by-part-of-the-day profile with the part it holds open (``open_serial``, -1:
    none) counted in once ``serial`` has moved past it: the profile as of ``serial``."""
    if open_serial >= 0 and open_serial != serial:
        parts = list(parts)
        parts[open_serial % _BUCKETS] += open_value
    return parts


def _high_normal(x: float, e: float) -> float:
    """``x`` at most a high-normal count for an expectation ``e``: what an anomalous
    window teaches a baseline."""
    return min(x, e + 2.0 * math.sqrt(e) + 1.0)


def _under_way(run: tuple, threshold: float, ratio: float, min_excess: float) -> bool:
    """A CUSUM run half-way to firing: half the threshold and excess, at the ratio."""
    cus, exc, exp, _ = run
    return cus >= threshold / 2 and exc >= min_excess / 2 and exc + exp >= ratio * exp


def _as_shared(f: Finding, n: int) -> Finding:
    """A firing CUSUM finding that many publishers share: reported, not raised."""
    summary = (
        f"{f.summary} Not raised: {n} publishers' {f.evidence.get('channel')} invalidations "
        f"are rising together (a region's office hours not learned yet, or a shared cause)."
    )
    evidence = dict(f.evidence)
    evidence["shared_with"] = n
    return dataclasses.replace(f, firing=False, summary=summary, evidence=evidence)


def _carrier(f: Finding) -> int:
    """The channel carrying a publisher finding's excess: its reason, else the total."""
    return CHANNEL_NAMES.index(f.channels[0]) if f.channels else TOTAL


def _as_recurring(f: Finding, x: int, prior: tuple, width: int) -> Finding:
    """A firing finding recognised as a daily pattern: it sustains an open alert of the
    publisher, opens none, and says why."""
    days, ep = prior
    channel = CHANNEL_NAMES[ep[2]]
    at = iso(ep[0] * width)
    summary = (
        f"Publisher {f.scope}: {x} {channel} invalidations at the time of day of a spike "
        f"{days} day{'s' if days > 1 else ''} before (from {at}, peak {ep[3]} a window): a "
        f"daily pattern such as a merchant's refund batch, not raised again."
    )
    evidence = dict(f.evidence)
    evidence["recurring"] = {"days_before": days, "since": at, "peak": ep[3],
                             "channel": channel}  # fmt: skip
    return dataclasses.replace(f, firing=False, summary=summary, evidence=evidence)


def _fresh_row(w: int) -> array:
    """The state of a publisher not seen before window ``w`` (not stored)."""
    st = array("d", _EMPTY_ROW)
    st[_BIRTH] = w
    st[_LAST] = w - 1
    st[_CUS + _CUS_LAST] = st[_RCUS + _CUS_LAST] = w - 1
    st[_PT_SERIAL] = -1
    return st
