"""Instructions from a YAML or JSON file: a team bringing the instructions Vision-Flan published, one per task.

    - task: VQAv2+vqa                     # an existing task, by name
      label: main                         # optional (main); tells several instructions of a task apart
      instruction: Answer the question about the image in a word or two.
      input_template: "{{ input_text }}"  # optional, as in the editor
      output_template: ""                 # optional
      option_style: paren_letters         # optional: paren_letters | dot_capitals | dot_numbers
      image_position: before              # optional: before | after

(The editor's own names, `text`, `options_style` and `image_placement`, are understood too.) All or
nothing: every entry is checked first (the task exists, the fields, the templates' lint, and with `submit`
the editor's preview sample too), every problem is listed with its line, and only a file without any is
written, in one transaction. An instruction that exists (same task and label) gets the file's draft; one
whose draft already says the same is left alone, so running the import again changes nothing."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from app.core.failures import Invalid
from app.ingest.record_files import MalformedFile
from app.ingest.yaml_lines import EntriesRefused, keys_of, line_of, load_with_lines
from app.models import ImagePlacement, Instruction, OptionsStyle, Task
from app.prompts.rendering import MAX_TEMPLATE_CHARS, InstructionSpec, lint_templates
from app.prompts.specs import spec_of_version
from app.services import instructions as instruction_service

FIELDS = {"task": "task", "label": "label", "instruction": "text", "input_template": "input_template",
          "output_template": "output_template", "option_style": "options_style", "image_position": "image_placement"}
EDITOR_NAMES = {"text": "instruction", "options_style": "option_style", "image_placement": "image_position"}
CHOICES = {"option_style": [str(style) for style in OptionsStyle],
           "image_position": [str(placement) for placement in ImagePlacement]}


class InstructionsInvalid(EntriesRefused):
    pass


@dataclass
class InstructionImportReport:
    created: list[str] = field(default_factory=list)  # "task / label"
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)  # "task / label v2"

    def summary(self) -> str:
        return (f"instructions: {len(self.created)} created, {len(self.updated)} updated, "
                f"{len(self.unchanged)} unchanged, {len(self.submitted)} submitted for review")

    def as_dict(self) -> dict:
        return {"summary": self.summary(), **asdict(self)}


@dataclass(frozen=True)
class _Planned:
    line: int
    task: Task
    label: str
    spec: InstructionSpec

    @property
    def name(self) -> str:
        return f"{self.task.name} / {self.label}"


def import_instructions(session: Session, *, path: Path, actor_id: int | None,
                        submit: bool = False) -> InstructionImportReport:
    plans = _checked_plans(session, path, submit=submit)
    report = InstructionImportReport()
    for plan in plans:
        instruction = session.exec(select(Instruction).where(Instruction.task_id == plan.task.id,
                                                             Instruction.label == plan.label)).first()
        created = instruction is None
        if created:
            instruction = instruction_service.add_instruction(session, task_id=plan.task.id, label=plan.label,
                                                              author_id=actor_id)
        changed = instruction_service.draft_spec(instruction) != plan.spec
        if changed:
            instruction_service.replace_draft(session, instruction, plan.spec, actor_id=actor_id)
        (report.created if created else report.updated if changed else report.unchanged).append(plan.name)
        if submit and not _submitted_already(session, instruction, plan.spec):
            version = instruction_service.freeze_draft(session, instruction, actor_id=actor_id)
            report.submitted.append(f"{plan.name} v{version.number}")
    session.commit()
    return report


def _submitted_already(session: Session, instruction: Instruction, spec: InstructionSpec) -> bool:
    versions = instruction_service.versions_of(session, instruction_id=instruction.id)
    return bool(versions) and spec_of_version(versions[0]) == spec


def _checked_plans(session: Session, path: Path, *, submit: bool) -> list[_Planned]:
    entries = _entries(path)
    tasks = {task.name: task for task in session.exec(select(Task).where(Task.name.in_(
        {entry["task"] for entry in entries if isinstance(entry, dict) and isinstance(entry.get("task"), str)})))}
    problems: list[str] = []
    plans: list[_Planned] = []
    first_line: dict[tuple[str, str], int] = {}
    for entry in entries:
        plan = _plan(path.name, entry, tasks, problems)
        if plan is None:
            continue
        key = (plan.task.name, plan.label)
        if key in first_line:
            problems.append(f"{path.name}:{plan.line}: label: {plan.name} is given twice (first on line "
                            f"{first_line[key]})")
            continue
        first_line[key] = plan.line
        if submit:
            try:
                instruction_service.refuse_broken_templates(session, task_id=plan.task.id, spec=plan.spec)
            except Invalid as error:
                problems.append(f"{path.name}:{plan.line}: {plan.name}: {error.message}")
                continue
        plans.append(plan)
    if problems:
        raise InstructionsInvalid(problems)
    return plans


def _entries(path: Path) -> list[Any]:
    document = load_with_lines(path)
    if isinstance(document, dict) and isinstance(document.get("instructions"), list):
        document = document["instructions"]
    if not isinstance(document, list) or not document:
        raise MalformedFile(path, 1, "the file must hold a list of instructions (or `instructions:` and a list), "
                                     "each with at least `task` and `instruction`")
    return document


def _plan(file: str, entry: Any, tasks: dict[str, Task], problems: list[str]) -> _Planned | None:
    if not isinstance(entry, dict):
        problems.append(f"{file}: each instruction must be a mapping with `task` and `instruction`")
        return None
    found = len(problems)
    values: dict[str, Any] = {}
    for key in sorted(keys_of(entry)):
        name = EDITOR_NAMES.get(key, key)
        if name not in FIELDS:
            problems.append(f"{file}:{line_of(entry, key)}: {key}: not a field here (fields: {', '.join(FIELDS)})")
        elif entry[key] is not None and not isinstance(entry[key], str):
            problems.append(f"{file}:{line_of(entry, key)}: {key}: must be text, not {type(entry[key]).__name__}")
        elif entry[key] is not None:
            values[name] = entry[key]
    task_name = values.get("task", "")
    if not task_name.strip():
        problems.append(f"{file}:{line_of(entry)}: task: required (a task's name, as DATASET+task)")
    elif task_name not in tasks:
        problems.append(f"{file}:{line_of(entry, 'task')}: task: there is no task named {task_name}")
    if not values.get("instruction", "").strip():
        problems.append(f"{file}:{line_of(entry, 'instruction')}: instruction: required (the instruction's text)")
    label = values.get("label", "main").strip()
    if not label or len(label) > 80:
        problems.append(f"{file}:{line_of(entry, 'label')}: label: 1 to 80 characters")
    for name, allowed in CHOICES.items():
        if name in values and values[name] not in allowed:
            problems.append(f"{file}:{line_of(entry, name)}: {name}: one of {', '.join(allowed)}")
    for name in ("instruction", "input_template", "output_template"):
        if len(values.get(name, "")) > MAX_TEMPLATE_CHARS:
            problems.append(f"{file}:{line_of(entry, name)}: {name}: at most {MAX_TEMPLATE_CHARS // 1024} KB")
    if len(problems) > found:
        return None
    spec = InstructionSpec(**{FIELDS[name]: value for name, value in values.items() if name not in ("task", "label")})
    lint = [issue for issue in lint_templates(spec) if issue.severity == "error"]
    for issue in lint:
        name = EDITOR_NAMES.get(issue.field, issue.field)
        where = f" (its line {issue.line})" if issue.line else ""
        problems.append(f"{file}:{line_of(entry, name)}: {name}: {issue.message}{where}")
    return None if lint else _Planned(line_of(entry), tasks[task_name], label, spec)
