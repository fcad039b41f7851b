"""Scoring a model's answer against a target: previews and the fine-tune's evaluation share this.

Option tasks are scored by the option the answer names, parsed and compared exactly:
- a label alone ("(c)", "c)", "C.", "c", "3." for numbered options), or a label followed by text, which must
  then be that option's text ("(c) bird"; "(b) bird" names two options and counts as wrong);
- or the text of exactly one option ("bird.").
Anything else (empty, noise, a word that merely starts with a label's letter) names no option and is wrong.
Other tasks compare the normalised answer with the normalised target (VQA-style, `stats.normalise_answer`)."""

from __future__ import annotations

import re

from app.qc.stats import normalise_answer

_PREAMBLE = re.compile(r"^\s*(?:(?:the\s+)?(?:correct\s+)?(?:answer|option)\s*(?:is\s*)?[:\-]?\s*)", re.IGNORECASE)
# A label is bracketed or followed by a dot, a bracket or a colon; a bare letter or number counts only alone.
_LABEL = re.compile(r"^\s*(?:\(\s*([a-z]|\d{1,2})\s*\)|([a-z]|\d{1,2})\s*[).:])(?=\s|$)\s*(.*)$",
                    re.IGNORECASE | re.DOTALL)
_BARE = re.compile(r"^\s*([a-z]|\d{1,2})\s*$", re.IGNORECASE)


def _index(label: str, numbered: bool) -> int | None:
    if label.isdigit() != numbered:
        return None  # "2" in a lettered task is an answer's text, not a label
    return int(label) - 1 if numbered else ord(label.lower()) - ord("a")


def parse_option(answer: str, options: list[str], *, numbered: bool = False) -> int | None:
    """The index of the option `answer` names, or None when it names none (or two that disagree).
    `numbered`: the options are labelled 1., 2., … rather than by letters."""
    found = _named(answer, options, numbered)
    without_preamble = _PREAMBLE.sub("", answer, count=1)  # "Answer: (c)", "The answer is c"
    if found is None and without_preamble != answer:
        found = _named(without_preamble, options, numbered)
    return found


def _named(text: str, options: list[str], numbered: bool) -> int | None:
    if labelled := _LABEL.match(text):
        label, rest = labelled.group(1) or labelled.group(2), labelled.group(3).strip()
    elif bare := _BARE.match(text):
        label, rest = bare.group(1), ""
    else:
        label = rest = None
    index = _index(label, numbered) if label else None
    if index is not None and 0 <= index < len(options):
        agrees = not rest or normalise_answer(rest) == normalise_answer(options[index])
        return index if agrees else None
    said = normalise_answer(text)
    named = [k for k, option in enumerate(options) if said and normalise_answer(option) == said]
    return named[0] if len(named) == 1 else None


def matches(answer: str, target: str, options: list[str] | None) -> bool:
    """Whether `answer` is right: the same option as the target's for option tasks, else the same normalised
    text. A target that names no option (an output template reworded it) is compared as text."""
    if options:
        numbered = bool(re.match(r"^\s*\d", target))
        wanted = parse_option(target, options, numbered=numbered)
        if wanted is not None:
            return parse_option(answer, options, numbered=numbered) == wanted
    wanted_text = normalise_answer(target)
    return bool(wanted_text) and normalise_answer(answer) == wanted_text
