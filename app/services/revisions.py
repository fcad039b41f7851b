"""Revisions of any kind of record, under the four-eyes rule: a change is proposed with its reason and what led
to it, and applied only when a second person (never its author, unless the team's setting lets authors accept
their own) accepts it; a rejection says why. Each kind of record says how it is revised (`Revisable`, e.g.
`instance_revisions.INSTANCES`): its fields, the domain rules a change must keep, and what acceptance does
besides writing the values.

A proposal is made against the record's `lock_version` as the person saw it (a stale one is a 409 that writes
nothing) and applied only onto that same version; at most one proposal waits per record (a unique index)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.core.failures import Conflict, Forbidden, Invalid, NotFound
from app.models import RecordKind, Revision, RevisionOrigin, RevisionStatus, utcnow
from app.services import audit, leases


@dataclass(frozen=True)
class Revisable:
    """How one kind of record is revised."""

    kind: RecordKind
    table: type  # with `id`, `lock_version` and the fields
    fields: tuple[str, ...]
    noun: str  # "instance", in messages
    task_of: Callable[[Any], int | None]
    # Refuses (Invalid) a change that would break a domain rule, given the record and its values after the change.
    check: Callable[[Session, Any, dict[str, Any]], None]
    # What acceptance does besides writing the values (in the same transaction): unflag, mark scores stale...
    accepted: Callable[[Session, Any, Revision, int | None], None]


@dataclass(frozen=True)
class Origin:
    """What led to a change: a finding (a spot-check or solve-test item), a model's suggestion, a file..."""

    kind: RevisionOrigin = RevisionOrigin.manual
    id: int | None = None
    detail: dict[str, Any] | None = None


MANUAL = Origin()

def propose(session: Session, revisable: Revisable, *, record_id: int, values: dict[str, Any], lock_version: int,
            reason: str, author_id: int | None, origin: Origin = MANUAL, dismissal: bool = False,
            accept_now: bool = False, commit: bool = True) -> Revision:
    """Proposes changing `values` (field: new value) of the record. Only fields whose value really changes are
    recorded; a proposal that changes nothing is refused, unless it is a `dismissal` (the finding behind it was
    wrong: accepting it changes nothing but the finding's consequences). `accept_now`: the author accepts it at
    once (only when the team's setting allows it: the caller checks). Commits, unless `commit` is False (a
    corrections file proposes all its fixes or none)."""
    record = _record(session, revisable, record_id)
    if record.lock_version != lock_version:
        raise Conflict(f"This {revisable.noun} changed since you opened it: reload it and make your fix again.",
                       fields={"lock_version": "stale"})
    unknown = set(values) - set(revisable.fields)
    if unknown:
        raise Invalid(f"These fields cannot be changed: {', '.join(sorted(unknown))}.",
                      fields=dict.fromkeys(sorted(unknown), "not editable"))
    changes = {name: {"before": getattr(record, name), "after": value} for name, value in values.items()
               if getattr(record, name) != value}
    if dismissal and changes:
        raise Invalid("A dismissal changes nothing: propose a fix instead.", fields={"changes": "not empty"})
    if not dismissal and not changes:
        raise Invalid(f"Nothing would change: the {revisable.noun} already has these values.",
                      fields=dict.fromkeys(values or ["changes"], "unchanged"))
    revisable.check(session, record, {name: getattr(record, name) for name in revisable.fields}
                    | {name: change["after"] for name, change in changes.items()})
    revision = Revision(record_kind=revisable.kind, record_id=record.id, task_id=revisable.task_of(record),
                        changes=changes, dismissal=dismissal, reason=reason.strip(), origin=origin.kind,
                        origin_id=origin.id, origin_detail=origin.detail, base_lock_version=record.lock_version,
                        author_id=author_id)
    session.add(revision)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        waiting = open_revision_id(session, revisable, record_id=record_id)
        raise Conflict(f"A fix of this {revisable.noun} is already waiting for review (#{waiting}): it is decided "
                       "(or withdrawn by its author) before another is proposed.",
                       fields={"revision": "one waits already"}) from None
    audit.record(session, actor_id=author_id, action="revision.propose", entity_type=revisable.kind,
                 entity_id=record.id, task_id=revision.task_id,
                 after={"revision_id": revision.id, "fields": sorted(changes), "origin": str(origin.kind),
                        "reason": revision.reason})
    if accept_now:
        session.execute(update(Revision).where(Revision.id == revision.id).values(
            self_accepted=True, lock_version=Revision.lock_version + 1,
            **_decision(accept=True, comment=None, user_id=author_id)))
        _settle(session, revisable, revision, user_id=author_id, accept=True, comment=None, self_accepted=True)
    if commit:
        session.commit()
        session.refresh(revision)
    return revision


def decide(session: Session, revisable: Revisable, *, revision_id: int, lock_version: int, user_id: int,
           accept: bool, comment: str | None) -> Revision:
    """The decision of the reviewer who holds the revision in the corrections queue. Commits."""
    revision = get(session, revision_id=revision_id)
    if revision.author_id == user_id:
        raise Forbidden("A fix is accepted or rejected by someone other than the person who proposed it.")
    if not accept and not (comment or "").strip():
        raise Invalid("Say why you reject the fix: a comment is required.", fields={"comment": "required to reject"})
    leases.decide_or_refuse(session, table=Revision, item_id=revision.id, lock_version=lock_version,
                            claimant=Revision.reviewer_id, user_id=user_id,
                            still_open=Revision.status == RevisionStatus.proposed,
                            values=_decision(accept=accept, comment=comment, user_id=user_id))
    _settle(session, revisable, revision, user_id=user_id, accept=accept, comment=comment)
    session.commit()
    session.refresh(revision)
    return revision


def withdraw(session: Session, *, revision_id: int, user_id: int) -> Revision:
    """The author takes back a proposal nobody has decided. Commits."""
    revision = get(session, revision_id=revision_id)
    if revision.author_id != user_id:
        raise Forbidden("Only the person who proposed a fix may withdraw it.")
    taken = session.execute(update(Revision).where(Revision.id == revision.id,
                                                   Revision.status == RevisionStatus.proposed)
                            .values(status=RevisionStatus.withdrawn, decided_at=utcnow(), lease_expires_at=None,
                                    lock_version=Revision.lock_version + 1)).rowcount
    if not taken:
        session.rollback()
        raise Conflict("This fix was decided meanwhile: it can no longer be withdrawn.")
    audit.record(session, actor_id=user_id, action="revision.withdraw", entity_type=revision.record_kind,
                 entity_id=revision.record_id, task_id=revision.task_id, after={"revision_id": revision.id})
    session.commit()
    session.refresh(revision)
    return revision


def _decision(*, accept: bool, comment: str | None, user_id: int | None) -> dict[str, Any]:
    return {"status": RevisionStatus.accepted if accept else RevisionStatus.rejected, "decided_at": utcnow(),
            "decision_comment": (comment or "").strip() or None, "reviewer_id": user_id}


def _settle(session: Session, revisable: Revisable, revision: Revision, *, user_id: int | None, accept: bool,
            comment: str | None, self_accepted: bool = False) -> None:
    """After the decision is recorded: an accepted change is written onto the version it was proposed against,
    with what acceptance does for its kind of record; and the decision is audited."""
    if accept:
        table = revisable.table
        applied = session.execute(
            update(table).where(table.id == revision.record_id, table.lock_version == revision.base_lock_version)
            .values(lock_version=table.lock_version + 1,
                    **{name: change["after"] for name, change in revision.changes.items()})).rowcount
        if applied != 1:
            session.rollback()
            raise Conflict(f"The {revisable.noun} changed after this fix was proposed, so it was not applied: "
                           "reject it, and propose the fix again on the current values.")
        session.refresh(revision)
        revisable.accepted(session, session.get(table, revision.record_id, populate_existing=True), revision,
                           user_id)
    audit.record(session, actor_id=user_id, action=f"revision.{'accept' if accept else 'reject'}",
                 entity_type=revision.record_kind, entity_id=revision.record_id, task_id=revision.task_id,
                 after={"revision_id": revision.id, "comment": (comment or "").strip() or None,
                        **({"self_accepted": True} if self_accepted else {})})


def get(session: Session, *, revision_id: int) -> Revision:
    revision = session.get(Revision, revision_id)
    if revision is None:
        raise NotFound(f"There is no revision with id {revision_id}.")
    return revision


def history(session: Session, revisable: Revisable, *, record_id: int) -> list[Revision]:
    """Every revision of the record, oldest first."""
    return list(session.exec(select(Revision).where(Revision.record_kind == revisable.kind,
                                                    Revision.record_id == record_id).order_by(Revision.id)))


def open_revision_id(session: Session, revisable: Revisable, *, record_id: int) -> int | None:
    return session.exec(select(Revision.id).where(Revision.record_kind == revisable.kind,
                                                  Revision.record_id == record_id,
                                                  Revision.status == RevisionStatus.proposed)).first()


def newest_accepted_id(session: Session) -> int | None:
    """The newest accepted revision: a version pins it, so that building its spec again uses the same values."""
    return session.exec(select(func.max(Revision.id)).where(Revision.status == RevisionStatus.accepted)).one()


def original_values(revisable: Revisable, record, revisions: list[Revision]) -> dict[str, Any]:
    """The record's values before any accepted revision: the `before` of the first accepted change of each field."""
    values = {name: getattr(record, name) for name in revisable.fields}
    for revision in reversed([r for r in revisions if r.status == RevisionStatus.accepted]):
        for name, change in revision.changes.items():
            values[name] = change["before"]
    return values


def _record(session: Session, revisable: Revisable, record_id: int):
    record = session.get(revisable.table, record_id, populate_existing=True)
    if record is None:
        raise NotFound(f"There is no {revisable.noun} with id {record_id}.")
    return record
