"""The instruction inside released records: Vision-Flan's released human turns are the task's instruction
followed by the instance's input, so that re-curating them as they are would give every record two
instructions once the studio composes its own. `import llava` takes the instruction out:

- given (`--instruction-file`: the `import instructions` list, or a `{task: instruction}` mapping), it is cut
  from the start of each of its task's human turns that begins with it;
- otherwise it is recognised as the common leading text of the task's human turns, cut back to a clean
  boundary (the end of a line, or of a sentence), when at least MIN_RECORDS records share it and it is at
  least MIN_CHARS long.

What is left is the instance's input (none when nothing is), and the instruction becomes the task's
imported instruction: a draft labelled `imported`, to be reviewed like any other."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from app.ingest.llava import parse_llava
from app.ingest.record_files import BadLine, MalformedFile, Record, read_records
from app.ingest.unified import FieldProblem, InstanceDraft
from app.ingest.yaml_lines import keys_of, load_with_lines
from app.models import Instruction, Task
from app.services import instructions as instruction_service

MIN_RECORDS = 3  # fewer, and a common prefix says little about what is shared
MIN_CHARS = 12  # shorter common text is more likely an input's opening words than an instruction
IMPORTED_LABEL = "imported"
_SENTENCE_END = re.compile(r"[.?!:](?=\s)")


@dataclass
class _Shared:
    prefix: str
    count: int
    shortest: int


def shared_instructions(path: Path, read: Callable[[Path], Iterable[Record | BadLine]] = read_records
                        ) -> dict[str, str]:
    """{task: instruction} recognised in the file (one pass, before the import)."""
    shared: dict[str, _Shared] = {}
    for item in read(path):
        if isinstance(item, BadLine):
            continue
        try:
            draft = parse_llava(item.data, item.line)
        except FieldProblem:
            continue  # the import reports it
        text = draft.input_text or ""
        seen = shared.get(draft.task_name)
        if seen is None:
            shared[draft.task_name] = _Shared(text, 1, len(text))
        else:
            seen.prefix = os.path.commonprefix([seen.prefix, text]) if seen.prefix else ""
            seen.count += 1
            seen.shortest = min(seen.shortest, len(text))
    found = {task: _clean_cut(seen) for task, seen in shared.items() if seen.count >= MIN_RECORDS}
    return {task: instruction for task, instruction in found.items() if instruction}


def _clean_cut(shared: _Shared) -> str | None:
    """The shared text up to a boundary every record has: all of it when it is a whole prompt that ends a
    sentence; else up to its last line break; else up to its last sentence end."""
    prefix = shared.prefix
    if shared.shortest == len(prefix) and prefix.rstrip()[-1:] in (".", "?", "!", ":"):
        cut = prefix
    elif "\n" in prefix:
        cut = prefix[:prefix.rindex("\n")]
    else:
        ends = list(_SENTENCE_END.finditer(prefix))
        cut = prefix[:ends[-1].end()] if ends else ""
    cut = cut.strip()
    return cut if len(cut) >= MIN_CHARS else None


def read_instruction_file(path: Path) -> dict[str, str]:
    """{task: instruction} from the `import instructions` list, or from a `{task: instruction}` mapping."""
    document = load_with_lines(path)
    if isinstance(document, dict) and isinstance(document.get("instructions"), list):
        document = document["instructions"]
    if isinstance(document, list):
        pairs = [(entry.get("task"), entry.get("instruction", entry.get("text"))) for entry in document
                 if isinstance(entry, dict)]
    elif isinstance(document, dict):
        pairs = [(key, document[key]) for key in keys_of(document)]
    else:
        pairs = []
    found = {task: text.strip() for task, text in pairs
             if isinstance(task, str) and isinstance(text, str) and text.strip()}
    if not found:
        raise MalformedFile(path, 1, "holds no instructions: give a list of {task, instruction} or a mapping "
                                     "of task names to instructions")
    return found


def separating(instructions: dict[str, str]) -> Callable[[Any, int], InstanceDraft]:
    """parse_llava, with each task's instruction cut from the start of its input."""
    def parse(data: Any, line: int) -> InstanceDraft:
        draft = parse_llava(data, line)
        instruction = instructions.get(draft.task_name)
        if instruction and draft.input_text and draft.input_text.startswith(instruction):
            draft.input_text = draft.input_text[len(instruction):].strip() or None
        return draft
    return parse


def store_imported(engine: Engine, instructions: dict[str, str], *, actor_id: int | None) -> list[str]:
    """Each task's instruction as its `imported` draft, unless it has one; returns the tasks given one."""
    given = []
    with Session(engine) as session:
        tasks = dict(session.exec(select(Task.name, Task.id).where(Task.name.in_(instructions))).all())
        labelled = set(session.exec(select(Instruction.task_id).where(Instruction.label == IMPORTED_LABEL)))
        for name, task_id in sorted(tasks.items()):
            if task_id in labelled:
                continue
            instruction = instruction_service.add_instruction(session, task_id=task_id, label=IMPORTED_LABEL,
                                                              author_id=actor_id)
            instruction.draft_text = instructions[name]
            given.append(name)
        session.commit()
    return given
