"""A generator's reply, turned into a conversation or refused with its reason. Nothing a trainer could not use, and
nothing the pre-screens would flag as a refusal or as too long, is stored: a reply is text from a model, so each
of its parts is checked, never trusted."""

from __future__ import annotations

import re
from typing import Any

import orjson

from app.qc import prescreen
from app.qc.conversation_shape import IMAGE_TOKEN, shape_problem

MAX_TURNS = 10
FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


class Refused(ValueError):
    """The reply is not a conversation the pool may take; the message says why."""


def _json_object(text: str) -> Any:
    text = text.strip()
    fenced = FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise Refused("the reply holds no JSON object")
    try:
        return orjson.loads(text[start:end + 1])
    except orjson.JSONDecodeError as error:
        raise Refused(f"the reply's JSON does not parse ({error})") from None


def _pairs(data: Any) -> list[tuple[str, str]]:
    turns = data.get("turns") if isinstance(data, dict) else None
    if not isinstance(turns, list) or not turns:
        raise Refused('the reply has no "turns" list')
    if len(turns) > MAX_TURNS:
        raise Refused(f"the reply has {len(turns)} question-and-answer pairs, more than {MAX_TURNS}")
    pairs = []
    for number, turn in enumerate(turns, start=1):
        question = turn.get("question") if isinstance(turn, dict) else None
        answer = turn.get("answer") if isinstance(turn, dict) else None
        if not isinstance(question, str) or not isinstance(answer, str) or not question.strip() or not answer.strip():
            raise Refused(f"pair {number} needs a question and an answer, both non-empty text")
        pairs.append((question.replace(IMAGE_TOKEN, "").strip(), answer.replace(IMAGE_TOKEN, "").strip()))
    return pairs


def conversation(reply: str | None, *, has_image: bool, budget: prescreen.Budget, blind_source: str | None = None
                 ) -> list[dict[str, str]]:
    """The LLaVA-format turns of `reply`, the image's token leading the first question; raises Refused.
    `blind_source`: all a writer that did not see the image was given; an answer naming an object it does not
    mention is made up, and refused (a writer that saw the image may name what the dataset's words leave out: for
    it the rule is a pre-screen finding for the reviewer)."""
    if not reply or not reply.strip():
        raise Refused("the reply is empty")
    try:
        pairs = _pairs(_json_object(reply))
    except Refused:
        declined = prescreen.REFUSAL.search(reply)
        if declined:  # the more useful reason: a model that declines is told apart from one that rambles
            raise Refused(f"{prescreen.RULES['refusal']}: the reply says “{declined.group(0)}”") from None
        raise
    turns: list[dict[str, str]] = []
    for question, answer in pairs:
        turns += [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
    if any("\x00" in turn["value"] for turn in turns):
        raise Refused("the reply contains a NUL character, which the database cannot store")
    if has_image:
        turns[0]["value"] = f"{IMAGE_TOKEN}\n{turns[0]['value']}"
    problem = shape_problem(turns, has_image=has_image)
    if problem:
        raise Refused(f"not a conversation a trainer can use: {problem}")
    for finding in (prescreen.refusal(turns), prescreen.unseen_object(turns, blind_source),
                    prescreen.too_long(turns, has_image=has_image, budget=budget)):
        if finding:
            raise Refused(f"{prescreen.RULES[finding.rule]}: {finding.detail}")
    return turns
