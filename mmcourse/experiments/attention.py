"""The experiments behind lesson 03's claims: attention that answers questions about Shapes scenes.

Every function takes Shapes & captions (``load_shapes(..., question_types=["colour"])``) and a
seed, trains what it needs, and returns numbers; the lesson calls them with seed 0 and
``tests/test_attention_experiments.py`` with seeds 0, 1 and 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..attention import AttentionVQA, CoAttention
from ..data.shapes import ANSWERS, VOCAB
from ..device import seed_everything
from ..encoders import TokenEncoder
from ..metrics import Grounding, grounding_accuracy, patch_masks
from ..train import History, as_tensors, fit

COLUMNS = ["image", "question_ids", "question_object", "answer_id", "masks", "n_objects"]
EPOCHS = 12


def tensors(split) -> dict[str, torch.Tensor]:
    """The columns these experiments use, of one split, as CPU tensors."""
    return as_tensors(split, COLUMNS)


def train_vqa(train: dict, validation: dict | None = None, seed: int = 0, both_directions: bool = False,
              epochs: int = EPOCHS, progress: bool = False) -> tuple[AttentionVQA, History]:
    """An :class:`AttentionVQA` (32 dimensions, 2 heads, 8x8 patches) trained on ``train`` with ``fit``."""
    seed_everything(seed)
    model = AttentionVQA(len(VOCAB), len(ANSWERS), dim=32, num_heads=2, both_directions=both_directions)
    history = fit(model, train, ["image", "question_ids"], "answer_id", validation=validation, epochs=epochs,
                  lr=3e-3, batch_size=64, seed=seed, progress=progress)
    return model.cpu().eval(), history  # the analysis runs on the CPU, whatever trained it


@torch.no_grad()
def run_model(model: AttentionVQA, data: dict) -> tuple[torch.Tensor, torch.Tensor | CoAttention]:
    """Scores (N, A) and attention of ``model`` on ``data`` (one forward pass, in eval mode)."""
    model.eval()
    return model(data["image"], data["question_ids"])


@dataclass
class QuestionAnswering:
    """What :func:`answer_colour_questions` measured on the test split."""

    model: AttentionVQA
    test: dict  # the test split as tensors
    scores: torch.Tensor  # (N, len(ANSWERS))
    weights: torch.Tensor  # (N, H, L, P): each word's attention over the patches
    accuracy: float
    text_only_accuracy: float
    majority_accuracy: float
    majority_answer: str
    grounding: Grounding  # of the head-averaged weights
    head_grounding: list  # one Grounding per head
    history: History


def answer_colour_questions(shapes, seed: int = 0, epochs: int = EPOCHS, progress: bool = False) -> QuestionAnswering:
    """Answer "what colour is the <shape> ?" with words attending over patches, and with baselines.

    Trains :class:`AttentionVQA` (one direction: words over patches), a text-only model (a GRU over
    the question, :class:`mmcourse.encoders.TokenEncoder`), and measures the majority answer, all
    on the test split; and how often each question word's most-attended patch lies in its object.
    """
    train, validation, test = (tensors(shapes[s]) for s in ("train", "validation", "test"))
    model, history = train_vqa(train, validation, seed, epochs=epochs, progress=progress)
    scores, weights = run_model(model, test)
    answers = test["answer_id"]

    seed_everything(seed)
    text_only = nn.Sequential(TokenEncoder(len(VOCAB), out_dim=32), nn.Linear(32, len(ANSWERS)))
    fit(text_only, train, ["question_ids"], "answer_id", epochs=5, lr=3e-3, seed=seed, progress=False)
    with torch.no_grad():
        text_scores = text_only.cpu().eval()(test["question_ids"])
    majority = int(torch.bincount(train["answer_id"], minlength=len(ANSWERS)).argmax())

    heads = [grounding_accuracy(weights[:, h], test["masks"], test["question_object"]) for h in range(weights.shape[1])]
    return QuestionAnswering(
        model=model, test=test, scores=scores, weights=weights,
        accuracy=_accuracy(scores, answers), text_only_accuracy=_accuracy(text_scores, answers),
        majority_accuracy=(answers == majority).float().mean().item(), majority_answer=ANSWERS[majority],
        grounding=grounding_accuracy(weights.mean(1), test["masks"], test["question_object"]),
        head_grounding=heads, history=history,
    )


def _accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    return (scores.argmax(1) == labels).float().mean().item()


def _named(data: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of the word naming the object in each question, and that object's index."""
    refers = data["question_object"]
    word = (refers >= 0).float().argmax(1)  # colour questions name exactly one object, by its shape
    return word, refers.gather(1, word[:, None]).squeeze(1)


@dataclass
class BothDirections:
    """What :func:`co_attention` measured on the test split."""

    model: AttentionVQA
    accuracy: float
    grounding: Grounding  # text -> image, head-averaged, as in the one-direction model
    shape_word_inside: float  # image -> text: mean weight on the shape word, patches inside the named object
    shape_word_outside: float  # the same for patches outside every object
    top_word_counts: dict  # how often each word is the most attended, over patches inside the named object
    without_image_to_text: float  # accuracy with the image's summary replaced by its test-set mean
    without_text_to_image: float  # accuracy with the question's summary replaced by its test-set mean
    attention: CoAttention


def co_attention(shapes, seed: int = 0, epochs: int = EPOCHS, progress: bool = False) -> BothDirections:
    """Train the two-direction model (MulT style) and measure what each direction attends to and adds.

    Words attend over patches (text -> image) and patches over words (image -> text); the answer is
    read from both summaries. Each direction is then removed in turn (mean ablation) to see which
    one the answers depend on.
    """
    train, validation, test = (tensors(shapes[s]) for s in ("train", "validation", "test"))
    model, _ = train_vqa(train, validation, seed, both_directions=True, epochs=epochs, progress=progress)
    with torch.no_grad():
        text, image, co = model.summarize(test["image"], test["question_ids"])
        scores = model.head(torch.cat([text, image], dim=-1))
        # Mean ablation: replace one direction's summary by its average over the test set, so that
        # it carries no information about the sample, and see how much accuracy is left.
        no_image = model.head(torch.cat([text, image.mean(0).expand_as(image)], dim=-1))
        no_text = model.head(torch.cat([text.mean(0).expand_as(text), image], dim=-1))
    word, obj = _named(test)
    rows = torch.arange(len(word))
    per_patch = co.image_to_text.mean(1)  # (N, P, L): each patch's weights over the words
    on_shape_word = per_patch[rows, :, word]  # (N, P)
    grid = int(per_patch.shape[1] ** 0.5)
    patches = patch_masks(test["masks"], grid)  # (N, K, P)
    inside = patches[rows, obj]  # (N, P)
    empty = ~patches.any(1)
    top = per_patch.argmax(-1)[inside]  # most-attended word of each patch inside the named object
    words = test["question_ids"][rows[:, None].expand_as(inside)[inside], top]
    counts = torch.bincount(words, minlength=len(VOCAB))
    return BothDirections(
        model=model, accuracy=_accuracy(scores, test["answer_id"]),
        grounding=grounding_accuracy(co.text_to_image.mean(1), test["masks"], test["question_object"]),
        shape_word_inside=on_shape_word[inside].mean().item(), shape_word_outside=on_shape_word[empty].mean().item(),
        top_word_counts={VOCAB.itos[i]: int(c) for i, c in enumerate(counts) if c > 0},
        without_image_to_text=_accuracy(no_image, test["answer_id"]),
        without_text_to_image=_accuracy(no_text, test["answer_id"]), attention=co,
    )


def occlude(image: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Paint ``region`` (N, H, W) bool with each image's background colour (its border's median)."""
    border = torch.cat([image[:, :, 0], image[:, :, -1]], dim=2)
    background = border.median(dim=2).values[:, :, None, None]
    return torch.where(region[:, None], background, image)


@torch.no_grad()
def occlusion(result: QuestionAnswering) -> dict[str, float]:
    """How often the answer changes when you hide the most-attended patch, or the whole named object.

    The patch is the one the object's word attends to most (head-averaged). Returns the fraction of
    test questions whose predicted answer changes in each case.
    """
    test, model = result.test, result.model
    word, obj = _named(test)
    rows = torch.arange(len(word))
    top = result.weights.mean(1)[rows, word].argmax(-1)  # (N,)
    grid = int(result.weights.shape[-1] ** 0.5)
    size = test["image"].shape[-1] // grid
    cells = torch.zeros(len(top), grid * grid, dtype=torch.bool)
    cells[rows, top] = True
    patch = cells.reshape(-1, grid, 1, grid, 1).expand(-1, grid, size, grid, size).reshape(-1, grid * size, grid * size)
    before = result.scores.argmax(1)
    changed = {}
    for name, region in (("top_patch", patch), ("object", test["masks"][rows, obj])):
        after = model(occlude(test["image"], region), test["question_ids"])[0].argmax(1)
        changed[name] = (after != before).float().mean().item()
    return changed


def diffuse_but_right(result: QuestionAnswering) -> dict:
    """The correctly answered question whose shape word spreads its attention most (highest entropy).

    Returns its test index, the entropy (nats; uniform over P patches is log P), the largest weight,
    the attention mass on its object, and how many correct answers put less than half of the mass on
    the object.
    """
    test = result.test
    word, obj = _named(test)
    rows = torch.arange(len(word))
    w = result.weights.mean(1)[rows, word]  # (N, P)
    entropy = -(w * w.clamp_min(1e-12).log()).sum(-1)
    inside = patch_masks(test["masks"], int(w.shape[-1] ** 0.5))[rows, obj]
    mass = (w * inside).sum(-1)
    right = result.scores.argmax(1) == test["answer_id"]
    index = int(torch.where(right, entropy, -1.0).argmax())
    return {"index": index, "entropy": entropy[index].item(), "max_weight": w[index].max().item(),
            "mass_on_object": mass[index].item(), "uniform_entropy": math.log(w.shape[-1]),
            "right_but_mostly_elsewhere": int((right & (mass < 0.5)).sum())}
