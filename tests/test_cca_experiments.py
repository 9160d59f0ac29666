"""Lesson 02's claims hold for three seeds: the same experiments and conditions as the notebook's claims."""

import pytest

from mmcourse.experiments import cca as experiments

SEEDS = [0, 1, 2]


@pytest.mark.parametrize("seed", SEEDS)
def test_cca_recovers_the_planted_correlations(seed):
    result = experiments.recover_correlations(seed=seed)
    assert result["worst"] < 3, result


@pytest.mark.parametrize("seed", SEEDS)
def test_agrees_with_sklearn_and_is_faster(seed):
    result = experiments.against_sklearn(seed=seed)
    assert result["difference"] < 1e-3, result
    assert result["speedup"] > 1, result


@pytest.mark.parametrize("seed", SEEDS)
def test_plain_cca_overfits_and_a_ridge_restores_held_out_correlation(seed):
    result = experiments.overfitting(seed=seed, reg=0.3)
    assert result["plain_train"].min() > 0.999 and result["plain_held_out"].abs().max() < 0.2, result
    assert result["ridge_held_out"][0] > 0.6, result
    assert result["ridge_held_out"][0] > result["plain_held_out"][0] + 0.5, result


@pytest.mark.parametrize("seed", SEEDS)
def test_av_digits_retrieval_beats_chance(seed):
    result = experiments.av_digits_retrieval(seed=seed)
    assert result["recall1"] > 3 * result["chance1"], result
    assert result["recall5"] > result["chance5"] + 0.25, result
    assert result["reg"] in result["validation_recall1"]


@pytest.mark.parametrize("seed", SEEDS)
def test_small_batches_make_noise_look_correlated(seed):
    bias = experiments.batch_size_bias(seed=seed)
    assert bias[12] > 1.9 and bias[1000] < 0.4, bias


@pytest.mark.parametrize("seed", SEEDS)
def test_deep_cca_beats_linear_cca_on_nonlinear_views(seed):
    result = experiments.deep_vs_linear(seed=seed)
    assert result["linear_total"] + 0.1 < result["deep_total"] < result["best_possible"] + 0.02, {
        k: result[k] for k in ("linear_total", "deep_total", "best_possible")}


def test_best_nonlinear_total():
    assert experiments.best_nonlinear_total((0.9, 0.7), 1) == pytest.approx(0.9)
    assert experiments.best_nonlinear_total((0.9, 0.7), 2) == pytest.approx(0.9 + 0.81)
    assert experiments.best_nonlinear_total((0.9, 0.7), 3) == pytest.approx(0.9 + 0.81 + 0.729)
    assert experiments.best_nonlinear_total((0.5, 0.45), 2) == pytest.approx(0.95)
