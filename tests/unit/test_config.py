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
    ],
)
def test_bad_config_is_a_clear_error(tmp_path, text, message):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_params(str(cfg), env={})
