"""Exercises of lesson 06: prototypes and their logits, one MAML inner step with ``torch.func.grad``, and
per-episode modality weights normalised over the wrong dimension (find the bug)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import Case, register


def _reference_prototypical_logits(support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor,
                                   n_way: int) -> torch.Tensor:
    from ..meta import prototypes, prototypical_logits

    return prototypical_logits(query, prototypes(support, support_labels, n_way))


def _prototype_cases() -> list[Case]:
    g = torch.Generator().manual_seed(6)

    def case(description: str, n_way: int, k_shot: int, queries: int, dim: int, shuffle: bool = False) -> Case:
        labels = torch.arange(n_way).repeat_interleave(k_shot)
        if shuffle:  # support rows in any order, not class by class
            labels = labels[torch.randperm(len(labels), generator=g)]
        support = torch.randn(len(labels), dim, generator=g)
        return Case(description, (support, labels, torch.randn(queries, dim, generator=g), n_way))

    return [
        Case("2-way 1-shot in 1-D", (torch.tensor([[0.0], [4.0]]), torch.tensor([0, 1]), torch.tensor([[1.0], [3.0]]),
                                      2)),
        case("3-way 2-shot, 4 queries, D = 5", 3, 2, 4, 5),
        case("5-way 5-shot, support rows in shuffled order", 5, 5, 6, 8, shuffle=True),
        case("4-way 3-shot, one query", 4, 3, 1, 3, shuffle=True),
    ]


def _reference_adapted_scores(model: nn.Module, params: dict, support_x: torch.Tensor, support_y: torch.Tensor,
                              query_x: torch.Tensor, inner_lr: float) -> torch.Tensor:
    from torch.func import functional_call

    from ..meta import adapt

    adapted = adapt(model, params, (support_x, support_y), F.cross_entropy, inner_lr, inner_steps=1)
    return functional_call(model, adapted, (query_x,))


def _maml_cases() -> list[Case]:
    g = torch.Generator().manual_seed(7)
    torch.manual_seed(7)  # the models' initial weights

    def case(description: str, model: nn.Module, n_way: int, k_shot: int, dim: int, lr: float) -> Case:
        params = {k: v.detach().clone() for k, v in model.named_parameters()}
        y = torch.arange(n_way).repeat_interleave(k_shot)
        return Case(description, (model, params, torch.randn(len(y), dim, generator=g), y,
                                  torch.randn(6, dim, generator=g), lr))

    return [
        case("a linear model, 2-way 1-shot", nn.Linear(3, 2), 2, 1, 3, 0.5),
        case("a linear model, 3-way 4-shot, small step", nn.Linear(4, 3), 3, 4, 4, 0.01),
        case("a two-layer perceptron, 4-way 2-shot", nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 4)),
             4, 2, 5, 0.3),
    ]


def _reference_fuse(logits: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    from ..meta import fuse_logits

    return fuse_logits(logits, torch.softmax(scores, dim=-1))


def _fuse_cases() -> list[Case]:
    g = torch.Generator().manual_seed(8)

    def case(description: str, episodes: int, modalities: int, scores: torch.Tensor | None = None) -> Case:
        logits = -10 * torch.rand(episodes, modalities, 5, 3, generator=g)
        scores = torch.randn(episodes, modalities, generator=g) if scores is None else scores
        return Case(description, (logits, scores))

    return [
        case("one episode, two modalities", 1, 2, torch.tensor([[2.0, -1.0]])),
        case("one episode that trusts only the audio", 1, 2, torch.tensor([[-20.0, 20.0]])),
        case("a meta-batch of 4 episodes", 4, 2),
        case("3 episodes, 3 modalities", 3, 3),
    ]


register("prototypical_logits", _reference_prototypical_logits, _prototype_cases)
register("maml_inner_step", _reference_adapted_scores, _maml_cases)
register("episode_fusion", _reference_fuse, _fuse_cases, explanation=(
    "The bug: torch.softmax(scores, dim=0) normalises each modality's scores over the episodes of the "
    "meta-batch, not each episode's scores over its modalities. The weights of one episode then depended on "
    "which other episodes shared its batch, and with a single episode (as at meta-test time) every weight was "
    "exactly 1, whatever the network said: case 1 gives it away. The shapes are right either way, which is "
    "why the bug survives; the weights belong to the modality dimension, dim=-1 (dim=1 for (T, M) scores)."))
