"""Pages: the dashboard, the task list with filters and keyset pages, datasets, users; errors as pages."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from app.core.config import Settings
from app.main import create_app
from app.models import AuditEvent, Role, SourceDataset, TaskStatus
from app.web.deps import PUBLIC
from tests.factories import csrf_from, login, make_dataset, make_task, make_user, soup


def test_dashboard_counts_tasks_by_status(client, db):
    make_task(db, "A+one", status=TaskStatus.draft)
    make_task(db, "A+two", status=TaskStatus.draft)
    make_task(db, "A+three", status=TaskStatus.verified)
    login(client, make_user(db, Role.reviewer).email)
    page = soup(client.get("/"))
    counts = {row["data-status"]: int(row.select_one(".num").text) for row in page.select("#tasks-by-status tbody tr")}
    assert counts["draft"] == 2 and counts["verified"] == 1 and counts["in_review"] == 0
    assert set(counts) == {str(status) for status in TaskStatus}
    widths = {row["data-status"]: row.select_one(".bar")["style"] for row in page.select("#tasks-by-status tbody tr")}
    assert widths["draft"] == "width: 66.7%"
    queue = {row["data-queue"]: int(row.select_one("td.mine").text) for row in page.select("#queue-sizes tbody tr")}
    assert queue == {"instructions": 0, "solve": 0, "spot": 0, "verify": 0, "corrections": 0,
                     "conversations": 0}
    assert [row["data-task"] for row in page.select("#task-quality tbody tr")] == ["A+one", "A+three", "A+two"]


def test_the_dashboards_quality_table_pages_by_keyset_and_keeps_its_filters(client, db):
    for k in range(5):
        make_task(db, f"GEO+count_{k}", category="Counting")
    make_task(db, "GEO+ocr_sign", category="OCR")
    login(client, make_user(db, Role.reviewer).email)

    def quality_rows(response) -> list[str]:
        return [row["data-task"] for row in soup(response).select("#task-quality tbody tr")]

    first = client.get("/?category=Counting")
    assert quality_rows(first) == ["GEO+count_0", "GEO+count_1", "GEO+count_2"]  # page size 3 in tests
    following = soup(first).select_one("nav[aria-label='Pages of tasks'] a[rel=next]")["href"]
    assert "category=Counting" in following and soup(first).select_one("a[rel=prev]") is None
    second = client.get(following)
    assert quality_rows(second) == ["GEO+count_3", "GEO+count_4"] and soup(second).select_one("a[rel=next]") is None
    back = client.get(soup(second).select_one("a[rel=prev]")["href"])
    assert quality_rows(back) == ["GEO+count_0", "GEO+count_1", "GEO+count_2"]
    assert client.get("/?after=" + "x" * 201).status_code == 422


def _names(response) -> list[str]:
    return [row.select_one("td a").text for row in soup(response).select("table.tasks tbody tr")]


def test_task_list_pages_by_keyset_in_both_directions(client, db):
    for k in range(7):
        make_task(db, f"DS+task_{k}", instances=k)
    login(client, make_user(db, Role.author).email)
    first = client.get("/tasks")
    assert _names(first) == ["DS+task_0", "DS+task_1", "DS+task_2"]  # page size 3 in tests
    next_link = soup(first).select_one("a[rel=next]")["href"]
    assert soup(first).select_one("a[rel=prev]") is None
    second = client.get(next_link)
    assert _names(second) == ["DS+task_3", "DS+task_4", "DS+task_5"]
    last = client.get(soup(second).select_one("a[rel=next]")["href"])
    assert _names(last) == ["DS+task_6"] and soup(last).select_one("a[rel=next]") is None
    back = client.get(soup(last).select_one("a[rel=prev]")["href"])
    assert _names(back) == ["DS+task_3", "DS+task_4", "DS+task_5"]
    counts = [row.select_one(".num").text for row in soup(second).select("table.tasks tbody tr")]
    assert counts == ["3", "4", "5"]


def test_task_list_filters_and_search_keep_their_values_in_page_links(client, db):
    geo = make_dataset(db, "GEO")
    for k in range(5):
        make_task(db, f"GEO+count_{k}", dataset=geo, category="Counting", status=TaskStatus.accepted)
    make_task(db, "GEO+ocr_sign", dataset=geo, category="OCR", status=TaskStatus.accepted)
    make_task(db, "VQA+count_x", category="Counting", status=TaskStatus.draft)
    login(client, make_user(db, Role.author).email)
    assert _names(client.get("/tasks?q=ocr")) == ["GEO+ocr_sign"]
    assert _names(client.get("/tasks?q=count&status=draft")) == ["VQA+count_x"]
    assert _names(client.get(f"/tasks?dataset={geo.id}&category=OCR")) == ["GEO+ocr_sign"]
    filtered = client.get("/tasks?category=Counting&status=accepted")
    assert _names(filtered) == ["GEO+count_0", "GEO+count_1", "GEO+count_2"]
    following = soup(filtered).select_one("a[rel=next]")["href"]
    assert "category=Counting" in following and "status=accepted" in following
    assert _names(client.get(following)) == ["GEO+count_3", "GEO+count_4"]
    # menus left at "any" send empty values, which filter nothing
    assert len(_names(client.get("/tasks?q=GEO&group=&category=&status=&dataset="))) == 3
    assert client.get("/tasks?dataset=abc").status_code == 422
    # LIKE wildcards in a search are literal
    assert _names(client.get("/tasks?q=%25")) == []
    form = soup(filtered).select_one("#task-filters")
    assert form.select_one("select[name=category] option[selected]")["value"] == "Counting"


def test_htmx_gets_the_fragment_and_the_response_varies_on_it(client, db):
    make_task(db, "A+one")
    login(client, make_user(db, Role.author).email)
    full = client.get("/tasks")
    fragment = client.get("/tasks", headers={"HX-Request": "true"})
    for response in (full, fragment):
        assert "HX-Request" in [part.strip() for part in response.headers["Vary"].split(",")]
    assert soup(full).select_one("html") is not None and soup(full).select_one("#task-table table") is not None
    assert soup(fragment).select_one("html") is None and soup(fragment).select_one("table.tasks") is not None


def test_unknown_ids_give_404_as_page_toast_or_json(client, db):
    login(client, make_user(db, Role.admin).email)
    page = client.get("/tasks/999")
    assert page.status_code == 404 and soup(page).select_one(".error-page p").text == "There is no task with id 999."
    toast = client.get("/datasets/999", headers={"HX-Request": "true"})
    assert toast.status_code == 404 and toast.headers["HX-Retarget"] == "#toasts"
    assert soup(toast).select_one("output.toast").text == "There is no source dataset with id 999."
    api = client.get("/api/v1/users/999")
    assert api.status_code == 404 and api.json() == {"error": {"code": "not_found",
                                                               "message": "There is no user with id 999."}}
    assert client.get("/no/such/page").status_code == 404
    assert client.get("/tasks/not-a-number").status_code == 422


def test_invalid_dataset_form_is_shown_again_with_messages_beside_the_fields(client, db):
    csrf = login(client, make_user(db, Role.author).email)
    response = client.post("/datasets", data={"csrf_token": csrf, "name": "A+B", "url": "ftp://x",
                                              "licence": "MIT"}, headers={"HX-Request": "true"})
    assert response.status_code == 422
    form = soup(response).select_one("#dataset-form")
    assert soup(response).select_one("html") is None  # htmx swaps just the form
    assert form.select_one("#name-error").text == "must be non-empty and contain neither '+' nor '/'"
    assert form.select_one("#url-error").text == "must start with http:// or https://"
    assert form.select_one("input[name=name]")["aria-invalid"] == "true"
    assert form.select_one("input[name=licence]")["value"] == "MIT"  # what was typed is kept
    assert db.exec(select(SourceDataset)).all() == []


def test_registering_and_editing_a_dataset_is_audited(client, db):
    author = make_user(db, Role.author)
    csrf = login(client, author.email)
    created = client.post("/datasets", data={"csrf_token": csrf, "name": "TextVQA", "licence": "CC BY 4.0",
                                             "annotator_id": str(author.id), "citation": "@article{x}"},
                          headers={"HX-Request": "true"})
    assert created.status_code == 204
    dataset = db.exec(select(SourceDataset)).one()
    assert created.headers["HX-Redirect"] == f"/datasets/{dataset.id}"
    duplicate = client.post("/datasets", data={"csrf_token": csrf, "name": "TextVQA"})
    assert duplicate.status_code == 409 and soup(duplicate).select_one("#name-error").text == "already taken"
    edited = client.post(f"/datasets/{dataset.id}", data={"csrf_token": csrf, "name": "TextVQA",
                                                          "licence": "CC BY-SA 4.0", "annotator_id": ""})
    assert edited.status_code == 303
    db.refresh(dataset)
    assert dataset.licence == "CC BY-SA 4.0" and dataset.annotator_id is None
    events = db.exec(select(AuditEvent).where(AuditEvent.entity_type == "source_dataset")
                     .order_by(AuditEvent.id)).all()
    assert [event.action for event in events] == ["dataset.create", "dataset.update"]
    assert events[1].before["licence"] == "CC BY 4.0" and events[1].after["licence"] == "CC BY-SA 4.0"
    assert all(event.actor_id == author.id for event in events)


def test_html_in_user_text_is_escaped(client, db):
    payload = '<script>alert("x")</script>'
    make_dataset(db, "XSS", notes=payload, licence=payload)
    make_task(db, f"XSS+{payload}")
    login(client, make_user(db, Role.author).email)
    for url in ("/datasets", "/datasets/1", "/tasks", "/tasks/1"):
        response = client.get(url)
        assert response.status_code == 200
        assert soup(response).select("main script") == [], url
        assert "&lt;script&gt;" in response.text, url


def test_admin_creates_a_user_and_sees_the_generated_password_once(client, db):
    csrf = login(client, make_user(db, Role.admin).email)
    created = client.post("/admin/users", data={"csrf_token": csrf, "email": "New@Example.org",
                                                 "display_name": "Nia", "roles": ["author", "reviewer"]})
    assert created.status_code == 201
    password = soup(created).select_one("#new-password code").text
    assert len(password) >= 12
    listing = soup(client.get("/admin/users"))
    row = [r for r in listing.select("tr[data-user-id]") if r.select("td")[1].text == "new@example.org"][0]
    assert row.select("td")[2].text == "author, reviewer"
    client.cookies.clear()
    login(client, "new@example.org", password)


def test_user_form_errors_are_shown_beside_the_fields(client, db):
    csrf = login(client, make_user(db, Role.admin).email)
    response = client.post("/admin/users", data={"csrf_token": csrf, "email": "not-an-email",
                                                  "display_name": " ", "password": "short"})
    assert response.status_code == 422
    page = soup(response)
    assert page.select_one("#email-error").text == "must be an email address such as ada@example.org"
    assert page.select_one("#password-error").text == "must be at least 10 characters"
    assert page.select_one("#display_name-error") is not None


def test_admins_cannot_lock_themselves_out(client, db):
    admin = make_user(db, Role.admin)
    csrf = login(client, admin.email)
    response = client.post(f"/admin/users/{admin.id}", data={"csrf_token": csrf, "display_name": "A",
                                                              "roles": ["author"], "is_active": "on"})
    assert response.status_code == 409 and "You cannot deactivate yourself" in response.text
    assert client.get("/admin/users").status_code == 200


def assert_studio_headers(response) -> None:
    """The security headers and a Server-Timing figure, whatever the response."""
    assert "script-src 'self'" in response.headers["Content-Security-Policy"], response.status_code
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    name, duration = response.headers["Server-Timing"].split(";dur=")
    assert name == "app" and float(duration) >= 0


def test_every_response_carries_the_security_headers_and_server_timing(app, client, db):
    def broken_page():
        raise RuntimeError("a bug")

    app.add_api_route("/broken", broken_page, dependencies=[PUBLIC])  # a bug the error handlers did not foresee
    login(client, make_user(db, Role.author).email)
    responses = [client.get("/"), client.get("/api/v1/me"), client.get("/static/app.css"), client.get("/nope"),
                 client.post("/logout")]  # a 403: no CSRF token
    with TestClient(app, raise_server_exceptions=False) as bare:
        responses.append(bare.get("/broken"))
    assert [response.status_code for response in responses] == [200, 200, 200, 404, 403, 500]
    assert "Something went wrong on our side" in responses[-1].text  # the error page, not a traceback
    for response in responses:
        assert_studio_headers(response)


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_an_unreachable_database_is_a_503_that_says_when_to_try_again(tmp_path, backend):
    database_url = {"postgresql": "postgresql+psycopg://postgres@127.0.0.1:9/test?connect_timeout=3",  # nobody there
                    "sqlite": f"sqlite:///{tmp_path / 'db' / 'studio.db'}"}[backend]
    app = create_app(Settings(mode="test", data_dir=tmp_path / "data", database_url=database_url, _env_file=None))
    (tmp_path / "db" / "studio.db").mkdir(parents=True)  # a folder where the database file should be
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        csrf = csrf_from(client.get("/login").text)  # the sign-in page itself needs no database
        signing_in = client.post("/login", data={"email": "someone@example.org", "password": "x", "csrf_token": csrf})
        responses = [client.get("/healthz"), client.get("/api/v1/tasks", headers={"Authorization": "Bearer a-token"}),
                     signing_in]
        for response in responses:
            assert response.status_code == 503, (response.request.url, response.status_code, response.text[:200])
            assert response.headers["Retry-After"] == "2"
            assert_studio_headers(response)
        assert responses[1].json()["error"]["code"] == "database_unavailable"
        assert "try again in a moment" in signing_in.text


def test_no_template_has_an_inline_script():
    from pathlib import Path

    from bs4 import BeautifulSoup

    for template in (Path(__file__).resolve().parent.parent / "templates").rglob("*.html"):
        page = BeautifulSoup(template.read_text(), "html.parser")
        inline = [tag for tag in page.find_all("script") if not tag.get("src")]
        handlers = [tag.name for tag in page.find_all(True) if any(a.startswith("on") for a in tag.attrs)]
        assert inline == [] and handlers == [], template.name


def test_task_metadata_is_edited_with_optimistic_concurrency(app, client, db):
    from fastapi.testclient import TestClient

    task = make_task(db, "GEO+angles", category="Math")
    author = make_user(db, Role.author)
    csrf = login(client, author.email)
    form = soup(client.get(f"/tasks/{task.id}/edit")).select_one("#task-form")
    assert form.select_one("input[name=lock_version]")["value"] == "1"
    assert [o["value"] for o in form.select("#known-categories option")] == ["Math"]
    with TestClient(app, follow_redirects=False) as other:
        other_csrf = login(other, make_user(db, Role.admin).email)
        first = other.post(f"/tasks/{task.id}", data={"csrf_token": other_csrf, "lock_version": "1",
                                                      "task_group": "classification", "category": "Geometry"})
        assert first.status_code == 303
    stale = client.post(f"/tasks/{task.id}", data={"csrf_token": csrf, "lock_version": "1",
                                                   "task_group": "generation", "category": "Mine"},
                        headers={"HX-Request": "true"})
    assert stale.status_code == 409
    assert "Someone else changed this task" in soup(stale).select_one("#task-form [role=alert]").text
    db.refresh(task)
    assert (task.task_group, task.category, task.lock_version) == ("classification", "Geometry", 2)
    bad = client.post(f"/tasks/{task.id}", data={"csrf_token": csrf, "lock_version": "2", "task_group": "poetry"})
    assert bad.status_code == 422 and soup(bad).select_one("#task_group-error") is not None
    fine = client.post(f"/tasks/{task.id}", data={"csrf_token": csrf, "lock_version": "2",
                                                  "task_group": "generation", "category": " ", "description": "x"})
    assert fine.status_code == 303
    db.refresh(task)
    assert (task.task_group, task.category, task.description) == ("generation", None, "x")
    events = db.exec(select(AuditEvent).where(AuditEvent.action == "task.update")).all()
    assert [e.after["category"] for e in events] == ["Geometry", None]
