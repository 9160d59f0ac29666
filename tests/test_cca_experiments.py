"""Lesson 02's claims hold on other seeds than the lesson's (``claims_hold``); the helpers behind them."""

import math

import pytest
import torch
from claims_hold import claim_tests

from mmcourse.data import load_av_digits
from mmcourse.experiments import cca as experiments
from mmcourse.metrics import ComparisonEntry, Retrieval, hits_at_k, recall_at_k

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


def test_standardiser_leaves_constant_features_at_zero():
    train = torch.tensor([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]], dtype=torch.float64)
    standardise = experiments.standardiser(train)
    assert torch.allclose(standardise(train), torch.tensor([[-1.0, 0.0], [0.0, 0.0], [1.0, 0.0]], dtype=torch.float64))
    assert torch.equal(standardise(torch.tensor([[3.0, 7.0]], dtype=torch.float64)),
                       torch.tensor([[0.0, 2.0]], dtype=torch.float64))


def test_retrieval_on_clean_digits_with_constant_pixels():
    """Clean digits have pixels that are 0 in every training image (a zero standard deviation)."""
    clean = load_av_digits(image_noise=0, occlusion=0, audio_snr_db=math.inf, seed=1)
    image, _, _ = experiments.av_digits_views(clean["train"])
    assert (image.std(0) == 0).any()
    result = experiments.av_digits_retrieval(data=clean)
    assert torch.isfinite(result["image_scores"]).all() and torch.isfinite(result["correlations"]).all()
    assert result["recall1"] > 4 * result["chance1"]  # clean data: far better than the noisy default


def test_hits_at_k_are_recall_per_query():
    g = torch.Generator().manual_seed(0)
    scores, relevant = torch.randn(30, 40, generator=g), torch.rand(30, 40, generator=g) < 0.1
    for k in (1, 5):
        hits = hits_at_k(scores, relevant, k)
        assert hits.shape == (30,) and hits.dtype == torch.bool
        assert hits.double().mean().item() == pytest.approx(recall_at_k(scores, relevant, k))


def test_speech_to_image_retrieval_gives_lesson_02s_rows_as_the_lesson_prints_them():
    """The rows lesson 07 computes when lesson 02 has not kept its own are the numbers lesson 02 prints: the same
    runs (data, settings, seed), the same retrieval as the lesson's Recall@K, query for query."""
    entries = experiments.speech_to_image_retrieval(seed=1)
    assert [e.method for e in entries] == ["linear CCA", "Deep CCA"]
    data = load_av_digits(seed=1)
    linear, deep = experiments.av_digits_retrieval(seed=1, data=data), experiments.deep_cca_retrieval(seed=1, data=data)
    assert entries == experiments.comparison_rows(linear, deep)
    for entry, result in zip(entries, (linear, deep)):
        assert isinstance(entry, ComparisonEntry) and isinstance(entry.retrieval, Retrieval)
        assert (entry.lesson, entry.pairs) == ("02", "all")
        r = entry.retrieval
        assert r.recall_at_1 == pytest.approx(result["recall1"]) and r.recall_at_5 == pytest.approx(result["recall5"])
        assert list(entry.hits) == result["hits1"].tolist()
        assert r.recall_at_1 > 2 * r.chance_at_1 and r.recall_at_5 > r.chance_at_5 + 0.1, entry
        assert r.chance_at_1 == pytest.approx(0.1, abs=0.01)  # ten digits, about equally frequent
    # labels chose linear CCA's ridge, and Deep CCA reuses it
    assert [e.labels for e in entries] == ["model selection", "model selection"]
    assert "chose with labels" in entries[1].note
    assert "chosen on validation" in entries[0].note and entries[0].split == entries[1].split


def _first_pair_by_generalised_eigenproblem(x, y, reg):
    """Ridge CCA's first pair solved another way than the package's (no whitening, no SVD): the top eigenvector of
    C_xy C_yy^-1 C_yx w = rho^2 C_xx w, then w_y = C_yy^-1 C_yx w_x. Returns w_x, w_y and the means."""
    import numpy as np
    import scipy.linalg

    x, y = x.numpy(), y.numpy()
    mx, my = x.mean(0), y.mean(0)
    xc, yc, n = x - mx, y - my, len(x)
    cxx = xc.T @ xc / (n - 1) + reg * np.eye(x.shape[1])
    cyy = yc.T @ yc / (n - 1) + reg * np.eye(y.shape[1])
    cxy = xc.T @ yc / (n - 1)
    _, vectors = scipy.linalg.eigh(cxy @ np.linalg.solve(cyy, cxy.T), cxx)
    wx = vectors[:, -1]
    return wx, np.linalg.solve(cyy, cxy.T @ wx), mx, my


def _first_test_correlation(views, scale, reg, n_validation=100):
    """The first test correlation of ridge CCA fitted on views' training pairs times ``scale``, solved
    independently (the generalised eigenproblem), on the test pairs after the first ``n_validation``."""
    import numpy as np

    wx, wy, mx, my = _first_pair_by_generalised_eigenproblem(views.x * scale, views.y * scale, reg)
    u = (views.x_test[n_validation:].numpy() * scale - mx) @ wx
    v = (views.y_test[n_validation:].numpy() * scale - my) @ wy
    return np.corrcoef(u, v)[0, 1]


def test_ridge_by_validation_shows_the_pick_only_training_and_validation_pairs_of_new_views():
    seen = []

    def pick(x, y, x_val, y_val, ridges):
        seen.append({"x": tuple(x.shape), "y": tuple(y.shape), "x_val": tuple(x_val.shape), "ridges": ridges,
                     "data": x})
        return 0.3

    result = experiments.ridge_by_validation(pick, seed=0)
    assert len(seen) == 2
    for call in seen:
        assert {k: v for k, v in call.items() if k != "data"} == \
            {"x": (100, 60), "y": (100, 60), "x_val": (100, 60), "ridges": experiments.RIDGES}
    # new views, not the ones section 4 and its explorer show (many_features(seed=0)); the second ones 100 times larger
    assert torch.equal(seen[0]["data"], experiments.many_features(seed=1000).x)
    assert torch.allclose(seen[1]["data"], 100 * experiments.many_features(seed=2000).x)
    assert not torch.allclose(seen[0]["data"], experiments.many_features(seed=0).x)
    assert result["ridge"] == result["ridge_x100"] == 0.3 and result["gain"] == pytest.approx(0.0, abs=1e-12)
    assert result["regret"] == pytest.approx(max(result["best_held_out"] - result["held_out"],
                                                 result["best_held_out_x100"] - result["held_out_x100"]))
    # the test correlations, against the same fits computed independently on the 2,000 test pairs
    as_is, larger = experiments.many_features(seed=1000, n_test=2100), experiments.many_features(seed=2000, n_test=2100)
    assert result["held_out"] == pytest.approx(_first_test_correlation(as_is, 1.0, 0.3), abs=1e-8)
    assert result["held_out_x100_ridge_0.3"] == pytest.approx(_first_test_correlation(larger, 100.0, 0.3), abs=1e-6)


def test_a_ridge_scales_with_the_variance_of_the_features():
    """Why no fixed ridge suits both sets of views: features c times larger need a ridge c^2 times larger."""
    views = experiments.many_features(seed=2000, n_test=2100)
    for reg in (0.3, 1.0):
        assert _first_test_correlation(views, 100.0, reg * 100**2) == \
            pytest.approx(_first_test_correlation(views, 1.0, reg), abs=1e-6)


def test_ridge_by_validation_rejects_a_ridge_off_the_grid():
    with pytest.raises(ValueError, match=r"ridge: expected one of the candidate ridges \(0.0, 0.01.*got -1"):
        experiments.ridge_by_validation(lambda x, y, x_val, y_val, ridges: -1)
    with pytest.raises(ValueError, match="got 'large'"):
        experiments.ridge_by_validation(lambda x, y, x_val, y_val, ridges: "large")
