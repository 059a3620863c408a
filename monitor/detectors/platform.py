"""Platform-wide view: the baseline every detector shares, ``platform_spike`` and ``reason_shift``.

``PlatformBaseline`` keeps, across windows: a seasonal forecast of platform invalidations
normalised by order volume, a seasonal forecast of orders (for the volume factor that
keeps a promotion from looking like an incident), the reason mix and invalidations per
order. It fills the window context before the publisher detector scores.

``platform_spike`` fires when the platform total is well above its volume-adjusted
seasonal forecast *and* the excess is broad: spread over many publishers, no one of them
holding most of it. A single big publisher's fraud burst moves the total too; it is the
publisher detector's to report, not this one's.

``reason_shift`` fires when the mix of reasons departs from the learned mix (G-test) by a
clear total variation distance while the total is not spiking, again only when broad: a
producer that maps every reason to ``other`` is a data problem, not a fraud wave. The
learned mix is the all-day one and, once there are earlier days, that of the window's hour
of the day (refunds are processed in office hours): a shift must depart from both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from monitor.detectors.base import Finding, GuardedSeries, WindowContext
from monitor.detectors.publisher import CHANNEL_NAMES
from monitor.model import REASONS, Kind, Severity
from monitor.series import SeasonalDetector
from monitor.stats import chi2_score, nb_upper_score, normal_upper_score
from monitor.windows import CHANNELS, ORDERS, TOTAL


@dataclass(frozen=True, slots=True)
class PlatformParams:
    period_windows: int = 288  # one day of 5-min windows
    halflife_windows: float = 288.0  # reason mix and per-order ratios
    short_halflife_windows: float = 3.0  # the 15-minute sums of small platforms
    volume_halflife_windows: float = 12.0  # promotions: orders over the last ~hour
    surge_ratio: float = 1.3  # orders this far above forecast are a surge, not learned
    dispersion: float = 30.0  # negative binomial size of platform totals
    spike_score: float = 6.0  # -log10 p of the total, or of the reason carrying the rise
    spike_total_score: float = 3.0  # the total itself must be at least this significant
    spike_min_ratio: float = 1.4  # platform total / volume-adjusted forecast to fire
    spike_min_excess: float = 20.0  # extra invalidations per window to fire
    sustain_ratio: float = 1.15  # keeps an open platform alert open
    min_publishers: int = 5  # distinct publishers sharing the excess
    max_top_share: float = 0.5  # largest single publisher's share of the excess
    max_top3_share: float = 0.8  # three largest publishers' share of the excess
    shift_score: float = 8.0  # -log10 p of the G-test on the reason mix to fire
    shift_min_tvd: float = 0.15  # total variation distance from the usual mix
    shift_min_invalidations: int = 30  # invalidations needed to judge a mix
    shift_max_total_ratio: float = 1.3  # above this raw total ratio a mix change is no shift
    shift_max_volume_factor: float = 1.2  # nor during an order surge (promotion)
    relabel_rest_ratio: float = 0.75  # other reasons below this share of normal: relabelling
    prior_mix: tuple[float, ...] = (0.55, 0.3, 0.04, 0.03, 0.005, 0.075)  # start mix
    # the reason mix by hour of the day: merchants process refunds in office hours, fraud
    # reviews run in nightly batches, so the mix at 09:00 is not the day's mix. A reason
    # shift must depart from both the all-day mix and this hour's mix (the one it is
    # nearer to is the reference): a time-of-day pattern departs from the first only, the
    # rest of an hour that holds a daily batch in its first minutes from the second only.
    # An hour's counts join its profile when the hour is over (so a shift within the hour
    # is judged against earlier days, not against its own first minutes), decay by the day
    # (half weight after this many days) and are blended with the all-day mix as this many
    # pseudo-invalidations, so that on the first day the hour's mix is the all-day mix
    hour_halflife_days: float = 3.0
    hour_prior_weight: float = 200.0


class PlatformBaseline:
    def __init__(self, params: PlatformParams | None = None) -> None:
        self.p = p = params or PlatformParams()
        self.g = 2.0 ** (-1.0 / p.halflife_windows)
        self.gs = 2.0 ** (-1.0 / p.short_halflife_windows)
        self.gv = 2.0 ** (-1.0 / p.volume_halflife_windows)
        self.inv_guard = GuardedSeries(SeasonalDetector(p.period_windows, counts=True))
        self.orders_guard = GuardedSeries(SeasonalDetector(p.period_windows, counts=True))
        self.sums = [0.0] * (CHANNELS + 1)  # decayed channel sums, then orders
        self.windows = 0.0  # decayed window count
        self.gh = 2.0 ** (-1.0 / p.hour_halflife_days)
        self.hour_sums = [[0.0] * 6 for _ in range(24)]  # decayed reason counts by hour
        self.hour_open = [0.0] * 6  # the current hour's counts, not in hour_sums yet
        self.hour_serial = -1  # which hour (since the epoch) hour_open holds
        self.cur_mix = self.day_mix()
        self.cur_hour_mix = self.cur_mix
        self.season_short = 0.0
        self.orders_short = 0.0
        self.orders_short_expected = 0.0
        # filled by prepare() for the window being closed
        self.vf = 1.0
        self.expected_total = 0.0
        self.forecast_norm = 0.0
        self.z_total = 0.0
        # ~15-minute exponentially weighted sums: a small platform has too few
        # invalidations per window for one window to carry a verdict
        self.ew_counts = [0.0] * CHANNELS
        self.ew_expected = 0.0
        self.ew_forecast = 0.0

    @property
    def inv(self) -> SeasonalDetector:
        return self.inv_guard.series

    @property
    def orders(self) -> SeasonalDetector:
        return self.orders_guard.series

    def prepare(self, ctx: WindowContext) -> None:
        p = self.p
        serial = ctx.acc.index * 24 // p.period_windows
        if serial != self.hour_serial:
            self._fold_hour()
            self.hour_serial = serial
        self.cur_mix = self.day_mix()
        self.cur_hour_mix = self._hour_mix()
        po = ctx.platform[ORDERS]
        o_fc = self.orders.score_one(po).expected if self.orders.warm else po
        o_short = self.orders_short * self.gv + po
        o_short_exp = self.orders_short_expected * self.gv + max(o_fc, 0.0)
        self.vf = max(1.0, (o_short + 20.0) / (o_short_exp + 20.0)) if self.orders.warm else 1.0
        sc = self.inv.score_one(ctx.platform[TOTAL] / self.vf)
        self.forecast_norm = sc.expected if self.inv.warm else self._mean_total()
        # the series' own standardised residual: its learned noise, not an assumed one
        self.z_total = sc.z if self.inv.warm else 0.0
        mean = self._mean_total()
        season = self.forecast_norm / mean if mean > 0 and self.inv.warm else 1.0
        ctx.season = min(max(season, 0.05), 20.0)
        ctx.season_short = self.season_short * self.gs + ctx.season
        self.expected_total = max(self.forecast_norm, 0.0) * self.vf
        ctx.volume_factor = self.vf
        orders = self.sums[CHANNELS]
        prior = [*p.prior_mix, 0.3, 1.0]  # reasons, fast, total (per total invalidation)
        per_order_total = (self.sums[TOTAL] + 10.0) / (orders + 100.0)
        ctx.order_ratio = tuple(
            (self.sums[c] + prior[c] * 10.0) / (self.sums[TOTAL] + 10.0) * per_order_total
            for c in range(CHANNELS)
        )

    def _mean_total(self) -> float:
        return self.sums[TOTAL] / self.windows if self.windows > 0 else 0.0

    def day_mix(self) -> list[float]:
        """The reason mix over all hours (decayed), starting from ``prior_mix``."""
        tot = sum(self.sums[:6])
        prior = self.p.prior_mix
        return [(self.sums[i] + 20.0 * prior[i]) / (tot + 20.0) for i in range(6)]

    def _fold_hour(self) -> None:
        """The hour that ``hour_open`` holds is over: into its profile."""
        if self.hour_serial >= 0:
            prof = self.hour_sums[self.hour_serial % 24]
            for i in range(6):
                prof[i] = prof[i] * self.gh + self.hour_open[i]
        self.hour_open = [0.0] * 6

    def _hour_mix(self) -> list[float]:
        day = self.cur_mix
        counts = self.hour_sums[self.hour_serial % 24]
        k = self.p.hour_prior_weight
        tot = sum(counts) + k
        return [(counts[i] + k * day[i]) / tot for i in range(6)]

    def mix(self) -> list[float]:
        """The usual reason mix (all day, as of the window being closed)."""
        return self.cur_mix

    def hour_mix(self) -> list[float]:
        """The usual reason mix at the closing window's hour of the day."""
        return self.cur_hour_mix

    def ew_now(self, ctx: WindowContext) -> tuple[list[float], float, float]:
        """EW sums including the window being closed: (counts per channel, expected, forecast)."""
        gs = self.gs
        counts = [self.ew_counts[c] * gs + ctx.platform[c] for c in range(CHANNELS)]
        return (
            counts,
            self.ew_expected * gs + max(self.expected_total, 0.0),
            self.ew_forecast * gs + max(self.forecast_norm, 0.0),
        )

    def learn(self, ctx: WindowContext, spike: bool, shift: bool) -> None:
        p = self.p
        plat = ctx.platform
        self.ew_counts, self.ew_expected, self.ew_forecast = self.ew_now(ctx)
        self.orders_short = self.orders_short * self.gv + plat[ORDERS]
        po = plat[ORDERS]
        o_fc = self.orders.score_one(po).expected if self.orders.warm else po
        self.orders_short_expected = self.orders_short_expected * self.gv + max(o_fc, 0.0)
        # a surge of orders (a promotion) must not become the expected volume, or the
        # volume factor falls back to 1 while the promotion is still running. Only once
        # there is a daily profile: on the first day the forecast is a level tracker, and
        # the morning's rise to the daily peak (5-10x the night's orders) is a "surge" to
        # it; held out, the forecast stalled at the night's level, the volume factor
        # climbed to 5-7x, and the first day's invalidations were learned at a fifth of
        # their real level, a false platform alert every morning after
        surge = self.orders.season is not None and po > p.surge_ratio * max(o_fc, 1.0)
        self.orders_guard.learn(po, self.orders.warm and surge)
        self.inv_guard.learn(plat[TOTAL] / self.vf, spike)
        self.season_short = ctx.season_short
        g = self.g
        self.windows = self.windows * g + 1.0
        mix = self.cur_mix
        for c in range(CHANNELS + 1):
            x = float(plat[c] if c < CHANNELS else plat[ORDERS])
            if spike and c < CHANNELS:
                x = min(x, self.expected_total * (self.sums[c] + 1) / (self.sums[TOTAL] + 1))
            if c < 6:
                # the hour's profile learns the mix as it was, even while a shift fires: a
                # false shift on the first day must not teach the next day's same hour the
                # mix it departed from (a real one that lasts is kept open by the all-day
                # mix, which does not learn it)
                self.hour_open[c] += x
            if shift and c < 6:
                x = plat[TOTAL] * mix[c]
            self.sums[c] = self.sums[c] * g + x

    def snapshot(self) -> dict[str, Any]:
        return {
            "inv": self.inv_guard.snapshot(),
            "orders": self.orders_guard.snapshot(),
            "sums": self.sums,
            "windows": self.windows,
            "season_short": self.season_short,
            "orders_short": self.orders_short,
            "orders_short_expected": self.orders_short_expected,
            "ew": [*self.ew_counts, self.ew_expected, self.ew_forecast],
            "hours": [self.hour_serial, self.hour_open, self.hour_sums],
        }

    def restore(self, snap: dict[str, Any]) -> None:
        self.inv_guard.restore(snap["inv"])
        self.orders_guard.restore(snap["orders"])
        self.sums = list(snap["sums"])
        self.windows = snap["windows"]
        self.season_short = snap["season_short"]
        self.orders_short = snap["orders_short"]
        self.orders_short_expected = snap["orders_short_expected"]
        *self.ew_counts, self.ew_expected, self.ew_forecast = snap["ew"]
        # a snapshot from before the hourly mix: every hour starts at the all-day mix
        blank = [-1, [0.0] * 6, [[0.0] * 6] * 24]
        self.hour_serial, hour_open, hour_sums = snap.get("hours", blank)
        self.hour_open = list(hour_open)
        self.hour_sums = [list(h) for h in hour_sums]


def excess_spread(ctx: WindowContext, channel: int) -> tuple[float, int, float, float, list]:
    """How the excess in one channel is spread over publishers.

    Returns (total positive excess, contributors, top-1 share, top-3 share, top publishers).
    """
    parts = []
    for pub, res in ctx.publisher_results.items():
        x = ctx.acc.pubs[pub][channel]
        ex = x - res["expected"][channel]
        if ex > 0.5:
            parts.append((ex, pub))
    parts.sort(reverse=True)
    total = sum(e for e, _ in parts)
    if total <= 0:
        return 0.0, 0, 1.0, 1.0, []
    top1 = parts[0][0] / total
    top3 = sum(e for e, _ in parts[:3]) / total
    return total, len(parts), top1, top3, parts


class PlatformSpike:
    """``platform_spike`` and ``reason_shift`` over the shared baseline."""

    name = "platform"

    def __init__(self, baseline: PlatformBaseline) -> None:
        self.base = baseline
        self.p = baseline.p

    def _broad(self, spread: tuple) -> bool:
        _, n, top1, top3, _ = spread
        p = self.p
        return n >= p.min_publishers and top1 <= p.max_top_share and top3 <= p.max_top3_share

    def score(self, ctx: WindowContext) -> list[Finding]:
        p, base = self.p, self.base
        x = ctx.platform[TOTAL]
        e = base.expected_total
        if not base.inv.warm or e <= 0:
            return []
        findings: list[Finding] = []
        ratio = x / e
        mix = base.mix()
        reason_excess = [ctx.platform[i] - e * mix[i] for i in range(6)]
        dom = max(range(6), key=lambda i: reason_excess[i])
        # the total, or the reason carrying the rise (far more power when a rare reason
        # such as data_anomaly floods in), must be significant
        s_total = max(nb_upper_score(x, e, p.dispersion), normal_upper_score(base.z_total))
        s = max(s_total, nb_upper_score(ctx.platform[dom], e * mix[dom], p.dispersion))
        spread_total = excess_spread(ctx, TOTAL)
        broad = self._broad(spread_total)
        ew, ew_e, ew_fc = base.ew_now(ctx)
        # A relabelling moves invalidations *out of* the other reasons into one; a glitch
        # adds them on top. With the carrying reason set aside, the rest fall well short of
        # their expectation only in the first case: that is reason_shift, not a spike.
        rest_expected = ew_e * (1.0 - mix[dom])
        rest_ratio = (ew[TOTAL] - ew[dom]) / rest_expected if rest_expected > 0 else 1.0
        relabel = rest_ratio < p.relabel_rest_ratio
        firing = (
            not relabel
            and s >= p.spike_score
            and s_total >= p.spike_total_score
            and ratio >= p.spike_min_ratio
            and x - e >= p.spike_min_excess
            and broad
        )
        # the same over the last ~15 minutes (an EW sum is less variable than a Poisson
        # count of the same mean, so its Poisson tail is conservative)
        # Over a small platform one window is too few invalidations: the same test on the
        # ~15-minute EW sums (less variable than a Poisson count of the same mean, so its
        # Poisson tail is conservative). A forecast that is merely off scales every reason
        # alike; a glitch floods one: this path needs the carrying reason's share doubled.
        ew_fired = False
        if ew_e > 0 and not firing and not relabel:
            ew_ratio = ew[TOTAL] / ew_e
            ew_s_total = nb_upper_score(ew[TOTAL], ew_e)
            ew_s_dom = nb_upper_score(ew[dom], ew_e * mix[dom])
            firing = (
                ew_s_dom >= p.spike_score
                and ew_s_total >= p.spike_total_score
                and ew[dom] >= 2.0 * mix[dom] * ew[TOTAL]
                and ew_ratio >= p.spike_min_ratio
                and ew[TOTAL] - ew_e >= p.spike_min_excess
                and ratio >= p.sustain_ratio
                and broad
            )
            s = max(s, ew_s_dom) if firing else s
            ew_fired = firing
        sustain = ratio >= p.sustain_ratio and s >= 2.0 and broad and not relabel
        if firing or sustain:
            ew_sums = (ew[TOTAL], ew_e) if ew_fired else None
            findings.append(
                self._spike(ctx, x, e, s, ratio, mix, dom, spread_total, firing, ew_sums)
            )
            return findings
        # a mix that shifts while the raw total rises is a promotion (more fast cancels) or
        # a spike, not a relabelling: reason_shift is for totals that stay put
        # and an order surge (a promotion) brings more quick cancels: no relabelling either
        raw_ratio = ew[TOTAL] / ew_fc if ew_fc > 0 else 1.0
        calm = (relabel or raw_ratio < p.shift_max_total_ratio) and (
            base.vf < p.shift_max_volume_factor
        )
        # the window's own reason counts when it has enough of them; a small platform's
        # window has too few, and then the ~15-minute EW counts carry the test
        window = [float(v) for v in ctx.platform[:6]]
        counts = window if sum(window) >= p.shift_min_invalidations else ew[:6]
        shift = self._shift(ctx, mix, base.hour_mix(), counts) if calm else None
        if shift is not None:
            findings.append(shift)
        return findings

    def _spike(self, ctx, x, e, s, ratio, mix, dom, spread, firing, ew_sums=None) -> Finding:
        """``ew_sums`` (observed, expected): it fired on the ~15-minute sums, whose figures
        are then the evidence (the window's own may be below the thresholds)."""
        p = self.p
        reason = REASONS[dom].value
        total_excess, n, top1, _, parts = spread
        minutes = ctx.acc.width // 60
        if ew_sums is None:
            test, obs, exp = "window", x, e
            what = f"{x} in {minutes} min"
        else:
            test, (obs, exp) = "sustained", ew_sums
            what = (
                f"about {obs:.0f} over the last ~{minutes * 3} min (the latest minutes "
                f"weighted most)"
            )
        summary = (
            f"Platform-wide rise in invalidations: {what} where {exp:.0f} were expected "
            f"({obs / exp:.1f}x), spread over {n} publishers; the largest rise is in `{reason}`."
        )
        evidence = {
            "test": test,
            "observed": round(obs, 1),
            "expected": round(exp, 1),
            "score": round(s, 2),
            "ratio": round(obs / exp, 2),
            "window_observed": x,
            "window_expected": round(e, 1),
            "thresholds": {
                "score": p.spike_score,
                "min_ratio": p.spike_min_ratio,
                "min_excess": p.spike_min_excess,
                "min_publishers": p.min_publishers,
                "max_top_share": p.max_top_share,
            },
            "reason_mix": {REASONS[i].value: ctx.platform[i] for i in range(6)},
            "expected_mix": {REASONS[i].value: round(mix[i], 3) for i in range(6)},
            "publishers_with_excess": n,
            "top_publisher_share": round(top1, 3),
            "volume_factor": round(self.base.vf, 2),
        }
        severity = Severity.CRITICAL if ratio >= 2.5 else Severity.WARNING
        channels = tuple(
            REASONS[i].value for i in range(6) if ctx.platform[i] - e * mix[i] > 0.2 * (x - e)
        )
        return Finding(
            Kind.PLATFORM_SPIKE,
            None,
            firing,
            True,
            s,
            severity,
            summary,
            reason,
            evidence,
            channels + ("fast", "total"),
        )

    def _shift(
        self, ctx: WindowContext, day: list[float], hour: list[float], counts: list[float]
    ) -> Finding | None:
        """G-test of reason counts against the usual mix of the day and of the hour.

        To fire, the counts must depart from both (the nearer one is reported); an open
        alert is kept while they depart from the all-day mix, so that a relabelling that
        lasts into an hour whose usual mix happens to be nearer does not end it early."""
        p = self.p
        n = sum(counts)
        if n < p.shift_min_invalidations:
            return None
        s, tvd = self._g_test(counts, n, day)
        mix = day
        sustain = s >= p.shift_score / 2 and tvd >= p.shift_min_tvd / 2
        firing = s >= p.shift_score and tvd >= p.shift_min_tvd
        if firing:
            s_hour, tvd_hour = self._g_test(counts, n, hour)
            if s_hour < s:
                s, tvd, mix = s_hour, tvd_hour, hour
                firing = s >= p.shift_score and tvd >= p.shift_min_tvd
        if not (firing or sustain):
            return None
        rising = max(range(6), key=lambda i: counts[i] / n - mix[i])
        spread = excess_spread(ctx, rising)
        if not self._broad(spread):
            return None
        reason = REASONS[rising].value
        share_now = counts[rising] / n
        summary = (
            f"The mix of invalidation reasons changed: `{reason}` is {share_now:.0%} of "
            f"invalidations where {mix[rising]:.0%} is normal (total unchanged) - check the "
            f"producers' reason mapping."
        )
        evidence = {
            "observed_mix": {REASONS[i].value: round(counts[i], 1) for i in range(6)},
            "window_mix": {REASONS[i].value: ctx.platform[i] for i in range(6)},
            "expected_mix": {REASONS[i].value: round(mix[i], 3) for i in range(6)},
            "observed": round(counts[rising], 1),
            "expected": round(n * mix[rising], 1),
            "score": round(s, 2),
            "total_variation": round(tvd, 3),
            "thresholds": {"score": p.shift_score, "min_tvd": p.shift_min_tvd},
            "publishers_with_excess": spread[1],
        }
        return Finding(
            Kind.REASON_SHIFT,
            None,
            firing,
            True,
            s,
            Severity.WARNING,
            summary,
            reason,
            evidence,
            (reason,),
        )

    @staticmethod
    def _g_test(counts: list[float], n: float, mix: list[float]) -> tuple[float, float]:
        """(-log10 p of the G-test, total variation distance) of ``counts`` against ``mix``."""
        g = 0.0
        tvd = 0.0
        for i in range(6):
            if counts[i] > 0:
                g += 2.0 * counts[i] * math.log(counts[i] / (n * mix[i]))
            tvd += abs(counts[i] / n - mix[i])
        return chi2_score(g, 5), tvd / 2

    def learn(self, ctx: WindowContext, findings: list[Finding]) -> None:
        # firing findings, and abrupt ones (already past the firing ratio), are kept out of
        # the baseline; a gradual bump that merely sustains (a recurring night-time rise)
        # must be learned, or it is a false spike every night
        min_ratio = self.p.spike_min_ratio
        spike = any(
            f.kind is Kind.PLATFORM_SPIKE
            and (f.firing or f.evidence["ratio"] >= min_ratio)
            and "recurring" not in f.evidence  # a daily pattern is learned
            for f in findings
        )
        shift = any(f.kind is Kind.REASON_SHIFT and f.firing for f in findings)
        self.base.learn(ctx, spike, shift)

    def snapshot(self) -> dict[str, Any]:
        return self.base.snapshot()

    def restore(self, snap: dict[str, Any]) -> None:
        self.base.restore(snap)


__all__ = ["PlatformBaseline", "PlatformParams", "PlatformSpike", "CHANNEL_NAMES"]
