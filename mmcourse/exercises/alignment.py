"""Exercises of lesson 04: Procrustes from the SVD, CSLS scores, and a buggy orthogonalisation step."""

from __future__ import annotations

import math

import torch

from . import Case, register


def _rotation(d: int, seed: int) -> torch.Tensor:
    """A random rotation (orthogonal, determinant +1), float64."""
    q, r = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if torch.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _reference_procrustes(source, target):
    from ..alignment import procrustes

    return procrustes(source, target)


def _procrustes_cases() -> list[Case]:
    g = torch.Generator().manual_seed(7)
    quarter = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    square = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [2.0, 1.0]], dtype=torch.float64)
    x = torch.randn(50, 5, generator=g, dtype=torch.float64)
    mirror = torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64))
    y = torch.randn(30, 3, generator=g, dtype=torch.float64)
    return [
        Case("5 points in 2-D turned by a quarter turn", (square, square @ quarter)),
        Case("50 points in 5-D, a random rotation plus noise",
             (x, x @ _rotation(5, 1) + 0.1 * torch.randn(50, 5, generator=g, dtype=torch.float64))),
        Case("30 points in 3-D, mirrored: the answer is a reflection", (y, y @ mirror)),
        Case("source and target of different scales", (3.0 * x, 0.5 * x @ _rotation(5, 2))),
    ]


# SciPy's orthogonal_procrustes has the same convention and result.
register("procrustes", _reference_procrustes, _procrustes_cases, atol=1e-6, rtol=1e-5,
         forbid=("scipy.linalg.orthogonal_procrustes",))


def _reference_csls(mapped_source, target, k):
    from ..alignment import csls_scores

    return csls_scores(mapped_source, target, k)


def _csls_cases() -> list[Case]:
    g = torch.Generator().manual_seed(8)
    angles = torch.tensor([0.0, 0.3, 2.0])
    tiny_source = torch.stack([angles.cos(), angles.sin()], 1).double()
    tiny_target = torch.tensor([[1.0, 0.1], [0.2, 1.0], [-1.0, 0.0], [0.9, -0.2]], dtype=torch.float64)
    return [
        Case("3 source and 4 target points in 2-D, k=1", (tiny_source, tiny_target, 1)),
        Case("the same, k=2 (the mean over two neighbours)", (tiny_source, tiny_target, 2)),
        Case("rows of different lengths (cosine ignores length)", (3 * tiny_source, 0.5 * tiny_target, 2)),
        Case("20 source and 30 target points in 6-D, k=5",
             (torch.randn(20, 6, generator=g, dtype=torch.float64),
              torch.randn(30, 6, generator=g, dtype=torch.float64), 5)),
    ]


register("csls_scores", _reference_csls, _csls_cases, atol=1e-6, rtol=1e-5,
         forbid=("mmcourse.alignment._csls_batched",))


def _reference_orthogonalize(w, beta):
    from ..alignment import orthogonalize

    return orthogonalize(w, beta)


def _orthogonalize_cases() -> list[Case]:
    g = torch.Generator().manual_seed(9)
    turn = torch.tensor([[math.cos(0.4), math.sin(0.4)], [-math.sin(0.4), math.cos(0.4)]], dtype=torch.float64)
    return [
        Case("an orthogonal W stays where it is", (turn, 0.1)),
        Case("a diagonal W: each axis is pulled towards length 1",
             (torch.diag(torch.tensor([2.0, 0.5], dtype=torch.float64)), 0.1)),
        Case("a shear [[1, 0.5], [0, 1]], not symmetric",
             (torch.tensor([[1.0, 0.5], [0.0, 1.0]], dtype=torch.float64), 0.1)),
        Case("a random 4x4 W near a rotation, beta=0.001",
             (_rotation(4, 3) + 0.2 * torch.randn(4, 4, generator=g, dtype=torch.float64), 0.001)),
    ]


ORTHOGONALIZE_EXPLANATION = (
    "The bug: the tutorial computes w.T @ w @ w where the step needs w @ w.T @ w. With the SVD w = U S V^T, "
    "w w^T w = U S^3 V^T: the singular vectors stay put and each singular value s moves to (1 + beta) s - beta s^3, "
    "towards 1. w^T w w = V S^2 V^T U S V^T mixes the two sets of singular vectors instead, so each step also turns "
    "w, and repeated steps can diverge. The two forms agree when w is orthogonal (w^T w = w w^T = I) or symmetric, "
    "which is why the author's test, an orthogonal w, passed.")

register("orthogonalize", _reference_orthogonalize, _orthogonalize_cases, atol=1e-9, rtol=1e-7,
         explanation=ORTHOGONALIZE_EXPLANATION)
