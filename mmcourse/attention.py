"""Attention: scaled dot-product, multi-head, and cross-modal attention in the style of MulT.

Attention is a soft lookup. Each query compares itself with every key, the scores become weights
by a softmax, and the answer is the weighted average of the values:
``Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V`` (Vaswani et al. 2017, "Attention Is All You
Need", https://arxiv.org/abs/1706.03762). Cross-modal attention takes the queries from one
modality and the keys and values from another (Tsai et al. 2019, "Multimodal Transformer for
Unaligned Multimodal Language Sequences", https://arxiv.org/abs/1906.00295).

Masks follow ``torch.nn.functional.scaled_dot_product_attention``: a boolean ``mask`` is True
where a query *may* attend. ``key_padding_mask`` follows ``torch.nn.MultiheadAttention``: True
marks a padding key to ignore. A query that may attend to no key at all gets all-zero weights and a
zero output (``F.scaled_dot_product_attention`` does the same from torch 2.5 on; ``nn.MultiheadAttention``
gives NaN when it returns its weights, its default, as of torch 2.13).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from .encoders import PatchEncoder, TokenSequenceEncoder


def _check_tensor(name: str, x, min_ndim: int, expected: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a tensor of shape {expected}, got {type(x).__name__}")
    if x.ndim < min_ndim:
        raise ValueError(f"{name}: expected shape {expected}, got {tuple(x.shape)}")
    if x.is_floating_point() and torch.isnan(x).any():
        raise ValueError(f"{name}: contains NaN")


def _check_mask(mask, expected: tuple) -> None:
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise ValueError(f"mask: expected a bool tensor (True = may attend), got "
                         f"{getattr(mask, 'dtype', type(mask).__name__)}")
    try:
        fits = torch.broadcast_shapes(mask.shape, expected) == torch.Size(expected)
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"mask: expected a shape broadcastable to {expected}, got {tuple(mask.shape)}")


def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(q k^T / sqrt(d_k)) v``, returning the output and the attention weights.

    Shape (T_q queries, T_k keys):
        - q: (..., T_q, d_k), k: (..., T_k, d_k), v: (..., T_k, d_v), same leading dimensions
        - mask: bool, broadcastable to (..., T_q, T_k); True where a query may attend
        - returns out (..., T_q, d_v) and weights alpha (..., T_q, T_k); each row of weights sums to one
          over its allowed keys, or is all zeros when no key is allowed.

    Equals ``torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)``.
    Reference: Vaswani et al. (2017), "Attention Is All You Need", https://arxiv.org/abs/1706.03762.
    """
    _check_tensor("q", q, 2, "(..., L_q, d_k)")
    _check_tensor("k", k, 2, "(..., L_k, d_k)")
    _check_tensor("v", v, 2, "(..., L_k, d_v)")
    if k.shape[-1] != q.shape[-1] or k.shape[:-2] != q.shape[:-2]:
        raise ValueError(f"k: expected shape {(*q.shape[:-2], 'L_k', q.shape[-1])} to match q {tuple(q.shape)}, "
                         f"got {tuple(k.shape)}")
    if v.shape[:-1] != k.shape[:-1]:
        raise ValueError(f"v: expected shape {(*k.shape[:-1], 'd_v')} to match k {tuple(k.shape)}, "
                         f"got {tuple(v.shape)}")
    if k.shape[-2] == 0:
        raise ValueError(f"k: expected at least one key (L_k >= 1), got shape {tuple(k.shape)}")
    if mask is not None:
        _check_mask(mask, (*q.shape[:-1], k.shape[-2]))
    return _attend(q, k, v, mask)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None):
    """:func:`scaled_dot_product_attention` without the checks (inputs already checked)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., T_q, T_k)
    if mask is None:
        weights = torch.softmax(scores, dim=-1)
    else:
        # The smallest finite number, not -inf: a row with no allowed key then gives a uniform
        # softmax instead of NaN, and multiplying by the mask turns it into zeros.
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1) * mask
    return weights @ v, weights


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Cut the last dimension into ``num_heads`` heads. Shape: (B, T, d) -> (B, H, T, d/H)."""
    _check_tensor("x", x, 3, "(B, L, E)")
    if x.ndim != 3 or x.shape[-1] % num_heads:
        raise ValueError(f"x: expected shape (B, L, E) with E divisible by num_heads={num_heads}, "
                         f"got {tuple(x.shape)}")
    return _split_heads(x, num_heads)


def _split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """:func:`split_heads` without the checks (inside a model's forward pass: no host synchronisation)."""
    b, length, e = x.shape
    return x.reshape(b, length, num_heads, e // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """Undo :func:`split_heads`. Shape: (B, H, T, d/H) -> (B, T, d)."""
    _check_tensor("x", x, 4, "(B, H, L, D)")
    if x.ndim != 4:
        raise ValueError(f"x: expected shape (B, H, L, D), got {tuple(x.shape)}")
    return _merge_heads(x)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """:func:`merge_heads` without the checks."""
    b, h, length, d = x.shape
    return x.transpose(1, 2).reshape(b, length, h * d)


class MultiHeadAttention(nn.Module):
    r"""Multi-head attention, batch first: H heads attend in parallel in subspaces of size d/H.

    As lesson 03 writes it (Vaswani et al. 2017), with the maps acting on rows as ``nn.Linear`` does:
    $\mathrm{MultiHead}(Q, K, V) = \mathrm{concat}(\mathrm{head}_1, \dots, \mathrm{head}_H)\, W^{O\top}$,
    $\mathrm{head}_h = \mathrm{Attention}(Q W_h^{Q\top}, K W_h^{K\top}, V W_h^{V\top})$, where $W_h^Q$ is the
    h-th block of d/H rows of $W^Q$ (``q_proj.weight``, one projection for all H heads), likewise for K and V,
    and $W^O$ is ``out_proj.weight``.

    Parameters
    ----------
    embed_dim : int
        d, the size of the queries and of the output; must be divisible by ``num_heads``.
    num_heads : int
        H.
    kdim, vdim : int, optional
        Sizes of the keys and values when they differ from d (another modality, say).
    bias : bool
        Whether the four projections have a bias.

    Shape (T_q queries, T_k keys):
        - query (B, T_q, d), key (B, T_k, kdim), value (B, T_k, vdim)
        - key_padding_mask: bool (B, T_k), True for padding keys to ignore (as in torch)
        - mask: bool broadcastable to (B, H, T_q, T_k), True where a query may attend (as in
          ``F.scaled_dot_product_attention``; torch's ``nn.MultiheadAttention`` uses the opposite)
        - returns out (B, T_q, d) and per-head weights alpha (B, H, T_q, T_k)

    Query, key and value are checked for NaN while the attribute ``check_values`` is True (the default; the
    blocks below set it to False: the check reads them back to the host at every step of training).
    """

    def __init__(self, embed_dim: int, num_heads: int, kdim: int | None = None, vdim: int | None = None,
                 bias: bool = True) -> None:
        super().__init__()
        if num_heads < 1 or embed_dim % num_heads:
            raise ValueError(f"num_heads: expected a divisor of embed_dim={embed_dim}, got {num_heads}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(kdim or embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(vdim or embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        # Whether forward checks query, key and value for NaN. The check reads them back to the host, a
        # synchronisation that stalls a GPU at every step of training: the blocks below, which call this module
        # inside a model's forward pass, turn it off; a learner who calls the module directly gets it.
        # Shapes are checked either way (that reads nothing back).
        self.check_values = True

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        for name, x, dim in (("query", query, self.q_proj.in_features), ("key", key, self.k_proj.in_features),
                             ("value", value, self.v_proj.in_features)):
            if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[-1] != dim:
                raise ValueError(f"{name}: expected shape (B, L, {dim}), got {tuple(getattr(x, 'shape', ()))}")
            if self.check_values:
                _check_tensor(name, x, 3, f"(B, L, {dim})")  # NaN
        if query.shape[0] == 0 or key.shape[1] == 0:
            raise ValueError(f"query, key: expected a non-empty batch and at least one key, got query "
                             f"{tuple(query.shape)} and key {tuple(key.shape)}")
        if key.shape[:2] != value.shape[:2] or key.shape[0] != query.shape[0]:
            raise ValueError(f"key, value: expected the same (B, L_k) as each other and B={query.shape[0]} "
                             f"as query, got key {tuple(key.shape)} and value {tuple(value.shape)}")
        if mask is not None:
            _check_mask(mask, (query.shape[0], self.num_heads, query.shape[1], key.shape[1]))  # (B, H, T_q, T_k)
        allowed = mask
        if key_padding_mask is not None:
            if key_padding_mask.dtype != torch.bool or key_padding_mask.shape != key.shape[:2]:
                raise ValueError(f"key_padding_mask: expected a bool tensor of shape {tuple(key.shape[:2])}, "
                                 f"got {key_padding_mask.dtype} {tuple(key_padding_mask.shape)}")
            keep = ~key_padding_mask[:, None, None, :]  # (B, 1, 1, T_k)
            allowed = keep if allowed is None else allowed & keep
        h = self.num_heads
        q = _split_heads(self.q_proj(query), h)  # (B, H, T_q, d/H)
        k, v = _split_heads(self.k_proj(key), h), _split_heads(self.v_proj(value), h)  # (B, H, T_k, d/H)
        out, weights = _attend(q, k, v, allowed)
        return self.out_proj(_merge_heads(out)), weights

    @classmethod
    def from_torch(cls, m: nn.MultiheadAttention) -> MultiHeadAttention:
        """A copy of a ``torch.nn.MultiheadAttention(batch_first=True)``: same weights, same outputs.

        Ours has no dropout, so compare the two in eval mode (or with ``dropout=0``).
        """
        if not isinstance(m, nn.MultiheadAttention):
            raise ValueError(f"m: expected a torch.nn.MultiheadAttention, got {type(m).__name__}")
        if not m.batch_first:
            raise ValueError("m: expected batch_first=True (ours takes (B, L, E)), got batch_first=False")
        if m.bias_k is not None or m.add_zero_attn:
            raise ValueError("m: add_bias_kv and add_zero_attn are not supported, got a module that uses them")
        ours = cls(m.embed_dim, m.num_heads, m.kdim, m.vdim, bias=m.in_proj_bias is not None)
        if m._qkv_same_embed_dim:
            w_q, w_k, w_v = m.in_proj_weight.chunk(3)
        else:
            w_q, w_k, w_v = m.q_proj_weight, m.k_proj_weight, m.v_proj_weight
        with torch.no_grad():
            for proj, w in ((ours.q_proj, w_q), (ours.k_proj, w_k), (ours.v_proj, w_v)):
                proj.weight.copy_(w)
            ours.out_proj.weight.copy_(m.out_proj.weight)
            if m.in_proj_bias is not None:
                for proj, b in zip((ours.q_proj, ours.k_proj, ours.v_proj), m.in_proj_bias.chunk(3)):
                    proj.bias.copy_(b)
                ours.out_proj.bias.copy_(m.out_proj.bias)
        return ours.to(m.out_proj.weight.device, m.out_proj.weight.dtype)


class CrossModalAttention(nn.Module):
    """One cross-modal block: the target sequence attends to the source sequence.

    As in MulT (Tsai et al. 2019): queries from the target, keys and values from the source, layer
    normalisation before attention (pre-norm), a residual connection, then a residual feed-forward
    layer. With target t and source s, ``U = t + MultiHead(LN(t), LN(s), LN(s))`` and ``out = U + FF(LN(U))``
    (lesson 03 writes t = Z_text, the words, and s = Z_image, the patches).

    Shape (T_q target rows, T_k source rows):
        - target (B, T_q, dim), source (B, T_k, source_dim), source_padding_mask bool (B, T_k)
        - returns out (B, T_q, dim) and weights alpha (B, H, T_q, T_k)
    """

    def __init__(self, dim: int, num_heads: int, source_dim: int | None = None, ff_mult: int = 2) -> None:
        super().__init__()
        source_dim = source_dim or dim
        self.norm_target, self.norm_source = nn.LayerNorm(dim), nn.LayerNorm(source_dim)
        self.attn = MultiHeadAttention(dim, num_heads, kdim=source_dim, vdim=source_dim)
        self.attn.check_values = False  # no NaN check (a host synchronisation) at every step of training
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff_mult * dim), nn.GELU(), nn.Linear(ff_mult * dim, dim))

    def forward(self, target: torch.Tensor, source: torch.Tensor,
                source_padding_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.norm_source(source)
        attended, weights = self.attn(self.norm_target(target), s, s, key_padding_mask=source_padding_mask)
        x = target + attended
        return x + self.ff(self.norm_ff(x)), weights


class CoAttention(NamedTuple):
    """What :class:`CrossModalTransformer` returns: both updated sequences and each direction's weights."""

    text: torch.Tensor  # (B, T, dim): T words
    image: torch.Tensor  # (B, P, dim): P patches
    text_to_image: torch.Tensor  # (B, H, T, P): words attending over patches (last layer)
    image_to_text: torch.Tensor  # (B, H, P, T): patches attending over words (last layer)


class CrossModalTransformer(nn.Module):
    """Cross-modal attention in both directions, a small two-modality MulT (Tsai et al. 2019).

    One stack of :class:`CrossModalAttention` blocks lets text attend to the image, another lets the
    image attend to text. As in MulT, each layer of a stack attends to the *input* sequence of the
    other modality, so the two directions do not depend on each other.

    Shape: text (B, T, dim), image (B, P, dim), text_padding_mask bool (B, T) ->
    :class:`CoAttention`.
    """

    def __init__(self, dim: int, num_heads: int, num_layers: int = 1) -> None:
        super().__init__()
        self.text_to_image = nn.ModuleList(CrossModalAttention(dim, num_heads) for _ in range(num_layers))
        self.image_to_text = nn.ModuleList(CrossModalAttention(dim, num_heads) for _ in range(num_layers))

    def forward(self, text: torch.Tensor, image: torch.Tensor,
                text_padding_mask: torch.Tensor | None = None) -> CoAttention:
        t, i = text, image
        for block in self.text_to_image:
            t, w_ti = block(t, image)
        for block in self.image_to_text:
            i, w_it = block(i, text, text_padding_mask)
        return CoAttention(t, i, w_ti, w_it)


class VQAOutput(NamedTuple):
    """What :class:`AttentionVQA` returns, with one direction or two."""

    scores: torch.Tensor  # (B, num_answers)
    text_to_image: torch.Tensor  # (B, H, T, P): each word's attention over the patches
    image_to_text: torch.Tensor | None  # (B, H, P, T): each patch's attention over the words; None with one direction


class Summary(NamedTuple):
    """What :meth:`AttentionVQA.summarize` returns: the pooled vectors the head reads, and the attention."""

    text: torch.Tensor  # (B, dim): the question after attention, a weighted average of its words
    image: torch.Tensor | None  # (B, dim): the average patch after attention (both directions), else None
    text_to_image: torch.Tensor  # (B, H, T, P)
    image_to_text: torch.Tensor | None  # (B, H, P, T), or None


class AttentionVQA(nn.Module):
    """Answer a question about a Shapes scene by letting its words attend over image patches.

    The question becomes token embeddings with positions, the image a grid of patch embeddings
    with positions. In one direction (default) each word looks up the patches with
    :class:`CrossModalAttention`; with ``both_directions=True`` a :class:`CrossModalTransformer` also
    lets every patch look up the words. The updated words (and patches) are averaged and a linear
    layer scores the answers.

    Shape: image (B, 3, 32, 32), tokens (B, T) int64 padded with 0 -> :class:`VQAOutput`
    (scores (B, num_answers), text_to_image (B, H, T, P), image_to_text (B, H, P, T) or None).
    """

    def __init__(self, vocab_size: int, num_answers: int, dim: int = 32, num_heads: int = 2,
                 patch_size: int = 4, both_directions: bool = False) -> None:
        super().__init__()
        self.text = TokenSequenceEncoder(vocab_size, dim)
        self.image = PatchEncoder(dim, patch_size)
        self.both_directions = both_directions
        self.cross = CrossModalTransformer(dim, num_heads) if both_directions else CrossModalAttention(dim, num_heads)
        width = 2 * dim if both_directions else dim
        self.word_weight = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 1))  # how much each word counts
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, num_answers))

    def summarize(self, image: torch.Tensor, tokens: torch.Tensor) -> Summary:
        """The question's summary, the image's summary (both directions only) and the attention.

        The question's summary is a weighted average of its words after attention, with weights
        computed from the words themselves (a softmax over the real tokens; padding gets none).
        The image's summary (both directions only) is the average patch after attention.
        """
        words, padding = self.text(tokens)  # (B, T, dim), (B, T)
        patches = self.image(image)  # (B, P, dim)
        scores = self.word_weight(words).squeeze(-1).masked_fill(padding, torch.finfo(words.dtype).min)
        word_weights = torch.softmax(scores, dim=-1).unsqueeze(-1)  # (B, T, 1)
        if self.both_directions:
            co = self.cross(words, patches, padding)
            return Summary((word_weights * co.text).sum(1), co.image.mean(1), co.text_to_image, co.image_to_text)
        words, weights = self.cross(words, patches)
        return Summary((word_weights * words).sum(1), None, weights, None)

    def forward(self, image: torch.Tensor, tokens: torch.Tensor) -> VQAOutput:
        summary = self.summarize(image, tokens)
        pooled = summary.text if summary.image is None else torch.cat([summary.text, summary.image], dim=-1)
        return VQAOutput(self.head(pooled), summary.text_to_image, summary.image_to_text)
