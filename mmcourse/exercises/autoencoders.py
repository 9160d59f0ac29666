"""Exercises of lesson 05: the product of two Gaussian experts, the reparameterised sample and its KL,
and a VAE loss with a bug (find it)."""

from __future__ import annotations

import math

import torch

from . import Case, register


def _reference_product(mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor, logvar2: torch.Tensor):
    from ..autoencoders import product_of_experts

    return tuple(product_of_experts(torch.stack([mu1, mu2]), torch.stack([logvar1, logvar2])))


def _product_cases() -> list[Case]:
    g = torch.Generator().manual_seed(11)
    zero, one = torch.zeros(1, 1), torch.ones(1, 1)
    return [
        Case("N(0, 1) x N(2, 1): the mean is halfway, the variance halves", (zero, zero, 2 * one, zero)),
        Case("N(0, 1) x N(4, 1/4): the surer expert (precision 4) pulls the mean to 16/5",
             (zero, zero, 4 * one, math.log(0.25) * one)),
        Case("a batch of 5 samples with 3 latent dimensions", tuple(torch.randn(5, 3, generator=g) for _ in range(4))),
        Case("one expert almost certain (log-variance -20): the product follows it",
             (torch.randn(2, 4, generator=g), torch.full((2, 4), -20.0), torch.randn(2, 4, generator=g),
              torch.zeros(2, 4))),
    ]


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
PRODUCT_ELSEWHERE = ("mmcourse.autoencoders._product",)

UNBALANCED_LOSS = (
    "The bug: `mse_loss` averages the squared errors over every pixel of every sample, while `torch.sum` adds the "
    "KL over every latent dimension of every sample, so the two terms are weighed against each other wrongly: the "
    "reconstruction counts as many times too little as there are pixels, and the KL B times too much (B samples). "
    "Case 1 (one sample, one pixel, one dimension) passes because there every sum is also a mean; case 2 (64 "
    "pixels) catches the reconstruction, case 3 (8 samples) the KL. Out of balance, the KL wins: the posteriors "
    "are pushed onto the prior (posterior collapse: the code carries nothing about the input) and the decoder draws "
    "blurry averages. The fix: sum each sample's squared errors and KL, then average over the batch.")

register("product_of_two_experts", _reference_product, _product_cases, forbid=PRODUCT_ELSEWHERE)
register("sample_and_kl", _reference_sample_and_kl, _sample_cases, forbid=KL_ELSEWHERE)
register("negative_elbo", _reference_negative_elbo, _elbo_cases, explanation=UNBALANCED_LOSS, forbid=KL_ELSEWHERE)
