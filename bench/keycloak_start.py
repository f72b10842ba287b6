"""Benchmark: Keycloak's start in development mode against a prebuilt (optimized) start.

The eIDAS tests, bench/eidas.py and `cityguard demo` start Keycloak with ``kc.sh start-dev``,
which first re-augments the Quarkus application for development (rewriting the distribution's
``lib/quarkus``) when the distribution was not last built that way. ``kc.sh build`` does the
augmentation explicitly; ``kc.sh start --optimized`` then never checks nor redoes it. Which is
faster for a session that starts Keycloak once decides whether the start code should build
once and cache the built copy.

Measured in one run, alternating the order each round (this machine is noisy): ``start-dev``
to ready; ``build`` to its end; ``start --optimized`` to ready. Every start has a fresh data
directory, listens on loopback ports picked free, bootstraps its admin from the environment as
the tests do, and counts as ready when ``/realms/master`` answers 200 (the tests' probe). Each
variant runs on a private copy of the distribution tools/components/keycloak.sh caches (copied
before the clock starts), so the shared copy a running test session uses is never touched.

Also ``start-dev`` on a distribution just unpacked from the archive keycloak.sh downloaded
(when its Maven cache still has it): the first start on a new machine, which re-augments for
development first; later start-devs find it done (whether each did is printed). Prints seconds
for each and their ratios to ``start-dev`` on the cached distribution, including ``build`` +
``start --optimized`` (a session that builds, then starts once) and ``start --optimized`` alone
(the build cached by an earlier session). Run it holding the lab lock:
``flock /tmp/cityguard-lab.lock .venv/bin/python bench/keycloak_start.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from cityguard.config import cache_dir
from cityguard.core.process import ProcessError, run
from cityguard.lab.keycloak import end_group

VERSION = os.environ.get("KEYCLOAK_VERSION", "26.7.3")
READY_TIMEOUT_S = 900.0
BUILD_TIMEOUT_S = 900.0
#: Build-time options: the ones the tests' start-dev uses (only the database kind)
BUILD_OPTIONS = ("--db=dev-file",)
JDKS = (
    "temurin-25-jdk-amd64",
    "temurin-21-jdk-amd64",
    "java-21-openjdk-amd64",
    "java-17-openjdk-amd64",
)
PR_SET_PDEATHSIG = 1
DEV = "start-dev"
FRESH_DEV = "start-dev, fresh unpack"
#: per start-dev variant: whether its last start re-augmented the distribution first
REAUGMENTED: dict[str, bool] = {}


def distribution() -> Path:
    home = cache_dir() / "keycloak" / VERSION / f"keycloak-{VERSION}"
    if not (home / "bin" / "kc.sh").exists():
        raise SystemExit(f"Keycloak {VERSION} missing: run tools/components/keycloak.sh")
    return home


def java_home() -> str | None:
    for name in JDKS:
        if (Path("/usr/lib/jvm") / name / "bin" / "java").exists():
            return str(Path("/usr/lib/jvm") / name)
    return os.environ.get("JAVA_HOME")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment() -> dict[str, str]:
    """Keycloak's environment: a bootstrap admin (created at the first start, as in the tests)."""
    env = {
        "KC_BOOTSTRAP_ADMIN_USERNAME": "cg-admin",
        "KC_BOOTSTRAP_ADMIN_PASSWORD": secrets.token_urlsafe(18),
    }
    jdk = java_home()
    if jdk:
        env["JAVA_HOME"] = jdk
    return env


def runtime_options(data_dir: Path) -> list[str]:
    """The tests' run-time options: loopback, free ports, the H2 file database in data_dir."""
    return [
        "--http-host=127.0.0.1",
        f"--http-port={free_port()}",
        f"--http-management-port={free_port()}",
        "--hostname-strict=false",
        f"--db-url=jdbc:h2:file:{data_dir}/h2/keycloakdb;NON_KEYWORDS=VALUE",
        "--log-level=INFO,org.keycloak.broker:debug,org.keycloak.saml:debug",
    ]


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def augmented_at(home: Path) -> int:
    """When the distribution's Quarkus application was last (re-)augmented (ns)."""
    return (home / "lib" / "quarkus" / "generated-bytecode.jar").stat().st_mtime_ns


def start_to_ready(home: Path, mode: list[str], work: Path) -> float:
    """Seconds from starting ``kc.sh <mode>`` to its first 200 on /realms/master; stopped."""
    data_dir = work / "data"
    data_dir.mkdir()
    options = runtime_options(data_dir)
    port = next(o.partition("=")[2] for o in options if o.startswith("--http-port="))
    argv = [str(home / "bin" / "kc.sh"), *mode, *options]
    log_path = work / "keycloak.log"
    with log_path.open("wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(  # long-lived until ready: stopped below as a group
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **environment()},
            cwd=data_dir,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    try:
        while True:
            if _answers(f"http://127.0.0.1:{port}/realms/master"):
                return time.perf_counter() - started
            if process.poll() is not None or time.perf_counter() - started > READY_TIMEOUT_S:
                tail = " | ".join(log_path.read_text(errors="replace").splitlines()[-5:])
                raise SystemExit(f"kc.sh {' '.join(mode)} did not become ready: {tail}")
            time.sleep(0.25)
    finally:
        end_group(process)


def private_copy(home: Path, into: Path) -> Path:
    target = into / home.name
    shutil.copytree(home, target, symlinks=True)
    return target


def build(home: Path) -> float:
    started = time.perf_counter()
    try:
        run(
            [str(home / "bin" / "kc.sh"), "build", *BUILD_OPTIONS],
            what="kc.sh build",
            timeout=BUILD_TIMEOUT_S,
            env=environment(),
        )
    except ProcessError as error:
        raise SystemExit(str(error)) from None
    return time.perf_counter() - started


def pristine_copy(into: Path) -> Path | None:
    """The distribution as unpacked from the archive tools/components/keycloak.sh downloaded
    (in its Maven cache), before any start augmented it for development; None without it."""
    archive = (
        cache_dir()
        / "maven"
        / "org"
        / "keycloak"
        / "keycloak-quarkus-dist"
        / VERSION
        / f"keycloak-quarkus-dist-{VERSION}.tar.gz"
    )
    if not archive.exists():
        return None
    run(["tar", "-xzf", str(archive), "-C", str(into)], what="unpacking Keycloak", timeout=300)
    return into / f"keycloak-{VERSION}"


def dev_start(copy: Path, work: Path, name: str) -> dict[str, float]:
    """start-dev on ``copy``; says whether it re-augmented (rewrote lib/quarkus) first."""
    before = augmented_at(copy)
    seconds = start_to_ready(copy, ["start-dev", *BUILD_OPTIONS], work)
    REAUGMENTED[name] = augmented_at(copy) != before
    return {name: seconds}


def dev_round(home: Path) -> dict[str, float]:
    """start-dev as the tests run it: on the cached distribution (a copy of it)."""
    with tempfile.TemporaryDirectory(prefix="cg-bench-kc-dev-") as work:
        return dev_start(private_copy(home, Path(work)), Path(work), DEV)


def fresh_dev_round(home: Path) -> dict[str, float]:
    """start-dev on a distribution just unpacked (a new machine, a new Keycloak version)."""
    with tempfile.TemporaryDirectory(prefix="cg-bench-kc-fresh-") as work:
        copy = pristine_copy(Path(work))
        return {} if copy is None else dev_start(copy, Path(work), FRESH_DEV)


def optimized_round(home: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="cg-bench-kc-opt-") as work:
        copy = private_copy(home, Path(work))
        built = build(copy)
        seconds = start_to_ready(copy, ["start", "--optimized", "--http-enabled=true"], Path(work))
    return {"build": built, "start --optimized": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds, order alternating")
    args = parser.parse_args()
    home = distribution()
    print(f"Keycloak {VERSION} ({home}), JDK {java_home() or '(PATH)'}, {os.cpu_count()} cores")
    samples: dict[str, list[float]] = {}
    for number in range(1, args.rounds + 1):
        order: list[Callable[[Path], dict[str, float]]] = [
            dev_round,
            optimized_round,
            fresh_dev_round,
        ]
        if number % 2 == 0:
            order.reverse()
        measured: dict[str, float] = {}
        for measure in order:
            measured.update(measure(home))
        for name, seconds in measured.items():
            samples.setdefault(name, []).append(seconds)
        print(
            f"round {number}: "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in measured.items())
            + f" (load {os.getloadavg()[0]:.1f})"
        )
    median = {name: statistics.median(values) for name, values in samples.items()}
    dev, built, optimized = median[DEV], median["build"], median["start --optimized"]

    def row(name: str, seconds: float, note: str = "") -> None:
        print(f"{name + ':':42}{seconds:7.1f} s  {seconds / dev:5.2f}x start-dev  {note}")

    print(f"medians of {args.rounds} rounds:")
    row("start-dev (the cached distribution)", dev, _augmented(DEV))
    if FRESH_DEV in median:
        row("start-dev (a fresh unpack)", median[FRESH_DEV], _augmented(FRESH_DEV))
    row("build", built)
    row("start --optimized", optimized, "(build cached)")
    row("build + start --optimized", built + optimized, "(a session that builds)")
    return 0


def _augmented(name: str) -> str:
    return "(re-augmented first)" if REAUGMENTED.get(name) else "(no re-augmentation)"


if __name__ == "__main__":
    sys.exit(main())
