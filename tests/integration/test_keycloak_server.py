"""The session's Keycloak fixture: started once, in the background, in a process group of its
own, and stopped as a group, also when pytest dies (keycloak_server.py, through the product's
launcher cityguard.lab.keycloak, which `cityguard demo` uses too)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keycloak_server
import pytest
from keycloak_server import KeycloakServer, start_server

from cityguard.lab.keycloak import KeycloakError

pytestmark = pytest.mark.integration


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped) counts as gone
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def gone_within(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(alive(pid) for pid in pids):
            return True
        time.sleep(0.2)
    return False


def test_the_session_keycloak_is_started_once_in_its_own_process_group(
    keycloak: KeycloakServer,
) -> None:
    assert start_server() is keycloak, "a second start must reuse the session's server"
    if keycloak.process is None:
        pytest.skip("attached to a Keycloak started outside the session (development only)")
    pid = keycloak.process.pid
    assert os.getpgid(pid) == pid, "kc.sh leads a process group of its own"
    assert os.getpgid(pid) != os.getpgrp(), "not in pytest's group"
    members = [
        int(p)
        for p in os.listdir("/proc")
        if p.isdigit() and alive(int(p)) and os.getpgid(int(p)) == pid
    ]
    # kc.sh execs java once the distribution is built (the leader is then java itself); on
    # the first start after unpacking it runs the build first: java is in the group either way
    commands = [Path(f"/proc/{member}/cmdline").read_bytes() for member in members]
    assert any(b"java" in command.split(b"\0")[0] for command in commands), commands
    assert keycloak.ready_after_s is not None and keycloak.url.startswith("http://127.0.0.1:")


def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    """kc.sh-like: a shell with a child of its own; stop() ends both and removes the data."""
    data = tmp_path / "data"
    data.mkdir()
    pid_file = tmp_path / "child.pid"
    process = subprocess.Popen(  # a stand-in server with a child, as kc.sh has java
        ["sh", "-c", f"sleep 300 & echo $! > {pid_file}; wait"],
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline, "the stand-in did not start"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    server = KeycloakServer("http://127.0.0.1:1", "a", "p", data, data / "log", process=process)
    server.stop()
    assert process.poll() is not None
    assert gone_within([child], 10), "the child outlived stop()"
    assert not data.exists()
    server.stop()  # a second stop is harmless


def test_the_server_dies_with_a_killed_pytest(tmp_path: Path) -> None:
    """SIGKILL leaves no handler to run: PR_SET_PDEATHSIG makes the kernel end the server
    (launcher.die_with_parent, which the launcher hands to every Keycloak it starts)."""
    pid_file = tmp_path / "server.pid"
    parent = subprocess.Popen(  # stands for pytest: starts a server as the fixture does
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time;"
            "from cityguard.lab.keycloak import die_with_parent;"
            "p = subprocess.Popen(['sleep', '300'], start_new_session=True,"
            " preexec_fn=die_with_parent);"
            "open(sys.argv[1], 'w').write(str(p.pid)); time.sleep(300)",
            str(pid_file),
        ],
    )
    try:
        deadline = time.monotonic() + 20
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline, "the stand-in server did not start"
            time.sleep(0.05)
        server = int(pid_file.read_text())
        assert alive(server)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert gone_within([server], 10), "the server outlived a killed pytest"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_sigterm_stops_the_server_then_interrupts_pytest(tmp_path: Path) -> None:
    """SIGTERM (a CI job cancelled): the server's group is stopped, then pytest is interrupted
    as by Ctrl-C so that the other fixtures (the lab) are torn down as well."""
    pid_file = tmp_path / "server.pid"
    parent = subprocess.Popen(  # stands for pytest with the fixture's server and handler
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; from pathlib import Path;"
            "sys.path.insert(0, sys.argv[1]);"
            "import keycloak_server as k;"
            "p = subprocess.Popen(['sleep', '300'], start_new_session=True);"
            "d = Path(sys.argv[2]).parent / 'data'; d.mkdir();"
            "s = k.KeycloakServer('http://127.0.0.1:1', 'a', 'p', d, d / 'log', process=p);"
            "k._stop_on_sigterm(s); open(sys.argv[2], 'w').write(str(p.pid))\n"
            "try:\n    time.sleep(300)\nexcept KeyboardInterrupt:\n    print('interrupted')",
            str(Path(keycloak_server.__file__).parent),
            str(pid_file),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline, "the stand-in server did not start"
            time.sleep(0.05)
        server = int(pid_file.read_text())
        parent.send_signal(signal.SIGTERM)
        out, _ = parent.communicate(timeout=40)
        assert out.strip() == "interrupted" and parent.returncode == 0
        assert gone_within([server], 5), "the server outlived SIGTERM"
        assert not (tmp_path / "data").exists()
    finally:
        if parent.poll() is None:
            parent.kill()


def test_a_missing_distribution_fails_the_eidas_tests_with_what_to_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(keycloak_server, "_server", None)
    monkeypatch.setenv("CITYGUARD_CACHE", tempfile.mkdtemp(prefix="cg-empty-cache-"))
    monkeypatch.delenv(keycloak_server.ATTACH_URL_ENV, raising=False)
    server = start_server()
    assert server.process is None
    assert server.error and "run tools/components/keycloak.sh" in server.error
    with pytest.raises(KeycloakError, match=r"keycloak\.sh"):
        server.wait_ready()
    with pytest.raises(pytest.fail.Exception, match=r"keycloak\.sh"):
        keycloak_server.wait_ready(server)
    server.stop()
