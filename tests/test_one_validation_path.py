"""Pages and the API validate the same action through the same schema: a value over its limit, or one of the
wrong kind, is refused by both with a 422 that names the same field, and nothing is stored (never cut short).

Each case is a state-changing page route and its API twin, with a value the schema refuses. The refusal comes
before any lookup, so the ids in the paths need not exist; where a page route would look up first, the case
makes what it needs."""

from __future__ import annotations

from typing import Literal

import pytest
from sqlmodel import select

from app.core import limits
from app.models import ApiToken, Instruction, Role, SourceDataset, User
from tests.factories import bearer, login, make_dataset, make_task, make_user, soup

OVER_NAME, OVER_NOTE, OVER_COMMENT = "n" * (limits.NAME + 1), "r" * (limits.NOTE + 1), "c" * (limits.COMMENT + 1)

# (page path, page form, API method, API path, API JSON, the field both must name)
TWINS = [
    ("/datasets", {"name": OVER_NAME}, "post", "/api/v1/datasets", {"name": OVER_NAME}, "name"),
    ("/datasets/{dataset}", {"name": "ok", "url": "ftp://x"}, "put", "/api/v1/datasets/{dataset}",
     {"name": "ok", "url": "ftp://x"}, "url"),
    ("/admin/users", {"email": "not-an-email", "display_name": "X"}, "post", "/api/v1/users",
     {"email": "not-an-email", "display_name": "X"}, "email"),
    ("/admin/users/{admin}", {"display_name": OVER_NAME}, "patch", "/api/v1/users/{admin}",
     {"display_name": OVER_NAME}, "display_name"),
    ("/tasks/{task}/instructions", {"label": "l" * 81}, "post", "/api/v1/tasks/{task}/instructions",
     {"label": "l" * 81}, "label"),
    ("/instructions/{instruction}/draft", {"text": "Answer.", "lock_version": "stale"}, "put",
     "/api/v1/instructions/{instruction}/draft", {"text": "Answer.", "lock_version": "stale"}, "lock_version"),
    ("/review/instructions/1", {"decision": "approve", "comment": OVER_COMMENT, "lock_version": 0}, "post",
     "/api/v1/review/instructions/1/decision", {"decision": "approve", "comment": OVER_COMMENT, "lock_version": 0},
     "comment"),
    ("/review/verify/1", {"decision": "maybe", "lock_version": 0}, "post", "/api/v1/review/verify/1/decision",
     {"decision": "maybe", "lock_version": 0}, "decision"),
    ("/review/solve/1/answer", {"answer": OVER_COMMENT, "lock_version": 0}, "post",
     "/api/v1/review/solve/1/answer", {"answer": OVER_COMMENT, "lock_version": 0}, "answer"),
    ("/review/solve/1/judge", {"matched": "perhaps", "lock_version": 0}, "post",
     "/api/v1/review/solve/1/judgement", {"matched": "perhaps", "lock_version": 0}, "matched"),
    ("/review/spot/1", {"verdict": "correct", "note": OVER_NOTE, "lock_version": 0}, "post",
     "/api/v1/review/spot/1/verdict", {"verdict": "correct", "note": OVER_NOTE, "lock_version": 0}, "note"),
    ("/tasks/1/solve-tests", {"size": "lots"}, "post", "/api/v1/tasks/1/solve-tests", {"size": "lots"}, "size"),
    ("/tasks/1/spot-checks", {"reason": OVER_NOTE}, "post", "/api/v1/tasks/1/spot-checks", {"reason": OVER_NOTE},
     "reason"),
    ("/tasks/1/scores", {"model_id": 1, "batch_size": 0}, "post", "/api/v1/tasks/1/scores",
     {"model_id": 1, "batch_size": 0}, "batch_size"),
    ("/versions/1/scores", {"model_id": "abc"}, "post", "/api/v1/versions/1/scores", {"model_id": "abc"},
     "model_id"),
    ("/versions/1/targeted-spot-checks", {"model_id": "abc"}, "post", "/api/v1/versions/1/targeted-spot-checks",
     {"model_id": "abc"}, "model_id"),
    ("/versions", {"task_ids": ["1"], "name": OVER_NAME}, "post", "/api/v1/versions",
     {"spec": {"task_ids": [1]}, "name": OVER_NAME}, "name"),
    ("/versions", {"task_ids": ["1"], "qc_override_reason": OVER_NOTE}, "post", "/api/v1/versions",
     {"spec": {"task_ids": [1]}, "qc_override_reason": OVER_NOTE}, "qc_override_reason"),
]


def fields_a_page_names(response) -> set[str]:
    """The fields a refused page marks: beside a form's field (`<name>-error`), or listed on the error page."""
    page = soup(response)
    marked = {tag["id"].removesuffix("-error") for tag in page.select("[id$=-error]")}
    listed = {code.text for code in page.select("main ul li code, ul li code")}
    return marked | listed


@pytest.fixture
def admin_both_ways(app, client, db):
    """An admin signed in to the pages (cookie and CSRF token) and holding an API token."""
    admin = make_user(db, Role.admin)
    csrf = login(client, admin.email)
    return csrf, bearer(db, admin), admin


@pytest.mark.parametrize(("page_path", "form", "method", "api_path", "body", "field"), TWINS,
                         ids=[f"{case[0]} {case[5]}" for case in TWINS])
def test_a_page_and_its_api_twin_refuse_the_same_value_naming_the_same_field(
        client, db, admin_both_ways, page_path, form, method, api_path, body, field):
    csrf, auth, admin = admin_both_ways
    dataset = make_dataset(db, "TWINS")
    task = make_task(db, "TWINS+twins", dataset=dataset)
    instruction = Instruction(task_id=task.id, label="main", author_id=admin.id)
    db.add(instruction)
    db.commit()
    ids = {"task": task.id, "instruction": instruction.id, "dataset": dataset.id, "admin": admin.id}
    before = _stored(db)

    page = client.post(page_path.format(**ids), data={"csrf_token": csrf, **form})
    api = getattr(client, method)(api_path.format(**ids), json=body, headers=auth)

    assert (page.status_code, api.status_code) == (422, 422), (page.text[:300], api.text[:300])
    api_fields = {name.removeprefix("spec.") for name in api.json()["error"]["fields"]}
    assert field in api_fields and field in fields_a_page_names(page), (api_fields, fields_a_page_names(page))
    assert _stored(db) == before


def test_a_skip_that_is_not_an_item_is_refused_alike_by_the_queue_page_and_the_api(client, db, admin_both_ways):
    """The API takes the item to skip in the query; the page in the form."""
    csrf, auth, _ = admin_both_ways
    page = client.post("/review/spot/next", data={"csrf_token": csrf, "skip": "the last one"})
    api = client.post("/api/v1/review/spot/next", params={"skip": "the last one"}, headers=auth)
    assert (page.status_code, api.status_code) == (422, 422)
    assert "skip" in fields_a_page_names(page) and "skip" in api.json()["error"]["fields"]


def test_a_token_is_refused_alike_from_the_account_page_and_the_api(client, db):
    user = make_user(db, Role.author)
    csrf = login(client, user.email)
    for form, field in (({"name": OVER_NAME}, "name"), ({"name": "nightly", "expires_in_days": "soon"},
                                                         "expires_in_days")):
        page = client.post("/account/tokens", data={"csrf_token": csrf, **form})
        api = client.post("/api/v1/me/tokens", json=form, headers={"X-CSRF-Token": csrf})
        assert (page.status_code, api.status_code) == (422, 422)
        assert field in fields_a_page_names(page) and field in api.json()["error"]["fields"]
    assert db.exec(select(ApiToken)).all() == []


def test_a_registered_models_name_is_refused_when_too_long_not_cut(client, db):
    admin = make_user(db, Role.admin)
    csrf = login(client, admin.email)
    refused = client.post("/models", data={"csrf_token": csrf, "name": OVER_NAME, "path": "/models/x"})
    assert refused.status_code == 422 and "name" in fields_a_page_names(refused)
    bad_device = client.post("/models", data={"csrf_token": csrf, "name": "ok", "path": "/m", "device": "tpu"})
    assert bad_device.status_code == 422 and "device" in fields_a_page_names(bad_device)
    from app.models import RegisteredModel

    assert db.exec(select(RegisteredModel)).all() == []


def _stored(db) -> tuple[int, ...]:
    db.expire_all()
    return tuple(len(db.exec(select(model)).all()) for model in (SourceDataset, User, Instruction))


def test_a_forms_defaults_are_the_schemas(client, db):
    """The new-version form shows ExportSpec's defaults (and the page's own suggestion of a validation share),
    read from the schema rather than copied into the template."""
    from app.schemas.export_spec import SUGGESTED_VALIDATION_RATIO, ExportSpec
    from app.web.forms import defaults_of

    admin = make_user(db, Role.admin)
    login(client, admin.email)
    form = soup(client.get("/versions")).select_one("#version-form")
    shown = {field["name"]: field.get("value") for field in form.select("input[name]") if field.get("value")}
    assert shown["per_task_cap"] == str(ExportSpec.model_fields["per_task_cap"].default)
    assert shown["stage2_size"] == str(ExportSpec.model_fields["stage2_size"].default)
    assert shown["validation_ratio"] == str(SUGGESTED_VALIDATION_RATIO)
    assert defaults_of(ExportSpec)["conversation_pool_id"] == ""  # an unset optional field: an empty box


def test_a_refusal_says_what_is_wrong_in_a_persons_words():
    """Pydantic's wording ("List should have at least 1 item after validation, not 0") never reaches a person."""
    from pydantic import BaseModel, Field, ValidationError

    from app.core.validation_words import in_words

    class Form(BaseModel):
        tasks: list[int] = Field(min_length=1)
        name: str = Field(min_length=1, max_length=120)
        size: int = Field(ge=1, le=1000)
        share: float = Field(gt=0, lt=1)
        kind: Literal["uniform", "targeted"]
        required: str

    with pytest.raises(ValidationError) as refused:
        Form(tasks=[], name="x" * 121, size="ten", share=1, kind="random")
    said = {problem["loc"][0]: in_words(problem) for problem in refused.value.errors()}
    assert said == {"tasks": "choose at least one", "name": "at most 120 characters", "size": "must be a whole number",
                    "share": "less than 1", "kind": "must be one of uniform or targeted", "required": "required"}
