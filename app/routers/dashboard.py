"""The dashboard: where the work stands (tasks by status, quality per task, reviewers, queues), and what
waits for me."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.core import access
from app.core.db import ping
from app.core.failures import Invalid
from app.services import audit, quality_figures, queues
from app.services import tasks as task_service
from app.web.deps import ANY_ROLE, PUBLIC, CurrentPrincipal, SessionDep, qc_defaults_of, settings_of
from app.web.templating import render

router = APIRouter(tags=["pages"], include_in_schema=False)
QUEUE_COUNT_CAP = 99  # the dashboard says "99+" rather than count an open spot check of 10,000 on every view


@router.get("/", dependencies=[ANY_ROLE])
def dashboard(request: Request, session: SessionDep, principal: CurrentPrincipal, group: str | None = None,
              category: str | None = None, annotator: str | None = None,
              after: Annotated[str | None, Query(max_length=200)] = None,
              before: Annotated[str | None, Query(max_length=200)] = None):
    if annotator and not annotator.isdigit():
        raise Invalid("The annotator filter must be a user id.", fields={"annotator": "must be a number"})
    filters = quality_figures.QualityFilters(task_group=group or None, category=category or None,
                                     annotator_id=int(annotator) if annotator else None)
    by_status = task_service.counts_by_status(session)
    return render(
        request,
        "dashboard/page.html",
        by_status=by_status,
        total_tasks=sum(by_status.values()),
        queues=queues.overview(session, reviewer=principal.user if principal.may(access.REVIEWERS) else None,
                               cap=QUEUE_COUNT_CAP,
                               reviewer_may_verify=settings_of(request).verifier_may_be_reviewer),
        quality=quality_figures.page(session, filters=filters, after=after, before=before,
                             limit=settings_of(request).page_size),
        filters=filters,
        facets=task_service.facet_values(session),
        annotators=quality_figures.annotators(session),
        throughput=quality_figures.throughput(session),
        max_error_rate=qc_defaults_of(request).max_error_rate,
        events=audit.recent(session, limit=12),
    )


@router.get("/healthz", dependencies=[PUBLIC])
def health(session: SessionDep) -> dict[str, str]:
    ping(session)  # the database answers
    return {"status": "ok"}
