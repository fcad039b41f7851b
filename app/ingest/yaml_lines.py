"""YAML (and JSON, which YAML reads) with the line of every mapping and key, for messages that say where."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from app.ingest.records import MalformedFile


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
        return yaml.load(path.read_text(encoding="utf-8-sig"), Loader=LineLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise MalformedFile(path, mark.line + 1 if mark else 1,
                            f"not valid YAML/JSON ({getattr(error, 'problem', None) or error})") from None
    except UnicodeDecodeError:
        raise MalformedFile(path, 1, "not UTF-8 text") from None
