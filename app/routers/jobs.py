"""Jobs: the list (filtered by kind, status and who started them), one job's page and its status fragment,
which polls itself until the job ends and then shows its results in place."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.models import JobKind, JobStatus
from app.services import job_views
from app.services import jobs as job_service
from app.services import users as user_service
from app.web.deps import ANY_ROLE, BlindfoldDep, CurrentPrincipal, RowId, SessionDep, settings_of
from app.web.templating import render

router = APIRouter(prefix="/jobs", tags=["pages"], include_in_schema=False)


def job_filters(kind: Annotated[str | None, Query(max_length=40)] = None,
                status: Annotated[str | None, Query(max_length=20)] = None,
                by: Annotated[str | None, Query(pattern=r"^\d{0,9}$", description="A user id.")] = None,
                ) -> job_service.JobFilters:
    """Filters from the query; an empty value (a menu left at "any") means no filter."""
    return job_service.JobFilters(kind=kind or None, status=status or None, created_by_id=int(by) if by else None)


@router.get("", dependencies=[ANY_ROLE])
def job_list(request: Request, session: SessionDep, filters: Annotated[job_service.JobFilters, Depends(job_filters)],
             before: Annotated[str | None, Query(pattern=r"^\d{0,9}$")] = None):
    size = settings_of(request).page_size
    jobs = job_service.list_jobs(session, filters=filters, before_id=int(before) if before else None, limit=size + 1)
    return render(request, "jobs/list.html", "jobs/_table.html", jobs=jobs[:size],
                  names=job_views.subject_names(session, jobs[:size]),
                  older=jobs[size - 1].id if len(jobs) > size else None, filters=filters, kinds=tuple(JobKind),
                  statuses=list(JobStatus), users=user_service.list_users(session))


@router.get("/{job_id}", dependencies=[ANY_ROLE])
def job_page(request: Request, session: SessionDep, blindfold: BlindfoldDep, job_id: RowId):
    job = job_service.get_job(session, job_id=job_id)
    return render(request, "jobs/page.html", "jobs/_status.html", **job_views.job_context(session, job, blindfold))


@router.get("/{job_id}/status", dependencies=[ANY_ROLE])
def job_status(request: Request, session: SessionDep, blindfold: BlindfoldDep, job_id: RowId,
               reload_when_done: Annotated[bool, Query()] = False):
    """The status fragment, polled while the job runs. `reload_when_done`: the page around it shows what the job
    makes (a version's files), so once the job has ended the whole page is loaded again."""
    job = job_service.get_job(session, job_id=job_id)
    context = job_views.job_context(session, job, blindfold)
    headers = {"HX-Refresh": "true"} if reload_when_done and context["terminal"] else None
    return render(request, "jobs/_status.html", headers=headers, reload_when_done=reload_when_done, **context)


@router.post("/{job_id}/cancel", dependencies=[ANY_ROLE])
def cancel_job(request: Request, session: SessionDep, principal: CurrentPrincipal, blindfold: BlindfoldDep,
               job_id: RowId):
    """The job's owner or an admin, whatever else their roles."""
    job = job_service.cancel(session, job_id=job_id, actor_id=principal.user.id, is_admin=principal.is_admin)
    return render(request, "jobs/_status.html", **job_views.job_context(session, job, blindfold))
