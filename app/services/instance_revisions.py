"""Fixing instances: how an instance is revised (`INSTANCES`, for `revisions`), and the fixes people make on the
instance page, the API and the corrections queue.

An accepted fix writes the instance's current values, which every export uses; the imported values stay readable
as the first revision's `before`. Accepting a fix (or the dismissal of a finding) of a flagged instance makes it
active again, and a fix of the prompt or the target drops the instance's scores: a loss on the old target ranks
nothing now."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from app.core.failures import Conflict, Forbidden, Invalid, NotFound
from app.models import (
    Instance,
    InstanceScore,
    InstanceStatus,
    InstructionVersion,
    QcStatus,
    RecordKind,
    Revision,
    RevisionOrigin,
    RevisionStatus,
    SolveTest,
    SolveTestItem,
    SpotCheckItem,
    SpotVerdict,
    User,
)
from app.qc.answers import parse_option
from app.schemas.revisions import EDITABLE, InstanceFixIn, InstanceOut
from app.services import audit, leases, revisions
from app.services.blinding import Blindfold
from app.services.instances import get_instance
from app.services.revisions import MANUAL, Origin, Revisable
from app.services.suggestions import suggestion_for
from app.services.tasks import refresh_instance_counts

SCORED_FIELDS = frozenset({"input_text", "options", "raw_output"})  # what a model's loss on the instance depends on


def _check(session: Session, instance: Instance, after: dict[str, Any]) -> None:
    options, target = after["options"], after["raw_output"]
    if options and parse_option(target, options) is None and parse_option(target, options, numbered=True) is None:
        raise Invalid("The target must name one of the options (its text, or its label).",
                      fields={"raw_output": "not one of the options"})


def _accepted(session: Session, instance: Instance, revision: Revision, actor_id: int | None) -> None:
    if instance.status == InstanceStatus.flagged:
        session.execute(update(Instance).where(Instance.id == instance.id).values(status=InstanceStatus.active))
        refresh_instance_counts(session, task_ids=[instance.task_id])
        audit.record(session, actor_id=actor_id, action="instance.unflag", entity_type="instance",
                     entity_id=instance.id, task_id=instance.task_id, after={"revision_id": revision.id})
    if SCORED_FIELDS & set(revision.changes):
        session.execute(delete(InstanceScore).where(InstanceScore.instance_id == instance.id))


INSTANCES = Revisable(kind=RecordKind.instance, table=Instance, fields=EDITABLE, noun="instance",
                      task_of=lambda instance: instance.task_id, check=_check, accepted=_accepted)


def propose_fix(session: Session, *, instance_id: int, data: InstanceFixIn, author_id: int, blindfold: Blindfold,
                origin: Origin = MANUAL, accept_now: bool = False, commit: bool = True) -> Revision:
    """A person's fix of an instance (see `revisions.propose`). Nobody fixes a target they must not see."""
    _refuse_blind(blindfold, instance_id)
    return revisions.propose(session, INSTANCES, record_id=instance_id, values=data.values(),
                             lock_version=data.lock_version, reason=data.reason, author_id=author_id, origin=origin,
                             accept_now=accept_now, commit=commit)


def propose_suggestion(session: Session, *, instance_id: int, lock_version: int, model_id: int, author_id: int,
                       blindfold: Blindfold) -> Revision:
    """A person proposes the model's suggestion as the target (worked out here again, never taken from the
    request), traced to the model; a second person still decides it."""
    _refuse_blind(blindfold, instance_id)
    instance, _ = get_instance(session, instance_id=instance_id)
    suggestion = suggestion_for(session, instance=instance, model_id=model_id)
    if suggestion is None:
        raise Conflict("The model has no suggestion for this instance (any more): its answer is the target.")
    odds = f" (probability {suggestion.probability:.2f})" if suggestion.probability is not None else ""
    return revisions.propose(session, INSTANCES, record_id=instance.id, values={"raw_output": suggestion.text},
                             lock_version=lock_version, author_id=author_id,
                             reason=f"{suggestion.model_name} suggests “{suggestion.text}”{odds}.",
                             origin=Origin(RevisionOrigin.model_suggestion, model_id, suggestion.origin_detail()))


def propose_from_spot_check(session: Session, *, item_id: int, data: InstanceFixIn, user_id: int,
                            blindfold: Blindfold) -> Revision:
    """The fix a spot checker offers right after a verdict other than *correct*, traced to that verdict."""
    item = session.get(SpotCheckItem, item_id)
    if item is None:
        raise NotFound(f"There is no spot-check item with id {item_id}.")
    verdict = item.verdict if item.reviewer_id == user_id else \
        item.second_verdict if item.second_reviewer_id == user_id else None
    if verdict in (None, SpotVerdict.correct):
        raise Forbidden("A fix from a spot check comes from the reviewer whose verdict found a problem.")
    return propose_fix(session, instance_id=item.instance_id, data=data, author_id=user_id, blindfold=blindfold,
                       origin=Origin(RevisionOrigin.spot_check, item.id, {"verdict": verdict}))


def propose_from_solve_test(session: Session, *, item_id: int, data: InstanceFixIn, user_id: int,
                            blindfold: Blindfold) -> Revision:
    """The fix a solver offers after their blind answer did not match: they have seen this target now (the test
    stays blind on its other instances), and the fix is traced to their answer."""
    item = session.get(SolveTestItem, item_id)
    if item is None:
        raise NotFound(f"There is no solve-test item with id {item_id}.")
    if item.solver_id != user_id or item.matched is not False:
        raise Forbidden("A fix from a solve test comes from the solver whose answer did not match the target.")
    seen = Blindfold(blindfold.hidden - {item.instance_id})
    return propose_fix(session, instance_id=item.instance_id, data=data, author_id=user_id, blindfold=seen,
                       origin=Origin(RevisionOrigin.solve_test, item.id, {"answer": item.answer}))


def dismiss_finding(session: Session, *, instance_id: int, lock_version: int, reason: str, author_id: int,
                    blindfold: Blindfold, origin: Origin) -> Revision:
    """The finding that flagged the instance was wrong: once a second person accepts, the instance is active
    again, unchanged."""
    _refuse_blind(blindfold, instance_id)
    instance = session.get(Instance, instance_id)
    if instance is not None and instance.status != InstanceStatus.flagged:
        raise Conflict("This instance is not flagged: there is no finding to dismiss.")
    return revisions.propose(session, INSTANCES, record_id=instance_id, values={}, lock_version=lock_version,
                             reason=reason, author_id=author_id, origin=origin, dismissal=True)


def history(session: Session, *, instance_id: int) -> list[Revision]:
    get_instance(session, instance_id=instance_id)
    return revisions.history(session, INSTANCES, record_id=instance_id)


@dataclass(frozen=True)
class Entry:
    """A revision as the instance page lists it."""

    revision: Revision
    author: str
    reviewer: str | None


def history_entries(session: Session, *, instance_id: int) -> list[Entry]:
    """The instance's revisions, newest first, with who proposed and who decided each."""
    author, reviewer = aliased(User), aliased(User)
    rows = session.exec(select(Revision, author.display_name, reviewer.display_name)
                        .outerjoin(author, author.id == Revision.author_id)
                        .outerjoin(reviewer, reviewer.id == Revision.reviewer_id)
                        .where(Revision.record_kind == RecordKind.instance, Revision.record_id == instance_id)
                        .order_by(Revision.id.desc()))
    return [Entry(revision, author_name or "someone", reviewer_name if revision.decided_at else None)
            for revision, author_name, reviewer_name in rows]


def waiting_fixes(session: Session, *, instance_ids: list[int]) -> dict[int, int]:
    """The proposed fix waiting for each of these instances that has one: instance id -> revision id."""
    return dict(session.exec(select(Revision.record_id, Revision.id).where(
        Revision.record_kind == RecordKind.instance, Revision.status == RevisionStatus.proposed,
        Revision.record_id.in_(instance_ids))).all()) if instance_ids else {}


def instance_out(session: Session, *, instance_id: int, blindfold: Blindfold) -> InstanceOut:
    instance, image = get_instance(session, instance_id=instance_id)
    hidden = blindfold.hides(instance.id)
    return InstanceOut.model_validate(instance, from_attributes=True).model_copy(update={
        "image_sha256": image.sha256 if image else None, "target_hidden": hidden,
        "raw_output": None if hidden else instance.raw_output,
        "human_preferred_output": None if hidden else instance.human_preferred_output,
        "open_revision_id": revisions.open_revision_id(session, INSTANCES, record_id=instance.id)})


def _refuse_blind(blindfold: Blindfold, instance_id: int) -> None:
    if blindfold.hides(instance_id):
        raise Conflict("This instance is in a blind solve test you may still answer: its target stays hidden from "
                       "you until the test ends, so someone else fixes it.", fields={"instance": "blind"})


@cache
def queue_candidates():
    """Proposed fixes :user_id may decide, oldest first: nobody holds them, they are not theirs, and the instance
    is in no running blind solve test they may still answer (its target stays hidden from them)."""
    blind = (select(SolveTestItem.instance_id).join(SolveTest, SolveTest.id == SolveTestItem.solve_test_id)
             .outerjoin(InstructionVersion, InstructionVersion.id == SolveTest.instruction_version_id)
             .where(SolveTest.status == QcStatus.open,
                    InstructionVersion.author_id.is_(None) | (InstructionVersion.author_id != leases.USER)))
    return (select(Revision.id, Revision.lock_version)
            .where(Revision.status == RevisionStatus.proposed, Revision.record_kind == RecordKind.instance,
                   Revision.id != leases.SKIP, leases.lease_free(Revision),
                   Revision.author_id.is_(None) | (Revision.author_id != leases.USER),
                   Revision.record_id.not_in(blind))
            .order_by(Revision.status, Revision.record_kind, Revision.id))


@cache
def held_by():
    return (select(Revision.id).where(Revision.reviewer_id == leases.USER, Revision.status == RevisionStatus.proposed,
                                      Revision.lease_expires_at.is_not(None)).order_by(Revision.id))
