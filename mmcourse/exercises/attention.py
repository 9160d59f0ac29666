"""Exercises of lesson 03: scaled dot-product attention, a mask applied after the softmax (find the bug),
splitting and merging heads, grounding accuracy."""

from __future__ import annotations

import torch

from . import Case, register


def _reference_attention(q, k, v):
    from ..attention import scaled_dot_product_attention

    return scaled_dot_product_attention(q, k, v)


def _attention_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)
    one_q, keys = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    values = torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    return [
        Case("one query, three keys (section 1's kind of example)", (one_q, keys, values)),
        Case("4 queries, 6 keys, d_k=8, d_v=3: the softmax runs over the keys (the last dimension)",
             (torch.randn(4, 8, generator=g), torch.randn(6, 8, generator=g), torch.randn(6, 3, generator=g))),
        Case("d_k=64 with large scores: divide by sqrt(d_k) before the softmax",
             (torch.randn(2, 3, 64, generator=g), torch.randn(2, 5, 64, generator=g),
              torch.randn(2, 5, 4, generator=g))),
        Case("4 dimensions (batch, heads, T, d)",
             (torch.randn(2, 3, 5, 4, generator=g), torch.randn(2, 3, 7, 4, generator=g),
              torch.randn(2, 3, 7, 4, generator=g))),
    ]


def _reference_masked_attention(q, k, v, mask):
    from ..attention import scaled_dot_product_attention

    return scaled_dot_product_attention(q, k, v, mask)


def _masked_cases() -> list[Case]:
    g = torch.Generator().manual_seed(7)
    one_q, keys = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    values = torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    mask = torch.rand(2, 4, 6, generator=g) < 0.6
    mask[..., 0] = True
    padding = torch.ones(2, 1, 1, 7, dtype=torch.bool)
    padding[1, ..., 4:] = False  # item 1 has 4 real keys and 3 padding keys
    nothing = torch.ones(3, 5, dtype=torch.bool)
    nothing[1] = False
    return [
        Case("one query, key 2 masked out: the weights of keys 0 and 1 must sum to one",
             (one_q, keys, values, torch.tensor([[True, True, False]]))),
        Case("a batch of 2, 4 queries, 6 keys, random mask: every row of weights sums to one over its allowed keys",
             (torch.randn(2, 4, 8, generator=g), torch.randn(2, 6, 8, generator=g), torch.randn(2, 6, 3, generator=g),
              mask)),
        Case("(batch, heads, T, d) with a padding mask (2, 1, 1, 7) that broadcasts over heads and queries",
             (torch.randn(2, 3, 5, 4, generator=g), torch.randn(2, 3, 7, 4, generator=g),
              torch.randn(2, 3, 7, 4, generator=g), padding)),
        Case("query 1 may attend to nothing: its weights and output must be zeros, not NaN",
             (torch.randn(3, 4, generator=g), torch.randn(5, 4, generator=g), torch.randn(5, 2, generator=g), nothing)),
    ]


MASK_AFTER_SOFTMAX = (
    "The bug: the mask was applied after the softmax. The softmax had already shared the weight among all "
    "keys, masked ones included, so zeroing the masked weights afterwards left the allowed ones summing to "
    "less than one (0.60 instead of 1 in case 1): every output shrank towards zero, by an amount that depends "
    "on how much weight the hidden keys took. The shapes are right and nothing crashes, which is why the bug "
    "survives. Mask the scores before the softmax; fill them with the most negative finite number, not "
    "-inf, and multiply by the mask, so that a query with no allowed key gets zeros instead of NaN (case 4).")


def _reference_split_heads(x, num_heads):
    from ..attention import split_heads

    return split_heads(x, num_heads)


def _split_cases() -> list[Case]:
    g = torch.Generator().manual_seed(4)
    return [
        Case("B=1, T=2, d=4 into 2 heads", (torch.arange(8.0).reshape(1, 2, 4), 2)),
        Case("B=3, T=5, d=12 into 3 heads", (torch.randn(3, 5, 12, generator=g), 3)),
        Case("one head keeps everything", (torch.randn(2, 4, 6, generator=g), 1)),
        Case("as many heads as features", (torch.randn(2, 3, 4, generator=g), 4)),
    ]


def _reference_merge_heads(x):
    from ..attention import merge_heads

    return merge_heads(x)


def _merge_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)
    return [
        Case("B=1, 2 heads, T=2, d/H=2", (torch.arange(8.0).reshape(1, 2, 2, 2),)),
        Case("B=3, 3 heads, T=5, d/H=4", (torch.randn(3, 3, 5, 4, generator=g),)),
        Case("one head", (torch.randn(2, 1, 4, 6, generator=g),)),
    ]


def _reference_grounding(weights, masks, token_to_object):
    from ..metrics import grounding_accuracy

    return tuple(grounding_accuracy(weights, masks, token_to_object))


def _grounding_cases() -> list[Case]:
    # Two 4x4 images cut into 2x2 patches of 2x2 pixels (P = 4, numbered row by row).
    masks = torch.zeros(2, 2, 4, 4, dtype=torch.bool)
    masks[0, 0, 0:2, 0:2] = True  # image 0, object 0: exactly patch 0
    masks[0, 1, 2:4, 1:3] = True  # image 0, object 1: touches patches 2 and 3
    masks[1, 0, 1:3, 1:3] = True  # image 1, object 0: touches all four patches
    weights = torch.tensor([
        [[0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1], [0.0, 0.1, 0.2, 0.7]],
        [[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25], [0.9, 0.1, 0.0, 0.0]],
    ])
    refers = torch.tensor([[0, 1, 1], [-1, -1, 0]])
    g = torch.Generator().manual_seed(6)
    big_masks = torch.rand(5, 3, 8, 8, generator=g) < 0.2
    big_weights = torch.softmax(torch.randn(5, 6, 16, generator=g), dim=-1)
    big_refers = torch.randint(-1, 3, (5, 6), generator=g)
    big_refers[0, 0] = 1
    return [
        Case("2 images, 4 patches, 4 words that name an object", (weights, masks, refers)),
        Case("only the last word names an object", (weights, masks, torch.tensor([[-1, -1, 0], [-1, -1, -1]]))),
        Case("5 random images, 16 patches", (big_weights, big_masks, big_refers)),
    ]


register("scaled_dot_product_attention", _reference_attention, _attention_cases)
register("masked_attention", _reference_masked_attention, _masked_cases, explanation=MASK_AFTER_SOFTMAX)
register("split_heads", _reference_split_heads, _split_cases)
register("merge_heads", _reference_merge_heads, _merge_cases)
register("grounding_accuracy", _reference_grounding, _grounding_cases)
