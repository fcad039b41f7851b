"""JSON API for synthesis: start a job, and the prompts' versions (list, propose, approve or reject)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel

from app.schemas import API_ERRORS, JobStarted
from app.schemas.stage2 import PromptDecisionIn, PromptIn, SynthesizeIn
from app.services.synthesis import jobs as synthesis_jobs
from app.services.synthesis import prompts
from app.web.deps import ANY_ROLE, EDITORS, REVIEWERS, STRICT_QUERY, CurrentUser, RowId, SessionDep, settings_of

router = APIRouter(prefix="/api/v1/synthesis", tags=["synthesis"], responses=API_ERRORS, dependencies=[STRICT_QUERY])


class PromptOut(BaseModel):
    id: int
    kind: str
    version: int
    text: str
    status: str
    author_id: int | None
    reviewer_id: int | None
    review_note: str | None
    created_at: datetime
    decided_at: datetime | None


@router.post("", dependencies=[EDITORS], response_model=JobStarted, status_code=202)
def start(request: Request, session: SessionDep, user: CurrentUser, data: SynthesizeIn):
    """Queues a synthesize job: `count` of the task's instances drawn with `seed`, written by the generator into a
    synthesized pool, unreviewed."""
    job = synthesis_jobs.start(session, data, actor_id=user.id,
                               endpoints_file=settings_of(request).synthesis_endpoints)
    return JobStarted(job_id=job.id, status=job.status, page=f"/jobs/{job.id}")


@router.get("/prompts", dependencies=[ANY_ROLE], response_model=list[PromptOut])
def list_prompts(session: SessionDep):
    """Every version of every kind's prompt, newest first within a kind."""
    return [PromptOut.model_validate(prompt, from_attributes=True) for prompt in prompts.listing(session)]


@router.post("/prompts", dependencies=[EDITORS], response_model=PromptOut, status_code=201)
def propose(session: SessionDep, user: CurrentUser, data: PromptIn):
    """A new version of a kind's prompt: a draft until someone else approves it."""
    prompt = prompts.propose(session, kind=data.kind, text=data.text, author_id=user.id)
    return PromptOut.model_validate(prompt, from_attributes=True)


@router.post("/prompts/{prompt_id}/decision", dependencies=[REVIEWERS], response_model=PromptOut)
def decide(session: SessionDep, user: CurrentUser, prompt_id: RowId, data: PromptDecisionIn):
    """Approves or rejects a draft (never one's own; a rejection says why)."""
    prompt = prompts.decide(session, prompt_id=prompt_id, approve=data.decision == "approve", reviewer_id=user.id,
                            note=data.note)
    return PromptOut.model_validate(prompt, from_attributes=True)
