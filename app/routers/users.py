"""User administration (admins only): list, create, change roles, deactivate, reset a password."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.core.failures import Conflict, Invalid
from app.models import Role
from app.schemas import UserCreate, UserUpdate
from app.services import audit
from app.services import users as user_service
from app.web.deps import ADMIN, CurrentUser, RowId, SessionDep
from app.web.forms import FormDep, form_feedback, validate_form
from app.web.templating import render, see_other

router = APIRouter(prefix="/admin/users", tags=["pages"], include_in_schema=False,
                   dependencies=[ADMIN])


@router.get("")
def user_list(request: Request, session: SessionDep):
    users = user_service.list_users(session)
    return render(request, "users/page.html", users=[user_service.to_out(session, u) for u in users])


@router.get("/new")
def new_user(request: Request):
    return _create_form(request, values={})


@router.post("")
def create_user(request: Request, session: SessionDep, actor: CurrentUser, form: FormDep):
    try:
        data = validate_form(UserCreate, form, lists=("roles",), checkboxes=("native_english",))
        user, generated = user_service.create_user(session, data=data, actor_id=actor.id)
    except (Invalid, Conflict) as error:
        return _create_form(request, values=form, error=error)
    return _detail(request, session, user.id, new_password=generated, status_code=201)


@router.get("/{user_id}")
def user_detail(request: Request, session: SessionDep, user_id: RowId):
    return _detail(request, session, user_id)


@router.post("/{user_id}")
def update_user(request: Request, session: SessionDep, actor: CurrentUser, form: FormDep, user_id: RowId):
    try:
        data = validate_form(UserUpdate, form, lists=("roles",), checkboxes=("is_active", "native_english"))
        user_service.update_user(session, user_id=user_id, data=data, actor_id=actor.id)
    except (Invalid, Conflict) as error:
        return _detail(request, session, user_id, error=error)
    return see_other(request, f"/admin/users/{user_id}")


@router.post("/{user_id}/password")
def reset_password(request: Request, session: SessionDep, actor: CurrentUser, user_id: RowId):
    generated = user_service.set_password(session, user_id=user_id, password=None, actor_id=actor.id)
    return _detail(request, session, user_id, new_password=generated)


def _create_form(request: Request, *, values, error: Invalid | Conflict | None = None):
    return render(request, "users/new.html", "users/_new_form.html", values=values, all_roles=list(Role),
                  **form_feedback(error))


def _detail(request: Request, session: SessionDep, user_id: int, *, new_password: str | None = None,
            error: Invalid | Conflict | None = None, status_code: int = 200):
    user = user_service.get_user(session, user_id=user_id)
    return render(request, "users/detail.html", account=user_service.to_out(session, user), all_roles=list(Role),
                  new_password=new_password, **form_feedback(error, status_code=status_code),
                  events=audit.recent(session, entity_type="user", entity_id=user.id, limit=20))
