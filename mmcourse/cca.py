"""Canonical correlation analysis: linear and regularised CCA in closed form, and Deep CCA.

CCA (Hotelling 1936) finds directions w_x, w_y whose projections x^T w_x and y^T w_y are as
correlated as possible; then further pairs, uncorrelated with the earlier ones. Whitening each
view turns this into a singular value decomposition of the whitened cross-covariance C~_xy:

    C~_xy = C_xx^(-1/2) C_xy C_yy^(-1/2) = U S V^T,   w_x = C_xx^(-1/2) U,   w_y = C_yy^(-1/2) V,

with C_xx, C_yy the covariances of the two views and C_xy their cross-covariance; the singular values
S are the canonical correlations. Any whitening matrix K (K C K^T = I) may replace C^(-1/2), with
w_x = K_x^T U: it changes U by a rotation and the directions not at all.
``CCA.fit`` uses the inverse of the Cholesky factor, the cheapest. Deep CCA (Andrew et al. 2013) trains
two networks so that the canonical correlations of their outputs are large.

References
----------
Hotelling (1936), "Relations between two sets of variates", Biometrika 28(3/4), 321-377.
Vinod (1976), "Canonical ridge and econometrics of joint production", J. Econometrics 4(2), 147-166.
Andrew, Arora, Bilmes and Livescu (2013), "Deep Canonical Correlation Analysis", ICML,
https://proceedings.mlr.press/v28/andrew13.html
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from torch import nn

from .train import History, fit


def _as_matrix(name: str, a) -> torch.Tensor:
    """``a`` (numpy array or tensor) as a float64 CPU tensor of shape (n, p); ValueError otherwise."""
    a = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a).detach()
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a matrix of shape (n_samples, n_features), got shape {tuple(a.shape)}")
    a = a.to("cpu", torch.float64)
    # The sum is finite when every entry is (unless it overflows), and costs far less than isfinite(a).
    if not torch.isfinite(a.sum()) and not torch.isfinite(a).all():
        raise ValueError(f"{name}: contains NaN or infinite values; expected finite numbers")
    return a


def _check_pair(x: torch.Tensor, y: torch.Tensor, names: tuple[str, str], min_rows: int = 1) -> None:
    """Same number of rows in both views, and at least ``min_rows`` (k pairs need k + 1 samples)."""
    if len(y) != len(x):
        raise ValueError(f"{names[1]}: expected {len(x)} rows, like {names[0]}, got {len(y)}")
    if len(x) < min_rows:
        raise ValueError(f"{names[0]}: expected at least {min_rows} rows (one more than n_components), got {len(x)}")


def _check_components(n_components, p: int, q: int) -> int:
    if not isinstance(n_components, numbers.Integral) or not 1 <= n_components <= min(p, q):
        raise ValueError(f"n_components: expected an integer from 1 to min(p, q) = {min(p, q)}, got {n_components!r}")
    return int(n_components)


def inverse_sqrt(c: torch.Tensor) -> torch.Tensor:
    """The symmetric inverse square root C^(-1/2) of a symmetric positive semi-definite matrix.

    From the eigendecomposition C = Q diag(lambda) Q^T: C^(-1/2) = Q diag(lambda^(-1/2)) Q^T.
    Eigenvalues below ``p * eps * max(lambda)`` (zero up to rounding) are clamped to give 0, not
    infinity, so a singular C gets the pseudo-inverse square root. Shape: (p, p) -> (p, p).
    """
    lam, q = torch.linalg.eigh(c)
    keep = lam > lam.max().clamp(min=0) * len(lam) * torch.finfo(c.dtype).eps
    scale = torch.where(keep, lam.clamp(min=torch.finfo(c.dtype).tiny).rsqrt(), torch.zeros_like(lam))
    return (q * scale) @ q.T


def whitening(c: torch.Tensor) -> torch.Tensor:
    """A whitening matrix K of a covariance C, that is K C K^T = I. Shape: (p, p) -> (p, p).

    Any whitening matrix gives the same canonical directions (the rotation it adds is undone by the
    SVD), so take the cheapest: K = L^(-1), from the Cholesky factor C = L L^T, which costs much
    less than an eigendecomposition. When C is singular, or so close that a pivot of the
    factorisation (the variance a feature has beyond the features before it) is zero up to
    rounding, fall back to :func:`inverse_sqrt`, the pseudo-inverse square root.
    """
    factor, info = torch.linalg.cholesky_ex(c)
    pivots = factor.diagonal() ** 2
    if info.item() == 0 and pivots.min().item() > len(c) * torch.finfo(c.dtype).eps * c.diagonal().max().item():
        return torch.linalg.solve_triangular(factor, torch.eye(len(c), dtype=c.dtype, device=c.device), upper=False)
    return inverse_sqrt(c)


class CCA:
    """Linear CCA in closed form (whitening + SVD), with an optional ridge (canonical ridge, Vinod 1976).

    Parameters
    ----------
    n_components : int
        Number k of canonical pairs to keep, 1 <= k <= min(p, q).
    reg : float, default 0
        Ridge added to the diagonal of each view's covariance. 0 is classical CCA; a larger value
        trusts the covariances less and favours directions in which each view varies a lot
        (useful when there are few samples per feature). As it grows, the directions tend to those
        of partial least squares, the singular vectors of the cross-covariance, which maximise
        covariance instead of correlation. Set it relative to the features' variances.

    Attributes
    ----------
    x_mean_ (p,), y_mean_ (q,) : means of the training views.
    x_weights_ (p, k), y_weights_ (q, k) : canonical directions w_x, w_y as columns; the projections
        of the centred training data have unit variance when ``reg`` is 0.
    canonical_correlations_ (k,) : decreasing. With ``reg`` 0 these are exactly the correlations
        of the projected training data, and different components are uncorrelated. With a ridge
        they are the values of the regularised objective, a little below those correlations.

    All attributes and outputs are float64 torch tensors on the CPU; inputs may be numpy arrays or
    tensors (on any device).

    Examples
    --------
    >>> from mmcourse.data import make_two_views
    >>> views = make_two_views(n=5000, correlations=(0.9, 0.5), seed=0)
    >>> CCA(n_components=2).fit(views.x, views.y).canonical_correlations_.round(decimals=2)
    tensor([0.9000, 0.5000], dtype=torch.float64)
    """

    def __init__(self, n_components: int = 2, reg: float = 0.0) -> None:
        self.n_components = n_components
        self.reg = reg

    def fit(self, X, Y) -> CCA:
        """Learn the canonical directions from paired views X (n, p) and Y (n, q). Returns self."""
        X, Y = _as_matrix("X", X), _as_matrix("Y", Y)
        k = _check_components(self.n_components, X.shape[1], Y.shape[1])
        if not isinstance(self.reg, numbers.Real) or not self.reg >= 0 or not np.isfinite(self.reg):
            raise ValueError(f"reg: expected a finite number >= 0, got {self.reg!r}")
        _check_pair(X, Y, ("X", "Y"), k + 1)
        self.x_mean_, self.y_mean_ = X.mean(0), Y.mean(0)
        xc, yc = X - self.x_mean_, Y - self.y_mean_
        n = len(X)
        cxx = xc.T @ xc / (n - 1) + self.reg * torch.eye(X.shape[1], dtype=X.dtype)
        cyy = yc.T @ yc / (n - 1) + self.reg * torch.eye(Y.shape[1], dtype=Y.dtype)
        kx, ky = whitening(cxx), whitening(cyy)  # K_x C_xx K_x^T = I, K_y C_yy K_y^T = I
        u, s, vh = torch.linalg.svd(kx @ (xc.T @ yc / (n - 1)) @ ky.T, full_matrices=False)
        wx, wy = kx.T @ u[:, :k], ky.T @ vh[:k].T
        # Fix the sign of each pair (it is arbitrary): largest entry of w_x positive.
        sign = torch.sign(wx.gather(0, wx.abs().argmax(0, keepdim=True))).squeeze(0)
        self.x_weights_, self.y_weights_ = wx * sign, wy * sign
        self.canonical_correlations_ = s[:k].clamp(max=1.0)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "x_weights_"):
            raise RuntimeError("this CCA is not fitted yet: call fit(X, Y) first")

    def transform(self, X, Y=None):
        """Project X (m, p) onto the canonical directions: (m, k); with Y (m, q), return both."""
        self._check_fitted()
        X = _as_matrix("X", X)
        if X.shape[1] != len(self.x_mean_):
            raise ValueError(f"X: expected {len(self.x_mean_)} features as in fit, got {X.shape[1]}")
        x_scores = (X - self.x_mean_) @ self.x_weights_
        if Y is None:
            return x_scores
        Y = _as_matrix("Y", Y)
        if Y.shape[1] != len(self.y_mean_):
            raise ValueError(f"Y: expected {len(self.y_mean_)} features as in fit, got {Y.shape[1]}")
        _check_pair(X, Y, ("X", "Y"))
        return x_scores, (Y - self.y_mean_) @ self.y_weights_

    def fit_transform(self, X, Y):
        """``fit(X, Y)``, then the projections of X and Y: two tensors (n, k)."""
        return self.fit(X, Y).transform(X, Y)

    def correlations(self, X, Y) -> torch.Tensor:
        """Correlation of each canonical pair on the data X (m, p), Y (m, q), for example held out. (k,)"""
        u, v = self.transform(X, Y)
        if len(u) < 2:
            raise ValueError(f"X: expected at least 2 rows to measure a correlation, got {len(u)}")
        u, v = u - u.mean(0), v - v.mean(0)
        return (u * v).sum(0) / (u.norm(dim=0) * v.norm(dim=0)).clamp(min=torch.finfo(u.dtype).tiny)

    def __repr__(self) -> str:
        return f"CCA(n_components={self.n_components}, reg={self.reg})"


def cca_loss(h1: torch.Tensor, h2: torch.Tensor, n_components: int | None = None, eps: float = 1e-4) -> torch.Tensor:
    """Deep CCA objective: minus the sum of the r = ``n_components`` largest canonical correlations of a batch.

    Shape: ``h1`` (B, d1), ``h2`` (B, d2) -> a scalar, differentiable in both. ``n_components``
    defaults to min(d1, d2). Computed in float64 and returned in ``h1``'s dtype and device.

    Numerically safe by construction (Andrew et al. 2013 describe the objective; the traps are in
    its implementations): ``eps`` is added to the diagonal of both covariances, so they are
    positive definite even for constant or duplicated features; each view is whitened with a
    Cholesky factor, whose gradient has no 1/(lambda_i - lambda_j) terms (the gradient of an
    eigendecomposition has them, and they blow up when eigenvalues tie); the correlations are the
    singular values of the whitened cross-covariance C~_xy (lesson 02's notation, with C_xx, C_yy and
    C_xy the covariances of ``h1`` and ``h2`` and their cross-covariance), and the gradient of the sum of the r
    largest, U_r V_r^T (the first r left and right singular vectors), divides by nothing: it is finite when
    correlations tie or vanish. Where the r-th correlation ties with the (r+1)-th the sum has a kink (it is not
    differentiable there), and U_r V_r^T is one of its subgradients, which one depending on the singular vectors
    the SVD returns. No square root of a matrix is taken.

    The ridge biases the result slightly downwards: a canonical pair whose projections have variance
    s in both views (directions normalised to unit length) scores about rho * s / (s + eps) instead
    of rho, a relative error near eps / s (1e-4 for unit-variance embeddings). It equals exactly
    ``-CCA(r, reg=eps).fit(h1, h2).canonical_correlations_.sum()``. Keep B much larger than d1 and
    d2: the correlations of a small batch overfit (they reach 1 when B <= d1 + d2).
    """
    for name, h in (("h1", h1), ("h2", h2)):
        if h.ndim != 2:
            raise ValueError(f"{name}: expected shape (B, d), got {tuple(h.shape)}")
        if not torch.isfinite(h).all():
            raise ValueError(f"{name}: contains NaN or infinite values; expected finite embeddings")
    k = _check_components(min(h1.shape[1], h2.shape[1]) if n_components is None else n_components,
                          h1.shape[1], h2.shape[1])
    _check_pair(h1, h2, ("h1", "h2"), k + 1)
    if not eps > 0:
        raise ValueError(f"eps: expected a ridge > 0, got {eps!r}")
    # float64 for accuracy; Apple's MPS has no float64 (nor these decompositions), so use the CPU there.
    device = "cpu" if h1.device.type == "mps" else h1.device
    x, y = h1.to(device, torch.float64), h2.to(device, torch.float64)
    x, y = x - x.mean(0), y - y.mean(0)
    n = len(x)
    cxx = x.T @ x / (n - 1) + eps * torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    cyy = y.T @ y / (n - 1) + eps * torch.eye(y.shape[1], dtype=y.dtype, device=y.device)
    lx, ly = torch.linalg.cholesky(cxx), torch.linalg.cholesky(cyy)  # C = L L^T, whitening L^(-1)
    cxy = x.T @ y / (n - 1)
    t = torch.linalg.solve_triangular(lx, cxy, upper=False)  # L_x^(-1) C_xy
    t = torch.linalg.solve_triangular(ly, t.T, upper=False).T  # ... (L_y^(-1))^T: t is C~_xy up to rotations
    return -torch.linalg.svdvals(t)[:k].sum().to(h1.device, h1.dtype)


class DeepCCA(nn.Module):
    """Deep CCA (Andrew et al. 2013): two encoders trained with :func:`cca_loss`, then linear CCA.

    Parameters
    ----------
    encoder_x, encoder_y : nn.Module
        Map a batch of each view to embeddings: (B, ...) -> (B, d1) and (B, ...) -> (B, d2).
    n_components : int
        Number k of canonical pairs the loss maximises and the final CCA keeps.

    After :meth:`fit`, ``cca_`` is a :class:`CCA` fitted on the embeddings of the whole training
    set, which gives the final projections (:meth:`transform`).

    Shape: ``forward(x, y)`` -> (h1 (B, d1), h2 (B, d2)).
    """

    def __init__(self, encoder_x: nn.Module, encoder_y: nn.Module, n_components: int) -> None:
        super().__init__()
        if not isinstance(n_components, numbers.Integral) or n_components < 1:
            raise ValueError(f"n_components: expected an integer >= 1, got {n_components!r}")
        self.encoder_x, self.encoder_y, self.n_components = encoder_x, encoder_y, int(n_components)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder_x(x), self.encoder_y(y)

    def fit(self, x: torch.Tensor, y: torch.Tensor, *, epochs: int = 50, batch_size: int = 500, lr: float = 1e-3,
            eps: float = 1e-4, seed: int = 0, progress: bool = True, device=None) -> History:
        """Train both encoders with Adam on minibatches of paired rows, then fit ``cca_``.

        ``batch_size`` must be much larger than the embedding size: the loss measures correlations
        inside each batch, and small batches overfit them. ``eps`` is the ridge of :func:`cca_loss`,
        tiny by default (lesson 02 uses 10 on AV-Digits). Unlike the ridge of :class:`CCA` on fixed
        features, it is measured against embeddings whose scale the encoders choose, and they can grow
        their outputs until it matters little. Returns the :class:`History` (mean ``train_loss`` per
        epoch).
        """
        x, y = torch.as_tensor(x), torch.as_tensor(y)
        _check_pair(x, y, ("x", "y"), self.n_components + 1)
        if not isinstance(batch_size, numbers.Integral) or not self.n_components < batch_size <= len(x):
            raise ValueError(f"batch_size: expected an integer from n_components + 1 = {self.n_components + 1} "
                             f"to the number of rows {len(x)}, got {batch_size!r}")

        def step(model: DeepCCA, batch: dict) -> torch.Tensor:
            return cca_loss(*model(batch["x"], batch["y"]), model.n_components, eps)

        history = fit(self, {"x": x, "y": y}, ["x", "y"], None, step=step, epochs=epochs, batch_size=batch_size,
                      drop_last=True, lr=lr, seed=seed, device=device, progress=progress, description="Deep CCA")
        self.cca_ = CCA(self.n_components).fit(*self.embed(x, y))
        return history

    @torch.no_grad()
    def embed(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder outputs (eval mode, no gradients), on the CPU: (m, d1), (m, d2)."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        h1, h2 = self(torch.as_tensor(x).to(device), torch.as_tensor(y).to(device))
        self.train(was_training)
        return h1.cpu(), h2.cpu()

    def transform(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Canonical projections of paired x, y: two tensors (m, k)."""
        if not hasattr(self, "cca_"):
            raise RuntimeError("this DeepCCA is not fitted yet: call fit(x, y) first")
        return self.cca_.transform(*self.embed(x, y))

    def correlations(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Correlation of each canonical pair on paired data (for example held out): (k,)."""
        if not hasattr(self, "cca_"):
            raise RuntimeError("this DeepCCA is not fitted yet: call fit(x, y) first")
        return self.cca_.correlations(*self.embed(x, y))
