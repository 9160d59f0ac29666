"""Experiments of lesson 00 (welcome): the one training run whose result the lesson claims.

The claims are :class:`~mmcourse.claims.Claim` constants with their thresholds; the lesson checks
them on its seed-0 run and :func:`measure_claims` computes their quantities for any seed.
"""

from __future__ import annotations

import torch
from torch import nn

from ..claims import Claim
from ..device import seed_everything
from ..encoders import ImageEncoder
from ..train import History, evaluate, fit

IMAGE_MODEL_BEATS_CHANCE = Claim("the image model is far better than chance (0.1)",
                                 "test accuracy of the image model", ">=", 0.5)
IMAGE_MODEL_IMPERFECT = Claim("the image model is far from perfect on noisy, occluded digits",
                              "test accuracy of the image model", "<=", 0.9)


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


def measure_claims(seed: int) -> dict[Claim, float]:
    """Load AV-Digits and train the image model for ``seed``; return the quantity each claim tests."""
    from ..data import load_av_digits

    with torch.random.fork_rng():
        _, _, result = train_image_model(load_av_digits(seed=seed), seed, progress=False)
    return {IMAGE_MODEL_BEATS_CHANCE: result["accuracy"], IMAGE_MODEL_IMPERFECT: result["accuracy"]}
