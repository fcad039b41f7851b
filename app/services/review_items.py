"""What a reviewer sees of one queue item: everything needed to decide it, and nothing that would bias it
(a solve test never shows the target before the answer; a second spot-check verdict never shows the first)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, select

from app.diffing import word_diff
from app.models import (
    Image,
    Instance,
    Instruction,
    InstructionStatus,
    InstructionVersion,
    Review,
    SolveTest,
    SolveTestItem,
    SpotCheck,
    SpotCheckItem,
    SpotVerdict,
    Task,
)
from app.overlap import most_similar
from app.services import instructions as instruction_service
from app.services import solve_tests, spot_checks
from app.services.queues import Queue
from app.services.sampling import sample_instances
from app.specs import render_instance, spec_of_version

SAMPLES_SHOWN = 3
VERDICT_KEYS = {SpotVerdict.correct: "c", SpotVerdict.wrong_target: "w", SpotVerdict.bad_image: "b",
                SpotVerdict.instruction_mismatch: "i", SpotVerdict.ambiguous: "u"}


@dataclass
class ReviewItem:
    queue: Queue
    item: Any  # the row: Review, SolveTestItem or SpotCheckItem
    task: Task
    context: dict[str, Any] = field(default_factory=dict)


def load(session: Session, *, queue: Queue, item_id: int, user_id: int) -> ReviewItem | None:
    item = session.get(queue.table, item_id, populate_existing=True)
    if item is None:
        return None
    builder = {"instructions": _instruction_review, "solve": _solve_item, "spot": _spot_item,
               "verify": _verification}[queue.name]
    return builder(session, queue, item, user_id)


def _instance_with_image(session: Session, instance_id: int) -> tuple[Instance, Image | None]:
    instance = session.get(Instance, instance_id)
    return instance, session.get(Image, instance.image_id) if instance.image_id else None


def _samples(session: Session, version: InstructionVersion, task_id: int, seed: int) -> list[tuple]:
    spec = spec_of_version(version)
    return [(instance, image, *render_instance(spec, instance, has_image=image is not None))
            for instance, image in sample_instances(session, task_id=task_id, seed=seed, size=SAMPLES_SHOWN)]


def _overlap(session: Session, task_id: int, text: str) -> list[tuple[str, float]]:
    return most_similar(text, instruction_service.other_tasks_instructions(session, task_id=task_id))


def _instruction_review(session: Session, queue: Queue, review: Review, user_id: int) -> ReviewItem:
    version = session.get(InstructionVersion, review.instruction_version_id)
    instruction = session.get(Instruction, version.instruction_id)
    previous = session.exec(select(InstructionVersion).where(
        InstructionVersion.instruction_id == instruction.id, InstructionVersion.number < version.number)
        .order_by(InstructionVersion.number.desc())).first()
    diffs = ({name: word_diff(getattr(previous, name), getattr(version, name))
              for name in ("text", "input_template", "output_template")} if previous else {})
    task = session.get(Task, review.task_id)
    return ReviewItem(queue, review, task, {
        "version": version, "instruction": instruction, "previous": previous, "diffs": diffs,
        "comments": instruction_service.review_comments(session, instruction_id=instruction.id),
        "samples": _samples(session, version, task.id, seed=review.id),
        "similar": _overlap(session, task.id, version.text)})


def _solve_item(session: Session, queue: Queue, item: SolveTestItem, user_id: int) -> ReviewItem:
    test = session.get(SolveTest, item.solve_test_id)
    instance, image = _instance_with_image(session, item.instance_id)
    version = session.get(InstructionVersion, test.instruction_version_id)
    rendered, problem = render_instance(spec_of_version(version), instance, has_image=image is not None)
    awaiting_judgement = item.answered_at is not None and item.judged_at is None
    return ReviewItem(queue, item, session.get(Task, test.task_id), {
        "test": test, "instance": instance, "image": image, "prompt": rendered.prompt if rendered else None,
        "problem": problem, "kind": solve_tests.AnswerKind.of(instance).name,
        "progress": solve_tests.figures(session, test=test),
        # The target only once the answer is in: the test is blind.
        "target": rendered.target if rendered and awaiting_judgement else None,
        "awaiting_judgement": awaiting_judgement})


def _spot_item(session: Session, queue: Queue, item: SpotCheckItem, user_id: int) -> ReviewItem:
    check = session.get(SpotCheck, item.spot_check_id)
    instance, image = _instance_with_image(session, item.instance_id)
    version = session.get(InstructionVersion, check.instruction_version_id)
    rendered, problem = render_instance(spec_of_version(version), instance, has_image=image is not None)
    return ReviewItem(queue, item, session.get(Task, check.task_id), {
        "check": check, "instance": instance, "image": image, "rendered": rendered, "problem": problem,
        # No running error count on screen: it would nudge the next verdicts.
        "second_pass": spot_checks.is_second_pass(item, user_id), "verdict_keys": VERDICT_KEYS})


def _verification(session: Session, queue: Queue, review: Review, user_id: int) -> ReviewItem:
    task = session.get(Task, review.task_id)
    versions = list(session.exec(
        select(InstructionVersion, Instruction.label)
        .join(Instruction, Instruction.id == InstructionVersion.instruction_id)
        .where(Instruction.task_id == task.id, InstructionVersion.status == InstructionStatus.approved)
        .order_by(InstructionVersion.id)))
    return ReviewItem(queue, review, task, {
        "versions": [(version, label, _overlap(session, task.id, version.text),
                      _samples(session, version, task.id, seed=review.id)) for version, label in versions]})
