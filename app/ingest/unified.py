"""The Vision-Flan unified instance format: one record per instance, validated field by field.

    {"instance_id", "img_path", "options" (list or null), "input_text" (or null), "raw_output",
     "human_preferred_output" (optional), "dataset_name", "task_name",
     "instruction"/"output" (optional: an already merged pair, kept as provenance)}
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

from app.core import limits

KNOWN_FIELDS = frozenset({"instance_id", "img_path", "options", "input_text", "raw_output",
                          "human_preferred_output", "dataset_name", "task_name"})
MAX_ID_CHARS = 200
MAX_TEXT_CHARS = limits.RECORD_TEXT
MAX_DEPTH = 32  # levels of nesting in fields kept as provenance


class FieldProblem(ValueError):
    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


@dataclass(slots=True)
class InstanceDraft:
    line: int
    dataset_name: str
    task_name: str
    source_id: str
    image_path: str | None
    input_text: str | None
    options: list[str] | None
    raw_output: str
    human_preferred_output: str | None
    provenance: dict[str, Any] | None


def parse_unified(data: Any, line: int) -> InstanceDraft:
    if not isinstance(data, dict):
        raise FieldProblem("record", f"must be a JSON object, not {type(data).__name__}")
    task, dataset = task_and_dataset(data.get("dataset_name"), data.get("task_name"))
    extra = None if data.keys() <= KNOWN_FIELDS else {k: v for k, v in data.items() if k not in KNOWN_FIELDS}
    if extra:
        storable(extra, "record")
    return InstanceDraft(
        line=line,
        dataset_name=dataset,
        task_name=task,
        source_id=source_id(data.get("instance_id"), field="instance_id"),
        image_path=_optional_text(data, "img_path"),
        input_text=_optional_text(data, "input_text"),
        options=_options(data.get("options")),
        raw_output=_required_text(data, "raw_output"),
        human_preferred_output=_optional_text(data, "human_preferred_output"),
        provenance=extra or None,
    )


def task_and_dataset(dataset: Any, task: Any) -> tuple[str, str]:
    """(task name, dataset name), validated; a task name without its DATASET+ prefix gets it."""
    if isinstance(dataset, str) and isinstance(task, str):
        return _checked_names(dataset, task)  # a file repeats one pair thousands of times: check it once
    return _task_and_dataset(dataset, task)


@functools.lru_cache(maxsize=4096)
def _checked_names(dataset: str, task: str) -> tuple[str, str]:
    return _task_and_dataset(dataset, task)


def _task_and_dataset(dataset: Any, task: Any) -> tuple[str, str]:
    dataset = _name(dataset, "dataset_name")
    task = _name(task, "task_name", allow_plus=True)
    return (task if "+" in task else f"{dataset}+{task}"), dataset


def _name(value: Any, field: str, *, allow_plus: bool = False) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FieldProblem(field, "is required (a non-empty string)")
    value = no_nul(value.strip(), field)
    if "/" in value or (not allow_plus and "+" in value) or len(value) > 200:
        forbidden = "/" if allow_plus else "+ or /"
        raise FieldProblem(field, f"must be at most 200 characters without {forbidden}")
    return value


def source_id(value: Any, *, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise FieldProblem(field, "is required (a string or an integer)")
    text = no_nul(str(value).strip(), field)
    if not text or len(text) > MAX_ID_CHARS:
        raise FieldProblem(field, f"must be 1 to {MAX_ID_CHARS} characters")
    return text


def _required_text(data: dict, field: str) -> str:
    value = data.get(field)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # answers such as 3 or 2.5 arrive as numbers
    if not isinstance(value, str) or not value.strip():
        raise FieldProblem(field, "is required (a non-empty string)")
    return within_limit(value, field)


def _optional_text(data: dict, field: str) -> str | None:
    """A string, or None for null, missing or blank."""
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldProblem(field, f"must be a string or null, not {type(value).__name__}")
    return within_limit(value, field) if value.strip() else None


def within_limit(text: str, field: str) -> str:
    if len(text) > MAX_TEXT_CHARS:
        raise FieldProblem(field, f"{len(text):,} characters, more than the {MAX_TEXT_CHARS:,} allowed")
    return no_nul(text, field)


def no_nul(text: str, field: str) -> str:
    """PostgreSQL cannot store a NUL character (SQLite can): refused on every database alike, by record."""
    if "\x00" in text:
        raise FieldProblem(field, "contains a NUL character (\\u0000), which the database cannot store")
    return text


def storable(value: Any, field: str) -> None:
    """Fields kept as they are (provenance): no NUL in any key or string, numbers JSON can carry (finite, and
    integers within 64 bits), and at most MAX_DEPTH levels deep. Walked with a stack, not recursion: a hostile
    record cannot exhaust Python's."""
    waiting = [(value, field, 1)]
    while waiting:
        item, where, depth = waiting.pop()
        if depth > MAX_DEPTH:
            raise FieldProblem(where, f"is nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, str):
            no_nul(item, where)
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int) and not -2**63 <= item < 2**64:
            raise FieldProblem(where, "holds an integer larger than 64 bits")
        elif isinstance(item, float) and not math.isfinite(item):
            raise FieldProblem(where, "holds NaN or Infinity, which JSON does not have")
        elif isinstance(item, dict):
            for key, inner in item.items():
                no_nul(str(key), where)
                waiting.append((inner, f"{where}.{key}" if where != "record" else str(key), depth + 1))
        elif isinstance(item, list):
            waiting.extend((inner, where, depth + 1) for inner in item)


def _options(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(option, str) and option.strip() for option in value):
        raise FieldProblem("options", "must be a list of non-empty strings, or null")
    for option in value:
        no_nul(option, "options")
    if len(value) < 2:
        raise FieldProblem("options", "must offer at least two options")
    if len(set(value)) != len(value):
        raise FieldProblem("options", "must not repeat an option")
    return value
