"""Every refusal a form can produce is said in a person's words: a phrase about the field ("choose at least one",
"must be a whole number"), never pydantic's ("List should have at least 1 item after validation, not 0").

The first test finds every schema the pages validate a form with (by reading the routers, so a new form is
covered without being listed here), feeds each field the kinds of wrong value a person can type, and checks that
every error it produces has words of ours. The second sends refused forms through the pages, on both databases,
and reads what the page says beside the field."""

from __future__ import annotations

import ast
import importlib
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from app.core import limits
from app.core.validation_words import PHRASES, in_words
from app.models import Role
from tests.factories import login, make_dataset, make_task, make_user, soup

ROUTERS = Path(__file__).resolve().parents[1] / "app" / "routers"
# Values a person can send from a form or a script: empty, far too long, words for numbers, out of range,
# not a number, the wrong shape.
WRONG_VALUES = ["", "   ", "x" * 200_001, "abc", "-5", "1e400", "nan", 10**12, -1, 0, 1.5, "maybe", [], {}, None,
                "ftp://x", "not-an-email", {"action": "paint"}]
# What pydantic says and a person should never read.
PYDANTIC_WORDING = ("Input should", "should have", "Field required", "after validation", "Value error",
                    "Unable to extract", "valid dictionary", "instance of")
OURS = {"value_error", "assertion_error"}  # raised by our validators, with our message


def form_schemas() -> dict[str, type[BaseModel]]:
    """Every schema a page route passes to validate_form or validate_values."""
    found: dict[str, type[BaseModel]] = {}
    for path in sorted(ROUTERS.glob("*.py")):
        module = importlib.import_module(f"app.routers.{path.stem}")
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("validate_form", "validate_values")
                    and node.args and isinstance(node.args[0], ast.Name)):
                schema = getattr(module, node.args[0].id, None)
                if isinstance(schema, type) and issubclass(schema, BaseModel):
                    found[schema.__name__] = schema
    return found


def with_nested(schemas: dict[str, type[BaseModel]]) -> dict[str, type[BaseModel]]:
    """The schemas and the models their fields hold (a bulk fix's query and change, each kind of change)."""
    seen = dict(schemas)
    queue = list(schemas.values())
    while queue:
        for info in queue.pop().model_fields.values():
            for kind in _models_in(info.annotation):
                if kind.__name__ not in seen:
                    seen[kind.__name__] = kind
                    queue.append(kind)
    return seen


def _models_in(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for argument in typing.get_args(annotation) for model in _models_in(argument)]


def test_every_refusal_a_form_can_produce_is_said_in_a_persons_words():
    schemas = with_nested(form_schemas())
    assert {"ExportSpec", "FinetuneIn", "UserCreate", "BulkFixIn", "BulkQuery", "ReplaceChange"} <= set(schemas)
    assert len(schemas) >= 28
    said: dict[str, set[str]] = {}
    for name, schema in sorted(schemas.items()):
        for field in schema.model_fields:
            for wrong in WRONG_VALUES:
                try:
                    schema.model_validate({field: wrong})
                except ValidationError as refused:
                    for problem in refused.errors():
                        words = in_words(problem)
                        where = f"{name}.{'.'.join(map(str, problem['loc']))} = {str(wrong)[:20]!r}"
                        assert problem["type"] in PHRASES or problem["type"] in OURS, (where, problem)
                        assert words and not any(phrase in words for phrase in PYDANTIC_WORDING), (where, words)
                        said.setdefault(problem["type"], set()).add(words)
    # The probe reached the refusals forms meet, so the checks above did check something.
    assert {"missing", "string_too_long", "too_short", "int_parsing", "float_parsing", "greater_than_equal",
            "less_than", "literal_error", "enum", "bool_parsing", "value_error", "union_tag_invalid",
            "string_pattern_mismatch"} <= set(said), sorted(said)
    assert "choose at least one" in said["too_short"] and "cannot be blank" in said["string_pattern_mismatch"]


OVER_NAME = "n" * (limits.NAME + 1)
# (page path, form, the field, what the page says beside it): one of each kind of refusal, through the pages.
REFUSED = [
    ("/versions", {"name": "v"}, "task_ids", "choose at least one"),
    ("/versions", {"task_ids": ["1"], "validation_ratio": "1"}, "validation_ratio", "less than 1"),
    ("/versions", {"task_ids": ["1"], "per_task_cap": "ten"}, "per_task_cap", "must be a whole number"),
    ("/versions", {"task_ids": ["1"], "seed": "-1"}, "seed", "at least 0"),
    ("/versions", {"task_ids": ["1"], "name": OVER_NAME}, "name", f"at most {limits.NAME} characters"),
    ("/datasets", {"name": ""}, "name", "cannot be empty"),
    ("/datasets/{dataset}", {"name": "ok", "url": "ftp://x"}, "url", "must start with http:// or https://"),
    ("/admin/users", {"email": "not-an-email", "display_name": "X"}, "email",
     "must be an email address such as ada@example.org"),
    ("/tasks/{task}/instructions", {"label": "   "}, "label", "cannot be blank"),
    ("/tasks/{task}/solve-tests", {"size": "lots"}, "size", "must be a whole number"),
    ("/models", {"name": "m", "path": "/m", "device": "tpu"}, "device",
     "must be auto, cpu, cuda or cuda:N (a GPU's number)"),
    ("/models", {"name": "m", "path": "/m", "dtype": "int4"}, "dtype", "must be one of float32, bfloat16 or float16"),
    ("/account/tokens", {"name": "nightly", "expires_in_days": "soon"}, "expires_in_days", "must be a whole number"),
    ("/review/verify/1", {"decision": "maybe", "lock_version": "0"}, "decision",
     "must be one of approve, request_changes or reject"),
]


@pytest.mark.parametrize(("path", "form", "field", "expected"), REFUSED, ids=[f"{c[0]} {c[2]}" for c in REFUSED])
def test_a_refused_form_says_what_is_wrong_beside_the_field_in_a_persons_words(client, db, path, form, field,
                                                                               expected):
    """Beside the field where the form comes back marked, else in the toast, which names the field."""
    admin = make_user(db, Role.admin)
    csrf = login(client, admin.email)
    dataset = make_dataset(db, "WORDS")
    task = make_task(db, "WORDS+words", dataset=dataset)
    refused = client.post(path.format(dataset=dataset.id, task=task.id), data={"csrf_token": csrf, **form},
                          headers={"HX-Request": "true"})
    assert refused.status_code == 422, refused.text[:300]
    page = soup(refused)
    beside = page.select_one(f"#{field}-error")  # a form that comes back marked, or a toast that names the field
    in_toast = page.select_one(f'.toast [data-field="{field}"]')
    words = beside.text.strip() if beside is not None else in_toast.text.split(": ", 1)[1] if in_toast else ""
    assert words, page.text[:500]
    assert words == expected


def test_none_of_our_phrases_are_pydantics():
    """A phrase that falls back to pydantic's message (an error type with no phrase) is the failure the first test
    looks for; this one checks the phrases themselves read as ours, whatever their context."""
    for kind, phrase in PHRASES.items():
        words = phrase({})
        assert words and not any(telltale in words for telltale in PYDANTIC_WORDING), (kind, words)
