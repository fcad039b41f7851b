"""What a stage-2 conversation must be for LLaVA's trainer to use it rather than mask it or crash: turns that
alternate from human to gpt, none empty, none holding the conversation template's own markers, and one `<image>`
in the first turn exactly when there is an image. The import refuses records that break it, and a fix may not
break it. Pure: turns in, a reason out."""

from __future__ import annotations

from typing import Any

IMAGE_TOKEN = "<image>"
# The conversation template's own markers: a value holding one makes LLaVA's trainer mask the record.
TEMPLATE_MARKERS = ("</s>", "<s>", "<unk>", " ASSISTANT:")


def shape_problem(turns: Any, *, has_image: bool) -> str | None:
    """Why the turns are not a conversation a trainer can use, in words (turns are counted from 1); None if they
    are."""
    if not isinstance(turns, list) or not turns:
        return "must be a non-empty list of turns"
    for index, turn in enumerate(turns):
        expected = "human" if index % 2 == 0 else "gpt"
        if not isinstance(turn, dict) or turn.get("from") != expected:
            return f"turn {index + 1} must be from {expected} (turns alternate, starting with human)"
        value = turn.get("value")
        if not isinstance(value, str) or not value.replace(IMAGE_TOKEN, "").strip():
            return f"turn {index + 1} is empty"
        marker = next((m for m in TEMPLATE_MARKERS if m in value), None)
        if marker:
            return f"turn {index + 1} contains the template marker {marker.strip()!r}"
    if turns[-1]["from"] != "gpt":
        return "the last turn must be from gpt"
    tokens = [turn["value"].count(IMAGE_TOKEN) for turn in turns]
    if has_image and (tokens[0] != 1 or sum(tokens) != 1):
        return "a record with an image needs exactly one <image>, in the first turn"
    if not has_image and sum(tokens):
        return "<image> appears but the record has no image"
    return None
