"""``ordermon soak --minutes 2``: the short variant of the soak, as a user runs it.

Two minutes cannot show flat memory (the worker's state is still filling up); the long run
(``ordermon soak --minutes 30``, figures in ``streams/README.md``) does. Here: the command
runs end to end, prints a line per minute, processes what it produced with a bounded lag,
logs no error, and memory stays within a generous bound.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from streams.procs import ROOT

pytestmark = pytest.mark.slow
RATE = 500
MINUTE = re.compile(
    r"\[soak\] minute +(\d+)/2 +rss +([\d.]+) MB +lag +([\d,]+) +events +([\d,]+) \(\+[\d,]+\)"
    r" +alerts +(\d+) +windows +([\d,]+) +produced +([\d,]+) +orders +([\d,]+|n/a)"
)


def _int(s: str) -> int:
    return int(s.replace(",", ""))


def test_two_minute_soak_reports_every_minute_and_passes(tmp_path: Path) -> None:
    report = tmp_path / "soak.json"
    cmd = [sys.executable, "-m", "monitor.cli", "soak", "--minutes", "2", "--rate", str(RATE),
           "--publishers", "200", "--workdir", str(tmp_path / "work"), "--json", str(report),
           "--max-slope", "60", "--max-lag", str(RATE * 20)]  # fmt: skip
    env = os.environ | {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=200,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr[-3000:]
    minutes = [m.groups() for m in MINUTE.finditer(out)]
    assert [int(m[0]) for m in minutes] == [1, 2], out
    rss = [float(m[1]) for m in minutes]
    lag = [_int(m[2]) for m in minutes]
    events = [_int(m[3]) for m in minutes]
    produced = [_int(m[6]) for m in minutes]
    # steady: about RATE events a second went in, and the worker kept up with them
    assert 0.8 * RATE * 120 <= produced[-1] <= 1.05 * RATE * 120, produced
    assert events[-1] >= produced[-1] - RATE * 20 and events[0] < events[1], (events, produced)
    assert max(lag) <= RATE * 20, lag
    assert rss[0] > 20 and rss[-1] < 2.5 * rss[0], rss  # generous: state is still filling
    assert "errors 0, restarts 0" in out and "verdict: PASS" in out, out
    rep = json.loads(report.read_text())
    assert rep["problems"] == [] and len(rep["samples"]) >= 20  # a sample every 5 s
    print("\n" + "\n".join(ln for ln in out.splitlines() if "minute" in ln or "memory" in ln))
