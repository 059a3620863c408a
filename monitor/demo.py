"""Offline demo: simulate a stream with scripted incidents, replay it, print alerts."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from monitor.pipeline import Monitor
from monitor.render import alert_line
from monitor.replay import iter_lines, open_events


def run_offline_demo(seed: int = 7, publishers: int = 1500, days: float = 1.5) -> int:
    from monitor.simulate import simulate

    color = sys.stdout.isatty()
    with tempfile.TemporaryDirectory(prefix="ordermon-demo-") as tmp:
        print(f"simulating {publishers} publishers over {days} days (seed {seed}) ...")
        info = simulate(seed, tmp, publishers=publishers, days=days)
        print(f"  {info.get('events', '?'):,} events written; replaying through the monitor\n")
        mon = Monitor()
        path = str(Path(tmp) / "events.jsonl")
        stream = open_events(path)
        try:
            for line in iter_lines(stream, path):
                mon.process(line)
                if mon.alerts:
                    for a in mon.take_alerts():
                        print(alert_line(a, color), flush=True)
        finally:
            stream.close()
        mon.flush()
        for a in mon.take_alerts():
            print(alert_line(a, color))
        import json

        incidents = json.loads((Path(tmp) / "incidents.json").read_text())["incidents"]
        print("\nscripted incidents (what the monitor should have found):")
        for inc in incidents:
            who = inc.get("publisher_id") or ("trap" if inc.get("trap") else "platform")
            print(f"  {inc['start'][:16].replace('T', ' ')}  {inc['kind']:<20} {who}")
    return 0
