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
