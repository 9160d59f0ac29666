"""Exercises of lesson 07: the build (a dual encoder's forward and CLIP's training step with its learned temperature,
checked against the package's), a contrastive loss whose captions were put back in the wrong order after they
had been reordered (find the bug), NDCG of one query by hand, and the experiment of choosing a fixed temperature."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..experiments import contrastive as experiments
from . import Case, register, register_experiment

# --- The build: a dual encoder's forward, and one training step of CLIP ------------------------------------------

OUTPUTS = ("image embeddings", "text embeddings", "logit_scale s")


def _named_outputs(out) -> dict:
    """A dual encoder's forward, (image (B, dim), text (B, dim), s ()), as a dict by name, so that a mismatch names
    what differs."""
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        got = f"a {type(out).__name__} of {len(out)} items" if isinstance(out, (tuple, list)) else type(out).__name__
        raise ValueError(f"forward should return three things, the image embeddings (B, dim), the text embeddings "
                         f"(B, dim) and s (the parameter logit_scale), got {got}")
    return dict(zip(OUTPUTS, out))


def _reference_dual_encoder(image_encoder: nn.Module, text_encoder: nn.Module, dim: int, temperature: float,
                            state: dict, image: torch.Tensor, text: torch.Tensor) -> dict:
    from ..contrastive import DualEncoder

    with torch.random.fork_rng(devices=[]):  # the initial weights are replaced: the learner's random numbers stay
        model = DualEncoder(image_encoder, text_encoder, dim, temperature)
    model.load_state_dict(state)
    with torch.no_grad():
        return _named_outputs(tuple(model(image, text)))


def _drive_dual_encoder(cls: type, image_encoder: nn.Module, text_encoder: nn.Module, dim: int, temperature: float,
                        state: dict, image: torch.Tensor, text: torch.Tensor) -> dict:
    with torch.random.fork_rng(devices=[]):
        model = cls(image_encoder, text_encoder, dim, temperature)
    model.load_state_dict(state)  # the reference's weights: the learner's __init__ has the same names and shapes
    with torch.no_grad():
        return _named_outputs(model(image, text))


def _dual_encoder_cases() -> list[Case]:
    from ..contrastive import ConvTextEncoder, DualEncoder, PatchSetEncoder
    from ..data.shapes import VOCAB

    g = torch.Generator().manual_seed(7)

    def case(description: str, batch: int, image_dim: int, text_dim: int, dim: int, s: float) -> Case:
        with torch.random.fork_rng(devices=[]):  # the learner's random numbers stay as they were
            torch.manual_seed(batch + dim)
            image_encoder = PatchSetEncoder(image_dim, patch_dim=8, hidden=16)
            text_encoder = ConvTextEncoder(len(VOCAB), text_dim, embed_dim=8, hidden=16)
            state = DualEncoder(image_encoder, text_encoder, dim).state_dict()
        state["logit_scale"] = torch.tensor(s)
        return Case(description, (image_encoder, text_encoder, dim, 0.07, state,
                                  torch.rand(batch, 3, 32, 32, generator=g),
                                  torch.randint(1, len(VOCAB), (batch, 26), generator=g)))

    return [case("4 scenes and captions, both encoders of width 16, into 8 dimensions, s = 2.7", 4, 16, 16, 8, 2.7),
            case("one pair (B = 1): each embedding is normalised on its own", 1, 16, 16, 8, 2.7),
            case("encoders of different widths (24 for the scenes, 40 for the captions) into 6 dimensions, s = 0.5",
                 5, 24, 40, 6, 0.5)]


def _step_outcome(model: nn.Module, losses: list) -> dict:
    """What a training step is judged on: the losses it returned and every parameter after the last step."""
    return {"loss": losses, **{f"{name} after the step": p.detach() for name, p in model.named_parameters()}}


def _with_old_gradients(model: nn.Module, old: dict | None) -> None:
    """Give ``model``'s parameters the gradients ``old`` (left from an earlier batch), or none."""
    for name, p in model.named_parameters():
        p.grad = None if old is None else old[name].clone()


def _reference_clip_step(model: nn.Module, optimizer, batches: list, old: dict | None) -> dict:
    model, optimizer = copy.deepcopy((model, optimizer))  # the case's start is left as it was
    _with_old_gradients(model, old)
    return _step_outcome(model, [float(experiments.clip_step(model, batch, optimizer).detach()) for batch in batches])


def _drive_clip_step(step: Callable, model: nn.Module, optimizer, batches: list, old: dict | None) -> dict:
    _with_old_gradients(model, old)  # the check's copy of the case's start (its deep copy drops gradients)
    losses = []
    for batch in batches:
        loss = step(model, batch, optimizer)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError(f"the step should return the loss, a 0-d tensor, got {type(loss).__name__}")
        losses.append(loss)
    return _step_outcome(model, losses)


class _Flat(nn.Module):
    """A linear encoder of flattened inputs, for the cases whose pairs are built to match (or to clash) exactly."""

    def __init__(self, n_in: int, out_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, out_dim)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


def _clip_step_cases() -> list[Case]:
    from ..contrastive import LOGIT_SCALE_MAX, ConvTextEncoder, DualEncoder, PatchSetEncoder
    from ..data.shapes import VOCAB
    from ..train import Adam

    g = torch.Generator().manual_seed(9)
    lr = 0.01

    def scenes(size: int) -> dict:
        return {"image": torch.rand(size, 3, 32, 32, generator=g),
                "caption_ids": torch.randint(1, len(VOCAB), (size, 26), generator=g)}

    def shapes_model(seed: int) -> DualEncoder:
        with torch.random.fork_rng(devices=[]):  # the learner's random numbers stay as they were
            torch.manual_seed(seed)
            return DualEncoder(PatchSetEncoder(16, patch_dim=8, hidden=16),
                               ConvTextEncoder(len(VOCAB), 16, embed_dim=8, hidden=16), dim=8)

    def case(description: str, model: DualEncoder, batches: list[dict], old: bool = False) -> Case:
        gradients = {name: torch.randn(p.shape, generator=g) for name, p in model.named_parameters()} if old else None
        return Case(description, (model, Adam(model.parameters(), lr=lr), batches, gradients))

    def matched(description: str, sign: float, s: float) -> Case:
        """Caption i is scene i itself (``sign`` 1) or its opposite (-1), embedded by the same weights: every
        cosine on the diagonal is 1 (or -1), so the step raises s (or lowers it) by Adam's first step, lr. The
        scenes are alike (cosines near 1 off the diagonal too), so that the gradient of s is not vanishingly
        small even at exp(s) = 100."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(3)
            model = DualEncoder(_Flat(12, 6), _Flat(12, 6), dim=4)
        with torch.no_grad():
            model.image_encoder.linear.bias.zero_()
            model.text_encoder.load_state_dict(model.image_encoder.state_dict())
            model.text_projection.load_state_dict(model.image_projection.state_dict())
            model.logit_scale.fill_(s)
        image = torch.randn(1, 3, 2, 2, generator=g) + 0.15 * torch.randn(6, 3, 2, 2, generator=g)
        return case(description, model, [{"image": image, "caption_ids": sign * image.flatten(1)}])

    return [case("Adam (lr 0.01), 6 pairs of scenes and captions: the loss of both directions", shapes_model(0),
                 [scenes(6)]),
            case("4 pairs, gradients left from an earlier batch: clear them before backward", shapes_model(1),
                 [scenes(4)], old=True),
            case("two steps with one optimiser, on batches of 5 and 3", shapes_model(2), [scenes(5), scenes(3)]),
            matched("s just below log 100, each caption embedded exactly as its scene: the step raises s past "
                    "log 100, so clamp it back", 1.0, LOGIT_SCALE_MAX - lr / 2),
            matched("s just above 0, each caption embedded opposite its scene: the step lowers s below 0, so clamp "
                    "it back to 0", -1.0, lr / 2)]


# The learner writes the forward and the step: the package's own (its embeddings, its loss, its clamp, its training
# loops) are off limits; DualEncoder.__init__ and experiments.clip_step are found by running the references.
_DUAL_ENCODER = ("mmcourse.contrastive.DualEncoder.forward", "mmcourse.contrastive.DualEncoder.encode_image",
                 "mmcourse.contrastive.DualEncoder.encode_text", "mmcourse.contrastive.similarity")
_STEP = ("mmcourse.contrastive.clip_loss", "mmcourse.contrastive._clip_loss", "mmcourse.contrastive.similarity",
         "mmcourse.contrastive.ContrastiveStep.__call__", "mmcourse.contrastive.DualEncoder.clamp_logit_scale_",
         "mmcourse.contrastive.DualEncoder.fit", "mmcourse.train.fit", "mmcourse.experiments.contrastive.train_build",
         "mmcourse.experiments.contrastive.train_model")
register("dual_encoder", _reference_dual_encoder, _dual_encoder_cases, drive=_drive_dual_encoder, atol=1e-5,
         rtol=1e-4, forbid=_DUAL_ENCODER)
register("clip_step", _reference_clip_step, _clip_step_cases, drive=_drive_clip_step, atol=1e-5, rtol=1e-4,
         forbid=_STEP)


# --- The experiment: which fixed temperature retrieves best after a short training ------------------------------

register_experiment(
    "fixed_temperature", lambda attempt, seed: experiments.temperature_trial(attempt(), seed),
    {"your tau minus tau = 1": experiments.TEMPERATURE_FOUND},
    question="the held-out Recall@1 at the temperature you chose (a number from 0 to 1)",
    predicted="Recall@1 at your tau", reference=lambda: experiments.SHORT_RUN_TEMPERATURE)


# --- NDCG of one query, and the find-the-bug exercise ---------------------------------------------------------------


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
    """``text_emb[j]`` is the caption of image ``order[j]``: put caption i back in row i, then CLIP's loss. Written
    out here rather than calling the package's ``clip_loss``, which the fix may call (the bug is the order)."""
    text_emb = text_emb[order.argsort()]
    logits = logit_scale.exp() * F.normalize(image_emb, dim=1) @ F.normalize(text_emb, dim=1).T
    targets = torch.arange(len(logits))
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


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


register("ndcg_one_query", _reference_ndcg, _ndcg_cases)
register("reordered_captions_loss", _reference_reordered, _reordered_cases, explanation=(
    "The bug: text_emb[order] applies the reordering a second time instead of undoing it. Row j of text_emb is "
    "the caption of image order[j], so the caption of image i sits in row order.argsort()[i]; text_emb[order] puts "
    "in row i the caption of image order[order[i]]. The two agree only where order is its own inverse (no "
    "reordering, or captions swapped in pairs), which is why cases 1 and 2 passed and a cycle of three (case 3) "
    "did not. In a batch sorted by length almost every pair would be mismatched: the loss still runs and returns a "
    "number, but it trains the model on wrong pairs. Undo a permutation with its inverse: text_emb[order.argsort()] "
    "(or targets order.argsort() for the rows and order for the columns)."))
