"""One contract every detector keeps (River-style): score() looks, learn() changes state.

Each detector is driven through the real windows of a synthetic stream with an incident.
At every window: scoring leaves the snapshot unchanged, findings are well-formed, and a
fresh detector restored from the snapshot (through JSON) scores identically.
"""

from __future__ import annotations

import json

import msgspec
import pytest

from monitor.detectors.base import Finding
from monitor.detectors.publisher import PublisherSpike
from monitor.detectors.quality import RateDetector, VolumeDrop
from monitor.model import Kind, Severity
from monitor.pipeline import Monitor
from tests.synth import Stream

DETECTORS = {
    "malformed_events": lambda m: m.quality[0],
    "duplicate_events": lambda m: m.quality[1],
    "lifecycle_violation": lambda m: m.quality[2],
    "clock_skew": lambda m: m.quality[3],
    "volume_drop": lambda m: m.volume,
    "publisher_spike": lambda m: m.publisher,
    "platform": lambda m: m.platform,
}


def twin_of(det):
    """A fresh detector of the same kind restored from ``det``'s snapshot via JSON."""
    if isinstance(det, RateDetector):
        twin = RateDetector(det.kind, det.p)
    elif isinstance(det, VolumeDrop):
        twin = VolumeDrop(det.p)
    elif isinstance(det, PublisherSpike):
        twin = PublisherSpike(det.p)
    else:
        return None  # the platform detector scores over the monitor's shared baseline
    twin.restore(json.loads(json.dumps(det.snapshot())))
    return twin


def _state(det) -> bytes:
    return msgspec.json.encode(det.snapshot())


@pytest.fixture(scope="module")
def lines():
    s = Stream(seed=21, publishers=120, hours=8).baseline()
    pub = sorted(s.pubs, key=lambda p: -s.share[p])[5]
    s.burst(pub, at_h=6.0, minutes=15, count=40, reason="fraud")
    return s.lines()


@pytest.mark.parametrize("name", list(DETECTORS))
def test_detector_contract(name, lines):
    mon = Monitor()
    det = DETECTORS[name](mon)
    score = det.score
    seen = {"windows": 0, "findings": 0}

    def checked_score(ctx):
        before = _state(det)
        twin = twin_of(det)
        found = score(ctx)
        assert _state(det) == before, f"{name}.score changed its state"
        if twin is not None:
            again = twin.score(ctx)
            assert [(f.kind, f.scope, f.firing, f.score) for f in again] == [
                (f.kind, f.scope, f.firing, f.score) for f in found
            ]
        for f in found:
            assert isinstance(f, Finding)
            assert isinstance(f.kind, Kind) and isinstance(f.severity, Severity)
            assert f.summary.endswith((".", ")")), f.summary
            assert {"observed", "expected", "score"} <= set(f.evidence), f.evidence
            json.dumps(f.evidence)  # evidence must serialise
            seen["findings"] += 1
        seen["windows"] += 1
        return found

    det.score = checked_score
    for line in lines:
        mon.process(line)
    mon.flush()
    assert seen["windows"] >= 90
    if name == "publisher_spike":
        assert seen["findings"] >= 1  # the fraud burst
