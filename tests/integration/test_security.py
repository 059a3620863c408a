"""Security hygiene of a live worker: delivery secrets (receiver URLs, the HMAC key) never
appear in its logs or on any page it serves; the web port listens on 127.0.0.1 only; the
webhook it signs verifies with the snippet documented in alerts/README.md.

``config show`` is covered by tests/unit/test_cli.py and tests/alerts/test_config.py.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from streams.procs import WorkerProc, write_config
from streams.produce import produce_file
from streams.settings import StreamSettings, load_stream_settings
from streams.topics import ensure_topics
from tests.integration.conftest import run
from tests.synth import Stream

pytestmark = pytest.mark.slow
README = Path(__file__).resolve().parents[2] / "alerts" / "README.md"

HMAC_KEY = "hmac-KEY-5f3e1d0c9b8a"
HOOK_TOKEN = "hookPATHtoken7c41"  # in the webhook URL's path (read from a file)
SLACK_TOKEN = "xoxSLACKtoken9a2b"  # in the Slack URL (from the environment)
SECRETS = (HMAC_KEY, HOOK_TOKEN, SLACK_TOKEN)
# endpoints another engineer is adding (streams/metrics.py, streams/statuspage.py): checked
# when they answer, skipped while they are 404
PENDING_PAGES = ("/metrics", "/", "/api/overview")


class Hook(BaseHTTPRequestHandler):
    """The webhook receiver: records each request, answers 200 (in its own thread, since the
    test's polling of the worker blocks)."""

    got: list[tuple[Any, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).got.append((self.headers, body))  # case-insensitive, as the snippet says
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def readme_verifier():  # noqa: ANN201
    code = re.search(r"#### Verifying a request.*?```python\n(.*?)```", README.read_text(),
                     re.S)[1]  # fmt: skip
    ns: dict = {}
    exec(compile(code, "alerts/README.md", "exec"), ns)
    return ns["verify_ordermon"]


def get(port: int, path: str, host: str = "127.0.0.1") -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_web_host_defaults_to_loopback() -> None:
    assert StreamSettings().web_host == "127.0.0.1"
    assert load_stream_settings(env={}).web_host == "127.0.0.1"
    assert load_stream_settings(env={"ORDERMON_STREAM_WEB_HOST": "0.0.0.0"}).web_host == "0.0.0.0"


@pytest.fixture(scope="module")
def live(broker, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One worker with delivery secrets configured, run until its webhook delivery arrived;
    what it served, logged and sent, and whether its port answered on 127.0.0.2."""
    tmp = tmp_path_factory.mktemp("security")
    Hook.got = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    down = socket.socket()  # the Slack receiver: a held port nothing listens on
    down.bind(("127.0.0.1", 0))
    out: dict[str, Any] = {"pages": {}}
    try:
        with pytest.MonkeyPatch.context() as env:  # the worker inherits the environment
            env.setenv("HOOK_HMAC", HMAC_KEY)
            env.setenv(
                "ORDERMON_SLACK_WEBHOOK_URL",
                f"http://127.0.0.1:{down.getsockname()[1]}/services/T/B/{SLACK_TOKEN}",
            )
            w = _start_worker(broker, tmp, server.server_address[1])
        try:
            w.wait_for(lambda st: st["ready"], 60, "ready")
            deadline = time.monotonic() + 60
            while not Hook.got and time.monotonic() < deadline and w.running:
                time.sleep(0.1)  # polling the receiver against a deadline
            assert Hook.got, f"no webhook delivery; log:\n{w.log_tail()}"
            for path in ("/status", "/healthz", "/readyz", *PENDING_PAGES):
                out["pages"][path] = get(w.port, path)
            out["refused_on_127_0_0_2"] = refused("127.0.0.2", w.port)
            out["answers_on_127_0_0_1"] = get(w.port, "/healthz")[0] == 200
        finally:
            assert w.terminate() == 0, w.log_tail()
    finally:
        server.shutdown()
        server.server_close()
        down.close()
    out["log"] = w.log_path.read_text(errors="replace")
    out["hook"] = list(Hook.got)
    return out


def _start_worker(broker, tmp: Path, hook_port: int) -> WorkerProc:  # noqa: ANN001
    (tmp / "hook_url").write_text(f"http://127.0.0.1:{hook_port}/hook/{HOOK_TOKEN}\n")
    tag = uuid.uuid4().hex[:8]
    names = {"input_topic": f"sec-{tag}", "dlq_topic": f"sec-{tag}.dlq",
             "alerts_topic": f"sec-alerts-{tag}", "app_id": f"om-sec-{tag}"}  # fmt: skip
    cfg = write_config(tmp / "ordermon.toml", partitions=1, store="memory://",
                       log_level="info", idle_after_s=1.0, **names)  # fmt: skip
    with open(cfg, "a") as fh:
        fh.write(f"""
[alerts]
outbox = "{tmp / "outbox.sqlite"}"
[alerts.route]
group_wait = "0s"
[[alerts.receivers]]
name = "risk-api"
type = "webhook"
url_file = "{tmp / "hook_url"}"
secret_env = "HOOK_HMAC"
""")
    events = tmp / "events.jsonl"
    s = Stream(seed=4, publishers=30, hours=2.5, orders_per_hour=800)
    s.baseline()
    s.burst(s.pubs[0], at_h=1.25, minutes=15, count=60, reason="fraud")
    events.write_bytes(b"\n".join(s.lines()) + b"\n")
    run(ensure_topics(broker.bootstrap, {names["input_topic"]: 1}))
    res = run(produce_file(str(events), broker.bootstrap, names["input_topic"], partitions=1))
    assert res["failed"] == 0
    return WorkerProc(broker.url, cfg, tmp).start()


def test_the_worker_logs_name_receivers_but_never_their_secrets(live: dict) -> None:
    log = live["log"]
    assert "notification_delivered" in log and "worker_starting" in log  # it did log
    lines = log.splitlines()
    # the failing receiver's retries are logged, naming it (not its URL)
    assert any("notification_retry_scheduled" in ln and "slack" in ln for ln in lines)
    assert any("notification_delivered" in ln and "risk-api" in ln for ln in lines)
    for secret in SECRETS:
        assert secret not in log, f"secret {secret!r} in the worker log"


@pytest.mark.parametrize("path", ["/status", "/healthz", "/readyz", *PENDING_PAGES])
def test_no_page_shows_a_secret(live: dict, path: str) -> None:
    code, body = live["pages"][path]
    if code == 404 and path in PENDING_PAGES:
        pytest.skip(f"{path} is not served yet (404): nothing to check")
    assert code in (200, 503), (path, code)
    text = body.decode("utf-8", "replace")
    for secret in SECRETS:
        assert secret not in text, f"secret {secret!r} on {path}"


def test_the_web_port_listens_on_127_0_0_1_only(live: dict) -> None:
    assert live["answers_on_127_0_0_1"]
    assert live["refused_on_127_0_0_2"], "the web port answers on 127.0.0.2 (not loopback-only)"


def test_the_webhook_signature_verifies_with_the_readme_snippet(live: dict) -> None:
    verify = readme_verifier()
    headers, body = live["hook"][0]
    assert verify(HMAC_KEY.encode(), headers, body)
    assert not verify(b"another-key", headers, body)
    assert not verify(HMAC_KEY.encode(), headers, body + b" ")
