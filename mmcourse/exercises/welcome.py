"""Exercises of lesson 00: accuracy, a GRU fed batch-first input without ``batch_first`` (find the bug), the
training loop built by hand (checked against ``fit``) and the shuffled-labels control (an experiment)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..experiments import welcome as experiments
from . import Case, register, register_experiment


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


def _linear_model(state: dict) -> nn.Module:
    """The build's small classifier, (N, 1, 8, 8) -> (N, 10), with the weights ``state``."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    model.load_state_dict(state)
    return model


def _trained(model: nn.Module, losses) -> dict:
    losses = list(losses) if isinstance(losses, (list, tuple)) else losses
    return {"epoch losses": losses, "weight after training": model[1].weight.detach(),
            "bias after training": model[1].bias.detach()}


def _reference_training_loop(state: dict, images: torch.Tensor, labels: torch.Tensor, **settings) -> dict:
    model = _linear_model(state)
    return _trained(model, experiments.train_with_fit(model, images, labels, **settings))


def _drive_training_loop(train: Callable, state: dict, images: torch.Tensor, labels: torch.Tensor,
                         **settings) -> dict:
    model = _linear_model(state)
    return _trained(model, train(model, images, labels, **settings))


def _training_loop_cases() -> list[Case]:
    g = torch.Generator().manual_seed(7)

    def case(description: str, n: int, epochs: int, batch_size: int) -> Case:
        torch.manual_seed(n)
        state = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).state_dict()
        images, labels = torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)
        return Case(description, (state, images, labels), {"epochs": epochs, "batch_size": batch_size, "lr": 0.05,
                                                          "seed": 3})

    return [case("one epoch of 8 rows in batches of 4", 8, 1, 4),
            case("one epoch of 10 rows in batches of 4: the last batch has 2 rows", 10, 1, 4),
            case("3 epochs of 40 rows in batches of 16", 40, 3, 16)]


register("training_loop", _reference_training_loop, _training_loop_cases, atol=1e-5, rtol=1e-4,
         drive=_drive_training_loop, forbid=("mmcourse.train.fit",))


register_experiment(
    "shuffled_labels", experiments.shuffled_label_control,
    {"shuffled": experiments.SHUFFLED_LABELS_AT_CHANCE, "renamed": experiments.SHUFFLED_LABELS_NO_DIGITS},
    question="the test accuracy of the image model trained on shuffled labels", predicted="shuffled",
    reference=experiments.shuffle_labels)
