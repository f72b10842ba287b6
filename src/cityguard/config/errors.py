"""Configuration problems, reported the way an operator can act on them.

Ops edit YAML by hand, so every problem names the file, the line (when the YAML loader could
keep it) and the key path, one problem per line and all problems at once: fixing a site file
one error per run is slow and discourages validation. No traceback ever reaches the operator;
the CLI prints ``str(ConfigError)`` and exits with ``ExitCode.USAGE``.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from cityguard.core.errors import UsageError

KeyPath = tuple[str | int, ...]
"""A position in YAML data: mapping keys (str) and list indexes (int)."""

DOCUMENT = "(document)"
"""Key path used for problems about the whole file (parse errors, empty file, not found)."""


def format_key_path(path: Iterable[str | int]) -> str:
    """Render ``("drill", "plans", 1)`` as ``drill.plans[1]``, the form operators read."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or DOCUMENT


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with the configuration, located as precisely as the loader allows.

    ``file`` may be empty for problems that come from the command line rather than a file
    (e.g. ``--limit``); then the line reads ``key.path: message``.
    """

    file: str
    line: int | None
    key_path: str
    message: str

    def __str__(self) -> str:
        if not self.file:
            return f"{self.key_path}: {self.message}"
        if self.line is None:
            return f"{self.file}: {self.key_path}: {self.message}"
        return f"{self.file}:{self.line}: {self.key_path}: {self.message}"


class ConfigError(UsageError):
    """Bad configuration: carries every problem found, so they are all reported together."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        if not problems:
            raise ValueError("ConfigError needs at least one problem")
        self.problems: list[ConfigProblem] = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)

    def lines(self) -> list[str]:
        return [str(problem) for problem in self.problems]


def line_for(lines: Mapping[KeyPath, int], path: KeyPath) -> int | None:
    """The line of ``path``, or of its nearest ancestor the loader recorded.

    Values that pydantic reaches inside (a key of a free-form mapping, a missing key) have no
    line of their own; the enclosing key is the best place to send the operator.
    """
    for end in range(len(path), -1, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return None


_MESSAGES_BY_TYPE = {
    "missing": "required key is missing",
    "model_type": "Input should be a mapping",
    "model_attributes_type": "Input should be a mapping",
    "dict_type": "Input should be a mapping",
}


def problems_from_validation(
    error: ValidationError,
    file: str,
    lines: Mapping[KeyPath, int],
    model: type[BaseModel],
) -> list[ConfigProblem]:
    """Turn pydantic's errors into located, human problems.

    ``model`` is the root model that was validated; it is walked to list the allowed keys when
    a key is unknown, because "unknown key" alone leaves the operator guessing the spelling.
    The offending input value is never echoed: it might be a secret typed in the wrong place.
    """
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        path: KeyPath = tuple(item["loc"])
        # A missing key has no line; its parent mapping is where it should be added.
        where = path[:-1] if item["type"] == "missing" else path
        line = line_for(lines, where)
        problems.append(
            ConfigProblem(file, line, format_key_path(path), _human_message(item, model, path))
        )
    return problems


def _human_message(item: Any, model: type[BaseModel], path: KeyPath) -> str:
    kind = item["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, path[:-1])
        return f"unknown key (allowed: {', '.join(allowed)})" if allowed else "unknown key"
    if kind in ("value_error", "assertion_error"):
        # Our own validators raise ValueError with a finished sentence; drop pydantic's prefix.
        ctx = item.get("ctx") or {}
        if "error" in ctx:
            return str(ctx["error"])
    if kind in _MESSAGES_BY_TYPE:
        return _MESSAGES_BY_TYPE[kind]
    return str(item["msg"])


def _allowed_keys(model: type[BaseModel], path: KeyPath) -> list[str]:
    """The field names of the model found at ``path`` below ``model``, or [] if none."""
    current: Any = model
    for part in path:
        current = _strip_optional(current)
        origin = get_origin(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        elif origin in (list, tuple) and get_args(current):
            current = get_args(current)[0]
        elif origin is dict and len(get_args(current)) == 2:
            current = get_args(current)[1]
        else:
            return []
    current = _strip_optional(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _strip_optional(annotation: Any) -> Any:
    """``X | None`` → ``X``; other annotations unchanged."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation
