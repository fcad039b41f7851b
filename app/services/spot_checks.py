"""Spot checks: a seeded sample of a task rendered as the export renders it, each item given a verdict.

Anything but "correct" flags the instance (flagged instances are left out of exports). The error rate is
reported with its Wilson interval and the check passes when the interval's upper bound is under the maximum.
With double review every item gets a second, independent verdict, and Cohen's kappa says how far the two
reviewers agree. The error rate counts the first verdicts; the second ones measure agreement. A task smaller
than the sample is checked whole (a census): its error rate is then exact, and compared as it is."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cache

from sqlalchemy import func, update
from sqlmodel import Session, select

from app.core import limits
from app.core.failures import Forbidden, Invalid
from app.models import (
    Instance,
    InstanceStatus,
    Instruction,
    InstructionStatus,
    InstructionVersion,
    QcStatus,
    SpotCheck,
    SpotCheckItem,
    SpotVerdict,
    utcnow,
)
from app.qc.stats import Interval, cohens_kappa, sample_size_for, wilson
from app.qc.targeted import WeightedEstimate
from app.qc.targeted import error_rate as weighted_error_rate
from app.services import audit, check_rules, checks, leases
from app.services import scores as score_service
from app.services.qc import QcDefaults
from app.services.sampling import sample_instances
from app.services.targeted_checks import DEFAULT_UNIFORM_SHARE, TargetedDraw
from app.services.tasks import refresh_instance_counts

MAX_SIZE = 10_000


def planned_size(max_error_rate: float, expected_error_rate: float, confidence: float) -> int:
    """The smallest sample that passes at `confidence` when the task's error rate is `expected_error_rate`."""
    if not 0 < max_error_rate < 1:
        raise Invalid("The maximum error rate must be between 0 and 1.", fields={"max_error_rate": "0 < rate < 1"})
    try:
        return sample_size_for(max_error_rate, expected_error_rate=expected_error_rate, confidence=confidence)
    except ValueError as error:
        raise Invalid(str(error).capitalize() + ".", fields={"expected_error_rate": "under the maximum"}) from None


def create(session: Session, *, task_id: int, actor_id: int | None, max_error_rate: float, size: int | None = None,
           expected_error_rate: float = 0.02, confidence: float = 0.95, double_review: bool = False,
           seed: int | None = None, version_id: int | None = None, targeted_by_model_id: int | None = None,
           uniform_share: float = DEFAULT_UNIFORM_SHARE, permission: checks.Permission = checks.AS_DEFAULT
           ) -> SpotCheck:
    """A spot check of `size` seeded instances — or as many as needed to pass at `confidence` if the task's
    error rate is `expected_error_rate` — in the caller's transaction. One runs at a time: see
    `checks.open_check`. `targeted_by_model_id`: drawn by that model's doubt with a `uniform_share` (about `size`
    instances: each is drawn independently, see services/targeted_checks.py), its error rate weighted."""
    if not 0 < max_error_rate < 1:
        raise Invalid("The maximum error rate must be between 0 and 1.", fields={"max_error_rate": "0 < rate < 1"})
    if size is None:
        size = planned_size(max_error_rate, expected_error_rate, confidence)
    if not 1 <= size <= MAX_SIZE:
        raise Invalid(f"A spot check has between 1 and {MAX_SIZE:,} items.", fields={"size": f"1 to {MAX_SIZE}"})

    targeted = None
    if targeted_by_model_id is not None:
        if not 0 < uniform_share <= 1:
            raise Invalid("The uniform share must be more than 0 and at most 1.",
                          fields={"uniform_share": "0 < u <= 1"})
        targeted = TargetedDraw(model_id=targeted_by_model_id, uniform_share=uniform_share)

    def settings(drawn: int, whole: bool) -> dict:
        own = {"max_error_rate": max_error_rate, "confidence": confidence, "double_review": double_review}
        if targeted is None:
            return {**own, "census": whole and drawn < size}
        return {**own, "census": targeted.census, "targeted_by_model_id": targeted_by_model_id,
                "uniform_share": uniform_share}

    return checks.open_check(session, checks.SPOT, task_id=task_id, actor_id=actor_id, size=size, seed=seed,
                             version_id=version_id, settings=settings, draw=targeted or sample_instances,
                             item_fields=None if targeted is None else (lambda instance: {
                                 # a drawn instance is stored, so its id is never None
                                 "inclusion_probability": targeted.chances[instance.id]}),  # type: ignore[index]
                             permission=permission)


def open_for_approved(session: Session, *, version: InstructionVersion, task_id: int, actor_id: int,
                      defaults: QcDefaults) -> None:
    """After an approval, in the caller's transaction: a spot check of that version, unless one is running or
    one stands passed (after a failure, the newly approved version is checked afresh). It draws none of the
    running solve test's instances; where the rest of the task is smaller than its sample (a small task, checked
    whole), it waits for the solve test to pass (`open_after_solve_test`), so that its sample stays whole."""
    if checks.open_check_of(session, checks.SPOT, task_id=task_id) is not None \
            or checks.standing(session, checks.SPOT, task_id=task_id) == QcStatus.passed:
        return
    solving = checks.open_check_of(session, checks.SOLVE, task_id=task_id) is not None
    if solving and checks.drawable(session, checks.SPOT, task_id=task_id) < defaults.spot_check_size:
        return
    create(session, task_id=task_id, actor_id=actor_id, max_error_rate=defaults.max_error_rate,
           expected_error_rate=defaults.expected_error_rate, confidence=defaults.confidence, version_id=version.id)


def open_after_solve_test(session: Session, *, task_id: int, actor_id: int, defaults: QcDefaults) -> None:
    """A solve test passed, in its transaction: the spot check that waited for it, if the task still has an
    approved instruction and needs one."""
    version = session.exec(select(InstructionVersion).join(Instruction).where(
        Instruction.task_id == task_id, InstructionVersion.status == InstructionStatus.approved)
        .order_by(InstructionVersion.id.desc())).first()
    if version is not None:
        open_for_approved(session, version=version, task_id=task_id, actor_id=actor_id, defaults=defaults)


@cache
def first_pass_candidates():
    """Undecided items of open checks in queue order, from the first open check on: the undecided items of checks
    cancelled before it (kept in the queue-order index) are never read."""
    first_open = select(func.min(SpotCheck.id)).where(SpotCheck.status == QcStatus.open).scalar_subquery()
    return checks.queue_candidates(checks.SPOT).where(SpotCheckItem.decided_at.is_(None),
                                                       SpotCheckItem.spot_check_id >= first_open)


@cache
def second_pass_candidates():
    """Double review: items someone else gave a first verdict, waiting for an independent second one."""
    return checks.queue_candidates(checks.SPOT).where(
        SpotCheck.double_review.is_(True), SpotCheckItem.decided_at.is_not(None),
        SpotCheckItem.second_decided_at.is_(None), SpotCheckItem.reviewer_id != leases.USER)


@cache
def held_by():
    open_check = select(SpotCheck.id).where(SpotCheck.status == QcStatus.open)
    first = (SpotCheckItem.reviewer_id == leases.USER) & SpotCheckItem.decided_at.is_(None)
    second = (SpotCheckItem.second_reviewer_id == leases.USER) & SpotCheckItem.second_decided_at.is_(None) \
        & SpotCheckItem.decided_at.is_not(None)
    return (select(SpotCheckItem.id).where(SpotCheckItem.spot_check_id.in_(open_check), first | second,
                                           SpotCheckItem.lease_expires_at.is_not(None)).order_by(SpotCheckItem.id))


def is_second_pass(item: SpotCheckItem, user_id: int) -> bool:
    return item.decided_at is not None and item.second_reviewer_id == user_id


def record_verdict(session: Session, *, item_id: int, lock_version: int, user_id: int, verdict: str,
                   note: str | None) -> SpotCheckItem:
    """The verdict of whoever holds the item (first or second pass); a problem flags the instance."""
    try:
        verdict = SpotVerdict(verdict)
    except ValueError:
        raise Invalid("Choose one of the verdicts.", fields={"verdict": "unknown"}) from None
    item, check = checks.open_item(session, checks.SPOT, item_id=item_id)
    note = limits.at_most((note or "").strip(), limits.NOTE, field="note") or None
    second = is_second_pass(item, user_id)
    prefix = "second_" if second else ""  # each pass has its own columns: second_verdict, second_note, ...
    leases.decide_or_refuse(session, table=SpotCheckItem, item_id=item.id, lock_version=lock_version,
                            claimant=SpotCheckItem.second_reviewer_id if second else SpotCheckItem.reviewer_id,
                            user_id=user_id, still_open=getattr(SpotCheckItem, f"{prefix}decided_at").is_(None),
                            values={f"{prefix}verdict": verdict, f"{prefix}note": note,
                                    f"{prefix}decided_at": utcnow()})
    if not second:  # the check's error rate is of first verdicts: counted here, in the verdict's transaction
        session.execute(update(SpotCheck).where(SpotCheck.id == check.id).values(
            decided_count=SpotCheck.decided_count + 1,
            error_count=SpotCheck.error_count + (0 if verdict == SpotVerdict.correct else 1)))
    if verdict != SpotVerdict.correct:
        flagged = session.execute(update(Instance).where(Instance.id == item.instance_id,
                                                         Instance.status == InstanceStatus.active)
                                  .values(status=InstanceStatus.flagged)).rowcount
        if flagged:
            refresh_instance_counts(session, task_ids=[check.task_id])
            audit.record(session, actor_id=user_id, action="instance.flag", entity_type="instance",
                         entity_id=item.instance_id, task_id=check.task_id,
                         after={"verdict": str(verdict), "note": note, "spot_check_id": check.id})
    _settle(session, check=check, actor_id=user_id)
    session.commit()
    session.refresh(item)
    return item


@dataclass(frozen=True)
class SpotFigures:
    size: int
    decided: int
    errors: int
    verdicts: dict[str, int]
    second_decided: int
    interval: Interval | None
    kappa: float | None
    max_error_rate: float
    double_review: bool
    census: bool
    weighted: WeightedEstimate | None = None  # targeted checks: the interval is this, weighted by 1 / π

    @property
    def complete(self) -> bool:
        return self.decided == self.size and (not self.double_review or self.second_decided == self.size)

    @property
    def passes(self) -> bool:
        if self.interval is None:
            return False
        if self.census:  # every instance was looked at: no sampling error to allow for
            return self.interval.rate < self.max_error_rate
        return self.interval.high < self.max_error_rate


def figures(session: Session, *, check: SpotCheck) -> SpotFigures:
    """One grouped query (at most 6 x 6 rows, whatever the size): verdict counts and agreement pairs; for a
    targeted check, each verdict with its inclusion probability too (app/qc/targeted.py weighs them)."""
    rows = session.exec(select(SpotCheckItem.verdict, SpotCheckItem.second_verdict, func.count())
                        .where(SpotCheckItem.spot_check_id == check.id)
                        .group_by(SpotCheckItem.verdict, SpotCheckItem.second_verdict)).all()
    firsts: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for first, second, count in rows:
        if first is not None:
            firsts[first] += count
            if second is not None:
                pairs[(first, second)] += count
    decided = sum(firsts.values())
    errors = decided - firsts.get(SpotVerdict.correct, 0)
    weighted = None
    if check.targeted:
        weighted = weighted_error_rate([
            (verdict != SpotVerdict.correct, probability) for verdict, probability in session.exec(
                select(SpotCheckItem.verdict, SpotCheckItem.inclusion_probability)
                .where(SpotCheckItem.spot_check_id == check.id, SpotCheckItem.verdict.is_not(None)))],
            confidence=check.confidence)
    return SpotFigures(size=check.size, decided=decided, errors=errors, verdicts=dict(firsts),
                       second_decided=sum(pairs.values()),
                       interval=weighted.interval if weighted else wilson(errors, decided, confidence=check.confidence),
                       kappa=cohens_kappa(pairs), max_error_rate=check.max_error_rate,
                       double_review=check.double_review, census=check.census, weighted=weighted)


def _settle(session: Session, *, check: SpotCheck, actor_id: int) -> None:
    """Closes the check once every item has its verdict(s). Asks the indexes whether anything is left first:
    the figures read every item, which on every decision of a 10,000-item check would cost milliseconds."""
    waiting = [SpotCheckItem.decided_at] + ([SpotCheckItem.second_decided_at] if check.double_review else [])
    for column in waiting:
        if session.exec(select(SpotCheckItem.id).where(SpotCheckItem.spot_check_id == check.id, column.is_(None))
                        .limit(1)).first() is not None:
            return
    result = figures(session, check=check)
    outcome = QcStatus.passed if result.passes else QcStatus.failed
    checks.close(session, checks.SPOT, check=check, outcome=outcome, actor_id=actor_id,
                 figures={"errors": result.errors, "size": result.size, "upper": round(result.interval.high, 4),
                          "kappa": None if result.kappa is None else round(result.kappa, 3)},
                 reason=f"spot check {outcome}: {result.errors}/{result.size} errors")


def open_targeted_for_version(session: Session, *, version_id: int, model_id: int, defaults: QcDefaults,
                              actor_id: int) -> list[SpotCheck]:
    """An admin's audit of a dataset version: a targeted spot check of each of its tasks, drawn by the model's
    doubt (every task must have been scored by it), all or none; committed. A spot check running on one of its
    tasks is replaced, and says so."""
    task_ids = score_service.version_task_ids(session, version_id=version_id)
    reason = f"an admin's targeted audit of dataset version #{version_id}"
    opened = []
    for task_id in task_ids:
        running = checks.open_check_of(session, checks.SPOT, task_id=task_id)
        opened.append(create(session, task_id=task_id, actor_id=actor_id, max_error_rate=defaults.max_error_rate,
                             expected_error_rate=defaults.expected_error_rate, confidence=defaults.confidence,
                             targeted_by_model_id=model_id,
                             permission=checks.Permission(reason=reason, replaces=running) if running else
                             checks.AS_DEFAULT))
    session.commit()
    return opened


def open_requested(session: Session, *, task_id: int, data, defaults: QcDefaults, actor_id: int,
                   is_admin: bool) -> SpotCheck:
    """A spot check as a person asked for it (page or API, `SpotCheckIn`), the settings filling the gaps;
    weaker than the defaults, in place of a running check or after a failed one, only as `check_rules` allows.
    Uniform checks are the default; a targeted one is an admin's choice. Committed."""
    if data.targeted_by_model_id is not None and not is_admin:
        raise Forbidden("Only an admin chooses a targeted spot check.", fields={"targeted_by_model_id": "admins"})
    expected = defaults.expected_error_rate if data.expected_error_rate is None else data.expected_error_rate
    max_error_rate = data.max_error_rate or defaults.max_error_rate
    size = data.size or planned_size(max_error_rate, expected, defaults.confidence)
    permission = check_rules.authorise(
        session, checks.SPOT, task_id=task_id, version_id=None, is_admin=is_admin, reason=data.reason,
        weaker=check_rules.weaker_spot_check(size=size, max_error_rate=max_error_rate, seed=data.seed,
                                             defaults=defaults))
    check = create(session, task_id=task_id, actor_id=actor_id, size=size, max_error_rate=max_error_rate,
                   expected_error_rate=expected, double_review=data.double_review, seed=data.seed,
                   targeted_by_model_id=data.targeted_by_model_id,
                   uniform_share=data.uniform_share or DEFAULT_UNIFORM_SHARE, permission=permission)
    session.commit()
    return check
