"""Exercises of lesson 01: late fusion, a modality-attention bug, the Tensor Fusion outer product, and
low-rank fusion's forward pass with ``einsum``."""

from __future__ import annotations

import torch

from . import Case, register


def _reference_low_rank_fusion(hs: list[torch.Tensor], factors: list[torch.Tensor], rank_weights: torch.Tensor,
                               bias: torch.Tensor) -> torch.Tensor:
    from ..fusion import LowRankFusion

    fusion = LowRankFusion([h.shape[1] for h in hs], bias.shape[0], rank=rank_weights.shape[0]).to(bias.dtype)
    with torch.no_grad():
        for mine, given in zip(fusion.factors, factors):
            mine.copy_(given)
        fusion.rank_weights.copy_(rank_weights)
        fusion.bias.copy_(bias)
        return fusion(hs).z


def _low_rank_cases() -> list[Case]:
    g = torch.Generator().manual_seed(1)

    def case(description: str, batch: int, dims: list[int], out: int, rank: int) -> Case:
        hs = [torch.randn(batch, d, generator=g) for d in dims]
        factors = [torch.randn(rank, d + 1, out, generator=g) for d in dims]
        return Case(description, (hs, factors, torch.randn(rank, generator=g), torch.randn(out, generator=g)))

    return [case("two modalities, 4 samples, rank 3", 4, [3, 2], 5, 3),
            case("rank 1: one product of two projections", 6, [4, 4], 3, 1),
            case("one sample", 1, [2, 5], 4, 2),
            case("three modalities: the product runs over every modality", 5, [2, 3, 4], 2, 3)]


def _reference_tensor_fusion(h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
    from ..fusion import tensor_product

    return tensor_product([h1, h2])


def _tensor_cases() -> list[Case]:
    g = torch.Generator().manual_seed(2)
    return [
        Case("2 samples, d1=2, d2=3", (torch.tensor([[1.0, 2.0], [0.5, -1.0]]), torch.tensor([[3.0, 0.0, -2.0],
                                                                                            [1.0, 1.0, 1.0]]))),
        Case("8 samples, d1=4, d2=4", (torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g))),
        Case("d1=1, d2=5", (torch.randn(3, 1, generator=g), torch.randn(3, 5, generator=g))),
        Case("a zero modality keeps the other", (torch.randn(2, 3, generator=g), torch.zeros(2, 2))),
    ]


def _reference_late_fusion(logits: list[torch.Tensor]) -> torch.Tensor:
    from ..fusion import average_log_probs

    return average_log_probs(logits)


def _late_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)
    return [
        Case("two modalities, 3 classes", ([torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[0.0, 1.0, 0.0]])],)),
        Case("logits that differ by a constant give the same answer",
             ([torch.tensor([[1.0, 2.0]]), torch.tensor([[101.0, 102.0]])],)),
        Case("three modalities, 10 classes", ([torch.randn(6, 10, generator=g) * 3 for _ in range(3)],)),
        Case("one modality", ([torch.randn(4, 5, generator=g)],)),
    ]


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


register("low_rank_fusion", _reference_low_rank_fusion, _low_rank_cases)
register("tensor_fusion", _reference_tensor_fusion, _tensor_cases)
register("late_fusion", _reference_late_fusion, _late_cases)
register("modality_attention_bug", _reference_modality_attention, _attention_cases,
         explanation="The bug: the softmax ran over the batch (dim=0), not over each sample's modalities. Each "
                     "weight then compared this sample's score for a modality with the other samples' scores for "
                     "it: a softmax over the batch of one gives every weight 1 (case 1), and in a larger batch a "
                     "sample's weights, and so its prediction, change with its neighbours. Normalise over the "
                     "modalities: dim=1 (or -1).")
