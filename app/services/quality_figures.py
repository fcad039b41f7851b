"""Quality figures for the dashboard and the task page: per task its review rounds, latest solve test, latest
spot check (error rate with its Wilson interval) and flagged count; per reviewer the decisions made.

A handful of grouped queries for a page of tasks (the dashboard's table is keyset-paged like the task list):
what a request costs does not grow with the number of tasks, only a targeted check's weighted interval is
computed per task on the page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import BindParameter, bindparam, case, func
from sqlmodel import Session, select

from app.exports.card import FixCounts, PoolFigures, ReviewFigures
from app.exports.sampling import counted_fix
from app.models import (
    ConversationPool,
    Instance,
    InstanceStatus,
    QcStatus,
    Review,
    ReviewSubject,
    Revision,
    RevisionOrigin,
    RevisionStatus,
    SolveTest,
    SolveTestItem,
    SourceDataset,
    SpotCheck,
    SpotCheckItem,
    Task,
    User,
    utcnow,
)
from app.models.types import UTCDateTime
from app.qc.stats import Interval, wilson
from app.services import spot_checks
from app.services import tasks as task_service
from app.services.conversation_reviews import pool_quality


@dataclass(frozen=True)
class QualityFilters:
    task_group: str | None = None
    category: str | None = None
    annotator_id: int | None = None

    def as_query(self) -> dict[str, str]:
        """The filters as the dashboard's query parameters, for links that keep them."""
        names = {"group": self.task_group, "category": self.category, "annotator": self.annotator_id}
        return {name: str(value) for name, value in names.items() if value not in (None, "")}


@dataclass(frozen=True)
class TaskQuality:
    task: Task
    review_rounds: int
    solve_test: SolveTest | None
    solve_matched: int
    solve_judged: int
    spot_check: SpotCheck | None
    spot_errors: int
    spot_decided: int
    interval: Interval | None
    fixes_proposed: int = 0  # waiting for a second person
    fixes_accepted: int = 0
    excluded: int = 0  # instances left out of exports on purpose (flagged ones are counted on the task)

    @property
    def spot_method(self) -> str:
        """How the spot-check rate was estimated: uniform (Wilson), targeted (weighted), or a census (exact)."""
        if self.spot_check is not None and self.spot_check.census:
            return "every instance checked: the exact rate"
        return "targeted, weighted" if self.spot_check is not None and self.spot_check.targeted else "uniform"

    @property
    def solve_rate(self) -> float | None:
        return self.solve_matched / self.solve_judged if self.solve_judged else None


# The page's statements are built once, with its task ids (and the throughput's start) as parameters: building and
# keying a statement, with an IN list of 50 ids coerced one by one, cost SQLAlchemy more than running it.
_TASK_IDS: BindParameter[list[int]] = bindparam("task_ids", expanding=True)
_TEST_IDS: BindParameter[list[int]] = bindparam("test_ids", expanding=True)
_SINCE = bindparam("since", type_=UTCDateTime)


@cache
def _latest(model):
    """The newest not-cancelled check of each of :task_ids."""
    newest = (select(func.max(model.id)).where(model.task_id.in_(_TASK_IDS), model.status != QcStatus.cancelled)
              .group_by(model.task_id))
    return select(model).where(model.id.in_(newest))


@cache
def _review_rounds():
    return select(Review.task_id, func.max(Review.round)).where(
        Review.task_id.in_(_TASK_IDS), Review.subject == ReviewSubject.instruction_version,
        Review.decided_at.is_not(None)).group_by(Review.task_id)


@cache
def _solve_counts():
    return (select(SolveTestItem.solve_test_id, func.count().filter(SolveTestItem.matched.is_(True)),
                   func.count(SolveTestItem.judged_at))
            .where(SolveTestItem.solve_test_id.in_(_TEST_IDS)).group_by(SolveTestItem.solve_test_id))


@dataclass(frozen=True)
class QualityPage:
    rows: list[TaskQuality]
    next_after: str | None  # the last task's name when more follow
    prev_before: str | None  # the first task's name when more come before


def page(session: Session, *, filters: QualityFilters = QualityFilters(), after: str | None = None,
         before: str | None = None, limit: int = 50) -> QualityPage:
    """The dashboard's table: the filtered tasks by name, `limit` at a time after (or before) a name."""
    query = select(Task)
    if filters.task_group:
        query = query.where(Task.task_group == filters.task_group)
    if filters.category:
        query = query.where(Task.category == filters.category)
    if filters.annotator_id:
        query = query.join(SourceDataset, SourceDataset.id == Task.source_dataset_id).where(
            SourceDataset.annotator_id == filters.annotator_id)
    tasks = task_service.page_by_name(session, query, after=after, before=before, limit=limit)
    return QualityPage(_rows(session, tasks.tasks), tasks.next_after, tasks.prev_before)


def per_task(session: Session, *, task_ids: list[int]) -> list[TaskQuality]:
    """The figures of these tasks, by name."""
    return _rows(session, list(session.exec(select(Task).where(Task.id.in_(task_ids)).order_by(Task.name))))


def _rows(session: Session, tasks: list[Task]) -> list[TaskQuality]:
    if not tasks:
        return []
    ids = {"task_ids": [task.id for task in tasks]}
    rounds = dict(session.exec(_review_rounds(), params=ids).all())
    tests = {test.task_id: test for test in session.exec(_latest(SolveTest), params=ids)}
    checks = {check.task_id: check for check in session.exec(_latest(SpotCheck), params=ids)}
    solved = {test_id: (matched, judged) for test_id, matched, judged in session.exec(
        _solve_counts(), params={"test_ids": [test.id for test in tests.values()]})}
    fixes: dict[tuple[int, str], int] = {(task_id, status): count for task_id, status, count in session.exec(
        select(Revision.task_id, Revision.status, func.count()).where(
            Revision.task_id.in_(ids["task_ids"]),
            Revision.status.in_([RevisionStatus.proposed, RevisionStatus.accepted]))
        .group_by(Revision.task_id, Revision.status))}
    excluded = dict(session.exec(select(Instance.task_id, func.count()).where(
        Instance.task_id.in_(ids["task_ids"]), Instance.status == InstanceStatus.excluded)
        .group_by(Instance.task_id)).all())
    rows = []
    for task in tasks:
        test, check = tests.get(task.id), checks.get(task.id)
        matched, judged = solved.get(test.id, (0, 0)) if test else (0, 0)
        errors, decided = (check.error_count, check.decided_count) if check else (0, 0)  # kept by each verdict
        if check is not None and check.targeted:  # weighted by each verdict's inclusion probability
            interval = spot_checks.figures(session, check=check).interval
        else:
            interval = wilson(errors, decided, confidence=check.confidence) if check else None
        rows.append(TaskQuality(task=task, review_rounds=rounds.get(task.id, 0), solve_test=test,
                                solve_matched=matched, solve_judged=judged, spot_check=check, spot_errors=errors,
                                spot_decided=decided, interval=interval,
                                fixes_proposed=fixes.get((task.id, RevisionStatus.proposed), 0),
                                fixes_accepted=fixes.get((task.id, RevisionStatus.accepted), 0),
                                excluded=excluded.get(task.id, 0)))
    return rows


def review_figures(session: Session, *, task_ids: list[int], revisions_through: int | None = None,
                   pool_id: int | None = None, as_of: datetime | None = None) -> ReviewFigures:
    """What a version's dataset card says of review, for these tasks (fixes up to the version's pin) and for its
    stage-2 pool (as review found it at the version's moment)."""
    pool = None
    if pool_id is not None:
        found = session.get(ConversationPool, pool_id)
        pool = PoolFigures(found.name if found else f"#{pool_id}",
                           pool_quality(session, pool_ids=[pool_id], as_of=as_of)[pool_id])
    return ReviewFigures(quality={row.task.id: row for row in per_task(session, task_ids=task_ids)},
                         check_history=check_history(session, task_ids=task_ids),
                         fixes=fix_counts(session, task_ids=task_ids, revisions_through=revisions_through,
                                          as_of=as_of),
                         pool=pool)


def fix_counts(session: Session, *, task_ids: list[int], revisions_through: int | None,
               as_of: datetime | None = None) -> dict[int, FixCounts]:
    """Per task: accepted fixes (and of them, a model's suggestions and their author's own), dismissed findings,
    and instances still flagged; the fixes as of the spec's pin (`sampling.counted_fix`)."""
    counted: dict[int, dict[str, int]] = {task_id: {} for task_id in task_ids}
    if revisions_through is not None or as_of is not None:
        rows = session.exec(select(
            Revision.task_id, func.count(), func.sum(case((Revision.origin == RevisionOrigin.model_suggestion, 1),
                                                          else_=0)),
            func.sum(case((Revision.dismissal, 1), else_=0)), func.sum(case((Revision.self_accepted, 1), else_=0)))
            .where(Revision.task_id.in_(task_ids), Revision.status == RevisionStatus.accepted,
                   counted_fix(revisions_through, as_of)).group_by(Revision.task_id))
        for task_id, accepted, from_model, dismissed, own in rows:
            counted[task_id] = {"accepted": accepted - dismissed, "from_model": from_model, "dismissed": dismissed,
                                "self_accepted": own}
    flagged = dict(session.exec(select(Task.id, Task.flagged_count).where(Task.id.in_(task_ids))).all())
    return {task_id: FixCounts(**values, flagged=flagged.get(task_id, 0)) for task_id, values in counted.items()}


def check_history(session: Session, *, task_ids: list[int]) -> dict[int, list[str]]:
    """Per task, in words and in order, the checks a reader of its figures should know of besides the latest: those
    that failed or were cancelled, and those an admin opened against the defaults (with the reasons given)."""
    record: dict[int, list[tuple[datetime, str]]] = {}
    for noun, model in (("solve test", SolveTest), ("spot check", SpotCheck)):
        notable = (model.status.in_([QcStatus.failed, QcStatus.cancelled]) | model.override_reason.is_not(None))
        for check in session.exec(select(model).where(model.task_id.in_(task_ids), notable)):
            said = f"{noun} #{check.id} {check.status}"
            if model is SpotCheck and check.status == QcStatus.failed:
                said += f" ({check.error_count} problems in {check.decided_count} checked)"
            if check.override_reason:
                said += f"; opened by an admin against the defaults: {check.override_reason}"
            if check.cancel_reason:
                said += f"; {check.cancel_reason}"
            record.setdefault(check.task_id, []).append((check.created_at, said))
    return {task_id: [said for _, said in sorted(lines)] for task_id, lines in record.items()}


def annotators(session: Session) -> list[User]:
    """The people source datasets are assigned to, for the dashboard's filter."""
    return list(session.exec(select(User).where(User.id.in_(select(SourceDataset.annotator_id)))
                             .order_by(User.display_name)))


@dataclass(frozen=True)
class ReviewerThroughput:
    name: str
    reviews: int
    solved: int
    spot_verdicts: int

    @property
    def total(self) -> int:
        return self.reviews + self.solved + self.spot_verdicts


def throughput(session: Session, *, days: int = 7) -> list[ReviewerThroughput]:
    """Decisions per reviewer over the last `days` days, busiest first."""
    since = {"since": utcnow() - timedelta(days=days)}
    reviews, solved, firsts, seconds = (dict(session.exec(query, params=since).all()) for query in _decisions_since())
    people = reviews.keys() | solved.keys() | firsts.keys() | seconds.keys()
    names = dict(session.exec(select(User.id, User.display_name).where(User.id.in_(people))).all()) if people else {}
    rows = [ReviewerThroughput(names.get(user_id, "?"), reviews.get(user_id, 0), solved.get(user_id, 0),
                               firsts.get(user_id, 0) + seconds.get(user_id, 0)) for user_id in people]
    return sorted(rows, key=lambda row: (-row.total, row.name))


@cache
def _decisions_since() -> tuple:
    """Per user, the instruction reviews, solve answers, first and second spot verdicts since :since."""
    def by_user(user_column, time_column, model):
        return select(user_column, func.count()).select_from(model).where(
            time_column >= _SINCE, user_column.is_not(None)).group_by(user_column)

    return (by_user(Review.reviewer_id, Review.decided_at, Review),
            by_user(SolveTestItem.solver_id, SolveTestItem.answered_at, SolveTestItem),
            by_user(SpotCheckItem.reviewer_id, SpotCheckItem.decided_at, SpotCheckItem),
            by_user(SpotCheckItem.second_reviewer_id, SpotCheckItem.second_decided_at, SpotCheckItem))
