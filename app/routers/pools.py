"""Stage-2 conversation pools: the list with counts, a pool's conversations (filtered keyset pages), one
conversation beside its image."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from app.core.failures import Conflict, Invalid
from app.qc.prescreen import RULES, RuleName
from app.schemas.pools import PoolScoreIn
from app.schemas.stage2 import ConversationFixIn
from app.services import conversation_reviews, pool_scores, revisions
from app.services import pools as pool_service
from app.services import registered_models as model_service
from app.web.deps import ANY_ROLE, PREVIEWERS, CurrentUser, RowId, SessionDep, settings_of
from app.web.forms import FormDep, form_feedback, validate_form, validate_values
from app.web.templating import render, see_other

router = APIRouter(prefix="/pools", tags=["pages"], include_in_schema=False)


@router.get("", dependencies=[ANY_ROLE])
def pool_list(request: Request, session: SessionDep):
    return render(request, "pools/page.html", summaries=pool_service.list_pools(session))


@router.get("/{pool_id}", dependencies=[ANY_ROLE])
def pool_detail(request: Request, session: SessionDep, pool_id: RowId,
                image: Annotated[Literal["with", "without", ""], Query()] = "",
                turns: Annotated[int | None, Query(ge=1, le=1000)] = None,
                q: Annotated[str, Query(max_length=200)] = "",
                finding: Annotated[RuleName | Literal[""], Query()] = "",
                review: Annotated[Literal["unread", "correct", "flagged", "fixed", ""], Query()] = "",
                order: Annotated[Literal["doubt", ""], Query()] = "",
                kind: Annotated[Literal["conversation", "detail", "complex_reasoning", ""], Query()] = "",
                after: Annotated[int | None, Query(ge=0)] = None):
    """A pool's conversations, 50 a page, with the pre-screens' findings (and a model's doubt, once it scored the
    pool); htmx asks for the table alone as the filters change."""
    pool = pool_service.get_pool(session, pool_id=pool_id)
    filters = pool_service.PoolFilters(image=image or None, turns=turns, q=q.strip() or None, finding=finding or None,
                                       review=review or None, order=order or None, kind=kind or None)
    found = pool_service.findings(session, pool_id=pool.id)
    scores = pool_scores.newest(session, pool_id=pool.id)
    return render(request, "pools/detail.html", "pools/_table.html", pool=pool, filters=filters,
                  page=pool_service.page(session, pool_id=pool.id, filters=filters, after=after, found=found,
                                         scored_by=scores.model_id if scores else None),
                  counts=pool_service.finding_counts(found), rules=RULES, scores=scores,
                  models=model_service.list_models(session),
                  quality=conversation_reviews.pool_quality(session, pool_ids=[pool_id])[pool_id])


@router.post("/{pool_id}/scores", dependencies=[PREVIEWERS])
def score_pool(request: Request, session: SessionDep, user: CurrentUser, form: FormDep, pool_id: RowId):
    """Queues a score job on the pool; its page shows the progress."""
    data = validate_form(PoolScoreIn, form)
    job = pool_scores.start(session, pool_id=pool_id, model_id=data.model_id, batch_size=data.batch_size,
                            actor_id=user.id)
    return see_other(request, f"/jobs/{job.id}")


Position = Annotated[int, Path(ge=0, le=2**31 - 1)]


@router.get("/{pool_id}/conversations/{position}", dependencies=[ANY_ROLE])
def conversation_detail(request: Request, session: SessionDep, pool_id: RowId, position: Position):
    return _conversation_page(request, session, pool_id, position)


@router.post("/{pool_id}/conversations/{position}/fix", dependencies=[PREVIEWERS])
def fix_conversation(request: Request, session: SessionDep, user: CurrentUser, form: FormDep, pool_id: RowId,
                     position: Position):
    """A new fix of a conversation review found wrong and nobody fixed: it waits in Corrections (or is accepted
    at once, where the team lets authors accept their own)."""
    row = pool_service.conversation(session, pool_id=pool_id, position=position)
    try:
        data = validate_values(ConversationFixIn, _fix_values(form), nested=("turns",))
        revision = conversation_reviews.propose_fix(
            session, conversation_id=row.item.id, data=data, user_id=user.id,
            self_accept_allowed=settings_of(request).corrections_self_accept)
    except (Invalid, Conflict) as error:
        return _conversation_page(request, session, pool_id, position, error)
    message = "accepted" if revision.status == "accepted" else "waits-for-review"
    return see_other(request, f"/pools/{pool_id}/conversations/{position}?fix={message}")


def _fix_values(form) -> dict:
    """The fix form's fields (text-N and drop-N for each answer N) as ConversationFixIn's values."""
    turns = [{"turn": key.removeprefix("text-"), "text": form[key].replace("\r\n", "\n"),
              "drop": f"drop-{key.removeprefix('text-')}" in form} for key in form if key.startswith("text-")]
    return {"lock_version": form.get("lock_version"), "turns": turns, "note": (form.get("note") or "").strip(),
            "accept": "accept" in form}


def _conversation_page(request: Request, session, pool_id: int, position: int,
                       error: Invalid | Conflict | None = None):
    pool = pool_service.get_pool(session, pool_id=pool_id)
    row = pool_service.conversation(session, pool_id=pool.id, position=position)
    before, after = pool_service.neighbours(session, pool_id=pool.id, position=position)
    found = pool_service.findings(session, pool_id=pool.id).get(position, [])
    waiting = revisions.open_revision_id(session, conversation_reviews.CONVERSATIONS, record_id=row.item.id)
    return render(request, "pools/conversation.html", pool=pool, row=row, before=before, after=after, found=found,
                  rules=RULES, waiting=waiting, fixed=request.query_params.get("fix"),
                  self_accept=settings_of(request).corrections_self_accept, **form_feedback(error))
