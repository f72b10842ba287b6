"""One real Keycloak for the whole test session: started early, in the background, stopped always.

Started by ``pytest_collection_finish`` as soon as the collected tests include one that uses
the ``keycloak`` fixture, so its start (about 1 minute, 3-4 on a busy machine with a fresh
data directory) overlaps the other tests; the fixture waits for it only when an eIDAS test
first needs it. It runs from the distribution tools/components/keycloak.sh caches, on loopback
ports picked free, with its own data directory and a random admin password handed to cityguard
through an environment variable. It is stopped by its process group at session end, also when
the session fails or is interrupted.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

KEYCLOAK_VERSION = os.environ.get("KEYCLOAK_VERSION", "26.7.3")
START_TIMEOUT_S = float(os.environ.get("CITYGUARD_KEYCLOAK_START_TIMEOUT", "420"))
ADMIN_PASSWORD_ENV = "CITYGUARD_TEST_KEYCLOAK_ADMIN_PASSWORD"
JDKS = (
    "temurin-25-jdk-amd64",
    "temurin-21-jdk-amd64",
    "java-21-openjdk-amd64",
    "java-17-openjdk-amd64",
)


def keycloak_home() -> Path:
    cache = Path(os.environ.get("CITYGUARD_CACHE", Path.home() / ".cache" / "cityguard"))
    return cache / "keycloak" / KEYCLOAK_VERSION / f"keycloak-{KEYCLOAK_VERSION}"


def java_home() -> str | None:
    for name in JDKS:
        if (Path("/usr/lib/jvm") / name / "bin" / "java").exists():
            return str(Path("/usr/lib/jvm") / name)
    return os.environ.get("JAVA_HOME")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class KeycloakServer:
    url: str
    admin_user: str
    admin_password: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: float = field(default_factory=time.monotonic)
    ready_after_s: float | None = None
    error: str | None = None

    def wait_ready(self) -> None:
        if self.ready_after_s is not None:
            return
        if self.error is not None:
            pytest.fail(self.error)
        deadline = self.started_at + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                self.error = f"Keycloak exited with {self.process.returncode}: {self.log_tail()}"
                pytest.fail(self.error)
            try:
                with urllib.request.urlopen(f"{self.url}/realms/master", timeout=5) as answer:
                    if answer.status == 200:
                        self.ready_after_s = time.monotonic() - self.started_at
                        return
            except OSError:
                pass
            time.sleep(1)
        self.error = f"Keycloak not ready after {START_TIMEOUT_S:.0f} s: {self.log_tail()}"
        pytest.fail(self.error)

    def log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-5:])

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.data_dir, ignore_errors=True)


_server: KeycloakServer | None = None


def start_server() -> KeycloakServer:
    """Start Keycloak in the background (returns at once); a missing distribution is an error."""
    global _server
    if _server is not None:
        return _server
    home = keycloak_home()
    data_dir = Path(tempfile.mkdtemp(prefix="cg-keycloak-"))
    port, management = free_port(), free_port()
    server = KeycloakServer(
        url=f"http://127.0.0.1:{port}",
        admin_user="cg-admin",
        admin_password=secrets.token_urlsafe(18),
        data_dir=data_dir,
        log_path=data_dir / "keycloak.log",
    )
    _server = server
    if not (home / "bin" / "kc.sh").exists():
        server.error = f"Keycloak {KEYCLOAK_VERSION} missing: run tools/components/keycloak.sh"
        return server
    env = dict(os.environ)
    env.update(
        KC_BOOTSTRAP_ADMIN_USERNAME=server.admin_user,
        KC_BOOTSTRAP_ADMIN_PASSWORD=server.admin_password,
    )
    jdk = java_home()
    if jdk:
        env["JAVA_HOME"] = jdk
    argv = [
        str(home / "bin" / "kc.sh"),
        "start-dev",
        "--http-host=127.0.0.1",
        f"--http-port={port}",
        f"--http-management-port={management}",
        "--hostname-strict=false",
        "--db=dev-file",
        f"--db-url=jdbc:h2:file:{data_dir}/h2/keycloakdb;NON_KEYWORDS=VALUE",
        "--log-level=INFO,org.keycloak.broker:debug,org.keycloak.saml:debug",
    ]
    with server.log_path.open("wb") as log:
        server.process = subprocess.Popen(  # a long-lived server: the fixture owns it
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            cwd=data_dir,
        )
    atexit.register(server.stop)
    return server


def uses_keycloak(items: list[pytest.Item]) -> bool:
    return any("keycloak" in getattr(item, "fixturenames", ()) for item in items)


def pytest_collection_finish(session: pytest.Session) -> None:
    if uses_keycloak(session.items):
        start_server()


def pytest_unconfigure(config: pytest.Config) -> None:
    if _server is not None:
        _server.stop()


@pytest.fixture(scope="session")
def keycloak() -> KeycloakServer:
    """The session's Keycloak, ready; its admin password is in ADMIN_PASSWORD_ENV."""
    server = start_server()
    server.wait_ready()
    os.environ[ADMIN_PASSWORD_ENV] = server.admin_password
    return server
