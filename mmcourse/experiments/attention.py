"""The experiments behind lesson 03's claims: attention that answers questions about Shapes scenes.

Every function takes Shapes & captions (``load_shapes(..., question_types=["colour"])``) or what an
earlier function returned, and a seed, trains what it needs, and returns numbers. The build's training
(:func:`train_with_layer`, a learner's layer and step inside the model) and the experiment exercise's
shuffled-pairs control (:func:`shuffled_pairs`) load the lesson's data themselves, by seed (cached). The claims are
:class:`~mmcourse.claims.Claim` constants at the end, with their thresholds; the lesson checks them
on its seed-0 run and :func:`measure_claims` computes their quantities for any seed
(``tests/test_attention_experiments.py`` runs another seed, ``benchmarks/claims.py`` seeds 0-9).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..attention import AttentionVQA, MultiHeadAttention, VQAOutput
from ..claims import Claim
from ..data import BACKGROUND, as_tensors, load_shapes
from ..data.shapes import ANSWERS, COLOURS, VOCAB
from ..device import get_device, seed_everything
from ..diagnostics import Interval, deletion_auc, deletion_curve, paired_difference, random_order, saliency_order
from ..encoders import TokenEncoder
from ..metrics import Grounding, accuracy, grounding_accuracy, patch_grid, patch_masks
from ..train import Adam, History, fit

COLUMNS = ["image", "question_ids", "question_object", "answer_id", "masks", "n_objects", "object_colour"]
EPOCHS = 10
CO_EPOCHS = 4  # the two-direction model starts from the one-direction model's trained parts
DELETION_STEPS = (0, 1, 2, 3, 4, 6, 8, 10, 12, 16)  # patches deleted, up to a quarter of the 64
ORDERS = ("attention", "random", "random within the object")
BRIEF_STEPS = 300  # the build's training: batches of 32, about three passes over the 3,000 scenes, 2 s on a CPU
CONTROL_COLUMNS = ("image", "question_ids", "answer_id")
SHUFFLED_GAP = "shuffled-pairs accuracy minus the majority answer's"  # what shuffled_pairs measures for its claim


def tensors(split) -> dict[str, torch.Tensor]:
    """The columns these experiments use, of one split, as CPU tensors."""
    return as_tensors(split, COLUMNS)


def two_directions_from(start: AttentionVQA) -> AttentionVQA:
    """A two-direction :class:`AttentionVQA` that starts from a trained one-direction model.

    It copies ``start``'s encoders, word weights and words-over-patches block (copies, not shared
    parameters); the patches-over-words block and the head over both summaries are new.
    """
    if not isinstance(start, AttentionVQA) or start.both_directions:
        raise ValueError(f"start: expected a one-direction AttentionVQA, got "
                         f"{getattr(start, 'both_directions', type(start).__name__)!r} for both_directions")
    model = AttentionVQA(len(VOCAB), len(ANSWERS), dim=32, num_heads=2, both_directions=True)
    for name in ("text", "image", "word_weight"):
        getattr(model, name).load_state_dict(getattr(start, name).state_dict())
    model.cross.text_to_image[0].load_state_dict(start.cross.state_dict())
    return model


def train_vqa(train: dict, validation: dict | None = None, seed: int = 0, both_directions: bool = False,
              epochs: int = EPOCHS, progress: bool = False,
              start: AttentionVQA | None = None) -> tuple[AttentionVQA, History]:
    """An :class:`AttentionVQA` (32 dimensions, 2 heads, 8x8 patches) trained on ``train`` with ``fit``.

    Batches of 32: with larger ones (fewer steps) some seeds never leave the image-only answers that
    uniform attention gives. With ``start``, a trained one-direction model, the two-direction model
    starts from its parts (:func:`two_directions_from`).
    """
    if start is not None and not both_directions:
        raise ValueError("start: a one-direction model starts from scratch; pass start with both_directions=True")
    seed_everything(seed)
    model = (two_directions_from(start) if start is not None else
             AttentionVQA(len(VOCAB), len(ANSWERS), dim=32, num_heads=2, both_directions=both_directions))
    history = fit(model, train, ["image", "question_ids"], "answer_id", validation=validation, epochs=epochs,
                  lr=3e-3, batch_size=32, seed=seed, progress=progress)
    return model.cpu().eval(), history  # the analysis runs on the CPU, whatever trained it


@torch.no_grad()
def run_model(model: AttentionVQA, data: dict) -> VQAOutput:
    """Scores (N, A) and attention of ``model`` on ``data`` (one forward pass, in eval mode)."""
    model.eval()
    return model(data["image"], data["question_ids"])


def image_only_answers(object_colour: torch.Tensor) -> torch.Tensor:
    """The best answer to "what colour is the <shape> ?" for someone who sees the scene but not the question.

    The question asks about one of the scene's objects drawn uniformly at random, so the colour that
    most objects share is right most often (ties go to the first such colour in :data:`COLOURS`). With
    one object it is always right. This is the image-only ceiling: perfect perception, no question.

    Shape: ``object_colour`` (N, K) indices into :data:`COLOURS`, -1 for empty slots -> (N,) answer ids.
    """
    if object_colour.ndim != 2 or object_colour.is_floating_point() or not (object_colour >= 0).any(1).all():
        raise ValueError(f"object_colour: expected integer colour indices (N, K) with at least one object per row, "
                         f"got {object_colour.dtype} {tuple(object_colour.shape)}")
    counts = torch.zeros(len(object_colour), len(COLOURS), dtype=torch.long, device=object_colour.device)
    present = object_colour >= 0
    counts.scatter_add_(1, object_colour.clamp_min(0), present.long())
    as_answer = torch.tensor([ANSWERS.index(c) for c in COLOURS], device=object_colour.device)
    return as_answer[counts.argmax(1)]  # argmax returns the first of tied maxima


@dataclass
class QuestionAnswering:
    """What :func:`answer_colour_questions` measured on the test split."""

    model: AttentionVQA
    test: dict  # the test split as tensors
    scores: torch.Tensor  # (N, len(ANSWERS))
    weights: torch.Tensor  # (N, H, T, P): each word's attention over the patches
    accuracy: float
    text_only_accuracy: float
    image_only_accuracy: float  # the image-only ceiling, :func:`image_only_answers`
    majority_accuracy: float
    majority_answer: str
    one_object: float  # fraction of test scenes with a single object, where the image alone answers
    over_image_only: Interval  # paired bootstrap interval of accuracy minus the image-only ceiling's
    grounding: Grounding  # of the head-averaged weights
    head_grounding: list  # one Grounding per head
    history: History


def answer_colour_questions(shapes, seed: int = 0, epochs: int = EPOCHS, progress: bool = False) -> QuestionAnswering:
    """Answer "what colour is the <shape> ?" with words attending over patches, and with baselines.

    Trains :class:`AttentionVQA` (one direction: words over patches) and a text-only model (a GRU over
    the question, :class:`mmcourse.encoders.TokenEncoder`); measures the majority answer and the
    image-only ceiling (:func:`image_only_answers`), all on the test split; and how often each question
    word's most-attended patch lies on its object.
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
    image_only = image_only_answers(test["object_colour"])

    heads = [grounding_accuracy(weights[:, h], test["masks"], test["question_object"]) for h in range(weights.shape[1])]
    return QuestionAnswering(
        model=model, test=test, scores=scores, weights=weights,
        accuracy=accuracy(scores, answers), text_only_accuracy=accuracy(text_scores, answers),
        image_only_accuracy=accuracy(image_only, answers),
        majority_accuracy=(answers == majority).float().mean().item(), majority_answer=ANSWERS[majority],
        one_object=(test["n_objects"] == 1).float().mean().item(),
        over_image_only=paired_difference(scores.argmax(1) == answers, image_only == answers, seed=seed),
        grounding=grounding_accuracy(weights.mean(1), test["masks"], test["question_object"]),
        head_grounding=heads, history=history,
    )


def _named(data: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of the word naming the object in each question, and that object's index."""
    refers = data["question_object"]
    word = (refers >= 0).float().argmax(1)  # colour questions name exactly one object, by its shape
    return word, refers.gather(1, word[:, None]).squeeze(1)


def named_word_weights(result: QuestionAnswering) -> torch.Tensor:
    """The shape word's attention over the patches, averaged over the heads. Shape: (N, P)."""
    word, _ = _named(result.test)
    return result.weights.mean(1)[torch.arange(len(word)), word]


def object_patches(result: QuestionAnswering) -> torch.Tensor:
    """Which patches touch the object each question names. Shape: (N, P) bool."""
    _, obj = _named(result.test)
    grid = patch_grid(result.weights.shape[-1])
    return patch_masks(result.test["masks"], grid)[torch.arange(len(obj)), obj]


# --- The build: a words-over-patches layer inside the model, and one training step ------------------

def vqa_step(model: nn.Module, batch: dict, optimizer) -> torch.Tensor:
    """One training step of an :class:`AttentionVQA` on a batch of questions; returns the loss (detached).

    The loss is the mean cross-entropy of the answer scores, as ``fit`` computes it; the step then clears the
    old gradients, backpropagates and updates, in ``fit``'s order. ``optimizer`` is any optimiser with
    ``zero_grad()`` and ``step()`` (``mmcourse.train.Adam`` or ``SGD``, or one of ``torch.optim``).

    Shape: batch["image"] (B, 3, 32, 32), batch["question_ids"] (B, T) int64, batch["answer_id"] (B,) -> ().
    """
    scores = model(batch["image"], batch["question_ids"]).scores  # (B, len(ANSWERS))
    loss = F.cross_entropy(scores, batch["answer_id"])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach()


def with_layer(layer: type[nn.Module], seed: int = 0) -> AttentionVQA:
    """The lesson's :class:`AttentionVQA` (32 dimensions, 2 heads) with ``layer(32, 2)`` as its words-over-patches
    attention (``model.cross.attn``), starting from the weights the package's :class:`MultiHeadAttention` gets
    with this seed (``load_state_dict``), so that a correct layer trains exactly as the package's does.

    ``layer`` is a class with the package's parameter names (``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``)
    whose forward takes ``(query, key, value, key_padding_mask=None)`` and returns ``(out, weights)``.
    """
    if not (isinstance(layer, type) and issubclass(layer, nn.Module)):
        raise ValueError(f"layer: expected an nn.Module class such as MultiHeadAttention, got {layer!r:.80}")
    seed_everything(seed)
    model = AttentionVQA(len(VOCAB), len(ANSWERS), dim=32, num_heads=2)
    attention = layer(32, 2)
    try:
        attention.load_state_dict(model.cross.attn.state_dict())
    except RuntimeError as err:
        raise ValueError(f"layer: expected MultiHeadAttention's parameters (q_proj, k_proj, v_proj, out_proj), "
                         f"got {layer.__name__} whose weights do not load: {err}") from None
    if isinstance(attention, MultiHeadAttention):
        attention.check_values = False  # as inside CrossModalAttention: no host synchronisation per step
    model.cross.attn = attention
    return model


@functools.lru_cache(maxsize=1)
def _colour_tensors(seed: int) -> tuple[dict, dict]:
    """The image, question_ids and answer_id of :func:`load_colour_questions`'s train and test splits as CPU
    tensors (cached: the build and the experiment exercise read the same ones)."""
    shapes = load_colour_questions(seed)
    return as_tensors(shapes["train"], CONTROL_COLUMNS), as_tensors(shapes["test"], CONTROL_COLUMNS)


class BriefTraining(NamedTuple):
    """What :func:`train_with_layer` returns."""

    model: AttentionVQA  # trained, on the CPU, in eval mode
    losses: list  # the loss of every step
    accuracy: float  # on the test split
    majority_accuracy: float  # of the most common answer of the training split, on the test split
    seconds: float  # spent training


def train_with_layer(layer: type[nn.Module] = MultiHeadAttention, step: Callable = vqa_step, seed: int = 0,
                     steps: int = BRIEF_STEPS) -> BriefTraining:
    """Train :func:`with_layer`'s model for ``steps`` batches of 32 colour questions with ``step`` and Adam.

    ``step(model, batch, optimizer)`` does one training step and returns the loss (:func:`vqa_step`, or a
    learner's). The run is deterministic, so it is cached: the same layer, step and seed give the same
    (trained) model again, without training. Uses the first 300 steps of :func:`load_colour_questions`'s
    data, about three passes over the training scenes.
    """
    if not callable(step):
        raise ValueError(f"step: expected a function step(model, batch, optimizer), got {step!r:.80}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps: expected an integer >= 1, got {steps!r}")
    return _train_with_layer(layer, step, seed, steps)


@functools.lru_cache(maxsize=4)  # the learner's layer and step, and the package's, for a seed or two
def _train_with_layer(layer: type[nn.Module], step: Callable, seed: int, steps: int) -> BriefTraining:
    model = with_layer(layer, seed)
    train, test = _colour_tensors(seed)
    device = get_device()
    model.to(device).train()
    columns = {c: train[c].to(device) for c in CONTROL_COLUMNS}
    optimizer = Adam(model.parameters(), lr=3e-3)
    generator, n = torch.Generator().manual_seed(seed), len(train["answer_id"])
    order = torch.cat([torch.randperm(n, generator=generator) for _ in range(math.ceil(steps * 32 / n))])
    order = order.to(device)
    losses, start = [], time.perf_counter()
    for i in range(steps):
        rows = order[i * 32 : (i + 1) * 32]
        loss = step(model, {c: v.index_select(0, rows) for c, v in columns.items()}, optimizer)
        losses.append(loss.detach() if isinstance(loss, torch.Tensor) else torch.tensor(float(loss)))
    values = torch.stack([loss.reshape(()).float().cpu() for loss in losses]).tolist()  # read once, at the end
    seconds = time.perf_counter() - start
    model = model.cpu().eval()
    scores = run_model(model, test).scores
    majority = int(torch.bincount(train["answer_id"], minlength=len(ANSWERS)).argmax())
    return BriefTraining(model, values, accuracy(scores, test["answer_id"]),
                         (test["answer_id"] == majority).float().mean().item(), seconds)


# --- The experiment exercise: a shuffled-pairs control ---------------------------------------------

def shuffle_images(test: dict, generator: torch.Generator) -> dict:
    """A shuffled-pairs control: each question, with its own answer, gets another scene's image.

    The images are permuted (``torch.randperm``); the questions and answers stay in place, so that only the
    pairing of image and question changes. Shape: test {"image": (N, 3, 32, 32), "question_ids": (N, T),
    "answer_id": (N,)} -> the same columns, shuffled.
    """
    order = torch.randperm(len(test["image"]), generator=generator)
    return {**test, "image": test["image"][order]}


def _check_control(pairs, test: dict) -> None:
    """Raise ValueError unless ``pairs`` is the test columns rearranged into new pairs, answers kept."""
    if not isinstance(pairs, dict) or set(CONTROL_COLUMNS) - set(pairs):
        got = sorted(pairs) if isinstance(pairs, dict) else type(pairs).__name__
        raise ValueError(f"control: expected a dict with the columns {list(CONTROL_COLUMNS)}, got {got}")
    for c in CONTROL_COLUMNS:
        x = pairs[c]
        if not isinstance(x, torch.Tensor) or x.shape != test[c].shape or x.dtype != test[c].dtype:
            raise ValueError(f"control: column {c!r} expected a {test[c].dtype} tensor of shape "
                             f"{tuple(test[c].shape)}, got {getattr(x, 'dtype', type(x).__name__)} "
                             f"{tuple(getattr(x, 'shape', ()))}")
    if not torch.equal(pairs["answer_id"].sort().values, test["answer_id"].sort().values):
        raise ValueError("control: answer_id expected the test answers, rearranged, got other answers (a control "
                         "changes which image a question sees, not what the answers are)")
    if torch.equal(pairs["image"], test["image"]) and torch.equal(pairs["question_ids"], test["question_ids"]) \
            and not torch.equal(pairs["answer_id"], test["answer_id"]):
        raise ValueError("control: every question still sees its own image and only the answers moved; shuffled "
                         "answers score any model at chance, whatever it reads: give each question another "
                         "scene's image instead, and keep its answer")


def shuffled_pairs(control: Callable = shuffle_images, seed: int = 0) -> dict[str, float]:
    """Run a shuffled-pairs ``control`` on the model :func:`train_with_layer` trains for ``seed`` (cached).

    ``control(test, generator)`` gets the test split's image, question_ids and answer_id (copies) and returns
    them rearranged into new pairs; the model answers each new pair and is scored against the answer_id
    returned. If the answers come from the image a question is about, the accuracy falls to the level of
    the majority answer (colours match by coincidence). Returns the measured values by name.
    """
    brief = train_with_layer(seed=seed)
    _, test = _colour_tensors(seed)
    columns = {c: test[c].clone() for c in CONTROL_COLUMNS}
    pairs = control(columns, torch.Generator().manual_seed(seed))
    _check_control(pairs, {c: test[c] for c in CONTROL_COLUMNS})
    scores = run_model(brief.model, pairs).scores
    shuffled = accuracy(scores, pairs["answer_id"])
    return {SHUFFLED_GAP: abs(shuffled - brief.majority_accuracy),
            "accuracy on the shuffled pairs": shuffled, "accuracy on the real pairs": brief.accuracy,
            "majority answer's accuracy": brief.majority_accuracy}


# --- Does a word look at *its* object, or at any object? ----------------------------------------

class ObjectGrounding(NamedTuple):
    """What :func:`object_grounding` returns: where each naming word's most-attended patch lies."""

    named: float  # on the object the word names (grounding accuracy)
    other_object: float  # on another object only, not on the named one
    background: float  # on no object
    any_object_baseline: float  # named-object hits of a word-blind map that picks a random object patch
    chance: float  # named-object hits of a random patch
    words: int  # how many words counted


def object_grounding(weights: torch.Tensor, masks: torch.Tensor, token_to_object: torch.Tensor) -> ObjectGrounding:
    """Split each naming word's most-attended patch into named object / another object / background.

    ``named + other_object`` is how often the word looks at *some* object. A map that finds objects
    but ignores the word, putting its top patch on a patch drawn at random among those that touch any
    object, hits the named object with probability |named object's patches| / |patches on any object|:
    ``any_object_baseline``, the average of that over the words. On scenes with one object it equals
    ``named``'s ceiling, so compare on scenes with two or three objects.

    Shape: as :func:`mmcourse.metrics.grounding_accuracy`: weights (B, T, P), masks bool (B, K, H, W),
    token_to_object int (B, T) with -1 for words that name nothing -> :class:`ObjectGrounding`.
    """
    accuracy_, chance = grounding_accuracy(weights, masks, token_to_object)  # checks the arguments
    rows, cols = (token_to_object >= 0).nonzero(as_tuple=True)
    patches = patch_masks(masks, patch_grid(weights.shape[-1], "weights"))  # (B, K, P)
    named = patches[rows, token_to_object[rows, cols]]  # (N, P)
    anywhere = patches[rows].any(1)  # (N, P): the patch touches some object
    top = weights[rows, cols].argmax(-1, keepdim=True)  # (N, 1)
    on_named, on_any = named.gather(1, top).squeeze(1), anywhere.gather(1, top).squeeze(1)
    baseline = named.sum(1) / anywhere.sum(1)
    return ObjectGrounding(
        named=accuracy_, other_object=(on_any & ~on_named).float().mean().item(),
        background=(~on_any).float().mean().item(), any_object_baseline=baseline.mean().item(), chance=chance,
        words=len(rows),
    )


def grounding_with_several_objects(result: QuestionAnswering) -> ObjectGrounding:
    """:func:`object_grounding` of the head-averaged weights on the test scenes with two or three objects."""
    test, several = result.test, result.test["n_objects"] >= 2
    return object_grounding(result.weights.mean(1)[several], test["masks"][several], test["question_object"][several])


# --- Is attention faithful? Deletion curves ------------------------------------------------------

@dataclass
class Deletion:
    """What :func:`deletion_curves` measured: accuracy as patches are deleted in three orders."""

    steps: list  # k, the number of patches deleted
    curves: dict  # order -> (S,) test accuracy after deleting the first k patches
    areas: dict  # order -> normalised area under its curve (lower: the answer goes sooner)
    per_question: dict  # order -> (N,) each question's own area (its 0/1 curve); their mean is the area
    attention_vs_object: Interval  # paired bootstrap interval of area(attention) - area(random within the object)


@torch.no_grad()
def deletion_curves(result: QuestionAnswering, steps=DELETION_STEPS, seed: int = 0) -> Deletion:
    """Delete patches (paint them with the background colour) in three orders and follow the accuracy.

    Orders (Samek et al. 2017; Hooker et al. 2019): the shape word's attention, most-attended first
    (:func:`~mmcourse.diagnostics.saliency_order`); a random order; and a random order among the
    patches that touch the named object, then the rest (``random_order(first=...)``). If attention
    points at what the answer needs, its curve falls faster than the random one; if it also knows
    *which* of the object's patches matter, faster than the random order within the object.
    """
    test, model = result.test, result.model.eval()
    n, p = result.weights.shape[0], result.weights.shape[-1]
    grid, g = patch_grid(p), torch.Generator().manual_seed(seed)
    orders = {"attention": saliency_order(named_word_weights(result)), "random": random_order(n, p, g),
              "random within the object": random_order(n, p, g, first=object_patches(result))}
    fill = torch.tensor(BACKGROUND).expand(n, 3)
    steps = list(steps)
    curves, areas, per_question = {}, {}, {}
    for name in ORDERS:
        correct = deletion_curve(lambda images: model(images, test["question_ids"]), test["image"], orders[name],
                                 grid, test["answer_id"], fill, steps, per_sample=True)  # (S, N)
        curves[name] = correct.mean(1)
        areas[name] = deletion_auc(curves[name], steps)
        per_question[name] = deletion_auc(correct, steps)  # (N,) each question's own area
    return Deletion(steps, curves, areas, per_question,
                    paired_difference(per_question["attention"], per_question["random within the object"], seed=seed))


# --- Right answers with attention elsewhere --------------------------------------------------------

def diffuse_but_right(result: QuestionAnswering) -> dict:
    """The correctly answered question whose shape word spreads its attention most (highest entropy).

    Returns its test index, the entropy (nats; uniform over P patches is log P), the largest weight,
    the attention mass on its object, and the fraction of all test questions answered right with
    less than half of that word's attention on the object.
    """
    w = named_word_weights(result)  # (N, P)
    entropy = -(w * w.clamp_min(1e-12).log()).sum(-1)
    mass = (w * object_patches(result)).sum(-1)
    right = result.scores.argmax(1) == result.test["answer_id"]
    index = int(torch.where(right, entropy, -1.0).argmax())
    return {"index": index, "entropy": entropy[index].item(), "max_weight": w[index].max().item(),
            "mass_on_object": mass[index].item(), "uniform_entropy": math.log(w.shape[-1]),
            "right_but_mostly_elsewhere": (right & (mass < 0.5)).float().mean().item()}


# --- Co-attention: both directions -----------------------------------------------------------------

@dataclass
class BothDirections:
    """What :func:`co_attention` measured on the test split."""

    model: AttentionVQA
    accuracy: float
    grounding: Grounding  # text -> image, head-averaged, as in the one-direction model
    shape_word_inside: float  # image -> text: mean weight on the shape word, patches inside the named object
    shape_word_outside: float  # the same for patches outside every object
    top_word_counts: dict  # how often each word is the most attended, over patches inside the named object
    without_image_summary: float  # accuracy with the image's summary branch replaced by its test-set mean
    without_question_summary: float  # accuracy with the question's summary branch replaced by its test-set mean
    text_to_image: torch.Tensor  # (N, H, T, P)
    image_to_text: torch.Tensor  # (N, H, P, T)


def co_attention(shapes, start: AttentionVQA | None, seed: int = 0, epochs: int = CO_EPOCHS,
                 progress: bool = False) -> BothDirections:
    """Train the two-direction model (MulT style) and measure what each summary branch adds.

    ``start`` is the trained one-direction model (:func:`answer_colour_questions`'s): the new model
    copies its encoders and its words-over-patches block, adds the patches-over-words block and a new
    head, and trains all of it for ``epochs``. (From scratch, ``start=None``, it needs 12 epochs or more,
    and in our runs seed 1 settled on the image-only answers through the image's branch.)

    Words attend over patches (text -> image) and patches over words (image -> text); the head reads
    the question's summary (the words after attention, pooled) and the image's summary (the patches
    after attention, averaged). Each summary is then replaced by its test-set mean in turn (mean
    ablation). That removes a whole branch, its residual path included (the patches themselves
    reach the image's summary through the residual), not one attention direction alone.
    """
    train, validation, test = (tensors(shapes[s]) for s in ("train", "validation", "test"))
    model, _ = train_vqa(train, validation, seed, both_directions=True, epochs=epochs, progress=progress,
                         start=start)
    with torch.no_grad():
        text, image, text_to_image, image_to_text = model.summarize(test["image"], test["question_ids"])
        scores = model.head(torch.cat([text, image], dim=-1))
        no_image = model.head(torch.cat([text, image.mean(0).expand_as(image)], dim=-1))
        no_text = model.head(torch.cat([text.mean(0).expand_as(text), image], dim=-1))
    word, obj = _named(test)
    rows = torch.arange(len(word))
    per_patch = image_to_text.mean(1)  # (N, P, T): each patch's weights over the words
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
        without_image_summary=accuracy(no_image, test["answer_id"]),
        without_question_summary=accuracy(no_text, test["answer_id"]), text_to_image=text_to_image,
        image_to_text=image_to_text,
    )


# --- The lesson's claims and the quantities that test them -------------------------------------

TEXT_ONLY_IS_MAJORITY = Claim("the question alone says nothing about the colour: text only is within a few points "
                              "of the majority answer", "text-only accuracy minus the majority answer's (absolute)",
                              "<=", 0.08)
ATTENTION_ANSWERS = Claim("words attending to patches answer far better than the question alone",
                          "accuracy gain over the better of text only and majority", ">=", 0.3)
ATTENTION_BEATS_IMAGE_ONLY = Claim("words attending to patches answer better than the best answer from the image "
                                   "alone", "accuracy minus the image-only ceiling's", ">=", 0.1)
GROUNDS_SHAPE_WORD = Claim("the shape word's most-attended patch lies on its object several times more often "
                           "than chance", "grounding accuracy over its chance level (ratio)", ">=", 3.0)
GROUNDS_ITS_OBJECT = Claim("with two or three objects, the shape word looks at its own object, not at any object",
                           "grounding accuracy minus the any-object baseline's", ">=", 0.2)
DELETION_ATTENTION_BEATS_RANDOM = Claim("deleting patches in attention order removes the answer sooner than in "
                                        "random order", "area under the random curve minus under the "
                                        "attention curve", ">=", 0.08)
TOP_PATCH_BEATS_OBJECT_PATCH = Claim("deleting the single most-attended patch changes more answers than deleting a "
                                     "random patch of the object", "accuracy after one deletion: random within "
                                     "the object minus attention order", ">=", 0.05)
OBJECT_ORDER_BEATS_ATTENTION = Claim("over 16 deletions, a random order within the object removes the answer sooner "
                                     "than the attention order", "area under the attention curve minus under the "
                                     "random-within-object curve", ">=", 0.03)
RIGHT_BUT_ELSEWHERE = Claim("some answers are right although less than half of the attention lies on the object",
                            "fraction of test questions answered right with under half the attention on the object",
                            ">=", 0.02)
CO_ATTENTION_ANSWERS = Claim("with both directions, the model still answers far above the question alone",
                             "accuracy gain over text only", ">=", 0.3)
CO_ATTENTION_GROUNDS = Claim("with both directions, the words still ground far above chance",
                             "grounding accuracy over its chance level (ratio)", ">=", 3.0)
QUESTION_BRANCH_CARRIES = Claim("the answers come from the question's summary branch (the words after looking at "
                                "the patches)", "accuracy lost without the question's summary", ">=", 0.3)
WITHOUT_QUESTION_BRANCH_MAJORITY = Claim("without the question's summary branch, only the majority level is left",
                                         "accuracy without it minus the majority answer's", "<=", 0.06)
SHUFFLED_PAIRS_AT_MAJORITY = Claim("with each question paired with another scene's image, the answers fall to the "
                                   "majority answer's level: they come from the image the question is about",
                                   "accuracy on shuffled pairs minus the majority answer's (absolute)", "<=", 0.08)
IMAGE_BRANCH_IDLE = Claim("removing the image's whole summary branch (patches after looking at the words, "
                          "residual included) changes little", "accuracy lost without the image's summary",
                          "<=", 0.05)


@functools.lru_cache(maxsize=1)
def load_colour_questions(seed: int = 0):
    """Shapes & captions with colour questions only, at the lesson's sizes (3,000 / 200 / 1,000 scenes).

    Cached: the same ``DatasetDict`` for the same seed (the lesson's data, the build's and the experiment
    exercise's are one object, loaded once); do not change it in place.
    """
    return load_shapes(n_train=3000, n_validation=200, n_test=1000, question_types=["colour"], seed=seed)


def measure_claims(seed: int) -> dict[Claim, float]:
    """Run every experiment of lesson 03 for ``seed``; return the quantity each claim tests."""
    shapes = load_colour_questions(seed)
    result = answer_colour_questions(shapes, seed)
    several = grounding_with_several_objects(result)
    deletion = deletion_curves(result, seed=seed)
    co = co_attention(shapes, result.model, seed)
    return {
        TEXT_ONLY_IS_MAJORITY: abs(result.text_only_accuracy - result.majority_accuracy),
        ATTENTION_ANSWERS: result.accuracy - max(result.text_only_accuracy, result.majority_accuracy),
        ATTENTION_BEATS_IMAGE_ONLY: result.accuracy - result.image_only_accuracy,
        GROUNDS_SHAPE_WORD: result.grounding.accuracy / result.grounding.chance,
        GROUNDS_ITS_OBJECT: several.named - several.any_object_baseline,
        DELETION_ATTENTION_BEATS_RANDOM: deletion.areas["random"] - deletion.areas["attention"],
        TOP_PATCH_BEATS_OBJECT_PATCH: deletion.curves["random within the object"][1].item()
        - deletion.curves["attention"][1].item(),
        OBJECT_ORDER_BEATS_ATTENTION: deletion.areas["attention"] - deletion.areas["random within the object"],
        RIGHT_BUT_ELSEWHERE: diffuse_but_right(result)["right_but_mostly_elsewhere"],
        CO_ATTENTION_ANSWERS: co.accuracy - result.text_only_accuracy,
        CO_ATTENTION_GROUNDS: co.grounding.accuracy / co.grounding.chance,
        QUESTION_BRANCH_CARRIES: co.accuracy - co.without_question_summary,
        WITHOUT_QUESTION_BRANCH_MAJORITY: co.without_question_summary - result.majority_accuracy,
        IMAGE_BRANCH_IDLE: co.accuracy - co.without_image_summary,
        SHUFFLED_PAIRS_AT_MAJORITY: shuffled_pairs(shuffle_images, seed)[SHUFFLED_GAP],
    }
