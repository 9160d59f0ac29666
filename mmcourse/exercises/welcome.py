"""Exercises of lesson 00: accuracy, and a GRU fed batch-first input without ``batch_first`` (find the bug)."""

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


def _reference_last_hidden(x: torch.Tensor, gru: torch.nn.GRU) -> torch.Tensor:
    """Each sequence's final hidden state from a GRU built with the default ``batch_first=False``."""
    _, h_n = gru(x.transpose(0, 1))  # (L, B, E): time first, as this GRU expects
    return h_n[-1]  # (B, H): the last layer's state after the last step


def _last_hidden_cases() -> list[Case]:
    g = torch.Generator().manual_seed(4)
    torch.manual_seed(4)  # the GRU's weights

    def case(description: str, batch: int, length: int, emb: int = 5, hidden: int = 3) -> Case:
        return Case(description, (torch.randn(batch, length, emb, generator=g), torch.nn.GRU(emb, hidden)))

    return [case("one caption of 6 words", 1, 6), case("4 captions of 6 words", 4, 6),
            case("3 captions of one word", 3, 1), case("8 captions of 2 words", 8, 2)]


register("last_hidden", _reference_last_hidden, _last_hidden_cases, explanation=(
    "The bug: nn.GRU reads its input as (L, B, E), time first, unless it is built with batch_first=True. "
    "Fed (B, L, E), it took the batch for time: it ran one sequence per word position, through the captions "
    "in batch order, so outputs[:, -1] for caption i was the state after the last words of captions 0 to i, "
    "and a batch of one caption gave the state after a single step. The shapes look right, which is why "
    "the bug survives: transpose to (L, B, E), or build the GRU with batch_first=True."))
