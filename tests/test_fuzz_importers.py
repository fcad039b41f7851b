"""Every importer fuzzed with mutations of a valid file: bytes flipped, inserted, deleted and truncated,
hostile tokens (NUL, lone surrogates, byte-order marks, NaN, deep nesting, U+2028), lines repeated, and
any value of the document (a record's field, a task's group, a join key) replaced with arbitrary JSON. Each run
must end in a report or in the one clear error an import gives for its input (`requests.failure` has words for
it), never in another exception; and nothing
may be half-stored: every stored instance has its task and its image (row and file), task counts are
right, and an all-or-nothing import that refused its file changed nothing.

Run through the same request objects as the CLI, the browser and the worker. Derandomised, so that CI
sees the same inputs every time; STUDIO_FUZZ_EXAMPLES runs more (and random) ones."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from PIL import Image as PILImage
from sqlalchemy import func
from sqlmodel import Session, select

from app.core.storage import MediaStore
from app.ingest.requests import failure, request_model
from app.models import (
    ConversationItem,
    Image,
    Instance,
    Instruction,
    InstructionVersion,
    Revision,
    Role,
    SourceDataset,
    Task,
)
from tests.factories import make_task, make_user

EXAMPLES = int(os.environ.get("STUDIO_FUZZ_EXAMPLES", "60"))
HOSTILE = [b"\x00", b"\\u0000", b"\xff\xfe", b"\xef\xbb\xbf", b"\xed\xa0\x80", b"\\ud800", b'"', b"{", b"}",
           b"[", b"]", b",", b":", b"\n", b"\r", b"\t", b"NaN", b"-Infinity", b"1e999", b"\xe2\x80\xa8",
           b"[" * 3000, b'{"a":' * 100, b"../" * 3, b"/etc/passwd", b"\xc3", b"null", b"true", b"\\", b"'"]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


def records(rows: list[dict]) -> bytes:
    return "\n".join(json.dumps(row) for row in rows).encode() + b"\n"


UNIFIED = [{"instance_id": f"i{k}", "img_path": "a.png", "options": ["red", "blue"] if k % 2 else None,
            "input_text": f"What colour is shape {k}?", "raw_output": "red", "dataset_name": "SHAPES",
            "task_name": "colour"} for k in range(6)]
LLAVA = [{"id": k, "image": "a.png", "task_name": "VQA+vqa", "conversations": [
    {"from": "human", "value": f"<image>\nAnswer the question in a word.\nQuestion: what is {k}?"},
    {"from": "gpt", "value": f"thing {k}"}]} for k in range(5)]
CONVERSATIONS = [{"id": "1", "image": "a.png", "conversations": [
    {"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": "A square."},
    {"from": "human", "value": "What colour?"}, {"from": "gpt", "value": "Red."}]}] * 3
QUESTIONS = {"info": {"year": 2017}, "questions": [
    {"question_id": k, "image_id": 1, "question": f"Question {k}?"} for k in range(5)]}
ANSWERS = [{"question_id": k, "answer": f"answer {k}"} for k in range(5)]
METADATA = b"""datasets:
  - name: SHAPES
    url: https://example.org/shapes
    licence: CC BY 4.0
    tasks:
      - name: colour
        group: question answering
        category: Perception
"""
INSTRUCTIONS = b"""- task: SHAPES+colour
  instruction: Name the colour of the shape.
  input_template: "{{ input_text }}"
- task: SHAPES+colour
  label: options
  instruction: Pick the colour.
  option_style: dot_capitals
"""

CORRECTIONS = b"""task,source_id,field,value,reason
SHAPES+colour,SHAPES+colour-0,raw_output,red,it is red
SHAPES+colour,SHAPES+colour-1,input_text,What colour is the shape?,clearer
SHAPES+colour,SHAPES+colour-1,split,validation,held out
"""


def table_csv() -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["id", "question", "answer", "choices", "file"])
    writer.writeheader()
    for k in range(5):
        writer.writerow({"id": k, "question": f"Q{k}?", "answer": "yes", "choices": "yes|no", "file": "a.png"})
    return out.getvalue().encode()


def answers_csv() -> bytes:
    return b"question_id,answer\n" + b"".join(f"{row['question_id']},{row['answer']}\n".encode() for row in ANSWERS)


# format -> (file name, valid content, request fields besides the file)
CASES = {
    "unified-jsonl": ("in.jsonl", records(UNIFIED), {"format": "unified"}),
    "unified-array": ("in.json", json.dumps(UNIFIED, indent=1).encode(), {"format": "unified", "chunk_size": 2}),
    "llava": ("released.json", json.dumps(LLAVA).encode(), {"format": "llava"}),
    "table-csv": ("qa.csv", table_csv(), {"format": "table", "dataset": "QA", "task": "qa", "map": [
        "id->instance_id", "question->input_text", "answer->raw_output", "choices->options", "file->img_path"]}),
    "table-join": ("questions.json", json.dumps(QUESTIONS, indent=1).encode(), {
        "format": "table", "records": "questions", "join": "answers.csv", "on": "question_id",
        "image_pattern": "{image_id}.png", "dataset": "VQA", "task": "vqa",
        "map": ["question_id->instance_id", "question->input_text", "answer->raw_output"]}),
    "conversations": ("pool.jsonl", records(CONVERSATIONS), {"format": "conversations", "pool": "chat"}),
    "metadata": ("meta.yaml", METADATA, {"format": "metadata"}),
    "instructions": ("instructions.yaml", INSTRUCTIONS, {"format": "instructions", "submit": True}),
    "corrections": ("fixes.csv", CORRECTIONS, {"format": "corrections"}),
}
ALL_OR_NOTHING = {"metadata": (SourceDataset, Task), "instructions": (Instruction, InstructionVersion),
                  "corrections": (Revision,)}


def mutations(content: bytes, as_yaml: bool) -> st.SearchStrategy[bytes]:
    """A few edits of `content`, each drawn at random: the file as a careless tool or a hostile user left it."""
    @st.composite
    def edited(draw) -> bytes:
        data = content
        for _ in range(draw(st.integers(min_value=1, max_value=3))):
            at = draw(st.integers(min_value=0, max_value=len(data)))
            kind = draw(st.sampled_from(["hostile", "bytes", "flip", "delete", "truncate", "repeat", "value"]))
            if kind == "hostile":
                data = data[:at] + draw(st.sampled_from(HOSTILE)) + data[at:]
            elif kind == "bytes":
                data = data[:at] + draw(st.binary(min_size=1, max_size=6)) + data[at:]
            elif kind == "flip" and at < len(data):
                data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
            elif kind == "delete":
                data = data[:at] + data[at + draw(st.integers(1, 40)):]
            elif kind == "truncate":
                data = data[:at]
            elif kind == "repeat":
                lines = data.split(b"\n")
                line = draw(st.integers(0, len(lines) - 1))
                data = b"\n".join([*lines[:line + 1], lines[line], *lines[line + 1:]])
            elif kind == "value":
                data = _replace_a_value(data, draw, as_yaml)
        return data
    return edited()


def _replace_a_value(data: bytes, draw, as_yaml: bool) -> bytes:
    """One value somewhere in the document (YAML, a JSON document, or a JSONL line that still parses) replaced
    with arbitrary JSON: a list where text belongs, a mapping for a name, a float for an id."""
    try:
        document = yaml.safe_load(data) if as_yaml else json.loads(data)
    except (ValueError, RecursionError, yaml.YAMLError):
        lines = data.split(b"\n")
        line = draw(st.integers(0, len(lines) - 1))
        try:
            record = json.loads(lines[line])
        except (ValueError, RecursionError):
            return data
        lines[line] = _replace_a_value(json.dumps(record).encode(), draw, as_yaml=False)
        return b"\n".join(lines)
    slots = list(_slots(document))
    if not slots:
        return data
    container, key = draw(st.sampled_from(slots))
    container[key] = draw(JSON_VALUES)
    return (yaml.safe_dump(document) if as_yaml else json.dumps(document, indent=1)).encode()


def _slots(value):
    """(container, key) of every value in a parsed document, outermost first."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield value, key
            yield from _slots(inner)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield value, index
            yield from _slots(inner)


@pytest.fixture
def incoming(tmp_path: Path) -> Path:
    folder = tmp_path / "incoming"
    (folder / "images").mkdir(parents=True)
    PILImage.new("RGB", (8, 8), "red").save(folder / "images" / "a.png")
    PILImage.new("RGB", (8, 8), "blue").save(folder / "images" / "1.png")
    (folder / "images" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "answers.csv").write_bytes(answers_csv())
    return folder


def _consistent(session: Session, media: MediaStore) -> None:
    """Nothing half-stored: whole instances, each with its task and image; counts that match."""
    orphans = session.exec(select(func.count()).select_from(Instance).outerjoin(Task, Task.id == Instance.task_id)
                           .where(Task.id.is_(None))).one()
    assert orphans == 0
    for sha256 in session.exec(select(Image.sha256)):
        assert media.exists(sha256), f"image row {sha256} without its file"
    for task in session.exec(select(Task)):
        active = session.exec(select(func.count()).select_from(Instance).where(
            Instance.task_id == task.id, Instance.status == "active")).one()
        assert task.instance_count == active, task.name
    for item in session.exec(select(ConversationItem)):
        assert item.conversations and item.conversations[-1]["from"] == "gpt"


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_mutated_file_gets_a_report_or_one_clear_error_and_nothing_half_stored(app, db, settings, incoming, case):
    name, content, fields = CASES[case]
    engine, media = app.state.engine, MediaStore(settings.media_dir)
    make_task(db, "SHAPES+colour", instances=3)  # what the instructions and the corrections name
    author = make_user(db, Role.author)  # who proposes the corrections
    guarded = ALL_OR_NOTHING.get(fields["format"], ())

    @given(mutated=mutations(content, as_yaml=name.endswith(".yaml")))
    @hypothesis_settings(max_examples=EXAMPLES, deadline=None, derandomize="STUDIO_FUZZ_EXAMPLES" not in os.environ,
                         database=None, suppress_health_check=list(HealthCheck))
    def imports_or_says_why(mutated: bytes) -> None:
        (incoming / name).write_bytes(mutated)
        extra = {"image_root": str(incoming / "images")} if "image_root" in request_model(
            fields["format"]).model_fields else {}
        wanted = request_model(fields["format"])(**fields, **extra, file=name)
        with Session(engine) as session:
            before = [session.exec(select(func.count()).select_from(model)).one() for model in guarded]
        try:
            wanted.run(engine=engine, media=media, located=wanted.locate(incoming), actor_id=author.id)
        except Exception as error:  # what matters is which: only the ones with words are fine
            if failure(error, wanted) is None:
                raise
            with Session(engine) as session:
                after = [session.exec(select(func.count()).select_from(model)).one() for model in guarded]
            assert after == before, f"{case}: refused, yet its rows changed"
        with Session(engine) as session:
            _consistent(session, media)

    imports_or_says_why()
