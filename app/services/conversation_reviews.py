"""Reviewing stage-2 conversations: a verdict on every gpt turn, and (for a turn that is wrong) a fix of its text
or the exchange dropped, proposed as a revision that a second person accepts in the corrections queue.

A conversation is revised like an instance (`CONVERSATIONS`, for `revisions`): the fix is made against the
conversation's `lock_version`, keeps the rules the import keeps (turns alternate, one `<image>` in the first turn
when there is an image), and once accepted turns the review's outcome from flagged to fixed. A pool's error rate
is worked out from its reviews (`pool_quality`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, case, false, func, literal, null, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from app.core.failures import Conflict, Invalid, NotFound
from app.models import (
    ConversationItem,
    ConversationOutcome,
    ConversationPool,
    ConversationReview,
    Image,
    RecordKind,
    Revision,
    RevisionOrigin,
    RevisionStatus,
    TurnVerdict,
    utcnow,
)
from app.qc.conversation_shape import IMAGE_TOKEN, shape_problem
from app.qc.stats import Interval, wilson
from app.schemas.stage2 import ConversationFixIn, ConversationVerdictsIn, FixTurnIn, TurnJudgementIn
from app.services import audit, leases, revisions
from app.services.revisions import Origin, Revisable


def _check(session: Session, item: ConversationItem, after: dict[str, Any]) -> None:
    """The fixed conversation keeps what the import asks of every conversation."""
    problem = shape_problem(after["conversations"], has_image=item.image_id is not None)
    if problem:
        raise Invalid(f"The fixed conversation is not one a trainer can use: {problem}.",
                      fields={"conversations": problem})


def _accepted(session: Session, item: ConversationItem, revision: Revision, actor_id: int | None) -> None:
    session.execute(update(ConversationReview).where(ConversationReview.conversation_id == item.id,
                                                     ConversationReview.outcome == ConversationOutcome.flagged)
                    .values(outcome=ConversationOutcome.fixed))


CONVERSATIONS = Revisable(kind=RecordKind.conversation, table=ConversationItem, fields=("conversations",),
                          noun="conversation", task_of=lambda item: None, check=_check, accepted=_accepted)


def gpt_turns(turns: list[dict[str, str]]) -> list[int]:
    return [index for index, turn in enumerate(turns) if turn["from"] == "gpt"]


def decide(session: Session, *, review_id: int, data: ConversationVerdictsIn, user_id: int) -> ConversationReview:
    """The reviewer who holds the conversation gives a verdict on each gpt turn; a changed or dropped turn (only
    one judged wrong) becomes a proposed fix. One transaction: a stale page, or a fix another fix waits before,
    records nothing. Commits."""
    review = get(session, review_id=review_id)
    item = session.get(ConversationItem, review.conversation_id)
    judged = _judgements(item.conversations, data)
    fixed = _fixed(item.conversations, data.turns)
    if fixed != item.conversations:
        _check(session, item, {"conversations": fixed})  # before anything is written
    flagged = any(judgement["verdict"] != TurnVerdict.correct for judgement in judged)
    leases.decide_or_refuse(session, table=ConversationReview, item_id=review.id, lock_version=data.lock_version,
                            claimant=ConversationReview.reviewer_id, user_id=user_id,
                            still_open=ConversationReview.decided == false(),
                            values={"decided": True, "decided_at": utcnow(), "verdicts": judged,
                                    "outcome": ConversationOutcome.flagged if flagged else ConversationOutcome.correct,
                                    "conversation_lock_version": item.lock_version})
    revision = None
    if fixed != item.conversations:
        wrong = ", ".join(f"turn {j['turn'] + 1} {j['verdict'].replace('_', ' ')}" for j in judged
                          if j["verdict"] != TurnVerdict.correct)
        revision = _propose(session, item=item, review_id=review.id, fixed=fixed, changes=data.turns,
                            lock_version=item.lock_version, reason=(data.note or "").strip() or f"Review: {wrong}.",
                            verdicts=judged, user_id=user_id)
    audit.record(session, actor_id=user_id, action="conversation.review", entity_type="conversation",
                 entity_id=item.id, after={"review_id": review.id, "flagged": flagged,
                                           "verdicts": [j["verdict"] for j in judged],
                                           "revision_id": revision.id if revision else None})
    session.commit()
    session.refresh(review)
    return review


def _judgements(turns: list[dict[str, str]], data: ConversationVerdictsIn) -> list[dict[str, Any]]:
    """One verdict per gpt turn, in turn order; a refusal names every turn that is missing, unknown or given twice,
    and every changed turn judged correct (a fix says what was wrong)."""
    answers = gpt_turns(turns)
    given = [judgement.turn for judgement in data.turns]
    problems = {}
    for index in sorted({turn for turn in given if given.count(turn) > 1}):
        problems[f"turn {index + 1}"] = "judged twice"
    for index in sorted(set(given) - set(answers)):
        problems[f"turn {index + 1}"] = "not an answer of this conversation (only gpt turns are judged)"
    for index in sorted(set(answers) - set(given)):
        problems[f"turn {index + 1}"] = "needs a verdict"
    for judgement in data.turns:
        if judgement.verdict == TurnVerdict.correct and judgement.turn in answers and (
                judgement.drop or (judgement.text is not None and judgement.text != turns[judgement.turn]["value"])):
            problems[f"turn {judgement.turn + 1}"] = "is changed but judged correct: say what was wrong with it"
    if problems:
        raise Invalid("The verdicts cannot be recorded: " + "; ".join(f"{name} {why}" for name, why in problems.items())
                      + ".", fields=problems)
    return [{"turn": j.turn, "verdict": str(j.verdict), "note": (j.note or "").strip() or None}
            for j in sorted(data.turns, key=lambda judgement: judgement.turn)]


def _fixed(turns: list[dict[str, str]], changes: Sequence[TurnJudgementIn | FixTurnIn]) -> list[dict[str, str]]:
    """The conversation with the reviewer's changes: fixed answers, dropped exchanges (a question and its
    answer). The image token moves to the first question left when its own was dropped."""
    by_turn = {change.turn: change for change in changes}
    kept: list[dict[str, str]] = []
    for index in range(1, len(turns), 2):
        judgement = by_turn.get(index)
        if judgement is not None and judgement.drop:
            continue
        text = judgement.text if judgement is not None and judgement.text is not None else turns[index]["value"]
        kept += [dict(turns[index - 1]), {"from": "gpt", "value": text}]
    if not kept:
        raise Invalid("Every exchange would be dropped: keep at least one (a conversation judged wrong stays out "
                      "of stage 2 without a fix).", fields={"turns": "every exchange dropped"})
    if IMAGE_TOKEN in turns[0]["value"] and IMAGE_TOKEN not in kept[0]["value"]:
        kept[0]["value"] = f"{IMAGE_TOKEN}\n{kept[0]['value']}"
    return kept


def propose_fix(session: Session, *, conversation_id: int, data: ConversationFixIn, user_id: int,
                self_accept_allowed: bool) -> Revision:
    """A fix of a conversation review found wrong and nobody fixed (its fix was rejected, or none was proposed):
    proposed as the review's own fix would have been, for a second person to accept; the review then points at
    it. Commits."""
    item = session.get(ConversationItem, conversation_id)
    review = session.exec(select(ConversationReview).where(ConversationReview.conversation_id == conversation_id)
                          ).first()
    if item is None or review is None:
        raise NotFound(f"There is no conversation with id {conversation_id}.")
    if review.outcome != ConversationOutcome.flagged:
        raise Conflict("Only a conversation that review found wrong, and that is not fixed, takes a fix here "
                       f"(this one is {review.outcome or 'not read yet'}: read it in the queue).",
                       fields={"conversation": str(review.outcome or "unread")})
    answers = gpt_turns(item.conversations)
    strays = sorted({change.turn for change in data.turns} - set(answers))
    if strays:
        raise Invalid("Only answers are fixed: " + ", ".join(f"turn {turn + 1}" for turn in strays) + " is not one.",
                      fields={f"turn {turn + 1}": "not an answer" for turn in strays})
    revision = _propose(session, item=item, review_id=review.id, fixed=_fixed(item.conversations, data.turns),
                        changes=data.turns, lock_version=data.lock_version, reason=data.note,
                        verdicts=review.verdicts or [], user_id=user_id,
                        accept_now=data.accept and self_accept_allowed)
    session.commit()
    session.refresh(revision)
    return revision


def _propose(session: Session, *, item: ConversationItem, review_id: int, fixed: list[dict[str, str]],
             changes: Sequence[TurnJudgementIn | FixTurnIn], lock_version: int, reason: str,
             verdicts: list[dict[str, Any]], user_id: int, accept_now: bool = False) -> Revision:
    """The fixed conversation proposed as a revision that names the review and its verdicts, in the caller's
    transaction; the review then waits on it (its outcome turns to fixed when it is accepted, and a pinned draw
    reads that revision's decision time)."""
    revision = revisions.propose(
        session, CONVERSATIONS, record_id=item.id, values={"conversations": fixed}, lock_version=lock_version,
        reason=reason, author_id=user_id, origin=Origin(RevisionOrigin.conversation_review, review_id, {
            "verdicts": verdicts, "dropped": sorted(change.turn for change in changes if change.drop)}),
        accept_now=accept_now, commit=False)
    session.execute(update(ConversationReview).where(ConversationReview.id == review_id)
                    .values(revision_id=revision.id))
    return revision


def get(session: Session, *, review_id: int) -> ConversationReview:
    review = session.get(ConversationReview, review_id)
    if review is None:
        raise NotFound(f"There is no conversation review with id {review_id}.")
    return review


@cache
def queue_candidates():
    """Conversations nobody has read, in the pools' seeded order (so what has been read of a pool is a uniform
    sample of it), that nobody holds."""
    return (select(ConversationReview.id, ConversationReview.lock_version)
            .where(ConversationReview.decided == false(), ConversationReview.id != leases.SKIP,
                   leases.lease_free(ConversationReview))
            .order_by(ConversationReview.decided, ConversationReview.rkey, ConversationReview.id))


@cache
def fix_candidates():
    """Proposed fixes of conversations :user_id may decide, oldest first: nobody holds them, and they are not
    theirs."""
    return (select(Revision.id, Revision.lock_version)
            .where(Revision.status == RevisionStatus.proposed, Revision.record_kind == RecordKind.conversation,
                   Revision.id != leases.SKIP, leases.lease_free(Revision),
                   Revision.author_id.is_(None) | (Revision.author_id != leases.USER))
            .order_by(Revision.status, Revision.record_kind, Revision.id))


@cache
def held_by():
    return (select(ConversationReview.id).where(ConversationReview.reviewer_id == leases.USER,
                                                ConversationReview.decided == false(),
                                                ConversationReview.lease_expires_at.is_not(None))
            .order_by(ConversationReview.id))


@dataclass(frozen=True)
class PoolQuality:
    """What review found in a pool: conversations read and judged wrong (fixed or not), and the share of the pool
    with a wrong answer, with its 95% Wilson interval (exact once every conversation was read)."""

    conversations: int
    read: int
    flagged: int  # judged wrong, no fix accepted
    fixed: int  # judged wrong, and fixed

    @property
    def wrong(self) -> int:
        return self.flagged + self.fixed

    @property
    def exact(self) -> bool:
        return self.read == self.conversations and self.read > 0

    @property
    def error_rate(self) -> Interval | None:
        if self.exact:
            return Interval(self.wrong / self.read, self.wrong / self.read, self.wrong / self.read)
        return wilson(self.wrong, self.read)


def pool_quality(session: Session, *, pool_ids: list[int], as_of: datetime | None = None) -> dict[int, PoolQuality]:
    """Each pool's review counts, in one statement; as they were at `as_of` when given (reviews decided later are
    not read yet, and a fix accepted later has not fixed its conversation yet)."""
    review, fix = ConversationReview, aliased(Revision)
    outcome: Any = review.outcome
    if as_of is not None:
        fixed_later = col(fix.decided_at).is_(None) | (col(fix.decided_at) > as_of)
        outcome = case((col(review.decided_at) > as_of, null()),
                       ((col(review.outcome) == ConversationOutcome.fixed) & fixed_later,
                        literal(ConversationOutcome.flagged.value)), else_=review.outcome)
    query = (select(review.pool_id, outcome, func.count()).where(col(review.pool_id).in_(pool_ids))
             .group_by(review.pool_id, outcome))
    if as_of is not None:
        query = query.outerjoin(fix, col(fix.id) == review.revision_id)
    rows = session.exec(query).all() if pool_ids else []
    counts: dict[int, dict[str | None, int]] = {pool_id: {} for pool_id in pool_ids}
    for pool_id, found, count in rows:
        counts[pool_id][found] = count
    return {pool_id: PoolQuality(conversations=sum(by.values()), read=sum(n for o, n in by.items() if o is not None),
                                 flagged=by.get(ConversationOutcome.flagged, 0),
                                 fixed=by.get(ConversationOutcome.fixed, 0))
            for pool_id, by in counts.items()}


@cache
def conversation_rows():
    """A conversation, its pool and its image (:conversation_id), in one statement built once."""
    return (select(ConversationItem, ConversationPool, Image)
            .join(ConversationPool, ConversationPool.id == ConversationItem.pool_id)
            .outerjoin(Image, Image.id == ConversationItem.image_id)
            .where(ConversationItem.id == bindparam("conversation_id")))
