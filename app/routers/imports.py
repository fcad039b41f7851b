"""Starting an import from the browser: it runs as a job; its page shows progress, then the report."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request

from app import access
from app.deps import CurrentUser, SessionDep, require
from app.failures import Invalid
from app.forms import FormDep
from app.ingest import IMPORT_FORMATS
from app.ingest.image_sources import is_archive
from app.ingest.tabular import FieldMapping, MappingInvalid
from app.services import jobs as job_service
from app.storage import PathOutsideRoot, confined
from app.templating import render, see_other

router = APIRouter(prefix="/imports", tags=["pages"], include_in_schema=False,
                   dependencies=[require(access.EDITORS)])
WITH_IMAGES = {"unified", "llava", "table", "conversations"}
SAMPLED = {"unified", "llava", "table"}


@router.get("")
def import_page(request: Request, session: SessionDep, format: str = "unified"):
    return _page(request, session, values={"format": format if format in IMPORT_FORMATS else "unified"})


@router.get("/form")
def import_form(request: Request, format: str = "unified"):
    """The form again for another format (htmx swaps it in when the format menu changes)."""
    return _form(request, values={"format": format if format in IMPORT_FORMATS else "unified"})


@router.post("")
def start_import(request: Request, session: SessionDep, user: CurrentUser, form: FormDep):
    try:
        payload = _payload(request.app.state.settings.resolved_import_root, form)
    except Invalid as error:
        return _page(request, session, values=form, error=error)
    job = job_service.enqueue(session, kind="import", payload={**payload, "actor_id": user.id},
                              created_by_id=user.id)
    return see_other(request, f"/jobs/{job.id}")


def _payload(root: Path, form) -> dict:
    """The job's payload from the form; every path is checked to lie under the import root."""
    errors: dict[str, str] = {}
    file_format = str(form.get("format", ""))
    if file_format not in IMPORT_FORMATS:
        raise Invalid("Choose a format.", fields={"format": "choose a format"})
    payload: dict = {"format": file_format, "file": str(form.get("file", "")).strip()}
    _check_path(root, payload["file"], "file", errors, folder_ok=file_format == "table")
    if file_format in WITH_IMAGES and str(form.get("image_root", "")).strip():
        payload["image_root"] = str(form.get("image_root")).strip()
        _check_path(root, payload["image_root"], "image_root", errors, image_root=True)
    if file_format in SAMPLED:
        for name in ("max_per_task", "seed"):
            raw = str(form.get(name, "")).strip()
            if raw and (not raw.isdigit() or (name == "max_per_task" and int(raw) == 0)):
                errors[name] = "must be a whole number" + (" from 1" if name == "max_per_task" else "")
            payload[name] = int(raw) if raw.isdigit() else None
    if file_format == "table":
        payload["map"] = [line.strip() for line in str(form.get("map", "")).splitlines() if line.strip()]
        payload["dataset"] = str(form.get("dataset", "")).strip() or None
        payload["task"] = str(form.get("task", "")).strip() or None
        try:
            FieldMapping.parse(payload["map"], {"dataset_name": payload["dataset"], "task_name": payload["task"]})
        except MappingInvalid as error:
            errors["map"] = str(error)
    if file_format == "conversations":
        payload["pool"] = str(form.get("pool", "")).strip()
        if not payload["pool"] or len(payload["pool"]) > 120:
            errors["pool"] = "name the pool (at most 120 characters)"
    if errors:
        raise Invalid("Some fields need attention.", fields=errors)
    return payload


def _check_path(root: Path, relative: str, field: str, errors: dict, *, image_root: bool = False,
                folder_ok: bool = False) -> None:
    try:
        path = confined(root, relative) if relative else None
    except PathOutsideRoot:
        errors[field] = "must be under the import root"
        return
    if image_root:
        if path is None or not (path.is_dir() or (path.is_file() and is_archive(path))):
            errors[field] = "no such folder, .zip or .tar under the import root"
    elif path is None or not (path.is_file() or (folder_ok and path.is_dir())):
        errors[field] = "no such file under the import root"


def _form(request: Request, *, values, error: Invalid | None = None, status_code: int = 200):
    return render(request, "imports/_form.html", status_code=status_code, values=values, formats=IMPORT_FORMATS,
                  with_images=WITH_IMAGES, sampled=SAMPLED, errors=error.fields if error else {},
                  message=error.message if error else None)


def _page(request: Request, session, *, values, error: Invalid | None = None):
    return render(request, "imports/page.html", "imports/_form.html", status_code=422 if error else 200,
                  values=values, formats=IMPORT_FORMATS, with_images=WITH_IMAGES, sampled=SAMPLED,
                  errors=error.fields if error else {}, message=error.message if error else None,
                  root=request.app.state.settings.resolved_import_root,
                  jobs=job_service.recent_jobs(session, kind="import"))
