"""Bulk fixes' pages: the list, the form with its live preview, and a fix's page (the same preview for its
reviewer, the decision, the job's progress, the report, the undo)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from app.core.failures import Conflict, Invalid
from app.models import BulkFix, BulkFixStatus
from app.schemas.bulk_fixes import CHANGES, STATUSES, BulkDecisionIn, BulkFixIn, BulkQuery
from app.schemas.revisions import SPLITS
from app.services import bulk_fixes, users
from app.services import jobs as job_service
from app.services import tasks as task_service
from app.web.deps import ANY_ROLE, REVIEWERS, BlindfoldDep, CurrentUser, RowId, SessionDep, settings_of
from app.web.fixes import bulk_fix_values
from app.web.forms import FormDep, form_feedback, validate_form, validate_values
from app.web.templating import render, see_other

router = APIRouter(prefix="/bulk-fixes", tags=["pages"], include_in_schema=False)
NESTED = ("query", "change")


@router.get("", dependencies=[ANY_ROLE])
def bulk_fix_list(request: Request, session: SessionDep,
                  status: Annotated[str | None, Query(max_length=20)] = None):
    fixes = bulk_fixes.list_fixes(session, status=status or None)
    return render(request, "bulk_fixes/list.html", fixes=fixes, status=status or "", statuses=list(BulkFixStatus),
                  names=users.display_names(session, user_ids=[fix.author_id for fix in fixes]),
                  described=_described)


@router.get("/new", dependencies=[ANY_ROLE])
def new_bulk_fix(request: Request, session: SessionDep, task_id: Annotated[list[int] | None, Query()] = None,
                 q: Annotated[str | None, Query(max_length=200)] = None,
                 status: Annotated[str | None, Query(max_length=20)] = None,
                 split: Annotated[str | None, Query(max_length=20)] = None,
                 suspects_only: Annotated[bool, Query()] = False):
    """The form, with the instance browser's filters when it came from there."""
    values = {"task_ids": [str(t) for t in task_id or []], "q": q or "", "status": status or "", "split": split or "",
              "suspects_only": suspects_only, "action": "replace", "whole_value": True}
    return _form(request, session, values)


@router.post("/preview", dependencies=[ANY_ROLE])
def preview(request: Request, session: SessionDep, blindfold: BlindfoldDep, form: FormDep):
    """The form's live preview: the count and the first changes side by side, nothing written."""
    try:
        data = validate_values(BulkFixIn, bulk_fix_values(form) | {"reason": "preview"}, nested=NESTED)
        shown = bulk_fixes.preview(session, data=data, blindfold=blindfold)
    except Invalid as error:
        return render(request, "bulk_fixes/_preview.html", preview=None, **form_feedback(error))
    return render(request, "bulk_fixes/_preview.html", preview=shown, **form_feedback(None))


@router.post("", dependencies=[ANY_ROLE])
def propose(request: Request, session: SessionDep, user: CurrentUser, blindfold: BlindfoldDep, form: FormDep):
    values = bulk_fix_values(form)
    try:
        data = validate_values(BulkFixIn, values, nested=NESTED)
        fix = bulk_fixes.propose(session, data=data, author_id=user.id, blindfold=blindfold,
                                 self_accept_allowed=settings_of(request).corrections_self_accept)
    except (Invalid, Conflict) as error:
        return _form(request, session, _flat(form), error)
    return see_other(request, f"/bulk-fixes/{fix.id}")


@router.get("/{fix_id}", dependencies=[ANY_ROLE])
def bulk_fix_page(request: Request, session: SessionDep, blindfold: BlindfoldDep, fix_id: RowId):
    return _page(request, session, bulk_fixes.get(session, fix_id=fix_id), blindfold)


@router.get("/{fix_id}/status", dependencies=[ANY_ROLE])
def bulk_fix_status(request: Request, session: SessionDep, fix_id: RowId):
    """The live progress of an accepted fix, polled by its page until the job ends."""
    fix = bulk_fixes.get(session, fix_id=fix_id)
    return render(request, "bulk_fixes/_status.html", fix=fix, **_job_of(session, fix))


@router.post("/{fix_id}/decision", dependencies=[REVIEWERS])
def decide(request: Request, session: SessionDep, user: CurrentUser, blindfold: BlindfoldDep, form: FormDep,
           fix_id: RowId):
    try:
        data = validate_form(BulkDecisionIn, form, optional=("comment",))
        bulk_fixes.decide(session, fix_id=fix_id, data=data, user_id=user.id, blindfold=blindfold)
    except (Invalid, Conflict) as error:
        return _page(request, session, bulk_fixes.get(session, fix_id=fix_id), blindfold, error,
                     values=dict(form))
    return see_other(request, f"/bulk-fixes/{fix_id}")


@router.post("/{fix_id}/withdraw", dependencies=[ANY_ROLE])
def withdraw(request: Request, session: SessionDep, user: CurrentUser, fix_id: RowId):
    bulk_fixes.withdraw(session, fix_id=fix_id, user_id=user.id)
    return see_other(request, f"/bulk-fixes/{fix_id}")


@router.post("/{fix_id}/resume", dependencies=[ANY_ROLE])
def resume(request: Request, session: SessionDep, user: CurrentUser, fix_id: RowId):
    bulk_fixes.resume(session, fix_id=fix_id, user_id=user.id)
    return see_other(request, f"/bulk-fixes/{fix_id}")


@router.post("/{fix_id}/undo", dependencies=[ANY_ROLE])
def propose_undo(request: Request, session: SessionDep, user: CurrentUser, blindfold: BlindfoldDep, form: FormDep,
                 fix_id: RowId):
    """Proposes the undo as a bulk fix of its own, for a second person to review."""
    reason = str(form.get("reason", "")).strip()
    try:
        if not reason:
            raise Invalid("Say why the fix is undone.", fields={"undo_reason": "required"})
        undo = bulk_fixes.propose_undo(session, fix_id=fix_id, reason=reason, author_id=user.id, blindfold=blindfold)
    except (Invalid, Conflict) as error:
        return _page(request, session, bulk_fixes.get(session, fix_id=fix_id), blindfold, error)
    return see_other(request, f"/bulk-fixes/{undo.id}")


@router.get("/{fix_id}/report.csv", dependencies=[ANY_ROLE])
def report(session: SessionDep, blindfold: BlindfoldDep, fix_id: RowId):
    """Every instance of the fix with its change and what became of it, one row a field changed."""
    fix = bulk_fixes.get(session, fix_id=fix_id)

    def rows() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["instance_id", "task", "source_id", "field", "before", "after", "outcome", "validation",
                         "refusal"])
        for item in bulk_fixes.report(session, fix=fix, blindfold=blindfold):
            for name, change in item.changes.items():
                writer.writerow([item.instance_id, item.task_name, item.source_id, name, _cell(change["before"]),
                                 _cell(change["after"]), item.outcome, item.validation, item.refusal or ""])
            yield out.getvalue()
            out.seek(0)
            out.truncate()

    return StreamingResponse(rows(), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="bulk-fix-{fix.id}.csv"'})


def _cell(value: object) -> str:
    """A value as a CSV cell; one a spreadsheet would run as a formula starts with a quote instead."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return f"'{text}" if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


def _form(request: Request, session, values: dict, error: Invalid | Conflict | None = None):
    return render(request, "bulk_fixes/new.html", values=values, tasks=task_service.choices(session),
                  statuses=STATUSES, splits=SPLITS, self_accept=settings_of(request).corrections_self_accept,
                  preview=None, **form_feedback(error))


def _page(request: Request, session, fix: BulkFix, blindfold, error: Invalid | Conflict | None = None,
          values: dict | None = None):
    undone_by = bulk_fixes.undone_by(session, fix_id=fix.id)
    return render(request, "bulk_fixes/detail.html", fix=fix,
                  preview=bulk_fixes.stored_preview(session, fix=fix, blindfold=blindfold),
                  description=_described(fix), undone_by=undone_by, values=values or {},
                  names=users.display_names(session, user_ids=[fix.author_id, fix.reviewer_id]),
                  **_job_of(session, fix), **form_feedback(error))


def _job_of(session, fix: BulkFix) -> dict:
    job = job_service.get_job(session, job_id=fix.job_id) if fix.job_id else None
    return {"job": job, "terminal": job is None or job.status in job_service.TERMINAL}


def _described(fix: BulkFix) -> str:
    """The fix in a line: what it changes, on which instances."""
    if fix.undoes_id:
        return f"Undo of bulk fix #{fix.undoes_id}"
    query = BulkQuery.model_validate(fix.query)
    picked = [f"{len(query.task_ids)} task{'s' if len(query.task_ids) != 1 else ''}"]
    picked += [f"{name} {value}" for name, value in (("status", query.status), ("split", query.split)) if value]
    picked += ["suspects only"] if query.suspects_only else []
    picked += [f"matching “{query.q}”"] if query.q else []
    return f"{CHANGES.validate_python(fix.change).describe().capitalize()} · {', '.join(picked)}"


def _flat(form) -> dict:
    """The form's values to show again after a refusal."""
    return {**{key: value for key, value in form.items()}, "task_ids": form.getlist("task_ids"),
            "whole_value": "whole_value" in form, "include_validation": "include_validation" in form,
            "suspects_only": "suspects_only" in form}
