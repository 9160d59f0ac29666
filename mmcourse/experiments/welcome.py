"""Experiments of lesson 00 (welcome): the one training run whose result the lesson claims, ``fit``'s loop as
the learner's build is checked against it, and the shuffled-labels control of the experiment exercise.

The claims are :class:`~mmcourse.claims.Claim` constants with their thresholds; the lesson checks
them on its seed-0 run and :func:`measure_claims` computes their quantities for any seed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

from ..claims import Claim
from ..device import seed_everything
from ..encoders import ImageEncoder
from ..train import History, evaluate, fit, predict

IMAGE_MODEL_BEATS_CHANCE = Claim("the image model is far better than chance (0.1)",
                                 "test accuracy of the image model", ">=", 0.5)
IMAGE_MODEL_IMPERFECT = Claim("the image model is far from perfect on noisy, occluded digits",
                              "test accuracy of the image model", "<=", 0.9)
# The experiment exercise's outcome: the same model, trained on labels shuffled against their images, has nothing
# to learn that carries over to the test set.
# Seeds 0-9 measure 0.04-0.16 (in ten epochs the model fits only about a quarter of its shuffled training labels,
# and guesses on new images), so the bar sits at 0.25: about 3 standard deviations above the worst seed, far below
# the real model's 0.66-0.71.
SHUFFLED_LABELS_AT_CHANCE = Claim("trained on labels shuffled against their images, the model is near chance (0.1)",
                                  "test accuracy after training on the shuffled labels", "<=", 0.25)
# A relabelling that keeps the pairing ("every 3 becomes a 4") also scores near 0 on the true labels, yet the model
# has learned the digits: matched to the best one-to-one renaming of its classes, its accuracy stays about 0.7.
# A real shuffle leaves nothing to rename (0.21-0.29 on seeds 0-9).
SHUFFLED_LABELS_NO_DIGITS = Claim("no renaming of the classes recovers the digits: the control broke the pairing",
                                  "test accuracy under the best one-to-one renaming of the predicted classes", "<=",
                                  0.4)


def train_image_model(av, seed: int = 0, epochs: int = 10, progress: bool = True) -> tuple[nn.Module, History, dict]:
    """A small image classifier (:class:`~mmcourse.encoders.ImageEncoder` and a linear layer) trained on
    AV-Digits' images; returns the model (on the CPU, in eval mode, as every experiment returns its models),
    its history and its test loss and accuracy."""
    seed_everything(seed)
    model = nn.Sequential(ImageEncoder(out_dim=64), nn.Linear(64, 10))
    history = fit(model, av["train"], inputs=["image"], epochs=epochs, validation=av["validation"], seed=seed,
                  progress=progress)
    result = evaluate(model, av["test"], inputs=["image"])
    return model.cpu().eval(), history, result


def train_with_fit(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, epochs: int = 3,
                   batch_size: int = 64, lr: float = 1e-3, seed: int = 0) -> list[float]:
    """Train the classifier ``model`` on ``images`` (N, ...) and ``labels`` (N,) with :func:`~mmcourse.train.fit`
    (Adam, batches shuffled by ``seed``, cross-entropy) where the tensors are; return each epoch's mean training
    loss. Lesson 00's build writes this loop by hand and is checked against it."""
    history = fit(model, {"image": images, "label": labels}, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                  device=images.device, progress=False)
    return history.train_loss


@functools.lru_cache(maxsize=1)
def _av_digits(seed: int):
    from ..data import load_av_digits

    return load_av_digits(seed=seed)


def shuffled_label_control(control: Callable, seed: int = 0, epochs: int = 10) -> dict[str, float]:
    """Train the image model of :func:`train_image_model` on AV-Digits' training images with the labels that
    ``control(labels, generator)`` returns ((N,) -> (N,): the same labels in another order, else a ``ValueError``),
    and measure its test accuracy on the true test labels ("shuffled"), its accuracy under the best one-to-one
    renaming of its classes ("renamed": a consistent relabelling keeps the pairing and scores high there), and the
    fraction of training labels the control left in place ("unchanged").

    A permutation test (Ojala and Garriga 2010, "Permutation tests for studying classifier performance", JMLR):
    with the pairing of images and labels broken, whatever the model fits cannot carry over to new images, so a
    test accuracy well above chance would mean a leak. Zhang et al. 2017 (https://arxiv.org/abs/1611.03530) drew
    random labels instead, to show that large networks memorise them.
    """
    from ..data.util import as_tensors

    av = _av_digits(seed)
    train = as_tensors(av["train"], ["image", "label"])
    labels = train["label"]
    new = control(labels.clone(), torch.Generator().manual_seed(seed))
    if not isinstance(new, torch.Tensor) or new.shape != labels.shape or new.is_floating_point() \
            or int(new.min()) < 0 or int(new.max()) > 9:
        got = f"shape {tuple(new.shape)}, dtype {new.dtype}" if isinstance(new, torch.Tensor) else type(new).__name__
        raise ValueError(f"control: expected labels of shape {tuple(labels.shape)}, integers 0-9, got {got}")
    counts, new_counts = torch.bincount(labels, minlength=10), torch.bincount(new.long(), minlength=10)
    if not torch.equal(counts, new_counts):
        raise ValueError(f"control: expected the same labels in another order (each digit as often as before: "
                         f"{counts.tolist()}), got counts {new_counts.tolist()}")
    seed_everything(seed)
    model = nn.Sequential(ImageEncoder(out_dim=64), nn.Linear(64, 10))
    fit(model, {"image": train["image"], "label": new.long()}, epochs=epochs, seed=seed, progress=False)
    test = as_tensors(av["test"], ["image", "label"])
    predicted = predict(model, test, ["image"]).argmax(dim=1)
    return {"shuffled": float((predicted == test["label"]).float().mean()),
            "renamed": best_renaming_accuracy(predicted, test["label"]),
            "unchanged": float((new == labels).float().mean())}


def best_renaming_accuracy(predicted: torch.Tensor, labels: torch.Tensor, classes: int = 10) -> float:
    """Accuracy of ``predicted`` (N,) against ``labels`` (N,) under the one-to-one renaming of the predicted
    classes that agrees best (the Hungarian algorithm on the confusion matrix, as clustering accuracy is
    measured): a model trained on consistently renamed labels scores as well as it learned the digits."""
    from scipy.optimize import linear_sum_assignment

    confusion = torch.zeros(classes, classes, dtype=torch.long)
    confusion.index_put_((predicted.long().cpu(), labels.long().cpu()), torch.ones(len(labels), dtype=torch.long),
                         accumulate=True)
    rows, cols = linear_sum_assignment(confusion.numpy(), maximize=True)
    return float(confusion[rows, cols].sum()) / len(labels)


def shuffle_labels(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The shuffled-labels control: ``labels`` (N,) in a random order drawn with ``generator``."""
    return labels[torch.randperm(len(labels), generator=generator)]


def measure_claims(seed: int) -> dict[Claim, float]:
    """Load AV-Digits and train the image model for ``seed``, and once more on shuffled labels (the experiment
    exercise's correct attempt); return the quantity each claim tests."""
    from ..data import load_av_digits

    with torch.random.fork_rng():
        _, _, result = train_image_model(load_av_digits(seed=seed), seed, progress=False)
        control = shuffled_label_control(shuffle_labels, seed)
    return {IMAGE_MODEL_BEATS_CHANCE: result["accuracy"], IMAGE_MODEL_IMPERFECT: result["accuracy"],
            SHUFFLED_LABELS_AT_CHANCE: control["shuffled"], SHUFFLED_LABELS_NO_DIGITS: control["renamed"]}
