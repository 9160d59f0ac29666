"""Exercises of lesson 06: prototypes and their class log-probabilities, one MAML inner step with
``torch.func.grad``, and a meta-gradient that is first-order by accident (find the bug:
``torch.autograd.grad`` without ``create_graph=True``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import Case, register


def _reference_log_probabilities(support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor,
                                 n_way: int) -> torch.Tensor:
    """log p(y = n | x) of Prototypical Networks, (|Q|, N). The check compares log-probabilities, not logits:
    logits that differ by a constant per query (the expanded form 2 c_n^T f(x) - ||c_n||^2, which drops
    -||f(x)||^2) give the same probabilities and pass."""
    from ..meta import prototypes, prototypical_logits

    return torch.log_softmax(prototypical_logits(query, prototypes(support, support_labels, n_way)), dim=-1)


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
        case("3-way 2-shot, 4 queries, d = 5", 3, 2, 4, 5),
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
        # parameters that require gradients, as dict(model.named_parameters()) gives them: a step written
        # with torch.autograd.grad works as well as one written with torch.func.grad
        params = {k: v.detach().clone().requires_grad_() for k, v in model.named_parameters()}
        y = torch.arange(n_way).repeat_interleave(k_shot)
        return Case(description, (model, params, torch.randn(len(y), dim, generator=g), y,
                                  torch.randn(6, dim, generator=g), lr))

    return [
        case("a linear model, 2-way 1-shot", nn.Linear(3, 2), 2, 1, 3, 0.5),
        case("a linear model, 3-way 4-shot, small step", nn.Linear(4, 3), 3, 4, 4, 0.01),
        case("a two-layer perceptron, 4-way 2-shot", nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 4)),
             4, 2, 5, 0.3),
    ]


def _reference_meta_gradient(model: nn.Module, params: dict, support_x: torch.Tensor, support_y: torch.Tensor,
                             query_x: torch.Tensor, query_y: torch.Tensor, inner_lr: float) -> dict:
    from torch.func import grad

    from ..meta import maml_loss

    detached = {k: v.detach() for k, v in params.items()}
    return grad(lambda p: maml_loss(model, p, (support_x, support_y), (query_x, query_y), F.cross_entropy,
                                    inner_lr))(detached)


def _meta_gradient_cases() -> list[Case]:
    g = torch.Generator().manual_seed(8)
    torch.manual_seed(8)  # the models' initial weights

    def case(description: str, model: nn.Module, n_way: int, k_shot: int, dim: int, lr: float) -> Case:
        params = {k: v.detach().clone().requires_grad_() for k, v in model.named_parameters()}
        y = torch.arange(n_way).repeat_interleave(k_shot)
        return Case(description, (model, params, torch.randn(len(y), dim, generator=g), y,
                                  2 * torch.randn(len(y), dim, generator=g), y, lr))

    return [
        case("no inner step (inner_lr = 0)", nn.Linear(3, 2), 2, 2, 3, 0.0),
        case("a linear model, 2-way 2-shot, inner_lr = 1", nn.Linear(3, 2), 2, 2, 3, 1.0),
        case("a two-layer perceptron, 3-way 2-shot, inner_lr = 0.5",
             nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)), 3, 2, 4, 0.5),
    ]


register("prototype_log_probabilities", _reference_log_probabilities, _prototype_cases)
register("maml_inner_step", _reference_adapted_scores, _maml_cases)
# The inner step with its graph kept (adapt) or the whole meta-loss would do the exercise's job.
register("meta_gradient", _reference_meta_gradient, _meta_gradient_cases, forbid=(
    "mmcourse.meta.adapt", "mmcourse.meta.maml_meta_loss", "mmcourse.meta.maml_meta_loss_loop",
    "mmcourse.meta.maml_predict"), explanation=(
    "The bug: torch.autograd.grad without create_graph=True returns the support gradient g as plain numbers, "
    "cut from the graph. The adapted parameters theta - eta_in g then change with theta as if g were a "
    "constant, so the meta-gradient loses the -eta_in Hessian term: this is first-order MAML, by accident. "
    "With inner_lr = 0 there is no inner step and the two agree (case 1); with a real step they differ. "
    "Nothing else warns you: the shapes are right and the meta-loss still falls. Fix: create_graph=True, or "
    "torch.func.grad, whose result stays differentiable."))
