"""Interpreter settings every ordermon process applies at start (``ordermon`` commands, the
bench's measurement subprocesses and the faust baselines it compares against, so that a
side-by-side figure compares code, not runtime settings).

``tune_gc``: the cyclic garbage collector's youngest-generation threshold, 700 allocations
by default, raised to 20,000 (``ORDERMON_GC_THRESHOLD``; 0 keeps Python's default). Each
closing window allocates and frees one count vector per publisher in it, ~7,500 lists at
100k publishers: the net allocations crossed 700 thousands of times a run, and each
collection walked the young objects and every tenth one the older generation with them
(measured on 2.5M events at 100k publishers: 3,202 + 291 + 26 collections, 0.8 s of a 17 s
replay; at 20,000: one). Cyclic garbage still triggers a collection once 20,000 such
objects accumulate, so memory stays bounded; the monitor's steady state makes almost none.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping

from monitor.config import ConfigError

GC_THRESHOLD_ENV = "ORDERMON_GC_THRESHOLD"
GC_THRESHOLD = 20_000


def tune_gc(env: Mapping[str, str] | None = None) -> int | None:
    """Set the youngest generation's threshold; returns it, None if left alone."""
    if env is None:
        env = os.environ
    raw = env.get(GC_THRESHOLD_ENV, str(GC_THRESHOLD))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{GC_THRESHOLD_ENV} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{GC_THRESHOLD_ENV} must be >= 0, got {value}")
    if value == 0:
        return None
    _, g1, g2 = gc.get_threshold()
    gc.set_threshold(value, g1, g2)
    return value
