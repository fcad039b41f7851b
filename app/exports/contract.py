"""The LLaVA trainer's rules for a record (DESIGN.md, "Export contract"), checked one record at a time.

The trainer fails silently — it masks a whole record, drops turns, cuts answers — so every rule it would
break is named here, with the record it concerns. Pure: no database, no files but the image folder."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from app.prompts.tokens import CHARS_PER_TOKEN, estimate

IMAGE_TOKEN = "<image>"
TEMPLATE_MARKERS = ("</s>", "<s>", "<unk>", " ASSISTANT:")
_MARKERS = re.compile("|".join(re.escape(marker) for marker in TEMPLATE_MARKERS))
SAFE_IMAGE_NAME = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


@dataclass(frozen=True)
class Violation:
    record: str  # the record's id, or its position when it has none
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.record}: {self.rule} ({self.detail})"


def _value_problems(k: int, value) -> list[tuple[str, str]]:
    """What is wrong with turn k's value (k from 0)."""
    if not isinstance(value, str) or not value.strip():
        return [("empty value", f"turn {k + 1} is empty or whitespace")]
    problems = [("template marker", f"turn {k + 1} contains {marker!r}, which masks the whole record")
                for marker in TEMPLATE_MARKERS if marker in value]
    if k > 0 and IMAGE_TOKEN in value:
        problems.append(("image token", f"turn {k + 1} has {IMAGE_TOKEN}; only the first human turn may"))
    return problems


def _image_token_problem(has_image: bool, tokens_in_first: int) -> tuple[str, str] | None:
    if has_image and tokens_in_first != 1:
        return "image token", f"the first human turn has {tokens_in_first} {IMAGE_TOKEN} tokens, needs exactly 1"
    if not has_image and tokens_in_first:
        return "image token", f"a text-only record has {IMAGE_TOKEN} in its first turn"
    return None


def _length_problem(text: str, has_image: bool, count_tokens, max_tokens: int,
                    image_tokens: int) -> tuple[str, str] | None:
    needed = count_tokens(text) + (image_tokens if has_image else 0)
    if needed > max_tokens:
        image = f", {image_tokens:,} of them the image's" if has_image else ""
        return "too long", (f"about {needed:,} tokens{image}, over the trainer's {max_tokens:,}: the answer would be "
                            "cut off")
    return None


def pair_checker(count_tokens: Callable[[str], int] | None = None, max_tokens: int = 2048,
                 image_tokens: int = 576) -> Callable[..., list[Violation]]:
    """`check_record` for the records an export makes — one human prompt, one gpt answer, an image named by
    the exporter — without building them first: a function (record id, prompt, target, has image) -> the
    rules broken. An export checks 1.66M of them, so the clean case is a few comparisons and substring scans
    (with the estimate, characters / 4, the length rule compares lengths); the detailed rules run only when
    something is off."""
    markers = _MARKERS.search
    estimated = count_tokens is estimate
    room = {has_image: max_tokens - (image_tokens if has_image else 0) for has_image in (True, False)}
    max_chars = {has_image: CHARS_PER_TOKEN * tokens for has_image, tokens in room.items()}

    def check(record_id: str, prompt: str, target: str, has_image: bool,
              tokens_of_image: int | None = None) -> list[Violation]:
        """`tokens_of_image`: this record's image's tokens, where they depend on its size (a model family's)."""
        if tokens_of_image is not None:
            return _checked_with(record_id, prompt, target, tokens_of_image)
        if (prompt.count(IMAGE_TOKEN) == has_image and prompt and target and not prompt.isspace()
                and not target.isspace()
                # Every marker but " ASSISTANT:" starts with "<": when the only "<" is the image token's, a few
                # substring scans say there is none (the regex pass cost 1 µs a record, a fifth of the loop).
                and ((prompt.count("<") == has_image and "<" not in target and "ASSISTANT:" not in prompt
                      and "ASSISTANT:" not in target)
                     or (IMAGE_TOKEN not in target and not markers(f"{prompt}\0{target}")))  # NUL: in no marker
                and ((len(prompt) + len(target) <= max_chars[has_image]) if estimated
                     else count_tokens is None or count_tokens(prompt + target) <= room[has_image])):
            return []
        found = _value_problems(0, prompt) + _value_problems(1, target)
        image = _image_token_problem(has_image, prompt.count(IMAGE_TOKEN))
        if image:
            found.append(image)
        if count_tokens is not None and not found:
            length = _length_problem(prompt + target, has_image, count_tokens, max_tokens, image_tokens)
            if length:
                found.append(length)
        return [Violation(record_id, rule, detail) for rule, detail in found]

    @cache
    def every_rule_but_length() -> Callable[..., list[Violation]]:  # made when first needed
        return pair_checker(None, max_tokens, 0)

    def _checked_with(record_id: str, prompt: str, target: str, tokens_of_image: int) -> list[Violation]:
        found = every_rule_but_length()(record_id, prompt, target, True)
        if found or count_tokens is None:
            return found
        length = _length_problem(prompt + target, True, count_tokens, max_tokens, tokens_of_image)
        return [Violation(record_id, *length)] if length else []

    return check


def check_record(record: dict, *, image_folder: Path | None = None, image_names: set[str] | None = None,
                 count_tokens: Callable[[str], int] | None = None, max_tokens: int = 2048,
                 image_tokens: int = 576) -> list[Violation]:
    """Every rule the record breaks (none: it trains as intended)."""
    name = str(record.get("id") or "?")
    problems: list[Violation] = []

    def fail(rule: str, detail: str) -> None:
        problems.append(Violation(name, rule, detail))

    if not isinstance(record.get("id"), str) or not record["id"].strip():
        fail("id", "missing or empty")
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns:
        fail("conversations", "missing or empty")
        return problems
    for k, turn in enumerate(turns):
        expected = "human" if k % 2 == 0 else "gpt"
        if not isinstance(turn, dict) or turn.get("from") != expected:
            fail("roles", f"turn {k + 1} must be from {expected}")
            continue
        for rule, detail in _value_problems(k, turn.get("value")):
            fail(rule, detail)
    last = turns[-1]
    if not isinstance(last, dict) or last.get("from") != "gpt":
        fail("roles", "the last turn must be from gpt (the trainer masks a record that ends with a question)")
    first = turns[0].get("value", "") if isinstance(turns[0], dict) else ""
    tokens_in_first = first.count(IMAGE_TOKEN) if isinstance(first, str) else 0
    if "image" in record:
        image = record["image"]
        if not isinstance(image, str) or not SAFE_IMAGE_NAME.match(image) or ".." in image.split("/"):
            fail("image", f"must be one ASCII-safe relative path, not {image!r}")
        elif image_names is not None:  # the images are in an archive
            if image not in image_names:
                fail("image", f"{image} is not among the version's images")
        elif image_folder is not None and not (image_folder / image).is_file():
            fail("image", f"{image} is not in the image folder")
    token_problem = _image_token_problem("image" in record, tokens_in_first)
    if token_problem:
        fail(*token_problem)
    if count_tokens is not None and not problems:
        length = _length_problem("".join(turn["value"] for turn in turns), "image" in record, count_tokens,
                                 max_tokens, image_tokens)
        if length:
            fail(*length)
    return problems


def check_file(records: Iterable[dict], tokens_of_image: Callable[[str], int] | None = None,
               **rules) -> Iterator[Violation]:
    """Every violation in a file's records, including ids used twice. `tokens_of_image(name)`: the tokens a
    record's image takes, where a model family counts them by its size."""
    seen: set[str] = set()
    for record in records:
        image = record.get("image")
        if tokens_of_image is not None and isinstance(image, str):
            yield from check_record(record, **{**rules, "image_tokens": tokens_of_image(image)})
        else:
            yield from check_record(record, **rules)
        record_id = record.get("id")
        if isinstance(record_id, str):
            if record_id in seen:
                yield Violation(record_id, "duplicate id", "ids must be unique")
            seen.add(record_id)
