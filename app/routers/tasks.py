"""Task pages: the filtered list and one task."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.deps import ANY_ROLE, SessionDep
from app.errors import Invalid
from app.services import audit, datasets as dataset_service, tasks as task_service
from app.services.tasks import TaskFilters
from app.templating import render

router = APIRouter(prefix="/tasks", tags=["pages"], include_in_schema=False, dependencies=[ANY_ROLE])


def task_filters(q: str | None = None, group: str | None = None, category: str | None = None,
                 status: str | None = None, dataset: str | None = None) -> TaskFilters:
    """Filters from the query; an empty value (a menu left at "any") means no filter."""
    if dataset and not dataset.isdigit():
        raise Invalid("The dataset filter must be a dataset id.", fields={"dataset": "must be a number"})
    return TaskFilters(q=q or None, task_group=group or None, category=category or None, status=status or None,
                       source_dataset_id=int(dataset) if dataset else None)


FiltersDep = Annotated[TaskFilters, Depends(task_filters)]


@router.get("")
def task_list(request: Request, session: SessionDep, filters: FiltersDep,
              after: Annotated[str | None, Query(max_length=200)] = None,
              before: Annotated[str | None, Query(max_length=200)] = None):
    page = task_service.list_tasks(session, filters=filters, after=after, before=before,
                                   limit=request.app.state.settings.page_size)
    return render(request, "tasks/page.html", "tasks/_table.html", page=page, filters=filters,
                  facets=task_service.facet_values(session), datasets=dataset_service.list_datasets(session))


@router.get("/{task_id}")
def task_detail(request: Request, session: SessionDep, task_id: int):
    task = task_service.get_task(session, task_id=task_id)
    dataset = (dataset_service.get_dataset(session, dataset_id=task.source_dataset_id)
               if task.source_dataset_id else None)
    return render(request, "tasks/detail.html", task=task, dataset=dataset,
                  instructions=task_service.instructions_of(session, task_id=task.id),
                  events=audit.recent(session, entity_type="task", entity_id=task.id, limit=20))
