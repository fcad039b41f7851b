"""Instructions: drafts that authors save (never silently overwritten), versions frozen on submit, previews."""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict

from sqlalchemy import func, update
from sqlmodel import Session, select

from app.core import limits
from app.core.failures import Conflict, Forbidden, Invalid, NotFound
from app.models import (
    Instance,
    InstanceStatus,
    Instruction,
    InstructionStatus,
    InstructionVersion,
    Review,
    Task,
    User,
    utcnow,
)
from app.prompts.rendering import MAX_TEMPLATE_CHARS, InstructionSpec, lint_on_instances, lint_templates
from app.prompts.specs import SPEC_FIELDS, render_instance
from app.prompts.tokens import token_counter
from app.qc.diffing import word_diff
from app.schemas import DraftIn
from app.services import audit, reviews, task_states
from app.services.sampling import sample_instances

PREVIEW_SIZE = 8  # the editor's preview sample: what the author saw render


def get_instruction(session: Session, *, instruction_id: int) -> Instruction:
    instruction = session.get(Instruction, instruction_id)
    if instruction is None:
        raise NotFound(f"There is no instruction with id {instruction_id}.")
    return instruction


def may_edit(instruction: Instruction, *, user_id: int, is_admin: bool) -> bool:
    """A draft is its author's: nobody else changes or submits it, except an admin (who may need to when
    an author has left)."""
    return is_admin or (instruction.author_id is not None and instruction.author_id == user_id)


def ensure_may_edit(instruction: Instruction, *, user_id: int, is_admin: bool) -> None:
    if not may_edit(instruction, user_id=user_id, is_admin=is_admin):
        raise Forbidden("Only this instruction's author (or an admin) can change or submit its draft.")


def create_instruction(session: Session, *, task_id: int, label: str, author_id: int) -> Instruction:
    instruction = add_instruction(session, task_id=task_id, label=label, author_id=author_id)
    session.commit()
    return instruction


def add_instruction(session: Session, *, task_id: int, label: str, author_id: int | None) -> Instruction:
    """A new, empty draft, in the caller's transaction. Labels tell a task's instructions apart: a label the task
    has is refused, and none given is "main", or "main 2", "main 3"... where "main" is taken."""
    taken = set(session.exec(select(Instruction.label).where(Instruction.task_id == task_id)))
    given = limits.at_most(label.strip(), 80, field="label") or ""
    if given in taken:
        raise Conflict(f"This task already has an instruction labelled “{given}”: give this one another label.",
                       fields={"label": "taken"})
    label = given or next(name for k in itertools.count(1) if (name := "main" if k == 1 else f"main {k}") not in taken)
    instruction = Instruction(task_id=task_id, label=label, author_id=author_id, draft_saved_at=utcnow())
    session.add(instruction)
    session.flush()
    audit.record(session, actor_id=author_id, action="instruction.create", entity_type="instruction",
                 entity_id=instruction.id, task_id=task_id, after={"task_id": task_id, "label": instruction.label})
    return instruction


def replace_draft(session: Session, instruction: Instruction, spec: InstructionSpec, *, actor_id: int | None) -> None:
    """The draft becomes `spec` (a bulk import's), in the caller's transaction; an editor open on the old
    draft gets a conflict on its next save, as with any other save."""
    before = {name: getattr(instruction, f"draft_{name}") for name in SPEC_FIELDS}
    for name in SPEC_FIELDS:
        setattr(instruction, f"draft_{name}", getattr(spec, name))
    instruction.lock_version += 1
    instruction.draft_saved_at = utcnow()
    session.add(instruction)
    audit.record(session, actor_id=actor_id, action="instruction.draft_import", entity_type="instruction",
                 entity_id=instruction.id, task_id=instruction.task_id, before=before, after=asdict(spec))


def save_draft(session: Session, *, instruction_id: int, data: DraftIn, actor_id: int,
               is_admin: bool = False) -> Instruction:
    """Saves the draft if nobody saved it since `data.lock_version`; otherwise a Conflict, nothing lost."""
    ensure_may_edit(get_instruction(session, instruction_id=instruction_id), user_id=actor_id, is_admin=is_admin)
    _write_draft(session, instruction_id=instruction_id, data=data)
    session.commit()
    instruction = get_instruction(session, instruction_id=instruction_id)
    session.refresh(instruction)
    return instruction


def _write_draft(session: Session, *, instruction_id: int, data: DraftIn) -> None:
    """The draft becomes `data` in the caller's transaction, if nobody saved it since `data.lock_version`."""
    for name in ("text", "input_template", "output_template"):
        if len(getattr(data, name)) > MAX_TEMPLATE_CHARS:
            raise Invalid("A template is too long.", fields={name: f"at most {MAX_TEMPLATE_CHARS // 1024} KB"})
    saved = session.execute(
        update(Instruction).where(Instruction.id == instruction_id, Instruction.lock_version == data.lock_version)
        .values(lock_version=Instruction.lock_version + 1, draft_saved_at=utcnow(),
                **{f"draft_{name}": getattr(data, name) for name in SPEC_FIELDS})).rowcount
    if saved != 1:
        session.rollback()
        raise Conflict("Someone else saved this draft while you were editing it: copy your text, reload, "
                       "and merge.", fields={"lock_version": "stale"})


def submit(session: Session, *, instruction_id: int, actor_id: int, is_admin: bool = False,
           draft: DraftIn | None = None) -> InstructionVersion:
    """Freezes the draft as the next numbered, immutable version, to be reviewed. `draft` is what the editor
    shows: saved first when it differs from the stored draft (an author who submits before the autosave has
    run submits what they see), in the same transaction, so a refused submission saves nothing."""
    instruction = get_instruction(session, instruction_id=instruction_id)
    ensure_may_edit(instruction, user_id=actor_id, is_admin=is_admin)
    if draft is not None and draft_spec(instruction) != spec_of(draft):
        _write_draft(session, instruction_id=instruction_id, data=draft)
        session.refresh(instruction)
    if not instruction.draft_text.strip():
        raise Invalid("Write the instruction before submitting it.", fields={"text": "empty"})
    refuse_broken_templates(session, task_id=instruction.task_id, spec=draft_spec(instruction))
    version = freeze_draft(session, instruction, actor_id=actor_id)
    session.commit()
    return version


def draft_spec(instruction: Instruction) -> InstructionSpec:
    return InstructionSpec(**{name: getattr(instruction, f"draft_{name}") for name in SPEC_FIELDS})


def spec_of(draft: DraftIn) -> InstructionSpec:
    """What the editor shows, as the renderer takes it."""
    return InstructionSpec(**{name: getattr(draft, name) for name in SPEC_FIELDS})


def freeze_draft(session: Session, instruction: Instruction, *, actor_id: int | None) -> InstructionVersion:
    """The draft as the next numbered version, in review, in the caller's transaction (checked beforehand)."""
    number = (session.exec(select(func.max(InstructionVersion.number))
                           .where(InstructionVersion.instruction_id == instruction.id)).one() or 0) + 1
    version = InstructionVersion(instruction_id=instruction.id, number=number, author_id=actor_id,
                                 status=InstructionStatus.in_review,
                                 **{name: getattr(instruction, f"draft_{name}") for name in SPEC_FIELDS})
    instruction.status = InstructionStatus.in_review
    session.add_all([version, instruction])
    session.flush()
    audit.record(session, actor_id=actor_id, action="instruction.submit", entity_type="instruction_version",
                 entity_id=version.id, task_id=instruction.task_id,
                 after={"instruction_id": instruction.id, "number": number})
    reviews.open_review(session, version=version, task_id=instruction.task_id, author_id=actor_id)
    task_states.advance(session, task_id=instruction.task_id, actor_id=actor_id, reason=f"version {number} submitted")
    return version


def refuse_broken_templates(session: Session, *, task_id: int, spec: InstructionSpec) -> None:
    """A version whose templates do not compile, name unknown fields, or fail on the editor's preview sample
    (seed 0) would fail its reviewers and the export: it is refused with the lint's message."""
    errors = [issue for issue in lint_templates(spec) if issue.severity == "error"]
    if errors:
        first = errors[0]
        where = f" (line {first.line})" if first.line else ""
        raise Invalid(f"The {first.field.replace('_', ' ')} cannot be used{where}: {first.message}. Fix it in the "
                      "editor before submitting.", fields={issue.field: issue.message for issue in errors})
    for instance, image in sample_instances(session, task_id=task_id, seed=0, size=PREVIEW_SIZE):
        _, problem = render_instance(spec, instance, has_image=image is not None)
        if problem:
            raise Invalid(f"The templates fail on instance {instance.source_id} of the preview: {problem}. Fix it "
                          "in the editor before submitting.", fields={"template": problem})


def review_comments(session: Session, *, instruction_id: int) -> dict[int, list[tuple[Review, str]]]:
    """Decided reviews of each version (with the reviewer's name), newest first, keyed by version id."""
    rows = session.exec(
        select(Review, User.display_name)
        .join(InstructionVersion, InstructionVersion.id == Review.instruction_version_id)
        .outerjoin(User, User.id == Review.reviewer_id)
        .where(InstructionVersion.instruction_id == instruction_id, Review.decided_at.is_not(None))
        .order_by(Review.decided_at.desc()))
    comments: dict[int, list[tuple[Review, str]]] = {}
    for review, name in rows:
        comments.setdefault(review.instruction_version_id, []).append((review, name or "a reviewer"))
    return comments


def get_version(session: Session, *, version_id: int) -> InstructionVersion:
    version = session.get(InstructionVersion, version_id)
    if version is None:
        raise NotFound(f"There is no instruction version with id {version_id}.")
    return version


def versions_of(session: Session, *, instruction_id: int) -> list[InstructionVersion]:
    return list(session.exec(select(InstructionVersion).where(InstructionVersion.instruction_id == instruction_id)
                             .order_by(InstructionVersion.number.desc())))


def version_numbered(session: Session, *, instruction_id: int, number: int) -> InstructionVersion:
    version = session.exec(select(InstructionVersion).where(InstructionVersion.instruction_id == instruction_id,
                                                            InstructionVersion.number == number)).first()
    if version is None:
        raise NotFound(f"Instruction {instruction_id} has no version {number}.")
    return version


DIFFED_FIELDS = ("text", "input_template", "output_template")


def word_diffs(old: InstructionVersion, new: InstructionVersion) -> dict[str, list[tuple[str, str]]]:
    """Word-level differences of each text field, for the history page and the API."""
    return {field: word_diff(getattr(old, field), getattr(new, field)) for field in DIFFED_FIELDS}


def other_tasks_instructions(session: Session, *, task_id: int) -> list[tuple[str, str]]:
    """(task name / label, text) of every other task's instructions: the latest version, else the draft."""
    latest = (select(InstructionVersion.instruction_id, func.max(InstructionVersion.number).label("number"))
              .group_by(InstructionVersion.instruction_id).subquery())
    rows = session.exec(
        select(Task.name, Instruction.label, Instruction.draft_text, InstructionVersion.text)
        .join(Task, Task.id == Instruction.task_id)
        .outerjoin(latest, latest.c.instruction_id == Instruction.id)
        .outerjoin(InstructionVersion, (InstructionVersion.instruction_id == Instruction.id)
                   & (InstructionVersion.number == latest.c.number))
        .where(Instruction.task_id != task_id))
    return [(f"{task} / {label}", version_text or draft) for task, label, draft, version_text in rows
            if (version_text or draft).strip()]


class LintTooSlow(Exception):
    """A lint ran past its time (`lint_all`'s `seconds`): what is left of it belongs in a job."""


def lint_all(session: Session, *, task_id: int, spec: InstructionSpec, token_budget: int,
             tokenizer_path=None, on_progress=None, skip: list[int] | None = None,
             seconds: float | None = None) -> list[dict]:
    """Every active instance of the task rendered and checked; issues as plain dicts (kept as job results).
    `skip`: instances left out (a blind solve test's, for whoever may still answer it: a template that fails on
    some targets and not others would tell them what the targets are). `seconds`: LintTooSlow past that long
    (a request's lint; each render is bounded, but a task's worth of slow renders is not)."""
    deadline = time.monotonic() + seconds if seconds is not None else None
    query = (select(Instance.source_id, Instance.input_text, Instance.options, Instance.raw_output,
                    Instance.human_preferred_output, Instance.image_id)
             .where(Instance.task_id == task_id, Instance.status == InstanceStatus.active))
    if skip:
        query = query.where(Instance.id.not_in(skip))
    rows = session.exec(query.execution_options(yield_per=5_000))

    def instances():
        for count, (source_id, text, options, raw, preferred, image_id) in enumerate(rows, start=1):
            if on_progress and count % 5_000 == 0:
                on_progress(count)
            if deadline is not None and count % 100 == 0 and time.monotonic() > deadline:
                raise LintTooSlow(f"checked {count:,} instances in {seconds:g} s")
            yield source_id, {"input_text": text, "options": options, "raw_output": raw,
                              "human_preferred_output": preferred}, image_id is not None

    count_tokens, counted_by = token_counter(tokenizer_path)
    issues = lint_on_instances(spec, instances(), token_budget=token_budget, count_tokens=count_tokens,
                               counted_by=counted_by)
    return [asdict(issue) for issue in issues]
