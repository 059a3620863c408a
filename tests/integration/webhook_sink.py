"""A real local webhook receiver for the reliability tests (stdlib server on a thread).

It records every request: the ``Idempotency-Key`` header and the alert record(s) in the
body (``alert`` mode: one record per request). A receiver that honours the key (as
``alerts/README.md`` asks) processes a request once per key; ``processed()`` is what such
a receiver acted on, ``requests`` everything that arrived.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections import Counter

Key = tuple[str, str]  # (alert_id, status)


class WebhookSink:
    def __init__(self) -> None:
        self.requests: list[tuple[str, Key]] = []  # (idempotency key, (alert_id, status))
        self.cond = threading.Condition()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                rec = json.loads(body)
                records = rec.get("alerts", [rec])
                idem = self.headers.get("Idempotency-Key", "")
                with sink.cond:
                    for r in records:
                        sink.requests.append((idem, (r["alert_id"], r["status"])))
                    sink.cond.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def keys(self) -> set[Key]:
        with self.cond:
            return {k for _, k in self.requests}

    def processed(self) -> Counter[Key]:
        """How often each (alert_id, status) was acted on by a receiver that drops a
        repeated idempotency key."""
        with self.cond:
            return Counter(k for _, k in dict.fromkeys(self.requests))

    def raw_repeats(self) -> int:
        """Requests that repeated an earlier (key, record): a send whose acknowledgement
        was lost (a crash between the HTTP 200 and the outbox commit)."""
        with self.cond:
            return len(self.requests) - len(set(self.requests))

    def wait_for(self, keys: set[Key], timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: keys <= {k for _, k in self.requests}, timeout)

    def config(self, outbox: str) -> str:
        """The ``[alerts]`` section: this receiver gets every alert record, one request
        each, at once; no inhibition (whether a platform alert suppresses a publisher one
        depends on which arrived first, i.e. on timing, so the expected set would not be
        exact with it)."""
        return (
            f'\n[alerts]\noutbox = "{outbox}"\ninhibit_rules = []\n'
            f'[[alerts.receivers]]\nname = "hook"\ntype = "webhook"\nurl = "{self.url}"\n'
            '[alerts.route]\nreceiver = "hook"\ngroup_by = ["alert_id"]\n'
            'group_wait = "0s"\ngroup_interval = "1s"\n'
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
