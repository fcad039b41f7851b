"""A task's life: draft → in_review → changes_requested → accepted → verified, or retired.

Most transitions follow from review work (`advance` works out where a task stands from its instructions, solve
tests, spot checks and verifications); admins retire and reopen tasks by hand. Every transition is checked
against `TRANSITIONS` and written to the audit log under the task."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sqlalchemy import exists, update
from sqlmodel import Session, select

from app.failures import Conflict, Invalid, NotFound
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
    S.in_review: frozenset({S.changes_requested, S.accepted, S.retired}),
    S.changes_requested: frozenset({S.in_review, S.retired}),
    S.accepted: frozenset({S.verified, S.in_review, S.changes_requested, S.retired}),
    S.verified: frozenset({S.retired}),
    S.retired: frozenset({S.draft}),
}
WHY_NOT = {
    S.verified: "a task is verified only by two final verifications of an accepted task",
    S.accepted: "a task is accepted only from review, with an approved instruction and passed quality checks",
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
    """What the task has achieved, from which its status follows."""

    submitted: bool  # some instruction version was submitted
    pending: bool  # a version waits for review
    approved: bool  # some instruction version is approved (final verification asking for changes revokes it)
    solve_test_passed: bool  # or not required
    spot_check_passed: bool
    verifications: tuple[str | None, ...]  # the decisions of the latest verification round

    def status(self) -> TaskStatus:
        if self.approved and self.solve_test_passed and self.spot_check_passed:
            if len(self.verifications) >= 2 and all(d == Decision.approve for d in self.verifications):
                return S.verified
            return S.accepted
        if self.pending or self.approved:
            return S.in_review
        return S.changes_requested if self.submitted else S.draft


def gates(session: Session, *, task: Task) -> Gates:
    versions = set(session.exec(select(InstructionVersion.status).join(
        Instruction, Instruction.id == InstructionVersion.instruction_id).where(Instruction.task_id == task.id)))
    solve_passed = not task.solve_test_required or session.exec(select(exists().where(
        SolveTest.task_id == task.id, SolveTest.status == QcStatus.passed))).one()
    spot_passed = session.exec(select(exists().where(
        SpotCheck.task_id == task.id, SpotCheck.status == QcStatus.passed))).one()
    _, verifications = verification_rounds.latest_round(session, task_id=task.id)
    return Gates(submitted=bool(versions), pending=InstructionStatus.in_review in versions,
                 approved=InstructionStatus.approved in versions, solve_test_passed=bool(solve_passed),
                 spot_check_passed=bool(spot_passed), verifications=verifications)


def advance(session: Session, *, task_id: int, actor_id: int | None, reason: str) -> Task:
    """Brings the task's status in line with its review work, in the caller's transaction. A retired task
    stays retired; a verified one stays verified (new instructions are reviewed, but do not reopen it)."""
    task = session.get(Task, task_id)
    session.refresh(task)
    if task.status in (S.retired, S.verified):
        return task
    for step in path(TaskStatus(task.status), gates(session, task=task).status()):
        # Each step is a legal transition of its own: e.g. a reopened draft whose checks had all passed goes
        # draft → in_review → accepted, and its history says so.
        transition(session, task=task, to=step, actor_id=actor_id, reason=reason)
    if task.status == S.accepted:
        verification_rounds.open_round(session, task_id=task.id)
    return task


def set_status_by_hand(session: Session, *, task_id: int, to: str, actor_id: int, reason: str) -> Task:
    """An admin retires a task, or brings a retired one back as a draft."""
    if to not in (S.retired, S.draft):
        raise Invalid("By hand a task can only be retired, or reopened as a draft; the other states follow "
                      "from review work.", fields={"status": "retired or draft"})
    if not reason.strip():
        raise Invalid("Say why.", fields={"reason": "required"})
    task = session.get(Task, task_id)
    if task is None:
        raise NotFound(f"There is no task with id {task_id}.")
    transition(session, task=task, to=TaskStatus(to), actor_id=actor_id, reason=reason.strip())
    if to == S.draft:
        advance(session, task_id=task.id, actor_id=actor_id, reason="reopened")
    session.commit()
    return task
