"""My account: API tokens (shown once) and my password."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.core.failures import Invalid
from app.core.security import MIN_PASSWORD_LENGTH, verify_password
from app.schemas import TokenCreate
from app.services import sign_in_throttle
from app.services import users as user_service
from app.web.deps import SIGNED_IN, CurrentUser, RowId, SessionDep, client_address, settings_of
from app.web.forms import FormDep, form_feedback, validate_form
from app.web.templating import render, see_other

router = APIRouter(prefix="/account", tags=["pages"], include_in_schema=False, dependencies=[SIGNED_IN])


@router.get("")
def account(request: Request, session: SessionDep, user: CurrentUser):
    return _page(request, session, user)


@router.post("/tokens")
def create_token(request: Request, session: SessionDep, user: CurrentUser, form: FormDep):
    try:
        data = validate_form(TokenCreate, form, optional=("expires_in_days",))
        _, token = user_service.create_token(session, user_id=user.id, name=data.name, actor_id=user.id,
                                             expires_in_days=data.expires_in_days)
    except Invalid as error:
        return _page(request, session, user, error=error)
    return _page(request, session, user, new_token=token, status_code=201)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(request: Request, session: SessionDep, user: CurrentUser, token_id: RowId):
    user_service.revoke_token(session, token_id=token_id, user_id=user.id, actor_id=user.id)
    return see_other(request, "/account")


@router.post("/password")
def change_password(request: Request, session: SessionDep, user: CurrentUser, form: FormDep):
    current, new = str(form.get("current_password", "")), str(form.get("new_password", ""))
    # Guessing the current password here is guessing a password: counted like a sign-in.
    attempt = sign_in_throttle.begin(session, address=client_address(request), email=user.email,
                                     limits=sign_in_throttle.Limits.from_settings(settings_of(request)))
    if not verify_password(user.password_hash, current):
        sign_in_throttle.failed(session, attempt)
        error = Invalid("Your current password is not correct.", fields={"current_password": "not correct"})
        return _page(request, session, user, error=error)
    sign_in_throttle.succeeded(session, attempt)
    if len(new) < MIN_PASSWORD_LENGTH:
        error = Invalid("Choose a longer password.",
                        fields={"new_password": f"at least {MIN_PASSWORD_LENGTH} characters"})
        return _page(request, session, user, error=error)
    user_service.set_password(session, user_id=user.id, password=new, actor_id=user.id)
    request.session.update({"epoch": user.auth_epoch})  # stay signed in here; every other session ends
    return see_other(request, "/account")


def _page(request: Request, session: SessionDep, user, *, new_token: str | None = None,
          error: Invalid | None = None, status_code: int = 200):
    return render(request, "account/page.html", tokens=user_service.tokens_of(session, user_id=user.id),
                  new_token=new_token, **form_feedback(error, status_code=status_code))
