"""Starting an import from the browser: it runs as a job; its page shows progress, then the report."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request

from app.deps import CurrentUser, SessionDep, require_role
from app.errors import Invalid
from app.forms import FormDep
from app.models import Role
from app.services import jobs as job_service
from app.storage import PathOutsideRoot, confined
from app.templating import render, see_other

router = APIRouter(prefix="/imports", tags=["pages"], include_in_schema=False,
                   dependencies=[require_role(Role.admin, Role.author)])
FORMATS = {"unified": "Vision-Flan unified instances", "llava": "Released Vision-Flan / LLaVA training records"}


@router.get("")
def import_page(request: Request, session: SessionDep):
    return _page(request, session, values={})


@router.post("")
def start_import(request: Request, session: SessionDep, user: CurrentUser, form: FormDep):
    root = request.app.state.settings.resolved_import_root
    try:
        payload = _payload(root, form)
    except Invalid as error:
        return _page(request, session, values=form, error=error)
    job = job_service.enqueue(session, kind="import", payload={**payload, "actor_id": user.id},
                              created_by_id=user.id)
    return see_other(request, f"/jobs/{job.id}")


def _payload(root: Path, form) -> dict:
    """The job's payload from the form, every path checked to lie under the import root."""
    errors: dict[str, str] = {}
    file_format = str(form.get("format", ""))
    if file_format not in FORMATS:
        errors["format"] = "choose a format"
    file, image_root = str(form.get("file", "")).strip(), str(form.get("image_root", "")).strip()
    try:
        if not file or not confined(root, file).is_file():
            errors["file"] = "no such file under the import root"
    except PathOutsideRoot:
        errors["file"] = "must be under the import root"
    try:
        if image_root and not confined(root, image_root).is_dir():
            errors["image_root"] = "no such folder under the import root"
    except PathOutsideRoot:
        errors["image_root"] = "must be under the import root"
    numbers = {}
    for name in ("max_per_task", "seed"):
        raw = str(form.get(name, "")).strip()
        if raw and not raw.isdigit():
            errors[name] = "must be a whole number"
        numbers[name] = int(raw) if raw.isdigit() else None
    if numbers["max_per_task"] == 0:
        errors["max_per_task"] = "must be at least 1"
    if errors:
        raise Invalid("Some fields need attention.", fields=errors)
    return {"format": file_format, "file": file, "image_root": image_root or None,
            "max_per_task": numbers["max_per_task"], "seed": numbers["seed"] or 0}


def _page(request: Request, session, *, values, error: Invalid | None = None):
    return render(request, "imports/page.html", "imports/_form.html", status_code=422 if error else 200,
                  values=values, formats=FORMATS, errors=error.fields if error else {},
                  message=error.message if error else None, root=request.app.state.settings.resolved_import_root,
                  jobs=job_service.recent_jobs(session, kind="import"))
