"""The experiments behind lesson 03's claims: attention that answers questions about Shapes scenes.

Every function takes Shapes & captions (``load_shapes(..., question_types=["colour"])``) and a
seed, trains what it needs, and returns numbers. The claims are :class:`~mmcourse.claims.Claim`
constants at the end, with their thresholds; the lesson checks them on its seed-0 run and
:func:`measure_claims` computes their quantities for any seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..attention import AttentionVQA, VQAOutput
from ..claims import Claim
from ..data import BACKGROUND, as_tensors, load_shapes
from ..data.shapes import ANSWERS, VOCAB
from ..device import seed_everything
from ..encoders import TokenEncoder
from ..metrics import Grounding, accuracy, grounding_accuracy, patch_grid, patch_masks
from ..train import History, fit

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
def run_model(model: AttentionVQA, data: dict) -> VQAOutput:
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
    scores, weights, _ = run_model(model, test)
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
        accuracy=accuracy(scores, answers), text_only_accuracy=accuracy(text_scores, answers),
        majority_accuracy=(answers == majority).float().mean().item(), majority_answer=ANSWERS[majority],
        grounding=grounding_accuracy(weights.mean(1), test["masks"], test["question_object"]),
        head_grounding=heads, history=history,
    )


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
    text_to_image: torch.Tensor  # (N, H, L, P)
    image_to_text: torch.Tensor  # (N, H, P, L)


def co_attention(shapes, seed: int = 0, epochs: int = EPOCHS, progress: bool = False) -> BothDirections:
    """Train the two-direction model (MulT style) and measure what each direction attends to and adds.

    Words attend over patches (text -> image) and patches over words (image -> text); the answer is
    read from both summaries. Each direction is then removed in turn (mean ablation) to see which
    one the answers depend on.
    """
    train, validation, test = (tensors(shapes[s]) for s in ("train", "validation", "test"))
    model, _ = train_vqa(train, validation, seed, both_directions=True, epochs=epochs, progress=progress)
    with torch.no_grad():
        text, image, text_to_image, image_to_text = model.summarize(test["image"], test["question_ids"])
        scores = model.head(torch.cat([text, image], dim=-1))
        # Mean ablation: replace one direction's summary by its average over the test set, so that
        # it carries no information about the sample, and see how much accuracy is left.
        no_image = model.head(torch.cat([text, image.mean(0).expand_as(image)], dim=-1))
        no_text = model.head(torch.cat([text.mean(0).expand_as(text), image], dim=-1))
    word, obj = _named(test)
    rows = torch.arange(len(word))
    per_patch = image_to_text.mean(1)  # (N, P, L): each patch's weights over the words
    on_shape_word = per_patch[rows, :, word]  # (N, P)
    patches = patch_masks(test["masks"], patch_grid(per_patch.shape[1]))  # (N, K, P)
    inside = patches[rows, obj]  # (N, P)
    empty = ~patches.any(1)
    top = per_patch.argmax(-1)[inside]  # most-attended word of each patch inside the named object
    words = test["question_ids"][rows[:, None].expand_as(inside)[inside], top]
    counts = torch.bincount(words, minlength=len(VOCAB))
    return BothDirections(
        model=model, accuracy=accuracy(scores, test["answer_id"]),
        grounding=grounding_accuracy(text_to_image.mean(1), test["masks"], test["question_object"]),
        shape_word_inside=on_shape_word[inside].mean().item(), shape_word_outside=on_shape_word[empty].mean().item(),
        top_word_counts={VOCAB.itos[i]: int(c) for i, c in enumerate(counts) if c > 0},
        without_image_to_text=accuracy(no_image, test["answer_id"]),
        without_text_to_image=accuracy(no_text, test["answer_id"]), text_to_image=text_to_image,
        image_to_text=image_to_text,
    )


def occlude(image: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Paint ``region`` (N, H, W) bool with the scenes' background colour."""
    background = torch.tensor(BACKGROUND, dtype=image.dtype)[None, :, None, None]
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
    grid = patch_grid(result.weights.shape[-1])
    size = test["image"].shape[-1] // grid
    cells = torch.zeros(len(top), grid * grid, dtype=torch.bool)
    cells[rows, top] = True
    patch = cells.reshape(-1, grid, 1, grid, 1).expand(-1, grid, size, grid, size).reshape(-1, grid * size, grid * size)
    before = result.scores.argmax(1)
    changed = {}
    for name, region in (("top_patch", patch), ("object", test["masks"][rows, obj])):
        after = model(occlude(test["image"], region), test["question_ids"]).scores.argmax(1)
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
    inside = patch_masks(test["masks"], patch_grid(w.shape[-1]))[rows, obj]
    mass = (w * inside).sum(-1)
    right = result.scores.argmax(1) == test["answer_id"]
    index = int(torch.where(right, entropy, -1.0).argmax())
    return {"index": index, "entropy": entropy[index].item(), "max_weight": w[index].max().item(),
            "mass_on_object": mass[index].item(), "uniform_entropy": math.log(w.shape[-1]),
            "right_but_mostly_elsewhere": int((right & (mass < 0.5)).sum())}


# --- The lesson's claims and the quantities that test them -------------------------------------

TEXT_ONLY_IS_MAJORITY = Claim("the question alone says nothing about the colour: text only is no better than the "
                              "majority answer", "text-only accuracy minus the majority answer's (absolute)",
                              "<=", 0.06)
ATTENTION_ANSWERS = Claim("words attending to patches answer far better than the question alone",
                          "accuracy gain over the better of text only and majority", ">=", 0.3)
GROUNDS_SHAPE_WORD = Claim("the shape word's most-attended patch lies on its object several times more often "
                           "than chance", "grounding accuracy over its chance level (ratio)", ">=", 3.0)
CO_ATTENTION_ANSWERS = Claim("with both directions, the model still answers far above the question alone",
                             "accuracy gain over text only", ">=", 0.3)
CO_ATTENTION_GROUNDS = Claim("with both directions, the words still ground far above chance",
                             "grounding accuracy over its chance level (ratio)", ">=", 3.0)
TEXT_TO_IMAGE_CARRIES = Claim("the answers come from the words looking at the patches",
                              "accuracy lost without the text-to-image summary", ">=", 0.3)
IMAGE_TO_TEXT_IDLE = Claim("without the patches looking at the words, little changes",
                           "accuracy lost without the image-to-text summary", "<=", 0.1)
WITHOUT_TEXT_TO_IMAGE_MAJORITY = Claim("without the words looking at the patches, only the majority level is left",
                                       "accuracy without it minus the majority answer's", "<=", 0.06)
RIGHT_BUT_ELSEWHERE = Claim("many answers are right although less than half of the attention lies on the object",
                            "right answers with under half of the attention on the object", ">=", 10)
OCCLUDE_PATCH_VS_OBJECT = Claim("hiding the most-attended patch changes far fewer answers than hiding the object",
                                "answers changed by hiding the object minus by hiding the patch", ">=", 0.15)


def load_colour_questions(seed: int = 0):
    """Shapes & captions with colour questions only, at the lesson's sizes (3,000 / 200 / 1,000 scenes)."""
    return load_shapes(n_train=3000, n_validation=200, n_test=1000, question_types=["colour"], seed=seed)


def measure_claims(seed: int) -> dict[Claim, float]:
    """Run every experiment of lesson 03 for ``seed``; return the quantity each claim tests."""
    shapes = load_colour_questions(seed)
    result = answer_colour_questions(shapes, seed)
    co = co_attention(shapes, seed)
    changed = occlusion(result)
    return {
        TEXT_ONLY_IS_MAJORITY: abs(result.text_only_accuracy - result.majority_accuracy),
        ATTENTION_ANSWERS: result.accuracy - max(result.text_only_accuracy, result.majority_accuracy),
        GROUNDS_SHAPE_WORD: result.grounding.accuracy / result.grounding.chance,
        CO_ATTENTION_ANSWERS: co.accuracy - result.text_only_accuracy,
        CO_ATTENTION_GROUNDS: co.grounding.accuracy / co.grounding.chance,
        TEXT_TO_IMAGE_CARRIES: co.accuracy - co.without_text_to_image,
        IMAGE_TO_TEXT_IDLE: co.accuracy - co.without_image_to_text,
        WITHOUT_TEXT_TO_IMAGE_MAJORITY: co.without_text_to_image - result.majority_accuracy,
        RIGHT_BUT_ELSEWHERE: diffuse_but_right(result)["right_but_mostly_elsewhere"],
        OCCLUDE_PATCH_VS_OBJECT: changed["object"] - changed["top_patch"],
    }
