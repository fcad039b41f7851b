"""Schemathesis against /openapi.json: generated requests, valid and not, to every API operation as an
admin. No answer may be a 5xx, and every answer must match the status codes, content types and schemas
the API declares. Runs on both databases, through the ASGI app (no network).

Operations are listed at collection time from the app's own schema, one test each (Schemathesis's pytest
plugin does not support pytest 9's fixtures yet, so Hypothesis drives each operation's strategy here)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from app.core.config import Settings
from app.main import create_app
from app.models import Instruction, Role
from tests.factories import bearer, make_dataset, make_task, make_user


def api_operations() -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(Settings(mode="test", data_dir=Path(folder), database_url=f"sqlite:///{folder}/schema.db",
                                  _env_file=None))
        paths = app.openapi()["paths"]
        app.state.engine.dispose()
    return [(method.upper(), path) for path, operations in paths.items() for method in operations]


@pytest.fixture
def admin_headers(db) -> dict[str, str]:
    """An admin's bearer token, and a little of everything for ids in generated URLs to find."""
    admin = make_user(db, Role.admin, Role.author, Role.reviewer)
    make_user(db, Role.reviewer)
    task = make_task(db, "SHAPES+shape_qa", dataset=make_dataset(db, "SHAPES"), instances=5)
    db.add(Instruction(task_id=task.id, author_id=admin.id, draft_text="Answer the question."))
    db.commit()
    return bearer(db, admin)


OPERATIONS = api_operations()
# Rules a JSON schema cannot state (across fields, or about other rows): a request may match the schema and
# still be refused (422) for these, so "schema-valid requests are accepted" is not checked on them; every
# other check is.
UNSTATABLE_RULES = {
    ("POST", "/api/v1/datasets"): "annotator_id names an existing user",
    ("PUT", "/api/v1/datasets/{dataset_id}"): "annotator_id names an existing user",
    ("POST", "/api/v1/tasks/{task_id}/solve-tests"): "pass_threshold at most size",
    ("POST", "/api/v1/tasks/{task_id}/spot-checks"): "expected_error_rate below max_error_rate",
    ("POST", "/api/v1/versions"): "instruction versions must belong to their tasks",
    ("PUT", "/api/v1/instructions/{instruction_id}/draft"): "lock_version is the current one",
    ("POST", "/api/v1/instructions/{instruction_id}/submit"): "the draft is written and renders its preview",
    ("PATCH", "/api/v1/instances/{instance_id}"): "a fix changes something, and its target names one of its options",
    ("POST", "/api/v1/review/corrections/{revision_id}/decision"): "a rejection says why",
    ("POST", "/api/v1/review/conversations/{review_id}/decision"): "one verdict on each answer of the conversation",
    ("POST", "/api/v1/bulk-fixes"): "a bulk fix changes something",
    ("POST", "/api/v1/synthesis"): "one generator, an endpoint the admin configured, a task and prompt that exist",
    ("POST", "/api/v1/synthesis/prompts/{prompt_id}/decision"): "a rejection says why",
    ("POST", "/api/v1/bulk-fixes/{fix_id}/decision"): "a rejection says why",
}


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{method} {path}" for method, path in OPERATIONS])
def test_the_api_answers_generated_requests_as_it_declares(app, admin_headers, method, path):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # PostgreSQL text cannot hold NUL; such input gets a 422 from the app (tests/test_hostile_input.py).
    schema.config.generation.update(allow_x00=False)
    operation = schema[path][method]
    strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)
    excluded = [positive_data_acceptance] if (method, path) in UNSTATABLE_RULES else []

    @given(case=strategy)
    @settings(max_examples=15, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    def answers_as_declared(case):
        case.call_and_validate(headers=admin_headers, excluded_checks=excluded)

    answers_as_declared()
