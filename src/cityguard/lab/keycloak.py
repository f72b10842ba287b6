"""A local Keycloak for the demo, the eIDAS tests and the eIDAS benchmark: one implementation.

It runs from the distribution tools/components/keycloak.sh caches under ``$CITYGUARD_CACHE``,
in development mode (``kc.sh start-dev``), on loopback only, with a data directory of its own
(a new temporary directory, removed when it stops) and a random admin password that is never
printed nor written to a file: Keycloak reads it from its environment once, at its first start.

``start`` returns at once: Keycloak takes about a minute to start (several on a busy machine),
so a caller starts it first and does other work meanwhile; ``wait_ready`` waits when the server
is first needed. ``start`` never raises for an expected problem (distribution missing, port in
use): the handle carries the error, and ``wait_ready`` raises it where the server is needed.

Stopping: kc.sh leads a process group of its own (it starts java in the same group), and
``stop`` ends that group, and only it, with SIGTERM, then SIGKILL when it has not ended in
time. kc.sh also gets SIGTERM from the kernel when its parent dies however it dies
(PR_SET_PDEATHSIG; kc.sh hands the signal to java). The kernel sends that signal when the
*thread* that started kc.sh ends, so ``start`` must be called from a thread that lives as long
as the server should, in practice the main thread.

This is the one place a long-lived Keycloak process is started (``subprocess.Popen``); anything
that runs to completion goes through ``cityguard.core.process.run``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cityguard.config.paths import cache_dir
from cityguard.core.secrets import register_secret
from cityguard.lab.command import LabError

VERSION_ENV = "KEYCLOAK_VERSION"
DEFAULT_VERSION = "26.7.3"  # the version tools/components/keycloak.sh caches
START_TIMEOUT_ENV = "CITYGUARD_KEYCLOAK_START_TIMEOUT"
DEFAULT_START_TIMEOUT_S = 420.0
STOP_TIMEOUT_S = 30.0
PR_SET_PDEATHSIG = 1
#: JDKs Keycloak 26 runs on, preferred first; JAVA_HOME when none of them is installed
JDKS = (
    "temurin-25-jdk-amd64",
    "temurin-21-jdk-amd64",
    "java-21-openjdk-amd64",
    "java-17-openjdk-amd64",
)


class KeycloakError(LabError):
    """The local Keycloak could not start, or did not become ready in time."""


def version() -> str:
    return os.environ.get(VERSION_ENV, DEFAULT_VERSION)


def keycloak_home(cache: Path | None = None) -> Path:
    """Where tools/components/keycloak.sh unpacked the distribution."""
    root = cache if cache is not None else cache_dir()
    return root / "keycloak" / version() / f"keycloak-{version()}"


def java_home(jvm_dir: Path = Path("/usr/lib/jvm")) -> str | None:
    for name in JDKS:
        if (jvm_dir / name / "bin" / "java").exists():
            return str(jvm_dir / name)
    return os.environ.get("JAVA_HOME")


def start_timeout_s() -> float:
    return float(os.environ.get(START_TIMEOUT_ENV, DEFAULT_START_TIMEOUT_S))


def die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent thread ends, however it ends."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """Whether a listening socket on host:port cannot be made now (someone has it)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def server_argv(
    home: Path, host: str, port: int, management_port: int, data_dir: Path
) -> list[str]:
    """kc.sh start-dev on host:port (loopback) with its database in data_dir."""
    return [
        str(home / "bin" / "kc.sh"),
        "start-dev",
        f"--http-host={host}",
        f"--http-port={port}",
        f"--http-management-port={management_port}",
        "--hostname-strict=false",
        "--db=dev-file",
        f"--db-url=jdbc:h2:file:{data_dir}/h2/keycloakdb;NON_KEYWORDS=VALUE",
        "--log-level=INFO,org.keycloak.broker:debug,org.keycloak.saml:debug",
    ]


def server_env(
    base: Mapping[str, str], admin_user: str, admin_password: str, jdk: str | None
) -> dict[str, str]:
    """Keycloak's environment: its bootstrap admin (read at the first start), the JDK."""
    env = dict(base)
    env["KC_BOOTSTRAP_ADMIN_USERNAME"] = admin_user
    env["KC_BOOTSTRAP_ADMIN_PASSWORD"] = admin_password
    if jdk:
        env["JAVA_HOME"] = jdk
    return env


@dataclass
class LocalKeycloak:
    """A Keycloak started here (``process`` set) or attached to (``process`` None)."""

    url: str
    admin_user: str
    admin_password: str = field(repr=False)
    data_dir: Path | None  # its own temporary directory, removed by stop; None: none made
    log_path: Path | None
    process: subprocess.Popen[bytes] | None = None
    started_at: float = field(default_factory=time.monotonic)
    timeout_s: float = field(default_factory=start_timeout_s)
    #: seconds from the start to the first probe that found it ready (wait_ready's)
    ready_after_s: float | None = None
    error: str | None = None

    def probe(self) -> bool:
        """One readiness probe: the master realm answers."""
        try:
            with urllib.request.urlopen(f"{self.url}/realms/master", timeout=5) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def wait_ready(self) -> None:
        """Return once Keycloak answers; raise KeycloakError if it failed or timed out.

        It probes at least once: a caller that first needs the server long after the start
        (after the start deadline) finds a ready server rather than a timeout.
        """
        if self.ready_after_s is not None:
            return
        if self.error is not None:
            raise KeycloakError(self.error)
        deadline = self.started_at + self.timeout_s
        while True:
            if self.process is not None and self.process.poll() is not None:
                self.error = f"Keycloak exited with {self.process.returncode}: {self.log_tail()}"
                raise KeycloakError(self.error)
            if self.probe():
                self.ready_after_s = time.monotonic() - self.started_at
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(1)
        self.error = f"Keycloak not ready after {self.timeout_s:.0f} s: {self.log_tail()}"
        raise KeycloakError(self.error)

    def log_tail(self, lines: int = 5) -> str:
        if self.log_path is None:
            return "(no log)"
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    def stop(self) -> None:
        """End the server's process group (kc.sh and its java) and remove its data directory.

        Only a server started here is stopped; an attached one is left alone. Harmless twice.
        """
        process, self.process = self.process, None
        if process is not None:
            end_group(process)
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def end_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the group kc.sh leads, wait for kc.sh and every member; SIGKILL on timeout.

    The group id is kc.sh's pid, which stays ours until kc.sh is reaped, so a signal to the
    group reaches only processes started by it.
    """
    group = process.pid
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT_S)
    while time.monotonic() < deadline and _group_alive(group):
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start(
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    admin_user: str = "cg-admin",
    die_with_caller: bool = True,
) -> LocalKeycloak:
    """Start Keycloak in the background on host:port (a free port when None); returns at once.

    The admin password is generated here, registered for redaction and handed to Keycloak in
    its environment only. A problem found before the start (not loopback, port taken,
    distribution missing) is kept in the handle's ``error`` and raised by ``wait_ready``.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="cg-keycloak-"))
    log_path = data_dir / "keycloak.log"
    password = secrets.token_urlsafe(18)
    register_secret(password)
    chosen = port if port is not None else (free_port(host) if is_loopback(host) else 0)
    server = LocalKeycloak(base_url(host, chosen), admin_user, password, data_dir, log_path)
    home = keycloak_home()
    if not is_loopback(host):
        server.error = f"Keycloak is started on loopback only, not on {host}"
    elif port is not None and port_in_use(host, port):
        server.error = f"cannot start Keycloak on {host}:{port}: the port is in use"
    elif not (home / "bin" / "kc.sh").exists():
        server.error = f"Keycloak {version()} missing: run tools/components/keycloak.sh"
    if server.error is not None:
        return server
    argv = server_argv(home, host, chosen, free_port(host), data_dir)
    env = server_env(os.environ, admin_user, password, java_home())
    with log_path.open("wb") as log:
        server.process = subprocess.Popen(  # long-lived: stopped by LocalKeycloak.stop
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=data_dir,
            start_new_session=True,  # a process group of its own: stopped as one
            preexec_fn=die_with_parent if die_with_caller else None,
        )
    return server


def attached(url: str, admin_user: str, admin_password: str) -> LocalKeycloak:
    """A Keycloak someone else started and stops: ``stop`` leaves it running."""
    if admin_password:
        register_secret(admin_password)
    return LocalKeycloak(url.rstrip("/"), admin_user, admin_password, None, None)


def not_started(admin_user: str, reason: str) -> LocalKeycloak:
    """A handle for a Keycloak that was not started, for ``reason`` (raised by wait_ready)."""
    return LocalKeycloak("", admin_user, "", None, None, error=reason)
