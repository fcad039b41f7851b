"""JSON API for instances and their fixes: read one, propose a fix (PATCH, with the `lock_version` you read),
read its history, withdraw your own proposal. Fixes are decided in the corrections queue
(`/api/v1/review/corrections/...`)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.core.failures import Forbidden
from app.schemas import API_ERRORS
from app.schemas.revisions import InstanceFixIn, InstanceOut, RevisionDecisionIn, RevisionOut
from app.services import corrections, instance_revisions, revisions
from app.web.deps import ANY_ROLE, REVIEWERS, STRICT_QUERY, BlindfoldDep, CurrentUser, RowId, SessionDep, settings_of

router = APIRouter(prefix="/api/v1", tags=["instances"], responses=API_ERRORS, dependencies=[STRICT_QUERY])


@router.get("/instances/{instance_id}", dependencies=[ANY_ROLE], response_model=InstanceOut)
def get_instance(session: SessionDep, blindfold: BlindfoldDep, instance_id: RowId):
    return instance_revisions.instance_out(session, instance_id=instance_id, blindfold=blindfold)


@router.patch("/instances/{instance_id}", dependencies=[ANY_ROLE], response_model=RevisionOut, status_code=201)
def propose_fix(request: Request, session: SessionDep, user: CurrentUser, blindfold: BlindfoldDep,
                instance_id: RowId, data: InstanceFixIn):
    """Proposes the fix as a revision; a second person accepts it in the corrections queue before it changes
    what exports hold. 409 when the instance changed since you read it, or a fix of it already waits."""
    return instance_revisions.propose_fix(session, instance_id=instance_id, data=data, author_id=user.id,
                                          blindfold=blindfold, accept_now=_may_accept_own(request, data))


@router.get("/instances/{instance_id}/revisions", dependencies=[ANY_ROLE], response_model=list[RevisionOut])
def instance_revisions_list(session: SessionDep, blindfold: BlindfoldDep, instance_id: RowId):
    if blindfold.hides(instance_id):
        raise Forbidden("This instance is in a blind solve test you may still answer: its history, which says its "
                        "target, stays hidden until the test ends.")
    return instance_revisions.history(session, instance_id=instance_id)


@router.post("/revisions/{revision_id}/withdraw", dependencies=[ANY_ROLE], response_model=RevisionOut)
def withdraw(session: SessionDep, user: CurrentUser, revision_id: RowId):
    return revisions.withdraw(session, revision_id=revision_id, user_id=user.id)


@router.post("/review/corrections/{revision_id}/decision", dependencies=[REVIEWERS], response_model=RevisionOut)
def decide(session: SessionDep, user: CurrentUser, revision_id: RowId, data: RevisionDecisionIn):
    """Accept or reject the fix you hold in the corrections queue (`POST /api/v1/review/corrections/next`)."""
    return corrections.decide(session, revision_id=revision_id, data=data, user_id=user.id)


def _may_accept_own(request: Request, data: InstanceFixIn) -> bool:
    if data.accept and not settings_of(request).corrections_self_accept:
        raise Forbidden("A fix is accepted by a second person in the corrections queue: this studio does not let "
                        "authors accept their own (STUDIO_CORRECTIONS_SELF_ACCEPT).")
    return data.accept
