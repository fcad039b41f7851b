"""HTML forms: read the body, validate it with the same schemas as the API, name the fields at fault."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from app.core.failures import Conflict, Invalid
from app.core.validation_words import in_words

M = TypeVar("M", bound=BaseModel)


async def read_form(request: Request) -> FormData:
    return await request.form()  # parsed once per request; the CSRF check reads the same copy


FormDep = Annotated[FormData, Depends(read_form)]


def validate_form(model: type[M], form: FormData, *, lists: tuple[str, ...] = (),
                  checkboxes: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> M:
    """`model` from the form; raises Invalid with a message per field. An empty `optional` field is one not
    given (the schema's default applies); an unticked checkbox is False (browsers send nothing for it)."""
    data: dict[str, object] = {key: value for key, value in form.items() if key in model.model_fields}
    for name in lists:
        data[name] = form.getlist(name)
    for name in checkboxes:
        data[name] = name in form
    for name in optional:
        if name in data and data[name] in ("", None):
            del data[name]
    return validate_values(model, data)


def validate_values(model: type[M], data: dict[str, object], *, nested: tuple[str, ...] = ()) -> M:
    """`model` from values a route gathered from its form; raises Invalid with a message per field. A field of a
    `nested` object is named by its own name (the form's: the last name in its path), a rule of the whole object by
    the object's."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        fields: dict[str, str] = {}
        for problem in error.errors():
            loc = problem["loc"]
            if loc and loc[0] in nested:  # ("change", "replace", "find") -> "find"; ("query", "task_ids", 0)
                loc = tuple(part for part in loc if isinstance(part, str))[-1:]
            name = str(loc[0]) if loc else "form"
            fields.setdefault(name, in_words(problem))
        raise Invalid("Some fields need attention.", fields=fields) from error


def defaults_of(model: type[BaseModel]) -> dict[str, object]:
    """The values a fresh form shows: the schema's defaults (an unset optional field is an empty box), so a
    template never keeps a copy of them."""
    defaults = {name: field.get_default(call_default_factory=True) for name, field in model.model_fields.items()
                if not field.is_required()}
    return {name: "" if value is None else value for name, value in defaults.items()}


def form_feedback(error: Invalid | Conflict | None, *, status_code: int = 200) -> dict[str, object]:
    """What a form's template needs to show a refusal (a message per field, one for the form) and the status
    to answer with, the refusal's own (a 422, or a 409 when someone got there first); without one, nothing to
    show and `status_code`. Every page with a form answers a refusal through this."""
    if error is None:
        return {"status_code": status_code, "errors": {}, "message": None}
    return {"status_code": error.status_code, "errors": error.fields or {}, "message": error.message}
