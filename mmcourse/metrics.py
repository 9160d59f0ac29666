"""Evaluation metrics shared by the lessons."""

from __future__ import annotations

import hashlib
import math
import numbers
from typing import NamedTuple

import torch


def accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose highest score is at the true label.

    Shape: ``scores`` (B, C) logits, probabilities or log-probabilities, or (B,) predicted
    labels; ``labels`` (B,). Returns a Python float in [0, 1].
    """
    if scores.ndim not in (1, 2):
        raise ValueError(f"scores: expected shape (B, C) or (B,), got {tuple(scores.shape)}")
    if labels.ndim != 1 or labels.shape[0] != scores.shape[0]:
        raise ValueError(f"labels: expected shape ({scores.shape[0]},), got {tuple(labels.shape)}")
    if labels.shape[0] == 0:
        raise ValueError("scores: the batch is empty")
    predicted = scores.argmax(dim=1) if scores.ndim == 2 else scores
    return (predicted == labels).float().mean().item()


def patch_grid(num_patches: int, name: str = "num_patches") -> int:
    """The side g of a square grid of ``num_patches`` = g * g patches; ValueError naming ``name`` if
    it is not a square. Patches are numbered row by row, as :class:`mmcourse.encoders.PatchEncoder` does.

    >>> patch_grid(64)
    8
    """
    grid = math.isqrt(num_patches) if isinstance(num_patches, int) and num_patches > 0 else 0
    if grid * grid != num_patches or grid == 0:
        raise ValueError(f"{name}: expected P = g * g patches of a square grid, got P = {num_patches!r}")
    return grid


def patch_masks(masks: torch.Tensor, grid: int) -> torch.Tensor:
    """Which patches of a ``grid`` x ``grid`` patch grid touch each object (any pixel of the patch).

    Patches are numbered row by row, as :class:`mmcourse.encoders.PatchEncoder` numbers them.
    Shape: ``masks`` (B, K, H, W) bool -> (B, K, grid * grid) bool.
    """
    if masks.ndim != 4 or masks.dtype != torch.bool:
        raise ValueError(f"masks: expected a bool tensor of shape (B, K, H, W), got {masks.dtype} {tuple(masks.shape)}")
    b, k, h, w = masks.shape
    if grid < 1 or h % grid or w % grid:
        raise ValueError(f"grid: expected a divisor of the image size {h}x{w}, got {grid}")
    return masks.reshape(b, k, grid, h // grid, grid, w // grid).any(dim=5).any(dim=3).reshape(b, k, grid * grid)


class Grounding(NamedTuple):
    """What :func:`grounding_accuracy` returns."""

    accuracy: float  # how often the most-attended patch touches the object the word names
    chance: float  # the same for a patch drawn uniformly at random


def grounding_accuracy(weights: torch.Tensor, masks: torch.Tensor, token_to_object: torch.Tensor) -> Grounding:
    """How often each word's most-attended image patch falls inside the object the word refers to.

    Only tokens that refer to an object (``token_to_object >= 0``) count. A patch is inside an
    object when any of its pixels belongs to the object's mask. ``chance`` is the accuracy of a
    patch drawn uniformly at random, averaged over the same tokens: the fraction of patches that
    touch the object.

    Shape:
        - weights (B, T, P): attention of each of T words over P = g * g patches (average the
          heads first, ``w.mean(1)``, or pick one, ``w[:, h]``)
        - masks bool (B, K, H, W): the objects' masks (Shapes' ``masks`` column)
        - token_to_object int (B, T): the object each word names, -1 for none (``question_object``)
        - returns :class:`Grounding` (accuracy, chance), two floats in [0, 1]
    """
    if weights.ndim != 3:
        raise ValueError(f"weights: expected shape (B, L, P) (average or pick heads first), got {tuple(weights.shape)}")
    b, length, p = weights.shape
    grid = patch_grid(p, "weights")
    if masks.ndim != 4 or masks.shape[0] != b:
        raise ValueError(f"masks: expected shape ({b}, K, H, W), got {tuple(masks.shape)}")
    if token_to_object.shape != (b, length) or token_to_object.is_floating_point():
        raise ValueError(f"token_to_object: expected an integer tensor of shape ({b}, {length}), got "
                         f"{token_to_object.dtype} {tuple(token_to_object.shape)}")
    if token_to_object.max() >= masks.shape[1]:
        raise ValueError(f"token_to_object: expected object indices below K={masks.shape[1]}, "
                         f"got {int(token_to_object.max())}")
    rows, cols = (token_to_object >= 0).nonzero(as_tuple=True)
    if len(rows) == 0:
        raise ValueError("token_to_object: no token refers to an object (all are -1)")
    inside = patch_masks(masks, grid)[rows, token_to_object[rows, cols]]  # (N, P): the named object's patches
    top = weights[rows, cols].argmax(dim=-1)  # (N,)
    hits = inside.gather(1, top[:, None]).squeeze(1)
    return Grounding(hits.float().mean().item(), inside.float().mean().item())


def _check_retrieval(scores: torch.Tensor, relevant: torch.Tensor, k: int) -> None:
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError(f"scores: expected shape (Q, G) with at least one query and one item, "
                         f"got {tuple(scores.shape)}")
    if relevant.shape != scores.shape or relevant.dtype != torch.bool:
        raise ValueError(f"relevant: expected a bool tensor of shape {tuple(scores.shape)}, got {relevant.dtype} "
                         f"{tuple(relevant.shape)}")
    if not isinstance(k, int) or not 1 <= k <= scores.shape[1]:
        raise ValueError(f"k: expected an integer from 1 to the gallery size {scores.shape[1]}, got {k!r}")


def hits_at_k(scores: torch.Tensor, relevant: torch.Tensor, k: int) -> torch.Tensor:
    """Whether each query has a relevant item among its top ``k``: the per-query hits whose mean is
    :func:`recall_at_k`. Per-query hits let two methods be compared on the same queries
    (:func:`~mmcourse.diagnostics.paired_difference`). Shape: (Q, G), (Q, G) bool -> (Q,) bool."""
    _check_retrieval(scores, relevant, k)
    return relevant.gather(1, scores.topk(k, dim=1).indices).any(dim=1)


def recall_at_k(scores: torch.Tensor, relevant: torch.Tensor, k: int) -> float:
    """Recall@K of a retrieval: the fraction of queries with at least one relevant item among their top ``k``.

    Each query ranks the whole gallery by score, highest first. With one relevant item per query
    (an image's own caption) this is the usual Recall@K of cross-modal retrieval; with several (all
    images of the same digit) it is the hit rate that deep metric learning calls Recall@K.

    Shape: ``scores`` (Q, G) similarities of Q queries to G gallery items; ``relevant`` (Q, G) bool.
    Returns a Python float in [0, 1].
    """
    return hits_at_k(scores, relevant, k).float().mean().item()


def chance_recall_at_k(relevant: torch.Tensor, k: int) -> float:
    """Expected :func:`recall_at_k` when each query ranks the gallery at random.

    A query with r relevant items among G misses all of them in k random draws without
    replacement with probability C(G - r, k) / C(G, k) = prod_{i<k} (G - r - i) / (G - i).
    Shape: ``relevant`` (Q, G) bool, on any device. Returns a Python float in [0, 1].
    """
    _check_retrieval(relevant.float(), relevant, k)
    g = relevant.shape[1]
    # The counts are whole numbers: counted where ``relevant`` is, the small closed form on the CPU in
    # float64 (which Apple's MPS lacks).
    r = relevant.sum(dim=1).to("cpu", torch.float64)  # (Q,)
    i = torch.arange(k, dtype=torch.float64)
    miss = ((g - r[:, None] - i) / (g - i)).clamp(min=0).prod(dim=1)
    return (1 - miss).mean().item()


def _cosine_retrieval(queries: torch.Tensor, gallery: torch.Tensor, query_labels: torch.Tensor,
                      gallery_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarities (Q, G), float64 on the CPU, and relevance (Q, G) bool (the same class)."""
    if queries.ndim != 2 or gallery.ndim != 2 or queries.shape[1] != gallery.shape[1]:
        raise ValueError(f"queries, gallery: expected shapes (Q, d) and (G, d) with the same d, got "
                         f"{tuple(queries.shape)} and {tuple(gallery.shape)}")
    if query_labels.shape != queries.shape[:1] or gallery_labels.shape != gallery.shape[:1]:
        raise ValueError(f"query_labels, gallery_labels: expected shapes ({len(queries)},) and ({len(gallery)},), "
                         f"got {tuple(query_labels.shape)} and {tuple(gallery_labels.shape)}")
    queries, gallery = (x.detach().to("cpu", torch.float64) for x in (queries, gallery))
    scores = torch.nn.functional.normalize(queries, dim=1) @ torch.nn.functional.normalize(gallery, dim=1).T
    relevant = query_labels.cpu()[:, None] == gallery_labels.cpu()[None, :]
    return scores, relevant


class Retrieval(NamedTuple):
    """Class-level retrieval results of one method: Recall@1 and @5 and their exact chance levels."""

    recall_at_1: float
    recall_at_5: float
    chance_at_1: float
    chance_at_5: float


def class_retrieval(queries: torch.Tensor, gallery: torch.Tensor, query_labels: torch.Tensor,
                    gallery_labels: torch.Tensor) -> Retrieval:
    """Rank the gallery for each query by cosine similarity; a gallery item is relevant when it has the
    query's class. This is the course's running comparison: spoken digits (queries) retrieving images
    of the same digit (gallery) on AV-Digits' test split, for every method that maps both into one space
    (lessons 02, 04, 05 and 07).

    Shape: ``queries`` (Q, d), ``gallery`` (G, d), ``query_labels`` (Q,), ``gallery_labels`` (G,), on any
    devices -> :class:`Retrieval` (four floats). It scores on the CPU in float64: the same numbers on every
    device (Apple's MPS has no float64).
    """
    scores, relevant = _cosine_retrieval(queries, gallery, query_labels, gallery_labels)
    return Retrieval(recall_at_k(scores, relevant, 1), recall_at_k(scores, relevant, 5),
                     chance_recall_at_k(relevant, 1), chance_recall_at_k(relevant, 5))


LABEL_USES = ("none", "model selection", "training")


class ComparisonEntry(NamedTuple):
    """One row of the course's running comparison (speech-to-image retrieval on AV-Digits' test split)."""

    method: str  # e.g. "linear CCA"
    lesson: str  # the lesson that teaches it, e.g. "02"
    pairs: str  # which image-audio pairs training used: "all", "10" (one per digit) or "none"
    labels: str  # what the digit labels did, one of LABEL_USES: "model selection" when they chose a hyperparameter
    retrieval: Retrieval  # on the test split (queries: spoken digits; gallery: images)
    note: str = ""  # e.g. "the encoders were trained apart, as classifiers"
    hits: tuple[float, ...] = ()  # Recall@1's hit (1 or 0) of each query, in the test split's order, or its mean
    # over several maps (ten draws of ten pairs): for comparisons of two rows on the same queries
    split: str = ""  # which test split: split_id of the query labels (rows of different splits do not compare)


def split_id(query_labels: torch.Tensor) -> str:
    """A short name for a test split, from its queries' labels in order: two rows compare query by query only
    when it is the same. Shape: (Q,) int."""
    return hashlib.sha256(query_labels.to(torch.int64).cpu().numpy().tobytes()).hexdigest()[:12]


def comparison_entry(method: str, lesson: str, pairs: str, labels: str, queries: torch.Tensor, gallery: torch.Tensor,
                     query_labels: torch.Tensor, gallery_labels: torch.Tensor, note: str = "") -> ComparisonEntry:
    """A row of the running comparison from a method's embeddings of the test split: its
    :func:`class_retrieval` and the per-query hits at 1 (for paired comparisons between rows).

    Shape: ``queries`` (Q, d) spoken digits, ``gallery`` (G, d) images, ``query_labels`` (Q,), ``gallery_labels`` (G,).
    """
    if labels not in LABEL_USES:
        raise ValueError(f"labels: expected one of {LABEL_USES}, got {labels!r}")
    retrieval = class_retrieval(queries, gallery, query_labels, gallery_labels)
    hits = hits_at_k(*_cosine_retrieval(queries, gallery, query_labels, gallery_labels), 1)
    return ComparisonEntry(method, lesson, pairs, labels, retrieval, note, tuple(float(h) for h in hits),
                           split_id(query_labels))


def ndcg_at_k(scores: torch.Tensor, relevance: torch.Tensor, k: int) -> float:
    """Normalised discounted cumulative gain at ``k`` with graded relevance, averaged over the queries.

    Each query ranks the gallery by score, highest first. The gain of the item at rank r (1-based)
    is its relevance divided by log2(r + 1); DCG@k sums the top k gains, and NDCG@k divides it by
    the DCG@k of the best possible ranking. Järvelin and Kekäläinen (2002) introduced (N)DCG with a
    discount of log_b(r) from rank b on; the log2(r + 1) discount at every rank is the later form that
    scikit-learn and most of today's papers use. Items with tied scores
    share their average relevance, and a query without any relevant item scores 0: both as
    ``sklearn.metrics.ndcg_score(relevance, scores, k=k)`` does, which this equals.

    Shape: ``scores`` (Q, G) similarities, ``relevance`` (Q, G) graded relevance >= 0 (for example
    how many of a caption's objects a scene contains). Returns a Python float in [0, 1].
    """
    if not isinstance(scores, torch.Tensor) or scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] < 2:
        got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(f"scores: expected shape (Q, G) with at least one query and two items, got {got}")
    if not isinstance(relevance, torch.Tensor) or relevance.shape != scores.shape:
        got = tuple(relevance.shape) if isinstance(relevance, torch.Tensor) else type(relevance).__name__
        raise ValueError(f"relevance: expected shape {tuple(scores.shape)}, like scores, got {got}")
    relevance = relevance.detach().to("cpu", torch.float64)
    if not torch.isfinite(relevance).all() or (relevance < 0).any():
        raise ValueError("relevance: expected finite grades >= 0")
    if not isinstance(k, numbers.Integral) or not 1 <= k <= scores.shape[1]:
        raise ValueError(f"k: expected an integer from 1 to the gallery size {scores.shape[1]}, got {k!r}")
    scores = scores.detach().to("cpu", torch.float64)
    if torch.isnan(scores).any():
        raise ValueError("scores: contains NaN")
    discount = torch.zeros(scores.shape[1], dtype=torch.float64)
    discount[:k] = 1 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64))
    order = scores.argsort(dim=1, descending=True)
    ranked, gains = scores.gather(1, order), relevance.gather(1, order)
    # Tied scores form groups of consecutive ranks; each item of a group gets the group's mean gain.
    group = torch.cat([torch.zeros(len(ranked), 1, dtype=torch.long), (ranked[:, 1:] != ranked[:, :-1]).long()],
                      dim=1).cumsum(1)
    total = torch.zeros_like(gains).scatter_add_(1, group, gains)
    size = torch.zeros_like(gains).scatter_add_(1, group, torch.ones_like(gains))
    dcg = ((total / size.clamp(min=1)).gather(1, group) * discount).sum(1)
    ideal = (relevance.sort(dim=1, descending=True).values * discount).sum(1)
    return torch.where(ideal > 0, dcg / ideal.clamp(min=1e-300), torch.zeros_like(dcg)).mean().item()


def chance_ndcg_at_k(relevance: torch.Tensor, k: int) -> float:
    """Expected :func:`ndcg_at_k` when each query ranks the gallery at random.

    At every rank the expected gain is the query's mean relevance over the gallery, so the expected
    DCG@k is that mean times the sum of the first k discounts; divided by the ideal DCG@k (queries
    without a relevant item count 0, as in :func:`ndcg_at_k`).
    Shape: ``relevance`` (Q, G) graded relevance >= 0. Returns a Python float in [0, 1].
    """
    if not isinstance(relevance, torch.Tensor) or relevance.ndim != 2:
        got = tuple(relevance.shape) if isinstance(relevance, torch.Tensor) else type(relevance).__name__
        raise ValueError(f"relevance: expected shape (Q, G), got {got}")
    ndcg_at_k(torch.zeros(relevance.shape), relevance, k)  # the same checks as there
    relevance = relevance.detach().to("cpu", torch.float64)
    discount = 1 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64))
    ideal = (relevance.sort(dim=1, descending=True).values[:, :k] * discount).sum(1)
    expected = relevance.mean(1) * discount.sum()
    return torch.where(ideal > 0, expected / ideal.clamp(min=1e-300), torch.zeros_like(ideal)).mean().item()
