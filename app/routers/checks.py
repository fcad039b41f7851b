"""A task's quality checks: opening solve tests and spot checks, their results, the task's history and
its status by hand (retire, reopen)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.models import QcStatus
from app.schemas import SolveTestIn, SpotCheckIn, TaskStatusIn
from app.services import audit, checks, solve_tests, spot_checks, task_states
from app.services import tasks as task_service
from app.web.deps import (
    ADMIN,
    ANY_ROLE,
    QC_OPENERS,
    CurrentPrincipal,
    CurrentUser,
    RowId,
    SessionDep,
    qc_defaults_of,
)
from app.web.forms import FormDep, validate_form
from app.web.templating import render, see_other

router = APIRouter(tags=["pages"], include_in_schema=False)
HISTORY_PAGE = 50


@router.post("/tasks/{task_id}/solve-tests", dependencies=[QC_OPENERS])
def open_solve_test(request: Request, session: SessionDep, principal: CurrentPrincipal, form: FormDep,
                    task_id: RowId):
    test = solve_tests.open_requested(
        session, task_id=task_id, actor_id=principal.user.id, is_admin=principal.is_admin,
        defaults=qc_defaults_of(request),
        data=validate_form(SolveTestIn, form, optional=("size", "pass_threshold", "seed", "reason")))
    return see_other(request, f"/solve-tests/{test.id}")


@router.post("/tasks/{task_id}/spot-checks", dependencies=[QC_OPENERS])
def open_spot_check(request: Request, session: SessionDep, principal: CurrentPrincipal, form: FormDep,
                    task_id: RowId):
    data = validate_form(SpotCheckIn, form, checkboxes=("double_review",),
                         optional=("size", "max_error_rate", "expected_error_rate", "seed", "targeted_by_model_id",
                                   "uniform_share", "reason"))
    check = spot_checks.open_requested(session, task_id=task_id, data=data, actor_id=principal.user.id,
                                       defaults=qc_defaults_of(request),
                                       is_admin=principal.is_admin)
    return see_other(request, f"/spot-checks/{check.id}")


@router.get("/solve-tests/{test_id}", dependencies=[ANY_ROLE])
def solve_test_page(request: Request, session: SessionDep, test_id: RowId):
    test = checks.get(session, checks.SOLVE, check_id=test_id)
    return render(request, "quality/solve_test.html", test=test, figures=solve_tests.figures(session, test=test),
                  items=checks.items_of(session, checks.SOLVE, check_id=test.id),
                  task=task_service.get_task(session, task_id=test.task_id),
                  # While it runs the targets stay hidden: anyone reading this page may be a solver next.
                  show_targets=test.status != QcStatus.open)


@router.get("/spot-checks/{check_id}", dependencies=[ANY_ROLE])
def spot_check_page(request: Request, session: SessionDep, check_id: RowId):
    check = checks.get(session, checks.SPOT, check_id=check_id)
    return render(request, "quality/spot_check.html", check=check, figures=spot_checks.figures(session, check=check),
                  items=checks.items_of(session, checks.SPOT, check_id=check.id),
                  task=task_service.get_task(session, task_id=check.task_id))


@router.get("/tasks/{task_id}/history", dependencies=[ANY_ROLE])
def task_history(request: Request, session: SessionDep, task_id: RowId,
                 before: Annotated[int | None, Query(ge=1)] = None):
    """Everything recorded about the task, newest first, a page at a time."""
    task = task_service.get_task(session, task_id=task_id)
    events = audit.recent(session, task_id=task.id, limit=HISTORY_PAGE + 1, before_id=before)
    return render(request, "quality/history.html", task=task, events=events[:HISTORY_PAGE],
                  older=events[HISTORY_PAGE - 1].event.id if len(events) > HISTORY_PAGE else None)


@router.post("/tasks/{task_id}/status", dependencies=[ADMIN])
def set_status(request: Request, session: SessionDep, user: CurrentUser, form: FormDep, task_id: RowId):
    data = validate_form(TaskStatusIn, form)
    task_states.set_status_by_hand(session, task_id=task_id, to=data.status, actor_id=user.id, reason=data.reason)
    return see_other(request, f"/tasks/{task_id}")
