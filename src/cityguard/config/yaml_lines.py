"""Load YAML while remembering where every key came from.

``yaml.safe_load`` throws line numbers away, yet "line 14" is what lets an operator fix a
site file quickly. So we compose the node tree with ``yaml.SafeLoader`` (nodes carry marks)
and build plain Python data ourselves, recording key path → line as we go. Building by hand
also lets us reject duplicate keys, which PyYAML silently resolves to the last value: a
duplicated ``baseline:`` would otherwise quietly change what a city is audited against.

Input is bounded, because a configuration file is read before anyone has looked at it: a file
larger than ``MAX_BYTES`` is refused unread, nesting deeper than ``MAX_DEPTH`` is refused while
composing (PyYAML's composer recurses and would end in a RecursionError), and building stops at
``MAX_VALUES`` values, so an alias bomb (a few lines expanding into billions of values) costs
milliseconds instead of gigabytes. A scalar PyYAML cannot construct (``2027-02-30``, an integer
of thousands of digits) is a located problem like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from cityguard.config.errors import (
    DOCUMENT,
    ConfigError,
    ConfigProblem,
    KeyPath,
    format_key_path,
    line_for,
)

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"

#: Largest configuration file read (bytes): a city's inventory is far smaller.
MAX_BYTES = 4 * 1024 * 1024
#: Deepest nesting of mappings and lists accepted.
MAX_DEPTH = 64
#: Most values (mappings, lists, scalars) one file may build, aliases expanded.
MAX_VALUES = 200_000


class _TooLarge(Exception):
    """Building stopped: the document expands into more than MAX_VALUES values."""


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader whose composer refuses nesting deeper than ``MAX_DEPTH``."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


@dataclass(frozen=True)
class YamlDocument:
    """Plain data from one YAML file plus the 1-based line of every key path in it."""

    file: str
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict, repr=False)

    def line(self, path: KeyPath) -> int | None:
        """Line of ``path`` or, failing that, of its nearest recorded ancestor."""
        return line_for(self.lines, path)

    def problem(self, path: KeyPath, message: str) -> ConfigProblem:
        """A problem located at ``path`` in this file."""
        return ConfigProblem(self.file, self.line(path), format_key_path(path), message)


def load_yaml_file(path: Path, display: str | None = None) -> YamlDocument:
    """Read and parse ``path``; ``display`` is how the file is named in problems.

    Unreadable files become problems too, so the caller has one error path to handle.
    """
    name = display if display is not None else str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            message = f"file is larger than {MAX_BYTES // (1024 * 1024)} MiB; not read"
            raise ConfigError([ConfigProblem(name, None, DOCUMENT, message)])
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(name, None, DOCUMENT, "file not found")]) from None
    except IsADirectoryError:
        raise ConfigError([ConfigProblem(name, None, DOCUMENT, "is a directory")]) from None
    except PermissionError:
        raise ConfigError([ConfigProblem(name, None, DOCUMENT, "permission denied")]) from None
    except OSError as exc:  # e.g. a FIFO or a device that cannot be read
        message = f"cannot read: {exc.strerror or type(exc).__name__}"
        raise ConfigError([ConfigProblem(name, None, DOCUMENT, message)]) from None
    except UnicodeDecodeError:
        problem = ConfigProblem(name, None, DOCUMENT, "not UTF-8 text")
        raise ConfigError([problem]) from None
    return parse_yaml(text, name)


def parse_yaml(text: str, file: str) -> YamlDocument:
    """Parse one YAML document from ``text``; raises ConfigError with located problems."""
    if len(text) > MAX_BYTES:
        message = f"text is larger than {MAX_BYTES // (1024 * 1024)} MiB; not read"
        raise ConfigError([ConfigProblem(file, None, DOCUMENT, message)])
    loader = _BoundedLoader(text)
    builder: _Builder | None = None
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigError([ConfigProblem(file, None, DOCUMENT, "file is empty")])
        builder = _Builder(loader, file)
        data = builder.build(node, ())
    except _TooLarge:
        assert builder is not None
        raise ConfigError([builder.too_large]) from None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_parse_problem(exc, file)]) from None
    except yaml.YAMLError as exc:  # e.g. a ReaderError for control characters
        raise ConfigError([ConfigProblem(file, None, DOCUMENT, str(exc))]) from None
    finally:
        loader.dispose()
    if builder is None:  # pragma: no cover - every path above either builds or raises
        raise ConfigError([ConfigProblem(file, None, DOCUMENT, "invalid YAML")])
    if builder.problems:
        raise ConfigError(sorted(builder.problems, key=lambda p: p.line or 0))
    return YamlDocument(file, data, builder.lines)


def _parse_problem(exc: yaml.MarkedYAMLError, file: str) -> ConfigProblem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    message = exc.problem or exc.context or "invalid YAML"
    if exc.context and message.startswith("but "):
        # Composer errors split one sentence: "expected a single document" / "but found ...".
        message = f"{exc.context}, {message}"
    return ConfigProblem(file, line, DOCUMENT, message)


class _Builder:
    """Turns a composed node tree into dicts, lists and scalars, recording lines."""

    def __init__(self, loader: yaml.SafeLoader, file: str) -> None:
        self._loader = loader
        self._file = file
        self._checked: set[int] = set()  # mapping nodes already checked for duplicates
        self._active: set[int] = set()  # nodes being built: an alias back here is recursion
        self.lines: dict[KeyPath, int] = {}
        self.problems: list[ConfigProblem] = []
        self._values = 0
        self.too_large = ConfigProblem(file, None, DOCUMENT, "")

    def build(self, node: Node, path: KeyPath) -> Any:
        self._values += 1
        if self._values > MAX_VALUES:
            self.too_large = ConfigProblem(
                self._file,
                line_for(self.lines, path[:1]),  # the top-level key the expansion is under
                format_key_path(path[:1]),
                f"expands into more than {MAX_VALUES} values (aliases repeated too often?)",
            )
            raise _TooLarge
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if id(node) in self._active:
            self._problem(node, path, "recursive alias")
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            if isinstance(node, SequenceNode):
                return self._sequence(node, path)
            return None  # pragma: no cover - the composer yields only the three node kinds
        finally:
            self._active.discard(id(node))

    def _mapping(self, node: MappingNode, path: KeyPath) -> dict[Any, Any] | None:
        if node.tag != _MAP_TAG:
            self._problem(node, path, f"unsupported YAML tag '{node.tag}'")
            return None
        if id(node) not in self._checked:
            self._checked.add(id(node))
            self._check_duplicates(node, path)
        # Resolves '<<: *anchor' merge keys in place; own keys come last and win.
        self._loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self._problem(key_node, path, "mapping keys must be plain values")
                continue
            key = self._scalar(key_node, path)
            key_path = (*path, key if isinstance(key, str) else str(key))
            self.lines[key_path] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, key_path)
        return result

    def _sequence(self, node: SequenceNode, path: KeyPath) -> list[Any] | None:
        if node.tag != _SEQ_TAG:
            self._problem(node, path, f"unsupported YAML tag '{node.tag}'")
            return None
        return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]

    def _check_duplicates(self, node: MappingNode, path: KeyPath) -> None:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            key = self._scalar(key_node, path, report=False)
            if key in seen:
                shown = key if isinstance(key, str) else str(key)
                self._problem(key_node, (*path, shown), f"duplicate key '{key}'")
            seen.add(key)

    def _scalar(self, node: ScalarNode, path: KeyPath, *, report: bool = True) -> Any:
        """The scalar's value; one it cannot be (2027-02-30) is a problem, kept as its text."""
        try:
            return self._loader.construct_object(node, deep=True)
        except (ValueError, OverflowError) as exc:
            # PyYAML leaves a node that failed marked as being built; a second try would
            # report it as recursive.
            self._loader.recursive_objects.pop(node, None)
            if report:
                what = "date" if node.tag.endswith(":timestamp") else "value"
                reason = str(exc).split(";")[0]
                self._problem(node, path, f"not a valid {what} '{node.value[:40]}': {reason}")
            return node.value

    def _problem(self, node: Node, path: KeyPath, message: str) -> None:
        line = node.start_mark.line + 1
        self.problems.append(ConfigProblem(self._file, line, format_key_path(path), message))
