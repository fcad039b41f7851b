"""`import instructions`: drafts (and submitted versions) from a YAML or JSON file, all or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import select

from app.ingest.instructions import InstructionsInvalid, import_instructions
from app.ingest.record_files import MalformedFile
from app.models import AuditEvent, Instruction, InstructionVersion, Review, Role
from tests.factories import make_task, make_user

GOOD = """\
- task: VQA+vqa
  instruction: Answer the question about the image in a word or two.
  input_template: "{{ input_text }}"
- task: SHAPES+colour
  label: terse
  text: Name the colour.            # the editor's own names work too
  options_style: dot_capitals
  image_placement: after
"""


@pytest.fixture
def tasks(db):
    return make_task(db, "VQA+vqa", instances=4), make_task(db, "SHAPES+colour", instances=4)


def write(tmp_path: Path, text: str, name: str = "instructions.yaml") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path / name


def test_drafts_are_created_for_their_author_and_a_second_run_changes_nothing(db, tasks, tmp_path):
    author = make_user(db, Role.author)
    report = import_instructions(db, path=write(tmp_path, GOOD), actor_id=author.id)
    assert (report.created, report.submitted) == (["VQA+vqa / main", "SHAPES+colour / terse"], [])
    rows = {row.label: row for row in db.exec(select(Instruction)).all()}
    assert rows["main"].draft_text.startswith("Answer the question") and rows["main"].author_id == author.id
    assert rows["main"].draft_input_template == "{{ input_text }}" and rows["main"].status == "draft"
    assert (rows["terse"].draft_options_style, rows["terse"].draft_image_placement) == ("dot_capitals", "after")
    assert db.exec(select(InstructionVersion)).all() == []

    again = import_instructions(db, path=write(tmp_path, GOOD), actor_id=author.id)
    assert (again.created, again.updated, len(again.unchanged)) == ([], [], 2)
    changed = import_instructions(db, path=write(tmp_path, GOOD.replace("a word or two", "one word")),
                                  actor_id=author.id)
    assert changed.updated == ["VQA+vqa / main"]
    db.refresh(rows["main"])
    assert "one word" in rows["main"].draft_text
    assert {e.action for e in db.exec(select(AuditEvent))} >= {"instruction.create", "instruction.draft_import"}


def test_submit_freezes_versions_opens_reviews_and_is_not_repeated(db, tasks, tmp_path):
    author = make_user(db, Role.author)
    path = write(tmp_path, json.dumps([{"task": "VQA+vqa", "instruction": "Answer briefly."}]), "in.json")
    report = import_instructions(db, path=path, actor_id=author.id, submit=True)
    assert report.submitted == ["VQA+vqa / main v1"]
    version = db.exec(select(InstructionVersion)).one()
    assert (version.text, version.status, version.author_id) == ("Answer briefly.", "in_review", author.id)
    assert db.exec(select(Review).where(Review.instruction_version_id == version.id)).one()
    assert import_instructions(db, path=path, actor_id=author.id, submit=True).submitted == []
    assert len(db.exec(select(InstructionVersion)).all()) == 1


def test_every_problem_is_listed_with_its_line_and_nothing_is_written(db, tasks, tmp_path):
    bad = """\
- task: VQA+vqa
  instruction: Fine on its own.
- task: NOPE+missing
  instruction: Which task?
- task: VQA+vqa
  instruction: Same task and label as line 1.
- task: SHAPES+colour
  instruction: Bad choices.
  option_style: bullets
  colour: red
- task: SHAPES+colour
  label: broken
  instruction: Broken template.
  input_template: "{{ input_text"
- task: SHAPES+colour
  label: unknown
  instruction: Unknown field.
  output_template: "{{ answer }}"
- task: SHAPES+colour
  label: empty
  instruction: "  "
"""
    with pytest.raises(InstructionsInvalid) as error:
        import_instructions(db, path=write(tmp_path, bad), actor_id=None)
    problems = error.value.problems
    assert problems[:3] == [
        "instructions.yaml:3: task: there is no task named NOPE+missing",
        "instructions.yaml:5: label: VQA+vqa / main is given twice (first on line 1)",
        "instructions.yaml:10: colour: not a field here (fields: task, label, instruction, input_template, "
        "output_template, option_style, image_position)",
    ]
    assert problems[3] == "instructions.yaml:9: option_style: one of paren_letters, dot_capitals, dot_numbers"
    assert problems[4].startswith("instructions.yaml:14: input_template: ")
    assert problems[5].startswith("instructions.yaml:18: output_template: unknown field(s): answer")
    assert problems[6] == "instructions.yaml:21: instruction: required (the instruction's text)"
    assert len(problems) == 7
    assert db.exec(select(Instruction)).all() == []


def test_with_submit_a_template_that_fails_on_the_preview_sample_refuses_the_whole_file(db, tasks, tmp_path):
    text = GOOD + "- task: VQA+vqa\n  label: strict\n  instruction: Pick one.\n  input_template: \"{{ options[3] }}\"\n"
    with pytest.raises(InstructionsInvalid) as error:
        import_instructions(db, path=write(tmp_path, text), actor_id=None, submit=True)
    assert len(error.value.problems) == 1
    assert error.value.problems[0].startswith("instructions.yaml:9: VQA+vqa / strict: The templates fail on")
    assert db.exec(select(Instruction)).all() == []
    assert import_instructions(db, path=write(tmp_path, text), actor_id=None).created[-1] == "VQA+vqa / strict"


@pytest.mark.parametrize(("text", "message"), [
    ("- task: [unclosed\n", "instructions.yaml:2: not valid YAML/JSON"),
    ("task: VQA+vqa\ninstruction: x\n", "instructions.yaml:1: the file must hold a list of instructions"),
    ("[]", "instructions.yaml:1: the file must hold a list of instructions"),
    ("- task: x\n  instruction: " + "[" * 3000, "instructions.yaml:2: nested deeper than 64 levels"),  # fuzzing
])
def test_a_file_that_cannot_be_read_is_one_clear_error(db, tasks, tmp_path, text, message):
    with pytest.raises(MalformedFile, match=message):
        import_instructions(db, path=write(tmp_path, text), actor_id=None)
