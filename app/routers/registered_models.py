"""Models the worker can load; previews (a model's answers on a task's instances beside the targets) and score
jobs (what a model makes of every instance, for ranking by doubt)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.core.failures import Invalid
from app.models import JobKind
from app.schemas import ModelIn, PreviewIn, ScoreIn
from app.services import job_views, previews, scores
from app.services import jobs as job_service
from app.services import registered_models as model_service
from app.services import tasks as task_service
from app.services.jobs import JobFilters
from app.web.deps import ADMIN, ANY_ROLE, PREVIEWERS, BlindfoldDep, CurrentUser, RowId, SessionDep
from app.web.forms import FormDep, form_feedback, validate_form
from app.web.templating import render, see_other

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/models", dependencies=[ANY_ROLE])
def model_list(request: Request, session: SessionDep):
    return _list_page(request, session)


def _list_page(request: Request, session, *, values=None, error: Invalid | None = None):
    """The models with the registration form; after a refused form, a 422 that keeps what was sent and says what is
    wrong beside each field."""
    return render(request, "models/page.html", models=model_service.list_models(session),
                  previews=job_service.recent_jobs(session, kind=JobKind.preview), values=values,
                  **form_feedback(error))


@router.get("/models/{model_id}", dependencies=[ANY_ROLE])
def model_detail(request: Request, session: SessionDep, model_id: RowId):
    """A model: where it is, where it comes from (a fine-tune's job, version and base), its previews and the
    fine-tunes started from it."""
    model = model_service.get(session, model_id=model_id)
    return render(request, "models/detail.html", model=model, **model_service.provenance(session, model=model),
                  previews=job_service.list_jobs(session,
                                                 filters=JobFilters(kind=JobKind.preview, model_ids=(model.id,))),
                  finetunes=job_service.list_jobs(session, filters=JobFilters(kind=JobKind.finetune,
                                                                              base_model_id=model.id)))


@router.post("/models", dependencies=[ADMIN])
def register_model(request: Request, session: SessionDep, user: CurrentUser, form: FormDep):
    try:
        data = validate_form(ModelIn, form)
        model_service.register(session, name=data.name, path=data.path, dtype=data.dtype, device=data.device,
                               actor_id=user.id)
    except Invalid as error:
        return _list_page(request, session, values=form, error=error)
    return see_other(request, "/models")


@router.post("/tasks/{task_id}/previews", dependencies=[PREVIEWERS])
def start_preview(request: Request, session: SessionDep, user: CurrentUser, form: FormDep, task_id: RowId):
    task = task_service.get_task(session, task_id=task_id)
    data = validate_form(PreviewIn, form, optional=("instruction_version_id",))
    job = previews.start(session, task_id=task.id, data=data, actor_id=user.id)
    return see_other(request, f"/previews/{job.id}")


@router.post("/tasks/{task_id}/scores", dependencies=[PREVIEWERS])
def start_score(request: Request, session: SessionDep, user: CurrentUser, form: FormDep, task_id: RowId):
    """Scores every active instance of the task with a model; its job page shows progress, and the instance
    browser then ranks by the model's doubt."""
    data = validate_form(ScoreIn, form, optional=("instruction_version_id",))
    job = scores.start(session, task_id=task_id, data=data, actor_id=user.id)
    return see_other(request, f"/jobs/{job.id}")


@router.get("/previews/compare", dependencies=[ANY_ROLE])
def compare_previews(request: Request, session: SessionDep, blindfold: BlindfoldDep, a: int, b: int):
    """Two previews of a task side by side: two instruction versions, or two models, on the same instances."""
    left, right = _preview_job(session, a), _preview_job(session, b)
    rows = previews.compare(session, left=left, right=right, blindfold=blindfold)
    names = {job.id: model_service.get(session, model_id=job_service.payload_of(job).model_id).name
             for job in (left, right)}
    return render(request, "models/compare.html", left=left, right=right, rows=rows, names=names,
                  task=task_service.get_task(session, task_id=job_service.payload_of(left).task_id),
                  scores=[sum(getattr(row, side).matched for row in rows) for side in ("left", "right")])


def _preview_job(session, job_id: int):
    job = job_service.get_job(session, job_id=job_id)
    if job.kind != JobKind.preview:
        raise Invalid(f"Job {job_id} is not a preview.", fields={"job_id": "not a preview"})
    return job


@router.get("/previews/{job_id}", dependencies=[ANY_ROLE])
def preview_page(request: Request, session: SessionDep, blindfold: BlindfoldDep, job_id: RowId):
    """The preview's job page: its status while it runs, then the outputs beside their targets, in place."""
    job = _preview_job(session, job_id)
    return render(request, "models/preview.html", "jobs/_status.html",
                  **job_views.job_context(session, job, blindfold))
