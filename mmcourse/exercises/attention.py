"""Exercises of lesson 03: a mask applied after the softmax (find the bug); the build, a words-over-patches
attention layer (``MyCrossAttention``'s forward: projections, heads, scaled scores, softmax over the patches, output
projection) and one training step of the question-answering model; the experiment, a shuffled-pairs control; and
grounding accuracy."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from ..experiments import attention as experiments
from . import Case, register, register_experiment


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


register("masked_attention", _reference_masked_attention, _masked_cases, explanation=MASK_AFTER_SOFTMAX)
register("grounding_accuracy", _reference_grounding, _grounding_cases)


# --- The build: words over patches as a layer, and one training step -------------------------------------------


def _reference_cross_attention(num_heads: int, state: dict, query: torch.Tensor, key: torch.Tensor,
                               value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    from ..attention import MultiHeadAttention

    with torch.random.fork_rng(devices=[]):  # the initial weights are replaced: the learner's random numbers stay
        layer = MultiHeadAttention(query.shape[-1], num_heads, kdim=key.shape[-1], vdim=value.shape[-1])
    layer.load_state_dict(state)
    with torch.no_grad():
        return tuple(layer(query, key, value))


def _drive_cross_attention(cls: type, num_heads: int, state: dict, query: torch.Tensor, key: torch.Tensor,
                           value: torch.Tensor):
    with torch.random.fork_rng(devices=[]):
        layer = cls(query.shape[-1], num_heads, kdim=key.shape[-1], vdim=value.shape[-1])
    layer.load_state_dict(state)  # the reference's weights: the learner's __init__ has the same names and shapes
    with torch.no_grad():
        out = layer(query, key, value)
    return tuple(out) if isinstance(out, list) else out


def _cross_attention_cases() -> list[Case]:
    g = torch.Generator().manual_seed(8)

    def linear(prefix: str, n_in: int, n_out: int) -> dict:
        return {f"{prefix}.weight": torch.randn(n_out, n_in, generator=g) / n_in**0.5,
                f"{prefix}.bias": torch.randn(n_out, generator=g) * 0.5}

    def case(description: str, batch: int, words: int, patches: int, dim: int, heads: int, kdim: int | None = None,
             vdim: int | None = None) -> Case:
        kdim, vdim = kdim or dim, vdim or dim
        state = (linear("q_proj", dim, dim) | linear("k_proj", kdim, dim) | linear("v_proj", vdim, dim)
                 | linear("out_proj", dim, dim))
        query = torch.randn(batch, words, dim, generator=g)
        return Case(description, (heads, state, query, torch.randn(batch, patches, kdim, generator=g),
                                  torch.randn(batch, patches, vdim, generator=g)))

    return [case("one word over three patches, d=4, one head, a batch of 1", 1, 1, 3, 4, 1),
            case("2 questions of 5 words over 7 patches, d=8, 2 heads: each head holds d/H = 4 features, and its "
                 "scores are divided by the square root of that", 2, 5, 7, 8, 2),
            case("patches of another size than the words (keys of 6 features, values of 10, d=16), 4 heads",
                 3, 4, 9, 16, 4, 6, 10),
            case("a Shapes question: 6 words over 64 patches, d=32, 2 heads, a batch of 3", 3, 6, 64, 32, 2)]


def _step_outcome(model: nn.Module, losses: list) -> dict:
    """What a training step is judged on: the losses it returned and every parameter after the last step."""
    return {"loss": losses, **{f"{name} after the step": p.detach() for name, p in model.named_parameters()}}


def _with_old_gradients(model: nn.Module, old: dict | None) -> None:
    """Give ``model``'s parameters the gradients ``old`` (left from an earlier batch), or none."""
    for name, p in model.named_parameters():
        p.grad = None if old is None else old[name].clone()


def _reference_vqa_step(model: nn.Module, optimizer, batches: list, old: dict | None) -> dict:
    model, optimizer = copy.deepcopy((model, optimizer))  # the case's start is left as it was
    _with_old_gradients(model, old)
    return _step_outcome(model, [float(experiments.vqa_step(model, batch, optimizer)) for batch in batches])


def _drive_vqa_step(step: Callable, model: nn.Module, optimizer, batches: list, old: dict | None) -> dict:
    _with_old_gradients(model, old)  # the check's copy of the case's start (its deep copy drops gradients)
    return _step_outcome(model, [step(model, batch, optimizer) for batch in batches])


def _vqa_step_cases() -> list[Case]:
    from ..attention import AttentionVQA
    from ..data.shapes import ANSWERS, VOCAB
    from ..train import SGD, Adam

    g = torch.Generator().manual_seed(9)

    def batch(size: int) -> dict:
        return {"image": torch.rand(size, 3, 32, 32, generator=g),
                "question_ids": torch.randint(2, len(VOCAB), (size, 6), generator=g),
                "answer_id": torch.randint(0, len(ANSWERS), (size,), generator=g)}

    def case(description: str, sizes: list[int], optimizer: type, old: bool, **settings) -> Case:
        with torch.random.fork_rng(devices=[]):  # the learner's random numbers stay as they were
            torch.manual_seed(len(sizes) + sizes[0])
            model = AttentionVQA(len(VOCAB), len(ANSWERS), dim=8, num_heads=2)
        gradients = {name: torch.randn(p.shape, generator=g) for name, p in model.named_parameters()} if old else None
        return Case(description, (model, optimizer(model.parameters(), **settings), [batch(n) for n in sizes],
                                  gradients))

    return [case("SGD (lr 0.5), 4 questions: the loss is the mean over the batch", [4], SGD, False, lr=0.5),
            case("SGD, one question, gradients left from an earlier batch: clear them before backward", [1], SGD,
                 True, lr=0.5),
            case("Adam, two steps on batches of 3 and 5", [3, 5], Adam, False, lr=0.01)]


# The learner writes the attention: the package's attention functions and PyTorch's multi-head attention are off
# limits (the reference's own MultiHeadAttention.__init__ is found by running it).
_ATTENTION = ("mmcourse.attention.MultiHeadAttention.forward", "mmcourse.attention.CrossModalAttention.forward",
              "mmcourse.attention.scaled_dot_product_attention", "mmcourse.attention._attend",
              "mmcourse.attention.split_heads", "mmcourse.attention.merge_heads", "mmcourse.attention._split_heads",
              "mmcourse.attention._merge_heads", "torch.nn.MultiheadAttention.forward",
              "torch.nn.functional.multi_head_attention_forward")
register("cross_attention", _reference_cross_attention, _cross_attention_cases, drive=_drive_cross_attention,
         atol=1e-5, rtol=1e-4, forbid=_ATTENTION)
register("vqa_step", _reference_vqa_step, _vqa_step_cases, drive=_drive_vqa_step, atol=1e-5, rtol=1e-4,
         forbid=("mmcourse.train.fit", "mmcourse.train.classification_step",
                 "mmcourse.experiments.attention.train_with_layer"))


# --- The experiment: a shuffled-pairs control -------------------------------------------------------------------


register_experiment(
    "shuffled_pairs", experiments.shuffled_pairs, {experiments.SHUFFLED_GAP: experiments.SHUFFLED_PAIRS_AT_MAJORITY},
    question="the accuracy when each question is paired with another scene's image (a number from 0 to 1)",
    predicted="accuracy on the shuffled pairs", reference=experiments.shuffle_images)
