"""Exercises of lesson 05: the reparameterised sample and its KL, a VAE loss with a bug (find it), the build (the
MVAE's loss and one training step) and the experiment (a KL weight beta that draws sharper digits)."""

from __future__ import annotations

import copy
import math

import torch

from ..experiments import autoencoders as experiments
from . import Case, register, register_experiment


def _reference_sample_and_kl(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor):
    from ..autoencoders import kl_to_standard_normal

    return mu + (0.5 * logvar).exp() * eps, kl_to_standard_normal(mu, logvar)


def _sample_cases() -> list[Case]:
    g = torch.Generator().manual_seed(12)
    return [
        Case("q = N(0, I): z = eps and the KL is 0", (torch.zeros(2, 3), torch.zeros(2, 3), torch.randn(2, 3,
                                                                                                          generator=g))),
        Case("variance 4 (logvar = log 4): sigma = 2 scales eps", (torch.zeros(1, 2), torch.full((1, 2), math.log(4.0)),
                                                                   torch.ones(1, 2))),
        Case("a batch of 6 samples, 5 dimensions", (torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g),
                                                   torch.randn(6, 5, generator=g))),
    ]


def _reference_negative_elbo(x: torch.Tensor, x_mean: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                             scale: float = 1.0) -> torch.Tensor:
    from ..autoencoders import kl_to_standard_normal

    reconstruction = (x - x_mean).pow(2).flatten(1).sum(1) / (2 * scale**2)  # (B,), summed over the pixels
    return (reconstruction + kl_to_standard_normal(mu, logvar)).mean()  # one number per sample, averaged


def _elbo_cases() -> list[Case]:
    g = torch.Generator().manual_seed(13)

    def case(description: str, batch: int, pixels: int, latent: int) -> Case:
        return Case(description, (torch.rand(batch, 1, pixels, generator=g), torch.rand(batch, 1, pixels, generator=g),
                                  torch.randn(batch, latent, generator=g), torch.randn(batch, latent, generator=g),
                                  0.5))

    return [
        # Neutral descriptions: a learner sees them on Run All, before trying; the explanation says the rest.
        case("one sample, one pixel, one latent dimension", 1, 1, 1),
        case("one sample, 64 pixels, one latent dimension", 1, 64, 1),
        case("8 samples, 64 pixels, 4 latent dimensions", 8, 64, 4),
    ]


# Besides the package's functions each reference calls (rejected by ``check`` itself), a solution may not call
# what does the same job one level down or in torch: the unchecked helpers behind them, and torch.distributions' KL.
KL_ELSEWHERE = ("mmcourse.autoencoders._kl", "torch.distributions.kl.kl_divergence",
                "torch.distributions.kl._kl_normal_normal")

UNBALANCED_LOSS = (
    "The bug: `mse_loss` averages the squared errors over every pixel of every sample, while `torch.sum` adds the "
    "KL over every latent dimension of every sample, so the two terms are weighed against each other wrongly: the "
    "reconstruction counts as many times too little as there are pixels, and the KL B times too much (B samples). "
    "Case 1 (one sample, one pixel, one dimension) passes because there every sum is also a mean; case 2 (64 "
    "pixels) catches the reconstruction, case 3 (8 samples) the KL. Out of balance, the KL wins: the posteriors "
    "are pushed onto the prior (posterior collapse: the code carries nothing about the input) and the decoder draws "
    "blurry averages. The fix: sum each sample's squared errors and KL, then average over the batch.")

register("sample_and_kl", _reference_sample_and_kl, _sample_cases, forbid=KL_ELSEWHERE)
register("negative_elbo", _reference_negative_elbo, _elbo_cases, explanation=UNBALANCED_LOSS, forbid=KL_ELSEWHERE)


# ----------------------------------------------------------------------------- the build: the MVAE's loss and step
def _seeded(seed: int, fn, *args):
    """``fn(*args)`` with torch's CPU generator seeded with ``seed``, and its state outside left as it was: a check
    in a notebook does not change the draws of the cells after it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return fn(*args)


def _reference_mvae_loss(model, xs: tuple, seed: int) -> torch.Tensor:
    return _seeded(seed, model.loss, *xs)  # the package's MVAE.loss, its noise drawn after seeding


def _drive_mvae_loss(cls, model, xs: tuple, seed: int):
    """The learner's class, built as the package's MVAE is (its coders, beta, unimodal) with the package model's
    weights, and its loss on the same batch from the same draws of the noise."""
    mine = cls(list(model.coders), beta=model.beta, unimodal=model.unimodal)
    mine.load_state_dict(model.state_dict())
    return _seeded(seed, mine.loss, *xs)


def _shapes_pair(batch: int, generator: torch.Generator, latent_dim: int = 5) -> tuple[list, tuple]:
    """A scene coder and a caption coder (the lesson's kinds, smaller), and a random batch of scenes and captions."""
    from ..autoencoders import SceneCoder, TokenCoder

    sizes = (3, 4, 3, 9)  # the caption's tokens: size, colour, shape, position
    coders = [SceneCoder(16, latent_dim, hidden=16, scale=0.1), TokenCoder(sizes, latent_dim, hidden=8, weight=10.0)]
    caption = torch.stack([torch.randint(n, (batch,), generator=generator) for n in sizes], dim=1)
    return coders, (torch.rand(batch, 3, 16, 16, generator=generator), caption)


def _digits_pair(batch: int, generator: torch.Generator, latent_dim: int = 3) -> tuple[list, tuple]:
    """Two vector coders (an 8 x 8 digit, a 16 x 10 spectrogram) and a random batch of both."""
    from ..autoencoders import VectorCoder

    coders = [VectorCoder((1, 8, 8), latent_dim, hidden=16, scale=0.3),
              VectorCoder((1, 16, 10), latent_dim, hidden=16, scale=0.5)]
    return coders, (torch.randn(batch, 1, 8, 8, generator=generator),
                    torch.randn(batch, 1, 16, 10, generator=generator))


def _mvae_cases() -> list[Case]:
    from ..autoencoders import MVAE

    g = torch.Generator().manual_seed(15)

    def case(description: str, pair, batch: int, **options) -> Case:
        coders, xs = pair(batch, g)
        return Case(description, (MVAE(coders, **options), xs, 100 + batch))

    return _seeded(15, lambda: [  # the coders' initial weights come from torch's generator
        case("one scene and its caption", _shapes_pair, 1),
        case("8 scenes and their captions", _shapes_pair, 8),
        case("8 digits and their spectrograms, a KL weight beta = 4", _digits_pair, 8, beta=4.0),
        case("8 digits and spectrograms, unimodal=False: the joint ELBO alone", _digits_pair, 8, unimodal=False),
    ])


def _reference_mvae_step(model, optimizer, batches: list, seed: int) -> dict:
    from ..experiments.autoencoders import mvae_step

    model, optimizer = copy.deepcopy((model, optimizer))  # the case's model stays as it was, for the next check
    losses = _seeded(seed, lambda: [mvae_step(model, batch, optimizer) for batch in batches])
    return {"losses": losses, **{name: p.detach() for name, p in model.named_parameters()}}


def _drive_mvae_step(step, model, optimizer, batches: list, seed: int) -> dict:
    """The learner's step, from the case's start (its own copy of the model and optimiser), once per batch."""
    losses = _seeded(seed, lambda: [step(model, batch, optimizer) for batch in batches])
    return {"losses": losses, **{name: p.detach() for name, p in model.named_parameters()}}


def _step_cases() -> list[Case]:
    from ..autoencoders import MVAE
    from ..train import SGD, Adam

    g = torch.Generator().manual_seed(16)

    def make() -> list[Case]:
        sgd, adam = MVAE(_digits_pair(1, g)[0]), MVAE(_digits_pair(1, g)[0], beta=0.5)
        first, second = _digits_pair(4, g)[1], _digits_pair(4, g)[1]
        return [Case("one step of plain gradient descent (lr 1e-3) on 4 digits and spectrograms",
                     (sgd, SGD(sgd.parameters(), lr=1e-3), [first], 21)),
                Case("two steps of Adam (lr 3e-3) in a row, on two batches",
                     (adam, Adam(adam.parameters(), lr=3e-3), [first, second], 22))]

    return _seeded(16, make)


# The package's own steps of the loss, which MVAE.loss calls (the check finds MVAE.loss itself by running it).
MVAE_ELSEWHERE = ("mmcourse.autoencoders.MVAE._with_prior", "mmcourse.autoencoders.MVAE.posterior",
                  "mmcourse.autoencoders._VAE._elbo", "mmcourse.autoencoders._VAE._reconstruction",
                  "mmcourse.autoencoders._VAE.experts", "mmcourse.autoencoders._product",
                  "mmcourse.autoencoders.product_of_experts", "mmcourse.autoencoders.reparameterize",
                  "mmcourse.autoencoders.kl_to_standard_normal", *KL_ELSEWHERE)

register("mvae_loss", _reference_mvae_loss, _mvae_cases, drive=_drive_mvae_loss, forbid=MVAE_ELSEWHERE)
register("mvae_step", _reference_mvae_step, _step_cases, drive=_drive_mvae_step,
         forbid=("mmcourse.autoencoders.vae_step",))


# ----------------------------------------------------------------------------- the experiment: the KL weight
def _run_kl_weight(attempt, seed: int) -> dict[str, float]:
    return experiments.kl_weight_run(attempt(), seed)  # the learner's attempt returns the KL weight beta


register_experiment("kl_weight", _run_kl_weight,
                    {"sharpness ratio": experiments.KL_WEIGHT_SHARPER,
                     "coherence gain": experiments.KL_WEIGHT_COHERENT},
                    question="how much sharper your beta draws digits from speech than beta = 1 (a ratio; 1 is none)",
                    predicted="sharpness ratio", reference=lambda: experiments.KL_WEIGHT_REFERENCE)
