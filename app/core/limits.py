"""How long a person's free text may be, in one place: the API's schemas declare these, and the services refuse
longer text from any caller (a page, the API, the command line) with a message that names the field. Nothing is
ever cut short silently."""

from __future__ import annotations

from app.core.failures import Invalid

LONG_TEXT = 20_000  # notes, descriptions, citations
COMMENT = 10_000  # review comments, answers
NOTE = 2_000  # a spot-check note, a reason
NAME = 120  # names and labels
RECORD_TEXT = 1 << 20  # an instance's input or target; Vision-Flan's longest are a few thousand characters


def at_most(value: str | None, limit: int, *, field: str) -> str | None:
    """`value`, or Invalid when it is longer than `limit` characters."""
    if value is not None and len(value) > limit:
        raise Invalid(f"The {field.replace('_', ' ')} is {len(value):,} characters long: keep it to {limit:,}.",
                      fields={field: f"at most {limit:,} characters"})
    return value
