"""Prometheus textfile metrics and the webhook after a backup or drill."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from cityguard.drill.alerts import Event, publish


def test_textfile_keeps_one_line_per_system_and_the_last_success(tmp_path: Path) -> None:
    path = tmp_path / "cityguard.prom"
    publish(
        Event("portal", "drill", True, 1000, 212.5, 3600),
        [],
        textfile_path=str(path),
        webhook_url=None,
    )
    publish(Event("registry", "backup", True, 1100), [], textfile_path=str(path), webhook_url=None)
    publish(
        Event("portal", "drill", False, 2000, 4000, 90000),
        ["RPO breached"],
        textfile_path=str(path),
        webhook_url=None,
    )
    text = path.read_text()
    assert 'cityguard_dr_last_result{system="portal",kind="drill"} 0' in text
    assert 'cityguard_dr_last_success_timestamp_seconds{system="portal",kind="drill"} 1000' in text
    assert (
        'cityguard_dr_last_success_timestamp_seconds{system="registry",kind="backup"} 1100' in text
    )
    assert 'cityguard_dr_rto_seconds{system="portal"} 4000.000' in text
    assert 'cityguard_dr_rpo_seconds{system="portal"} 90000.000' in text


def test_webhook_gets_a_json_post_and_an_unreachable_one_is_a_warning() -> None:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        warnings = publish(
            Event("portal", "drill", False, 5, 1.0, 2.0, "r1"),
            ["x"],
            textfile_path=None,
            webhook_url=url,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert warnings == []
    assert received[0]["system"] == "portal" and received[0]["result"] == "fail"
    assert received[0]["findings"] == ["x"] and received[0]["rto_s"] == 1.0
    gone = publish(Event("portal", "drill", True, 5), [], textfile_path=None, webhook_url=url)
    assert gone and gone[0].startswith("webhook not delivered")
