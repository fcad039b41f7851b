"""Starting an import from the browser: it runs as a job; its page shows progress, then the report."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.core.failures import Invalid
from app.ingest import IMPORT_FORMATS
from app.ingest.requests import SAMPLED, WITH_IMAGES, request_model
from app.models import JobKind
from app.schemas.jobs import ImportPayload
from app.services import jobs as job_service
from app.web.deps import EDITORS, CurrentUser, SessionDep, settings_of
from app.web.forms import FormDep, form_feedback, validate_form
from app.web.templating import render, see_other

router = APIRouter(prefix="/imports", tags=["pages"], include_in_schema=False,
                   dependencies=[EDITORS])
# An empty field is "not given".
OPTIONAL = ("image_root", "max_per_task", "seed", "dataset", "task", "records", "join", "join_records", "on",
            "image_pattern", "instruction_file", "kind")


@router.get("")
def import_page(request: Request, session: SessionDep, format: str = "unified"):
    return _page(request, session, values={"format": format if format in IMPORT_FORMATS else "unified"})


@router.get("/form")
def import_form(request: Request, format: str = "unified"):
    """The form again for another format (htmx swaps it in when the format menu changes)."""
    return _form(request, values={"format": format if format in IMPORT_FORMATS else "unified"})


@router.post("")
def start_import(request: Request, session: SessionDep, user: CurrentUser, form: FormDep):
    """Validated as the worker will run it (`app.ingest.requests`), every path confined to the import root."""
    try:
        model = request_model(str(form.get("format", "")))
        wanted = validate_form(model, form, optional=tuple(name for name in OPTIONAL if name in model.model_fields),
                               checkboxes=("submit",) if "submit" in model.model_fields else ())
        wanted.locate(settings_of(request).resolved_import_root)
    except Invalid as error:
        return _page(request, session, values=form, error=error)
    job = job_service.enqueue(session, ImportPayload(**wanted.model_dump(exclude_none=True), actor_id=user.id),
                              created_by_id=user.id)
    return see_other(request, f"/jobs/{job.id}")


def _form(request: Request, *, values):
    return render(request, "imports/_form.html", values=values, formats=IMPORT_FORMATS, with_images=WITH_IMAGES,
                  sampled=SAMPLED, **form_feedback(None))


def _page(request: Request, session, *, values, error: Invalid | None = None):
    return render(request, "imports/page.html", "imports/_form.html", values=values, formats=IMPORT_FORMATS,
                  with_images=WITH_IMAGES, sampled=SAMPLED, **form_feedback(error),
                  root=settings_of(request).resolved_import_root,
                  jobs=job_service.recent_jobs(session, kind=JobKind.import_))
