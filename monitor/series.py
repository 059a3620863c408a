"""Causal detector of spikes, drops and level shifts on one seasonal series.

``SeasonalDetector`` follows the River protocol of ``monitor/``: ``score_one`` reads the
state and never changes it, ``learn_one`` changes it, ``update`` does both (computing
the forecast once). The core feeds it platform counts per 5-minute window; the
``detect-series`` command feeds it any exported metric through ``SeriesAutoDetector``.

Model: a robust, online Holt-Winters, chosen because every step is O(1) (about 3 us per
``update``), the state is a few numbers plus one profile, and each part is explainable
in an alert's evidence (expected value, band, z).

- Forecast: ``level * season[phase]`` for counts (a busy hour multiplies volume), or
  ``level + season[phase]`` for other values, on ``log(x)`` when ``multiplicative``.
  Each phase of the profile is an EWMA across periods (``season_rate``); the profile is
  renormalised every period. ``weekly=7`` adds a day-of-week deviation per 15-minute
  bucket: recorded raw over the first week after the daily profile exists (the first
  weekend looks like a level shift, so it must not go through the anomaly protection),
  then an EWMA across weeks.
- First period: there is no profile yet, so a fast damped Holt level + trend tracks the
  daily cycle, and the scale is the larger of the long-run one and 1.25 x a short EWMA
  of recent residuals (a ramp of the cycle widens the band while it lasts): a cold start
  raises no false alarms on the first day (0.02 % on Poisson counts, 5-minute windows,
  night at 20 % of peak). When the period closes, the profile is initialised from its
  raw values (gaps interpolated, median of 5 to drop short spikes, moving average).
- Noise: for counts, the Poisson signed deviance residual (lower tail continuity
  correction 0.3: within 0.1 of the exact mid-p z down to a mean of 0.3), divided by
  ``sqrt(1 + phi**2 * mu)`` (negative binomial, variance ``mu + (phi * mu)**2``) and by
  a learned dispersion that never goes below 1: the count model is a floor. Otherwise a
  robust scale: EWMA of Huber-clipped absolute residuals, never below the rounding error
  of the data (``resolution``).
- Score: ``1 / (1 + (threshold_z / |z|)**6)``, log-logistic in |z|: 0.5 at
  ``threshold_z``, 0.15 at 3/4 of it, 0.85 at 4/3 of it; exactly 0.0 during ``grace``.
  ``z`` is the point residual or, when larger, an EWMA of recent clipped residuals
  standardised by its own learned spread and halved (a sustained 3-sigma shift fires
  after a few steps; it mostly ranks moderate shifts above noise).
- Protection (River's ``protect_anomaly_detector``): a point scored anomalous, or passed
  ``anomalous=True``, does not move the level or the scale; the profile learns it
  clipped to ``clip_z`` (so a recurring pattern is never frozen out). Flagged points
  form an episode (ended by ``adapt_after // 2`` normal steps in a row); at
  ``adapt_after`` flagged points the episode is accepted: the level jumps to the
  episode's level and the scale widens to its spread if larger. So a spike or a one-hour
  drop stays anomalous, a persistent shift (or a promotion, which the detector cannot
  tell from an incident: the core decides) is flagged for ``adapt_after`` steps and
  then is the new normal, and a return to the old level within three periods is normal.
- Gaps: ``skip(n)`` advances the phase over ``n`` missing steps.

All hyper-parameters are in steps, with defaults derived from ``period``; ``snapshot``
is a JSON-able dict and ``restore(snapshot)`` continues identically.

Examples
--------
>>> import random
>>> rng = random.Random(7)
>>> det = SeasonalDetector(period=24, grace=12)
>>> for i in range(24 * 5):
...     _ = det.update(100 + 20 * ((i % 24) >= 12) + rng.gauss(0, 2))
>>> det.score_one(101).score < 0.5, det.score_one(140).score >= 0.5
(True, True)
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import inspect
import math
import statistics
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

_SIGMA_PER_ABSDEV = 1.2533  # sigma / E|e| for Gaussian e
_BOOT_ALPHA, _BOOT_BETA, _DAMP = 0.5, 0.1, 0.95  # first-period level/trend tracker
_BOOT_LOCAL, _BOOT_LOCAL_RATE = 1.25, 0.3  # first period: x local residual EWMA
_MU_FLOOR = 0.01  # counts: smallest expected value used in the residual
_EZ_DIV = 2.0  # the sustained-shift statistic needs twice the evidence of one point
_QUIET_DIV = 2  # an episode ends after adapt_after // 2 normal steps in a row
_BUCKETS_PER_DAY = 96  # day-of-week deviation: 15-minute buckets of a daily period
_QUANT_SD = 12**-0.5  # sd of the rounding error of values quantised at resolution 1


@dataclass(slots=True)
class SeriesScore:
    """One point's verdict, with the evidence an alert carries."""

    expected: float  # forecast for this point
    lower: float  # band at the firing threshold (approximate for counts)
    upper: float
    z: float  # signed standardised residual (or sustained-shift statistic, if larger)
    score: float  # in [0, 1]; >= 0.5 means anomalous; 0.0 in warm-up
    direction: int  # +1 above, -1 below, 0 normal


def _exp(v: float) -> float:
    return math.exp(v if v < 700.0 else 700.0)


def _rate(halflife: float) -> float:
    return 1.0 - 0.5 ** (1.0 / max(halflife, 1e-9))


class SeasonalDetector:
    """Online seasonal anomaly detector for one series (see the module docstring).

    Parameters
    ----------
    period : steps per season (288 = one day of 5-min windows); None for no seasonality.
    counts : values are event counts (Poisson/NB residuals, multiplicative seasonality).
    multiplicative : seasonal factors rather than offsets (default: ``counts``); for
        non-count values this models ``log(x)`` additively (values must be positive).
    weekly : 7 to add a day-of-week deviation to a daily ``period`` (0: none), learned
        per ``period // 96`` steps (15 minutes of a day) bucket.
    grace : warm-up steps scored 0.0.
    threshold_z : |z| at which the score is 0.5.
    adapt_after : flagged steps after which a persistent shift becomes the new normal
        (default: 2 h of a daily period, ``period // 12``, at least 6; 24 without period).
    level_halflife : half-life in steps of the deseasonalised level once the profile is
        known (default: 2 h of a daily period, ``period / 12``, at least 3; 12 without).
    season_rate : per-period EWMA rate of each phase of the profile.
    weekly_rate : per-week EWMA rate of each bucket of the day-of-week deviation.
    scale_halflife : half-life in steps of the residual scale (default ``period / 2``).
    phi : counts: negative-binomial overdispersion floor, var >= mu + (phi * mu) ** 2.
    clip_z : Huber clipping of learned residuals, in z units.
    boot_clip_z : the same during the first period (no profile yet).
    smooth : half-width in steps of the moving average that initialises the profile.
    """

    def __init__(
        self,
        period: int | None = 288,
        *,
        counts: bool = False,
        multiplicative: bool | None = None,
        weekly: int = 0,
        grace: int | None = None,
        threshold_z: float = 4.0,
        adapt_after: int | None = None,
        level_halflife: float | None = None,
        season_rate: float = 0.15,
        weekly_rate: float = 0.35,
        scale_halflife: float | None = None,
        phi: float = 0.05,
        clip_z: float = 3.0,
        boot_clip_z: float = 8.0,
        smooth: int | None = None,
        sustain_rate: float = 0.15,
        resolution: float = 0.0,
    ) -> None:
        p = int(period) if period and period > 1 else None
        self.period = p
        self.counts = bool(counts)
        self.multiplicative = self.counts if multiplicative is None else bool(multiplicative)
        self.weekly = int(weekly) if p and weekly and weekly > 1 else 0
        self.grace = max(int(24 if grace is None else grace), 1)
        self.threshold_z = float(threshold_z)
        self.adapt_after = int(adapt_after or (max(6, p // 12) if p else 24))
        self.level_halflife = float(level_halflife or (max(3.0, p / 12) if p else 12.0))
        self.season_rate = float(season_rate)
        self.weekly_rate = float(weekly_rate)
        self.scale_halflife = float(scale_halflife or (max(48.0, p / 2) if p else 48.0))
        self.phi = float(phi)
        self.clip_z = float(clip_z)
        self.boot_clip_z = float(boot_clip_z)
        self.smooth = int(smooth or (max(1, p // 96) if p else 1))
        self.sustain_rate = float(sustain_rate)
        self.resolution = float(resolution)
        lam = self.sustain_rate
        self._var_e0 = lam / (2.0 - lam) if lam > 0.0 else 1.0  # var of EWMA of iid N(0,1)
        self._a_level = _rate(self.level_halflife)
        self._a_scale = _rate(self.scale_halflife)
        self._quiet_max = max(3, self.adapt_after // _QUIET_DIV)
        self._alt_life = max(3 * (p or 0), 4 * self.adapt_after)
        self._mul = self.counts and self.multiplicative  # seasonal factors on raw counts
        self._log = self.multiplicative and not self.counts  # floats: additive on log(x)
        self._unit_floor = 1e-9 if self._log else max(1e-9, _QUANT_SD * self.resolution)
        if self.counts:  # never less dispersed than Poisson
            self._unit_floor = 1.0
        self._bucket = max(1, (p or 24) // _BUCKETS_PER_DAY)
        self._g_week = 1.0 - (1.0 - self.weekly_rate) ** (1.0 / self._bucket)
        # state
        self.n = 0  # steps seen (learned or skipped)
        self.phase = 0  # phase of the next point in the period, and in the week
        self.wphase = 0
        self.level = 0.0
        self.trend = 0.0
        self.absdev = 0.8 if self.counts else 0.0  # EWMA |residual| (counts: dispersion)
        self.boot_dev = 0.0  # first period: short EWMA |residual| (ramps of the cycle)
        self.season: list[float] | None = None
        self.week: list[float] | None = None  # day-of-week deviation per bucket
        self.wsum: list[float] | None = None  # first week after the profile: raw sums
        self.wcnt: list[int] | None = None
        self.wstart = 0
        self.first: list[float | None] | None = [None] * p if p else None  # first period
        self.ep_flagged = 0  # episode of anomalies: flagged points, normal streak,
        self.ep_quiet = 0  # recent level and spread
        self.ep_level = 0.0
        self.ep_dev = 0.0
        self.alt_level: float | None = None  # level before the last accepted shift
        self.alt_until = 0
        self.ez = 0.0  # EWMA of clipped z (sustained shifts) and its calibrated variance
        self.ez_var = self._var_e0

    @property
    def warm(self) -> bool:
        return self.n >= self.grace

    # -- model -------------------------------------------------------------------------
    def _seas(self) -> float:
        """Seasonal term of the next point: daily profile (+ day-of-week deviation)."""
        s = self.season[self.phase]  # type: ignore[index]
        w = self.week
        if w is None:
            return s
        return (
            s * w[self.wphase // self._bucket] if self._mul else s + w[self.wphase // self._bucket]
        )

    def _expected(self, level: float) -> float:
        if self.season is None:
            return level + _DAMP * self.trend
        return level * self._seas() if self._mul else level + self._seas()

    def _resid(self, x: float, mu: float) -> float:
        """Residual standardised by the noise model, before the learned scale."""
        if self.counts:
            if mu < _MU_FLOOR:
                mu = _MU_FLOOR
            if x < mu:  # Poisson deviance residual; +0.3 matches the mid-p lower tail
                x = x + 0.3 if x > 0.0 else 0.3
                if x >= mu:
                    return 0.0
                r = -math.sqrt(2.0 * (x * math.log(x / mu) - x + mu))
            else:
                r = math.sqrt(max(2.0 * (x * math.log(x / mu) - x + mu), 0.0))
            return r / math.sqrt(1.0 + self.phi * self.phi * mu)
        return x - mu

    def _unit(self) -> float:
        """Learned scale of ``_resid`` (counts: dispersion, never below Poisson's)."""
        u = _SIGMA_PER_ABSDEV * self.absdev
        return u if u > self._unit_floor else self._unit_floor

    def _z(self, x: float) -> tuple[float, float, float, bool]:
        """(expected, z, unit, alt): alt when a return to the pre-shift level fits better."""
        mu = self._expected(self.level)
        unit = self._unit()
        if self.season is None and self.first is not None:  # ramps of an unknown cycle
            u2 = _BOOT_LOCAL * self.boot_dev
            unit = u2 if u2 > unit else unit
        if self._log and self.resolution:  # the quantum relative to the expected value
            u2 = _QUANT_SD * self.resolution / _exp(mu)
            unit = u2 if u2 > unit else unit
        z = self._resid(x, mu) / unit
        if self.alt_level is not None and abs(z) >= self.threshold_z and self.n < self.alt_until:
            mu2 = self._expected(self.alt_level)
            z2 = self._resid(x, mu2) / unit
            if abs(z2) < abs(z):
                return mu2, z2, unit, True
        return mu, z, unit, False

    def _zeff(self, z: float) -> float:
        """z or, if larger, the standardised EWMA of recent clipped z (sustained shift)."""
        lam = self.sustain_rate
        if lam <= 0.0 or self.season is None and self.period:
            return z
        c = self.clip_z
        e = self.ez + lam * ((c if z > c else -c if z < -c else z) - self.ez)
        ze = e / math.sqrt(self.ez_var) / _EZ_DIV
        return ze if abs(ze) > abs(z) else z

    def _score(self, z: float) -> float:
        """Log-logistic in |z|: 0.5 at threshold_z, 0.15 at 3/4 of it, 0.85 at 4/3."""
        if self.n < self.grace or z == 0.0:
            return 0.0
        q = self.threshold_z / z
        q *= q * q
        return 1.0 / (1.0 + q * q)

    def _sd(self, mu: float, unit: float) -> float:
        """Standard deviation of the forecast error, in the model's units."""
        if self.counts:
            m = mu if mu > _MU_FLOOR else _MU_FLOOR
            return unit * math.sqrt(m * (1.0 + self.phi * self.phi * m))
        return unit

    def _result(self, mu: float, z: float, unit: float, sc: float) -> SeriesScore:
        t = self.threshold_z
        d = (1 if z > 0 else -1) if sc >= 0.5 else 0
        if self.counts:  # variance-stabilised (sqrt) approximation of the deviance band
            m = mu if mu > 0.0 else 0.0
            h = 0.5 * t * unit * math.sqrt(1.0 + self.phi * self.phi * m)
            lo = math.sqrt(m) - h
            return SeriesScore(mu, lo * lo if lo > 0.0 else 0.0, (math.sqrt(m) + h) ** 2, z, sc, d)
        if self._log:
            w = t * unit if t * unit < 700.0 else 700.0
            return SeriesScore(_exp(mu), _exp(mu - w), _exp(mu + w), z, sc, d)
        return SeriesScore(mu, mu - t * unit, mu + t * unit, z, sc, d)

    def _nothing_yet(self, x: float) -> SeriesScore:
        v = _exp(x) if self._log else x
        return SeriesScore(v, v, v, 0.0, 0.0, 0)

    # -- protocol ----------------------------------------------------------------------
    def _in(self, x: float) -> float:
        x = float(x)
        if self._log:
            return math.log(x) if x > 1e-300 else -690.8  # log(1e-300)
        return x

    def score_one(self, x: float) -> SeriesScore:
        """Score ``x`` as the next point; the state is not changed."""
        x = self._in(x)
        if self.n == 0:
            return self._nothing_yet(x)
        mu, z, unit, _ = self._z(x)
        ze = self._zeff(z)
        return self._result(mu, ze, unit, self._score(ze))

    def learn_one(self, x: float, anomalous: bool | None = None) -> None:
        """Learn ``x``; ``anomalous=None`` decides from the detector's own score.

        ``anomalous=True`` protects the model as a flagged point does (and counts toward
        ``adapt_after``); ``False`` learns ``x`` as normal (Huber-clipped).
        """
        x = self._in(x)
        if self.n == 0:
            self._learn(x, False, x, 0.0, 0.0, False)
            return
        mu, z, unit, alt = self._z(x)
        if anomalous and self.season is None and self.first is not None:
            self.first[self.phase] = mu  # first period, told anomalous: coast on the trend
            self.trend *= _DAMP
            self.level += self.trend
            self._advance()
            return
        flagged = self._score(self._zeff(z)) >= 0.5 if anomalous is None else bool(anomalous)
        self._learn(x, flagged, mu, z, unit, alt)

    def update(self, x: float) -> SeriesScore:
        """``score_one(x)`` then ``learn_one(x)``, computing the forecast once."""
        x = self._in(x)
        if self.n == 0:
            self._learn(x, False, x, 0.0, 0.0, False)
            return self._nothing_yet(x)
        mu, z, unit, alt = self._z(x)
        ze = self._zeff(z)
        sc = self._score(ze)
        self._learn(x, sc >= 0.5, mu, z, unit, alt)
        return self._result(mu, ze, unit, sc)

    # -- learning ----------------------------------------------------------------------
    def _learn(self, x: float, flagged: bool, mu: float, z: float, unit: float, alt: bool) -> None:
        n = self.n
        if n == 0:
            self.level = x
            self._advance()
            return
        season, c = self.season, self.clip_z
        az = z if z >= 0.0 else -z
        if season is None and self.first is not None:
            # First period, no profile yet: a ramp of the cycle and an anomaly look
            # alike, so everything is learned (Huber-clipped at boot_clip_z) and kept
            # raw for the profile (whose median filter removes short spikes).
            self.first[self.phase] = x
            r, cb = az * unit, self.boot_clip_z
            self.boot_dev += _BOOT_LOCAL_RATE * (min(r, cb * self._unit()) - self.boot_dev)
            self._learn_scale(r / self._unit(), n)
            self._learn_holt(mu + (x - mu) * (cb / az) if az > cb else x, mu, _BOOT_ALPHA)
            self._advance()
            return
        if self.wsum is not None:
            self._record_week(x)
        lam = self.sustain_rate
        if lam > 0.0:
            self.ez += lam * ((c if z > c else -c if z < -c else z) - self.ez)
            if not flagged:
                v = self.ez_var + self._a_scale * (self.ez * self.ez - self.ez_var)
                self.ez_var = v if v > self._var_e0 else self._var_e0
        if flagged:
            if self._episode(x):
                return
            if season is not None:  # the profile is never frozen
                self._learn_season_clipped(x, mu, az)
            self._advance()
            return
        if alt:  # back to the level before the last accepted shift
            self.level, self.alt_level = self.alt_level, self.level  # type: ignore[assignment]
            self.ep_flagged, self.ez = 0, 0.0
        if self.ep_flagged:
            self.ep_quiet += 1
            if self.ep_quiet >= self._quiet_max:
                self.ep_flagged = 0
            else:
                self._track_episode(x)
        if n >= 3 and az > c:  # Huber: pull x back to the clip boundary
            x = mu + (x - mu) * (c / az)
        self._learn_scale(az, n)
        if season is None:
            self._learn_holt(x, mu, self._a_level)
        else:
            self.level += self._a_level * (self._deseason(x) - self.level)
            self._learn_season(x)
        self._advance()

    def _learn_scale(self, az: float, n: int) -> None:
        unit = self._unit()
        a = self._a_scale if n * self._a_scale > 1.0 else 1.0 / n  # warm-up: running mean
        if n > 3 and az > self.clip_z:  # once the scale is known, clip its input
            az = self.clip_z
        self.absdev += a * (az * unit - self.absdev)

    def _learn_holt(self, x: float, mu: float, alpha: float) -> None:
        lvl = self.level
        new = mu + alpha * (x - mu)
        beta = _BOOT_BETA if self.season is None and self.period else alpha / 4
        self.trend = beta * (new - lvl) + (1.0 - beta) * _DAMP * self.trend
        if self.counts and new < 0.0:
            new, self.trend = 0.0, 0.0
        self.level = new

    def _learn_season(self, x: float) -> None:
        """EWMA of the daily profile (per period) and the weekly deviation (per week)."""
        season, ph, w, lvl = self.season, self.phase, self.week, self.level
        assert season is not None
        s = season[ph]
        b = self.wphase // self._bucket
        if self._mul:
            if lvl <= 0.0:
                return
            f = w[b] if w is not None else 1.0
            v = s + self.season_rate * (x / (lvl * f) - s)
            season[ph] = v if v > 1e-3 else 1e-3
            if w is not None:
                v = f + self._g_week * (x / (lvl * s) - f)
                w[b] = v if v > 1e-3 else 1e-3
        else:
            f = w[b] if w is not None else 0.0
            season[ph] = s + self.season_rate * (x - lvl - f - s)
            if w is not None:
                w[b] = f + self._g_week * (x - lvl - s - f)

    def _record_week(self, x: float) -> None:
        """First week after the daily profile: mean raw deviation per bucket, then init.

        Recorded unprotected, because the first weekend looks like a level shift; a
        median of 5 buckets keeps one-off incidents (up to 2 buckets) out of it.
        """
        wsum, wcnt = self.wsum, self.wcnt
        assert wsum is not None and wcnt is not None and self.period is not None
        b = self.wphase // self._bucket
        s = self.season[self.phase]  # type: ignore[index]
        wsum[b] += x / s if self._mul else x - s
        wcnt[b] += 1
        if self.n + 1 - self.wstart < self.period * self.weekly:
            return
        nb = len(wsum)
        known = [wsum[i] / wcnt[i] for i in range(nb) if wcnt[i]]
        m = sum(known) / len(known)
        dev = [wsum[i] / wcnt[i] if wcnt[i] else m for i in range(nb)]
        dev = [sorted(dev[(i + d) % nb] for d in range(-2, 3))[2] for i in range(nb)]
        if self._mul:
            self.week = [max(v / m, 1e-3) for v in dev] if m > 0.0 else [1.0] * nb
        else:
            self.week = [v - m for v in dev]
        self.wsum = self.wcnt = None

    # -- episodes: protect against incidents, accept persistent shifts -------------------
    def _deseason(self, x: float) -> float:
        if self.season is None:
            return x
        return x / self._seas() if self._mul else x - self._seas()

    def _track_episode(self, x: float) -> None:
        a = max(1.0 / (self.ep_flagged + self.ep_quiet), 2.0 / (self.adapt_after + 1))
        self.ep_level += a * (self._deseason(x) - self.ep_level)
        r = self._resid(x, self._expected(self.ep_level))
        self.ep_dev += a * ((r if r > 0.0 else -r) - self.ep_dev)

    def _episode(self, x: float) -> bool:
        """Count a flagged point; True when the episode is accepted as the new normal."""
        if self.ep_flagged == 0:
            self.ep_level = self._deseason(x)
            self.ep_dev = 0.0
        self.ep_flagged += 1
        self.ep_quiet = 0
        self._track_episode(x)
        if self.ep_flagged < self.adapt_after:
            return False
        self.alt_level, self.alt_until = self.level, self.n + self._alt_life
        self.level, self.trend, self.ez = self.ep_level, 0.0, 0.0
        if self.ep_dev > self.absdev:
            self.absdev = self.ep_dev
        self.ep_flagged = 0
        self._advance()
        return True

    def hold(self, x: float) -> None:
        """Step over ``x``, a point the caller knows is an incident: the level, trend and
        scale hold, as over a gap. Once the daily profile exists it learns ``x`` clipped to
        ``clip_z``, as for a point the detector flags itself, so a pattern that recurs at
        the same time every day is learned in the end, never frozen out (a gap there would
        leave the profile as it was, and the pattern flagged again every day)."""
        x = self._in(x)
        if self.season is None or self.n == 0:
            self.trend = 0.0
            self.skip(1)
            return
        mu, z, _, _ = self._z(x)
        self.trend = 0.0
        self._learn_season_clipped(x, mu, z if z >= 0.0 else -z)
        self._advance()

    def _learn_season_clipped(self, x: float, mu: float, az: float) -> None:
        """The profile learns ``x`` pulled back to ``clip_z`` (``az`` = its |z|) from ``mu``."""
        c = self.clip_z
        if az > 0.0:
            self._learn_season(mu + (x - mu) * (c / az) if az > c else x)

    # -- time ----------------------------------------------------------------------------
    def skip(self, steps: int) -> None:
        """Advance over ``steps`` missing observations (gaps keep the seasonal phase)."""
        steps = int(steps)
        while steps > 0 and self.season is None and self.n > 0 and steps < 4 * (self.period or 6):
            self.trend *= _DAMP  # coast through a short gap on the damped trend
            self.level += self.trend
            self._advance()
            steps -= 1
        if steps <= 0:
            return
        self.trend = 0.0
        p = self.period
        if p is not None and self.season is None:  # long gap in the first period
            self.first = [None] * p
        self.n += steps
        if p is not None:
            wraps, self.phase = divmod(self.phase + steps, p)
            if self.weekly:
                self.wphase = (self.wphase + steps) % (p * self.weekly)
            if wraps and self.season is not None:
                self._renormalise()

    def _advance(self) -> None:
        self.n += 1
        p = self.period
        if p is None:
            return
        self.phase += 1
        if self.weekly:
            self.wphase += 1
            if self.wphase == p * self.weekly:
                self.wphase = 0
        if self.phase < p:
            return
        self.phase = 0
        if self.season is None:
            self._init_season()
        else:
            self._renormalise()

    def _init_season(self) -> None:
        """Profile from the first period: gaps interpolated, median of 5, moving mean."""
        first, p = self.first, self.period
        assert first is not None and p is not None
        known = [i for i, v in enumerate(first) if v is not None]
        if len(known) < p // 4:  # mostly missing: bootstrap another period
            self.first = [None] * p
            return
        vals = [0.0] * p
        for j, i in enumerate(known):  # circular linear interpolation over gaps
            k = known[(j + 1) % len(known)]
            gap = (k - i) % p or p
            a, b = first[i], first[k]
            assert a is not None and b is not None
            for d in range(gap):
                vals[(i + d) % p] = a + (b - a) * d / gap
        med = [sorted(vals[(i + d) % p] for d in range(-2, 3))[2] for i in range(p)]
        w = self.smooth
        sm = [sum(med[(i + d) % p] for d in range(-w, w + 1)) / (2 * w + 1) for i in range(p)]
        m = sum(sm) / p
        if self._mul:
            if m <= 0.0:
                self.first = [None] * p
                return
            self.season = [max(v / m, 1e-3) for v in sm]
        else:
            self.season = [v - m for v in sm]
        if self.weekly:  # record one week of raw deviations before learning them
            nb = -(-p * self.weekly // self._bucket)
            self.wsum, self.wcnt, self.wstart = [0.0] * nb, [0] * nb, self.n
        self.level, self.trend, self.first = m, 0.0, None

    def _renormalise(self) -> None:
        """Once a period: the profile averages 1 (factors) or 0 (offsets)."""
        s = self.season
        assert s is not None
        m = sum(s) / len(s)
        if self._mul:
            if m > 0.0:
                self.season = [v / m for v in s]
                self._shift_level(m)
        else:
            self.season = [v - m for v in s]
            self._shift_level(m)
        w = self.week
        if w is not None and self.wphase == 0:
            m = sum(w) / len(w)
            if self._mul and m > 0.0:
                self.week = [v / m for v in w]
                self._shift_level(m)
            elif not self._mul:
                self.week = [v - m for v in w]
                self._shift_level(m)

    def _shift_level(self, m: float) -> None:
        if self._mul:
            self.level *= m
            if self.alt_level is not None:
                self.alt_level *= m
        else:
            self.level += m
            if self.alt_level is not None:
                self.alt_level += m

    # -- checkpoints ----------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """JSON-able state: the parameters and every public attribute (lists copied)."""
        return {
            k: list(v) if isinstance(v, list) else v for k, v in vars(self).items() if k[0] != "_"
        }

    @classmethod
    def restore(cls, d: dict[str, Any]) -> SeasonalDetector:
        """A detector that continues exactly where ``snapshot()`` was taken."""
        det = cls(**{k: d[k] for k in _PARAMS if k in d})
        for k, v in d.items():
            if k not in _PARAMS and hasattr(det, k):
                setattr(det, k, list(v) if isinstance(v, list) else v)
        return det


_PARAMS = tuple(inspect.signature(SeasonalDetector.__init__).parameters)[1:]


# -- detect-series: any exported metric, period inferred from the timestamps -------------
_DAY = 86400.0
_NICE_STEPS = (  # seconds: a median spacing within 3 % of one of these is snapped to it
    (1, 2, 5, 10, 15, 20, 30)
    + tuple(60 * m for m in (1, 2, 3, 5, 10, 15, 20, 30))
    + tuple(3600 * h for h in (1, 2, 3, 4, 6, 8, 12, 24, 168))
)
_LEVEL_HOURS, _SCALE_DAYS = 2.0, 0.5  # level half-life 2 h, scale half-life half a day
_HEAD = 24  # rows buffered to infer the step and the value type; scored 0.0 (warm-up)
_MAX_PERIOD = 86400  # longest daily profile kept (1-s steps)


def parse_timestamp(s: str | float) -> float:
    """Epoch seconds from RFC 3339 / ISO 8601 (naive = UTC) or epoch s / ms / us / ns."""
    if isinstance(s, int | float):
        v = float(s)
    else:
        s = s.strip()
        try:
            v = float(s)
        except ValueError:
            t = s[:-1] + "+00:00" if s[-1:] in "Zz" and s else s
            if "." in t:  # fromisoformat takes at most 6 fractional digits
                head, _, frac = t.partition(".")
                digits = len(frac) - len(frac.lstrip("0123456789"))
                t = head + "." + frac[: min(digits, 6)].ljust(1, "0") + frac[digits:]
            d = dt.datetime.fromisoformat(t)
            if d.tzinfo is None:
                d = d.replace(tzinfo=dt.UTC)
            return d.timestamp()
    if not math.isfinite(v):
        raise ValueError(f"not a finite timestamp: {s!r}")
    while abs(v) > 1e11:  # epoch milliseconds, microseconds, nanoseconds
        v /= 1000.0
    return v


def _resolution(values: list[float]) -> float:
    """Quantum of the values (1 for integers, 0.01 for cents), 0 when not quantised."""
    for k in range(7):
        m = 10.0**k
        if all(abs(v * m - round(v * m)) <= 1e-6 * max(1.0, abs(v * m)) for v in values):
            return 1.0 / m
    return 0.0


def _infer_step(times: list[float]) -> float | None:
    """Regular step (snapped to a round value) or None when the spacing is irregular."""
    deltas = [b - a for a, b in zip(times, times[1:], strict=False) if b > a]
    if len(deltas) < 3:
        return None
    step = statistics.median(deltas)
    for nice in _NICE_STEPS:
        if abs(step - nice) <= 0.03 * nice:
            step = float(nice)
            break
    on_grid = sum(1 for d in deltas if abs(d / step - round(d / step)) <= 0.1)
    return step if on_grid >= 0.6 * len(deltas) else None


class _Candidate:
    __slots__ = ("det", "loss", "kind")

    def __init__(self, det: SeasonalDetector, kind: str) -> None:
        self.det, self.loss, self.kind = det, 0.0, kind


class SeriesAutoDetector:
    """Picks, causally, the best of a few ``SeasonalDetector`` models for one series.

    Built from the first rows (``head``): the step is their median spacing snapped to a
    round value (None when irregular: then every row is one step and there is no
    period); when it divides a day the candidates are daily, daily + day-of-week, and
    non-seasonal models, crossed with the value models the head allows: counts
    (non-negative integers), log-additive (positive values), additive (always, unless
    both others apply). Time constants are in hours (adaptation after 2 h, level
    half-life 2 h, scale half-life half a day), whatever the step.

    Every candidate scores and learns every point; the output is the score of the
    candidate with the lowest predictive loss so far (Gaussian negative log-likelihood
    of x, z clipped at threshold_z, the rounding error of quantised data added to the
    variance; EWMA with a half-life of a week of steps, restarted when the seasonal
    candidates leave their first-period tracker), chosen before seeing the point, with a
    0.02-nat hysteresis. A value that breaks a candidate's assumptions (non-positive for
    log, non-integer or negative for counts) drops it; from the third day candidates 1
    nat worse than the best are dropped, from the 14th day 0.5 nat worse (speed). Rows
    are placed on the time grid: gaps skip steps, duplicate or late rows are scored but
    not learned.
    """

    def __init__(
        self, head: list[tuple[float, float]], threshold_z: float = 4.0, **overrides: Any
    ) -> None:
        self.step = _infer_step([t for t, _ in head])
        values = [v for _, v in head if not math.isnan(v)]
        positive = bool(values) and min(values) > 0.0
        integer = bool(values) and all(v >= 0.0 and v == int(v) for v in values)
        kinds = (["counts"] if integer else []) + (["log"] if positive else [])
        kinds += [] if len(kinds) == 2 else ["add"]
        periods: list[tuple[int | None, int]] = [(None, 0)]  # (period, weekly)
        spd = 0
        if (
            self.step is not None
            and self.step <= _DAY
            and abs(_DAY / self.step - round(_DAY / self.step)) < 1e-6
        ):
            spd = round(_DAY / self.step)
            if 4 <= spd <= _MAX_PERIOD:
                periods = [(spd, 0), (spd, 7), (None, 0)]
            elif spd < 4:
                periods = [(7 * spd, 0), (None, 0)]
        hours = 3600.0 / self.step if self.step else 1.0
        self.cands: list[_Candidate] = []
        params: dict[str, Any] = dict(
            resolution=_resolution(values),
            grace=_HEAD,
            threshold_z=threshold_z,
            adapt_after=max(6, round(2 * hours)) if spd else 24,
            level_halflife=max(3.0, _LEVEL_HOURS * hours) if spd else 12.0,
            scale_halflife=max(48.0, _SCALE_DAYS * spd),
            smooth=max(1, spd // 96),
        )
        params.update(overrides)
        self.params = params
        for kind in kinds:
            for p, weekly in periods:
                det = SeasonalDetector(
                    p,
                    counts=kind == "counts",
                    multiplicative=kind != "add",
                    weekly=weekly,
                    **params,
                )
                self.cands.append(_Candidate(det, kind))
        self.best = self.cands[0]
        self._a_loss = _rate(max(7 * spd, 48))
        self._prune_every = max(spd, 24)  # daily, drop clearly worse models (speed)
        self.t0 = min((t for t, _ in head), default=0.0)
        self.next_idx = 0
        self.k = 0  # points learned since the losses were last reset
        self._reset_at = (spd if spd >= 4 else 7 * spd) + 1 if spd else 0

    def update(self, t: float, x: float) -> float:
        if math.isnan(x):
            return 0.0
        if self.step is not None:
            idx = round((t - self.t0) / self.step)
            if idx < self.next_idx:  # duplicate or out of order: score, do not learn
                return self.best.det.score_one(x).score if self._fits(self.best, x) else 0.0
            if idx > self.next_idx:
                for c in self.cands:
                    c.det.skip(idx - self.next_idx)
            self.next_idx = idx + 1
        self._drop_unfit(x)
        best, score = self.best, 0.0
        self.k += 1
        if self.k == self._reset_at:  # seasonal models leave their first-period tracker
            self.k, self._reset_at = 1, 0
        a = max(self._a_loss, 1.0 / self.k)
        cap = 0.5 * best.det.threshold_z**2
        q2 = (_QUANT_SD * best.det.resolution) ** 2 + 1e-300
        for c in self.cands:
            det = c.det
            xi = det._in(x)
            if det.n == 0:
                det._learn(xi, False, xi, 0.0, 0.0, False)
                continue
            mu, z, unit, alt = det._z(xi)
            sc = det._score(det._zeff(z))
            if c is best:
                score = sc
            sd = det._sd(mu, unit) * (_exp(mu) if det._log else 1.0)  # in units of x
            nll = 0.5 * math.log(sd * sd + q2) + min(0.5 * z * z, cap)
            c.loss += a * (nll - c.loss)
            det._learn(xi, sc >= 0.5, mu, z, unit, alt)
        top = min(self.cands, key=lambda c: c.loss)
        if top.loss < self.best.loss - 0.02:
            self.best = top
        if self.k % self._prune_every == 0 and self.k >= 3 * self._prune_every:
            margin = 0.5 if self.k >= 14 * self._prune_every else 1.0
            self.cands = [c for c in self.cands if c.loss < top.loss + margin or c is self.best]
        return score

    @staticmethod
    def _fits(c: _Candidate, x: float) -> bool:
        if c.kind == "log":
            return x > 0.0
        return c.kind != "counts" or (x >= 0.0 and x == int(x))

    def _drop_unfit(self, x: float) -> None:
        if all(self._fits(c, x) for c in self.cands):
            return
        kept = [c for c in self.cands if self._fits(c, x)]
        if not kept:  # only ever happens to a log/count-only set: fall back to additive
            kept = [
                _Candidate(
                    SeasonalDetector(c.det.period, weekly=c.det.weekly, **self.params), "add"
                )
                for c in self.cands
                if c.kind == self.cands[0].kind
            ]
        self.cands = kept
        if self.best not in kept:
            self.best = min(kept, key=lambda c: c.loss)


def detect_series(
    rows: Iterable[tuple[str | float, float]], *, threshold_z: float = 4.0, **overrides: Any
) -> Iterator[tuple[str | float, float, float]]:
    """Score ``(timestamp, value)`` rows causally: yields ``(timestamp, value, score)``.

    The first ``_HEAD`` rows are buffered to infer the step and the value type and are
    scored 0.0 (warm-up); every later score uses only the rows before it in time. Missing
    rows advance the seasonal phase by the elapsed steps; NaN values score 0.0 and are
    not learned; a duplicate or out-of-order timestamp is scored but not learned. A file
    in descending time order (newest first) is read whole and scored oldest first.
    ``overrides`` are passed to every ``SeasonalDetector``.
    """
    it = iter(rows)
    head: list[tuple[str | float, float, float]] = []
    for ts, v in it:
        head.append((ts, float(v), parse_timestamp(ts)))
        if len(head) >= _HEAD:
            break
    down = sum(1 for a, b in zip(head, head[1:], strict=False) if b[2] < a[2])
    if down > len(head) // 2:  # newest first: score in time order, yield in file order
        head += [(ts, float(v), parse_timestamp(ts)) for ts, v in it]
        head.reverse()
        out = list(_scored(head[:_HEAD], iter(head[_HEAD:]), threshold_z, overrides))
        yield from reversed(out)
        return
    rest = ((ts, float(v), parse_timestamp(ts)) for ts, v in it)
    yield from _scored(head, rest, threshold_z, overrides)


def _scored(
    head: list[tuple[Any, float, float]],
    rest: Iterator[tuple[Any, float, float]],
    threshold_z: float,
    overrides: dict[str, Any],
) -> Iterator[tuple[Any, float, float]]:
    model = SeriesAutoDetector([(t, v) for _, v, t in head], threshold_z, **overrides)
    for ts, v, t in head:
        model.update(t, v)
        yield ts, v, 0.0
    for ts, v, t in rest:
        yield ts, v, model.update(t, v)


_MISSING = {"", "nan", "na", "n/a", "null", "none", "-"}
_TS_NAMES = ("timestamp", "time", "ts", "datetime", "date", "period", "t")
_MAX_ERRORS = 20


def run_detect_series(in_path: str, out: TextIO, err: TextIO | None = None) -> int:
    """CLI body of ``ordermon detect-series``: CSV ``timestamp,value`` in (a path or '-'),
    CSV ``timestamp,value,anomaly_score`` out. Returns the exit code.

    The header is optional (detected when the value field is not a number; columns are
    then found by name); blank lines and ``#`` comments are skipped; an empty or NaN
    value is a missing observation (score 0.0). A row whose timestamp or value cannot be
    read is reported on ``err`` with its line number and left out; the exit code is then
    1 (2 when the input cannot be read at all).
    """
    err = err if err is not None else sys.stderr
    name = "<stdin>" if in_path == "-" else in_path
    try:
        src = (
            contextlib.nullcontext(sys.stdin)
            if in_path == "-"
            else open(in_path, newline="", encoding="utf-8-sig")  # noqa: SIM115 (with below)
        )
    except OSError as exc:
        print(f"detect-series: cannot open {name}: {exc.strerror or exc}", file=err)
        return 2
    raw: deque[tuple[str, str]] = deque()  # the rows' text, written back unchanged
    bad: list[str] = []

    def rows(f: TextIO) -> Iterator[tuple[float, float]]:
        for line, ts, vs, parsed in _read_csv(f):
            if isinstance(parsed, str):
                bad.append(f"{name}:{line}: {parsed}")
                if len(bad) <= _MAX_ERRORS:
                    print(bad[-1], file=err)
                continue
            raw.append((ts, vs))
            yield parsed

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", "value", "anomaly_score"])
    n = 0
    with src as f:
        try:
            for _, _, score in detect_series(rows(f)):
                writer.writerow([*raw.popleft(), f"{score:.6f}"])
                n += 1
        except (UnicodeDecodeError, csv.Error) as exc:
            print(f"detect-series: {name}: unreadable after {n} rows: {exc}", file=err)
            return 2
    if len(bad) > _MAX_ERRORS:
        print(f"{name}: {len(bad) - _MAX_ERRORS} more bad rows not shown", file=err)
    if n == 0 and not bad:
        print(f"detect-series: {name}: no data rows", file=err)
        return 1
    return 1 if bad else 0


def _read_csv(f: TextIO) -> Iterator[tuple[int, str, str, tuple[float, float] | str]]:
    """(line, timestamp text, value text, (epoch, value) or an error message) per row."""
    cols: tuple[int, int] | None = None
    reader = csv.reader(f)
    for rec in reader:
        fields = [c.strip() for c in rec]
        if not any(fields) or fields[0].startswith("#"):
            continue
        if cols is None:
            cols = (0, 1)
            v = fields[1].lower() if len(fields) > 1 else ""
            if v not in _MISSING and not _is_number(v):
                cols = _header_columns(fields)
                continue
        i, j = cols
        if len(fields) <= max(i, j):
            yield reader.line_num, "", "", f"expected {max(i, j) + 1} columns, got {len(fields)}"
            continue
        ts, vs = fields[i], fields[j]
        try:
            t = parse_timestamp(ts)
        except (ValueError, OverflowError):
            yield reader.line_num, ts, vs, f"cannot read timestamp {ts!r} (RFC 3339 or epoch)"
            continue
        if vs.lower() in _MISSING:
            yield reader.line_num, ts, vs, (t, math.nan)
        elif not _is_number(vs) or math.isinf(float(vs)):
            yield reader.line_num, ts, vs, f"cannot read value {vs!r} (a finite number)"
        else:
            yield reader.line_num, ts, vs, (t, float(vs))


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _header_columns(names: list[str]) -> tuple[int, int]:
    """(timestamp column, value column) from a header row; defaults to the first two."""
    low = [c.strip().lower() for c in names]
    ts = next((i for n in _TS_NAMES for i, c in enumerate(low) if c == n), None)
    if ts is None:
        ts = next((i for i, c in enumerate(low) if "time" in c or "date" in c), 0)
    val = next((i for i, c in enumerate(low) if c == "value" and i != ts), None)
    if val is None:
        val = next((i for i, c in enumerate(low) if "value" in c and i != ts), None)
    if val is None:
        val = 1 if ts == 0 else 0
    return ts, val
