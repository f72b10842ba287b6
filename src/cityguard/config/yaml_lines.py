"""Load YAML while remembering where every key came from.

``yaml.safe_load`` throws line numbers away, yet "line 14" is what lets an operator fix a
site file quickly. So we compose the node tree with ``yaml.SafeLoader`` (nodes carry marks)
and build plain Python data ourselves, recording key path → line as we go. Building by hand
also lets us reject duplicate keys, which PyYAML silently resolves to the last value: a
duplicated ``baseline:`` would otherwise quietly change what a city is audited against.
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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(name, None, DOCUMENT, "file not found")]) from None
    except IsADirectoryError:
        raise ConfigError([ConfigProblem(name, None, DOCUMENT, "is a directory")]) from None
    except PermissionError:
        raise ConfigError([ConfigProblem(name, None, DOCUMENT, "permission denied")]) from None
    except UnicodeDecodeError:
        problem = ConfigProblem(name, None, DOCUMENT, "not UTF-8 text")
        raise ConfigError([problem]) from None
    return parse_yaml(text, name)


def parse_yaml(text: str, file: str) -> YamlDocument:
    """Parse one YAML document from ``text``; raises ConfigError with located problems."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigError([ConfigProblem(file, None, DOCUMENT, "file is empty")])
        builder = _Builder(loader, file)
        data = builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_parse_problem(exc, file)]) from None
    except yaml.YAMLError as exc:  # e.g. a ReaderError for control characters
        raise ConfigError([ConfigProblem(file, None, DOCUMENT, str(exc))]) from None
    finally:
        loader.dispose()
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

    def build(self, node: Node, path: KeyPath) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, ScalarNode):
            return self._loader.construct_object(node, deep=True)
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
            key = self._loader.construct_object(key_node, deep=True)
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
            key = self._loader.construct_object(key_node, deep=True)
            if key in seen:
                shown = key if isinstance(key, str) else str(key)
                self._problem(key_node, (*path, shown), f"duplicate key '{key}'")
            seen.add(key)

    def _problem(self, node: Node, path: KeyPath, message: str) -> None:
        line = node.start_mark.line + 1
        self.problems.append(ConfigProblem(self._file, line, format_key_path(path), message))
