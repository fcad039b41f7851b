"""The blind solve queue: an instance's image and rendered prompt, never its target before the answer."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, select

from app.models import Image, Instance, QcStatus, SolveTest, SolveTestItem, Task
from app.services import solve_tests
from app.services.queues.base import Holding, ReviewItem, ReviewQueue, checked_instance, instance_fields


@dataclass(frozen=True)
class SolveContext:
    test: SolveTest
    instance: Instance
    image: Image | None
    prompt: str | None  # None when the template fails on the instance: then `problem` says why
    problem: str | None
    kind: str  # how the answer is matched: option, short or free
    progress: solve_tests.SolveFigures
    target: str | None  # only once the answer is in: the test is blind
    awaiting_judgement: bool  # a free-text answer the solver now judges against the target


class BlindSolveTests(ReviewQueue):
    name, title, table, template = "solve", "Blind solve tests", SolveTestItem, "review/_solve.html"

    def held_by(self):
        return solve_tests.held_by()

    def sources(self, user):
        return [(solve_tests.candidates(), SolveTestItem.solver_id)]

    def undecided(self):
        return select(func.count()).select_from(SolveTestItem).join(
            SolveTest, SolveTest.id == SolveTestItem.solve_test_id).where(
            SolveTest.status == QcStatus.open, SolveTestItem.judged_at.is_(None))

    def holder(self, item, user_id):
        return SolveTestItem.solver_id if item.solver_id == user_id else None

    def holdings(self):
        # An answer waiting for its solver's judgement goes too: nobody else may judge it.
        return [Holding(SolveTestItem.solver_id, SolveTestItem.judged_at.is_(None),
                        {"solver_id": None, "answer": None, "answered_at": None, "matched": None})]

    def skippable(self, item):
        # Once answered, only its solver can judge a free-text answer: it cannot go back to the queue.
        return item.answered_at is None

    def context(self, session: Session, item: SolveTestItem, user_id: int):
        test = session.get(SolveTest, item.solve_test_id)
        instance, image, rendered, problem = checked_instance(session, check=test, instance_id=item.instance_id)
        awaiting_judgement = item.answered_at is not None and item.judged_at is None
        return session.get(Task, test.task_id), SolveContext(
            test=test, instance=instance, image=image, prompt=rendered.prompt if rendered else None,
            problem=problem, kind=solve_tests.AnswerKind.of(instance).name,
            progress=solve_tests.figures(session, test=test),
            target=rendered.target if rendered and awaiting_judgement else None,
            awaiting_judgement=awaiting_judgement)

    def api_fields(self, item: ReviewItem[SolveContext]):
        c = item.context
        return {**instance_fields(c.instance, c.image), "prompt": c.prompt, "target": c.target,
                "answer_kind": c.kind, "awaiting_judgement": c.awaiting_judgement}
