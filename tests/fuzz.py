"""The long fuzz run of the decoder and the stages: ``python -m tests.fuzz --minutes 5``.

Not part of ``make test`` (which runs the same strategies briefly and deterministically in
tests/unit/test_hostile_input.py). Round after round, until the time is up, it runs:

- ``messages``: hypothesis ``hostile_inputs()`` through the decoder (fresh randomness);
- ``sequences``: hypothesis lists of stream messages through the one-process monitor and
  through the stream driver's stages (two sources, ticks, idle marking, partial merging);
- ``replay``: hypothesis files of hostile lines through ``replay`` with a rejects file;
- ``stream``: a realistic simulated stream (tests/synth.py) with a share of its messages
  mutated byte-wise (the same hostile tokens), bursts of extreme timestamps and repeated
  lines, through the monitor; alerts are checked against the contract schema, and a copy
  restored from a mid-stream snapshot must raise the same alerts.

Every failure (an exception out of a stage, or a broken invariant) is written to ``--out``
(default ``$TMPDIR/ordermon-fuzz``) with its reproducer, once per signature (exception type
and the innermost project frame); the run goes on. ``--with-known`` was for a reported crash
(timestamps past year 9999, now rejected as ``bad_timestamp``): such inputs are always tried
now. A stream round is deterministic in
``(--seed, round)``: ``python -m tests.fuzz --seed S --round R`` runs that one again.
Exit code 1 when anything failed, else 0.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import re
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.decode import DEFAULT_MAX_BYTES, decode
from monitor.model import iso
from monitor.pipeline import Monitor, MonitorParams
from tests import hostile as H
from tests.synth import Stream

PARAMS = MonitorParams(warmup_windows=1)
STREAM_PARAMS = MonitorParams()  # the stream rounds run the shipped defaults
ROOT = Path(__file__).resolve().parents[1]


class Findings:
    """Failures by signature, each written once with its reproducer."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.seen: Counter[str] = Counter()

    def add(self, phase: str, exc: BaseException, reproducer: dict[str, Any]) -> None:
        sig = signature(exc)
        self.seen[sig] += 1
        if self.seen[sig] > 1:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", sig)[:120]
        doc = {
            "phase": phase,
            "signature": sig,
            "error": f"{type(exc).__name__}: {exc}"[:4000],
            "notes": getattr(exc, "__notes__", []),
            "traceback": traceback.format_exception(exc)[-12:],
            **reproducer,
        }
        path = self.out / f"crash-{name}.json"
        path.write_text(json.dumps(doc, indent=1, default=str))
        print(f"  FOUND [{phase}] {sig} -> {path}", file=sys.stderr, flush=True)


def signature(exc: BaseException) -> str:
    """Exception type and the innermost frame in the project's code (not the harness)."""
    where = "?"
    for fr in traceback.extract_tb(exc.__traceback__):
        path = Path(fr.filename)
        if ROOT in path.parents and path.name != "fuzz.py":
            where = f"{path.relative_to(ROOT)}:{fr.lineno}"
    return f"{type(exc).__name__}@{where}"


def b64(lines: list[bytes]) -> list[str]:
    return [base64.b64encode(x).decode() for x in lines]


# -- hypothesis phases ------------------------------------------------------------------------


def _profile(examples: int) -> settings:
    return settings(
        max_examples=examples, database=None, deadline=None, derandomize=False,
        print_blob=True, suppress_health_check=list(HealthCheck),
    )  # fmt: skip


def hypothesis_round(examples: int, counts: Counter[str], workdir: Path) -> list[
        tuple[str, Callable[[], None]]]:  # fmt: skip
    """The property checks of one round, each counting the inputs it tried."""

    @_profile(examples)
    @given(H.hostile_inputs())
    def messages(raw: bytes) -> None:
        counts["messages"] += 1
        H.check_decoded(raw, decode(raw), DEFAULT_MAX_BYTES)

    @_profile(max(10, examples // 20))
    @given(st.lists(H.stream_inputs(), min_size=10, max_size=120))
    def monitor(inputs: list[bytes]) -> None:
        counts["sequences"] += len(inputs)
        H.run_monitor(inputs, PARAMS)

    @_profile(max(10, examples // 20))
    @given(st.lists(st.tuples(H.stream_inputs(), st.integers(0, 1)), min_size=10, max_size=120))
    def stages(inputs: list[tuple[bytes, int]]) -> None:
        counts["sequences"] += len(inputs)
        H.run_stream_stages(inputs, PARAMS)

    @_profile(max(5, examples // 40))
    @given(st.lists(H.hostile_inputs().map(H.line_safe), min_size=1, max_size=40),
           H.valid_events())  # fmt: skip
    def replay(lines: list[bytes], first: bytes) -> None:
        counts["replay"] += 1 + len(lines)
        with tempfile.TemporaryDirectory(dir=workdir) as d:
            H.run_replay([first, *lines], Path(d), PARAMS)

    return [("messages", messages), ("sequences", monitor), ("sequences", stages),
            ("replay", replay)]  # fmt: skip


# -- stream rounds: a realistic stream, mutated byte-wise -------------------------------------

_VALUE = re.compile(rb'"([a-z_]+)":\s*("(?:[^"\\]|\\.)*"|[^,}]+)')


def mutate(line: bytes, rng: random.Random) -> bytes:
    """One hostile change to one JSONL event line."""
    op = rng.randrange(10)
    fields = list(_VALUE.finditer(line))
    if op == 0 and line:  # flip a bit
        p = rng.randrange(len(line))
        return line[:p] + bytes([line[p] ^ (1 << rng.randrange(8))]) + line[p + 1 :]
    if op == 1:  # invalid UTF-8 somewhere
        p = rng.randrange(len(line) + 1)
        return line[:p] + rng.choice(H.BAD_UTF8) + line[p:]
    if op == 2:
        return line[: rng.randrange(len(line) + 1)]
    if op in (3, 4) and fields:  # a hostile value in place of a field's
        m = rng.choice(fields)
        token = rng.choice(H.HOSTILE_NUMBERS if op == 3 else H.HOSTILE_STRINGS)
        return line[: m.start(2)] + token + line[m.end(2) :]
    if op == 5 and fields:  # the same key again with another value
        m = rng.choice(fields)
        token = rng.choice(H.HOSTILE_NUMBERS + H.HOSTILE_STRINGS)
        return line[:-1] + b', "' + m[1] + b'": ' + token + b"}"
    if op == 6 and fields:  # a field dropped
        m = rng.choice(fields)
        return line[: m.start()] + b'"x_dropped": 0' + line[m.end() :]
    if op == 7:
        return line[:-1] + b', "x": ' + H.nested(rng.choice((10, 500, 20_000)), rng.choice("[{")) \
            + b"}"  # fmt: skip
    if op == 8:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
    return line[:-1] + b', "pad": "' + b"x" * rng.choice((1000, 65_000, 70_000)) + b'"}'


def far_time(rng: random.Random, base: float, with_known: bool = False) -> str:
    """A timestamp the clock guard must cope with: far ahead, far behind, or at the edges
    of what RFC 3339 and a datetime hold (with offsets that move the UTC instant)."""
    pick = rng.randrange(5)
    if pick == 0:
        when = "9999-12-31T23:59:59-23:59"  # UTC: 10000-01-01T23:58:59Z
    elif pick == 1:
        when = "0001-01-01T00:00:00+23:59"  # UTC: 0000-12-31T00:01:00Z
    elif pick == 2:
        when = H.rfc3339(base + rng.choice((-1, 1)) * rng.uniform(3600, 5 * 365 * 86400))
    elif pick == 3:
        when = H.rfc3339(base + rng.uniform(901, 3 * 3600), rng.randrange(-1439, 1440))
    else:
        when = "9999-12-31T23:5" + str(rng.randrange(10)) + ":00Z"
    return when


def _utc(when: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()


def stream_lines(seed: int, rnd: int, with_known: bool = False
                 ) -> tuple[list[bytes], dict[str, int]]:  # fmt: skip
    """The round's input: a simulated stream with a burst, then mutated."""
    rng = random.Random(seed * 1_000_003 + rnd)
    s = Stream(seed=rng.randrange(1 << 30), publishers=rng.randrange(20, 80),
               hours=rng.uniform(3, 7), orders_per_hour=rng.uniform(800, 2500))  # fmt: skip
    s.baseline()
    s.burst(s.pubs[rng.randrange(5)], at_h=2.0, minutes=20, count=rng.randrange(30, 120),
            reason="fraud")  # fmt: skip
    clean = s.lines()
    rate = rng.choice((0.005, 0.02, 0.1))
    far_at = {rng.randrange(100, len(clean)) for _ in range(rng.randrange(4))}
    out: list[bytes] = []
    ops = Counter[str]()
    for i, line in enumerate(clean):
        r = rng.random()
        if i in far_at:  # a run of events at an extreme time (a few per round at most)
            n = rng.choice((1, 5, 19, 20, 25, 60))
            when = far_time(rng, _utc(json.loads(line)["occurred_at"]), with_known)
            for k in range(n):
                ev = json.loads(clean[min(i + k, len(clean) - 1)])
                ev["occurred_at"], ev["event_id"] = when, f"far-{rnd}-{i}-{k}"
                out.append(json.dumps(ev).encode())
            ops["far_time_runs"] += 1
        elif r < rate:
            out.append(mutate(line, rng))
            ops["mutated"] += 1
        elif r < rate * 1.2:
            out.extend([line] * rng.randrange(2, 5))  # repeated: duplicates
            ops["repeated"] += 1
        else:
            out.append(line)
    return out, dict(ops)


def stream_round(seed: int, rnd: int, validator: Any, counts: Counter[str],
                 with_known: bool = False) -> dict[str, Any]:  # fmt: skip
    lines, ops = stream_lines(seed, rnd, with_known)
    counts["stream"] += len(lines)
    cut = random.Random(rnd).randrange(len(lines))
    mon = Monitor(STREAM_PARAMS)
    alerts = []
    resumed: Monitor | None = None
    resumed_alerts = []
    for n, raw in enumerate(lines):
        H.feed(mon.process, mon, raw, STREAM_PARAMS.max_event_bytes)
        alerts += mon.take_alerts()
        if n == cut:  # a checkpoint mid-stream: the restored copy must continue identically
            wire = msgspec.msgpack.encode(mon.snapshot())  # as the stream driver stores it
            resumed = Monitor.restore(msgspec.msgpack.decode(wire), STREAM_PARAMS)
            resumed_alerts = list(alerts)
        elif resumed is not None:
            resumed.process(raw)
            resumed_alerts += resumed.take_alerts()
    mon.flush()
    alerts += mon.take_alerts()
    assert resumed is not None
    resumed.flush()
    resumed_alerts += resumed.take_alerts()
    assert H.tally(mon) == len(lines)
    for a in alerts:
        validator.validate(msgspec.to_builtins(a))
    assert [a.alert_id + a.status for a in resumed_alerts] == [
        a.alert_id + a.status for a in alerts
    ], "a monitor restored from a snapshot raised other alerts"
    return {"lines": len(lines), "alerts": len(alerts), "rejected": sum(mon.rejected.values()),
            **ops}  # fmt: skip


# -- the run ---------------------------------------------------------------------------------


def run(minutes: float, seed: int, out: Path, only_round: int | None = None,
        with_known: bool = False) -> int:  # fmt: skip
    import jsonschema

    from tests.conftest import contract_dir

    schema = json.loads((contract_dir() / "alert.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    findings = Findings(out)
    counts: Counter[str] = Counter()
    if only_round is not None:
        try:
            print(stream_round(seed, only_round, validator, counts, with_known))
        except Exception as exc:
            traceback.print_exc()
            findings.add("stream", exc, {"seed": seed, "round": only_round})
            return 1
        return 0
    t0 = time.monotonic()
    deadline = t0 + minutes * 60
    next_report = t0 + 60
    rounds = stream_alerts = 0
    workdir = Path(tempfile.mkdtemp(prefix="ordermon-fuzz-"))
    print(f"fuzz: {minutes} min, seed {seed}, findings to {out}/", file=sys.stderr, flush=True)
    while time.monotonic() < deadline:
        rounds += 1
        for phase, check in hypothesis_round(1000, counts, workdir):
            if time.monotonic() >= deadline:
                break
            try:
                check()
            except Exception as exc:
                findings.add(phase, exc, {"reproduce": "see notes: the falsifying example"})
        if time.monotonic() < deadline:
            try:
                stream_alerts += stream_round(seed, rounds, validator, counts, with_known)["alerts"]
            except Exception as exc:
                again = f"python -m tests.fuzz --seed {seed} --round {rounds}" + (
                    " --with-known" if with_known else ""
                )
                findings.add("stream", exc, {"seed": seed, "round": rounds, "reproduce": again})
        now = time.monotonic()
        if now >= next_report or now >= deadline:
            next_report = now + 60
            print(f"  {(now - t0) / 60:4.1f} min  rounds {rounds}  inputs {sum(counts.values()):,}"
                  f" {dict(counts)}  findings {dict(findings.seen)}", file=sys.stderr,
                  flush=True)  # fmt: skip
    summary = {
        "minutes": round((time.monotonic() - t0) / 60, 2),
        "seed": seed,
        "rounds": rounds,
        "inputs_tried": sum(counts.values()),
        "by_phase": dict(counts),
        "stream_alerts": stream_alerts,
        "findings": dict(findings.seen),
        "finished_at": iso(time.time()),
    }
    print(json.dumps(summary, indent=1))
    return 1 if findings.seen else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    ap.add_argument(
        "--out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "ordermon-fuzz",
        help="where findings go (default: %(default)s)",
    )
    ap.add_argument("--round", type=int, help="run this one stream round again and stop")
    ap.add_argument(
        "--with-known",
        action="store_true",
        help="also send the inputs of known, reported crashes (KNOWN_LAST_SAFE)",
    )
    args = ap.parse_args(argv)
    return run(args.minutes, args.seed, args.out, args.round, args.with_known)


if __name__ == "__main__":
    sys.exit(main())
