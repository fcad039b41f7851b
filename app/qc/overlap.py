"""Which other tasks' instructions read most like this one: TF-IDF cosine, pure Python.

Good enough for a few hundred tasks (Vision-Flan has 187), so reviewers can check that tasks do not overlap.
The IDF is smoothed as scikit-learn's is (ln((1 + N) / (1 + df)) + 1, the query counted as a document), so a
term shared by every instruction still weighs: a studio with two tasks sees their overlap too. Function words
are left out, or they would make every pair of English instructions look a little alike."""

from __future__ import annotations

import math
import re
from collections import Counter

_WORD = re.compile(r"[a-z0-9]+")
FUNCTION_WORDS = frozenset({"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "how", "in", "is",
                            "it", "its", "of", "on", "or", "that", "the", "this", "to", "what", "which", "with"})


def _terms(text: str) -> Counter[str]:
    return Counter(word for word in _WORD.findall(text.lower()) if word not in FUNCTION_WORDS)


def most_similar(text: str, others: list[tuple[str, str]], *, limit: int = 5) -> list[tuple[str, float]]:
    """(label, cosine similarity) of the `limit` most similar of `others` = [(label, text)], best first."""
    query = _terms(text)
    if not query or not others:
        return []
    documents = [(label, _terms(other)) for label, other in others]
    frequency = Counter(term for terms in [query, *(terms for _, terms in documents)] for term in terms)
    count = len(documents) + 1

    def vector(terms: Counter[str]) -> dict[str, float]:
        return {term: n * (math.log((1 + count) / (1 + frequency[term])) + 1) for term, n in terms.items()}

    def cosine(a: dict[str, float], b: dict[str, float]) -> float:
        dot = sum(weight * b.get(term, 0.0) for term, weight in a.items())
        norm = math.sqrt(sum(w * w for w in a.values())) * math.sqrt(sum(w * w for w in b.values()))
        return dot / norm if norm else 0.0

    target = vector(query)
    scored = [(label, round(cosine(target, vector(terms)), 3)) for label, terms in documents]
    return sorted((pair for pair in scored if pair[1] > 0), key=lambda pair: -pair[1])[:limit]
