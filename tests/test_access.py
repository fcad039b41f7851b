"""Every registered route declares who may use it; anonymous and wrong-role requests are refused."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Mount

from app.main import create_app
from app.models import Role
from app.web.deps import AccessRule
from tests.factories import PASSWORD, login, make_user

ALL_ROLES = frozenset(Role)


def access_rules(route) -> list[AccessRule]:
    """The access rules among a route's dependencies, however deeply declared."""
    found, stack = [], list(route.dependant.dependencies)
    while stack:
        dependant = stack.pop()
        if isinstance(dependant.call, AccessRule):
            found.append(dependant.call)
        stack.extend(dependant.dependencies)
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def all_routes(app) -> list[tuple[str, str, AccessRule]]:
    """(method, path, rule) for every route the app serves, included routers flattened."""
    routes = []
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, Mount):
            assert route.path == "/static", f"unexpected mount {route.path}: declare its access"
            continue
        assert isinstance(route.original_route, APIRoute), f"{route!r} is not an APIRoute: it cannot declare access"
        rules = access_rules(route)
        assert len(rules) == 1, f"{route.path} declares {len(rules)} access rules; it must declare exactly one"
        for method in route.methods - {"HEAD"}:
            routes.append((method, route.path, rules[0]))
    return routes


def test_every_route_declares_exactly_one_access_rule(settings):
    routes = all_routes(create_app(settings))
    assert len(routes) > 30
    public = sorted(path for _, path, rule in routes if rule.roles is None)
    # Signing in, the health check and the API's documentation are all that anyone may see.
    assert public == ["/docs", "/healthz", "/login", "/login", "/openapi.json"]


def test_anonymous_requests_are_refused_everywhere(app, client):
    for method, path, rule in all_routes(app):
        if rule.roles is None:
            continue
        url = concrete(path)
        response = client.request(method, url)
        if path.startswith("/api/"):
            assert response.status_code == 401, (method, url)
            assert response.json()["error"]["code"] == "not_authenticated"
            assert response.headers["WWW-Authenticate"] == "Bearer"
        else:
            assert response.status_code == 303, (method, url, response.status_code)
            assert response.headers["location"].startswith("/login?next=")
        htmx = client.request(method, url, headers={"HX-Request": "true"})
        if not path.startswith("/api/"):
            assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/login"), (method, url)


@pytest.mark.parametrize("held", [frozenset(), frozenset({Role.author}), frozenset({Role.reviewer})])
def test_wrong_role_requests_are_refused_everywhere(app, client, db, held):
    user = make_user(db, *held)
    token = login(client, user.email, PASSWORD)
    checked = 0
    for method, path, rule in all_routes(app):
        if rule.roles is None or (not rule.roles) or rule.roles & held:
            continue  # public, any signed-in user, or this user may use it
        url = concrete(path)
        response = client.request(method, url, headers={"X-CSRF-Token": token})
        assert response.status_code == 403, (method, url, response.status_code)
        checked += 1
    assert checked >= 10


def test_wrong_role_with_an_api_token_is_refused(app, client, db):
    from app.services import users as user_service

    reviewer = make_user(db, Role.reviewer)
    _, token = user_service.create_token(db, user_id=reviewer.id, name="script", actor_id=reviewer.id)
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/tasks", headers=auth).status_code == 200
    refused = client.get("/api/v1/users", headers=auth)
    assert refused.status_code == 403
    assert refused.json()["error"] == {"code": "forbidden", "message": "This needs the admin role."}
    assert client.post("/api/v1/datasets", headers=auth, json={"name": "X"}).status_code == 403


def test_state_changing_requests_need_the_csrf_token(client, db):
    admin = make_user(db, Role.admin)
    token = login(client, admin.email)
    refused = client.post("/datasets", data={"name": "VQA"})
    assert refused.status_code == 403
    assert "reload the page" in refused.text
    assert client.post("/datasets", data={"name": "VQA", "csrf_token": "forged"}).status_code == 403
    assert client.post("/datasets", data={"name": "VQA", "csrf_token": token}).status_code == 303
    # htmx sends it as a header
    assert client.post("/datasets", data={"name": "VQA2"}, headers={"X-CSRF-Token": token}).status_code == 303
    # a cookie-authenticated JSON call needs it too
    assert client.post("/api/v1/datasets", json={"name": "VQA3"}).status_code == 403
    assert client.post("/api/v1/datasets", json={"name": "VQA3"}, headers={"X-CSRF-Token": token}).status_code == 201


def test_login_form_itself_needs_the_csrf_token(client, db):
    user = make_user(db, Role.author)
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 403


def test_access_rules_allow_exactly_their_roles():
    from app.core import access

    assert access.EDITORS.allows({Role.author}) and access.EDITORS.allows({Role.admin, Role.reviewer})
    assert not access.EDITORS.allows({Role.reviewer}) and not access.EDITORS.allows(set())
    assert not access.EDITORS.allows(None)  # not signed in
    assert access.SIGNED_IN.allows(set()) and not access.SIGNED_IN.allows(None)
    assert access.PUBLIC.allows(None)


def test_templates_ask_the_routes_rules_instead_of_naming_roles():
    """A template that tests `"admin" in roles` repeats a router's rule and drifts from it; `may(ADMINS)` cannot."""
    from app.web.templating import TEMPLATE_DIR

    named = [f"{path.relative_to(TEMPLATE_DIR)}:{number}"
             for path in TEMPLATE_DIR.rglob("*.html")
             for number, line in enumerate(path.read_text().splitlines(), start=1)
             if re.search(r"""["'](admin|author|reviewer)["']\s+(not\s+)?in\b""", line)]
    assert not named, f"role names tested in templates: {named}"


def test_an_admin_works_the_review_queues_like_a_reviewer(app, client, db):
    """The README says admins can do what reviewers do: the queues' pages and API let them in."""
    from tests.factories import bearer

    admin = make_user(db, Role.admin)
    csrf = login(client, admin.email, PASSWORD)
    assert client.get("/review").status_code == 200
    assert client.post("/review/spot/next", headers={"X-CSRF-Token": csrf}).status_code == 303
    counts = client.get("/api/v1/review/queues", headers=bearer(db, admin))
    assert counts.status_code == 200
    assert set(counts.json()) == {"instructions", "solve", "spot", "verify", "corrections",
                                  "conversations"}
    assert client.post("/api/v1/review/spot/next", headers=bearer(db, admin)).status_code == 204
