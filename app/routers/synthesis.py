"""Synthesis's pages: the form that starts a job (what to write about, with which prompt and generator, within
which caps), and the prompts' versions, proposed by authors and approved or rejected by someone else."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.core.failures import Conflict, Invalid
from app.models import ConversationKind, JobKind
from app.schemas.stage2 import PromptDecisionIn, PromptIn, SynthesizeIn
from app.services import jobs as job_service
from app.services import registered_models as model_service
from app.services import tasks as task_service
from app.services import users
from app.services.synthesis import jobs as synthesis_jobs
from app.services.synthesis import prompts
from app.web.deps import ANY_ROLE, EDITORS, REVIEWERS, CurrentUser, RowId, SessionDep, settings_of
from app.web.forms import FormDep, defaults_of, form_feedback, validate_form, validate_values
from app.web.templating import render, see_other

router = APIRouter(prefix="/synthesis", tags=["pages"], include_in_schema=False)
NUMBERS = ("count", "seed", "concurrency", "max_requests", "max_tokens_total", "batch_size")


@router.get("", dependencies=[ANY_ROLE])
def synthesis_page(request: Request, session: SessionDep):
    return _page(request, session, {**defaults_of(SynthesizeIn), "pool": "synthesized", "temperature": 0.7,
                                    "max_tokens": 1024})


@router.post("", dependencies=[EDITORS])
def start(request: Request, session: SessionDep, user: CurrentUser, form: FormDep):
    values = {key: value for key, value in form.items() if key != "csrf_token"}
    try:
        data = validate_values(SynthesizeIn, _request_values(values), nested=("sampling",))
        job = synthesis_jobs.start(session, data, actor_id=user.id,
                                   endpoints_file=settings_of(request).synthesis_endpoints)
    except (Invalid, Conflict) as error:
        return _page(request, session, values, error)
    return see_other(request, f"/jobs/{job.id}")


@router.post("/prompts", dependencies=[EDITORS])
def propose_prompt(request: Request, session: SessionDep, user: CurrentUser, form: FormDep):
    try:
        data = validate_form(PromptIn, form)
        prompt = prompts.propose(session, kind=data.kind, text=data.text, author_id=user.id)
    except Invalid as error:
        return _page(request, session, {**defaults_of(SynthesizeIn)}, error)
    return see_other(request, f"/synthesis#prompt-{prompt.id}")


@router.post("/prompts/{prompt_id}/decision", dependencies=[REVIEWERS])
def decide_prompt(request: Request, session: SessionDep, user: CurrentUser, form: FormDep, prompt_id: RowId):
    try:
        data = validate_form(PromptDecisionIn, form, optional=("note",))
        prompts.decide(session, prompt_id=prompt_id, approve=data.decision == "approve", reviewer_id=user.id,
                       note=data.note)
    except (Invalid, Conflict) as error:
        return _page(request, session, {**defaults_of(SynthesizeIn)}, error)
    return see_other(request, f"/synthesis#prompt-{prompt_id}")


def _request_values(values: dict[str, str]) -> dict[str, object]:
    """The form's flat fields as SynthesizeIn's: the generator's one menu ("endpoint:NAME" or "model:ID") split in
    two, the sampling nested, empty numbers left to their defaults."""
    data: dict[str, object] = {key: value for key, value in values.items()
                               if key in SynthesizeIn.model_fields and value != ""}
    backend, _, which = values.get("generator", "").partition(":")
    data["backend"] = backend or "endpoint"
    data["endpoint" if backend != "model" else "model_id"] = which or None
    data["sampling"] = {name: values[name] for name in ("temperature", "top_p", "max_tokens") if values.get(name)}
    return data


def _page(request: Request, session, values: dict, error: Invalid | Conflict | None = None):
    versions, models = prompts.listing(session), model_service.list_models(session)
    return render(request, "synthesis/page.html", values=values, tasks=task_service.choices(session),
                  kinds=list(ConversationKind), models=models, model_names={m.id: m.name for m in models},
                  endpoints=synthesis_jobs.endpoint_names(settings_of(request).synthesis_endpoints),
                  prompts=versions, jobs=job_service.recent_jobs(session, kind=JobKind.synthesize, limit=10),
                  names=users.display_names(session, user_ids=[p.author_id for p in versions]
                                            + [p.reviewer_id for p in versions]),
                  **form_feedback(error))
