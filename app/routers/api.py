"""JSON API under /api/v1: the same resources as the pages, for scripts (Authorization: Bearer <token>)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.core.failures import Forbidden
from app.schemas import (
    API_ERRORS,
    DatasetIn,
    DatasetOut,
    Page,
    TaskOut,
    TokenCreate,
    TokenCreated,
    UserCreate,
    UserOut,
    UserUpdate,
)
from app.services import datasets as dataset_service
from app.services import tasks as task_service
from app.services import users as user_service
from app.web.deps import (
    ADMIN,
    ANY_ROLE,
    EDITORS,
    SIGNED_IN,
    STRICT_QUERY,
    CurrentPrincipal,
    CurrentUser,
    RowId,
    SessionDep,
    TaskFiltersDep,
    settings_of,
)

router = APIRouter(prefix="/api/v1", tags=["api"], responses=API_ERRORS,
                   dependencies=[STRICT_QUERY])



@router.get("/me", dependencies=[SIGNED_IN], response_model=UserOut)
def me(session: SessionDep, principal: CurrentPrincipal):
    return user_service.to_out(session, principal.user)


@router.post("/me/tokens", dependencies=[SIGNED_IN], response_model=TokenCreated, status_code=201)
def create_my_token(session: SessionDep, principal: CurrentPrincipal, data: TokenCreate):
    """From a signed-in browser session only: a token cannot mint tokens (they would outlive its revocation)."""
    if principal.via_token:
        raise Forbidden("An API token cannot make tokens: make one from your account page or a signed-in session.")
    row, token = user_service.create_token(session, user_id=principal.user.id, name=data.name,
                                           actor_id=principal.user.id, expires_in_days=data.expires_in_days)
    return TokenCreated(id=row.id, name=row.name, token=token, expires_at=row.expires_at)


@router.get("/tasks", dependencies=[ANY_ROLE], response_model=Page[TaskOut])
def list_tasks(request: Request, session: SessionDep, filters: TaskFiltersDep,
               after: Annotated[str | None, Query(max_length=200)] = None,
               limit: Annotated[int | None, Query(ge=1, le=500)] = None):
    page = task_service.list_tasks(session, filters=filters, after=after,
                                   limit=limit or settings_of(request).page_size)
    return Page[TaskOut](items=[TaskOut.model_validate(task) for task in page.tasks], next_after=page.next_after)


@router.get("/tasks/{task_id}", dependencies=[ANY_ROLE], response_model=TaskOut)
def get_task(session: SessionDep, task_id: RowId):
    return task_service.get_task(session, task_id=task_id)


@router.get("/datasets", dependencies=[ANY_ROLE], response_model=list[DatasetOut])
def list_datasets(session: SessionDep):
    return [dataset for dataset, _ in dataset_service.list_datasets(session)]


@router.post("/datasets", dependencies=[EDITORS], response_model=DatasetOut, status_code=201)
def create_dataset(session: SessionDep, user: CurrentUser, data: DatasetIn):
    return dataset_service.create_dataset(session, data=data, actor_id=user.id)


@router.get("/datasets/{dataset_id}", dependencies=[ANY_ROLE], response_model=DatasetOut)
def get_dataset(session: SessionDep, dataset_id: RowId):
    return dataset_service.get_dataset(session, dataset_id=dataset_id)


@router.put("/datasets/{dataset_id}", dependencies=[EDITORS], response_model=DatasetOut)
def update_dataset(session: SessionDep, user: CurrentUser, dataset_id: RowId, data: DatasetIn):
    return dataset_service.update_dataset(session, dataset_id=dataset_id, data=data, actor_id=user.id)


@router.get("/users", dependencies=[ADMIN], response_model=list[UserOut])
def list_users(session: SessionDep):
    return [user_service.to_out(session, user) for user in user_service.list_users(session)]


@router.post("/users", dependencies=[ADMIN], response_model=UserOut, status_code=201,
             responses={201: {"description": "Created. A generated password is never returned by the API: "
                                             "pass `password`, or reset it from the admin page."}})
def create_user(session: SessionDep, actor: CurrentUser, data: UserCreate):
    user, _ = user_service.create_user(session, data=data, actor_id=actor.id)
    return user_service.to_out(session, user)


@router.get("/users/{user_id}", dependencies=[ADMIN], response_model=UserOut)
def get_user(session: SessionDep, user_id: RowId):
    return user_service.to_out(session, user_service.get_user(session, user_id=user_id))


@router.patch("/users/{user_id}", dependencies=[ADMIN], response_model=UserOut)
def update_user(session: SessionDep, actor: CurrentUser, user_id: RowId, data: UserUpdate):
    return user_service.to_out(session, user_service.update_user(session, user_id=user_id, data=data,
                                                                 actor_id=actor.id))
