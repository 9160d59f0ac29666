"""Evaluation metrics shared by the lessons."""

from __future__ import annotations

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


def _check_retrieval(scores: torch.Tensor, relevant: torch.Tensor, k: int) -> None:
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError(f"scores: expected shape (Q, G) with at least one query and one item, "
                         f"got {tuple(scores.shape)}")
    if relevant.shape != scores.shape or relevant.dtype != torch.bool:
        raise ValueError(f"relevant: expected a bool tensor of shape {tuple(scores.shape)}, got {relevant.dtype} "
                         f"{tuple(relevant.shape)}")
    if not isinstance(k, int) or not 1 <= k <= scores.shape[1]:
        raise ValueError(f"k: expected an integer from 1 to the gallery size {scores.shape[1]}, got {k!r}")


def recall_at_k(scores: torch.Tensor, relevant: torch.Tensor, k: int) -> float:
    """Recall@K of a retrieval: the fraction of queries with at least one relevant item among their top ``k``.

    Each query ranks the whole gallery by score, highest first. With one relevant item per query
    (an image's own caption) this is the usual Recall@K of cross-modal retrieval; with several (all
    images of the same digit) it is the hit rate that deep metric learning calls Recall@K.

    Shape: ``scores`` (Q, G) similarities of Q queries to G gallery items; ``relevant`` (Q, G) bool.
    Returns a Python float in [0, 1].
    """
    _check_retrieval(scores, relevant, k)
    top = scores.topk(k, dim=1).indices  # (Q, k)
    return relevant.gather(1, top).any(dim=1).float().mean().item()


def chance_recall_at_k(relevant: torch.Tensor, k: int) -> float:
    """Expected :func:`recall_at_k` when each query ranks the gallery at random.

    A query with r relevant items among G misses all of them in k random draws without
    replacement with probability C(G - r, k) / C(G, k) = prod_{i<k} (G - r - i) / (G - i).
    Shape: ``relevant`` (Q, G) bool. Returns a Python float in [0, 1].
    """
    _check_retrieval(relevant.float(), relevant, k)
    g = relevant.shape[1]
    r = relevant.sum(dim=1, dtype=torch.float64)  # (Q,)
    i = torch.arange(k, dtype=torch.float64)
    miss = ((g - r[:, None] - i) / (g - i)).clamp(min=0).prod(dim=1)
    return (1 - miss).mean().item()
