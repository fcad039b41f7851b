"""Signing in and out."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request

from app.services import sign_in_throttle
from app.services import users as user_service
from app.web.deps import PUBLIC, SIGNED_IN, SessionDep, client_address, settings_of
from app.web.templating import render, see_other

router = APIRouter(tags=["pages"], include_in_schema=False)

WRONG_CREDENTIALS = "Email or password is not correct."


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never send someone to another host after signing in. Browsers read a
    backslash as a slash (`/\\evil.com` is `//evil.com`, another host) and drop tabs and newlines, so a target
    with any of them goes home instead."""
    if not target or not target.startswith("/") or any(char == "\\" or ord(char) < 32 for char in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return "/"
    return target


@router.get("/login", dependencies=[PUBLIC])
def login_page(request: Request, next: str | None = None):
    return render(request, "login.html", next=_safe_next(next), email="", error=None)


@router.post("/login", dependencies=[PUBLIC])
def login(request: Request, session: SessionDep, email: Annotated[str, Form()] = "",
          password: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/"):
    attempt = sign_in_throttle.begin(session, address=client_address(request), email=email,
                                     limits=sign_in_throttle.Limits.from_settings(settings_of(request)))
    user = user_service.authenticate(session, email=email, password=password)
    if user is None:
        sign_in_throttle.failed(session, attempt)
        return render(request, "login.html", status_code=401, next=_safe_next(next), email=email,
                      error=WRONG_CREDENTIALS)
    sign_in_throttle.succeeded(session, attempt)
    request.session.clear()  # a new session on sign-in: no fixation
    request.session.update({"uid": user.id, "epoch": user.auth_epoch,
                            "sid": user_service.start_session(session, user_id=user.id)})
    return see_other(request, _safe_next(next))


@router.post("/logout", dependencies=[SIGNED_IN])
def logout(request: Request, session: SessionDep):
    """Ends this session on the server (a copy of its cookie stops working); other devices stay signed in."""
    user_service.end_session(session, token=request.session.pop("sid", None))
    request.session.clear()
    return see_other(request, "/login")
