from __future__ import annotations

import pytest

from monitor.config import ConfigError, load_params, render
from monitor.model import Kind


def test_defaults_load_without_a_file():
    p = load_params(None, env={})
    assert p.window_s == 300 and p.publisher.min_excess > 0


def test_file_then_environment_override(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[monitor]\nwindow_s = 600\n[quality.clock_skew]\nmin_rate = 0.05\n")
    p = load_params(str(cfg), env={"ORDERMON_MONITOR_WINDOW_S": "900"})
    assert p.window_s == 900
    assert p.rates[Kind.CLOCK_SKEW].min_rate == 0.05


def test_rendered_config_loads_back_unchanged(tmp_path):
    p = load_params(None, env={"ORDERMON_PLATFORM_SPIKE_SCORE": "7"})
    cfg = tmp_path / "round.toml"
    cfg.write_text(render(p))
    assert load_params(str(cfg), env={}) == p


@pytest.mark.parametrize(
    "text, message",
    [
        ("[monitor]\nwindow_s = -5\n", "must not be negative"),
        ("[nope]\n", "unknown config section"),
        ("[quality.nope]\nmin_rate = 1\n", "unknown section quality.nope"),
        ("[monitor\n", "not valid TOML"),
        # found by an outside review: each crashed later or silently changed behaviour
        ("[publisher]\nmin_excess = -5\n", "publisher.min_excess: must not be negative"),
        ("[monitor]\nwindow_s = 0\n", "monitor.window_s: must be greater than 0"),
        ("[publisher]\nhalflife_windows = 0\n", "halflife_windows: must be greater than 0"),
        ("[platform]\ndispersion = 0\n", "platform.dispersion: must be greater than 0"),
        ("[platform]\nprior_mix = [1, 2]\n", "prior_mix: must be 6 non-negative weights"),
        ("[publisher]\nfamily_alpha = 7\n", "family_alpha: must be a share in"),
        ("[quality.malformed_events]\nbackground = 2\n", "background: must be a share"),
        ("[monitor]\nresolve_after_windows = 0\n", "resolve_after_windows: must be greater"),
        ("[platform]\nspike_score = nan\n", "spike_score: must be a finite number"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path, text, message):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_params(str(cfg), env={})


@pytest.mark.parametrize(
    "var, value, message",
    [
        ("ORDERMON_PLATFORM_SPIKE_SCORE", "nan", "platform.spike_score: must be a finite"),
        ("ORDERMON_PUBLISHER_MIN_RATIO", "inf", "publisher.min_ratio: must be a finite"),
        ("ORDERMON_PUBLISHER_MIN_EXCESS", "-5", "publisher.min_excess: must not be negative"),
    ],
)
def test_bad_environment_value_is_a_clear_error(var, value, message):
    with pytest.raises(ConfigError, match=message):
        load_params(None, env={var: value})


def test_misspelt_environment_section_is_an_error_and_other_variables_are_left_alone():
    with pytest.raises(ConfigError, match="did you mean ORDERMON_PUBLISHER_MIN_EXCESS"):
        load_params(None, env={"ORDERMON_PUBLSHER_MIN_EXCESS": "8"})
    with pytest.raises(ConfigError, match="ORDERMON_QUALITY_CLOCK_SKEW_MIN_RATE"):
        load_params(None, env={"ORDERMON_QUALITY_CLOCK_SKEE_MIN_RATE": "0.1"})
    others = {  # the stream service's, the receivers', the supervisor's, the runtime's
        "ORDERMON_STREAM_BROKER": "x", "ORDERMON_ALERTS_OUTBOX": "x",
        "ORDERMON_WEBHOOK_URL": "x", "ORDERMON_SLACK_WEBHOOK_URL": "x",
        "ORDERMON_WEBHOOK_SECRET": "x", "ORDERMON_ALERTMANAGER_URL": "x",
        "ORDERMON_GC_THRESHOLD": "0", "ORDERMON_MALLOC_MMAP_THRESHOLD": "1",
        "ORDERMON_TRACEMALLOC": "1", "ORDERMON_RESTARTS": "1", "ORDERMON_RESTART_REASON": "x",
        "ORDERMON_FRESH_SINCE": "1",
    }  # fmt: skip
    assert load_params(None, env=others) == load_params(None, env={})
