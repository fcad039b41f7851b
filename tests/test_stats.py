"""The figures quality control reports, against values computed by hand or published."""

from __future__ import annotations

import pytest

from app.qc.stats import cohens_kappa, is_short_answer, normalise_answer, sample_size_for, wilson


def test_wilson_intervals_match_published_values():
    # Newcombe (1998), Statistics in Medicine 17:857, table I: 0/10 → 0–0.2775; 1/29 → 0.0061–0.1718.
    nothing = wilson(0, 10)
    assert (nothing.low, round(nothing.high, 4)) == (0.0, 0.2775)
    one = wilson(1, 29)
    assert (round(one.low, 4), round(one.high, 4)) == (0.0061, 0.1718)
    everything = wilson(10, 10)
    assert everything.high == 1.0 and everything.rate == 1.0
    assert wilson(0, 0) is None
    with pytest.raises(ValueError):
        wilson(3, 2)


def test_cohens_kappa_on_a_textbook_table():
    # 50 items: both yes 20, both no 15, yes/no 5, no/yes 10 → po 0.70, pe 0.50, kappa 0.40.
    pairs = [("yes", "yes")] * 20 + [("no", "no")] * 15 + [("yes", "no")] * 5 + [("no", "yes")] * 10
    assert cohens_kappa(pairs) == pytest.approx(0.4)
    assert cohens_kappa([("a", "a")] * 5) == 1.0
    assert cohens_kappa([]) is None


def test_short_answers_are_normalised_before_matching():
    assert normalise_answer("Two  Dogs.") == normalise_answer("2 dogs") == "2 dogs"
    assert normalise_answer("The Eiffel Tower!") == "eiffel tower"
    assert normalise_answer("Ｃａｔ") == "cat"  # full-width forms
    assert is_short_answer("a red car") and not is_short_answer("A long sentence that describes a whole scene here.")


def test_the_sample_size_is_the_smallest_that_can_pass():
    n = sample_size_for(0.1, expected_error_rate=0.02)
    assert wilson(round(n * 0.02), n).high < 0.1 <= wilson(round((n - 1) * 0.02), n - 1).high
    assert sample_size_for(0.05, expected_error_rate=0.01) > n  # a stricter maximum needs more items
    with pytest.raises(ValueError):
        sample_size_for(0.05, expected_error_rate=0.1)
