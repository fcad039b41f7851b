"""Pre-screens of stage-2 conversations: what a reviewer should read first, each finding with its reason in words.

The import already refuses what a trainer cannot use (roles out of order, empty turns); these find what it can use
and should not learn from, as the papers found it in LLaVA-Instruct and its successors: answers that refuse or
apologise (LLaVA-NeXT #158), answers that name an object their source never mentions (CHAIR's objects, where the
conversation's source is known), conversations longer than the trainer's length (cut short in training, or dropped),
and the same conversation more than once, exactly or but for case, spacing and punctuation. Each rule is a pure
function of the conversations; `screen` applies them all to a pool's."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from app.qc.objects import objects_named

RuleName = Literal["refusal", "too_long", "duplicate", "near_duplicate", "unseen_object"]
RULES: dict[RuleName, str] = {
    "refusal": "an answer refuses or apologises",
    "unseen_object": "an answer names an object its source never mentions",
    "too_long": "longer than the trainer's length",
    "duplicate": "the same conversation as another",
    "near_duplicate": "the same conversation as another but for case, spacing or punctuation",
}
# Openings and phrases of answers that decline, apologise or disclaim instead of answering.
REFUSAL = re.compile(
    r"\b(i'?m sorry|i am sorry|i apologi[sz]e|sorry, but|i (?:can ?not|can't|am unable to|'m unable to|am not able "
    r"to)|as an ai\b|as a language model|i do not have the ability|i don't have the ability|unfortunately, i)",
    re.IGNORECASE)


@dataclass(frozen=True)
class Budget:
    """The trainer's length, as the export's spec counts it: its tokens, what an image takes, the maximum."""

    count_tokens: Callable[[str], int]
    image_tokens: int
    max_tokens: int


@dataclass(frozen=True)
class Finding:
    rule: RuleName
    detail: str  # the reason, for the reviewer: the phrase, the length, the other conversation


def refusal(turns: list[dict]) -> Finding | None:
    for number, turn in enumerate(turns, start=1):
        if turn.get("from") == "gpt" and (match := REFUSAL.search(str(turn.get("value", "")))):
            return Finding("refusal", f"turn {number} says “{match.group(0)}”")
    return None


def unseen_object(turns: list[dict], source: str | None) -> Finding | None:
    """An object an answer names that neither the conversation's source (what its writer was given: a caption, the
    dataset's words) nor its questions mention: what a writer that never saw the image made up (CHAIR's objects).
    Only for a conversation whose source is known."""
    if not source:
        return None
    known = set(objects_named(source))
    for number, turn in enumerate(turns, start=1):
        if turn.get("from") == "human":
            known |= set(objects_named(str(turn.get("value", ""))))
            continue
        unseen = {kind: word for kind, word in objects_named(str(turn.get("value", ""))).items() if kind not in known}
        if unseen:
            words = ", ".join(f"“{word}”" for word in unseen.values())
            return Finding("unseen_object", f"turn {number} names {words}, which its source never mentions")
    return None


def source_of(origin: dict | None) -> str | None:
    """What a synthesized conversation's writer was given, in words (its origin's context); None when unknown."""
    context = (origin or {}).get("context") or {}
    text = context.get("text") if isinstance(context, dict) else None
    return text if isinstance(text, str) else None


def too_long(turns: list[dict], *, has_image: bool, budget: Budget) -> Finding | None:
    tokens = sum(budget.count_tokens(str(turn.get("value", ""))) for turn in turns) + (
        budget.image_tokens if has_image else 0)
    if tokens > budget.max_tokens:
        return Finding("too_long", f"about {tokens:,} tokens{' with the image' if has_image else ''}, over "
                                   f"{budget.max_tokens:,}")
    return None


def _exact(turns: list[dict]) -> tuple:
    return tuple((turn.get("from"), str(turn.get("value", ""))) for turn in turns)


def _loose(turns: list[dict]) -> tuple:
    return tuple(" ".join(re.sub(r"[^\w\s]", " ", str(turn.get("value", "")).lower()).split()) for turn in turns)


def screen(items: Iterable[tuple[int, list[dict], int | None, str | None]], *, budget: Budget
           ) -> dict[int, list[Finding]]:
    """Findings per position, for (position, turns, image id or None, source text or None) in the pool's order. A
    duplicate is the same turns about the same image (or both text only); it names the first conversation it
    repeats, which is not itself a finding."""
    found: dict[int, list[Finding]] = {}
    exact: dict[tuple, int] = {}
    loose: dict[tuple, int] = {}
    for position, turns, image_id, source in items:
        long = too_long(turns, has_image=image_id is not None, budget=budget)
        findings = [finding for finding in (refusal(turns), unseen_object(turns, source), long) if finding]
        key, near = (image_id, _exact(turns)), (image_id, _loose(turns))
        if key in exact:
            findings.append(Finding("duplicate", f"the same as conversation {exact[key]}"))
        elif near in loose:
            findings.append(Finding("near_duplicate", f"the same as conversation {loose[near]} but for case, spacing "
                                                      "or punctuation"))
        exact.setdefault(key, position)
        loose.setdefault(near, position)
        if findings:
            found[position] = findings
    return found
