"""The command line end to end, as a user runs it (subprocesses of the installed command)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ORDERMON = [sys.executable, "-m", "monitor.cli"]


def run(*args: str, stdin: bytes | None = None, env: dict | None = None):
    return subprocess.run(
        [*ORDERMON, *args],
        input=stdin,
        capture_output=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    res = run("simulate", "--seed", "5", "--out", str(out), "--publishers", "300", "--days", "1.5")
    assert res.returncode == 0, res.stderr.decode()
    return out


@pytest.fixture(scope="module")
def replayed(sim, tmp_path_factory):
    out = tmp_path_factory.mktemp("replay")
    alerts, rejects = out / "alerts.jsonl", out / "rejects.jsonl"
    res = run("replay", str(sim / "events.jsonl"), "--out", str(alerts), "--rejects", str(rejects))
    assert res.returncode == 0, res.stderr.decode()
    return alerts, rejects, res.stderr.decode()


def test_replay_writes_alerts_that_validate_against_the_contract(replayed, alert_validator):
    alerts, _, _ = replayed
    records = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert any(r["status"] == "firing" for r in records)
    for rec in records:
        errors = list(alert_validator.iter_errors(rec))
        assert not errors, (rec, errors)
    ids = {r["alert_id"] for r in records if r["status"] == "resolved"}
    assert ids <= {r["alert_id"] for r in records if r["status"] == "firing"}


def test_every_rejected_line_is_kept_with_line_number_code_and_message(sim, replayed):
    _, rejects, summary = replayed
    lines = (sim / "events.jsonl").read_bytes().splitlines()
    recs = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert recs, "the simulated stream contains malformed lines"
    for r in recs:
        assert r["code"] and r["message"]
        original = lines[r["line"] - 1]
        assert r.get("raw", "").encode() == original or "raw_base64" in r
    assert f"rejected {len(recs):,}" in summary


def test_replay_summary_reports_counts_and_speed(replayed):
    _, _, summary = replayed
    assert "lines/s" in summary and "alerts fired" in summary and "invalidations" in summary


def test_replay_reads_gzip_and_stdin_with_identical_alerts(sim, replayed, tmp_path):
    alerts, _, _ = replayed
    gz = tmp_path / "events.jsonl.gz"
    gz.write_bytes(gzip.compress((sim / "events.jsonl").read_bytes()))
    res = run("replay", str(gz), "--quiet")
    assert res.returncode == 0 and res.stdout == alerts.read_bytes()
    res = run("replay", "-", "--quiet", stdin=(sim / "events.jsonl").read_bytes())
    assert res.returncode == 0 and res.stdout == alerts.read_bytes()


def test_unreadable_input_exits_non_zero_with_a_clear_message(tmp_path):
    res = run("replay", str(tmp_path / "missing.jsonl"))
    assert res.returncode == 2
    assert b"cannot read" in res.stderr and b"missing.jsonl" in res.stderr
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"\x1f\x8b\x08garbage")
    res = run("replay", str(bad))
    assert res.returncode == 2 and b"cannot read" in res.stderr


def test_evaluate_compares_with_the_static_rule(sim, replayed):
    alerts, _, _ = replayed
    res = run(
        "evaluate", "--incidents", str(sim / "incidents.json"), "--alerts", str(alerts), "--json"
    )
    assert res.returncode == 0, res.stderr.decode()
    report = json.loads(res.stdout)
    assert report["overall"]["recall"] is not None
    assert "static" in report and report["static"]["overall"]["alerts"] > 0


def test_config_show_prints_documented_defaults_and_env_overrides():
    res = run("config", "show", env={"ORDERMON_PUBLISHER_MIN_EXCESS": "9"})
    text = res.stdout.decode()
    assert res.returncode == 0
    assert "[publisher]" in text and "min_excess = 9.0" in text
    assert "# tumbling window width" in text


def test_config_errors_are_reported_not_raised(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[publisher]\nmin_excess = 'lots'\n")
    res = run("config", "show", "--config", str(cfg))
    assert res.returncode == 2 and b"publisher.min_excess" in res.stderr
    cfg.write_text("[publisher]\nno_such_knob = 1\n")
    res = run("config", "show", "--config", str(cfg))
    assert res.returncode == 2 and b"unknown setting publisher.no_such_knob" in res.stderr


def test_detect_series_scores_a_csv_causally(tmp_path):
    rows = ["timestamp,value"] + [f"{1_700_000_000 + 300 * i},{100 + (i % 12)}" for i in range(600)]
    rows[-5] = f"{1_700_000_000 + 300 * 595},900"  # a spike
    csv = tmp_path / "s.csv"
    csv.write_text("\n".join(rows) + "\n")
    res = run("detect-series", str(csv))
    assert res.returncode == 0, res.stderr.decode()
    out = res.stdout.decode().splitlines()
    assert out[0] == "timestamp,value,anomaly_score"
    scores = [float(line.split(",")[2]) for line in out[1:]]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[595] >= 0.5 and max(scores[100:590]) < 0.5


def test_config_show_never_prints_delivery_secrets():
    secret_url = "https://hooks.slack.com/services/T000/B000/very-secret-token"
    res = run(
        "config",
        "show",
        env={
            "ORDERMON_SLACK_WEBHOOK_URL": secret_url,
            "ORDERMON_WEBHOOK_URL": "https://example.test/hook",
            "ORDERMON_WEBHOOK_SECRET": "hmac-secret-value",
        },
    )
    text = res.stdout.decode() + res.stderr.decode()
    assert res.returncode == 0, text
    assert "[[alerts.receivers]]" in text and "<redacted>" in text
    assert "very-secret-token" not in text and "hmac-secret-value" not in text
    assert "example.test" not in text


@pytest.mark.parametrize(
    "args, message",
    [  # each was a traceback (exit 1) before an outside review
        (["replay", "{tiny}", "--out", "{tmp}/missing/a.jsonl"], "No such file or directory"),
        (["replay", "{tiny}", "--out", "{tmp}"], "Is a directory"),
        (["replay", "{tiny}", "--rejects", "{tmp}/missing/r.jsonl"], "No such file"),
        (["replay", "{tiny}", "--config", "{garbage}"], "is not valid TOML"),
        (["evaluate", "--incidents", "{garbage}", "--alerts", "{tiny}"], "are not an incidents"),
        (["evaluate", "--incidents", "{tmp}/nope.json", "--alerts", "{tiny}"], "No such file"),
        (["simulate", "--seed", "1", "--out", "{tmp}/s", "--publishers", "0"], "greater than 0"),
        (["simulate", "--seed", "1", "--out", "{tmp}/s", "--days", "nan"], "greater than 0"),
        (["simulate", "--seed", "1", "--out", "{tiny}", "--days", "0.01"], "File exists"),
    ],
)
def test_bad_paths_and_arguments_are_usage_errors_not_tracebacks(tmp_path, args, message):
    tiny = tmp_path / "tiny.jsonl"
    tiny.write_bytes(b"{}\n")
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(128, 256)))
    subs = {"tiny": str(tiny), "tmp": str(tmp_path), "garbage": str(garbage)}
    res = run(*(a.format(**subs) for a in args))
    err = res.stderr.decode()
    assert res.returncode == 2, err
    assert message in err and "Traceback" not in err, err


def test_a_closed_output_pipe_ends_the_command_quietly(sim):
    """``ordermon replay ... | head``: the reader going away is no error (the pipe's read
    end is closed before the command starts, so its first write fails, every time)."""
    r, w = os.pipe()
    os.close(r)
    try:
        res = subprocess.run([*ORDERMON, "replay", str(sim / "events.jsonl"), "--quiet"],
                             stdout=w, stderr=subprocess.PIPE, timeout=300)  # fmt: skip
    finally:
        os.close(w)
    assert res.returncode == 0, res.stderr.decode()
    assert b"Traceback" not in res.stderr


def test_quiet_replay_prints_nothing_on_stderr(sim):
    """--quiet means no summary and no notes (the rejects note too), only the alerts."""
    res = run("replay", str(sim / "events.jsonl"), "--quiet")
    assert res.returncode == 0 and res.stdout
    assert res.stderr == b"", res.stderr.decode()


def test_a_byte_order_mark_is_dropped_and_a_truncated_gzip_names_the_last_line(sim, tmp_path):
    lines = (sim / "events.jsonl").read_bytes().splitlines(keepends=True)[:2000]
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + b"".join(lines))
    res = run("replay", str(bom), "--rejects", str(tmp_path / "r.jsonl"))
    assert res.returncode == 0
    rejected = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert all(r["line"] != 1 for r in rejected), rejected[:1]  # the first line is an event
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gzip.compress(b"".join(lines))[:-400])
    res = run("replay", str(cut), "--quiet")
    assert res.returncode == 2
    assert b"cannot read" in res.stderr and b"after line " in res.stderr, res.stderr


def test_config_show_includes_and_checks_the_stream_section():
    res = run("config", "show")
    assert res.returncode == 0
    assert b"\n[stream]\n" in res.stdout and b"web_port = 6066" in res.stdout
    bad = run("config", "show", env={"ORDERMON_STREAM_WEB_PORT": "abc"})
    assert bad.returncode == 2 and b"stream.web_port" in bad.stderr, bad.stderr
