"""The figures quality control reports: Wilson intervals, Cohen's kappa, answer matching, sample sizes.

Pure functions, no database: the services feed them counts and pairs."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from statistics import NormalDist


@dataclass(frozen=True)
class Interval:
    rate: float
    low: float
    high: float


# Validation records below which a task's change in accuracy is not read as one: on 4 records one answer moves
# the accuracy 25 points, and a 95% interval of an accuracy on fewer than 20 is wider than 40 points.
FEWEST_TO_TELL = 20


def z_for(confidence: float) -> float:
    """The two-sided normal quantile: 1.96 for 95%."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(errors: int, n: int, *, confidence: float = 0.95) -> Interval | None:
    """The Wilson score interval for `errors` out of `n` (None for n = 0). Unlike the normal approximation it
    stays inside [0, 1] and is honest for 0 errors in a small sample — the usual case of a good spot check."""
    if n <= 0:
        return None
    if not 0 <= errors <= n:
        raise ValueError(f"errors ({errors}) must be between 0 and n ({n})")
    low, high = wilson_bounds(errors / n, n, confidence=confidence)
    return Interval(rate=errors / n, low=low, high=high)


def wilson_bounds(rate: float, n: float, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's bounds for a proportion `rate` seen in `n` verdicts (`n` may be an effective, fractional size)."""
    z = z_for(confidence)
    denominator = 1 + z * z / n
    centre = (rate + z * z / (2 * n)) / denominator
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if rate <= 0 else max(0.0, centre - half)  # exact at the ends, free of rounding dust
    high = 1.0 if rate >= 1 else min(1.0, centre + half)
    return low, high


def sample_size_for(max_error_rate: float, *, expected_error_rate: float = 0.02, confidence: float = 0.95,
                    limit: int = 10_000) -> int:
    """The smallest sample whose Wilson upper bound falls under `max_error_rate` if the task's true error rate
    is `expected_error_rate`: how many items a spot check needs to be able to pass at that confidence."""
    if not 0 <= expected_error_rate < max_error_rate < 1:
        raise ValueError("the expected error rate must be under the maximum, and both between 0 and 1")
    for n in range(1, limit + 1):
        if wilson(round(n * expected_error_rate), n, confidence=confidence).high < max_error_rate:
            return n
    return limit


def cohens_kappa(pairs: Iterable[tuple[str, str]] | Mapping[tuple[str, str], int]) -> float | None:
    """Agreement between two raters beyond chance, over the categories they used: from (first, second) pairs,
    or from a mapping of pair to count. None without pairs; 1.0 when both always agree on a single category
    (chance agreement is then 1 as well)."""
    counts = Counter(pairs) if not isinstance(pairs, Mapping) else Counter(dict(pairs))
    n = sum(counts.values())
    if not n:
        return None
    observed = sum(count for (first, second), count in counts.items() if first == second) / n
    firsts: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    for (first, second), count in counts.items():
        firsts[first] += count
        seconds[second] += count
    expected = sum(firsts[label] * seconds[label] for label in firsts.keys() | seconds.keys()) / (n * n)
    if expected >= 1.0:
        return 1.0
    return (observed - expected) / (1 - expected)


ARTICLES = re.compile(r"\b(a|an|the)\b")
NOT_WORD = re.compile(r"[^\w\s]")
SPACES = re.compile(r"\s+")
NUMBER_WORDS = {word: str(k) for k, word in enumerate(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"])}


def normalise_answer(text: str) -> str:
    """A short answer reduced to what matters (VQA-style): case, accents' width forms, punctuation, articles,
    spacing and small number words ("Two dogs." and "2 dogs" match)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = NOT_WORD.sub(" ", text)
    text = ARTICLES.sub(" ", text)
    words = [NUMBER_WORDS.get(word, word) for word in SPACES.split(text.strip()) if word]
    return " ".join(words)


SHORT_ANSWER_WORDS = 5


def is_short_answer(target: str) -> bool:
    """Targets of a few words are matched automatically; longer, free text is judged by a person."""
    return len(normalise_answer(target).split()) <= SHORT_ANSWER_WORDS
