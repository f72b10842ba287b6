"""The one place the engine runs other programs.

Areas build argument lists with pure functions (easy to test, nothing to quote) and hand them
to ``run``: argv lists only, never a shell, so no host or file name can become a command. A
failure is one typed error, ``ProcessError``, whose single line says which step failed and why
(the last line the program wrote, its exit code, a timeout, a missing program), so the CLI can
print it as it prints every other problem. Every message and log line is passed through
``redact``, so a secret a program echoes never reaches the operator's screen or a log file.

A long-lived process (a booted lab host, a per-host check run with its own progress) is
started with ``subprocess.Popen`` where it is managed; everything that runs to completion goes
through here, including two programs joined by a pipe (``run_piped``: a restore streamed from
the repository into a remote program, with no copy on the way).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from cityguard.core.errors import CityguardError
from cityguard.core.secrets import redact

logger = logging.getLogger(__name__)

#: How many of the last output lines a ProcessError keeps for a closer look.
TAIL_LINES = 5

Failure = Literal["failed", "timed-out", "not-found", "cannot-start"]


@dataclass(frozen=True)
class Completed:
    """A program that ran to its end: its exit code and everything it wrote (not redacted)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class ProcessError(CityguardError):
    """A program could not run, did not finish in time, or exited with a failure.

    ``str(error)`` is one line, ``<what>: <reason>``: the reason is the last line the program
    wrote (standard error, else standard output), else its exit code, else why it could not
    start or that it timed out. ``returncode`` is None when the program never finished.
    ``output_tail`` keeps the last few lines for a log or a closer look, ``errors`` every line
    of standard error (a caller may count what a program reported, e.g. retries, before it was
    stopped). All of it is redacted.
    """

    def __init__(
        self,
        what: str,
        reason: str,
        *,
        argv: Sequence[str],
        failure: Failure,
        returncode: int | None = None,
        output_tail: Sequence[str] = (),
        errors: Sequence[str] = (),
    ) -> None:
        self.what = redact(what)
        self.reason = redact(" ".join(reason.split("\n")).strip())
        self.argv = tuple(redact(arg) for arg in argv)
        self.failure: Failure = failure
        self.returncode = returncode
        self.output_tail = tuple(redact(line) for line in output_tail)
        self.errors = tuple(redact(line) for line in errors)
        super().__init__(f"{self.what}: {self.reason}")


def command_line(argv: Sequence[str]) -> str:
    """argv as a shell would read it, redacted: for logs and messages only, never to run."""
    return redact(shlex.join(argv))


def run(
    argv: Sequence[str],
    *,
    what: str,
    timeout: float | None,
    input_text: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    check: bool = True,
) -> Completed:
    """Run ``argv`` to its end and return what it wrote; raise ProcessError if it went wrong.

    ``what`` names the step for people ("listing addresses"). ``timeout`` (seconds, or None
    for no limit) must always be given: a step that can hang should say how long is too long.
    ``input_text`` is written to the program's standard input, which is otherwise empty (a
    program never waits on the operator's terminal). ``env`` adds variables to cityguard's own
    environment. With ``check=False`` a non-zero exit code is returned rather than raised;
    a missing program or a timeout is always raised.
    """
    if isinstance(argv, str | bytes):
        raise TypeError("argv must be a sequence of arguments, not one string")
    command = [str(arg) for arg in argv]
    if not command:
        raise ValueError("argv must name a program")
    logger.debug("%s: %s", redact(what), command_line(command))
    try:
        completed = _run_to_end(command, input_text, timeout, env, cwd)
    except subprocess.TimeoutExpired as exc:
        tail = _tail(_text(exc.stderr) or _text(exc.stdout))
        raise _logged(
            ProcessError(
                what,
                f"timed out after {timeout:g} s",
                argv=command,
                failure="timed-out",
                output_tail=tail,
                errors=_text(exc.stderr).splitlines(),
            )
        ) from None
    except OSError as exc:
        raise _logged(_start_error(what, command, cwd, exc)) from None
    result = Completed(tuple(command), completed.returncode, completed.stdout, completed.stderr)
    if check and not result.ok:
        raise failed(what, result)
    return result


def failed(what: str, result: Completed) -> ProcessError:
    """The error for a program that ended with a failure: its last line, else its exit code."""
    tail = _tail(result.stderr) or _tail(result.stdout)
    reason = tail[-1] if tail else f"exit code {result.returncode}"
    return _logged(
        ProcessError(
            what,
            reason,
            argv=result.argv,
            failure="failed",
            returncode=result.returncode,
            output_tail=tail,
            errors=result.stderr.splitlines(),
        )
    )


def _run_to_end(
    command: list[str],
    input_text: str | None,
    timeout: float | None,
    env: Mapping[str, str] | None,
    cwd: str | Path | None,
) -> subprocess.CompletedProcess[str]:
    """Run the program; on a timeout or an interruption end it with every process it started.

    Its children (ssh under pytest or ansible) would otherwise outlive it and keep its output
    open, so the wait would never end. The program stays in cityguard's process group, so
    whoever stops cityguard's group (Ctrl-C, a supervisor) stops the program with it."""
    with subprocess.Popen(
        command,
        stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        env={**os.environ, **env} if env else None,
        cwd=cwd,
    ) as child:
        try:
            stdout, stderr = child.communicate(input_text, timeout=timeout)
        except BaseException:
            _end_tree(child)
            raise
    return subprocess.CompletedProcess(command, child.returncode, stdout, stderr)


#: How much ``run_piped`` moves at a time: large enough that the copy costs next to nothing.
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Piped:
    """Two programs joined by a pipe, both run to their end, and how many bytes went through."""

    producer: Completed
    consumer: Completed
    transferred: int


def run_piped(
    producer: Sequence[str],
    consumer: Sequence[str],
    *,
    what: str,
    timeout: float,
    env: Mapping[str, str] | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Piped:
    """Run ``producer | consumer`` without a shell and return both outcomes, unchecked.

    cityguard moves the bytes itself, so it counts them (``on_bytes`` hears the running total
    about every chunk, for progress) and no file is written on the way. ``env`` goes to the
    producer only: it holds the secrets that open the data (a repository password), which the
    consumer (ssh to another host) must not see. If the consumer ends early the producer is
    stopped, as a shell pipeline would by SIGPIPE. Both are ended, with what they started, at
    ``timeout`` (raised as ProcessError) or on an interruption. The caller decides which
    failure matters (the producer's, usually: it explains the consumer's)."""
    commands = [[str(a) for a in producer], [str(a) for a in consumer]]
    logger.debug("%s: %s | %s", redact(what), *(command_line(c) for c in commands))
    children: list[subprocess.Popen[bytes]] = []
    try:
        children.append(_start_bytes(commands[0], what, subprocess.DEVNULL, env))
        children.append(_start_bytes(commands[1], what, subprocess.PIPE, None))
    except BaseException:
        _stop_piped(children)
        raise
    source, sink = children
    moved = [0]
    outputs: dict[str, bytes] = {}
    workers = [
        threading.Thread(target=_pump, args=(source, sink, moved, on_bytes), daemon=True),
        *(
            threading.Thread(target=_collect, args=(stream, name, outputs), daemon=True)
            for name, stream in (
                ("producer-stderr", source.stderr),
                ("consumer-stdout", sink.stdout),
                ("consumer-stderr", sink.stderr),
            )
        ),
    ]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + timeout
    try:
        for child in children:
            child.wait(timeout=max(deadline - time.monotonic(), 0.0))
        for worker in workers:
            worker.join(timeout=max(deadline - time.monotonic(), 1.0))
    except subprocess.TimeoutExpired:
        _stop_piped(children)
        raise _logged(
            ProcessError(
                what,
                f"timed out after {timeout:g} s",
                argv=commands[0] + ["|"] + commands[1],
                failure="timed-out",
                output_tail=_tail(_text(outputs.get("producer-stderr"))),
            )
        ) from None
    except BaseException:
        _stop_piped(children)
        raise

    def completed(index: int, stdout: bytes, stderr: bytes) -> Completed:
        code = children[index].returncode
        return Completed(tuple(commands[index]), code, _text(stdout), _text(stderr))

    return Piped(
        completed(0, b"", outputs.get("producer-stderr", b"")),
        completed(1, outputs.get("consumer-stdout", b""), outputs.get("consumer-stderr", b"")),
        moved[0],
    )


def _start_bytes(
    command: list[str], what: str, stdin: int, env: Mapping[str, str] | None
) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            command,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **env} if env else None,
        )
    except OSError as exc:
        raise _logged(_start_error(what, command, None, exc)) from None


def _pump(
    source: subprocess.Popen[bytes],
    sink: subprocess.Popen[bytes],
    moved: list[int],
    on_bytes: Callable[[int], None] | None,
) -> None:
    """Copy the producer's output into the consumer's input; close both ends when done."""
    assert source.stdout is not None and sink.stdin is not None
    try:
        while chunk := os.read(source.stdout.fileno(), CHUNK):
            sink.stdin.write(chunk)
            moved[0] += len(chunk)
            if on_bytes is not None:
                on_bytes(moved[0])
    except (BrokenPipeError, ValueError, OSError):
        pass  # the consumer ended early: closing our end stops the producer (SIGPIPE)
    finally:
        for stream in (sink.stdin, source.stdout):
            with contextlib.suppress(OSError, ValueError):
                stream.close()


def _collect(stream: IO[bytes] | None, name: str, outputs: dict[str, bytes]) -> None:
    if stream is not None:
        outputs[name] = stream.read()


def _descendants(pid: int) -> list[int]:
    """The processes ``pid`` started, and theirs, from /proc (children before parents' end)."""
    found: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError, ValueError):
                kids = [int(kid) for kid in children.read_text().split()]
                found += kids
                pending += kids
    return found


def _end_tree(child: subprocess.Popen[str]) -> None:
    """SIGKILL the child and the processes it started (only those), then reap the child."""
    _kill_tree(child)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.communicate(timeout=5)


def _kill_tree(child: subprocess.Popen[Any]) -> None:
    for pid in [child.pid, *_descendants(child.pid)]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _stop_piped(children: Sequence[subprocess.Popen[bytes]]) -> None:
    """End both programs of a pipe and reap them (their pipes are read by ``run_piped``'s
    threads, so no ``communicate`` here)."""
    for child in children:
        _kill_tree(child)
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)


def _start_error(
    what: str, command: list[str], cwd: str | Path | None, exc: OSError
) -> ProcessError:
    program = command[0]
    if cwd is not None and exc.filename is not None and str(exc.filename) == str(cwd):
        reason = f"working directory {cwd}: {exc.strerror}"
        return ProcessError(what, reason, argv=command, failure="cannot-start")
    if isinstance(exc, FileNotFoundError):
        return ProcessError(
            what, f"command not found: {program}", argv=command, failure="not-found"
        )
    reason = f"cannot run {program}: {exc.strerror or exc}"
    return ProcessError(what, reason, argv=command, failure="cannot-start")


def _logged(error: ProcessError) -> ProcessError:
    logger.debug(
        "%s (argv: %s)%s",
        error,
        shlex.join(error.argv),
        "".join(f"\n  {line}" for line in error.output_tail),
    )
    return error


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):  # TimeoutExpired may carry bytes even with text=True
        return data.decode("utf-8", errors="replace")
    return data


def _tail(output: str) -> tuple[str, ...]:
    lines = [line.rstrip() for line in output.strip().splitlines() if line.strip()]
    return tuple(lines[-TAIL_LINES:])
