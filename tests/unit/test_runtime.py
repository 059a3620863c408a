"""Interpreter settings every ordermon process applies (``monitor.runtime``)."""

import gc
import os
import subprocess
import sys

import pytest

from monitor.config import ConfigError
from monitor.runtime import GC_THRESHOLD, tune_gc


@pytest.fixture
def gc_threshold():
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


def test_tune_gc_raises_only_the_youngest_threshold(gc_threshold):
    gc.set_threshold(700, 11, 12)
    assert tune_gc({}) == GC_THRESHOLD
    assert gc.get_threshold() == (GC_THRESHOLD, 11, 12)
    assert tune_gc({"ORDERMON_GC_THRESHOLD": "5000"}) == 5000
    assert gc.get_threshold() == (5000, 11, 12)


def test_tune_gc_zero_keeps_pythons_setting(gc_threshold):
    gc.set_threshold(700, 10, 10)
    assert tune_gc({"ORDERMON_GC_THRESHOLD": "0"}) is None
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.parametrize("bad", ["x", "1.5", "-3"])
def test_tune_gc_rejects_a_bad_value_clearly(gc_threshold, bad):
    before = gc.get_threshold()
    with pytest.raises(ConfigError, match="ORDERMON_GC_THRESHOLD must be"):
        tune_gc({"ORDERMON_GC_THRESHOLD": bad})
    assert gc.get_threshold() == before


def test_ordermon_applies_it_and_reports_a_bad_value_as_configuration(tmp_path):
    code = (
        "import gc, sys; from monitor.cli import main; main(sys.argv[1:]); "
        "print(gc.get_threshold()[0])"
    )
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    unset = {k: v for k, v in os.environ.items() if k != "ORDERMON_GC_THRESHOLD"}
    ok = subprocess.run([sys.executable, "-c", code, "replay", "--quiet", str(empty)],
                        capture_output=True, text=True, check=False, env=unset)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().splitlines()[-1] == str(GC_THRESHOLD)
    env = {**os.environ, "ORDERMON_GC_THRESHOLD": "lots"}
    bad = subprocess.run([sys.executable, "-m", "monitor.cli", "replay", str(empty)],
                         capture_output=True, text=True, check=False, env=env)  # fmt: skip
    assert bad.returncode == 2
    assert "configuration error: ORDERMON_GC_THRESHOLD must be a whole number" in bad.stderr
