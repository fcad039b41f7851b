"""Task pages: the filtered list and one task."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.core.failures import Conflict, Invalid
from app.models import TaskGroup
from app.schemas import PreviewIn, ScoreIn, TaskMetadataIn
from app.services import audit, quality_figures
from app.services import datasets as dataset_service
from app.services import registered_models as model_service
from app.services import scores as score_service
from app.services import tasks as task_service
from app.services.qc import QcDefaults
from app.services.targeted_checks import DEFAULT_UNIFORM_SHARE
from app.web.deps import ANY_ROLE, EDITORS, CurrentPrincipal, RowId, SessionDep, TaskFiltersDep, settings_of
from app.web.forms import FormDep, defaults_of, form_feedback, validate_form
from app.web.templating import render, see_other

router = APIRouter(prefix="/tasks", tags=["pages"], include_in_schema=False)




@router.get("", dependencies=[ANY_ROLE])
def task_list(request: Request, session: SessionDep, filters: TaskFiltersDep,
              after: Annotated[str | None, Query(max_length=200)] = None,
              before: Annotated[str | None, Query(max_length=200)] = None):
    page = task_service.list_tasks(session, filters=filters, after=after, before=before,
                                   limit=settings_of(request).page_size)
    return render(request, "tasks/page.html", "tasks/_table.html", page=page, filters=filters,
                  facets=task_service.facet_values(session), datasets=dataset_service.dataset_names(session))


@router.get("/{task_id}/edit", dependencies=[EDITORS])
def edit_task(request: Request, session: SessionDep, task_id: RowId):
    task = task_service.get_task(session, task_id=task_id)
    return _form(request, session, task, values=task.model_dump())


@router.post("/{task_id}", dependencies=[EDITORS])
def update_task(request: Request, session: SessionDep, principal: CurrentPrincipal, form: FormDep, task_id: RowId):
    task = task_service.get_task(session, task_id=task_id)
    user = principal.user
    try:
        data = validate_form(TaskMetadataIn, form)
        if not principal.is_admin:  # exempting a task from the solve test is an admin's call
            data.solve_test_required = None
        task_service.update_metadata(session, task_id=task_id, data=data, actor_id=user.id)
    except (Invalid, Conflict) as error:
        return _form(request, session, task, values=form, error=error)
    return see_other(request, f"/tasks/{task_id}")


def _form(request: Request, session, task, *, values, error: Invalid | Conflict | None = None):
    """The metadata form; a 422 with messages beside the fields, or a 409 when someone saved first."""
    return render(request, "tasks/edit.html", "tasks/_form.html", task=task, values=values, **form_feedback(error),
                  groups=list(TaskGroup), categories=task_service.facet_values(session)["categories"])


@router.get("/{task_id}", dependencies=[ANY_ROLE])
def task_detail(request: Request, session: SessionDep, task_id: RowId):
    task = task_service.get_task(session, task_id=task_id)
    dataset = (dataset_service.get_dataset(session, dataset_id=task.source_dataset_id)
               if task.source_dataset_id else None)
    settings = settings_of(request)
    return render(request, "tasks/detail.html", task=task, dataset=dataset,
                  instructions=task_service.instructions_of(session, task_id=task.id),
                  quality=quality_figures.per_task(session, task_ids=[task.id])[0],
                  models=model_service.list_models(session),
                  scored_by=score_service.score_sets(session, task_id=task.id),
                  defaults=QcDefaults.from_settings(settings), uniform_share=DEFAULT_UNIFORM_SHARE,
                  preview=defaults_of(PreviewIn), scoring=defaults_of(ScoreIn),
                  events=audit.recent(session, task_id=task.id, limit=10))
