"""Deciding a fix in the corrections queue, whatever it fixes: the revision's kind of record says how it is
applied (an instance's rules and consequences, or a conversation's)."""

from __future__ import annotations

from sqlmodel import Session

from app.models import RecordKind, Revision
from app.schemas.revisions import RevisionDecisionIn
from app.services import revisions
from app.services.conversation_reviews import CONVERSATIONS
from app.services.instance_revisions import INSTANCES

REVISABLE = {RecordKind.instance: INSTANCES, RecordKind.conversation: CONVERSATIONS}


def decide(session: Session, *, revision_id: int, data: RevisionDecisionIn, user_id: int) -> Revision:
    """The decision of the reviewer who holds the fix. Commits."""
    revision = revisions.get(session, revision_id=revision_id)
    return revisions.decide(session, REVISABLE[RecordKind(revision.record_kind)], revision_id=revision_id,
                            lock_version=data.lock_version, user_id=user_id, accept=data.decision == "accept",
                            comment=data.comment)
