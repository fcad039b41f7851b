"""Signing in and out."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request

from app.deps import PUBLIC, SIGNED_IN, SessionDep
from app.failures import TooManyRequests
from app.services import users as user_service
from app.templating import render, see_other

router = APIRouter(tags=["pages"], include_in_schema=False)

WRONG_CREDENTIALS = "Email or password is not correct."


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never send someone to another host after signing in."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@router.get("/login", dependencies=[PUBLIC])
def login_page(request: Request, next: str | None = None):
    return render(request, "login.html", next=_safe_next(next), email="", error=None)


@router.post("/login", dependencies=[PUBLIC])
def login(request: Request, session: SessionDep, email: Annotated[str, Form()] = "",
          password: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/"):
    throttle = request.app.state.login_throttle
    address = request.client.host if request.client else "unknown"
    wait = throttle.retry_after(address)
    if wait:
        raise TooManyRequests(f"Too many failed sign-ins from your address; try again in {wait} s.",
                              headers={"Retry-After": str(wait)})
    user = user_service.authenticate(session, email=email, password=password)
    if user is None:
        throttle.failed(address)
        return render(request, "login.html", status_code=401, next=_safe_next(next), email=email,
                      error=WRONG_CREDENTIALS)
    throttle.succeeded(address)
    request.session.clear()  # a new session on sign-in: no fixation
    request.session.update({"uid": user.id, "epoch": user.auth_epoch})
    return see_other(request, _safe_next(next))


@router.post("/logout", dependencies=[SIGNED_IN])
def logout(request: Request):
    request.session.clear()
    return see_other(request, "/login")
