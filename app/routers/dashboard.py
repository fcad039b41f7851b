"""The dashboard: where the work stands, and what waits for me."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlmodel import select

from app.deps import ANY_ROLE, PUBLIC, CurrentUser, SessionDep
from app.services import audit, queues
from app.services import tasks as task_service
from app.templating import render

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/", dependencies=[ANY_ROLE])
def dashboard(request: Request, session: SessionDep, user: CurrentUser):
    by_status = task_service.counts_by_status(session)
    return render(
        request,
        "dashboard/page.html",
        by_status=by_status,
        total_tasks=sum(by_status.values()),
        my_queues=queues.counts_for(session, user_id=user.id),
        events=audit.recent(session, limit=12),
    )


@router.get("/healthz", dependencies=[PUBLIC])
def health(session: SessionDep) -> dict[str, str]:
    session.exec(select(1)).one()  # the database answers
    return {"status": "ok"}
