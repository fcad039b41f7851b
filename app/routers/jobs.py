"""A job's page and its status fragment, which polls itself until the job ends."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.deps import ANY_ROLE, CurrentUser, RowId, SessionDep, require_role
from app.models import Role
from app.services import jobs as job_service
from app.templating import render

router = APIRouter(prefix="/jobs", tags=["pages"], include_in_schema=False)


def _context(session, job) -> dict:
    curve = job_service.loss_curve(job_service.metrics_of(session, job_id=job.id)) if job.kind == "finetune" else None
    return {"job": job, "terminal": job.status in job_service.TERMINAL, "curve": curve}


@router.get("/{job_id}", dependencies=[ANY_ROLE])
def job_page(request: Request, session: SessionDep, job_id: RowId):
    return render(request, "jobs/page.html", **_context(session, job_service.get_job(session, job_id=job_id)))


@router.get("/{job_id}/status", dependencies=[ANY_ROLE])
def job_status(request: Request, session: SessionDep, job_id: RowId):
    return render(request, "jobs/_status.html", **_context(session, job_service.get_job(session, job_id=job_id)))


@router.post("/{job_id}/cancel", dependencies=[require_role(Role.admin, Role.author)])
def cancel_job(request: Request, session: SessionDep, user: CurrentUser, job_id: RowId):
    job = job_service.cancel(session, job_id=job_id, actor_id=user.id)
    return render(request, "jobs/_status.html", job=job, terminal=job.status in job_service.TERMINAL)
