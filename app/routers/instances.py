"""The instance browser: a task's instances as a filtered grid of thumbnails, and one instance."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from app.services import instances as instance_service
from app.services import tasks as task_service
from app.services.instances import InstanceFilters
from app.web.deps import ANY_ROLE, BlindfoldDep, RowId, SessionDep, settings_of
from app.web.templating import render

router = APIRouter(tags=["pages"], include_in_schema=False, dependencies=[ANY_ROLE])


def instance_filters(split: Annotated[str | None, Query(max_length=20)] = None,
                     status: Annotated[str | None, Query(max_length=20)] = None,
                     q: Annotated[str | None, Query(max_length=200)] = None,
                     order: Annotated[Literal["id", "doubt", "suspects"] | None, Query()] = None) -> InstanceFilters:
    return InstanceFilters(split=split or None, status=status or None, q=q or None,
                           order=None if order == "id" else order)


@router.get("/tasks/{task_id}/instances")
def instance_grid(request: Request, session: SessionDep, blindfold: BlindfoldDep, task_id: RowId,
                  filters: Annotated[InstanceFilters, Depends(instance_filters)],
                  after: Annotated[int | None, Query(ge=0)] = None):
    task = task_service.get_task(session, task_id=task_id)
    page = instance_service.list_instances(session, task_id=task.id, filters=filters, after=after,
                                           limit=settings_of(request).page_size, blindfold=blindfold)
    return render(request, "instances/page.html", "instances/_grid.html", task=task, page=page, filters=filters,
                  blindfold=blindfold)


@router.get("/instances/{instance_id}")
def instance_detail(request: Request, session: SessionDep, blindfold: BlindfoldDep, instance_id: RowId):
    instance, image = instance_service.get_instance(session, instance_id=instance_id)
    task = task_service.get_task(session, task_id=instance.task_id)
    return render(request, "instances/detail.html", instance=instance, image=image, task=task, blindfold=blindfold)
