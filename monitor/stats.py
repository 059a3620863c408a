"""Small, dependency-free tail probabilities for count data.

Scores across ordermon are ``-log10(p)`` of the observed count under the model, so 3 means
"a 1-in-1000 event" whatever the detector; thresholds are stated in the same unit.
"""

from __future__ import annotations

import math

_LN10 = math.log(10.0)
MAX_SCORE = 300.0


def nb_upper_score(x: float, mean: float, size: float = math.inf) -> float:
    """``-log10 P(X >= x)`` for X ~ NegBin(mean, size) (Poisson when size is infinite).

    ``size`` is the dispersion: var = mean + mean**2 / size. Exact series summation from
    ``x`` upwards, fast when ``x`` is well above the mean (the only case callers ask for).
    """
    if x <= 0:
        return 0.0
    mean = max(mean, 1e-9)
    k = math.floor(x)
    if k < x:
        k += 1
    if math.isinf(size) or size > 1e6:
        log_pmf = k * math.log(mean) - mean - math.lgamma(k + 1)
        q = None
    else:
        p = size / (size + mean)
        q = 1.0 - p
        log_pmf = (
            math.lgamma(k + size)
            - math.lgamma(size)
            - math.lgamma(k + 1)
            + size * math.log(p)
            + k * math.log(q)
        )
    total = 1.0
    term = 1.0
    i = k
    for _ in range(100_000):
        ratio = mean / (i + 1) if q is None else (i + size) / (i + 1) * q
        term *= ratio
        total += term
        i += 1
        if term < 1e-12 * total or ratio < 1e-12:
            break
    log_tail = log_pmf + math.log(total)
    return min(MAX_SCORE, max(0.0, -log_tail / _LN10))


def poisson_lower_score(x: float, mean: float) -> float:
    """``-log10 P(X <= x)`` for X ~ Poisson(mean)."""
    if mean <= 0 or x >= mean:
        return 0.0
    k = max(0, math.floor(x))
    log_pmf = k * math.log(mean) - mean - math.lgamma(k + 1) if k > 0 else -mean
    total = 1.0
    term = 1.0
    for i in range(k, 0, -1):
        term *= i / mean
        total += term
        if term < 1e-12 * total:
            break
    return min(MAX_SCORE, max(0.0, -(log_pmf + math.log(total)) / _LN10))


def normal_upper_score(z: float) -> float:
    """``-log10 P(Z >= z)`` for a standard normal Z."""
    if z <= 0:
        return 0.0
    sf = 0.5 * math.erfc(z / math.sqrt(2.0))
    if sf <= 0:
        return min(MAX_SCORE, (z * z / 2 + math.log(z * math.sqrt(2 * math.pi))) / _LN10)
    return min(MAX_SCORE, -math.log10(sf))


def chi2_score(stat: float, df: int) -> float:
    """``-log10`` of the chi-square survival function (Wilson-Hilferty approximation)."""
    if stat <= 0 or df <= 0:
        return 0.0
    h = 2.0 / (9.0 * df)
    z = ((stat / df) ** (1.0 / 3.0) - (1.0 - h)) / math.sqrt(h)
    if z <= 0:
        return 0.0
    sf = 0.5 * math.erfc(z / math.sqrt(2.0))
    if sf <= 0:  # beyond double precision: use the asymptotic normal tail
        return min(MAX_SCORE, (z * z / 2 + math.log(z * math.sqrt(2 * math.pi))) / _LN10)
    return min(MAX_SCORE, -math.log10(sf))


def bonferroni_threshold(family_alpha: float, tests: int) -> float:
    """Score a single test must reach so that ``tests`` tests keep ``family_alpha``."""
    return math.log10(max(1, tests) / family_alpha)
