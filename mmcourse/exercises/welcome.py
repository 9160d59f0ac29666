"""Exercises of lesson 00: accuracy."""

from __future__ import annotations

import torch

from . import Case, register


def _accuracy_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    return [
        Case("4 samples, 3 classes", (torch.tensor([[2.0, 1, 0], [0, 3, 1], [1, 0, 5], [4, 0, 1]]),
                                      torch.tensor([0, 1, 1, 0]))),
        Case("64 samples, 10 classes", (torch.randn(64, 10, generator=g), torch.randint(0, 10, (64,), generator=g))),
        Case("all wrong", (torch.eye(3), torch.tensor([1, 2, 0]))),
    ]


def _reference_accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    from ..metrics import accuracy

    return accuracy(scores, labels)


register("accuracy", _reference_accuracy, _accuracy_cases)
