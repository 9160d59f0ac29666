"""Exercises of lesson 02 (CCA): the whitening matrix, canonical correlations from the SVD, Recall@K, and
the "find the bug" exercise: a Deep CCA objective with an element-wise square root of C~_xy^T C~_xy, where C~_xy
is the whitened cross-covariance."""

from __future__ import annotations

import torch

from . import Case, register


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


def _correlation_cases() -> list[Case]:
    from ..data import make_two_views

    small = make_two_views(n=300, dim_x=4, dim_y=3, correlations=(0.8, 0.3), seed=0)
    wide = make_two_views(n=500, dim_x=6, dim_y=6, correlations=(0.95, 0.6, 0.5), seed=1)
    g = torch.Generator().manual_seed(2)
    independent = (torch.randn(200, 3, generator=g, dtype=torch.float64),
                   torch.randn(200, 5, generator=g, dtype=torch.float64))
    return [Case("x (300, 4), y (300, 3), means far from 0", (small.x + 3.0, small.y - 1.0)),
            Case("x (500, 6), y (500, 6)", (wide.x, wide.y)),
            Case("independent x (200, 3), y (200, 5)", independent)]


def _reference_correlations(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    from ..cca import CCA

    return CCA(n_components=min(x.shape[1], y.shape[1])).fit(x, y).canonical_correlations_


register("canonical_correlations", _reference_correlations, _correlation_cases, atol=1e-6, rtol=1e-5)


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
