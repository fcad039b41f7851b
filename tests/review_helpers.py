"""Building review situations through the same services the app uses, and signing people in as clients."""

from __future__ import annotations

import random

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.models import Instance, Instruction, Review, ReviewSubject, Role, Task, User
from app.services import instructions as instruction_service
from app.services import reviews
from app.services.qc import QcDefaults
from app.services.tasks import refresh_instance_counts
from tests.factories import login, make_user

SMALL_QC = QcDefaults(solve_test_size=4, solve_test_pass=3, max_error_rate=0.5, expected_error_rate=0.05)


def htmx(csrf: str) -> dict[str, str]:
    return {"HX-Request": "true", "X-CSRF-Token": csrf}


def signed_in(app, user: User) -> tuple[TestClient, str]:
    client = TestClient(app, follow_redirects=False)
    return client, login(client, user.email)


def make_qc_task(db: Session, name: str, *, instances: int = 12, kind: str = "option") -> Task:
    """A task whose instances are options ("option"), short answers ("short") or free text ("free")."""
    task = Task(name=name)
    db.add(task)
    db.flush()
    rng = random.Random(name)
    for k in range(instances):
        fields = {"option": {"options": ["cat", "dog", "bird"], "raw_output": ["cat", "dog", "bird"][k % 3]},
                  "short": {"raw_output": f"{k % 4} apples"},
                  "free": {"raw_output": f"A long description number {k} of a quiet street with trees and cars."}}[kind]
        db.add(Instance(task_id=task.id, source_id=f"{name}-{k}", input_text=f"Question {k}?", rkey=rng.getrandbits(31),
                        **fields))
    refresh_instance_counts(db, task_ids=[task.id])
    db.commit()
    db.refresh(task)
    return task


def submit_instruction(db: Session, task: Task, author: User, text: str = "Answer the question about the image.",
                       instruction: Instruction | None = None):
    """Writes and submits a version: of a new instruction, or the next version of `instruction`."""
    if instruction is None:
        instruction = instruction_service.create_instruction(db, task_id=task.id, label="", author_id=author.id)
    db.refresh(instruction)
    instruction.draft_text = text
    db.add(instruction)
    db.commit()
    version = instruction_service.submit(db, instruction_id=instruction.id, actor_id=author.id)
    review = db.exec(select(Review).where(Review.instruction_version_id == version.id)).one()
    return instruction, version, review


def approve(db: Session, review: Review, defaults: QcDefaults = SMALL_QC, comment: str | None = None) -> None:
    """The assigned reviewer claims and approves the review."""
    db.refresh(review)
    reviews.decide(db, review_id=review.id, lock_version=review.lock_version, user_id=review.reviewer_id,
                   decision="approve", comment=comment, defaults=defaults)


def team(db: Session) -> dict[str, User]:
    return {"author": make_user(db, Role.author), "r1": make_user(db, Role.reviewer),
            "r2": make_user(db, Role.reviewer), "admin": make_user(db, Role.admin)}


def instruction_reviews(db: Session, instruction: Instruction) -> list[Review]:
    return list(db.exec(select(Review).where(Review.subject == ReviewSubject.instruction_version,
                                             Review.task_id == instruction.task_id).order_by(Review.id)))
