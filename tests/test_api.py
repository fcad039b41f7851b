"""The JSON API under /api/v1, used as scripts use it: with a bearer token."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.models import AuditEvent, Role
from tests.factories import bearer, login, make_task, make_user


@pytest.fixture
def as_role(db):
    return lambda *roles: bearer(db, make_user(db, *roles))


def test_tasks_are_listed_in_keyset_pages_with_filters(client, db, as_role):
    for k in range(5):
        make_task(db, f"DS+t{k}", instances=k, category="OCR" if k % 2 else "Perception")
    auth = as_role(Role.reviewer)
    first = client.get("/api/v1/tasks", headers=auth).json()
    assert [t["name"] for t in first["items"]] == ["DS+t0", "DS+t1", "DS+t2"] and first["next_after"] == "DS+t2"
    second = client.get("/api/v1/tasks", params={"after": first["next_after"]}, headers=auth).json()
    assert [t["name"] for t in second["items"]] == ["DS+t3", "DS+t4"] and second["next_after"] is None
    assert [t["instance_count"] for t in second["items"]] == [3, 4]
    ocr = client.get("/api/v1/tasks", params={"category": "OCR", "limit": 10}, headers=auth).json()
    assert [t["name"] for t in ocr["items"]] == ["DS+t1", "DS+t3"]
    one = client.get(f"/api/v1/tasks/{ocr['items'][0]['id']}", headers=auth).json()
    assert one["name"] == "DS+t1" and one["instance_count"] == 1 and one["task_group"] == "question answering"

    typo = client.get("/api/v1/tasks", params={"limt": 10, "category": "OCR"}, headers=auth)
    assert typo.status_code == 422 and typo.json()["error"]["fields"] == {"limt": "not a parameter here"}
    assert client.get("/api/v1/tasks/99999999999", headers=auth).status_code == 422  # beyond any id


def test_datasets_create_update_and_their_errors(client, db, as_role):
    auth = as_role(Role.author)
    created = client.post("/api/v1/datasets", headers=auth, json={"name": "ScienceQA", "url": "https://scienceqa.github.io",
                                                                   "licence": "CC BY-NC-SA 4.0"})
    assert created.status_code == 201
    dataset = created.json()
    assert dataset["name"] == "ScienceQA" and dataset["citation"] is None
    conflict = client.post("/api/v1/datasets", headers=auth, json={"name": "ScienceQA"})
    assert conflict.status_code == 409
    assert conflict.json()["error"] == {"code": "conflict",
                                        "message": "A source dataset named ScienceQA already exists.",
                                        "fields": {"name": "already taken"}}
    invalid = client.post("/api/v1/datasets", headers=auth, json={"name": "A/B", "url": "nope"})
    assert invalid.status_code == 422
    fields = invalid.json()["error"]["fields"]
    assert set(fields) == {"name", "url"} and "neither '+' nor '/'" in fields["name"]
    updated = client.put(f"/api/v1/datasets/{dataset['id']}", headers=auth,
                         json={"name": "ScienceQA", "licence": "MIT"})
    assert updated.status_code == 200 and updated.json()["licence"] == "MIT" and updated.json()["url"] is None
    listed = client.get("/api/v1/datasets", headers=auth).json()
    assert [d["name"] for d in listed] == ["ScienceQA"]
    assert client.get("/api/v1/datasets/404", headers=auth).status_code == 404
    actions = db.exec(select(AuditEvent.action).where(AuditEvent.entity_type == "source_dataset")).all()
    assert sorted(actions) == ["dataset.create", "dataset.update"]


def test_admins_manage_users_through_the_api(client, db, as_role):
    auth = as_role(Role.admin)
    created = client.post("/api/v1/users", headers=auth, json={"email": "Rev@Lab.org", "display_name": "Rev",
                                                                "roles": ["reviewer"], "password": "a long password"})
    assert created.status_code == 201
    body = created.json()
    assert body["email"] == "rev@lab.org" and body["roles"] == ["reviewer"] and "password" not in body
    assert "password_hash" not in body
    patched = client.patch(f"/api/v1/users/{body['id']}", headers=auth, json={"roles": ["reviewer", "author"],
                                                                              "native_english": True})
    assert patched.json()["roles"] == ["author", "reviewer"] and patched.json()["native_english"] is True
    users = client.get("/api/v1/users", headers=auth).json()
    assert "rev@lab.org" in [u["email"] for u in users]
    bad = client.post("/api/v1/users", headers=auth,
                      json={"email": "x@lab.org", "display_name": "X", "roles": ["king"]})
    assert bad.status_code == 422 and "roles.0" in bad.json()["error"]["fields"]


def test_a_token_cannot_make_another_token_but_a_signed_in_session_can(client, db, as_role):
    """A token minted by a token would outlive the revocation of the one that made it."""
    auth = as_role(Role.author)
    refused = client.post("/api/v1/me/tokens", json={"name": "second"}, headers=auth)
    assert refused.status_code == 403
    user = make_user(db, Role.author)
    csrf = login(client, user.email)
    made = client.post("/api/v1/me/tokens", json={"name": "second", "expires_in_days": 30},
                       headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201 and made.json()["token"].startswith("fst_") and made.json()["expires_at"]
    again = client.get("/api/v1/me", headers={"Authorization": f"Bearer {made.json()['token']}"})
    assert again.status_code == 200


def test_the_openapi_schema_documents_the_api_and_its_security(client):
    schema = client.get("/openapi.json").json()
    assert "/api/v1/tasks" in schema["paths"] and "/api/v1/users/{user_id}" in schema["paths"]
    assert not any(path.startswith(("/admin", "/login", "/tasks")) for path in schema["paths"])
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert schema["paths"]["/api/v1/tasks"]["get"]["security"] == [{"HTTPBearer": []}]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/static/vendor/swagger-ui-" in docs.text
