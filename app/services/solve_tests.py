"""Blind solve tests: N seeded instances shown with their rendered prompt and image but not their target.

Each answer is matched against the target — exactly for option tasks, after normalisation for short answers,
by the solver's own judgement (shown the target after answering) for free text. The test passes when enough
answers match; it fails as soon as too many have missed for it to still pass."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from sqlalchemy import func
from sqlmodel import Session, select

from app.core import limits
from app.core.failures import Invalid
from app.models import (
    Instance,
    InstructionVersion,
    QcStatus,
    SolveTest,
    SolveTestItem,
    Task,
    utcnow,
)
from app.qc.stats import is_short_answer, normalise_answer
from app.services import check_rules, checks, leases, spot_checks
from app.services.qc import QcDefaults


def create(session: Session, *, task_id: int, actor_id: int | None, size: int, pass_threshold: int,
           seed: int | None = None, version_id: int | None = None,
           permission: checks.Permission = checks.AS_DEFAULT) -> SolveTest:
    """A solve test on `size` seeded instances (all of them if the task has fewer, the threshold scaled to
    match), in the caller's transaction. One runs at a time: see `checks.open_check`."""
    if not 1 <= pass_threshold <= size:
        raise Invalid("The pass threshold must be between 1 and the number of instances.",
                      fields={"pass_threshold": f"between 1 and {size}"})

    def settings(drawn: int, whole: bool) -> dict:
        return {"pass_threshold": pass_threshold if drawn == size else max(1, round(pass_threshold * drawn / size))}

    return checks.open_check(session, checks.SOLVE, task_id=task_id, actor_id=actor_id, size=size, seed=seed,
                             version_id=version_id, settings=settings, permission=permission)


def open_for_approved(session: Session, *, version: InstructionVersion, task_id: int, actor_id: int,
                      defaults: QcDefaults) -> None:
    """After an approval, in the caller's transaction: a solve test if the task needs one and has none running
    and none that stands passed (after a failure, the newly approved version is tested afresh)."""
    needed = session.get(Task, task_id).solve_test_required
    if not needed or checks.open_check_of(session, checks.SOLVE, task_id=task_id) is not None \
            or checks.standing(session, checks.SOLVE, task_id=task_id) == QcStatus.passed:
        return
    create(session, task_id=task_id, actor_id=actor_id, size=defaults.solve_test_size,
           pass_threshold=defaults.solve_test_pass, version_id=version.id)


@cache
def candidates():
    """Unanswered items of open tests nobody holds, not of a version :user_id wrote, in test order."""
    return checks.queue_candidates(checks.SOLVE).where(SolveTestItem.answered_at.is_(None))


@cache
def held_by():
    """The user's claimed item: unanswered, or answered free text waiting for their judgement."""
    return (select(SolveTestItem.id).join(SolveTest, SolveTest.id == SolveTestItem.solve_test_id)
            .where(SolveTest.status == QcStatus.open, SolveTestItem.solver_id == leases.USER,
                   SolveTestItem.judged_at.is_(None), SolveTestItem.lease_expires_at.is_not(None))
            .order_by(SolveTestItem.id))


@dataclass(frozen=True)
class AnswerKind:
    """How an item's answer is matched: "option" (pick one), "short" (normalised), "free" (judged by hand)."""

    name: str

    @staticmethod
    def of(instance: Instance) -> AnswerKind:
        if instance.options:
            return AnswerKind("option")
        return AnswerKind("short" if is_short_answer(instance.raw_output) else "free")


def answer(session: Session, *, item_id: int, lock_version: int, user_id: int, text: str,
           defaults: QcDefaults) -> SolveTestItem:
    """Records the answer; option and short answers are matched at once, free text waits for the solver's
    judgement (the item stays theirs). `defaults`: for the spot check that waits for the test to pass."""
    item, test, instance = _load(session, item_id)
    text = (text or "").strip()
    if not text:
        raise Invalid("Give an answer (or skip the item).", fields={"answer": "required"})
    kind = AnswerKind.of(instance)
    if kind.name == "option" and text not in (instance.options or []):
        raise Invalid("Pick one of the options.", fields={"answer": "not an option"})
    matched = None if kind.name == "free" else normalise_answer(text) == normalise_answer(instance.raw_output)
    now = utcnow()
    values = {"answer": limits.at_most(text, limits.COMMENT, field="answer"), "answered_at": now, "matched": matched,
              "judged_at": None if matched is None else now}
    leases.decide_or_refuse(session, table=SolveTestItem, item_id=item.id, lock_version=lock_version,
                            claimant=SolveTestItem.solver_id, user_id=user_id,
                            still_open=SolveTestItem.answered_at.is_(None), values=values)
    if matched is None:  # the solver judges next: keep the item theirs
        leases.renew(session, table=SolveTestItem, item_id=item.id, lease_s=3600)
    else:
        _settle(session, test=test, actor_id=user_id, defaults=defaults)
        session.commit()
    session.refresh(item)
    return item


def judge(session: Session, *, item_id: int, lock_version: int, user_id: int, matched: bool,
          defaults: QcDefaults) -> SolveTestItem:
    """The solver, now shown the target, says whether their free-text answer matches it."""
    item, test, _ = _load(session, item_id)
    leases.decide_or_refuse(session, table=SolveTestItem, item_id=item.id, lock_version=lock_version,
                            claimant=SolveTestItem.solver_id, user_id=user_id,
                            still_open=SolveTestItem.answered_at.is_not(None) & SolveTestItem.judged_at.is_(None),
                            values={"matched": matched, "judged_at": utcnow()})
    _settle(session, test=test, actor_id=user_id, defaults=defaults)
    session.commit()
    session.refresh(item)
    return item


def _load(session: Session, item_id: int) -> tuple[SolveTestItem, SolveTest, Instance]:
    item, test = checks.open_item(session, checks.SOLVE, item_id=item_id)
    return item, test, session.get_one(Instance, item.instance_id)


@dataclass(frozen=True)
class SolveFigures:
    size: int
    judged: int
    matched: int
    pass_threshold: int

    @property
    def rate(self) -> float | None:
        return self.matched / self.judged if self.judged else None

    @property
    def missed(self) -> int:
        return self.judged - self.matched

    @property
    def outcome(self) -> QcStatus:
        if self.missed > self.size - self.pass_threshold:
            return QcStatus.failed  # cannot reach the threshold any more
        if self.judged == self.size:
            return QcStatus.passed
        return QcStatus.open


def figures(session: Session, *, test: SolveTest) -> SolveFigures:
    judged, matched = session.exec(
        select(func.count(SolveTestItem.judged_at), func.count().filter(SolveTestItem.matched.is_(True)))
        .where(SolveTestItem.solve_test_id == test.id)).one()
    return SolveFigures(size=test.size, judged=judged, matched=matched, pass_threshold=test.pass_threshold)


def _settle(session: Session, *, test: SolveTest, actor_id: int, defaults: QcDefaults) -> None:
    result = figures(session, test=test)
    if result.outcome == QcStatus.open:
        return
    checks.close(session, checks.SOLVE, check=test, outcome=result.outcome, actor_id=actor_id,
                 figures={"matched": result.matched, "judged": result.judged, "size": result.size,
                          "pass_threshold": result.pass_threshold},
                 reason=f"solve test {result.outcome}: {result.matched}/{result.size}")
    if result.outcome == QcStatus.passed:
        spot_checks.open_after_solve_test(session, task_id=test.task_id, actor_id=actor_id, defaults=defaults)


def open_requested(session: Session, *, task_id: int, data, defaults: QcDefaults, actor_id: int,
                   is_admin: bool) -> SolveTest:
    """A solve test as a person asked for it (page or API, `SolveTestIn`), the settings filling the gaps (a
    size without a threshold keeps at least the default pass rate, rounded up); weaker than the defaults, in
    place of a running test or after a failed one, only as `check_rules` allows. Committed."""
    size = data.size or defaults.solve_test_size
    threshold = data.pass_threshold or min(size, math.ceil(defaults.solve_test_pass * size / defaults.solve_test_size))
    permission = check_rules.authorise(
        session, checks.SOLVE, task_id=task_id, version_id=None, is_admin=is_admin, reason=data.reason,
        weaker=check_rules.weaker_solve_test(size=size, pass_threshold=threshold, seed=data.seed, defaults=defaults))
    test = create(session, task_id=task_id, actor_id=actor_id, size=size, pass_threshold=threshold, seed=data.seed,
                  permission=permission)
    session.commit()
    return test
