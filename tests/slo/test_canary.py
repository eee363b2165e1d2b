"""The canary's statistics against known results, and the steps of the weight."""

from __future__ import annotations

import random

import pytest
from scipy import stats

from slo.canary import compare_errors, compare_latency, next_weight, previous_weight
from slo.scoring import Verdict


def test_mann_whitney_matches_the_known_result() -> None:
    # scipy's documented example (Conover): U = 17, exact two-sided p = 1/9, so one-sided p = 1/18.
    males, females = [19, 22, 16, 29, 24], [20, 11, 17, 12]
    result = compare_latency(males, females, min_samples=4)
    assert result.statistic == 17.0
    assert result.p_value == pytest.approx(1 / 18)
    assert result.verdict is Verdict.PASS, "p = 0.056 is not below 0.05"


def test_mann_whitney_agrees_with_scipy_and_catches_a_slower_service() -> None:
    rng = random.Random(7)
    monolith = [rng.lognormvariate(-4, 0.3) for _ in range(200)]
    service = [rng.lognormvariate(-4, 0.3) * 1.5 for _ in range(200)]
    expected = stats.mannwhitneyu(service, monolith, alternative="greater")
    result = compare_latency(service, monolith)
    assert result.statistic == pytest.approx(float(expected.statistic))
    assert result.p_value == pytest.approx(float(expected.pvalue))
    assert result.verdict is Verdict.FAIL
    assert compare_latency(monolith, service).verdict is Verdict.PASS, "a faster service passes"


def test_a_margin_forgives_the_cost_of_a_network_hop() -> None:
    rng = random.Random(11)
    monolith = [0.02 + rng.random() * 0.01 for _ in range(300)]
    service = [m + 0.001 for m in monolith]
    assert compare_latency(service, monolith).verdict is Verdict.FAIL
    assert compare_latency(service, monolith, relative_margin=0.1, absolute_margin=0.005).verdict is Verdict.PASS


def test_too_few_samples_on_a_side_is_inconclusive() -> None:
    result = compare_latency([0.01] * 10, [0.01] * 100, min_samples=20)
    assert result.verdict is Verdict.INCONCLUSIVE and result.p_value is None
    assert compare_errors(0, 10, 0, 100, min_samples=20).verdict is Verdict.INCONCLUSIVE


def test_errors_fisher_for_small_counts_and_z_for_large() -> None:
    fisher = compare_errors(4, 50, 0, 50)
    assert fisher.test == "Fisher exact"
    assert fisher.p_value == pytest.approx(stats.fisher_exact([[4, 46], [0, 50]], alternative="greater").pvalue)
    assert fisher.verdict is Verdict.PASS, "4 of 50 against 0 of 50 is not significant at 0.05"
    z = compare_errors(60, 1000, 20, 1000)
    assert z.test == "two-proportion z" and z.verdict is Verdict.FAIL and z.p_value is not None and z.p_value < 1e-4
    assert compare_errors(20, 1000, 20, 1000).verdict is Verdict.PASS
    assert compare_errors(0, 100, 0, 100).verdict is Verdict.PASS


def test_weight_steps() -> None:
    assert [next_weight(w) for w in (0, 10, 25, 50, 100, 30)] == [10, 25, 50, 100, 100, 50]
    assert [previous_weight(w) for w in (0, 10, 25, 50, 100, 30)] == [0, 0, 10, 25, 50, 25]
