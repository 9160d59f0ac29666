"""Exercises of lesson 07: the symmetric contrastive loss (its values and its gradients), a contrastive loss
whose captions were put back in the wrong order after they had been reordered (find the bug), and NDCG of
one query by hand."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from . import Case, register

EMBEDDINGS_AND_SCALE = ("image_emb", "text_emb", "logit_scale")


def _reference_clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    from ..contrastive import clip_loss

    return clip_loss(image_emb, text_emb, logit_scale)


def _clip_cases() -> list[Case]:
    g = torch.Generator().manual_seed(7)
    clip = torch.tensor(math.log(1 / 0.07))
    return [
        Case("3 pairs in 2 dimensions, unit vectors, scale 1",
             (torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]), torch.tensor([[0.8, 0.6], [0.0, 1.0], [1.0, 0.0]]),
              torch.tensor(0.0))),
        Case("8 pairs of random 16-dimensional embeddings, CLIP's starting scale",
             (torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g), clip)),
        Case("embeddings of very different lengths (normalise them first)",
             (torch.randn(5, 4, generator=g) * torch.tensor([[0.1], [10.0], [1.0], [3.0], [0.5]]),
              torch.randn(5, 4, generator=g) * 7, clip)),
        Case("image i close to text (i + 1) mod 4: not symmetric in the two directions",
             (torch.eye(4) + 0.1, torch.eye(4).roll(1, dims=0) + 0.3 * torch.eye(4), torch.tensor(2.0))),
    ]


def _reference_clip_gradients(image_emb: torch.Tensor, text_emb: torch.Tensor,
                              logit_scale: torch.Tensor) -> tuple[torch.Tensor, ...]:
    from ..contrastive import clip_loss

    inputs = [x.detach().clone().requires_grad_() for x in (image_emb, text_emb, logit_scale)]
    return torch.autograd.grad(clip_loss(*inputs), inputs)


def loss_gradients(loss: Callable) -> Callable:
    """The function ``(image_emb, text_emb, logit_scale) -> (d loss / d image_emb, d loss / d text_emb,
    d loss / d logit_scale)`` of a loss written like ``clip_loss``: what the check "clip_loss_gradients"
    compares with the package's. A loss that matches in value can still train nothing: one that reads
    the scale as a Python number (``math.exp(float(logit_scale))``) or detaches the embeddings gives no
    gradient to them, and this says which.

    Shape: ``image_emb``, ``text_emb`` (B, d), ``logit_scale`` () -> three tensors of those shapes.
    """
    def gradients(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor) -> tuple:
        inputs = [x.detach().clone().requires_grad_() for x in (image_emb, text_emb, logit_scale)]
        value = loss(*inputs)
        if not isinstance(value, torch.Tensor) or not value.requires_grad:
            raise ValueError("the loss has no gradient at all: compute it from the tensors you are given with torch "
                             "operations (no .item(), float() or .detach() on the way)")
        grads = torch.autograd.grad(value, inputs, allow_unused=True)
        missing = [name for name, grad in zip(EMBEDDINGS_AND_SCALE, grads) if grad is None]
        if missing:
            raise ValueError(f"the loss has no gradient with respect to {' and '.join(missing)}, so training "
                             "could never change it: keep it a tensor all the way (logit_scale.exp(), not "
                             "math.exp(float(...)); no .detach())")
        return grads

    return gradients


def check_loss_gradients(loss: Callable, must_pass: bool = False):
    """Check a loss written like ``clip_loss`` on its gradients: ``check("clip_loss_gradients",
    loss_gradients(loss))``. Lesson 07 calls it right after ``check("clip_loss", my_clip_loss)`` in the
    same cell; the instructor kit's autograder (which keeps only ``check("<exercise>", my_<name>)``
    calls) grades the values alone."""
    from . import check

    return check("clip_loss_gradients", loss_gradients(loss), must_pass=must_pass)


def _reference_ndcg(scores: torch.Tensor, relevance: torch.Tensor, k: int) -> float:
    from ..metrics import ndcg_at_k

    return ndcg_at_k(scores[None], relevance[None], k)


def _ndcg_cases() -> list[Case]:
    g = torch.Generator().manual_seed(8)
    return [
        Case("5 scenes, relevance [3, 0, 1, 2, 0], k = 5",
             (torch.tensor([0.9, 0.8, 0.7, 0.2, 0.1]), torch.tensor([3.0, 0.0, 1.0, 2.0, 0.0]), 5)),
        Case("the same ranking cut at k = 2", (torch.tensor([0.9, 0.8, 0.7, 0.2, 0.1]),
                                               torch.tensor([3.0, 0.0, 1.0, 2.0, 0.0]), 2)),
        Case("scores not sorted: rank by score first",
             (torch.tensor([0.1, 0.5, -0.3, 0.9, 0.2, 0.0]), torch.tensor([1.0, 0.0, 2.0, 0.0, 1.0, 3.0]), 4)),
        Case("30 scenes, random scores and relevance 0-3, k = 10",
             (torch.randn(30, generator=g), torch.randint(0, 4, (30,), generator=g).float(), 10)),
        Case("nothing relevant: NDCG is 0 by convention", (torch.tensor([0.3, 0.2, 0.1]), torch.zeros(3), 2)),
    ]


def _reference_reordered(image_emb: torch.Tensor, text_emb: torch.Tensor, order: torch.Tensor,
                         logit_scale: torch.Tensor) -> torch.Tensor:
    """``text_emb[j]`` is the caption of image ``order[j]``: put caption i back in row i, then CLIP's loss."""
    from ..contrastive import clip_loss

    return clip_loss(image_emb, text_emb[order.argsort()], logit_scale)


def _reordered_cases() -> list[Case]:
    g = torch.Generator().manual_seed(9)

    def case(description: str, order: list[int], dim: int = 6) -> Case:
        image = torch.randn(len(order), dim, generator=g)
        order_t = torch.tensor(order)
        text = image[order_t] + 0.3 * torch.randn(len(order), dim, generator=g)  # caption j describes image order[j]
        return Case(description, (image, text, order_t, torch.tensor(math.log(1 / 0.07))))

    return [case("captions still in image order", [0, 1, 2, 3]),
            case("two captions swapped", [1, 0, 2, 3]),
            case("three captions in a cycle", [1, 2, 0, 3]),
            case("captions sorted by length: 8 in a new order", [3, 7, 0, 5, 1, 6, 2, 4])]


# mmcourse.contrastive.similarity does the loss's first half (normalise both, then multiply): the exercises ask for it.
SIMILARITY = ("mmcourse.contrastive.similarity",)
register("clip_loss", _reference_clip_loss, _clip_cases, forbid=SIMILARITY)
register("clip_loss_gradients", _reference_clip_gradients, _clip_cases, forbid=SIMILARITY)
register("ndcg_one_query", _reference_ndcg, _ndcg_cases)
register("reordered_captions_loss", _reference_reordered, _reordered_cases, forbid=SIMILARITY, explanation=(
    "The bug: text_emb[order] applies the reordering a second time instead of undoing it. Row j of text_emb is "
    "the caption of image order[j], so the caption of image i sits in row order.argsort()[i]; text_emb[order] puts "
    "in row i the caption of image order[order[i]]. The two agree only where order is its own inverse (no "
    "reordering, or captions swapped in pairs), which is why cases 1 and 2 passed and a cycle of three (case 3) "
    "did not. In a batch sorted by length almost every pair would be mismatched: the loss still runs and returns a "
    "number, but it trains the model on wrong pairs. Undo a permutation with its inverse: text_emb[order.argsort()] "
    "(or targets order.argsort() for the rows and order for the columns)."))
