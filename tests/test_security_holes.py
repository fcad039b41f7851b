"""The holes a security probe found, each replayed and refused: the sign-in throttle, sessions and tokens, job
cancellation, sizes, NUL bytes, redirects and HSTS."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2
from fastapi.testclient import TestClient
from sqlmodel import select

from app.core.config import Settings
from app.core.logs import EscapeControlCharacters
from app.main import create_app
from app.models import ApiToken, DatasetVersion, Job, JobStatus, Role, VersionStatus, metadata
from app.schemas.jobs import ExportPayload, ScorePayload
from app.services import jobs as job_service
from app.services import users as user_service
from tests.factories import PASSWORD, bearer, csrf_from, login, make_user, soup


def _post_login(client, email, password, **headers):
    token = csrf_from(client.get("/login").text)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token}, headers=headers)


def test_a_right_password_does_not_clear_an_address_of_its_wrong_guesses(client, db, settings):
    """Four wrong guesses at the victim, one sign-in to the guesser's own account, repeated: stopped anyway."""
    victim, own = make_user(db, Role.author), make_user(db, Role.author)
    statuses = []
    for _ in range(3):
        for _ in range(settings.login_max_failures - 1):
            statuses.append(_post_login(client, victim.email, "a guess").status_code)
        statuses.append(_post_login(client, own.email, PASSWORD).status_code)
        client.cookies.clear()
    assert statuses[:settings.login_max_failures] == [401] * (settings.login_max_failures - 1) + [303]
    assert 429 in statuses  # the address ran out of guesses, whatever signed in between


def test_a_forwarded_address_from_an_untrusted_peer_changes_nothing(client, db, settings):
    user = make_user(db, Role.author)
    codes = [_post_login(client, user.email, "a guess", **{"X-Forwarded-For": f"10.0.0.{k}"}).status_code
             for k in range(settings.login_max_failures + 1)]
    assert codes[-1] == 429  # the test client is no trusted proxy: every guess counted for its own address


def test_guesses_at_one_account_from_many_addresses_wait_longer_but_its_owner_gets_in(database_url, tmp_path):
    """Behind a trusted proxy each guess may come from another address: the account still slows them down, and
    its owner, with the right password, waits seconds, never a lockout."""
    settings = Settings(mode="test", data_dir=tmp_path / "data", database_url=database_url, login_max_failures=3,
                        trusted_proxies="*", _env_file=None)
    app = create_app(settings)
    metadata.create_all(app.state.engine)
    try:
        with TestClient(app, follow_redirects=False) as client:
            from sqlmodel import Session

            with Session(app.state.engine) as db:
                user = make_user(db, Role.author)
                email = user.email
            codes = [_post_login(client, email, "a guess", **{"X-Forwarded-For": f"10.0.1.{k}"}).status_code
                     for k in range(5)]
            assert codes[:4] == [401, 401, 401, 401] and codes[4] == 429  # past 3, each waits (1 s, 2 s, ...)
            waited = _post_login(client, email, PASSWORD, **{"X-Forwarded-For": "10.0.2.1"})
            assert waited.status_code == 429 and 1 <= int(waited.headers["Retry-After"]) <= 60
            time.sleep(int(waited.headers["Retry-After"]) + 0.1)
            assert _post_login(client, email, PASSWORD, **{"X-Forwarded-For": "10.0.2.1"}).status_code == 303
    finally:
        app.state.engine.dispose()


def test_parallel_guesses_never_pass_the_limit(app, db, live_server, settings):
    user = make_user(db, Role.author)
    start = threading.Barrier(10)

    def guess(_):
        with httpx2.Client(base_url=live_server, follow_redirects=False, timeout=60) as client:
            token = csrf_from(client.get("/login").text)
            start.wait()
            return client.post("/login", data={"email": user.email, "password": "a guess",
                                               "csrf_token": token}).status_code

    with ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(guess, range(10)))
    assert codes.count(401) == settings.login_max_failures and codes.count(429) == 10 - settings.login_max_failures


def test_the_current_password_check_is_throttled_too(client, db, settings):
    user = make_user(db, Role.author)
    csrf = login(client, user.email)
    codes = [client.post("/account/password", data={"csrf_token": csrf, "current_password": "a guess",
                                                     "new_password": "a new long password"}).status_code
             for _ in range(settings.login_max_failures + 1)]
    assert codes == [422] * settings.login_max_failures + [429]


def test_signing_out_ends_the_session_even_for_a_copied_cookie(app, client, db):
    user = make_user(db, Role.author)
    csrf = login(client, user.email)
    copied = dict(client.cookies)
    with TestClient(app, follow_redirects=False, cookies=copied) as thief:
        assert thief.get("/").status_code == 200
        assert client.post("/logout", data={"csrf_token": csrf}).status_code == 303
        assert thief.get("/").status_code == 303  # back to the sign-in page
    with TestClient(app, follow_redirects=False) as other_device:
        login(other_device, user.email)
        second = TestClient(app, follow_redirects=False)
        csrf2 = login(second, user.email)
        second.post("/logout", data={"csrf_token": csrf2})
        assert other_device.get("/").status_code == 200  # other devices stay signed in


def test_a_password_change_or_reset_revokes_tokens_and_tokens_cannot_mint_tokens(client, db):
    user = make_user(db, Role.author)
    headers = bearer(db, user)
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    minted = client.post("/api/v1/me/tokens", headers=headers, json={"name": "child"})
    assert minted.status_code == 403 and "cannot make tokens" in minted.json()["error"]["message"]
    user_service.set_password(db, user_id=user.id, password=None, actor_id=None)  # an admin's reset
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    assert all(row.revoked_at is not None for row in db.exec(select(ApiToken).where(ApiToken.user_id == user.id)))
    page = client.get("/account", headers={})  # signed out: the page says what a change does once signed in
    assert page.status_code == 303


def test_a_token_may_expire(client, db):
    user = make_user(db, Role.author)
    csrf = login(client, user.email)
    made = client.post("/account/tokens", data={"csrf_token": csrf, "name": "week", "expires_in_days": "7"})
    token = soup(made).select_one("#new-token code").text
    row = db.exec(select(ApiToken).where(ApiToken.user_id == user.id)).one()
    assert 6 <= (row.expires_at - row.created_at).days <= 7
    assert "revokes all your tokens" in soup(made).select_one("#tokens").find_next("p", class_="muted").text
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    row.expires_at = row.created_at
    db.add(row)
    db.commit()
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_only_a_jobs_owner_or_an_admin_cancels_it(app, db):
    author, other_author = make_user(db, Role.author), make_user(db, Role.author)
    reviewer, admin = make_user(db, Role.reviewer), make_user(db, Role.admin)
    mine = job_service.enqueue(db, ScorePayload(task_id=1, model_id=1, instruction_version_id=1),
                               created_by_id=reviewer.id)
    theirs = job_service.enqueue(db, ExportPayload(version_id=1), created_by_id=author.id)
    for who, job, expected in ((other_author, theirs, 403), (reviewer, theirs, 403), (reviewer, mine, 200),
                               (admin, theirs, 200)):
        with TestClient(app, follow_redirects=False) as client:
            csrf = login(client, who.email)
            page = soup(client.get(f"/jobs/{job.id}"))
            shown = page.select_one(f'button[hx-post="/jobs/{job.id}/cancel"]') is not None
            response = client.post(f"/jobs/{job.id}/cancel", headers={"X-CSRF-Token": csrf})
            assert response.status_code == expected, (who.email, response.text)
            assert shown == (expected == 200)
    db.expire_all()
    assert db.get(Job, mine.id).status == JobStatus.cancelled and db.get(Job, theirs.id).status == JobStatus.cancelled


def test_free_text_has_a_maximum_and_bodies_a_limit(client, db):
    admin = make_user(db, Role.admin)
    headers = bearer(db, admin)
    too_long = client.post("/api/v1/datasets", headers=headers, json={"name": "HUGE", "notes": "n" * 20_001})
    assert too_long.status_code == 422 and "notes" in too_long.json()["error"]["fields"]
    assert client.post("/api/v1/datasets", headers=headers, json={"name": "FINE", "notes": "n" * 20_000}
                       ).status_code == 201
    huge = client.post("/api/v1/datasets", headers={**headers, "Content-Type": "application/json"},
                       content=b'{"name": "X", "notes": "' + b"n" * (11 * 1024 * 1024) + b'"}')
    assert huge.status_code == 413 and "larger than 10 MB" in huge.json()["error"]["message"]


def test_a_nul_in_a_path_is_a_404_or_a_422_and_logs_escape_control_characters(client, db):
    admin = make_user(db, Role.admin)
    version = DatasetVersion(name="v1", spec={}, spec_hash="0" * 64, status=VersionStatus.ready,
                             manifest={"files": {}})
    db.add(version)
    db.commit()
    assert client.get(f"/api/v1/versions/{version.id}/files/%00", headers=bearer(db, admin)).status_code == 404
    csrf = login(client, admin.email)
    imported = client.post("/imports", data={"csrf_token": csrf, "format": "unified", "file": "a\u0000b.jsonl"})
    assert imported.status_code == 422 and soup(imported).select_one("#file-error").text == \
        "cannot contain a NUL character"
    record = logging.LogRecord("studio", logging.ERROR, __file__, 1, "unhandled error on %s %s", ("GET", "/a\x00b\nc"),
                               None)
    EscapeControlCharacters().filter(record)
    assert record.getMessage() == "unhandled error on GET /a\\x00b\\nc"


def test_next_stays_on_this_site_and_production_sends_hsts(client, db, database_url, tmp_path):
    user = make_user(db, Role.author)
    for hostile in ("/\\evil.example", "/\t/evil.example", "/\\\\evil.example/x"):
        client.cookies.clear()
        token = csrf_from(client.get("/login").text)
        plain = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token,
                                            "next": hostile})
        assert plain.headers["location"] == "/"
        client.cookies.clear()
        token = csrf_from(client.get("/login").text)
        htmx = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token,
                                           "next": hostile}, headers={"HX-Request": "true"})
        assert htmx.headers.get("HX-Redirect", htmx.headers.get("location")) == "/"
    assert "strict-transport-security" not in client.get("/login").headers
    production = Settings(mode="production", data_dir=tmp_path / "prod", database_url=database_url,
                          secret_key="x" * 40, _env_file=None)
    app = create_app(production)
    try:
        with TestClient(app, base_url="https://studio.example") as secure:
            assert secure.get("/login").headers["strict-transport-security"].startswith("max-age=31536000")
    finally:
        app.state.engine.dispose()
