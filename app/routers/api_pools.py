"""JSON API for stage-2 conversation pools: the pools with their counts, and a pool's conversations, filtered and
paged as its page shows them, each with its pre-screen findings."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from app.qc.prescreen import RuleName
from app.schemas import API_ERRORS, JobStarted
from app.schemas.pools import ConversationOut, ConversationPage, FindingOut, PoolOut, PoolScoreIn
from app.schemas.revisions import RevisionOut
from app.schemas.stage2 import ConversationFixIn
from app.services import conversation_reviews, pool_scores
from app.services import pools as pool_service
from app.web.deps import ANY_ROLE, PREVIEWERS, STRICT_QUERY, CurrentUser, RowId, SessionDep, settings_of

router = APIRouter(prefix="/api/v1/pools", tags=["pools"], responses=API_ERRORS, dependencies=[STRICT_QUERY])


@router.get("", dependencies=[ANY_ROLE], response_model=list[PoolOut])
def list_pools(session: SessionDep):
    return [PoolOut(id=summary.pool.id, name=summary.pool.name, source=summary.pool.source,
                    conversations=summary.conversations, with_image=summary.with_image, versions=summary.versions)
            for summary in pool_service.list_pools(session)]


@router.get("/{pool_id}/conversations", dependencies=[ANY_ROLE], response_model=ConversationPage)
def list_conversations(session: SessionDep, pool_id: RowId,
                       image: Annotated[Literal["with", "without"] | None, Query()] = None,
                       turns: Annotated[int | None, Query(ge=1, le=1000, description="Exchanges at least.")] = None,
                       q: Annotated[str | None, Query(max_length=200, description="Text anywhere, any case.")] = None,
                       finding: Annotated[RuleName | None, Query(description="A pre-screen it breaks.")] = None,
                       after: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100):
    """The pool's conversations in file order, `limit` a page; pass `next_after` back as `after` for the next."""
    pool = pool_service.get_pool(session, pool_id=pool_id)
    filters = pool_service.PoolFilters(image=image, turns=turns, q=(q or "").strip() or None, finding=finding)
    page = pool_service.page(session, pool_id=pool.id, filters=filters, after=after, size=limit)
    return ConversationPage(next_after=page.next_after, items=[
        ConversationOut(position=row.item.position, source_id=row.item.source_id,
                        image=row.image.sha256 if row.image else None, conversations=row.item.conversations,
                        findings=[FindingOut(rule=found.rule, detail=found.detail)
                                  for found in page.findings.get(row.item.position, [])])
        for row in page.rows])


@router.post("/{pool_id}/scores", dependencies=[PREVIEWERS], response_model=JobStarted, status_code=202)
def score_pool(session: SessionDep, user: CurrentUser, pool_id: RowId, data: PoolScoreIn):
    """Queues a score job: the model's loss on every answer of the pool, to read the least likely first (the pool's
    page, `?order=doubt`)."""
    job = pool_scores.start(session, pool_id=pool_id, model_id=data.model_id, batch_size=data.batch_size,
                            actor_id=user.id)
    return JobStarted(job_id=job.id, status=job.status, page=f"/jobs/{job.id}")


@router.post("/{pool_id}/conversations/{position}/fix", dependencies=[PREVIEWERS], response_model=RevisionOut,
             status_code=201)
def fix_conversation(request: Request, session: SessionDep, user: CurrentUser, pool_id: RowId,
                     position: Annotated[int, Path(ge=0, le=2**31 - 1)], data: ConversationFixIn):
    """A new fix of a conversation review found wrong and nobody fixed (its fix was rejected): it waits for a
    second person in the corrections queue."""
    row = pool_service.conversation(session, pool_id=pool_id, position=position)
    revision = conversation_reviews.propose_fix(session, conversation_id=row.item.id, data=data, user_id=user.id,
                                                self_accept_allowed=settings_of(request).corrections_self_accept)
    return RevisionOut.model_validate(revision, from_attributes=True)
