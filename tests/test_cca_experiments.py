"""Lesson 02's claims hold on other seeds than the lesson's (``claims_hold``); the helpers behind them."""

import pytest
from claims_hold import claim_tests

from mmcourse.experiments import cca as experiments

measured, test_every_claim_is_measured, test_claim_holds = claim_tests(experiments, seeds=(1, 2))


@pytest.mark.parametrize("seed", [1, 2])
def test_agrees_with_sklearn(seed):
    result = experiments.against_sklearn(seed=seed, repeats=1)
    assert result["difference"] < 1e-3, result


def test_best_nonlinear_total():
    assert experiments.best_nonlinear_total((0.9, 0.7), 1) == pytest.approx(0.9)
    assert experiments.best_nonlinear_total((0.9, 0.7), 2) == pytest.approx(0.9 + 0.81)
    assert experiments.best_nonlinear_total((0.9, 0.7), 3) == pytest.approx(0.9 + 0.81 + 0.729)
    assert experiments.best_nonlinear_total((0.5, 0.45), 2) == pytest.approx(0.95)
