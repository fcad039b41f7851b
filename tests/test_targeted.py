"""Targeted samples: drawn in proportion to risk with a uniform floor, and an error rate that stays unbiased."""

from __future__ import annotations

import random
from statistics import fmean

import pytest

from app.qc.stats import wilson
from app.qc.targeted import error_rate, floor_probability, inclusion_probabilities, poisson_draw

TASK_SIZE = 2_000
PLANTED = 100  # 5% wrong targets
BUDGET = 200  # a 10% review


def planted_task(seed: int = 7) -> tuple[list[bool], list[float]]:
    """A task with known wrong targets and an imperfect model's risks: wrong targets tend to look riskier, but
    a fifth of them look as safe as the right ones, and many right ones look risky."""
    rng = random.Random(seed)
    wrong = [True] * PLANTED + [False] * (TASK_SIZE - PLANTED)
    rng.shuffle(wrong)
    risks = [rng.lognormvariate(1.5, 0.8) if is_wrong and rng.random() < 0.8 else rng.lognormvariate(0, 0.8)
             for is_wrong in wrong]
    return wrong, risks


def test_inclusion_probabilities_sum_to_the_budget_and_respect_the_floor():
    _, risks = planted_task()
    probabilities = inclusion_probabilities(risks, size=BUDGET, uniform_share=0.2)
    assert sum(probabilities) == pytest.approx(BUDGET)
    floor = floor_probability(count=TASK_SIZE, size=BUDGET, uniform_share=0.2)
    assert floor == pytest.approx(0.02) and min(probabilities) >= floor - 1e-12
    assert max(probabilities) <= 1.0
    riskiest = max(range(TASK_SIZE), key=risks.__getitem__)
    assert probabilities[riskiest] == max(probabilities)


def test_a_risk_that_would_pass_certainty_is_capped_and_its_share_goes_to_the_rest():
    probabilities = inclusion_probabilities([1000.0, 1.0, 1.0, 1.0], size=2, uniform_share=0.1)
    assert probabilities[0] == 1.0
    assert probabilities[1:] == pytest.approx([1 / 3] * 3)


def test_equal_risks_are_a_uniform_sample_and_the_estimate_is_the_plain_proportion():
    probabilities = inclusion_probabilities([1.0] * 50, size=10, uniform_share=0.5)
    assert probabilities == pytest.approx([0.2] * 50)
    verdicts = [(k < 3, 0.2) for k in range(10)]
    estimate = error_rate(verdicts)
    assert estimate.interval.rate == pytest.approx(0.3)
    assert (estimate.reviewed, estimate.errors) == (10, 3)
    # Uniform weights: the weighted interval is Wilson's (the effective size, 10 / (1 - π) with the finite
    # population correction, is capped at the 10 verdicts).
    plain = wilson(3, 10)
    assert estimate.effective_size == 10
    assert (estimate.interval.low, estimate.interval.high) == pytest.approx((plain.low, plain.high))


def test_no_verdict_no_estimate_and_a_clean_sample_still_has_an_upper_bound():
    assert error_rate([]) is None
    clean = error_rate([(False, 0.1)] * 40)
    assert clean.interval.rate == 0.0 and clean.interval.low == 0.0
    assert clean.interval.high == pytest.approx(wilson(0, 40).high)
    with pytest.raises(ValueError):
        error_rate([(True, 0.0)])


def test_the_weighted_interval_covers_the_true_rate_and_the_estimate_is_unbiased():
    """Over 300 targeted draws from a task whose error rate is known, the 95% interval covers the truth in at
    least 93% of draws, and the mean estimate is within one percentage point of it."""
    wrong, risks = planted_task()
    truth = sum(wrong) / TASK_SIZE
    probabilities = inclusion_probabilities(risks, size=BUDGET, uniform_share=0.2)
    estimates, covered = [], 0
    for seed in range(300):
        drawn = poisson_draw(probabilities, seed=seed)
        estimate = error_rate([(wrong[i], probabilities[i]) for i in drawn])
        estimates.append(estimate.interval.rate)
        covered += estimate.interval.low <= truth <= estimate.interval.high
    assert covered / 300 >= 0.93, covered / 300
    assert abs(fmean(estimates) - truth) <= 0.01, fmean(estimates)


def test_a_targeted_draw_finds_several_times_the_errors_a_uniform_one_does():
    wrong, risks = planted_task()
    targeted = inclusion_probabilities(risks, size=BUDGET, uniform_share=0.2)
    uniform = inclusion_probabilities([1.0] * TASK_SIZE, size=BUDGET, uniform_share=1.0)
    found_targeted = fmean(sum(wrong[i] for i in poisson_draw(targeted, seed=seed)) for seed in range(50))
    found_uniform = fmean(sum(wrong[i] for i in poisson_draw(uniform, seed=seed)) for seed in range(50))
    assert found_uniform == pytest.approx(PLANTED * BUDGET / TASK_SIZE, rel=0.2)  # the base rate: about 10
    assert found_targeted >= 2.5 * found_uniform, (found_targeted, found_uniform)  # ~2.9 with these risks
