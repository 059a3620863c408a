"""Windows before the first one with anything in it do not count.

A replay closes one blank window before the first event; a stream worker closes one or two,
depending on when each partition's clock started. The detectors count windows (warm-up,
seasonal phase, the first residual of the volume series), so a blank window at the start
made a stream's alerts differ from the replay's hours later.
"""

from __future__ import annotations

import msgspec

from monitor.pipeline import Detection, Monitor
from monitor.windows import WindowAcc
from tests.synth import Stream


def _closed_windows() -> list[tuple[WindowAcc, float]]:
    s = Stream(seed=5, publishers=80, hours=10).baseline()
    pub = sorted(s.pubs, key=lambda p: -s.share[p])[3]
    s.burst(pub, at_h=8.0, minutes=15, count=40, reason="fraud")
    mon = Monitor()
    seen: list[tuple[WindowAcc, float]] = []
    close = mon.detection.close

    def spy(acc: WindowAcc, detected_at: float) -> None:
        seen.append((acc, detected_at))
        close(acc, detected_at)

    mon.detection.close = spy  # type: ignore[method-assign]
    for line in s.lines():
        mon.process(line)
    return seen


def _detect(windows: list[tuple[WindowAcc, float]], blanks: int) -> Detection:
    det = Detection()
    first = next(i for i, (acc, _) in enumerate(windows) if acc.arrivals)
    start = windows[first][0].index
    for k in range(blanks, 0, -1):
        det.close(WindowAcc(start - k, 300), (start - k + 1) * 300.0)
    for acc, at in windows[first:]:
        det.close(acc, at)
    return det


def test_blank_leading_windows_leave_no_trace():
    windows = _closed_windows()
    runs = [_detect(windows, blanks) for blanks in (0, 1, 2)]
    alerts = [[(a.alert_id, a.status) for a in d.take_alerts()] for d in runs]
    assert alerts[0], "the stream has an incident: the comparison needs alerts"
    assert alerts[0] == alerts[1] == alerts[2]
    snaps = [msgspec.json.encode(d.snapshot()) for d in runs]
    assert snaps[0] == snaps[1] == snaps[2]
    assert runs[0].windows_closed == len(windows) - next(
        i for i, (acc, _) in enumerate(windows) if acc.arrivals
    )


def test_a_blank_window_after_the_first_data_counts():
    windows = _closed_windows()
    det = _detect(windows, 0)
    n = det.windows_closed
    last = windows[-1][0].index
    det.close(WindowAcc(last + 1, 300), (last + 2) * 300.0)  # silence is news once started
    assert det.windows_closed == n + 1
