"""One real Keycloak for the whole test session: started early, in the background, stopped always.

Started by ``pytest_collection_finish`` as soon as the collected tests include one that uses
the ``keycloak`` fixture, so its start (about 1 minute, 3-4 on a busy machine with a fresh
data directory) overlaps the lab's start and the other tests; the fixture waits for it only
when an eIDAS test first needs it. It runs from the distribution tools/components/keycloak.sh
caches, on loopback ports picked free, with its own data directory and a random admin password
handed to cityguard through an environment variable.

It is stopped by its process group (kc.sh and its java) at session end, also when tests fail,
on Ctrl-C, on SIGTERM (the handler stops it, then ends pytest as Ctrl-C does, so the other
fixtures are torn down too) and, since kc.sh
gets SIGTERM when pytest dies (PR_SET_PDEATHSIG; kc.sh hands it to java), even when pytest is
killed outright.

For fast iteration on one's own machine, CITYGUARD_TEST_KEYCLOAK_URL names a Keycloak already
running on loopback (admin ``cg-admin`` or CITYGUARD_TEST_KEYCLOAK_ADMIN, its password in
CITYGUARD_TEST_KEYCLOAK_ADMIN_PASSWORD): the session then uses it and never stops it. The
tests' realms must not exist there yet.
"""

from __future__ import annotations

import atexit
import ctypes
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
ATTACH_URL_ENV = "CITYGUARD_TEST_KEYCLOAK_URL"
PR_SET_PDEATHSIG = 1
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


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent (pytest) dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


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
        # Probe at least once: the first eIDAS test may come long after the start (lab tests
        # run before it), when a deadline counted from the start has passed on a ready server.
        while True:
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
            if time.monotonic() >= deadline:
                break
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
    attach = os.environ.get(ATTACH_URL_ENV)
    if attach:
        _server = attached_server(attach)
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
            start_new_session=True,  # its own process group: stopped as one
            cwd=data_dir,
            preexec_fn=_die_with_parent,
        )
    atexit.register(server.stop)
    _stop_on_sigterm(server)
    return server


def attached_server(url: str) -> KeycloakServer:
    """A Keycloak someone else started and stops (ATTACH_URL_ENV); never stopped here."""
    data_dir = Path(tempfile.mkdtemp(prefix="cg-keycloak-attached-"))
    server = KeycloakServer(
        url=url.rstrip("/"),
        admin_user=os.environ.get("CITYGUARD_TEST_KEYCLOAK_ADMIN", "cg-admin"),
        admin_password=os.environ.get(ADMIN_PASSWORD_ENV, ""),
        data_dir=data_dir,
        log_path=data_dir / "keycloak.log",
    )
    if not server.admin_password:
        server.error = f"{ATTACH_URL_ENV} is set but {ADMIN_PASSWORD_ENV} is not"
    return server


def _stop_on_sigterm(server: KeycloakServer) -> None:
    """On SIGTERM stop Keycloak first, then end pytest as Ctrl-C does (fixtures torn down).

    A second SIGTERM ends pytest at once, as it would have without this handler.
    """
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return  # someone else handles it (and pytest_unconfigure or atexit stops Keycloak)

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        server.stop()
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, handler)


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
