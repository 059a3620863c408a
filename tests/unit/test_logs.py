"""Worker logs: structured, snake_case, and never a secret (``streams.logs``)."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from monitor.cli import build_parser
from monitor.config import ConfigError
from streams.logs import MASK, Redactor, install_stdlib_redaction, processors
from streams.settings import load_stream_settings

SLACK = "https://hooks.slack.com/services/T0001/B0002/abcdefghijklmnop"
HMAC = "hmac-key-0123456789"


def json_logger(redactor: Redactor) -> tuple[structlog.BoundLogger, io.StringIO]:
    out = io.StringIO()
    log = structlog.wrap_logger(structlog.PrintLogger(out), processors=processors(True, redactor))
    return log, out


def test_a_configured_secret_is_masked_even_inside_an_exception_text():
    log, out = json_logger(Redactor([SLACK, HMAC]))
    try:
        raise ValueError(f"cannot POST to {SLACK} signed with {HMAC}")
    except ValueError:
        log.exception("receiver_failed", receiver="risk-slack")
    rec = json.loads(out.getvalue())
    assert rec["event"] == "receiver_failed" and rec["receiver"] == "risk-slack"
    assert "ValueError" in rec["exception"] and MASK in rec["exception"]
    assert SLACK not in out.getvalue() and HMAC not in out.getvalue()
    assert "abcdefghijklmnop" not in out.getvalue()


def test_fields_named_like_secrets_are_masked_and_others_kept():
    log, out = json_logger(Redactor())
    log.info("request_sent", authorization="Bearer abc.def", webhook_secret="s3cr3t-value",
             headers={"X-Api-Key": "k-123456"}, idempotency_key="om-n-1", partition=3)  # fmt: skip
    rec = json.loads(out.getvalue())
    assert rec["authorization"] == rec["webhook_secret"] == MASK
    assert rec["headers"] == {"X-Api-Key": MASK}
    assert rec["idempotency_key"] == "om-n-1" and rec["partition"] == 3


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("kafka://user:pa55word@broker:9092", "pa55word"),  # URL credentials
        ("GET https://api.example.com/x?token=t0k3n&page=2", "t0k3n"),  # secret query
        (f"unknown receiver at {SLACK}", "B0002/abcdefghijklmnop"),  # any Slack webhook
    ],
)
def test_unconfigured_credentials_in_text_are_masked(text, leak):
    clean = Redactor().scrub(text)
    assert leak not in clean and MASK in clean


def test_library_log_records_are_scrubbed_too():
    old = logging.getLogRecordFactory()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    lib = logging.getLogger("ordermon.test.library")
    lib.addHandler(handler)
    try:
        install_stdlib_redaction(Redactor([HMAC]))
        lib.warning("connect failed for %s with key %s", "kafka://u:pw123@h:1", HMAC)
    finally:
        logging.setLogRecordFactory(old)
        lib.removeHandler(handler)
    assert HMAC not in out.getvalue() and "pw123" not in out.getvalue()
    assert "connect failed" in out.getvalue()


def test_log_format_is_a_setting_and_a_flag():
    assert load_stream_settings(env={"ORDERMON_STREAM_LOG_FORMAT": "json"}).log_format == "json"
    with pytest.raises(ConfigError, match="log_format"):
        load_stream_settings(env={"ORDERMON_STREAM_LOG_FORMAT": "xml"})
    assert build_parser().parse_args(["run", "--log-format", "console"]).log_format == "console"
