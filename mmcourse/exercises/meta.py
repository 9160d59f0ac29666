"""Exercises of lesson 06: the build (a Prototypical Network's forward and its training step on one episode), an
experiment (the shot count at which a fine-tuned baseline pulls ahead of the ProtoNet), one MAML inner step with
``torch.func.grad``, and a meta-gradient that is first-order by accident (find the bug: ``torch.autograd.grad``
without ``create_graph=True``)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..experiments import meta as experiments
from . import Case, register, register_experiment


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


# --- The build: a Prototypical Network (its forward) and one training step on an episode ------------------------


def _reference_protonet(encoder: nn.Module, state: dict, support: torch.Tensor, support_labels: torch.Tensor,
                        query: torch.Tensor, n_way: int) -> tuple:
    from ..meta import ProtoNet

    net = ProtoNet(copy.deepcopy(encoder))
    net.load_state_dict(state)
    with torch.no_grad():
        return tuple(net(support, support_labels, query, n_way))


def _drive_protonet(cls: type, encoder: nn.Module, state: dict, support: torch.Tensor, support_labels: torch.Tensor,
                    query: torch.Tensor, n_way: int):
    net = cls(encoder)
    net.load_state_dict(state)  # the reference's weights: the learner's __init__ keeps the encoder as self.encoder
    with torch.no_grad():
        out = net(support, support_labels, query, n_way)
    if not (hasattr(out, "scores") and hasattr(out, "prototypes")):  # the package's training step reads .scores
        raise TypeError(f"forward should return FewShot(scores, prototypes), as the package's ProtoNet does; got "
                        f"{type(out).__name__}")
    with torch.no_grad():  # the expanded form (section 3) gives the same loss but other scores: say why it is rejected
        hq = net.encoder(query).flatten(1)
        full = -torch.cdist(hq, out.prototypes.flatten(1)) ** 2
        dropped = (hq ** 2).sum(-1, keepdim=True)  # what the expanded form leaves out of each query's scores
    if out.scores.shape == full.shape and dropped.abs().max() > 1e-3 and \
            torch.allclose(out.scores - full, dropped.expand_as(full), atol=1e-3, rtol=1e-3):
        raise ValueError("your scores differ from -||f(x) - c_n||^2 by the same amount for every class of a query: "
                         "the expanded form 2 f(x)·c_n - ||c_n||^2 drops -||f(x)||^2. It gives the same "
                         "probabilities, but return the full -||f(x) - c_n||^2")
    return out.scores, out.prototypes


def _protonet_cases() -> list[Case]:
    g = torch.Generator().manual_seed(6)

    def case(description: str, encoder: nn.Module, n_way: int, k_shot: int, queries: int, shape: tuple,
             shuffle: bool = False) -> Case:
        labels = torch.arange(n_way).repeat_interleave(k_shot)
        if shuffle:  # support rows in any order, not class by class
            labels = labels[torch.randperm(len(labels), generator=g)]
        state = {k: torch.randn(v.shape, generator=g) / max(v.shape[-1], 1) ** 0.5
                 for k, v in {f"encoder.{k}": v for k, v in encoder.state_dict().items()}.items()}
        return Case(description, (encoder, state, torch.randn(len(labels), *shape, generator=g), labels,
                                  torch.randn(queries, *shape, generator=g), n_way))

    with torch.random.fork_rng(devices=[]):  # the encoders get the cases' weights: the learner's random numbers stay
        torch.manual_seed(6)
        return [
            Case("2-way 1-shot in 1-D, the identity as encoder",
                 (nn.Identity(), {}, torch.tensor([[0.0], [4.0]]), torch.tensor([0, 1]), torch.tensor([[1.0], [3.0]]),
                  2)),
            case("3-way 2-shot, support rows in shuffled order, a linear encoder from 5 to 3 numbers", nn.Linear(5, 3),
                 3, 2, 4, (5,), shuffle=True),
            case("4-way 3-shot, one query, 4 x 4 images through a flattening encoder to 6 numbers",
                 nn.Sequential(nn.Flatten(), nn.Linear(16, 6)), 4, 3, 1, (1, 4, 4), shuffle=True),
            case("the lesson's sizes: 6-way 5-shot, 60 queries, a two-layer encoder",
                 nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 8)), 6, 5, 60, (10,)),
        ]


def _step_outcome(model: nn.Module, losses: list) -> dict:
    """What a training step is judged on: the losses it returned and every parameter after the last step."""
    return {"loss": losses, **{f"{name} after the step": p.detach() for name, p in model.named_parameters()}}


def _with_old_gradients(model: nn.Module, old: dict | None) -> None:
    """Give ``model``'s parameters the gradients ``old`` (left from an earlier episode), or none."""
    for name, p in model.named_parameters():
        p.grad = None if old is None else old[name].clone()


def _reference_protonet_step(model: nn.Module, optimizer, episodes: list, old: dict | None) -> dict:
    from ..meta import protonet_step

    model, optimizer = copy.deepcopy((model, optimizer))  # the case's start is left as it was
    _with_old_gradients(model, old)
    return _step_outcome(model, [float(protonet_step(model, episode, optimizer)) for episode in episodes])


def _drive_protonet_step(step: Callable, model: nn.Module, optimizer, episodes: list, old: dict | None) -> dict:
    _with_old_gradients(model, old)  # the check's copy of the case's start (a deep copy drops gradients)
    losses = []
    for episode in episodes:
        loss = step(model, episode, optimizer)
        if not isinstance(loss, float):  # a tensor would keep the whole autograd graph alive in the lesson's list
            raise TypeError(f"protonet_step should return the loss as a Python float (return loss.item()), got "
                            f"{type(loss).__name__}")
        losses.append(loss)
    return _step_outcome(model, losses)


def _protonet_step_cases() -> list[Case]:
    from ..meta import EpisodeSampler, ProtoNet
    from ..train import SGD, Adam

    g = torch.Generator().manual_seed(9)
    pool = {"x": torch.randn(60, 4, generator=g)}
    labels = torch.arange(60) % 6

    def episodes(*sizes: tuple[int, int, int]) -> list:
        return [EpisodeSampler(pool, labels, range(6), n, k, q, seed=9).sample(i) for i, (n, k, q) in enumerate(sizes)]

    def case(description: str, optimizer: type, sizes: list, old: bool, **settings) -> Case:
        with torch.random.fork_rng(devices=[]):  # the learner's random numbers stay as they were
            torch.manual_seed(len(sizes) + sizes[0][0])
            model = ProtoNet(nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)))
        gradients = {name: torch.randn(p.shape, generator=g) for name, p in model.named_parameters()} if old else None
        return Case(description, (model, optimizer(model.parameters(), **settings), episodes(*sizes), gradients))

    return [case("SGD (lr 0.5), one 3-way 2-shot episode with 4 queries a class: the loss is the mean over the "
                 "queries", SGD, [(3, 2, 4)], False, lr=0.5),
            case("SGD, gradients left from an earlier episode: clear them before backward", SGD, [(2, 3, 2)], True,
                 lr=0.5),
            case("Adam, two steps: a 4-way 1-shot episode, then a 5-way 2-shot one", Adam, [(4, 1, 3), (5, 2, 2)],
                 False, lr=0.01)]


# The learner writes the prototypes and the distances: the package's functions that do either are off limits (the
# reference's own ProtoNet.__init__ and protonet_step are found by running it).
_PROTOTYPES = ("mmcourse.meta.ProtoNet.forward", "mmcourse.meta.prototypes", "mmcourse.meta.prototypical_logits",
               "mmcourse.meta._embed", "mmcourse.meta.modality_logits")
register("protonet", _reference_protonet, _protonet_cases, drive=_drive_protonet, atol=1e-4, rtol=1e-4,
         forbid=_PROTOTYPES)
register("protonet_step", _reference_protonet_step, _protonet_step_cases, drive=_drive_protonet_step, atol=1e-5,
         rtol=1e-4, forbid=("mmcourse.meta.protonet_loss", "mmcourse.experiments.meta.train_protonet",
                            "mmcourse.train.fit"))


# --- The experiment: the shot count at which fine-tuning pulls ahead ----------------------------------------------


def _reference_shots() -> int:
    return experiments.FINE_TUNING_SHOTS


register_experiment("fine_tuning_shots", experiments.fine_tuning_shots,
                    {experiments.FINE_TUNED_GAIN: experiments.FINE_TUNED_BASELINE_PULLS_AHEAD,
                     experiments.ONE_SHOT_GAIN: experiments.FITTED_HEAD_TRAILS_AT_ONE_SHOT},
                    question="the fitted head's accuracy minus the class mean's at the shot count you choose "
                             "(a number from -1 to 1)",
                    predicted=experiments.FINE_TUNED_GAIN, reference=_reference_shots)
