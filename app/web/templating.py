"""HTML responses: a page, or just its fragment when htmx asks (the page includes the same fragment)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse, RedirectResponse, Response

from app.core.access import TEMPLATE_RULES
from app.core.security import new_csrf_token

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates"

templates = Jinja2Templates(directory=TEMPLATE_DIR)
templates.env.globals["urlencode"] = urlencode
templates.env.globals.update(TEMPLATE_RULES)
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use (also for signed-out visitors: the login form has one)."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = new_csrf_token()
    return token


def render(request: Request, template: str, fragment: str | None = None, *, status_code: int = 200,
           headers: dict | None = None, **context) -> HTMLResponse:
    # A boosted navigation wants the whole page; a widget's own request wants its fragment.
    wants_fragment = fragment and is_htmx(request) and request.headers.get("HX-Boosted") != "true"
    name = fragment if wants_fragment else template
    principal = getattr(request.state, "principal", None)
    response = templates.TemplateResponse(
        request,
        name,
        {"principal": principal, "user": principal.user if principal else None,
         # Templates ask the routes' own rules (app.core.access): `{% if may(EDITORS) %}`.
         "may": lambda rule: rule.allows(principal.roles if principal else None),
         "csrf_token": csrf_token(request), **context},
        status_code=status_code,
        headers=headers,
    )
    response.headers["Vary"] = "HX-Request"
    return response


def see_other(request: Request, url: str) -> Response:
    """After a successful form post: a 303 for the browser, or HX-Redirect for htmx (whose XHR would
    otherwise follow the 303 and swap the next page into the form)."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)
