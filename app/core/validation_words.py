"""What a refused value says, in a person's words: pydantic's messages ("List should have at least 1 item after
validation, not 0") turned into a phrase about the field ("choose at least one", "must be a whole number").
Every place that shows a schema's refusal (the pages' forms, the API's 422s, the command line, the imports'
line-by-line reports) says it through `in_words`."""

from __future__ import annotations

from typing import Any

NOT_BLANK = r"\S"  # the pattern of a text field that must hold more than spaces


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else str(value)


def _count(n: Any, noun: str) -> str:
    return f"{_number(n)} {noun}{'' if n == 1 else 's'}"


MOMENT = "must be a date and time with its time zone (2026-12-07T21:00:00Z)"
PHRASES = {
    "missing": lambda ctx: "required",
    "string_too_short": lambda ctx: "cannot be empty" if ctx.get("min_length") == 1
    else f"at least {_count(ctx.get('min_length'), 'character')}",
    "string_too_long": lambda ctx: f"at most {_count(ctx.get('max_length'), 'character')}",
    "too_short": lambda ctx: "choose at least one" if ctx.get("min_length") == 1
    else f"at least {_count(ctx.get('min_length'), 'item')}",
    "too_long": lambda ctx: f"at most {_count(ctx.get('max_length'), 'item')}",
    "greater_than_equal": lambda ctx: f"at least {_number(ctx.get('ge'))}",
    "greater_than": lambda ctx: f"more than {_number(ctx.get('gt'))}",
    "less_than_equal": lambda ctx: f"at most {_number(ctx.get('le'))}",
    "less_than": lambda ctx: f"less than {_number(ctx.get('lt'))}",
    "int_parsing": lambda ctx: "must be a whole number",
    "int_from_float": lambda ctx: "must be a whole number",
    "int_type": lambda ctx: "must be a whole number",
    "float_parsing": lambda ctx: "must be a number",
    "float_type": lambda ctx: "must be a number",
    "finite_number": lambda ctx: "must be a finite number",
    "bool_parsing": lambda ctx: "must be yes or no",
    "bool_type": lambda ctx: "must be yes or no",
    "literal_error": lambda ctx: f"must be one of {ctx.get('expected', '')}".replace("'", ""),
    "enum": lambda ctx: f"must be one of {ctx.get('expected', '')}".replace("'", ""),
    "string_type": lambda ctx: "must be text",
    "list_type": lambda ctx: "must be a list",
    "dict_type": lambda ctx: "must be a mapping of names to values",
    "model_type": lambda ctx: "must be a group of fields (names and values)",
    "model_attributes_type": lambda ctx: "must be a group of fields (names and values)",
    "union_tag_not_found": lambda ctx: f"say which kind it is ({ctx.get('discriminator', 'kind')} is missing)"
    .replace("'", ""),
    "union_tag_invalid": lambda ctx: f"must be one of {ctx.get('expected_tags', '')}".replace("'", ""),
    "extra_forbidden": lambda ctx: "is not a field this takes",
    "json_invalid": lambda ctx: "is not valid JSON",
    "string_pattern_mismatch": lambda ctx: "cannot be blank" if ctx.get("pattern") == NOT_BLANK
    else "is not in the expected form",
    "url_parsing": lambda ctx: "must be a web address (https://...)",
    "datetime_from_date_parsing": lambda ctx: MOMENT,
    "datetime_type": lambda ctx: MOMENT,
    "timezone_aware": lambda ctx: MOMENT,
    "url_scheme": lambda ctx: f"must start with {ctx.get('expected_schemes', 'http or https')}".replace("'", ""),
    "date_parsing": lambda ctx: "must be a date (YYYY-MM-DD)",
    "datetime_parsing": lambda ctx: "must be a date and time (YYYY-MM-DD HH:MM)",
}


def in_words(problem: dict[str, Any]) -> str:
    """One pydantic error (an item of `ValidationError.errors()`) as a phrase about its field."""
    kind = problem.get("type", "")
    if kind in ("too_short", "too_long") and isinstance(problem.get("input"), str):
        kind = f"string_{kind}"  # a length rule on a validated string is reported as a collection's
    phrase = PHRASES.get(kind)
    if phrase is not None:
        return phrase(problem.get("ctx") or {})
    # Our own validators' messages (ValueError, AssertionError) are written for people already.
    return str(problem.get("msg", "invalid")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
