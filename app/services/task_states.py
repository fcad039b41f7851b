"""A task's life: draft → in_review → changes_requested → accepted → verified, or retired.

Most transitions follow from review work (`advance` works out where a task stands from its instructions, solve
tests, spot checks and verifications); admins retire and reopen tasks by hand. Every transition is checked
against `TRANSITIONS` and written to the audit log under the task."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import Session, select

from app.core import limits
from app.core.failures import Conflict, Invalid, NotFound
from app.models import (
    Decision,
    Instruction,
    InstructionStatus,
    InstructionVersion,
    QcStatus,
    SolveTest,
    SpotCheck,
    Task,
    TaskStatus,
    utcnow,
)
from app.services import audit, verification_rounds

S = TaskStatus
TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    S.draft: frozenset({S.in_review, S.retired}),
    S.in_review: frozenset({S.changes_requested, S.accepted, S.checks_failed, S.retired}),
    S.changes_requested: frozenset({S.in_review, S.checks_failed, S.retired}),
    S.accepted: frozenset({S.verified, S.in_review, S.changes_requested, S.checks_failed, S.retired}),
    S.verified: frozenset({S.checks_failed, S.retired}),
    S.checks_failed: frozenset({S.in_review, S.changes_requested, S.accepted, S.retired}),
    S.retired: frozenset({S.draft}),
}
WHY_NOT = {
    S.verified: "a task is verified only by two final verifications of an accepted task",
    S.accepted: "a task is accepted only from review, with an approved instruction and passed quality checks",
    S.checks_failed: "a task is held back only by a failed quality check",
}


def check_transition(current: str, wanted: str) -> None:
    """Refuses an illegal transition with a message that says what the rules are."""
    current, wanted = TaskStatus(current), TaskStatus(wanted)
    if wanted not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing"
        reason = f" ({WHY_NOT[wanted]})" if wanted in WHY_NOT else ""
        raise Conflict(f"A task cannot go from {current.value.replace('_', ' ')} to "
                       f"{wanted.value.replace('_', ' ')}{reason}. From {current.value.replace('_', ' ')} it can go "
                       f"to: {allowed.replace('_', ' ')}.", fields={"status": "illegal transition"})


def transition(session: Session, *, task: Task, to: TaskStatus, actor_id: int | None, reason: str) -> None:
    """Moves the task (optimistic: only from the status it was read in), in the caller's transaction."""
    if task.status == to:
        return
    check_transition(task.status, to)
    moved = session.execute(update(Task).where(Task.id == task.id, Task.status == task.status)
                            .values(status=to, lock_version=Task.lock_version + 1, updated_at=utcnow())).rowcount
    if moved != 1:
        raise Conflict("This task changed while you were working on it: reload and try again.")
    audit.record(session, actor_id=actor_id, action="task.transition", entity_type="task", entity_id=task.id,
                 before={"status": task.status}, after={"status": str(to), "reason": reason})
    session.refresh(task)


def path(current: TaskStatus, wanted: TaskStatus) -> list[TaskStatus]:
    """The shortest chain of legal transitions from `current` to `wanted`, never through `retired` (which
    only an admin decides); empty when already there or when there is no such chain."""
    routes: dict[TaskStatus, list[TaskStatus]] = {current: []}
    waiting = deque([current])
    while waiting:
        before = waiting.popleft()
        if before == wanted:
            return routes[before]
        for after in sorted(TRANSITIONS[before] - {S.retired}):
            if after not in routes:
                routes[after] = [*routes[before], after]
                waiting.append(after)
    return []


@dataclass(frozen=True)
class Gates:
    """What the task has achieved, from which its status follows. A check kind stands passed or failed by its
    latest concluded check (`checks.latest_concluded`): a later failure outweighs an earlier pass."""

    submitted: bool  # some instruction version was submitted
    pending: bool  # a version waits for review
    approved: bool  # some instruction version is approved (final verification asking for changes revokes it)
    solve_test_passed: bool  # or not required
    spot_check_passed: bool
    check_failed: bool  # the latest concluded check of a kind (a required one) failed
    verifications: tuple[str | None, ...]  # the decisions of the latest verification round

    def status(self) -> TaskStatus:
        if self.approved and self.solve_test_passed and self.spot_check_passed:
            if len(self.verifications) >= 2 and all(d == Decision.approve for d in self.verifications):
                return S.verified
            return S.accepted
        if self.pending:
            return S.in_review  # a new version under review: the failure is being worked on
        if self.check_failed:
            return S.checks_failed
        if self.approved:
            return S.in_review
        return S.changes_requested if self.submitted else S.draft


def gates(session: Session, *, task: Task) -> Gates:
    versions = set(session.exec(select(InstructionVersion.status).join(
        Instruction, Instruction.id == InstructionVersion.instruction_id).where(Instruction.task_id == task.id)))
    solve = _standing(session, SolveTest, task.id) if task.solve_test_required else QcStatus.passed
    spot = _standing(session, SpotCheck, task.id)
    _, verifications = verification_rounds.latest_round(session, task_id=task.id)
    return Gates(submitted=bool(versions), pending=InstructionStatus.in_review in versions,
                 approved=InstructionStatus.approved in versions, solve_test_passed=solve == QcStatus.passed,
                 spot_check_passed=spot == QcStatus.passed,
                 check_failed=QcStatus.failed in (solve, spot), verifications=verifications)


def latest_concluded(session: Session, table: type[SolveTest | SpotCheck], *, task_id: int):
    """The task's check in `table` that decides where it stands: the latest opened of those that passed or
    failed. A later failure outweighs an earlier pass, and only a check opened after the failure clears it."""
    return session.exec(select(table).where(table.task_id == task_id, table.status.in_(
        [QcStatus.passed, QcStatus.failed])).order_by(table.id.desc()).limit(1)).first()


def _standing(session: Session, table, task_id: int) -> str | None:
    latest = latest_concluded(session, table, task_id=task_id)
    return None if latest is None else latest.status


def advance(session: Session, *, task_id: int, actor_id: int | None, reason: str) -> Task:
    """Brings the task's status in line with its review work, in the caller's transaction. A retired task
    stays retired; a verified one stays verified (new instructions are reviewed, but do not reopen it) unless a
    check fails. Only an accepted task is verified: one that leaves `accepted` withdraws its undecided
    verification slots, and the next acceptance opens a new round."""
    task = session.get_one(Task, task_id)
    session.refresh(task)
    achieved = gates(session, task=task)
    wanted = achieved.status()
    if task.status == S.verified:  # held back by a failed check only, even while a new version is reviewed
        wanted = S.checks_failed if achieved.check_failed else S.verified
    if task.status == S.retired:
        return task
    was = task.status
    for step in path(TaskStatus(task.status), wanted):
        # Each step is a legal transition of its own: e.g. a reopened draft whose checks had all passed goes
        # draft → in_review → accepted, and its history says so.
        transition(session, task=task, to=step, actor_id=actor_id, reason=reason)
    if task.status == S.accepted:
        verification_rounds.open_round(session, task_id=task.id)
    elif was == S.accepted and task.status != S.verified:
        verification_rounds.withdraw(session, task_id=task.id, actor_id=actor_id, reason=reason)
    return task


def set_status_by_hand(session: Session, *, task_id: int, to: str, actor_id: int, reason: str) -> Task:
    """An admin retires a task, or brings a retired one back as a draft."""
    if to not in (S.retired, S.draft):
        raise Invalid("By hand a task can only be retired, or reopened as a draft; the other states follow "
                      "from review work.", fields={"status": "retired or draft"})
    if not reason.strip():
        raise Invalid("Say why.", fields={"reason": "required"})
    limits.at_most(reason.strip(), limits.NOTE, field="reason")
    task = session.get(Task, task_id)
    if task is None:
        raise NotFound(f"There is no task with id {task_id}.")
    transition(session, task=task, to=TaskStatus(to), actor_id=actor_id, reason=reason.strip())
    if to == S.draft:
        advance(session, task_id=task.id, actor_id=actor_id, reason="reopened")
    session.commit()
    return task
