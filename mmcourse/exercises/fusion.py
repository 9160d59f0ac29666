"""Exercises of lesson 01: concatenation fusion, the Tensor Fusion outer product, late fusion."""

from __future__ import annotations

import torch

from . import Case, register


def _reference_concat_fusion(hs: list[torch.Tensor], weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    from ..fusion import EarlyFusion

    fusion = EarlyFusion([h.shape[1] for h in hs], weight.shape[0]).to(weight.dtype)
    with torch.no_grad():
        fusion.linear.weight.copy_(weight)
        fusion.linear.bias.copy_(bias)
        return fusion(hs).z


def _concat_cases() -> list[Case]:
    g = torch.Generator().manual_seed(1)

    def case(description: str, batch: int, dims: list[int], out: int) -> Case:
        hs = [torch.randn(batch, d, generator=g) for d in dims]
        return Case(description, (hs, torch.randn(out, sum(dims), generator=g), torch.randn(out, generator=g)))

    return [case("two modalities, 4 samples", 4, [3, 2], 5), case("different sizes", 6, [8, 1], 3),
            case("three modalities", 5, [2, 3, 4], 2), case("one sample", 1, [4, 4], 4)]


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


register("concat_fusion", _reference_concat_fusion, _concat_cases)
register("tensor_fusion", _reference_tensor_fusion, _tensor_cases)
register("late_fusion", _reference_late_fusion, _late_cases)
