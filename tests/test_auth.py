"""Signing in and out, sessions, throttling, passwords and API tokens."""

from __future__ import annotations

from sqlmodel import select

from app.models import ApiToken, AuditEvent, Role
from app.schemas import UserUpdate
from app.services import users as user_service
from tests.factories import PASSWORD, csrf_from, login, make_user, soup


def _post_login(client, email, password, **extra):
    token = csrf_from(client.get("/login").text)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token, **extra})


def test_sign_in_sets_a_hardened_session_cookie_and_shows_the_dashboard(client, db):
    user = make_user(db, Role.author)
    response = _post_login(client, user.email.upper(), PASSWORD)  # emails are case-insensitive
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"].lower()
    assert "studio_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    page = soup(client.get("/"))
    assert page.select_one("h1").text == "Dashboard"
    assert page.select_one('a[href="/account"]').text == user.display_name


def test_wrong_password_and_unknown_email_get_the_same_answer(client, db):
    user = make_user(db, Role.author)
    wrong = _post_login(client, user.email, "not the password")
    unknown = _post_login(client, "nobody@example.org", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    message = [soup(r).select_one("[role=alert]").text for r in (wrong, unknown)]
    assert message[0] == message[1] == "Email or password is not correct."
    # the email is kept in the form, the password is not
    assert soup(wrong).select_one("input[name=email]")["value"] == user.email
    assert soup(wrong).select_one("input[name=password]").get("value") is None


def test_repeated_failures_from_one_address_are_slowed_down(client, db, settings):
    user = make_user(db, Role.author)
    for _ in range(settings.login_max_failures):
        assert _post_login(client, user.email, "wrong password").status_code == 401
    blocked = _post_login(client, user.email, PASSWORD)  # even the right password waits
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert "try again in" in soup(blocked).select_one(".error-page p").text


def test_inactive_users_cannot_sign_in(client, db):
    user = make_user(db, Role.author)
    user_service.update_user(db, user_id=user.id, data=UserUpdate(is_active=False), actor_id=None)
    assert _post_login(client, user.email, PASSWORD).status_code == 401


def test_sign_in_returns_to_the_page_asked_for_but_never_to_another_site(client, db):
    user = make_user(db, Role.author)
    assert client.get("/tasks?status=draft").headers["location"] == "/login?next=/tasks%3Fstatus%3Ddraft"
    assert _post_login(client, user.email, PASSWORD, next="/tasks?status=draft").headers["location"] == \
        "/tasks?status=draft"
    for hostile in ("//evil.example/", "https://evil.example/", "javascript:alert(1)"):
        client.cookies.clear()
        assert _post_login(client, user.email, PASSWORD, next=hostile).headers["location"] == "/"


def test_sign_out_ends_the_session(client, db):
    user = make_user(db, Role.author)
    token = login(client, user.email)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/").status_code == 303


def test_deactivating_a_user_ends_their_sessions(client, db):
    user = make_user(db, Role.author)
    login(client, user.email)
    assert client.get("/").status_code == 200
    user_service.update_user(db, user_id=user.id, data=UserUpdate(is_active=False), actor_id=None)
    assert client.get("/").status_code == 303


def test_changing_my_password_keeps_this_session_and_ends_the_others(app, client, db):
    from fastapi.testclient import TestClient

    user = make_user(db, Role.author)
    token = login(client, user.email)
    with TestClient(app, follow_redirects=False) as other:
        login(other, user.email)
        wrong = client.post("/account/password", data={"csrf_token": token, "current_password": "nope",
                                                        "new_password": "another long one"})
        assert wrong.status_code == 422
        assert soup(wrong).select_one("#current_password-error").text == "not correct"
        changed = client.post("/account/password", data={"csrf_token": token, "current_password": PASSWORD,
                                                          "new_password": "another long one"})
        assert changed.status_code == 303
        assert client.get("/").status_code == 200
        assert other.get("/").status_code == 303
    client.cookies.clear()
    login(client, user.email, "another long one")


def test_api_tokens_are_shown_once_and_kept_only_as_hashes(client, db):
    user = make_user(db, Role.reviewer)
    csrf = login(client, user.email)
    created = client.post("/account/tokens", data={"csrf_token": csrf, "name": "nightly export"})
    assert created.status_code == 201
    token = soup(created).select_one("#new-token code").text
    assert token.startswith("fst_")
    stored = db.exec(select(ApiToken).where(ApiToken.user_id == user.id)).one()
    assert token not in (stored.token_hash, stored.prefix) and token.startswith(stored.prefix)
    assert token not in client.get("/account").text  # never shown again
    client.cookies.clear()

    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["email"] == user.email and me.json()["roles"] == ["reviewer"]
    bad = client.get("/api/v1/me", headers={"Authorization": "Bearer fst_not-a-token"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "not_authenticated"

    user_service.revoke_token(db, token_id=stored.id, user_id=user.id, actor_id=user.id)
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_token_creation_and_revocation_are_audited(db):
    user = make_user(db, Role.author)
    row, _ = user_service.create_token(db, user_id=user.id, name="ci", actor_id=user.id)
    user_service.revoke_token(db, token_id=row.id, user_id=user.id, actor_id=user.id)
    actions = db.exec(select(AuditEvent.action).where(AuditEvent.entity_type == "api_token")).all()
    assert sorted(actions) == ["token.create", "token.revoke"]


def test_nobody_can_revoke_someone_elses_token(client, db):
    owner, other = make_user(db, Role.author), make_user(db, Role.author)
    row, token = user_service.create_token(db, user_id=owner.id, name="mine", actor_id=owner.id)
    csrf = login(client, other.email)
    assert client.post(f"/account/tokens/{row.id}/revoke", data={"csrf_token": csrf}).status_code == 404
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
