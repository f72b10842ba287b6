"""One real Keycloak for the whole test session: started early, in the background, stopped always.

Started by ``pytest_collection_finish`` as soon as the collected tests include one that uses
the ``keycloak`` fixture, so its start (about 1 minute, 3-4 on a busy machine with a fresh
data directory) overlaps the lab's start and the other tests; the fixture waits for it only
when an eIDAS test first needs it. It is started by the product's own launcher,
``cityguard.lab.keycloak`` (as `cityguard demo` starts it): the distribution
tools/components/keycloak.sh caches, loopback ports picked free, a data directory of its own
and a random admin password, handed to cityguard through an environment variable.

It is stopped by its process group (kc.sh and its java) at session end, also when tests fail,
on Ctrl-C, on SIGTERM (the handler stops it, then ends pytest as Ctrl-C does, so the other
fixtures are torn down too) and, since kc.sh gets SIGTERM when pytest dies
(PR_SET_PDEATHSIG; kc.sh hands it to java), even when pytest is killed outright.

For fast iteration on one's own machine, CITYGUARD_TEST_KEYCLOAK_URL names a Keycloak already
running on loopback (admin ``cg-admin`` or CITYGUARD_TEST_KEYCLOAK_ADMIN, its password in
CITYGUARD_TEST_KEYCLOAK_ADMIN_PASSWORD): the session then uses it and never stops it. The
tests' realms must not exist there yet.
"""

from __future__ import annotations

import atexit
import os
import signal

import pytest

from cityguard.lab import keycloak as launcher
from cityguard.lab.keycloak import KeycloakError
from cityguard.lab.keycloak import LocalKeycloak as KeycloakServer

ADMIN_PASSWORD_ENV = "CITYGUARD_TEST_KEYCLOAK_ADMIN_PASSWORD"
ATTACH_URL_ENV = "CITYGUARD_TEST_KEYCLOAK_URL"

__all__ = ["ADMIN_PASSWORD_ENV", "ATTACH_URL_ENV", "KeycloakServer", "start_server"]

_server: KeycloakServer | None = None


def start_server() -> KeycloakServer:
    """Start Keycloak in the background (returns at once); a missing distribution is an error
    the ``keycloak`` fixture reports when a test first needs the server."""
    global _server
    if _server is not None:
        return _server
    attach = os.environ.get(ATTACH_URL_ENV)
    if attach:
        _server = attached_server(attach)
        return _server
    server = launcher.start(admin_user="cg-admin")
    _server = server
    if server.process is not None:
        atexit.register(server.stop)
        _stop_on_sigterm(server)
    return server


def attached_server(url: str) -> KeycloakServer:
    """A Keycloak someone else started and stops (ATTACH_URL_ENV); never stopped here."""
    server = launcher.attached(
        url,
        os.environ.get("CITYGUARD_TEST_KEYCLOAK_ADMIN", "cg-admin"),
        os.environ.get(ADMIN_PASSWORD_ENV, ""),
    )
    if not server.admin_password:
        server.error = f"{ATTACH_URL_ENV} is set but {ADMIN_PASSWORD_ENV} is not"
    return server


def wait_ready(server: KeycloakServer) -> None:
    """The server's readiness, as a test failure when it did not come up."""
    try:
        server.wait_ready()
    except KeycloakError as error:
        pytest.fail(str(error))


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
        start_server()  # from pytest's main thread: PDEATHSIG follows the starting thread


def pytest_unconfigure(config: pytest.Config) -> None:
    if _server is not None:
        _server.stop()


@pytest.fixture(scope="session")
def keycloak() -> KeycloakServer:
    """The session's Keycloak, ready; its admin password is in ADMIN_PASSWORD_ENV."""
    server = start_server()
    wait_ready(server)
    os.environ[ADMIN_PASSWORD_ENV] = server.admin_password
    return server
