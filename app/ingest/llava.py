"""The released Vision-Flan / LLaVA training format, read back in so that released data can be re-curated.

    {"id", "image" (relative path; absent for text-only), "task_name",
     "conversations": [{"from": "human", "value": "<image>\\n..."}, {"from": "gpt", "value": "..."}]}

The human turn, without its `<image>` token, becomes the instance input; the gpt turn its target. Only
single-exchange records describe an instance; longer conversations belong in a stage-2 pool."""

from __future__ import annotations

from typing import Any

from app.ingest.unified import FieldProblem, InstanceDraft, source_id, storable, task_and_dataset, within_limit

IMAGE_TOKEN = "<image>"
KNOWN_FIELDS = frozenset({"id", "image", "task_name", "conversations"})


def parse_llava(data: Any, line: int) -> InstanceDraft:
    if not isinstance(data, dict):
        raise FieldProblem("record", f"must be a JSON object, not {type(data).__name__}")
    name = data.get("task_name")
    if not isinstance(name, str) or "+" not in name:
        raise FieldProblem("task_name", "is required, as DATASET+task")
    task, dataset = task_and_dataset(name.split("+", 1)[0], name)
    image = data.get("image")
    if image is not None and (not isinstance(image, str) or not image.strip()):
        raise FieldProblem("image", "must be one relative path (a string), or absent")
    human, gpt = _exchange(data.get("conversations"))
    prompt = human.replace(IMAGE_TOKEN, "").strip()
    extra = {key: value for key, value in data.items() if key not in KNOWN_FIELDS}
    storable(extra, "record")
    return InstanceDraft(
        line=line, dataset_name=dataset, task_name=task, source_id=source_id(data.get("id"), field="id"),
        image_path=image, input_text=prompt or None, options=None, raw_output=gpt, human_preferred_output=None,
        provenance={"format": "llava", **extra},
    )


def _exchange(conversations: Any) -> tuple[str, str]:
    if not isinstance(conversations, list) or len(conversations) != 2:
        raise FieldProblem("conversations", "must be one human turn followed by one gpt turn")
    turns = []
    for expected, turn in zip(("human", "gpt"), conversations, strict=True):
        if not isinstance(turn, dict) or turn.get("from") != expected:
            raise FieldProblem("conversations", f"turns must go human, gpt; found {_speaker(turn)!r} for {expected}")
        value = turn.get("value")
        if not isinstance(value, str) or not value.replace(IMAGE_TOKEN, "").strip():
            raise FieldProblem("conversations", f"the {expected} turn is empty")
        turns.append(within_limit(value, "conversations"))
    if IMAGE_TOKEN in turns[1]:
        raise FieldProblem("conversations", "the gpt turn contains an <image> token")
    return turns[0], turns[1]


def _speaker(turn: Any) -> str:
    return turn.get("from", "nobody") if isinstance(turn, dict) else type(turn).__name__
