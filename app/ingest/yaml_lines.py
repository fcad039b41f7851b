"""YAML (and JSON, which YAML reads) with the line of every mapping and key, for messages that say where."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from app.ingest.record_files import SURROGATE_ESCAPE, MalformedFile, encodable


class EntriesRefused(ValueError):
    """An all-or-nothing import's file read, and refused: every problem, each with its line."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class LineLoader(yaml.SafeLoader):
    """Keeps where each mapping and each of its keys is (1-based lines under `__line__` and `__lines__`)."""

    def construct_mapping(self, node, deep=False):
        mapping = super().construct_mapping(node, deep=deep)
        mapping["__line__"] = node.start_mark.line + 1
        mapping["__lines__"] = {key.value: key.start_mark.line + 1 for key, _ in node.value
                                if isinstance(key, yaml.ScalarNode)}
        return mapping


def line_of(mapping: dict, key: str | None = None) -> int:
    """The line of `key` in `mapping` (of the mapping itself without one, or when the key is absent)."""
    return mapping.get("__lines__", {}).get(key, mapping.get("__line__", 0))


def keys_of(mapping: dict) -> set[str]:
    """The mapping's own keys, without the line bookkeeping."""
    return {key for key in mapping if key not in ("__line__", "__lines__")}


def load_with_lines(path: Path) -> Any:
    """The document; a file that is not UTF-8 YAML/JSON is a MalformedFile at the line at fault."""
    try:
        text = path.read_text(encoding="utf-8-sig")
        _refuse_deep_brackets(path, text)
        document = yaml.load(text, Loader=LineLoader)  # LineLoader is a SafeLoader
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise MalformedFile(path, mark.line + 1 if mark else 1,
                            f"not valid YAML/JSON ({getattr(error, 'problem', None) or error})") from None
    except UnicodeDecodeError:
        raise MalformedFile(path, 1, "not UTF-8 text") from None
    except RecursionError:  # the YAML parser recurses once per level
        raise MalformedFile(path, 1, "nested too deeply to read (brackets or indentation thousands deep)") from None
    if not encodable(document):  # YAML turns "\ud800" into a string that nothing can store
        escape = SURROGATE_ESCAPE.search(text)
        raise MalformedFile(path, text.count("\n", 0, escape.start()) + 1 if escape else 1,
                            "holds half of a UTF-16 surrogate pair (such as \\ud800), which is not text")
    return document


MAX_BRACKET_DEPTH = 64
_BRACKETS = re.compile(r"[\[\]{}]")


def _refuse_deep_brackets(path: Path, text: str) -> None:
    """Flow-style nesting thousands deep ("[[[[...") takes the YAML parser seconds to give up on: refused at
    once, by line. (Nesting by indentation needs megabytes to go as deep, and is caught by RecursionError.)"""
    depth = 0
    for bracket in _BRACKETS.finditer(text):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > MAX_BRACKET_DEPTH:
            line = text.count("\n", 0, bracket.start()) + 1
            raise MalformedFile(path, line, f"nested deeper than {MAX_BRACKET_DEPTH} levels of brackets")
