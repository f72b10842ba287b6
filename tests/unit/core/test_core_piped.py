"""``run_piped``: two programs joined by a pipe that cityguard pumps (a restore streamed from the
repository to a host), with bytes counted, both outcomes kept, and everything ended on time."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from cityguard.core.process import ProcessError, run_piped

PY = sys.executable


def py(code: str) -> list[str]:
    return [PY, "-c", code]


def test_every_byte_reaches_the_consumer_and_is_counted() -> None:
    heard: list[int] = []
    size = 3 * 1024 * 1024 + 17
    done = run_piped(
        py(f"import sys; sys.stdout.buffer.write(b'x' * {size})"),
        py("import sys; print(len(sys.stdin.buffer.read()))"),
        what="streaming",
        timeout=30,
        on_bytes=heard.append,
    )
    assert done.producer.ok and done.consumer.ok
    assert done.consumer.stdout.strip() == str(size)
    assert done.transferred == size
    assert heard[-1] == size and heard == sorted(heard)


def test_a_failing_producer_is_returned_with_its_error_output() -> None:
    done = run_piped(
        py("import sys; sys.stdout.write('partial'); sys.stderr.write('wrong password\\n'); "
           "sys.exit(12)"),
        py("import sys; sys.stdin.read(); sys.stderr.write('truncated input\\n'); sys.exit(1)"),
        what="streaming",
        timeout=30,
    )  # fmt: skip
    assert done.producer.returncode == 12 and "wrong password" in done.producer.stderr
    assert done.consumer.returncode == 1 and "truncated input" in done.consumer.stderr
    assert done.transferred == len("partial")


def test_a_consumer_that_ends_early_stops_the_producer() -> None:
    started = time.monotonic()
    done = run_piped(
        py("import sys\nwhile True: sys.stdout.buffer.write(b'y' * 65536)"),
        py("import sys; sys.stdin.buffer.read(10); sys.exit(3)"),
        what="streaming",
        timeout=30,
    )
    assert done.consumer.returncode == 3
    assert not done.producer.ok  # ended by the closed pipe, as in a shell pipeline
    assert time.monotonic() - started < 20


def test_the_environment_goes_to_the_producer_only() -> None:
    done = run_piped(
        py("import os, sys; sys.stdout.write(os.environ['CG_TEST_KEY'])"),
        py("import os, sys; print(sys.stdin.read() + '|' + os.environ.get('CG_TEST_KEY', ''))"),
        what="streaming",
        timeout=30,
        env={"CG_TEST_KEY": "opens-the-data"},
    )
    assert done.consumer.stdout.strip() == "opens-the-data|"


def test_a_timeout_ends_both_programs() -> None:
    with pytest.raises(ProcessError) as raised:
        run_piped(
            py("import os, time; print(os.getpid(), flush=True); time.sleep(60)"),
            py("import sys, time; sys.stdin.readline(); time.sleep(60)"),
            what="streaming the dump",
            timeout=1,
        )
    assert raised.value.failure == "timed-out"
    assert str(raised.value) == "streaming the dump: timed out after 1 s"


def test_a_missing_consumer_is_one_line_and_the_producer_does_not_linger() -> None:
    marker = f"cg-piped-{os.getpid()}"
    with pytest.raises(ProcessError) as raised:
        run_piped(
            py(f"import time; time.sleep(60)  # {marker}"),
            ["/nonexistent/cityguard-consumer"],
            what="streaming",
            timeout=30,
        )
    assert raised.value.failure == "not-found"
    time.sleep(0.2)
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes()
        except OSError:
            continue  # ended while we looked
        assert marker.encode() not in text
