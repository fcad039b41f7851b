"""Source dataset pages: list, register, edit."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.core.failures import Conflict, Invalid
from app.schemas import DatasetIn
from app.services import datasets as dataset_service
from app.services import users as user_service
from app.services.tasks import TaskFilters, list_tasks
from app.web.deps import ANY_ROLE, EDITORS, CurrentUser, RowId, SessionDep
from app.web.forms import FormDep, form_feedback, validate_form
from app.web.templating import render, see_other

router = APIRouter(prefix="/datasets", tags=["pages"], include_in_schema=False)


@router.get("", dependencies=[ANY_ROLE])
def dataset_list(request: Request, session: SessionDep):
    return render(request, "datasets/page.html", rows=dataset_service.list_datasets(session),
                  users={u.id: u for u in user_service.list_users(session)})


@router.get("/new", dependencies=[EDITORS])
def new_dataset(request: Request, session: SessionDep):
    return _form(request, session, values={}, dataset=None)


@router.post("", dependencies=[EDITORS])
def create_dataset(request: Request, session: SessionDep, user: CurrentUser, form: FormDep):
    try:
        data = validate_form(DatasetIn, form, optional=("annotator_id",))
        dataset = dataset_service.create_dataset(session, data=data, actor_id=user.id)
    except (Invalid, Conflict) as error:
        return _form(request, session, values=form, dataset=None, error=error)
    return see_other(request, f"/datasets/{dataset.id}")


@router.get("/{dataset_id}", dependencies=[ANY_ROLE])
def dataset_detail(request: Request, session: SessionDep, dataset_id: RowId):
    dataset = dataset_service.get_dataset(session, dataset_id=dataset_id)
    annotator = user_service.get_user(session, user_id=dataset.annotator_id) if dataset.annotator_id else None
    tasks = list_tasks(session, filters=TaskFilters(source_dataset_id=dataset.id), limit=500)
    return render(request, "datasets/detail.html", dataset=dataset, annotator=annotator, page=tasks)


@router.get("/{dataset_id}/edit", dependencies=[EDITORS])
def edit_dataset(request: Request, session: SessionDep, dataset_id: RowId):
    dataset = dataset_service.get_dataset(session, dataset_id=dataset_id)
    return _form(request, session, values=dataset.model_dump(), dataset=dataset)


@router.post("/{dataset_id}", dependencies=[EDITORS])
def update_dataset(request: Request, session: SessionDep, user: CurrentUser, form: FormDep, dataset_id: RowId):
    dataset = dataset_service.get_dataset(session, dataset_id=dataset_id)
    try:
        data = validate_form(DatasetIn, form, optional=("annotator_id",))
        dataset_service.update_dataset(session, dataset_id=dataset_id, data=data, actor_id=user.id)
    except (Invalid, Conflict) as error:
        return _form(request, session, values=form, dataset=dataset, error=error)
    return see_other(request, f"/datasets/{dataset_id}")


def _form(request: Request, session, *, values, dataset, error: Invalid | Conflict | None = None):
    """The form page (or, for htmx, the form alone), with each field's problem beside it."""
    return render(request, "datasets/form.html", "datasets/_form.html", values=values, dataset=dataset,
                  users=user_service.list_users(session), **form_feedback(error))
