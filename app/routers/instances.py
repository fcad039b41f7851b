"""The instance browser: a task's instances as a filtered grid of thumbnails, and one instance with its fixes
(the Correct form, a finding's dismissal, the history of its revisions)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from app.core.failures import Conflict, Invalid
from app.schemas.revisions import SPLITS, DismissalIn, InstanceFixIn, SuggestionIn
from app.services import instance_revisions, revisions
from app.services import instances as instance_service
from app.services import tasks as task_service
from app.services.instances import InstanceFilters
from app.web.deps import ANY_ROLE, BlindfoldDep, CurrentUser, RowId, SessionDep, settings_of
from app.web.fixes import fix_values
from app.web.forms import FormDep, form_feedback, validate_form, validate_values
from app.web.templating import is_htmx, render, see_other

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
    return _detail(request, session, blindfold, instance_id)


@router.post("/instances/{instance_id}/fix")
def propose_fix(request: Request, session: SessionDep, user: CurrentUser, blindfold: BlindfoldDep, form: FormDep,
                instance_id: RowId):
    """The Correct form: the fix waits for a second person in the corrections queue (or, where the studio lets
    authors accept their own and the box is ticked, applies at once)."""
    try:
        data = validate_values(InstanceFixIn, fix_values(form))
        if data.accept and not settings_of(request).corrections_self_accept:
            raise Invalid("This studio has a second person accept every fix.", fields={"accept": "not allowed"})
        instance_revisions.propose_fix(session, instance_id=instance_id, data=data, author_id=user.id,
                                       blindfold=blindfold, accept_now=data.accept)
    except (Invalid, Conflict) as error:
        return _detail(request, session, blindfold, instance_id, values=dict(form), **form_feedback(error))
    return see_other(request, f"/instances/{instance_id}#fixes")


@router.post("/instances/{instance_id}/suggestion")
def propose_suggestion(request: Request, session: SessionDep, user: CurrentUser, blindfold: BlindfoldDep,
                       form: FormDep, instance_id: RowId):
    """One button (on the instance page, or beside a doubtful instance in the grid): the model's suggestion as a
    proposed fix, for a second person to decide."""
    data = validate_form(SuggestionIn, form)
    try:
        instance_revisions.propose_suggestion(session, instance_id=instance_id, lock_version=data.lock_version,
                                              model_id=data.model_id, author_id=user.id, blindfold=blindfold)
    except (Invalid, Conflict) as error:
        if is_htmx(request):
            raise
        return _detail(request, session, blindfold, instance_id, **form_feedback(error))
    if is_htmx(request):  # from the grid: the card says so in place
        return render(request, "instances/_proposed.html", instance_id=instance_id)
    return see_other(request, f"/instances/{instance_id}#fixes")


@router.post("/instances/{instance_id}/dismiss")
def dismiss_finding(request: Request, session: SessionDep, user: CurrentUser, blindfold: BlindfoldDep,
                    form: FormDep, instance_id: RowId):
    try:
        data = validate_form(DismissalIn, form)
        instance_revisions.dismiss_finding(session, instance_id=instance_id, lock_version=data.lock_version,
                                           reason=data.reason, author_id=user.id, blindfold=blindfold,
                                           origin=revisions.MANUAL)
    except (Invalid, Conflict) as error:
        return _detail(request, session, blindfold, instance_id, **form_feedback(error))
    return see_other(request, f"/instances/{instance_id}#fixes")


@router.post("/revisions/{revision_id}/withdraw")
def withdraw(request: Request, session: SessionDep, user: CurrentUser, revision_id: RowId):
    revision = revisions.withdraw(session, revision_id=revision_id, user_id=user.id)
    return see_other(request, f"/instances/{revision.record_id}#fixes")


def _detail(request: Request, session, blindfold, instance_id: int, *, values: dict | None = None,
            status_code: int = 200, errors: dict | None = None, message: str | None = None):
    instance, image = instance_service.get_instance(session, instance_id=instance_id)
    task = task_service.get_task(session, task_id=instance.task_id)
    hidden = blindfold.hides(instance.id)
    return render(request, "instances/detail.html", status_code=status_code, instance=instance, image=image,
                  task=task, blindfold=blindfold, values=values or {}, errors=errors or {}, message=message,
                  history=[] if hidden else instance_revisions.history_entries(session, instance_id=instance.id),
                  suggestion=None if hidden else instance_revisions.suggestion_for(session, instance=instance),
                  self_accept=settings_of(request).corrections_self_accept, splits=SPLITS)
