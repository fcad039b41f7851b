"""Scoring answers: option answers are parsed and compared exactly, so noise never counts as right."""

from __future__ import annotations

import random
import string

import pytest

from app.qc.answers import matches, parse_option

SHAPES = ["circle", "square", "triangle"]


@pytest.mark.parametrize("answer", ["(a) circle", "(a)", "a", "A", "A.", "a)", "a:", "circle", "Circle.",
                                    " (A)  circle ", "Answer: (a)", "The answer is a", "a circle", "the circle"])
def test_the_right_option_by_label_text_or_both_matches(answer):
    assert matches(answer, "(a) circle", SHAPES)


@pytest.mark.parametrize("answer", [
    "",  # empty
    "   ",
    "cat circle square",  # noise that starts with the target's letter (the old scoring called it right)
    "ccc",
    "aaaa",
    "(b)",  # a wrong letter
    "b",
    "square",
    "(b) circle",  # the right text with the wrong letter
    "(a) square",  # the right letter with the wrong text
    "(d)",  # no such option
    "circle square",  # two options' texts
    "1.",  # a number where the options are lettered
    "ABC",
])
def test_noise_wrong_letters_and_contradictions_do_not_match(answer):
    assert not matches(answer, "(a) circle", SHAPES)


def test_a_letter_that_is_not_the_first_is_parsed_as_itself():
    assert matches("c", "(c) triangle", SHAPES) and matches("(C) triangle", "(c) triangle", SHAPES)
    assert not matches("cat", "(c) triangle", SHAPES)  # starts with "c", names nothing


def test_numbered_options_and_options_that_are_numbers():
    assert matches("2.", "2. square", SHAPES) and matches("square", "2. square", SHAPES)
    assert not matches("b", "2. square", SHAPES)  # letters are not labels of numbered options
    counts = ["1", "2", "3"]
    assert matches("2", "(b) 2", counts) and matches("(b)", "(b) 2", counts) and matches("two", "(b) 2", counts)
    assert not matches("1", "(b) 2", counts)  # "1" is option (a)'s text, not a label


def test_parse_option_says_which_option_or_none():
    assert parse_option("(b) square", SHAPES) == 1
    assert parse_option("triangle!", SHAPES) == 2
    assert parse_option("(b) triangle", SHAPES) is None
    assert parse_option("Option: c", SHAPES) == 2
    assert parse_option("answer sheet", ["answer sheet", "menu"]) == 0  # a preamble is only stripped if needed


def test_random_noise_scores_zero_against_every_option():
    rng = random.Random(0)
    alphabet = string.ascii_letters + string.digits + " .,()"
    noise = ["".join(rng.choice(alphabet) for _ in range(rng.randint(2, 30))) for _ in range(2000)]
    noise = [text for text in noise if len(text.strip()) > 1 and not text.strip("() .:").isalpha()]
    hits = sum(matches(text, f"({letter}) {shape}", SHAPES) for text in noise
               for letter, shape in zip("abc", SHAPES, strict=True))
    assert hits == 0


def test_free_text_is_compared_after_normalising():
    assert matches("Two apples.", "2 apples", None) and not matches("3 apples", "2 apples", None)
    assert not matches("", "", None)  # an empty target matches nothing
    assert matches("it is a red circle", "It is a red circle.", SHAPES)  # a target naming no option: as text
