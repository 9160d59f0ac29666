"""Exercises of lesson 01: a modality-attention bug (find the bug); the build, low-rank fusion as a module
(``MyLowRankFusion``'s forward) and one training step of an AV-Digits classifier; and the experiment, a setting of
modality dropout that lets low-rank fusion survive a missing modality."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from ..experiments import fusion as experiments
from ..fusion import Fused, LowRankFusion
from . import Case, register, register_experiment


def buggy_modality_attention(u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Modality attention as written in some tutorial code, with its bug: the softmax runs over the batch.

    Shape: ``u`` (B, M, d) the projected embeddings, ``v`` (d,) a scoring vector -> (z (B, d), alpha (B, M)).
    """
    scores = u @ v  # (B, M): one score per sample and modality
    alpha = torch.softmax(scores, dim=0)
    return (alpha.unsqueeze(-1) * u).sum(1), alpha


def _reference_modality_attention(u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    alpha = torch.softmax(u @ v, dim=1)  # over the M modalities of each sample
    return (alpha.unsqueeze(-1) * u).sum(1), alpha


def _attention_cases() -> list[Case]:
    g = torch.Generator().manual_seed(4)
    return [
        Case("one sample, 2 modalities: its weights must sum to 1 over the modalities",
             (torch.randn(1, 2, 3, generator=g), torch.randn(3, generator=g))),
        Case("3 samples, 2 modalities: each sample's weights sum to 1, whatever the other samples are",
             (torch.randn(3, 2, 4, generator=g), torch.randn(4, generator=g))),
        Case("2 samples, 2 modalities (B = M): the shapes are right either way, only the values tell",
             (torch.randn(2, 2, 3, generator=g) * 2, torch.randn(3, generator=g))),
    ]


register("modality_attention_bug", _reference_modality_attention, _attention_cases,
         explanation="The bug: the softmax ran over the batch (dim=0), not over each sample's modalities. Each "
                     "weight then compared this sample's score for a modality with the other samples' scores for "
                     "it: a softmax over the batch of one gives every weight 1 (case 1), and in a larger batch a "
                     "sample's weights, and so its prediction, change with its neighbours. Normalise over the "
                     "modalities: dim=1 (or -1).")


# --- The build: low-rank fusion as a module, and one training step ------------------------------------------------


def _fused_and_gradients(fusion: nn.Module, hs: list[torch.Tensor], direction: torch.Tensor) -> dict:
    """What the build's module is judged on: z, and the gradient of sum(z * direction) for each parameter (a
    parameter that gets none is not trained). ``fusion`` returns a :class:`~mmcourse.fusion.Fused`."""
    out = fusion(hs)
    if not isinstance(out, Fused):
        raise TypeError(f"forward should return Fused(z, None), the pair every fusion module returns; got "
                        f"{type(out).__name__}")
    if out.weights is not None:
        raise TypeError("forward should return Fused(z, None): low-rank fusion has no modality weights")
    (out.z * direction).sum().backward()
    for name, p in fusion.named_parameters():
        if p.grad is None:
            raise ValueError(f"the parameter {name} gets no gradient from z, so it would never be trained: use it, "
                             "and not through .detach() or .data")
    return {"z": out.z.detach(), **{f"gradient of {name}": p.grad for name, p in fusion.named_parameters()}}


def _reference_low_rank_module(state: dict, dims: list[int], out_dim: int, rank: int, hs: list[torch.Tensor],
                               direction: torch.Tensor) -> dict:
    fusion = LowRankFusion(dims, out_dim, rank=rank)
    fusion.load_state_dict(state)
    return _fused_and_gradients(fusion, hs, direction)


def _drive_low_rank_module(cls: type, state: dict, dims: list[int], out_dim: int, rank: int, hs: list[torch.Tensor],
                           direction: torch.Tensor) -> dict:
    fusion = cls(dims, out_dim, rank=rank)
    fusion.load_state_dict(state)  # the reference's weights: the learner's __init__ has the same names and shapes
    return _fused_and_gradients(fusion, hs, direction)


def _low_rank_module_cases() -> list[Case]:
    g = torch.Generator().manual_seed(1)

    def case(description: str, batch: int, dims: list[int], out_dim: int, rank: int) -> Case:
        state = {f"factors.{m}": torch.randn(rank, d + 1, out_dim, generator=g) for m, d in enumerate(dims)}
        # random rank weights and bias (not LowRankFusion's 1/r and 0), so that forgetting either shows
        state |= {"rank_weights": torch.randn(rank, generator=g), "bias": torch.randn(out_dim, generator=g)}
        hs = [torch.randn(batch, d, generator=g) for d in dims]
        return Case(description, (state, dims, out_dim, rank, hs, torch.randn(batch, out_dim, generator=g)))

    return [case("two modalities of sizes 3 and 2, 4 samples, rank 3", 4, [3, 2], 5, 3),
            case("rank 1: one product of two projections", 6, [4, 4], 3, 1),
            case("one sample", 1, [2, 5], 4, 2),
            case("three modalities: the product runs over every modality", 5, [2, 3, 4], 2, 3)]


def _step_outcome(model: nn.Module, loss) -> dict:
    """What a training step is judged on: the loss it returns and every parameter after it."""
    return {"loss": loss, **{f"{name} after the step": p.detach() for name, p in model.named_parameters()}}


def _with_old_gradients(model: nn.Module, old: dict | None) -> None:
    """Give ``model``'s parameters the gradients ``old`` (left from an earlier batch), or none."""
    for name, p in model.named_parameters():
        p.grad = None if old is None else old[name].clone()


def _reference_fusion_step(model: nn.Module, batch: dict, optimizer, old: dict | None) -> dict:
    model, optimizer = copy.deepcopy((model, optimizer))  # the case's start is left as it was
    _with_old_gradients(model, old)
    return _step_outcome(model, experiments.train_step(model, batch, optimizer))


def _drive_fusion_step(step: Callable, model: nn.Module, batch: dict, optimizer, old: dict | None) -> dict:
    _with_old_gradients(model, old)  # the check's copy of the case's start (its deep copy drops gradients)
    return _step_outcome(model, step(model, batch, optimizer))


def _fusion_step_cases() -> list[Case]:
    from ..train import SGD, Adam

    g = torch.Generator().manual_seed(5)

    def case(description: str, batch_size: int, optimizer: type, old: bool, **settings) -> Case:
        with torch.random.fork_rng(devices=[]):  # the learner's random numbers stay as they were
            torch.manual_seed(batch_size)
            model = experiments.build_av_model("low-rank", dim=8, rank=2)
        batch = {"image": torch.randn(batch_size, 1, 8, 8, generator=g),
                 "audio": torch.randn(batch_size, 1, 32, 40, generator=g),
                 "label": torch.randint(0, 10, (batch_size,), generator=g)}
        gradients = {name: torch.randn(p.shape, generator=g) for name, p in model.named_parameters()} if old else None
        return Case(description, (model, batch, optimizer(model.parameters(), **settings), gradients))

    return [case("SGD, 8 samples", 8, SGD, False, lr=0.1),
            case("SGD, 8 samples, gradients left from an earlier batch", 8, SGD, True, lr=0.1),
            case("Adam, one sample, gradients left from an earlier batch", 1, Adam, True, lr=0.01)]


register("low_rank_fusion", _reference_low_rank_module, _low_rank_module_cases, drive=_drive_low_rank_module,
         atol=1e-4, rtol=1e-4, forbid=("mmcourse.fusion.LowRankFusion.forward",))
register("fusion_step", _reference_fusion_step, _fusion_step_cases, drive=_drive_fusion_step, atol=1e-5, rtol=1e-4)


# --- The experiment: modality dropout that survives a missing modality ---------------------------------------------


def _run_dropout(attempt: Callable, seed: int) -> dict[str, float]:
    return experiments.dropout_setting_run(attempt(), seed)


register_experiment(
    "modality_dropout", _run_dropout,
    {"worse missing": experiments.DROPOUT_SURVIVES_MISSING, "gain of both": experiments.DROPOUT_STILL_FUSES},
    question="the accuracy with the audio missing", predicted="audio missing",
    reference=lambda: dict(experiments.DROPOUT_SETTING))
