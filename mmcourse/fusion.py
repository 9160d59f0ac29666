"""Fusion: ways to combine per-modality embeddings h^(1..M) into one representation z.

Every fusion module takes a list ``hs = [h_1 (B, d_1), ..., h_M (B, d_M)]`` and returns a
:class:`Fused` ``(z (B, out_dim), weights)``, where ``weights`` (B, M) are the per-sample weights of
the modalities for the methods that have them (attention, late fusion) and ``None`` otherwise; its
constructor takes ``dims = [d_1, ..., d_M]`` and ``out_dim``. A module whose ``accepts_missing`` is
True (late fusion) also takes ``None`` in place of a missing modality. :class:`MultimodalClassifier`
puts encoders, a fusion module and a head together and returns a :class:`Prediction`.
References: Baltrusaitis, Ahuja and Morency (2019), Multimodal Machine Learning: A Survey and
Taxonomy, https://arxiv.org/abs/1705.09406 (early, late and intermediate fusion).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


class Fused(NamedTuple):
    """What every fusion module returns."""

    z: torch.Tensor  # (B, out_dim) the fused representation
    weights: torch.Tensor | None  # (B, M) per-sample modality weights, or None for methods without them


class Prediction(NamedTuple):
    """What :class:`MultimodalClassifier` returns."""

    scores: torch.Tensor  # (B, C) class scores
    weights: torch.Tensor | None  # (B, M) the fusion's modality weights, or None


def check_modalities(hs, dims: Sequence[int] | None = None, name: str = "hs", allow_missing: bool = False) -> None:
    """Raise ValueError unless ``hs`` is a list of (B, d_m) tensors with one batch size B.

    With ``dims``, there must be exactly one tensor per entry and ``d_m == dims[m]``. With
    ``allow_missing``, an entry may be ``None`` (a missing modality), but not every entry.
    """
    def is_tensor(h) -> bool:
        return isinstance(h, torch.Tensor) or (allow_missing and h is None)

    if not isinstance(hs, (list, tuple)) or not hs or not all(is_tensor(h) for h in hs):
        expected = f"{len(dims)} tensors" if dims is not None else "tensors"
        raise ValueError(f"{name}: expected a list of {expected} (one per modality), got {hs!r:.60}")
    if dims is not None and len(hs) != len(dims):
        raise ValueError(f"{name}: expected {len(dims)} modalities (dims={list(dims)}), got {len(hs)}")
    if all(h is None for h in hs):
        raise ValueError(f"{name}: every modality is None; at least one must be given")
    for m, h in enumerate(hs):
        d = dims[m] if dims is not None else "d"
        if h is not None and (h.ndim != 2 or (dims is not None and h.shape[1] != d)):
            raise ValueError(f"{name}[{m}]: expected shape (B, {d}), got {tuple(h.shape)}")
    sizes = [h.shape[0] for h in hs if h is not None]
    if len(set(sizes)) > 1:
        raise ValueError(f"{name}: expected the same batch size B for every modality, got {sizes}")


def _check_dims(dims, out_dim: int) -> list[int]:
    dims = list(dims) if isinstance(dims, (list, tuple)) else dims
    if not isinstance(dims, list) or not dims or not all(isinstance(d, int) and d > 0 for d in dims):
        raise ValueError(f"dims: expected a non-empty list of positive feature sizes, got {dims!r}")
    if not isinstance(out_dim, int) or out_dim < 1:
        raise ValueError(f"out_dim: expected a positive integer, got {out_dim!r}")
    return dims


class EarlyFusion(nn.Module):
    """Concatenate the modalities, then one linear map: z = W [h_1; ...; h_M] + b.

    Shape: ``hs`` [(B, d_m)] -> :class:`Fused` (z (B, out_dim), weights None).
    """

    def __init__(self, dims: Sequence[int], out_dim: int) -> None:
        super().__init__()
        self.dims = _check_dims(dims, out_dim)
        self.linear = nn.Linear(sum(self.dims), out_dim)

    def forward(self, hs: Sequence[torch.Tensor]) -> Fused:
        check_modalities(hs, self.dims)
        return Fused(self.linear(torch.cat(list(hs), dim=1)), None)


def average_log_probs(logits: Sequence[torch.Tensor], weights: torch.Tensor | None = None) -> torch.Tensor:
    """Late fusion of per-modality class scores: sum_m w_m log softmax(logits_m), equal w_m = 1/M by default.

    Adding log-probabilities multiplies the modalities' probabilities (a product of experts),
    so a confident modality outweighs an unsure one. Shape: ``logits`` [(B, C)] and
    ``weights`` (M,) -> (B, C).
    """
    check_modalities(logits, name="logits")
    check_modalities(logits, [logits[0].shape[1]] * len(logits), "logits")  # the same classes C for all
    log_probs = torch.stack([F.log_softmax(x, dim=1) for x in logits])  # (M, B, C)
    if weights is None:
        return log_probs.mean(0)
    if weights.shape != (len(logits),):
        raise ValueError(f"weights: expected shape ({len(logits)},), got {tuple(weights.shape)}")
    return torch.einsum("m,mbc->bc", weights, log_probs)


class LateFusion(nn.Module):
    """Decision-level fusion: each modality predicts on its own, then the log-probabilities are combined.

    z = sum_m w_m log p_m(y | h_m), with p_m = softmax(head_m(h_m)); the normaliser -log Z that would
    make exp(z) a distribution is left out, since a softmax (or the cross-entropy) adds it back and
    it changes no argmax. The weights are equal (1/M) or, with ``learn_weights=True``, a softmax over
    M learned numbers. ``out_dim`` is the number of classes; the output is already a score per class.

    A missing modality can be passed as ``None``: its term is dropped and the weights are
    renormalised over the modalities present (``weights`` shows them, 0 for a missing one). Under
    conditional independence of the modalities given y, Bayes' rule gives the same combination
    with w_m = 1 and a prior correction, p(y | x_1..x_M) is proportional to
    prod_m p_m(y | x_m) / p(y)^(M - 1); with balanced classes the correction is a constant.

    Shape: ``hs`` [(B, d_m) or None] -> :class:`Fused` (z (B, out_dim) log-scores, weights (B, M)).
    """

    accepts_missing = True

    def __init__(self, dims: Sequence[int], out_dim: int, learn_weights: bool = False) -> None:
        super().__init__()
        self.dims = _check_dims(dims, out_dim)
        self.heads = nn.ModuleList(nn.Linear(d, out_dim) for d in self.dims)
        if learn_weights:
            self.weight_logits = nn.Parameter(torch.zeros(len(self.dims)))
        else:
            self.register_buffer("weight_logits", torch.zeros(len(self.dims)))

    def forward(self, hs: Sequence[torch.Tensor | None]) -> Fused:
        check_modalities(hs, self.dims, allow_missing=True)
        present = torch.tensor([h is not None for h in hs], device=self.weight_logits.device)
        weights = torch.softmax(self.weight_logits.masked_fill(~present, -math.inf), 0)  # 0 where missing
        logits = [head(h) for head, h in zip(self.heads, hs) if h is not None]
        z = average_log_probs(logits, weights[present])
        return Fused(z, weights.expand(len(z), -1))


class AttentionFusion(nn.Module):
    """Intermediate fusion with per-sample weights over modalities, scored without a query.

    Each modality is projected to a shared space, u_m = W_m h_m + b_m; a small scoring network
    gives s_m = v^T tanh(A u_m + c) from u_m alone; the weights are alpha = softmax(s_1..s_M) over
    the M modalities of each sample, and z = sum_m alpha_m u_m. A modality whose embedding looks
    unreliable can get a small weight. Hori et al. (2017), Attention-Based Multimodal Fusion for
    Video Description, https://arxiv.org/abs/1701.03126, condition the scores on a query as well
    (the decoder's state, s_m = v^T tanh(A u_m + C q + c)), so the weights change with what is
    being generated; here there is no decoder and no query.

    Shape: ``hs`` [(B, d_m)] -> :class:`Fused` (z (B, out_dim), weights alpha (B, M)); rows of alpha sum to 1.
    """

    def __init__(self, dims: Sequence[int], out_dim: int, hidden: int = 32) -> None:
        super().__init__()
        self.dims = _check_dims(dims, out_dim)
        self.project = nn.ModuleList(nn.Linear(d, out_dim) for d in self.dims)
        self.score = nn.Sequential(nn.Linear(out_dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        # Start from equal weights 1/M: a random early preference could starve a modality of
        # gradient before its encoder has learned anything (the weight multiplies its gradient).
        nn.init.zeros_(self.score[-1].weight)
        nn.init.zeros_(self.score[-1].bias)

    def forward(self, hs: Sequence[torch.Tensor]) -> Fused:
        check_modalities(hs, self.dims)
        u = torch.stack([p(h) for p, h in zip(self.project, hs)], dim=1)  # (B, M, out_dim)
        alpha = torch.softmax(self.score(u).squeeze(-1), dim=1)  # (B, M)
        return Fused((alpha.unsqueeze(-1) * u).sum(1), alpha)


def tensor_product(hs: Sequence[torch.Tensor]) -> torch.Tensor:
    """The Tensor Fusion vector: the outer product of [1, h_1], ..., [1, h_M], flattened.

    With the leading 1s the product holds the constant 1, every h_m on its own and every
    cross-modal product, so a linear map of it can use unimodal and multimodal terms alike.
    For two modalities, entry [0, 0] is 1, row 0 is [1, h_2] and column 0 is [1, h_1].
    Shape: ``hs`` [(B, d_m)] -> (B, prod_m (d_m + 1)).
    """
    check_modalities(hs)
    z = None
    for h in hs:
        h1 = torch.cat([torch.ones_like(h[:, :1]), h], dim=1)  # (B, d_m + 1)
        z = h1 if z is None else (z.unsqueeze(2) * h1.unsqueeze(1)).flatten(1)
    return z


class TensorFusion(nn.Module):
    """Tensor Fusion Network's fusion layer: z = W vec([1, h_1] x ... x [1, h_M]) + b.

    Zadeh et al. (2017), Tensor Fusion Network for Multimodal Sentiment Analysis,
    https://arxiv.org/abs/1707.07250. The weight has out_dim * prod_m (d_m + 1) entries: it
    grows with the product of the modality sizes (two or three modalities in practice).

    Shape: ``hs`` [(B, d_m)] -> :class:`Fused` (z (B, out_dim), weights None).
    """

    def __init__(self, dims: Sequence[int], out_dim: int) -> None:
        super().__init__()
        self.dims = _check_dims(dims, out_dim)
        self.linear = nn.Linear(math.prod(d + 1 for d in self.dims), out_dim)

    def forward(self, hs: Sequence[torch.Tensor]) -> Fused:
        check_modalities(hs, self.dims)
        return Fused(self.linear(tensor_product(hs)), None)


class LowRankFusion(nn.Module):
    """Low-rank Multimodal Fusion: Tensor Fusion with its weight tensor factorised into rank-r parts.

    The factorisation is a CP (CANDECOMP/PARAFAC) decomposition of the weight tensor: a weighted
    sum of r outer products, one factor per modality (:class:`TuckerFusion` is the other one in use).
    Liu et al. (2018), Efficient Low-rank Multimodal Fusion with Modality-Specific Factors,
    https://arxiv.org/abs/1806.00064. Each modality has factors W_m (r, d_m + 1, out_dim);
    z = sum_i lambda_i prod_m ([1, h_m] W_m^(i)) + b, never forming the big tensor. The full
    weight is W = sum_i lambda_i (W_1^(i) x ... x W_M^(i)); :meth:`to_tensor_fusion` builds it.

    Shape: ``hs`` [(B, d_m)] -> :class:`Fused` (z (B, out_dim), weights None).
    """

    def __init__(self, dims: Sequence[int], out_dim: int, rank: int = 4) -> None:
        super().__init__()
        self.dims = _check_dims(dims, out_dim)
        if not isinstance(rank, int) or rank < 1:
            raise ValueError(f"rank: expected a positive integer, got {rank!r}")
        # A ParameterList registers the factors, so they are trained and moved with .to(device).
        self.factors = nn.ParameterList(
            nn.Parameter(torch.randn(rank, d + 1, out_dim) * math.sqrt(1.0 / (d + 1))) for d in self.dims
        )
        self.rank_weights = nn.Parameter(torch.full((rank,), 1.0 / rank))
        self.bias = nn.Parameter(torch.zeros(out_dim))

    def forward(self, hs: Sequence[torch.Tensor]) -> Fused:
        check_modalities(hs, self.dims)
        product = None
        for h, w in zip(hs, self.factors):
            h1 = torch.cat([torch.ones_like(h[:, :1]), h], dim=1)  # (B, d_m + 1)
            part = torch.einsum("bd,rdo->bro", h1, w)  # (B, r, out_dim)
            product = part if product is None else product * part
        return Fused(torch.einsum("r,bro->bo", self.rank_weights, product) + self.bias, None)

    @torch.no_grad()
    def to_tensor_fusion(self) -> TensorFusion:
        """The :class:`TensorFusion` with weight sum_i lambda_i (outer product of the factors): same outputs."""
        out_dim = self.bias.shape[0]
        tfn = TensorFusion(self.dims, out_dim).to(self.bias.device, self.bias.dtype)
        full = self.factors[0]  # (r, d_1 + 1, out_dim)
        for w in self.factors[1:]:  # (r, D, out) x (r, d_m + 1, out) -> (r, D * (d_m + 1), out)
            full = (full.unsqueeze(2) * w.unsqueeze(1)).flatten(1, 2)
        weight = torch.einsum("r,rko->ko", self.rank_weights, full)  # (prod_m (d_m + 1), out_dim)
        tfn.linear.weight.copy_(weight.T)
        tfn.linear.bias.copy_(self.bias)
        return tfn


class TuckerFusion(nn.Module):
    """Tensor Fusion with its weight tensor in Tucker form: a small core tensor and one factor per modality.

    Each modality is projected, p_m = [1, h_m] U_m with U_m (d_m + 1, t_m), and the projections are
    combined by a core tensor G (t_1, ..., t_M, out_dim): z_o = sum_{a, b, ...} G[a, b, ..., o] p_1[a] p_2[b] ... + b_o.
    The full weight is W = G x_1 U_1 x_2 U_2 ... (:meth:`to_tensor_fusion` builds it). Where
    low-rank fusion (a CP decomposition) ties the r components of every modality together, the
    core lets every component of one modality interact with every component of the other.
    This is the fusion of MUTAN (Ben-younes, Cadene, Cord and Thome 2017, MUTAN: Multimodal Tucker
    Fusion for Visual Question Answering, https://arxiv.org/abs/1705.06676), whose output factor is
    folded into the core here.

    Shape: ``hs`` [(B, d_m)] -> :class:`Fused` (z (B, out_dim), weights None).
    """

    def __init__(self, dims: Sequence[int], out_dim: int, ranks: int | Sequence[int] = 8) -> None:
        super().__init__()
        self.dims = _check_dims(dims, out_dim)
        ranks = [ranks] * len(self.dims) if isinstance(ranks, int) else list(ranks)
        if len(ranks) != len(self.dims) or not all(isinstance(t, int) and t > 0 for t in ranks):
            raise ValueError(f"ranks: expected a positive integer or one per modality ({len(self.dims)}), "
                             f"got {ranks!r}")
        self.factors = nn.ParameterList(
            nn.Parameter(torch.randn(d + 1, t) * math.sqrt(1.0 / (d + 1))) for d, t in zip(self.dims, ranks)
        )
        self.core = nn.Parameter(torch.randn(*ranks, out_dim) * math.sqrt(1.0 / math.prod(ranks)))
        self.bias = nn.Parameter(torch.zeros(out_dim))

    def forward(self, hs: Sequence[torch.Tensor]) -> Fused:
        check_modalities(hs, self.dims)
        z = self.core  # (t_1, ..., t_M, out_dim), then (B, t_m, ..., t_M, out_dim) as modalities are absorbed
        for m, (h, u) in enumerate(zip(hs, self.factors)):
            p = torch.cat([torch.ones_like(h[:, :1]), h], dim=1) @ u  # (B, t_m)
            z = torch.einsum("bt,t...->b...", p, z) if m == 0 else torch.einsum("bt,bt...->b...", p, z)
        return Fused(z + self.bias, None)

    @torch.no_grad()
    def to_tensor_fusion(self) -> TensorFusion:
        """The :class:`TensorFusion` with weight G x_1 U_1 ... x_M U_M: same outputs."""
        letters = "abcdefgh"[: len(self.dims)]  # the core's ranks; ijkl... the modalities' d_m + 1
        spec = ",".join(f"{i}{a}" for i, a in zip("ijklmnop", letters)) + f",{letters}o->{'ijklmnop'[: len(letters)]}o"
        weight = torch.einsum(spec, *self.factors, self.core).reshape(-1, self.bias.shape[0])
        tfn = TensorFusion(self.dims, self.bias.shape[0]).to(self.bias.device, self.bias.dtype)
        tfn.linear.weight.copy_(weight.T)
        tfn.linear.bias.copy_(self.bias)
        return tfn


def _check_batches(hs) -> None:
    """Raise ValueError unless ``hs`` is a list of tensors (B, ...) with one batch size B."""
    if not isinstance(hs, (list, tuple)) or not all(isinstance(h, torch.Tensor) for h in hs):
        raise ValueError(f"hs: expected a list of tensors (one per modality), got {type(hs).__name__}")
    if len({len(h) for h in hs}) > 1:
        raise ValueError(f"hs: expected the same batch size for every modality, got {[len(h) for h in hs]}")


class ModalityDropout(nn.Module):
    """While training, a fraction ``p`` of the samples each lose one modality, chosen uniformly.

    The lost modality's tensor is replaced by ``fill[m]`` for that sample (zeros by default), which
    is also how :class:`MultimodalClassifier` represents a modality missing at test time, so the
    model learns to predict from what is left. Never drops every modality of a sample; does
    nothing in eval mode. After Neverova et al. (2016), ModDrop: adaptive multi-modal gesture
    recognition, https://arxiv.org/abs/1501.00102.

    Shape: ``hs`` [(B, ...)], ``fill`` None or [(...)] one per modality -> the shapes of ``hs``.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ValueError(f"p: expected a probability in [0, 1], got {p!r}")
        self.p = float(p)

    def forward(self, hs: Sequence[torch.Tensor], fill: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor]:
        _check_batches(hs)
        if not self.training or self.p == 0 or len(hs) < 2:
            return list(hs)
        batch, device = hs[0].shape[0], hs[0].device
        drop = torch.rand(batch, device=device) < self.p  # which samples lose a modality
        which = torch.randint(len(hs), (batch,), device=device)  # and which one they lose
        out = []
        for m, h in enumerate(hs):
            lost = (drop & (which == m)).view(-1, *[1] * (h.ndim - 1))
            out.append(h * ~lost if fill is None else torch.where(lost, fill[m].expand_as(h), h))
        return out


MISSING = ("zero", "learned")


class MultimodalClassifier(nn.Module):
    """Encoders f_m, a fusion module and a head: scores = head(fusion([h_1, ..., h_M])), h_m = LN(f_m(x_m)).

    Each embedding is layer-normalised (zero mean and unit variance over its own d_m features, no
    learned scale) so that no modality dominates the fusion just by the size of its numbers. Every
    normalised embedding therefore has norm sqrt(d_m): they all lie on one sphere.

    Pass ``None`` for a missing modality. A fusion module that accepts ``None`` (``accepts_missing``,
    as :class:`LateFusion`) gets it and drops that modality. For the others the missing embedding is
    filled in: with ``missing="zero"`` the zero vector, the centre of that sphere, which no real
    embedding is near; with ``missing="learned"`` a trained vector per modality, layer-normalised
    like the others so that it lies on the sphere. :class:`ModalityDropout` fills dropped modalities
    the same way while training, which is the only time the learned vectors get a gradient.

    Parameters
    ----------
    encoders : list of nn.Module, each with an ``out_dim`` attribute
    fusion : a fusion module built with ``dims = [e.out_dim for e in encoders]``
    head : nn.Module mapping z to class scores; ``None`` when the fusion already gives scores
    modality_dropout : probability p of :class:`ModalityDropout` during training (0: none)
    normalize : layer-normalise the embeddings (default True)
    missing : ``"zero"`` or ``"learned"``, the embedding of a missing or dropped modality

    Shape: ``xs`` one batch per modality, each (B, ...) or None -> :class:`Prediction`
    (scores (B, C), weights (B, M) or None).
    """

    def __init__(self, encoders: Sequence[nn.Module], fusion: nn.Module, head: nn.Module | None = None,
                 modality_dropout: float = 0.0, normalize: bool = True, missing: str = "zero") -> None:
        super().__init__()
        if missing not in MISSING:
            raise ValueError(f"missing: expected one of {MISSING}, got {missing!r}")
        self.encoders = nn.ModuleList(encoders)
        self.fusion = fusion
        self.head = head if head is not None else nn.Identity()
        self.modality_dropout = ModalityDropout(modality_dropout)
        self.normalize = normalize
        self.missing = missing
        if missing == "learned":  # a random start puts each vector on the sphere, in no special place
            self.missing_embeddings = nn.ParameterList(nn.Parameter(torch.randn(e.out_dim)) for e in self.encoders)

    def missing_embedding(self, m: int, like: torch.Tensor) -> torch.Tensor:
        """The embedding that stands in for modality ``m`` when it is missing: (d_m,), dtype and device of ``like``."""
        if self.missing == "zero":
            return torch.zeros(self.encoders[m].out_dim, dtype=like.dtype, device=like.device)
        e = self.missing_embeddings[m].to(like.dtype)
        return F.layer_norm(e, e.shape) if self.normalize else e

    def encode(self, m: int, x: torch.Tensor) -> torch.Tensor:
        """Modality ``m``'s embedding h_m (B, d_m): its encoder, then the layer norm (if ``normalize``)."""
        h = self.encoders[m](x)
        return F.layer_norm(h, h.shape[-1:]) if self.normalize else h

    def complete(self, hs: Sequence[torch.Tensor | None]) -> list[torch.Tensor | None]:
        """Embeddings ready for the fusion module: a missing (``None``) modality is filled in
        (:meth:`missing_embedding`) or kept as ``None`` when the fusion module accepts missing
        modalities; then :class:`ModalityDropout` (training only)."""
        given = [h for h in hs if h is not None]
        if not given:
            raise ValueError("xs: every modality is None; at least one must be given")
        fill = [self.missing_embedding(m, given[0]) for m in range(len(hs))]
        if any(h is None for h in hs):
            if getattr(self.fusion, "accepts_missing", False):
                return list(hs)
            hs = [fill[m].expand(len(given[0]), -1) if h is None else h for m, h in enumerate(hs)]
        return self.modality_dropout(hs, fill)

    def embed(self, *xs: torch.Tensor | None) -> list[torch.Tensor | None]:
        """The embeddings h_m (B, d_m) after modality dropout (:meth:`encode`, then :meth:`complete`)."""
        if len(xs) != len(self.encoders):
            raise ValueError(f"xs: expected {len(self.encoders)} inputs (one per encoder), got {len(xs)}")
        return self.complete([None if x is None else self.encode(m, x) for m, x in enumerate(xs)])

    def classify(self, hs: Sequence[torch.Tensor | None]) -> Prediction:
        """Fusion and head on embeddings from :meth:`embed`."""
        fused = self.fusion(hs)
        return Prediction(self.head(fused.z), fused.weights)

    def forward(self, *xs: torch.Tensor | None) -> Prediction:
        return self.classify(self.embed(*xs))
