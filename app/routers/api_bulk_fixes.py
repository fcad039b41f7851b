"""JSON API for bulk fixes: preview one, propose it, read it (with the preview its reviewer decides on), decide
it, withdraw it, resume its job, undo it, and read its report (JSON lines, every instance)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import StreamingResponse

from app.schemas import API_ERRORS
from app.schemas.bulk_fixes import BulkDecisionIn, BulkFixIn, BulkFixOut, BulkPreview
from app.services import bulk_fixes
from app.web.deps import ANY_ROLE, REVIEWERS, STRICT_QUERY, BlindfoldDep, CurrentUser, RowId, SessionDep, settings_of

router = APIRouter(prefix="/api/v1/bulk-fixes", tags=["bulk fixes"], responses=API_ERRORS,
                   dependencies=[STRICT_QUERY])


@router.post("/preview", dependencies=[ANY_ROLE], response_model=BulkPreview)
def preview(session: SessionDep, blindfold: BlindfoldDep, data: BulkFixIn):
    """What proposing this fix would store: the counts and the first changes of each kind. Writes nothing."""
    return bulk_fixes.preview(session, data=data, blindfold=blindfold)


@router.post("", dependencies=[ANY_ROLE], response_model=BulkFixOut, status_code=201)
def propose(request: Request, session: SessionDep, user: CurrentUser, blindfold: BlindfoldDep, data: BulkFixIn):
    """Stores the fix with its instances frozen as the preview shows them; a second person decides it."""
    return bulk_fixes.propose(session, data=data, author_id=user.id, blindfold=blindfold,
                              self_accept_allowed=settings_of(request).corrections_self_accept)


@router.get("", dependencies=[ANY_ROLE], response_model=list[BulkFixOut])
def list_fixes(session: SessionDep, status: Annotated[str | None, Query(max_length=20)] = None):
    return bulk_fixes.list_fixes(session, status=status)


@router.get("/{fix_id}", dependencies=[ANY_ROLE], response_model=BulkFixOut)
def get_fix(session: SessionDep, fix_id: RowId):
    return bulk_fixes.get(session, fix_id=fix_id)


@router.get("/{fix_id}/preview", dependencies=[ANY_ROLE], response_model=BulkPreview)
def stored_preview(session: SessionDep, blindfold: BlindfoldDep, fix_id: RowId):
    """The preview its reviewer decides on, from the instances frozen when it was proposed."""
    return bulk_fixes.stored_preview(session, fix=bulk_fixes.get(session, fix_id=fix_id), blindfold=blindfold)


@router.post("/{fix_id}/decision", dependencies=[REVIEWERS], response_model=BulkFixOut)
def decide(session: SessionDep, user: CurrentUser, blindfold: BlindfoldDep, fix_id: RowId, data: BulkDecisionIn):
    """Accept (its job is queued at once) or reject (a comment is required) the whole fix."""
    return bulk_fixes.decide(session, fix_id=fix_id, data=data, user_id=user.id, blindfold=blindfold)


@router.post("/{fix_id}/withdraw", dependencies=[ANY_ROLE], response_model=BulkFixOut)
def withdraw(session: SessionDep, user: CurrentUser, fix_id: RowId):
    return bulk_fixes.withdraw(session, fix_id=fix_id, user_id=user.id)


@router.post("/{fix_id}/resume", dependencies=[ANY_ROLE], response_model=BulkFixOut)
def resume(session: SessionDep, user: CurrentUser, fix_id: RowId):
    """Queues the job again for an accepted fix whose job stopped: it goes on from its last whole chunk."""
    return bulk_fixes.resume(session, fix_id=fix_id, user_id=user.id)


@router.post("/{fix_id}/undo", dependencies=[ANY_ROLE], response_model=BulkFixOut, status_code=201)
def undo(session: SessionDep, user: CurrentUser, blindfold: BlindfoldDep, fix_id: RowId,
         reason: Annotated[str, Body(min_length=1, max_length=2_000, embed=True)]):
    """Proposes a bulk fix that restores what this applied one wrote (reviewed like any other)."""
    return bulk_fixes.propose_undo(session, fix_id=fix_id, reason=reason, author_id=user.id, blindfold=blindfold)


@router.get("/{fix_id}/report", dependencies=[ANY_ROLE])
def report(session: SessionDep, blindfold: BlindfoldDep, fix_id: RowId):
    """Every instance of the fix, one JSON object a line: its changes and what became of it (`outcome`). Values
    hidden from you while a blind solve test runs are left out."""
    fix = bulk_fixes.get(session, fix_id=fix_id)

    def lines() -> Iterator[str]:
        for item in bulk_fixes.report(session, fix=fix, blindfold=blindfold):
            yield item.model_dump_json() + "\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")
