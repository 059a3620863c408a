"""Causal detector of spikes, drops and level shifts on one seasonal series.

``SeasonalDetector`` follows the River protocol used across ``monitor/``: ``score_one``
reads the state and never changes it, ``learn_one`` changes it, ``update`` does both.

Model (a robust, online Holt-Winters):

- **Forecast.** ``expected = level * season[phase]`` (multiplicative, the default for
  counts: a busy hour scales volume) or ``level + season[phase]`` (additive). The
  profile ``season`` holds one value per phase of the period; each phase is updated once
  per period by an EWMA across periods (``season_rate``), and the profile is renormalised
  every period so the level stays identifiable.
- **Bootstrap.** Until one full period has been seen there is no profile: a fast damped
  Holt level + trend (half-life ~2 steps) tracks the cycle instead, so the first day of
  a cold start raises no false alarms. When the first period closes, the profile is
  initialised from its (cleaned, circularly smoothed) values and the level slows down.
- **Residual scale.** Counts: the Poisson signed deviance residual (lower-tail continuity
  correction 0.3; within ~0.1 of the exact mid-p z-score down to a mean of 0.3) divided
  by ``sqrt(1 + phi**2 * expected)`` (negative-binomial variance ``mu + (phi*mu)**2``)
  and by a learned dispersion ``d >= 1`` (EWMA of absolute residuals): the count model is
  a floor, never undercut. Floats: EWMA of absolute residuals (x1.2533 = sigma for
  Gaussian noise); relative to the expected value in multiplicative mode.
- **Score.** ``score = 1 / (1 + (threshold_z / |z|) ** 6)``: log-logistic in ``|z|``,
  0.5 at ``|z| == threshold_z``, 0.15 at 3/4 of it, 0.85 at 4/3 of it; 0.0 in warm-up.
- **Protection.** Learning is Huber-clipped at ``clip_z``; a point scored anomalous
  (or passed ``anomalous=True``) is not learned, so an incident does not become the new
  normal. Flagged points open an *episode* (closed by ``adapt_after // 4`` normal steps
  in a row); once an episode holds ``adapt_after`` flagged points the shift is accepted:
  the level jumps to the episode's recent level and the scale widens to the episode's
  spread, if larger. A spike or a 1-h drop is never absorbed; a persistent level shift
  or a noise increase is accepted after ``adapt_after`` steps.
- **Gaps.** ``skip(n)`` advances the phase over ``n`` missing steps.

Every hyper-parameter is in steps and has a default derived from ``period``; the state
is a JSON-able dict (``snapshot``/``restore``).

Examples
--------
>>> import random
>>> rng = random.Random(7)
>>> det = SeasonalDetector(period=24, grace=12)
>>> for i in range(24 * 5):
...     _ = det.update(100 + 20 * ((i % 24) >= 12) + rng.gauss(0, 2))
>>> det.score_one(121).score < 0.5, det.score_one(160).score >= 0.5
(True, True)
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

_SIGMA_PER_ABSDEV = 1.2533  # sigma / E|e| for Gaussian e
_BOOT_ALPHA, _BOOT_BETA, _BOOT_DAMP = 0.3, 0.1, 0.95  # first-period level/trend tracker
_MU_FLOOR = 0.01  # counts: smallest expected value used in the residual


@dataclass(slots=True)
class SeriesScore:
    expected: float  # forecast for this point
    lower: float  # band at the firing threshold (approximate for counts)
    upper: float
    z: float  # signed standardised residual, negative = below
    score: float  # in [0, 1]; >= 0.5 means anomalous; 0.0 in warm-up
    direction: int  # +1 above, -1 below, 0 normal


def _halflife_rate(steps: float) -> float:
    return 1.0 - 0.5 ** (1.0 / max(steps, 1e-9))


class SeasonalDetector:
    """Online seasonal anomaly detector for one series (see the module docstring).

    Parameters
    ----------
    period : steps per season (288 = one day of 5-min windows); None for no seasonality.
    counts : values are event counts (Poisson/NB residuals, multiplicative seasonality).
    multiplicative : seasonal profile as factors (default: ``counts``) or offsets.
    grace : warm-up steps scored 0.0 (default 24).
    threshold_z : |z| at which the score is 0.5.
    adapt_after : flagged steps after which a persistent shift becomes the new normal
        (default period // 12, i.e. 2 h of a daily period, at least 6; 24 without period).
    level_halflife : half-life in steps of the deseasonalised level once the profile is
        known (default period / 48, at least 3; 12 without period).
    season_rate : per-period EWMA rate of each phase of the profile.
    scale_halflife : half-life in steps of the residual scale (default period / 2, >= 48).
    phi : counts: negative-binomial overdispersion floor, var >= mu + (phi * mu) ** 2.
    clip_z : Huber clipping of learned residuals, in z units.
    """

    def __init__(
        self,
        period: int | None = 288,
        *,
        counts: bool = False,
        multiplicative: bool | None = None,
        grace: int | None = None,
        threshold_z: float = 4.0,
        adapt_after: int | None = None,
        level_halflife: float | None = None,
        season_rate: float = 0.15,
        scale_halflife: float | None = None,
        phi: float = 0.05,
        clip_z: float = 3.0,
        boot_clip_z: float = 8.0,
    ) -> None:
        p = int(period) if period and period > 1 else None
        self.period = p
        self.counts = bool(counts)
        self.multiplicative = self.counts if multiplicative is None else bool(multiplicative)
        self.grace = 24 if grace is None else max(int(grace), 1)
        self.threshold_z = float(threshold_z)
        self.adapt_after = (max(6, p // 12) if p else 24) if adapt_after is None else adapt_after
        self.level_halflife = (max(3.0, p / 48) if p else 12.0) if level_halflife is None else level_halflife
        self.season_rate = float(season_rate)
        self.scale_halflife = (max(48.0, p / 2) if p else 48.0) if scale_halflife is None else scale_halflife
        self.phi = float(phi)
        self.clip_z = float(clip_z)
        self.boot_clip_z = float(boot_clip_z)
        self._a_level = _halflife_rate(self.level_halflife)
        self._a_scale = _halflife_rate(self.scale_halflife)
        self._quiet_max = max(3, self.adapt_after // 4)
        # state
        self.n = 0  # steps learned (including skipped ones)
        self.phase = 0
        self.level = 0.0
        self.trend = 0.0
        self.absdev = 0.8 if self.counts else 0.0  # counts: dispersion d; floats: E|e|
        self.season: list[float] | None = None
        self.first: list[float | None] | None = [None] * p if p else None
        self.ep_flagged = 0  # current episode: flagged points, quiet streak, level, spread
        self.ep_quiet = 0
        self.ep_level = 0.0
        self.ep_dev = 0.0

    # -- model -------------------------------------------------------------------------
    @property
    def warm(self) -> bool:
        return self.n >= self.grace

    def _expected(self) -> float:
        s = self.season
        if s is None:
            return self.level + _BOOT_DAMP * self.trend
        return self.level * s[self.phase] if self.multiplicative else self.level + s[self.phase]

    def _resid(self, x: float, mu: float) -> float:
        """Residual standardised by the noise model, before the learned scale."""
        if self.counts:
            if mu < _MU_FLOOR:
                mu = _MU_FLOOR
            if x < mu:
                x = x + 0.3 if x > 0.0 else 0.3
                if x > mu:
                    return 0.0
                r = -math.sqrt(2.0 * (x * math.log(x / mu) - x + mu))
            else:
                r = math.sqrt(max(2.0 * (x * math.log(x / mu) - x + mu), 0.0))
            return r / math.sqrt(1.0 + self.phi * self.phi * mu)
        if self.multiplicative:
            return (x - mu) / (abs(mu) + 1e-12)
        return x - mu

    def _unit(self) -> float:
        """Learned scale of ``_resid`` (counts: dispersion >= 1)."""
        u = _SIGMA_PER_ABSDEV * self.absdev
        floor = 1.0 if self.counts else 1e-9
        return u if u > floor else floor

    def _band(self, mu: float, unit: float) -> tuple[float, float]:
        t = self.threshold_z
        if self.counts:  # variance-stabilised (sqrt) approximation of the deviance band
            m = mu if mu > 0.0 else 0.0
            h = 0.5 * t * unit * math.sqrt(1.0 + self.phi * self.phi * m)
            lo = math.sqrt(m) - h
            return (lo * lo if lo > 0.0 else 0.0), (math.sqrt(m) + h) ** 2
        w = t * unit * (abs(mu) if self.multiplicative else 1.0)
        return mu - w, mu + w

    def _z(self, x: float) -> tuple[float, float, float]:
        mu = self._expected()
        unit = self._unit()
        return mu, self._resid(x, mu) / unit, unit

    def _score(self, z: float) -> float:
        if self.n < self.grace:
            return 0.0
        a = abs(z)
        if a == 0.0:
            return 0.0
        q = self.threshold_z / a
        q *= q * q
        return 1.0 / (1.0 + q * q)

    # -- protocol ----------------------------------------------------------------------
    def score_one(self, x: float) -> SeriesScore:
        """Score ``x`` as the next point; the state is not changed."""
        x = float(x)
        if self.n == 0:
            return SeriesScore(x, x, x, 0.0, 0.0, 0)
        mu, z, unit = self._z(x)
        sc = self._score(z)
        lo, hi = self._band(mu, unit)
        return SeriesScore(mu, lo, hi, z, sc, (1 if z > 0 else -1) if sc >= 0.5 else 0)

    def update(self, x: float) -> SeriesScore:
        """``score_one(x)`` then ``learn_one(x)``, computing the forecast once."""
        res = self.score_one(x)
        self._learn(float(x), res.score >= 0.5, res.expected, res.z)
        return res

    def learn_one(self, x: float, anomalous: bool | None = None) -> None:
        """Learn ``x``; ``anomalous=None`` decides from the detector's own score."""
        x = float(x)
        if self.n == 0:
            self._learn(x, False, x, 0.0)
            return
        mu, z, _ = self._z(x)
        flagged = self._score(z) >= 0.5 if anomalous is None else bool(anomalous)
        self._learn(x, flagged, mu, z)

    def _learn(self, x: float, flagged: bool, mu: float, z: float) -> None:
        n = self.n
        if n == 0:
            self.level = x
            self._advance()
            return
        season, c = self.season, self.clip_z
        az = z if z >= 0.0 else -z
        if season is None and self.first is not None:
            # First period, no profile yet: a ramp of the cycle and an anomaly look alike,
            # so learn everything (Huber-clipped at boot_clip_z) and keep the raw value
            # for the profile (a median filter removes short spikes from it).
            self.first[self.phase] = x
            self._learn_scale(az, n)
            cb = self.boot_clip_z
            self._learn_holt(mu + (x - mu) * (cb / az) if az > cb else x, mu, _BOOT_ALPHA)
            self._advance()
            return
        if flagged:
            if self._episode(x):
                return
            if season is not None and az > 0.0:  # the profile is never frozen
                self._learn_season(mu + (x - mu) * (c / az) if az > c else x)
            self._advance()
            return
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
            s = season[self.phase]
            if self.multiplicative:
                self.level += self._a_level * (x / s - self.level)
            else:
                self.level += self._a_level * (x - s - self.level)
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
        self.trend = _BOOT_BETA * (new - lvl) + (1 - _BOOT_BETA) * _BOOT_DAMP * self.trend
        self.level = new

    def _learn_season(self, x: float) -> None:
        season, ph, g = self.season, self.phase, self.season_rate
        assert season is not None
        s = season[ph]
        if self.multiplicative:
            if self.level > 0:
                v = s + g * (x / self.level - s)
                season[ph] = v if v > 1e-3 else 1e-3
        else:
            season[ph] = s + g * (x - self.level - s)

    # -- episodes: protect against incidents, accept persistent shifts ------------------
    def _deseason(self, x: float) -> float:
        s = self.season
        if s is None:
            return x
        return x / s[self.phase] if self.multiplicative else x - s[self.phase]

    def _track_episode(self, x: float) -> None:
        v = self._deseason(x)
        a = max(1.0 / (self.ep_flagged + self.ep_quiet), 2.0 / (self.adapt_after + 1))
        self.ep_level += a * (v - self.ep_level)
        s = self.season
        mu = self.ep_level if s is None else (
            self.ep_level * s[self.phase] if self.multiplicative else self.ep_level + s[self.phase]
        )
        r = abs(self._resid(x, mu))
        self.ep_dev += a * (r - self.ep_dev)

    def _episode(self, x: float) -> bool:
        """Count a flagged point; True when the episode is accepted as the new normal."""
        if self.ep_flagged == 0:
            self.ep_quiet = 0
            self.ep_level = self._deseason(x)
            self.ep_dev = 0.0
        self.ep_flagged += 1
        self.ep_quiet = 0
        self._track_episode(x)
        if self.ep_flagged < self.adapt_after:
            return False
        self.level = self.ep_level
        self.trend = 0.0
        if self.ep_dev > self.absdev:
            self.absdev = self.ep_dev
        self.ep_flagged = 0
        self._advance()
        return True

    # -- time ----------------------------------------------------------------------------
    def skip(self, steps: int) -> None:
        """Advance over ``steps`` missing observations (gaps keep the seasonal phase)."""
        steps = int(steps)
        while steps > 0 and self.season is None and steps < 4 * (self.period or 6):
            self.trend *= _BOOT_DAMP  # coast through a short gap, as for an anomaly
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
            if wraps and self.season is not None:
                self._renormalise()

    def _advance(self) -> None:
        self.n += 1
        p = self.period
        if p is None:
            return
        self.phase += 1
        if self.phase < p:
            return
        self.phase = 0
        if self.season is None:
            self._init_season()
        else:
            self._renormalise()

    def _init_season(self) -> None:
        first = self.first
        assert first is not None and self.period is not None
        p = self.period
        known = [i for i, v in enumerate(first) if v is not None]
        if len(known) < p // 4:  # mostly missing: keep bootstrapping another period
            self.first = [None] * p
            return
        vals: list[float] = [0.0] * p
        for j, i in enumerate(known):  # fill gaps by circular linear interpolation
            k = known[(j + 1) % len(known)]
            gap = (k - i) % p or p
            a, b = first[i], first[k]
            for d in range(gap):
                vals[(i + d) % p] = a + (b - a) * d / gap  # type: ignore[operator]
        med = [sorted(vals[(i + d) % p] for d in range(-2, 3))[2] for i in range(p)]
        w = max(1, p // 96)
        sm = [sum(med[(i + d) % p] for d in range(-w, w + 1)) / (2 * w + 1) for i in range(p)]
        m = sum(sm) / p
        if self.multiplicative:
            if m <= 0:
                self.first = [None] * p
                return
            self.season = [max(v / m, 1e-3) for v in sm]
        else:
            self.season = [v - m for v in sm]
        self.level = m
        self.trend = 0.0
        self.first = None

    def _renormalise(self) -> None:
        s = self.season
        assert s is not None
        m = sum(s) / len(s)
        if self.multiplicative:
            if m > 0:
                self.season = [v / m for v in s]
                self.level *= m
        else:
            self.season = [v - m for v in s]
            self.level += m

    # -- checkpoints ----------------------------------------------------------------------
    _PARAMS = (
        "period counts multiplicative grace threshold_z adapt_after level_halflife "
        "season_rate scale_halflife phi clip_z boot_clip_z"
    ).split()
    _STATE = "n phase level trend absdev season first ep_flagged ep_quiet ep_level ep_dev".split()

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state; ``restore(snapshot())`` continues identically."""
        d: dict[str, Any] = {k: getattr(self, k) for k in self._PARAMS}
        for k in self._STATE:
            v = getattr(self, k)
            d[k] = list(v) if isinstance(v, list) else v
        return d

    @classmethod
    def restore(cls, d: dict[str, Any]) -> SeasonalDetector:
        det = cls(**{k: d[k] for k in cls._PARAMS})
        for k in cls._STATE:
            v = d[k]
            setattr(det, k, list(v) if isinstance(v, list) else v)
        return det
