"""The local Keycloak launcher (cityguard.lab.keycloak): what it runs, what it refuses before
starting anything, and its readiness probe. Starting the real server is the integration tests'
(test_keycloak_server.py) and the demo's."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cityguard.core.secrets import redact
from cityguard.lab import keycloak as launcher
from cityguard.lab.keycloak import KeycloakError, LocalKeycloak


def test_the_server_listens_on_loopback_with_its_own_data_directory(tmp_path: Path) -> None:
    argv = launcher.server_argv(Path("/kc"), "127.0.0.1", 8080, 9123, tmp_path)
    assert argv[:2] == ["/kc/bin/kc.sh", "start-dev"]
    assert "--http-host=127.0.0.1" in argv
    assert "--http-port=8080" in argv and "--http-management-port=9123" in argv
    assert f"--db-url=jdbc:h2:file:{tmp_path}/h2/keycloakdb;NON_KEYWORDS=VALUE" in argv
    assert not any("password" in arg.lower() for arg in argv), "no secret on a command line"


def test_the_admin_reaches_keycloak_in_its_environment_only() -> None:
    base = {"PATH": "/usr/bin"}
    env = launcher.server_env(base, "cg-admin", "s3cret", "/usr/lib/jvm/x")
    assert env["KC_BOOTSTRAP_ADMIN_USERNAME"] == "cg-admin"
    assert env["KC_BOOTSTRAP_ADMIN_PASSWORD"] == "s3cret"
    assert env["JAVA_HOME"] == "/usr/lib/jvm/x" and env["PATH"] == "/usr/bin"
    assert base == {"PATH": "/usr/bin"}, "cityguard's own environment is left alone"
    assert "JAVA_HOME" not in launcher.server_env({}, "a", "p", None)


def test_the_preferred_jdk_is_chosen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", "/opt/java")
    assert launcher.java_home(tmp_path) == "/opt/java"
    for name in ("java-17-openjdk-amd64", "temurin-21-jdk-amd64"):
        (tmp_path / name / "bin").mkdir(parents=True)
        (tmp_path / name / "bin" / "java").touch()
    assert launcher.java_home(tmp_path) == str(tmp_path / "temurin-21-jdk-amd64")


def test_urls_name_ipv6_loopback_in_brackets() -> None:
    assert launcher.base_url("127.0.0.1", 8080) == "http://127.0.0.1:8080"
    assert launcher.base_url("::1", 8080) == "http://[::1]:8080"


def test_a_taken_port_is_said_before_anything_starts() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = launcher.start(port=port)
    try:
        assert server.process is None
        assert server.error == f"cannot start Keycloak on 127.0.0.1:{port}: the port is in use"
        with pytest.raises(KeycloakError, match="the port is in use"):
            server.wait_ready()
    finally:
        server.stop()
    assert server.data_dir is not None and not server.data_dir.exists()


def test_only_loopback_is_served() -> None:
    server = launcher.start(host="192.0.2.1", port=8080)
    server.stop()
    assert server.process is None
    assert server.error == "Keycloak is started on loopback only, not on 192.0.2.1"


def test_a_missing_distribution_names_the_script_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYGUARD_CACHE", str(tmp_path))
    server = launcher.start()
    server.stop()
    assert server.process is None
    assert server.error is not None and "run tools/components/keycloak.sh" in server.error
    assert server.url.startswith("http://127.0.0.1:")


def test_the_generated_admin_password_is_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYGUARD_CACHE", str(tmp_path))
    server = launcher.start()
    server.stop()
    assert len(server.admin_password) >= 20
    assert redact(f"x {server.admin_password} y") == "x (redacted) y"
    assert server.admin_password not in repr(server)


def test_a_handle_without_a_server_stops_harmlessly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep").touch()
    server = launcher.not_started("admin", "no Keycloak for you")
    server.stop()
    server.stop()
    assert (tmp_path / "keep").exists(), "no data directory: nothing is removed"
    with pytest.raises(KeycloakError, match=r"^no Keycloak for you$"):
        server.wait_ready()


def test_a_server_that_exits_while_starting_is_an_error_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "keycloak.log"
    log.write_text("starting\nERROR: port 8080 already in use\n")
    process = subprocess.Popen(["sh", "-c", "exit 3"], start_new_session=True)
    process.wait()
    server = LocalKeycloak("http://127.0.0.1:1", "a", "p", tmp_path, log, process=process)
    with pytest.raises(KeycloakError) as caught:
        server.wait_ready()
    assert str(caught.value) == (
        "Keycloak exited with 3: starting | ERROR: port 8080 already in use"
    )
    server.stop()
    assert not tmp_path.exists()


@pytest.fixture
def answering() -> Iterator[str]:
    """A stand-in for a ready Keycloak: /realms/master answers 200."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/realms/master" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_readiness_is_probed_at_least_once_after_the_deadline(answering: str) -> None:
    """A caller that first needs the server long after its start finds it ready."""
    server = LocalKeycloak(answering, "a", "p", None, None, started_at=time.monotonic() - 999)
    server.timeout_s = 1
    server.wait_ready()
    assert server.ready_after_s is not None and server.ready_after_s >= 999
    server.wait_ready()  # once ready, no probe again


def test_no_answer_by_the_deadline_is_an_error(tmp_path: Path) -> None:
    port = launcher.free_port()
    server = LocalKeycloak(
        f"http://127.0.0.1:{port}", "a", "p", None, None, started_at=time.monotonic() - 10
    )
    server.timeout_s = 1
    with pytest.raises(KeycloakError, match=r"^Keycloak not ready after 1 s: \(no log\)$"):
        server.wait_ready()
    with pytest.raises(KeycloakError):  # the error is kept
        server.wait_ready()
