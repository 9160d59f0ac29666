"""Exercises of lesson 02 (CCA): the whitening matrix; the build, linear CCA's ``fit`` (``cca_fit``: the learner's
``MyCCA`` against :class:`mmcourse.cca.CCA`); the experiment, choosing the ridge on a validation split
(``ridge_by_validation``); Recall@K; and the "find the bug" exercise: a Deep CCA objective with an element-wise
square root of C~_xy^T C~_xy, where C~_xy is the whitened cross-covariance."""

from __future__ import annotations

import torch

from ..experiments import cca as experiments
from . import Case, register, register_experiment


def _spd(dim: int, seed: int) -> torch.Tensor:
    """A random symmetric positive definite (dim, dim) matrix (a sample covariance), float64."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(4 * dim, dim, generator=g, dtype=torch.float64) @ torch.randn(dim, dim, generator=g,
                                                                                  dtype=torch.float64)
    return a.T @ a / (4 * dim - 1)


def _whitening_cases() -> list[Case]:
    return [
        Case("diagonal 2x2", (torch.tensor([[4.0, 0.0], [0.0, 0.25]], dtype=torch.float64),)),
        Case("correlated 2x2", (torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64),)),
        Case("random 6x6 covariance", (_spd(6, 0),)),
    ]


def _reference_whitening(cov: torch.Tensor) -> torch.Tensor:
    from ..cca import inverse_sqrt

    return inverse_sqrt(cov)


register("whitening_matrix", _reference_whitening, _whitening_cases, atol=1e-6, rtol=1e-5)


def _build_cases() -> list[Case]:
    """Pairs of views that each give a common mistake away: (x, y, n_components, reg, x_new, y_new)."""
    from ..data import make_two_views

    def views(n: int, p: int, q: int, correlations, seed: int) -> tuple[torch.Tensor, ...]:
        v = make_two_views(n=n, dim_x=p, dim_y=q, correlations=correlations, n_test=20, seed=seed)
        return v.x, v.y, v.x_test, v.y_test

    x, y, x_new, y_new = views(500, 4, 3, (0.8, 0.5), seed=0)
    x_new, y_new = x_new - x.mean(0), y_new - y.mean(0)  # the training pairs exactly centred, new pairs alike
    x, y = x - x.mean(0), y - y.mean(0)
    small = views(60, 5, 4, (0.9, 0.6, 0.3), seed=1)
    narrow = views(200, 6, 2, (0.7, 0.2), seed=2)
    return [
        Case("x (500, 4), y (500, 3), centred, n_components=2, reg=0", (x, y, 2, 0.0, x_new, y_new)),
        Case("the same views with means far from 0 (x + 3, y - 2)", (x + 3, y - 2, 2, 0.0, x_new + 3, y_new - 2)),
        Case("x (60, 5), y (60, 4), n_components=3, reg=0.5: the ridge, with few samples",
             (small[0], small[1], 3, 0.5, small[2], small[3])),
        Case("x (200, 6), y (200, 2), n_components=1", (narrow[0], narrow[1], 1, 0.0, narrow[2], narrow[3])),
    ]


def _signed(model, x_new: torch.Tensor, y_new: torch.Tensor) -> dict[str, torch.Tensor]:
    """What a fitted CCA learned, each canonical pair with one sign fixed (the largest entry of its w_x positive,
    the same sign for its w_y): a pair of directions is defined only up to one common sign. With the
    correlations and the projections of new pairs (x_new (m, p), y_new (m, q), the means learned in fit)."""
    wx, wy = model.x_weights_, model.y_weights_
    sign = torch.sign(wx.gather(0, wx.abs().argmax(0, keepdim=True)))  # (1, k)
    u, v = model.transform(x_new, y_new)
    return {"canonical_correlations_": model.canonical_correlations_, "x_weights_": wx * sign,
            "y_weights_": wy * sign, "transform(x_new, y_new)": torch.cat([u * sign, v * sign], 1)}


def _reference_cca_fit(x: torch.Tensor, y: torch.Tensor, k: int, reg: float, x_new: torch.Tensor,
                       y_new: torch.Tensor) -> dict[str, torch.Tensor]:
    from ..cca import CCA

    return _signed(CCA(n_components=k, reg=reg).fit(x, y), x_new, y_new)


def _drive_cca_fit(cls, x: torch.Tensor, y: torch.Tensor, k: int, reg: float, x_new: torch.Tensor,
                   y_new: torch.Tensor) -> dict[str, torch.Tensor]:
    """Fit the learner's class like the package's, check what fit learned (names, types, shapes), then sign it."""
    model = cls(n_components=k, reg=reg)
    if model.fit(x, y) is not model:
        raise ValueError("fit should end with `return self`, as scikit-learn's estimators do")
    p, q = x.shape[1], y.shape[1]
    for name, shape, what in (("x_mean_", (p,), "(p,)"), ("y_mean_", (q,), "(q,)"),
                              ("x_weights_", (p, k), "(p, k): one direction w_x per column"),
                              ("y_weights_", (q, k), "(q, k): one direction w_y per column"),
                              ("canonical_correlations_", (k,), "(k,), largest first")):
        value = getattr(model, name, None)
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"fit did not set {name} to a tensor: expected shape {what}, got {type(value).__name__}")
        if value.shape != shape:
            raise ValueError(f"{name} has shape {tuple(value.shape)}, expected {what} = {shape} "
                             f"(p = {p}, q = {q}, k = n_components = {k})")
    return _signed(model, x_new, y_new)


register("cca_fit", _reference_cca_fit, _build_cases, drive=_drive_cca_fit, atol=1e-6, rtol=1e-5)


# The experiment: the learner's my_pick_ridge(x, y, x_val, y_val, ridges) chooses the ridge on two new sets of views
# (as they are, and with every feature 100 times larger); ridge_by_validation fits with it and measures on test pairs
# the function never sees, judged by the lesson's two claims: no fixed ridge meets both.
register_experiment("ridge_by_validation", experiments.ridge_by_validation,
                    {"gain": experiments.RIDGE_VALIDATED_BEATS_FIXED, "regret": experiments.RIDGE_VALIDATED_NEAR_BEST},
                    question="the ridge your validation picks on the views with features 100 times larger",
                    predicted="ridge_x100", reference=experiments.pick_ridge_by_validation)


def _recall_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (60,), generator=g)
    scores = torch.randn(40, 60, generator=g)
    relevant = torch.randint(0, 10, (40,), generator=g)[:, None] == labels[None, :]
    tiny_scores = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.8, 0.3], [0.1, 0.2, 0.3]])
    tiny_relevant = torch.tensor([[False, False, True], [True, False, False], [False, False, True]])
    return [
        Case("3 queries, 3 items, k=1", (tiny_scores, tiny_relevant, 1)),
        Case("3 queries, 3 items, k=2", (tiny_scores, tiny_relevant, 2)),
        Case("40 queries, 60 items, k=5", (scores, relevant, 5)),
    ]


def _reference_recall(scores: torch.Tensor, relevant: torch.Tensor, k: int) -> float:
    from ..metrics import recall_at_k

    return recall_at_k(scores, relevant, k)


register("recall_at_k", _reference_recall, _recall_cases)


def _axis_aligned_views(n: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """Two views whose sample covariances and cross-covariance are exactly diagonal (so is the whitened one):
    orthonormal centred columns, scaled, with correlations 0.8 and 0.3 between matching columns."""
    g = torch.Generator().manual_seed(3)
    q = torch.randn(n, 4, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(q - q.mean(0))  # orthonormal columns with mean 0
    q = q * (n - 1) ** 0.5  # unit sample variance
    x = q[:, :2] * torch.tensor([2.0, 0.5], dtype=torch.float64)
    y = torch.stack([0.8 * q[:, 0] + 0.6 * q[:, 2], 0.3 * q[:, 1] + 0.91**0.5 * q[:, 3]], dim=1)
    return x, y


def _total_correlation_cases() -> list[Case]:
    from ..data import make_two_views

    mixed = make_two_views(n=500, dim_x=4, dim_y=3, correlations=(0.9, 0.5), seed=1)
    g = torch.Generator().manual_seed(5)
    h1 = torch.randn(300, 2, generator=g, dtype=torch.float64)
    h2 = h1 @ torch.randn(2, 5, generator=g, dtype=torch.float64) + 2 * torch.randn(300, 5, generator=g,
                                                                                  dtype=torch.float64)
    return [
        Case("axis-aligned views, h1 (200, 2), h2 (200, 2): every covariance and the cross-covariance are diagonal",
             _axis_aligned_views()),
        Case("mixed views, h1 (500, 4), h2 (500, 3): the whitened cross-covariance has non-zero entries off its "
             "diagonal", (mixed.x, mixed.y)),
        Case("h1 (300, 2), h2 (300, 5): the whitened cross-covariance is 2 x 5", (h1, h2)),
    ]


def _reference_total_correlation(h1: torch.Tensor, h2: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    from ..cca import cca_loss

    return -cca_loss(h1, h2, None, eps)


register("total_correlation", _reference_total_correlation, _total_correlation_cases, atol=1e-6, rtol=1e-5,
         explanation=(
    "The bug: torch.sqrt takes the square root of every entry of c_tilde.T @ c_tilde, not the square root of the "
    "matrix. The diagonal entries of c_tilde.T @ c_tilde are the squared lengths of the columns of c_tilde, so the "
    "trace summed those lengths: the sum of the singular values only when the columns are orthogonal, as in case 1, "
    "where every covariance is diagonal (and there an entry-wise square root is the matrix square root). With "
    "mixed views (case 2) the column lengths add up to more. Fix: torch.linalg.svdvals(c_tilde).sum(). There is a "
    "second reason to fix it: where an entry of c_tilde.T @ c_tilde is negative, its entry-wise square root is "
    "NaN. The trace never reads it, but the gradient does, and training stops with NaN weights. The rule: the square "
    "root of a matrix goes through its eigenvalues or singular values; never take the square root of its entries."))
