"""Two views of a shared latent with known canonical correlations (for CCA and Deep CCA)."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

FREQUENCIES = (2.0, 2.5)  # of the non-linear embedding: u -> features is one-to-one on (-2 pi, 2 pi]


class TwoViews(NamedTuple):
    """Paired samples of two views. ``x`` (n, dim_x), ``y`` (n, dim_y), held-out ``x_test`` (n_test,
    dim_x) and ``y_test`` (n_test, dim_y), and the true canonical ``correlations`` (k,), decreasing."""

    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    correlations: torch.Tensor


def _mixing(dim: int, generator: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """A random invertible (dim, dim) matrix with singular values in [0.5, 2]: rotation x scales x rotation."""
    q1, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=dtype))
    q2, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=dtype))
    scales = 0.5 + 1.5 * torch.rand(dim, generator=generator, dtype=dtype)
    return q1 @ torch.diag(scales) @ q2


def make_two_views(
    n: int = 1000,
    dim_x: int = 10,
    dim_y: int = 8,
    correlations=(0.9, 0.7, 0.4),
    nonlinear: bool = False,
    n_test: int = 0,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> TwoViews:
    """Sample two views whose canonical correlations are ``correlations``.

    A latent pair (a_i, b_i) per component i = 1..k has correlation rho_i:
    a ~ N(0, I_k), b = rho * a + sqrt(1 - rho^2) * e with e ~ N(0, I_k) independent. Each view
    stacks its latent part with independent N(0, 1) noise coordinates and mixes them with a fixed
    random invertible matrix (Hotelling 1936: canonical correlations are invariant to invertible
    linear maps of either view). So in the linear case the population canonical correlations are
    exactly rho_1..rho_k, and 0 beyond k.

    With ``nonlinear=True`` each latent coordinate u enters its view as the four features
    (sin 2u, cos 2u, sin 2.5u, cos 2.5u) (standardised) instead of u. No linear function of them
    follows u closely, so linear CCA falls well below rho, but the map is one-to-one for
    u in (-2 pi, 2 pi], all but a vanishing fraction of a standard normal:
    u = 2 (angle(2.5 u) - angle(2 u)), the difference taken in (-pi, pi]. So a non-linear
    method (Deep CCA, Andrew et al. 2013) can approach rho, and the returned ``correlations``,
    those of the latent, are what it should approach.

    Parameters
    ----------
    n, n_test : samples to draw for training and for a held-out set from the same distribution.
    dim_x, dim_y : view dimensions; at least k (linear) or 4k (non-linear).
    correlations : k values in [0, 1).
    nonlinear : bool
    seed : int, fixes the mixing matrices and the samples.
    dtype : torch dtype of the returned tensors.
    """
    rho = torch.as_tensor(correlations, dtype=dtype).flatten()
    k = len(rho)
    if k == 0 or torch.isnan(rho).any() or (rho < 0).any() or (rho >= 1).any():
        raise ValueError(f"correlations: expected one or more values in [0, 1), got {correlations!r}")
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"n: expected an integer >= 2, got {n!r}")
    if not isinstance(n_test, int) or n_test < 0:
        raise ValueError(f"n_test: expected an integer >= 0, got {n_test!r}")
    per_latent = 2 * len(FREQUENCIES) if nonlinear else 1
    for name, dim in (("dim_x", dim_x), ("dim_y", dim_y)):
        if not isinstance(dim, int) or dim < per_latent * k:
            raise ValueError(
                f"{name}: expected an integer >= {per_latent * k} for {k} components"
                f"{f' (non-linear: {per_latent} per component)' if nonlinear else ''}, got {dim!r}"
            )
    rho = rho.sort(descending=True).values
    g = torch.Generator().manual_seed(seed)
    mix_x, mix_y = _mixing(dim_x, g, dtype), _mixing(dim_y, g, dtype)

    def embed(u: torch.Tensor) -> torch.Tensor:
        if not nonlinear:
            return u
        features = torch.cat([f(w * u) for w in FREQUENCIES for f in (torch.sin, torch.cos)], 1)
        return (features - _embed_mean(k, dtype)) / _embed_std(k, dtype)

    def sample(m: int) -> tuple[torch.Tensor, torch.Tensor]:
        a = torch.randn(m, k, generator=g, dtype=dtype)
        b = rho * a + torch.sqrt(1 - rho**2) * torch.randn(m, k, generator=g, dtype=dtype)
        x = torch.cat([embed(a), torch.randn(m, dim_x - per_latent * k, generator=g, dtype=dtype)], 1)
        y = torch.cat([embed(b), torch.randn(m, dim_y - per_latent * k, generator=g, dtype=dtype)], 1)
        return x @ mix_x, y @ mix_y

    x, y = sample(n)
    x_test, y_test = sample(n_test)
    return TwoViews(x, y, x_test, y_test, rho)


def _moments(w: float) -> tuple[float, float, float, float]:
    """Mean and standard deviation of sin(w u) and cos(w u) for u ~ N(0, 1)."""
    e1, e2 = math.exp(-(w**2) / 2), math.exp(-2 * w**2)
    return 0.0, math.sqrt((1 - e2) / 2), e1, math.sqrt((1 + e2) / 2 - e1**2)


def _embed_mean(k: int, dtype) -> torch.Tensor:
    """Means of the embedding features, ordered [sin w1 u (k), cos w1 u (k), sin w2 u (k), ...]."""
    return torch.tensor([m for w in FREQUENCIES for m in (_moments(w)[0],) * k + (_moments(w)[2],) * k], dtype=dtype)


def _embed_std(k: int, dtype) -> torch.Tensor:
    """Standard deviations of the embedding features, in the order of :func:`_embed_mean`."""
    return torch.tensor([s for w in FREQUENCIES for s in (_moments(w)[1],) * k + (_moments(w)[3],) * k], dtype=dtype)
