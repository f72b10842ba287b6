"""Benchmark: the eIDAS broker on a real Keycloak: its start, first apply, second apply, verify.

Keycloak is started as the eIDAS tests start it (tests/integration/keycloak_server.py: the
distribution tools/components/keycloak.sh caches, `start-dev` on loopback, a fresh data
directory) and stopped by its process group at the end, also on failure. The commands run as an
operator runs them: `cityguard eidas apply|verify` as processes, on a site around the example
realm file, each timed from start to exit.

Baseline measured in the same run: one bare admin-API GET of the realm through python-keycloak
with a fresh admin client (its token request included), i.e. the least any command that talks
to Keycloak pays. Targets: a second apply makes 0 changes in under 5 s.

With CITYGUARD_TEST_KEYCLOAK_URL set (keycloak_server.py), a running Keycloak is used and its
start is not measured.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from eidas_support import PORTAL_SECRET_ENV, example_realm, make_site
from keycloak_server import ADMIN_PASSWORD_ENV, KeycloakServer, start_server

from cityguard.core.process import run

REALM = "eservices-bench"
SECOND_APPLY_TARGET_S = 5.0
BASELINE_ROUNDS = 5
T = TypeVar("T")


def timed(action: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def bare_get(server: KeycloakServer) -> None:
    """One GET of the realm through python-keycloak, with a fresh admin client and token."""
    from keycloak import KeycloakAdmin

    admin = KeycloakAdmin(
        server_url=server.url + "/",
        username=server.admin_user,
        password=server.admin_password,
        realm_name="master",
        user_realm_name="master",
    )
    assert admin.get_realm(REALM)["realm"] == REALM


def cityguard(site: Path, command: str, env: dict[str, str]) -> tuple[float, dict[str, object]]:
    """`cityguard eidas <command>` as a process: (wall seconds, its JSON document)."""
    argv = [sys.executable, "-m", "cityguard.cli", "eidas", command, "--site", str(site)]
    seconds, done = timed(
        lambda: run(
            [*argv, "--format", "json"],
            what=f"cityguard eidas {command}",
            timeout=600,
            env=env,
            check=False,
        )
    )
    if done.returncode not in (0, 1):
        raise SystemExit(f"cityguard eidas {command} exited {done.returncode}: {done.stderr}")
    document: dict[str, object] = json.loads(done.stdout)
    return seconds, document


def measure(server: KeycloakServer, directory: Path) -> int:
    env = {
        ADMIN_PASSWORD_ENV: server.admin_password,
        PORTAL_SECRET_ENV: secrets.token_urlsafe(18),
        "CITYGUARD_STATE": str(directory / "state"),
    }
    os.environ[ADMIN_PASSWORD_ENV] = server.admin_password
    site = make_site(directory / "site", server, example_realm(directory / "site", server, REALM))

    first_s, first = cityguard(site, "apply", env)
    baseline = statistics.median(timed(lambda: bare_get(server))[0] for _ in range(BASELINE_ROUNDS))
    second_s, second = cityguard(site, "apply", env)
    verify_s, verified = cityguard(site, "verify", env)

    changes_first = len(first.get("changes") or [])  # type: ignore[arg-type]
    changes_second = len(second.get("changes") or [])  # type: ignore[arg-type]
    results = verified.get("results") or []
    passed = sum(1 for r in results if r["outcome"] == "pass")  # type: ignore[index,union-attr]
    start = f"{server.ready_after_s:.1f} s" if server.process is not None else "(attached)"
    print(f"Keycloak start (start-dev, new data dir, to ready): {start}")
    print(f"baseline: one admin GET of the realm (python-keycloak, new token): {baseline:.3f} s")
    rows = (
        ("first apply", first_s, f"{changes_first} changes"),
        ("second apply", second_s, f"{changes_second} changes"),
        ("verify", verify_s, f"{passed}/{len(results)} rules pass"),  # type: ignore[arg-type]
    )
    for name, seconds, detail in rows:
        print(f"{name + ':':14}{seconds:7.2f} s  {seconds / baseline:6.0f}x baseline  ({detail})")
    met = changes_second == 0 and second_s < SECOND_APPLY_TARGET_S
    print(
        f"target: second apply 0 changes in under {SECOND_APPLY_TARGET_S:.0f} s: "
        + ("met" if met else "NOT met")
    )
    return 0 if met and verified.get("exit_code") == 0 else 1


def main() -> int:
    server = start_server()
    try:
        server.wait_ready()
        if server.process is None:  # attached: a realm of an earlier run may be there
            from cityguard.eidas.keycloak import Connection, Keycloak

            admin = Keycloak(
                Connection(server.url, "master", server.admin_user, server.admin_password)
            )
            if admin.realm_exists(REALM):
                admin.delete(f"admin/realms/{REALM}")
        with tempfile.TemporaryDirectory(prefix="cg-bench-eidas-") as directory:
            return measure(server, Path(directory))
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
