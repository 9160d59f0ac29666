"""Alignment without pairs: Procrustes, adversarial mapping (MUSE), refinement and CSLS retrieval.

Two embedding spaces learned separately (two languages, two modalities) often share their shape
but not their coordinates. An orthogonal map ``w`` sends a source point x (a row) to ``x @ w`` in
the target space. With pairs, ``w`` has a closed form (Procrustes). Without pairs, a discriminator
learns to tell mapped source points from target points and ``w`` learns to fool it (Conneau et al.
2018, MUSE); the map is then refined by Procrustes on the pairs it induces itself, and pairs are
read off with cross-domain similarity local scaling (CSLS), which corrects for hubs.

Conventions: rows are samples; ``source`` (n_s, d), ``target`` (n_t, d); a map ``w`` is (d, d) and
applies on the right, ``source @ w``, like ``scipy.linalg.orthogonal_procrustes``. Lesson 04 writes
maps on the left of column vectors, Wx, so ``w`` = W^T in its notation. Scores between
mapped source points and target points are (n_s, n_t) matrices, higher is more similar.

References
----------
Schönemann (1966), "A generalized solution of the orthogonal Procrustes problem", Psychometrika 31,
https://doi.org/10.1007/BF02289451.
Mikolov, Le and Sutskever (2013), "Exploiting Similarities among Languages for Machine Translation",
https://arxiv.org/abs/1309.4168 (a linear map between word spaces, unconstrained, from a dictionary).
Xing, Wang, Liu and Lin (2015), "Normalized Word Embedding and Orthogonal Transform for Bilingual Word
Translation", NAACL, https://aclanthology.org/N15-1104/ (the map made orthogonal).
Cissé et al. (2017), "Parseval Networks: Improving Robustness to Adversarial Examples",
https://arxiv.org/abs/1704.08847 (the orthogonalisation step).
Conneau, Lample, Ranzato, Denoyer and Jégou (2018), "Word Translation Without Parallel Data",
https://arxiv.org/abs/1710.04087 (MUSE: adversarial map, refinement, CSLS, a mean-cosine criterion).
Radovanović, Nanopoulos and Ivanović (2010), "Hubs in Space: Popular Nearest Neighbors in
High-Dimensional Data", JMLR 11, https://jmlr.org/papers/v11/radovanovic10a.html.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .train import SGD, Adam


def _check_points(name: str, a, dim: int | None = None, min_rows: int = 1) -> torch.Tensor:
    """Raise ValueError unless ``a`` is a finite floating-point tensor (n, d) with n >= ``min_rows``
    (and d == ``dim`` when given)."""
    d = "d" if dim is None else dim
    if not isinstance(a, torch.Tensor) or not a.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor of shape (n, {d}), got "
                         f"{getattr(a, 'dtype', type(a).__name__)}")
    if a.ndim != 2 or len(a) < min_rows or (dim is not None and a.shape[1] != dim):
        raise ValueError(f"{name}: expected shape (n, {d}) with n >= {min_rows}, got {tuple(a.shape)}")
    if not torch.isfinite(a).all():
        raise ValueError(f"{name}: contains NaN or infinite values; expected finite embeddings")
    return a


def _check_k(k, limit: int, what: str) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= limit:
        raise ValueError(f"k: expected an integer from 1 to {limit} ({what}), got {k!r}")
    return k


def _check_square(name: str, w) -> torch.Tensor:
    if not isinstance(w, torch.Tensor) or w.ndim < 2 or w.shape[-1] != w.shape[-2] or not w.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point square matrix (..., d, d), got "
                         f"{tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__}")
    if not torch.isfinite(w).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return w


# --- With pairs: the closed form -----------------------------------------------------------------


def procrustes(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The orthogonal ``w`` minimising ||source @ w - target||_F, for paired rows (Schönemann 1966).

    With the SVD source^T target = U S V^T, w = U V^T: the rotation (or reflection) that best
    turns the source rows onto their partners. In lesson 04's notation (maps on the left, Wx) this is
    W^T: there W = V U^T from the SVD of Y^T X = V S U^T. Same convention and result as
    ``scipy.linalg.orthogonal_procrustes(source, target)[0]``.

    Shape: ``source`` (n, d), ``target`` (n, d), row i of each a pair -> ``w`` (d, d), w^T w = I.

    >>> w = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])  # a quarter turn
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    >>> procrustes(x, x @ w).round(decimals=4) + 0.0  # + 0.0 turns -0. into 0.
    tensor([[ 0.,  1.],
            [-1.,  0.]])
    """
    _check_points("source", source)
    _check_points("target", target, source.shape[1])
    if len(target) != len(source):
        raise ValueError(f"target: expected {len(source)} rows, one partner per source row, got {len(target)}")
    u, _, vh = torch.linalg.svd(source.T @ target)
    return u @ vh


def orthogonalize(w: torch.Tensor, beta: float = 0.001) -> torch.Tensor:
    """One step of W <- (1 + beta) W - beta (W W^T) W, which pulls W towards the orthogonal matrices.

    With W = U S V^T, W W^T W = U S^3 V^T, so the singular vectors stay put and each singular value
    s becomes f(s) = (1 + beta) s - beta s^3, whose fixed points are 0 and 1. Repeated steps drive s
    to 1 only inside a basin: from any 0 < s < sqrt((1 + beta) / beta) (about 10 for beta = 0.01,
    32 for MUSE's 0.001), since f(s) - 1 = (s - 1)(1 - beta s (1 + s)) moves s towards 1 there, at
    most overshooting below 1 but never reaching 0. At s = sqrt((1 + beta) / beta) the value
    becomes 0, and beyond it f(s) < 0: that direction of W is flipped, and for large s
    (|f(s)| > s once s^2 > (2 + beta) / beta) the values grow without bound. A map that
    starts near orthogonal, as MUSE's identity start does, stays well inside the basin. MUSE applies
    one step after every update of the map (Cissé et al. 2017; Conneau et al. 2018, beta = 0.001).
    Since (W W^T W)^T = W^T W W^T, the step is the same for the package's ``w`` = W^T.

    Shape: ``w`` (..., d, d) -> the same shape; ``beta`` a number in [0, 0.5] or a tensor of them
    that broadcasts against ``w`` (one per stacked matrix: (R, 1, 1)); 0 leaves W as it is.

    >>> w = torch.tensor([[2.0, 0.0], [0.0, 0.5]])
    >>> for _ in range(100):
    ...     w = orthogonalize(w, beta=0.1)
    >>> w.round(decimals=4)
    tensor([[1., 0.],
            [0., 1.]])
    """
    _check_square("w", w)
    b = torch.as_tensor(beta, dtype=w.dtype, device=w.device)
    if b.is_complex() or not torch.isfinite(b).all() or (b < 0).any() or (b > 0.5).any():
        raise ValueError(f"beta: expected a small step in [0, 0.5], got {beta!r}")
    return (1 + b) * w - b * w @ w.transpose(-1, -2) @ w


# --- Reading off pairs: cosine, CSLS, nearest neighbours -----------------------------------------


def cosine_scores(mapped_source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every mapped source point to every target point.

    Shape: ``mapped_source`` (n_s, d), ``target`` (n_t, d) -> (n_s, n_t), entries in [-1, 1].
    """
    _check_points("mapped_source", mapped_source)
    _check_points("target", target, mapped_source.shape[1])
    return F.normalize(mapped_source, dim=1) @ F.normalize(target, dim=1).T


def csls_scores(mapped_source: torch.Tensor, target: torch.Tensor, k: int = 10) -> torch.Tensor:
    """Cross-domain similarity local scaling: CSLS(x, y) = 2 cos(x, y) - r_T(x) - r_S(y).

    r_T(x) is the mean cosine of the mapped source point x to its ``k`` nearest target points, and
    r_S(y) the mean cosine of the target point y to its ``k`` nearest mapped source points. A hub,
    a point close to everything, has a large r and is penalised; a point in a sparse region gets
    a bonus. Conneau et al. (2018) use k = 10.

    Shape: ``mapped_source`` (n_s, d), ``target`` (n_t, d) -> (n_s, n_t).
    """
    cos = cosine_scores(mapped_source, target)
    _check_k(k, min(cos.shape), "neighbours, at most the smaller set's size")
    r_target = cos.topk(k, dim=1).values.mean(dim=1)  # (n_s,): each mapped source point's neighbourhood
    r_source = cos.topk(k, dim=0).values.mean(dim=0)  # (n_t,): each target point's neighbourhood
    return 2 * cos - r_target[:, None] - r_source[None, :]


def _check_scores(scores) -> torch.Tensor:
    if not isinstance(scores, torch.Tensor) or scores.ndim != 2 or 0 in scores.shape:
        raise ValueError(f"scores: expected a matrix (n_s, n_t) with n_s, n_t >= 1, got "
                         f"{tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__}")
    if scores.is_floating_point() and torch.isnan(scores).any():
        raise ValueError("scores: contains NaN")
    return scores


def nearest_neighbours(scores: torch.Tensor) -> torch.Tensor:
    """For each source row, the target with the highest score. Shape: (n_s, n_t) -> (n_s,) int64."""
    return _check_scores(scores).argmax(dim=1)


def mutual_nearest_neighbours(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The pairs (i, j) where target j is source i's best match AND source i is target j's best match.

    This is the dictionary of MUSE's refinement as Conneau et al. (2018) describe it (their code's
    default builds one-way source-to-target pairs instead): a pair both sides agree on is far more
    often right than a one-way nearest neighbour. Shape: (n_s, n_t) -> source indices (m,), target indices (m,).

    >>> mutual_nearest_neighbours(torch.tensor([[0.9, 0.1], [0.8, 0.3]]))
    (tensor([0]), tensor([0]))
    """
    forward = nearest_neighbours(scores)  # (n_s,)
    backward = scores.argmax(dim=0)  # (n_t,)
    source = torch.arange(len(forward), device=scores.device)
    agree = backward[forward] == source
    return source[agree], forward[agree]


def precision_at_1(scores: torch.Tensor, truth: torch.Tensor) -> float:
    """Fraction of source rows whose best-scoring target is the right one (word translation's P@1).

    Shape: ``scores`` (n_s, n_t); ``truth`` (n_s,) int, the index of each source row's true
    partner, or -1 where it has none (such rows are skipped). Returns a float in [0, 1].
    """
    _check_scores(scores)
    if not isinstance(truth, torch.Tensor) or truth.shape != scores.shape[:1] or truth.is_floating_point():
        raise ValueError(f"truth: expected an integer tensor of shape ({len(scores)},), got "
                         f"{getattr(truth, 'dtype', type(truth).__name__)} {tuple(getattr(truth, 'shape', ()))}")
    known = truth >= 0
    if not known.any():
        raise ValueError("truth: no source row has a known partner (all are -1)")
    if truth.max() >= scores.shape[1]:
        raise ValueError(f"truth: expected target indices below n_t={scores.shape[1]}, got {int(truth.max())}")
    return (scores[known].argmax(dim=1) == truth[known]).float().mean().item()


def mean_cosine_criterion(mapped_source: torch.Tensor, target: torch.Tensor, k: int = 10,
                          scores: torch.Tensor | None = None) -> float:
    """An unsupervised model-selection criterion: the mean cosine of the mutual CSLS nearest neighbours.

    No labels: when the map is right, the pairs it induces lie on top of each other and the mean
    cosine is near 1; a wrong map leaves its best pairs further apart. This is a mutual-pair variant
    of the criterion of Conneau et al. (2018), who pick the epoch with the highest value. Theirs
    (``dist_mean_cosine`` in MUSE's ``src/evaluation/evaluator.py``) is one-way: each of the 10,000
    most frequent source words is translated to its CSLS nearest target word (pairs whose target is
    not among the 10,000 most frequent are dropped), and the cosines of those translations are
    averaged, whether the target agrees or not. Ours averages only over the pairs on which
    both directions agree, over all source points (the lesson's points have no frequency order).
    Returns 0 when there is no mutual pair. ``scores``, when given, are ``csls_scores(mapped_source,
    target, k)`` already computed (to read precision@1 off the same matrix).

    Shape: ``mapped_source`` (n_s, d), ``target`` (n_t, d) -> a float in [-1, 1].
    """
    if scores is None:
        scores = csls_scores(mapped_source, target, k)
    elif scores.shape != (len(mapped_source), len(target)):
        raise ValueError(f"scores: expected the CSLS scores of shape ({len(mapped_source)}, {len(target)}), "
                         f"got {tuple(scores.shape)}")
    i, j = mutual_nearest_neighbours(scores)
    if len(i) == 0:
        return 0.0
    return F.cosine_similarity(mapped_source[i], target[j], dim=1).mean().item()


# --- Hubness -------------------------------------------------------------------------------------


class Hubness(NamedTuple):
    """What :func:`hubness` returns."""

    skewness: float  # of the k-occurrence distribution; 0 when every target is equally popular
    largest: int  # the most popular target's k-occurrence
    never: float  # fraction of targets that are in nobody's top k ("anti-hubs")


def k_occurrence(scores: torch.Tensor, k: int = 10) -> torch.Tensor:
    """How many source rows have each target among their ``k`` best-scoring targets: N_k (Radovanović
    et al. 2010). Without hubs every target gets about k n_s / n_t; a hub gets many more.

    Shape: ``scores`` (n_s, n_t) -> (n_t,) int64, summing to k * n_s.
    """
    _check_scores(scores)
    _check_k(k, scores.shape[1], "neighbours, at most the number of targets")
    top = scores.topk(k, dim=1).indices.flatten()
    return torch.bincount(top, minlength=scores.shape[1])


def hubness(scores: torch.Tensor, k: int = 10) -> Hubness:
    """Skewness of the k-occurrence distribution (the standard hubness measure), its largest value and
    the fraction of targets that are never retrieved. Skewness is E[(N_k - mu)^3] / sigma^3, with
    population moments as ``scipy.stats.skew`` computes it; a long right tail (a few hubs) makes it
    large. Shape: ``scores`` (n_s, n_t) -> :class:`Hubness`.
    """
    counts = k_occurrence(scores, k).double()
    centred = counts - counts.mean()
    spread = centred.pow(2).mean()
    skewness = (centred.pow(3).mean() / spread.pow(1.5)).item() if spread > 0 else 0.0
    return Hubness(skewness, int(counts.max()), (counts == 0).double().mean().item())


# --- Refinement -----------------------------------------------------------------------------------


def refine(source: torch.Tensor, target: torch.Tensor, w: torch.Tensor, iterations: int = 5,
           k: int = 10) -> torch.Tensor:
    """MUSE's refinement: map, take the mutual CSLS nearest neighbours as a dictionary, solve
    Procrustes on it, and repeat ``iterations`` times. Each round's map induces better pairs, which
    give a better map, as long as the start is roughly right.

    Shape: ``source`` (n_s, d), ``target`` (n_t, d), ``w`` (d, d) -> the refined ``w`` (d, d).
    """
    _check_points("source", source)
    _check_points("target", target, source.shape[1])
    _check_square("w", w)
    if w.shape != (source.shape[1], source.shape[1]):
        raise ValueError(f"w: expected shape ({source.shape[1]}, {source.shape[1]}), got {tuple(w.shape)}")
    if not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations: expected an integer >= 1, got {iterations!r}")
    pairs = None
    for _ in range(iterations):
        i, j = mutual_nearest_neighbours(csls_scores(source @ w, target, k))
        if len(i) == 0:  # nothing to learn from: keep the map
            break
        if pairs is not None and torch.equal(i, pairs[0]) and torch.equal(j, pairs[1]):
            break  # the same dictionary gives the same map: every further round would repeat this one
        pairs = (i, j)
        w = procrustes(source[i], target[j])
    return w


# --- Synthetic embedding spaces ------------------------------------------------------------------


def random_rotation(d: int, max_angle: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random rotation of R^d (orthogonal, determinant +1).

    With ``max_angle=None`` it is uniform over all rotations (Haar measure, from the QR
    decomposition of a Gaussian matrix). With ``max_angle`` (radians, in (0, pi]) it is exp(A) for a
    random skew-symmetric A scaled so that the largest of its rotation angles (each rotation turns
    d/2 planes) is ``max_angle``. Shape: -> (d, d).
    """
    if not isinstance(d, int) or d < 2:
        raise ValueError(f"d: expected an integer dimension >= 2, got {d!r}")
    if max_angle is None:
        q, r = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
        q = q * torch.sign(torch.diagonal(r))
        if torch.linalg.det(q) < 0:  # a reflection: flip one axis to make it a rotation
            q[:, 0] = -q[:, 0]
        return q.float()
    if not 0 < max_angle <= math.pi:
        raise ValueError(f"max_angle: expected radians in (0, pi], got {max_angle!r}")
    a = torch.randn(d, d, generator=generator, dtype=torch.float64)
    a = a - a.T  # skew-symmetric: exp(a) is a rotation whose angles are the |imaginary parts| of a's eigenvalues
    largest = torch.linalg.eigvals(a).imag.abs().max()
    return torch.linalg.matrix_exp(a * (max_angle / largest)).float()


def rotation_angles(w: torch.Tensor) -> torch.Tensor:
    """The angles (radians, in [0, pi]) by which a rotation turns its planes, one per complex eigenvalue
    pair, sorted down; a near-pi angle is a near-reflection of that plane. Shape: (d, d) -> (d // 2,)."""
    _check_square("w", w)
    angles = torch.linalg.eigvals(w.double()).angle().abs().sort(descending=True).values
    return angles[0 : 2 * (len(angles) // 2) : 2].float()


def clustered_points(n: int, d: int, branching: tuple[int, ...] = (6, 6), scales: tuple[float, ...] = (3.0, 1.0),
                     spread: float = 0.35,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Points with structure at several scales, like an embedding space: clusters of clusters.

    ``branching[0]`` top-level clusters, each split into ``branching[1]`` smaller ones, and so on;
    the centres at level l are offset from their parent by about ``scales[l]`` along random,
    anisotropic directions, each cluster gets a random share of the points (different sizes) and
    its points a random anisotropic Gaussian of size ``spread`` (different shapes).

    Shape: -> points (n, d), and each point's top-level cluster (n,) int64.
    """
    if not isinstance(n, int) or n < 1 or not isinstance(d, int) or d < 1:
        raise ValueError(f"n, d: expected positive integers, got n={n!r}, d={d!r}")
    if len(branching) != len(scales) or not branching:
        raise ValueError(f"branching, scales: expected one scale per level, got {branching!r} and {scales!r}")

    def shapes(m: int) -> torch.Tensor:  # m random linear maps (d, d) with axes stretched by 0.3 to 1.7
        stretch = 0.3 + 1.4 * torch.rand(m, 1, d, generator=generator)
        return torch.randn(m, d, d, generator=generator) / d**0.5 * stretch

    centres, weights, top = torch.zeros(1, d), torch.ones(1), torch.zeros(1, dtype=torch.long)
    for level, (b, scale) in enumerate(zip(branching, scales)):
        m = len(centres)
        offsets = scale * torch.einsum("mbd,mde->mbe", torch.randn(m, b, d, generator=generator), shapes(m))
        share = 0.3 + 4 * torch.rand(m, b, generator=generator)
        centres = (centres[:, None] + offsets).reshape(m * b, d)
        weights = (weights[:, None] * share / share.sum(1, keepdim=True)).reshape(-1)
        top = torch.arange(m * b) if level == 0 else top.repeat_interleave(b)
    which = torch.multinomial(weights, n, replacement=True, generator=generator)
    noise = torch.einsum("nd,nde->ne", torch.randn(n, d, generator=generator), shapes(len(centres))[which])
    return centres[which] + spread * noise, top[which]


def normalize_embeddings(x: torch.Tensor) -> torch.Tensor:
    """Centre the rows (subtract their mean) and scale each to unit length. MUSE offers this as an
    option (``--normalize_embeddings center,renorm``), off by default. Shape: (n, d) -> (n, d)."""
    _check_points("x", x)
    return F.normalize(x - x.mean(0), dim=1)


# --- Without pairs: the adversarial map ----------------------------------------------------------


class ParallelLinear(nn.Module):
    """``runs`` independent linear layers applied side by side: y[r] = x[r] @ weight[r] + bias[r].

    Lets several small networks train at once (one batched matrix product instead of a Python
    loop), here one discriminator per restart. Initialised like ``nn.Linear``.
    Shape: (R, B, in_features) -> (R, B, out_features).
    """

    def __init__(self, runs: int, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = 1 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(runs, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(runs, 1, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class Discriminator(nn.Module):
    """MUSE's discriminator: is this point a mapped source point (logit > 0) or a target point?

    Dropout on the input (0.1), two hidden layers with LeakyReLU(0.2), one logit, as in MUSE. The
    input dropout, like label smoothing, is a regulariser from GAN practice; on lesson 04's synthetic
    spaces, removing both gave a better adversarial map on every seed it reports. Conneau et al. (2018)
    use 2048 hidden units for 300-d word vectors; small spaces need far fewer. With ``runs`` > 1 it is
    ``runs`` independent discriminators (see :class:`ParallelLinear`).

    Shape: (R, B, dim) -> logits (R, B).
    """

    def __init__(self, dim: int, hidden: int = 32, runs: int = 1, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Dropout(dropout), ParallelLinear(runs, dim, hidden), nn.LeakyReLU(0.2),
                                 ParallelLinear(runs, hidden, hidden), nn.LeakyReLU(0.2),
                                 ParallelLinear(runs, hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


@dataclass
class AdversarialHistory:
    """What :func:`adversarial_alignment` recorded every ``record_every`` steps, for each of R runs."""

    step: list[int] = field(default_factory=list)
    maps: list[torch.Tensor] = field(default_factory=list)  # each (R, d, d)
    discriminator_accuracy: list[torch.Tensor] = field(default_factory=list)  # each (R,), on the first rows
    criterion: list[torch.Tensor] = field(default_factory=list)  # each (R,): mean_cosine_criterion
    precision: list[torch.Tensor] = field(default_factory=list)  # each (R,): P@1 with CSLS (needs ``truth``)
    seconds: float = 0.0

    def __repr__(self) -> str:
        last = f", criterion={self.criterion[-1].tolist()}" if self.criterion else ""
        return f"AdversarialHistory(records={len(self.step)}, steps={self.step[-1] if self.step else 0}{last})"


class AdversarialResult(NamedTuple):
    """What :func:`adversarial_alignment` returns."""

    maps: torch.Tensor  # (R, d, d): each run's map after the last step
    history: AdversarialHistory


def _stack(name: str, a, dim: int | None = None) -> torch.Tensor:
    """``a`` as (R, n, d); a (n, d) tensor becomes (1, n, d), to be shared by every run."""
    if isinstance(a, torch.Tensor) and a.ndim == 3:
        for m in a:
            _check_points(name, m, dim)
        return a
    return _check_points(name, a, dim)[None]


def _csls_batched(cos: torch.Tensor, k: int) -> torch.Tensor:
    """CSLS from cosines (..., n_s, n_t)."""
    r_target = cos.topk(k, dim=-1).values.mean(-1, keepdim=True)
    return 2 * cos - r_target - cos.topk(k, dim=-2).values.mean(-2, keepdim=True)


def _check_alignment(source, target, truth, runs, smoothing, **counts) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`adversarial_alignment`'s checks; returns source and target as (R, n, d), R the number of runs."""
    source_r = _stack("source", source)
    target_r = _stack("target", target, dim=source_r.shape[2])
    if target_r.device != source_r.device:
        raise ValueError(f"target: expected a tensor on source's device ({source_r.device}), got one on "
                         f"{target_r.device}")
    stacked = {len(a) for a, given in ((source_r, source), (target_r, target)) if given.ndim == 3}
    if len(stacked) > 1:
        raise ValueError(f"source, target: expected the same number of stacked spaces, got {sorted(stacked)}")
    r = stacked.pop() if stacked else (runs or 1)
    if runs is not None and runs != r:
        raise ValueError(f"runs: expected {r} (the number of stacked spaces) or None, got {runs!r}")
    if truth is not None and (truth.shape != source_r.shape[1:2] or truth.is_floating_point()):
        raise ValueError(f"truth: expected an integer tensor of shape ({source_r.shape[1]},), got {tuple(truth.shape)}")
    for name, value in counts.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    if not 0 <= smoothing < 0.5:
        raise ValueError(f"smoothing: expected a label smoothing in [0, 0.5), got {smoothing!r}")
    return source_r.expand(r, -1, -1), target_r.expand(r, -1, -1)


@torch.no_grad()
def _record(history: AdversarialHistory, step: int, w: torch.Tensor, discriminator: Discriminator,
            source: torch.Tensor, target: torch.Tensor, truth: torch.Tensor | None, rows: int, k: int) -> None:
    """Append the map, the discriminator's accuracy, the criterion and P@1 of every run to ``history``,
    measured on the first ``rows`` rows of each space (training draws its batches from every row, these
    included). ``source`` (R, n_s, d), ``target`` (R, n_t, d)."""
    m = min(rows, source.shape[1], target.shape[1])
    mapped = source[:, :m] @ w
    discriminator.eval()
    said_source = discriminator(torch.cat([mapped, target[:, :m]], 1)) > 0  # (R, 2m)
    discriminator.train()
    is_source = torch.cat([torch.ones(m, device=source.device), torch.zeros(m, device=source.device)]).bool()
    cos = F.normalize(mapped, dim=-1) @ F.normalize(target, dim=-1).transpose(1, 2)  # (R, m, n_t)
    scores = _csls_batched(cos, min(k, *cos.shape[1:]))
    forward, backward = scores.argmax(-1), scores.argmax(-2)  # (R, m), (R, n_t)
    mutual = backward.gather(1, forward) == torch.arange(m, device=forward.device)  # (R, m)
    best = cos.gather(2, forward[..., None]).squeeze(-1)
    history.step.append(step)
    history.maps.append(w.detach().clone())
    history.discriminator_accuracy.append((said_source == is_source).float().mean(1))
    history.criterion.append((best * mutual).sum(1) / mutual.sum(1).clamp(min=1))
    if truth is not None:
        known = truth[:m] >= 0
        history.precision.append((forward[:, known] == truth[:m][known]).float().mean(1))


class AdversarialLosses(NamedTuple):
    """What :func:`adversarial_step` returns: the losses of one step, detached, each summed over the K runs."""

    discriminator: torch.Tensor  # () the last discriminator step's loss, before its update
    map: torch.Tensor  # () the map's loss, before its update


def _check_step(w, batches) -> None:
    """:func:`adversarial_step`'s checks, of shapes only (nothing that waits for a GPU)."""
    if not isinstance(w, torch.Tensor) or w.ndim != 3 or w.shape[1] != w.shape[2] or not w.requires_grad:
        raise ValueError(f"w: expected a parameter (K, d, d) that requires a gradient, got "
                         f"{tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__}")
    r, d = w.shape[0], w.shape[1]
    if not isinstance(batches, (list, tuple)) or not batches:
        raise ValueError(f"batches: expected a list of (x, y) batches, one per discriminator step and one for the "
                         f"map, got {type(batches).__name__} of length {len(batches) if batches else 0}")
    for x, y in batches:
        if x.ndim != 3 or x.shape[0] != r or x.shape[2] != d or y.shape != x.shape:
            raise ValueError(f"batches: expected x and y of shape (K={r}, B, d={d}) each, got {tuple(x.shape)} "
                             f"and {tuple(y.shape)}")


def adversarial_step(w: nn.Parameter, discriminator: nn.Module, map_optimizer, discriminator_optimizer, batches,
                     smoothing: float = 0.1, beta=0.01) -> AdversarialLosses:
    """One step of MUSE's adversarial training for K maps at once (Conneau et al. 2018, "Word Translation Without
    Parallel Data", https://arxiv.org/abs/1710.04087).

    1. For each batch but the last, one step of the discriminator on the 2B points [x @ w, y] (``w`` held
       fixed): binary cross-entropy with targets 1 - ``smoothing`` for the B mapped source points and
       ``smoothing`` for the B target points.
    2. On the last batch, one step of the map: the same loss with the targets swapped (the map learns to make
       the discriminator say the opposite), scored with the discriminator in eval mode (no dropout, as in MUSE)
       and on the same 2B points, whose target half does not depend on ``w``.
    3. ``w`` <- (1 + beta) ``w`` - beta ``w`` ``w``^T ``w`` (:func:`orthogonalize`), which keeps it near orthogonal.

    Each loss is the mean over a run's 2B points, summed over the K runs, so that each run's parameters get
    the gradient they would get trained alone. ``discriminator`` maps (K, 2B, d) to logits (K, 2B), like
    :class:`Discriminator`; the optimisers are :class:`~mmcourse.train.SGD` (or any with ``zero_grad`` and
    ``step``) over ``w`` and over the discriminator's parameters.

    Shape: ``w`` (K, d, d), a parameter, updated in place; ``batches`` a list of (x, y), each (K, B, d) rows of
    the source and of the target drawn independently (``discriminator_steps`` + 1 of them); ``beta`` a number
    or (K, 1, 1). Returns :class:`AdversarialLosses`.
    """
    _check_step(w, batches)
    *for_discriminator, (x, y) = batches
    r = len(x)
    labels = torch.cat([torch.full_like(x[..., 0], 1 - smoothing), torch.full_like(y[..., 0], smoothing)], 1)  # (K, 2B)
    discriminator_loss = torch.zeros((), dtype=x.dtype, device=x.device)
    for x_d, y_d in for_discriminator:  # the discriminator learns; the map is held fixed
        logits = discriminator(torch.cat([x_d @ w.detach(), y_d], 1))
        discriminator_loss = F.binary_cross_entropy_with_logits(logits, labels) * r  # each run's mean, summed
        discriminator_optimizer.zero_grad()
        discriminator_loss.backward()
        discriminator_optimizer.step()
    discriminator.eval()  # no dropout when it judges the map (as in MUSE)
    map_loss = F.binary_cross_entropy_with_logits(discriminator(torch.cat([x @ w, y], 1)), 1 - labels) * r
    discriminator.train()
    map_optimizer.zero_grad()
    map_loss.backward()
    map_optimizer.step()
    with torch.no_grad():
        w.copy_(orthogonalize(w, beta))
    return AdversarialLosses(discriminator_loss.detach(), map_loss.detach())


def adversarial_alignment(source: torch.Tensor, target: torch.Tensor, *, truth: torch.Tensor | None = None,
                          runs: int | None = None, steps: int = 300, discriminator_steps: int = 5,
                          batch_size: int = 128, hidden: int = 32, lr: float = 0.1, smoothing: float = 0.1,
                          dropout: float = 0.1, beta=0.01, record_every: int = 25, eval_rows: int = 500, k: int = 10,
                          seed: int = 0, progress: bool = True, step: Callable = adversarial_step) -> AdversarialResult:
    """Learn orthogonal maps ``w`` from source to target without pairs, by fooling a discriminator (MUSE).

    Each step (:func:`adversarial_step`) trains the discriminator ``discriminator_steps`` times to tell mapped
    source points ``x @ w`` (label 1 - ``smoothing``) from target points (label ``smoothing``), then updates ``w``
    once to make it say the opposite, then pulls ``w`` towards orthogonality with :func:`orthogonalize`
    (``w`` is W^T in lesson 04's notation). ``w`` starts at the identity and has no bias; both optimisers
    are plain SGD with learning rate ``lr``, as in Conneau et al. (2018), "Word Translation Without
    Parallel Data", https://arxiv.org/abs/1710.04087. Their code's defaults: beta = 0.001, five discriminator steps (as
    here), 5 epochs of 1,000,000 samples in batches of 32 (about 156,000 map steps), a learning rate that
    decays. Over a few hundred steps the stronger beta = 0.01 keeps ``w`` from drifting far from orthogonal,
    not on it (lesson 04 prints its singular values). Refine the result with :func:`refine`; lesson 04
    compares it with refining the identity.

    The map's loss is the binary cross-entropy of the discriminator's logit l on mapped points with the
    swapped target ``smoothing``: its derivative with respect to l is sigmoid(l) - ``smoothing``, largest
    where the discriminator is surest a point is mapped, so a confident discriminator does not starve the
    map of gradient.

    Several runs train at once (R independent maps and discriminators, one batched computation):
    give ``source`` or ``target`` as (R, n, d) to align R different pairs of spaces, or ``runs=R``
    for R runs on the same pair. ``beta`` may hold one value per run (R,), 0 switching it off.

    Both spaces are scaled by one common factor so that target points have norm sqrt(d) on average
    (the map is linear, so ``w`` is the same; the discriminator just trains better on unit-scale inputs).

    Parameters
    ----------
    source : (n_s, d) or (R, n_s, d); target : (n_t, d) or (R, n_t, d). The lesson centres them and
        scales them to unit length first (:func:`normalize_embeddings`; an option in MUSE).
    truth : (n_s,) int, optional. The index of each source row's partner in the target, -1 if none;
        only to record precision@1 (training never sees it).
    record_every, eval_rows : every ``record_every`` steps the history stores the maps, the
        discriminator's accuracy on the first ``eval_rows`` rows of each space (in eval mode; training
        draws from these rows too, so it is an accuracy on training rows), the
        criterion (:func:`mean_cosine_criterion`, of the first ``eval_rows`` source rows against all
        targets) and, with ``truth``, P@1 with CSLS of those rows.
    step : the training step, called as ``step(w, discriminator, map_optimizer, discriminator_optimizer, batches,
        smoothing, beta)`` with ``beta`` (R, 1, 1), as :func:`adversarial_step` (the default) is; lesson 04 passes
        the step a learner wrote.

    Returns :class:`AdversarialResult` (maps (R, d, d), history), on the inputs' device: the maps and
    discriminators train where ``source`` and ``target`` are (both on one device; ``truth`` anywhere).
    """
    if not callable(step):
        raise ValueError(f"step: expected a training step like adversarial_step, got {type(step).__name__}")
    source_r, target_r = _check_alignment(source, target, truth, runs, smoothing, steps=steps,
                                          discriminator_steps=discriminator_steps, batch_size=batch_size,
                                          record_every=record_every, eval_rows=eval_rows)
    r, d, device = len(source_r), source_r.shape[2], source_r.device
    beta = torch.as_tensor(beta, dtype=source_r.dtype, device=device).expand(r).reshape(r, 1, 1)
    truth = truth.to(device) if truth is not None else None
    scale = d**0.5 / target_r.norm(dim=-1).mean()
    source_r, target_r = source_r * scale, target_r * scale

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)  # on the CPU: the same batches on every device
    w = nn.Parameter(torch.eye(d, dtype=source_r.dtype, device=device).repeat(r, 1, 1))
    # initialised on the CPU (the same draws as there), then moved to the inputs' device
    discriminator = Discriminator(d, hidden, r, dropout).to(device=device, dtype=source_r.dtype)
    map_optimizer = SGD([w], lr=lr)
    discriminator_optimizer = SGD(discriminator.parameters(), lr=lr)
    rows = torch.arange(r)[:, None]  # CPU indices, like the generator's: allowed into a device tensor

    def batch() -> tuple[torch.Tensor, torch.Tensor]:  # (R, B, d) source and target rows, drawn independently
        i = torch.randint(source_r.shape[1], (r, batch_size), generator=generator)
        j = torch.randint(target_r.shape[1], (r, batch_size), generator=generator)
        return source_r[rows, i], target_r[rows, j]

    history = AdversarialHistory()
    start = time.perf_counter()
    from tqdm.auto import tqdm

    with tqdm(total=steps, disable=not progress, desc="adversarial alignment", leave=True) as bar:
        for t in range(steps + 1):
            if t % record_every == 0 or t == steps:
                _record(history, t, w, discriminator, source_r, target_r, truth, eval_rows, k)
                bar.set_postfix(criterion=f"{history.criterion[-1].max():.3f}")
            if t == steps:
                break
            batches = [batch() for _ in range(discriminator_steps + 1)]  # the discriminator's, then the map's
            step(w, discriminator, map_optimizer, discriminator_optimizer, batches, smoothing, beta)
            bar.update(1)
    history.seconds = time.perf_counter() - start
    return AdversarialResult(w.detach(), history)


# --- Regression between modalities, with an adversarial term --------------------------------------


class RegressionMap(NamedTuple):
    """What :func:`regression_map` returns."""

    map: nn.Linear  # features (B, p) -> predicted target embeddings (B, q)
    train_loss: list[float]  # mean squared error per step
    seconds: float


def regression_map(x: torch.Tensor, y: torch.Tensor, adversarial_weight: float = 0.0, *, steps: int = 400,
                   batch_size: int = 128, lr: float = 3e-3, hidden: int = 64, smoothing: float = 0.1,
                   dropout: float = 0.1, seed: int = 0, progress: bool = True) -> RegressionMap:
    """A linear map from paired features x to embeddings y, by least squares plus, optionally, an
    adversarial term that makes the predictions look like real y.

    Least squares predicts the average y given x, which is smoother than any real y; the
    adversarial term asks a :class:`Discriminator` to tell predictions from real embeddings (drawn
    independently) and adds ``adversarial_weight`` times the map's "fool it" loss. Both parts train
    with Adam for the same ``steps``, so ``adversarial_weight=0`` is the plain regression to compare
    with. This is only in the spirit of adversarial cross-modal retrieval (ACMR: Wang, Yang, Xu,
    Hanjalic and Shen 2017, "Adversarial Cross-Modal Retrieval", https://doi.org/10.1145/3123266.3123326),
    which projects *both* modalities into a common space with triplet and label-classification
    losses while a modality classifier, the adversary, tries to tell which modality a point came from.

    Shape: ``x`` (n, p), ``y`` (n, q), rows paired, on one device -> :class:`RegressionMap` (a Linear(p, q)
    on that device).
    """
    _check_points("x", x)
    _check_points("y", y)
    if len(y) != len(x):
        raise ValueError(f"y: expected {len(x)} rows, one per row of x, got {len(y)}")
    if y.device != x.device:
        raise ValueError(f"y: expected a tensor on x's device ({x.device}), got one on {y.device}")
    if not adversarial_weight >= 0:
        raise ValueError(f"adversarial_weight: expected a number >= 0, got {adversarial_weight!r}")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)  # on the CPU: the same batches on every device
    # initialised on the CPU (the same draws as there), then moved to the inputs' device
    linear = nn.Linear(x.shape[1], y.shape[1]).to(x.device)
    discriminator = Discriminator(y.shape[1], hidden, dropout=dropout).to(x.device)
    map_optimizer = Adam(linear.parameters(), lr=lr)
    discriminator_optimizer = Adam(discriminator.parameters(), lr=lr / 3)
    labels = torch.cat([torch.full((batch_size,), 1 - smoothing, device=x.device),
                        torch.full((batch_size,), smoothing, device=x.device)])[None]
    losses = []
    start = time.perf_counter()
    from tqdm.auto import tqdm

    for _ in tqdm(range(steps), disable=not progress, desc="regression map", leave=True):
        i = torch.randint(len(x), (batch_size,), generator=generator)
        predicted = linear(x[i])
        if adversarial_weight > 0:  # predictions (label 1 - smoothing) against real embeddings of other rows
            j = torch.randint(len(y), (batch_size,), generator=generator)
            logits = discriminator(torch.cat([predicted.detach(), y[j]])[None])
            loss = F.binary_cross_entropy_with_logits(logits, labels)
            discriminator_optimizer.zero_grad()
            loss.backward()
            discriminator_optimizer.step()
        loss = F.mse_loss(predicted, y[i])
        losses.append(loss.item())
        if adversarial_weight > 0:
            discriminator.eval()
            fool = F.binary_cross_entropy_with_logits(discriminator(predicted[None]), labels[:, batch_size:])
            discriminator.train()
            loss = loss + adversarial_weight * fool
        map_optimizer.zero_grad()
        loss.backward()
        map_optimizer.step()
    return RegressionMap(linear, losses, time.perf_counter() - start)
