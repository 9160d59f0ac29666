"""Autoencoders for several modalities: one shared code, and multimodal VAEs that combine the modalities'
posteriors by a product of experts (MVAE) or a mixture of experts (MMVAE).

Each modality has a *coder*: an encoder to a Gaussian posterior q_m(z | x^(m)) over a latent
z in R^D, a decoder from z to the parameters of p(x^(m) | z), and that likelihood. Two kinds cover
the course's data: :class:`VectorCoder` for real-valued arrays (images, spectrogram features;
Gaussian likelihood with a fixed scale) and :class:`TokenCoder` for a few categorical tokens
(a caption's attributes; one softmax per token). The models put coders together; each takes one
input per modality, ``None`` for a missing one, and returns a :class:`Generated`:

- :class:`BimodalAutoencoder` (Ngiam et al. 2011): a deterministic shared code, trained with
  modalities zeroed at random so that either input alone reconstructs both.
- :class:`MVAE` (Wu and Goodman 2018): the joint posterior is the product of the experts and the
  N(0, I) prior expert; trained on the joint ELBO plus the unimodal ELBOs.
- :class:`MMVAE` (Shi et al. 2019): the joint posterior is the mixture of the experts; trained on
  the stratified ELBO (one sample from each expert), or the importance-weighted bound.

Every model trains through :func:`mmcourse.train.fit` with ``step=lambda model, batch:
model.loss(batch["image"], batch["caption"])``.

References
----------
Ngiam, Khosla, Kim, Nam, Lee and Ng (2011), Multimodal Deep Learning, ICML,
https://people.csail.mit.edu/khosla/papers/icml2011_ngiam.pdf
Kingma and Welling (2014), Auto-Encoding Variational Bayes, https://arxiv.org/abs/1312.6114
Wu and Goodman (2018), Multimodal Generative Models for Scalable Weakly-Supervised Learning,
https://arxiv.org/abs/1802.05335
Shi, Siddharth, Paige and Torr (2019), Variational Mixture-of-Experts Autoencoders for Multi-Modal
Deep Generative Models, https://arxiv.org/abs/1911.03393
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .device import draw_device


class Gaussian(NamedTuple):
    """A diagonal Gaussian by its mean and log-variance, each (..., D)."""

    mu: torch.Tensor
    logvar: torch.Tensor


class Strata(NamedTuple):
    """What :func:`mixture_of_experts_sample` returns."""

    z: torch.Tensor  # (E, k, B, D): k samples from each of the E experts
    weight: torch.Tensor  # (E, B): each stratum's weight in the mixture (1 / number of experts present; 0 if missing)


class Generated(NamedTuple):
    """What every model of this module returns."""

    z: torch.Tensor  # (B, D) the code: a posterior sample (training) or the posterior mean (eval)
    mu: torch.Tensor  # (B, D) the posterior mean (the autoencoder's code)
    logvar: torch.Tensor | None  # (B, D) the posterior log-variance (moment-matched for a mixture); None: deterministic
    outputs: tuple  # one per modality, decoded from z: a mean image (B, ...) or token ids (B, J)


# ----------------------------------------------------------------------------- Gaussian building blocks
def _check_gaussian(mu, logvar, dims: int, names=("mu", "logvar")) -> None:
    if not isinstance(mu, torch.Tensor) or not isinstance(logvar, torch.Tensor) or mu.ndim != dims:
        shape = ("E, B, D" if dims == 3 else "B, D")
        raise ValueError(f"{names[0]}: expected a tensor of shape ({shape}), got "
                         f"{tuple(mu.shape) if isinstance(mu, torch.Tensor) else type(mu).__name__}")
    if logvar.shape != mu.shape:
        raise ValueError(f"{names[1]}: expected the shape of {names[0]} {tuple(mu.shape)}, got {tuple(logvar.shape)}")
    if mu.isnan().any() or logvar.isnan().any():
        raise ValueError(f"{names[0]}, {names[1]}: contain NaN")


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) in closed form, summed over the D latent dimensions.

    KL = 1/2 sum_d (sigma_d^2 + mu_d^2 - 1 - log sigma_d^2)  (Kingma and Welling 2014, appendix B).
    Shape: ``mu``, ``logvar`` (B, D) -> (B,).
    """
    _check_gaussian(mu, logvar, 2)
    return _kl(mu, logvar)


def _kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return 0.5 * (logvar.exp() + mu.pow(2) - 1 - logvar).sum(-1)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A sample z = mu + sigma * eps with eps ~ N(0, I) and sigma = exp(logvar / 2).

    The randomness sits in eps, outside the network, so gradients flow to ``mu`` and ``logvar``
    (the reparameterisation trick, Kingma and Welling 2014). Shape: ``mu``, ``logvar`` (..., D) -> (..., D).
    ``generator``: draws eps on its own device, which may differ from ``mu``'s (the CPU generator that
    :func:`~mmcourse.seed_everything` returns, with ``mu`` on a GPU: the CPU's eps, copied to the GPU).
    """
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype,
                      device=draw_device(generator, mu.device)).to(mu.device)
    return mu + (0.5 * logvar).exp() * eps


def product_of_experts(mu: torch.Tensor, logvar: torch.Tensor, mask: torch.Tensor | None = None) -> Gaussian:
    """The product of E Gaussian experts, which is Gaussian: precision-weighted mean, summed precisions.

    With precisions 1/sigma_i^2 = exp(-logvar_i): mu = (sum_i mu_i / sigma_i^2) / (sum_i 1/sigma_i^2) and
    var = 1 / (sum_i 1/sigma_i^2), so the product is sharper than every expert and leans towards the
    most certain one. It combines exactly the experts it is given; :class:`MVAE` adds the N(0, I) prior
    expert (Wu and Goodman 2018).
    ``mask`` leaves out the experts missing for a sample (every sample needs at least one).

    Shape: ``mu``, ``logvar`` (E, B, D); ``mask`` (E, B) bool, True where the expert is present ->
    :class:`Gaussian` (mu (B, D), logvar (B, D)).
    """
    _check_gaussian(mu, logvar, 3)
    precision_logits = -logvar  # log(1/sigma_i^2)
    if mask is not None:
        if mask.shape != mu.shape[:2] or mask.dtype != torch.bool:
            raise ValueError(f"mask: expected a bool tensor of shape {tuple(mu.shape[:2])}, got {mask.dtype} "
                             f"{tuple(mask.shape)}")
        if not mask.any(0).all():
            raise ValueError(f"mask: every sample needs at least one expert; samples "
                             f"{(~mask.any(0)).nonzero().flatten().tolist()[:5]} have none")
        precision_logits = precision_logits.masked_fill(~mask[..., None], -math.inf)
    return _product(mu, precision_logits)


def _product(mu: torch.Tensor, precision_logits: torch.Tensor) -> Gaussian:
    """The product of experts from their means and log-precisions (-inf for a missing expert), unchecked."""
    weights = torch.softmax(precision_logits, dim=0)  # (1/sigma_i^2) / sum_j 1/sigma_j^2, computed stably
    return Gaussian((weights * mu).sum(0), -torch.logsumexp(precision_logits, dim=0))


def mixture_of_experts_sample(mu: torch.Tensor, logvar: torch.Tensor, mask: torch.Tensor | None = None, k: int = 1,
                              generator: torch.Generator | None = None) -> Strata:
    """Stratified samples of the mixture (1/E) sum_i q_i: ``k`` reparameterised samples from *each* expert.

    An expectation under the mixture is the weighted sum of expectations under each expert,
    E_q[f] = sum_i w_i E_{q_i}[f] with w_i = 1/E; sampling every expert (each stratum) instead of
    picking experts at random removes the variance of the pick (Shi et al. 2019). ``mask`` drops
    the experts missing for a sample; the weights are then 1 / (number present).

    Shape: ``mu``, ``logvar`` (E, B, D); ``mask`` (E, B) bool -> :class:`Strata` (z (E, k, B, D), weight (E, B)).
    """
    _check_gaussian(mu, logvar, 3)
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k: expected a positive number of samples per expert, got {k!r}")
    if mask is None:
        mask = torch.ones(mu.shape[:2], dtype=torch.bool, device=mu.device)
    elif mask.shape != mu.shape[:2] or mask.dtype != torch.bool or not mask.any(0).all():
        raise ValueError(f"mask: expected a bool tensor of shape {tuple(mu.shape[:2])} with an expert for every "
                         f"sample, got {mask.dtype} {tuple(mask.shape)}")
    z = reparameterize(mu[:, None].expand(-1, k, -1, -1), logvar[:, None].expand(-1, k, -1, -1), generator)
    weight = mask.to(mu.dtype) / mask.sum(0, keepdim=True).to(mu.dtype)
    return Strata(z, weight)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over the last dimension. Shapes broadcast: (..., D) -> (...)."""
    return -0.5 * (((z - mu) ** 2) * (-logvar).exp() + logvar + math.log(2 * math.pi)).sum(-1)


def _check_present(present: torch.Tensor | None, modalities: int, batch: int) -> None:
    if present is not None and (present.shape != (modalities, batch) or present.dtype != torch.bool):
        raise ValueError(f"present: expected a bool tensor of shape ({modalities}, {batch}), got "
                         f"{getattr(present, 'dtype', None)} {tuple(getattr(present, 'shape', ()))}")


# ----------------------------------------------------------------------------- coders: one per modality
class Coder(nn.Module, ABC):
    """Encoder, decoder and likelihood of one modality; subclasses say how to read and write it.

    ``features(x)`` (B, hidden) is the encoder's first layer (``x=None`` encodes the all-zero input, which is
    how :class:`BimodalAutoencoder` marks a missing modality); ``encode(x)`` gives the Gaussian
    posterior q(z | x); ``decode(z)`` the likelihood's parameters; ``log_likelihood(x, params)``
    log p(x | z) per sample, times ``weight`` (the likelihood scaling that balances the modalities);
    ``to_data(params)`` the most likely x.

    The layers are built once, in this order: ``body`` (``in_dim`` -> ``hidden``, from :meth:`_body`, which
    a subclass may override), ``to_gaussian`` (``hidden`` -> 2 D) and ``decoder`` (D -> ``hidden`` ->
    ``out_dim``), where ``in_dim`` and ``out_dim`` are the sizes of the encoder's input and of the
    decoder's output, whatever the subclass reads and writes.
    """

    def __init__(self, in_dim: int, out_dim: int, latent_dim: int, hidden: int, weight: float) -> None:
        super().__init__()
        for name, value in (("latent_dim", latent_dim), ("hidden", hidden)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if not isinstance(weight, (int, float)) or not weight > 0:
            raise ValueError(f"weight: expected a positive likelihood scaling, got {weight!r}")
        self.in_dim, self.latent_dim, self.hidden, self.weight = in_dim, latent_dim, hidden, float(weight)
        self.body = self._body(in_dim, hidden)
        self.to_gaussian = nn.Linear(hidden, 2 * latent_dim)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    def _body(self, in_dim: int, hidden: int) -> nn.Module:
        """The encoder's first layer, (B, in_dim) -> (B, hidden): a linear layer and a ReLU."""
        return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU())

    @abstractmethod
    def check(self, x, name: str) -> None:
        """Raise ``ValueError`` naming ``name`` unless ``x`` is a batch of this modality."""

    @abstractmethod
    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's input: ``x`` as (B, in_dim)."""

    def features(self, x: torch.Tensor | None, batch: int | None = None) -> torch.Tensor:
        """The encoder's hidden layer (B, hidden); ``x=None`` encodes ``batch`` all-zero inputs."""
        if x is None:
            return self.body(torch.zeros(batch, self.in_dim, device=self.to_gaussian.weight.device))
        return self.body(self._flat(x))

    def encode(self, x: torch.Tensor) -> Gaussian:
        """The posterior q(z | x) of this modality alone. Shape: x (B, ...) -> (mu (B, D), logvar (B, D))."""
        mu, logvar = self.to_gaussian(self.features(x)).chunk(2, dim=-1)
        return Gaussian(mu, logvar)

    @abstractmethod
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's output for codes ``z`` (B, latent_dim): this modality's likelihood parameters."""


class VectorCoder(Coder):
    """A real-valued array of fixed shape (an image, spectrogram features) with a Gaussian likelihood.

    p(x | z) = N(x; g(z), scale^2 I): log p is minus the squared error over 2 scale^2 (plus a
    constant), so ``scale`` says how much a reconstruction error of one unit costs. Encoder and
    decoder are perceptrons with one hidden layer.

    Shape: ``x`` (B, *shape) -> ``encode`` (B, D) twice; ``decode(z)`` (B, D) -> mean (B, *shape).
    """

    def __init__(self, shape: Sequence[int], latent_dim: int = 16, hidden: int = 128, scale: float = 0.1,
                 weight: float = 1.0) -> None:
        shape = tuple(shape)
        if not shape or not all(isinstance(s, int) and s > 0 for s in shape):
            raise ValueError(f"shape: expected positive sizes, got {shape!r}")
        if not isinstance(scale, (int, float)) or not scale > 0:
            raise ValueError(f"scale: expected a positive standard deviation, got {scale!r}")
        super().__init__(*self._sizes(shape), latent_dim, hidden, weight)
        self.shape, self.scale = shape, float(scale)

    def _sizes(self, shape: tuple) -> tuple[int, int]:
        """The encoder's input size and the decoder's output size: every number of the array, both."""
        n = math.prod(shape)
        return n, n

    def check(self, x, name: str) -> None:
        """ValueError unless ``x`` is a float tensor (B, *shape) without NaN."""
        if not isinstance(x, torch.Tensor) or x.ndim != len(self.shape) + 1 or tuple(x.shape[1:]) != self.shape:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name}: expected shape (B, {', '.join(map(str, self.shape))}), got {got}")
        if not x.is_floating_point() or x.isnan().any():
            raise ValueError(f"{name}: expected floating-point numbers without NaN, got {x.dtype}"
                             + (" with NaN" if x.is_floating_point() else ""))

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The mean g(z) of p(x | z). Shape: (B, D) -> (B, *shape)."""
        return self.decoder(z).view(-1, *self.shape)

    def log_likelihood(self, x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """weight * log N(x; mean, scale^2 I), summed over the array. Shape: (B, *shape) twice -> (B,)."""
        n = x[0].numel()
        squared = (x - mean).pow(2).flatten(1).sum(1)
        return self.weight * (-0.5 * squared / self.scale**2 - n * math.log(self.scale * math.sqrt(2 * math.pi)))

    def to_data(self, mean: torch.Tensor) -> torch.Tensor:
        """The most likely x: the mean itself."""
        return mean


class TokenCoder(Coder):
    """A fixed number J of categorical tokens, token j taking one of ``sizes[j]`` values (a caption's
    size, colour, shape and position words).

    The encoder adds up one learned embedding per token (a linear map of the concatenated one-hot
    codes: a bag of attribute tokens), so a combination never seen in training, "red" with
    "triangle", still gets a code, the sum of its parts'. The decoder gives one softmax per token,
    and log p(x | z) is the sum of the J log-probabilities of the true tokens.

    Shape: ``x`` (B, J) int64 -> ``encode`` (B, D) twice; ``decode(z)`` (B, D) -> logits (B, sum(sizes)).
    """

    def __init__(self, sizes: Sequence[int], latent_dim: int = 16, hidden: int = 64, weight: float = 1.0) -> None:
        sizes = tuple(sizes)
        if not sizes or not all(isinstance(s, int) and s > 1 for s in sizes):
            raise ValueError(f"sizes: expected the number of values of each token (each > 1), got {sizes!r}")
        super().__init__(sum(sizes), sum(sizes), latent_dim, hidden, weight)
        self.sizes = sizes

    def _body(self, in_dim: int, hidden: int) -> nn.Module:
        """A linear layer without a non-linearity: each token adds its own embedding."""
        return nn.Linear(in_dim, hidden)

    def check(self, x, name: str) -> None:
        """ValueError unless ``x`` is an integer tensor (B, J) with token j in [0, sizes[j])."""
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != len(self.sizes):
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name}: expected token ids of shape (B, {len(self.sizes)}), got {got}")
        if x.is_floating_point() or x.dtype == torch.bool:
            raise ValueError(f"{name}: expected integer token ids, got {x.dtype}")
        if len(x) and ((x < 0).any() or (x >= torch.tensor(self.sizes, device=x.device)).any()):
            raise ValueError(f"{name}: expected token j in [0, {list(self.sizes)}[j]), got values from "
                             f"{int(x.min())} to {int(x.max())}")

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.one_hot(x[:, j], n) for j, n in enumerate(self.sizes)], dim=1).float()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits of every token's values, concatenated. Shape: (B, D) -> (B, sum(sizes))."""
        return self.decoder(z)

    def log_likelihood(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """weight * sum_j log softmax(logits_j)[x_j]. Shape: x (B, J), logits (B, sum(sizes)) -> (B,)."""
        parts = logits.split(self.sizes, dim=1)
        return self.weight * sum(-F.cross_entropy(p, x[:, j], reduction="none") for j, p in enumerate(parts))

    def to_data(self, logits: torch.Tensor) -> torch.Tensor:
        """The most likely value of every token. Shape: (B, sum(sizes)) -> (B, J) int64."""
        return torch.stack([p.argmax(1) for p in logits.split(self.sizes, dim=1)], dim=1)


class SceneCoder(VectorCoder):
    """A Shapes scene with one object (3, size, size), with a decoder that draws *where*, *what* and *which colour*.

    The decoder gives three things from z: a softmax over the 3 x 3 cells of the scene's grid
    (where), a small silhouette of ``kernel`` x ``kernel`` pixels (what) and one RGB colour; the
    silhouette is placed in the cells by those weights and painted in the colour on the
    background. One silhouette serves every cell and colour, so a tiny model learns to draw shapes
    in a few hundred steps; a perceptron over all pixels must learn every cell and colour apart.
    The encoder reads the same two things: which pixels differ from the background (the
    silhouette) and their mean colour. The likelihood is :class:`VectorCoder`'s Gaussian.

    Shape: ``x`` (B, 3, size, size) with size 16 (the scenes averaged over 2 x 2 pixels) or 32 ->
    ``decode(z)`` (B, 3, size, size).
    """

    def __init__(self, size: int = 16, latent_dim: int = 16, hidden: int = 128, scale: float = 0.1,
                 weight: float = 1.0, background=(0.08, 0.08, 0.08)) -> None:
        if size not in (16, 32):
            raise ValueError(f"size: expected 16 or 32 pixels, got {size!r}")
        self.kernel = 3 * size // 8  # 6 or 12 pixels: a cell and a margin (set first: _sizes reads it)
        super().__init__((3, size, size), latent_dim, hidden, scale, weight)
        self.stride = (size - self.kernel) // 2  # 5 or 10: three overlapping windows cover the scene
        self.register_buffer("background", torch.tensor(background, dtype=torch.float32).view(1, 3, 1, 1))
        # place[c, k, p] = 1 where pixel k of the silhouette lands on pixel p of the scene in cell c (row by row)
        windows = F.unfold(torch.arange(size * size, dtype=torch.float32).view(1, 1, size, size), self.kernel,
                           stride=self.stride)[0].long()  # (kernel^2, 9): the scene pixel under each window pixel
        place = torch.zeros(9, self.kernel**2, size * size)
        place[torch.arange(9)[:, None], torch.arange(self.kernel**2)[None, :], windows.T] = 1.0
        self.register_buffer("place", place, persistent=False)

    def _sizes(self, shape: tuple) -> tuple[int, int]:
        """The encoder reads the silhouette (size^2) and the mean colour (3); the decoder writes the 9
        cells' logits, the silhouette (kernel^2) and the colour (3)."""
        return shape[1] * shape[2] + 3, 9 + self.kernel**2 + 3

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        silhouette = (x - self.background).abs().amax(1).flatten(1)  # (B, size^2): how far from the background
        weights = silhouette / silhouette.sum(1, keepdim=True).clamp_min(1e-6)
        colour = (x.flatten(2) * weights[:, None]).sum(2)  # (B, 3): the object's mean colour
        return torch.cat([silhouette, colour], dim=1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The mean image: background + mask * (colour - background). Shape: (B, D) -> (B, 3, size, size)."""
        out = self.decoder(z)
        where = torch.softmax(out[:, :9], dim=1)  # (B, 9) cells, row by row
        what = torch.sigmoid(out[:, 9:-3])  # (B, kernel^2) the silhouette
        colour = torch.sigmoid(out[:, -3:])[:, :, None, None]  # (B, 3, 1, 1)
        blocks = (where[:, :, None] * what[:, None, :]).flatten(1)  # (B, 9 kernel^2): the silhouette in each cell
        mask = (blocks @ self.place.flatten(0, 1)).view(-1, 1, *self.shape[1:])  # summed where windows overlap
        return self.background + mask * (colour - self.background)


# ----------------------------------------------------------------------------- the models
class _MultimodalModel(nn.Module):
    """Shared parts: the coders, checking inputs, decoding and generating."""

    def __init__(self, coders: Sequence[Coder]) -> None:
        super().__init__()
        coders = list(coders)
        if len(coders) < 2 or not all(isinstance(c, Coder) for c in coders):
            raise ValueError(f"coders: expected two or more Coder modules (one per modality), got {coders!r:.80}")
        dims = {c.latent_dim for c in coders}
        if len(dims) != 1:
            raise ValueError(f"coders: expected one latent size D for every coder, got {sorted(dims)}")
        self.coders = nn.ModuleList(coders)
        self.latent_dim = dims.pop()

    def _check(self, xs) -> int:
        """The batch size B of the given inputs; ValueError on a wrong count, none given, bad shapes, NaN."""
        if len(xs) != len(self.coders):
            raise ValueError(f"xs: expected {len(self.coders)} inputs (one per modality, None if missing), "
                             f"got {len(xs)}")
        given = [m for m, x in enumerate(xs) if x is not None]
        if not given:
            raise ValueError("xs: every modality is None; give at least one")
        for m in given:
            self.coders[m].check(xs[m], f"xs[{m}]")
        sizes = [len(xs[m]) for m in given]
        if len(set(sizes)) > 1 or sizes[0] == 0:
            raise ValueError(f"xs: expected one non-zero batch size for every modality given, got {sizes}")
        return sizes[0]

    def decode(self, z: torch.Tensor) -> tuple:
        """The most likely value of every modality given a code z (B, D): mean images, token ids."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z: expected shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        return tuple(c.to_data(c.decode(z)) for c in self.coders)

    def embed(self, *xs: torch.Tensor | None) -> torch.Tensor:
        """The code of each sample from the modalities given: the posterior mean (B, D)."""
        return self(*xs).mu

    @torch.no_grad()
    def generate(self, *xs: torch.Tensor | None, sample: bool = True) -> tuple:
        """Every modality decoded from the modalities given (in eval mode): cross-modal generation.

        With ``sample`` the code is drawn from the posterior, otherwise it is its mean.
        """
        was_training = self.training
        self.eval()
        out = self(*xs, sample=sample).outputs
        self.train(was_training)
        return out


class BimodalAutoencoder(_MultimodalModel):
    """A deterministic shared code for two or more modalities (Ngiam et al. 2011, "bimodal deep autoencoder").

    Each modality's encoder body gives h^(m); a linear layer maps the concatenation [h^(1); ...; h^(M)]
    to the code z in R^D, and every modality is decoded from z. A missing modality is fed as the
    all-zero input, as in the paper. Train with ``zero_rate > 0`` (the paper's trick): a fraction of
    the samples have one modality zeroed at random, and the loss asks for *both* to be
    reconstructed, so that either input alone gives a usable code.

    Shape: ``xs`` one (B, ...) tensor or None per modality -> :class:`Generated` (z = mu (B, D),
    logvar None, outputs).
    """

    def __init__(self, coders: Sequence[Coder], zero_rate: float = 0.5) -> None:
        super().__init__(coders)
        if not isinstance(zero_rate, (int, float)) or not 0 <= zero_rate <= 1:
            raise ValueError(f"zero_rate: expected a probability in [0, 1], got {zero_rate!r}")
        self.zero_rate = float(zero_rate)
        self.shared = nn.Linear(sum(c.hidden for c in self.coders), self.latent_dim)

    def code(self, *xs: torch.Tensor | None, present: torch.Tensor | None = None) -> torch.Tensor:
        """The shared code z (B, D). ``present`` (M, B) bool zeroes modality m of sample b where False."""
        batch = self._check(xs)
        _check_present(present, len(self.coders), batch)
        hs = []
        for m, (coder, x) in enumerate(zip(self.coders, xs)):
            h = coder.features(x, batch)
            if present is not None and x is not None:
                h = torch.where(present[m, :, None], h, coder.features(None, batch))
            hs.append(h)
        return self.shared(torch.cat(hs, dim=1))

    def forward(self, *xs: torch.Tensor | None, sample: bool | None = None) -> Generated:
        """Code and decode; ``sample`` is ignored (the code is deterministic)."""
        z = self.code(*xs)
        return Generated(z, z, None, self.decode(z))

    def loss(self, *xs: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of minus the summed log-likelihoods of every modality given, from a code
        where (in training mode) a fraction ``zero_rate`` of the samples lost one modality at random."""
        batch = self._check(xs)
        present = None
        if self.training and self.zero_rate > 0 and all(x is not None for x in xs):
            device = self.shared.weight.device
            drop = torch.rand(batch, device=device) < self.zero_rate
            which = torch.randint(len(xs), (batch,), device=device)
            present = ~(drop[None] & (which[None] == torch.arange(len(xs), device=device)[:, None]))
        z = self.code(*xs, present=present)
        return -sum(c.log_likelihood(x, c.decode(z)) for c, x in zip(self.coders, xs) if x is not None).mean()


class _VAE(_MultimodalModel):
    """Shared parts of the two VAEs: experts, and the ELBO of one posterior."""

    def __init__(self, coders: Sequence[Coder], beta: float = 1.0) -> None:
        super().__init__(coders)
        if not isinstance(beta, (int, float)) or not beta >= 0:
            raise ValueError(f"beta: expected a weight >= 0 for the KL term, got {beta!r}")
        self.beta = float(beta)

    def experts(self, *xs: torch.Tensor | None) -> tuple[Gaussian, list[int]]:
        """The posteriors of the modalities given, stacked (mu (E, B, D), logvar (E, B, D)), and which
        modalities they are (E indices)."""
        self._check(xs)
        given = [m for m, x in enumerate(xs) if x is not None]
        posteriors = [self.coders[m].encode(xs[m]) for m in given]
        return Gaussian(torch.stack([p.mu for p in posteriors]), torch.stack([p.logvar for p in posteriors])), given

    def _reconstruction(self, xs, z: torch.Tensor, which) -> torch.Tensor:
        """sum over the modalities ``which`` of weight_m log p(x_m | z). Shape: z (B, D) -> (B,)."""
        return sum(self.coders[m].log_likelihood(xs[m], self.coders[m].decode(z)) for m in which)

    def _elbo(self, xs, posterior: Gaussian, which) -> torch.Tensor:
        """One-sample ELBO of ``which`` modalities under ``posterior``: E_q[log p(x | z)] - beta KL(q || p). (B,)."""
        z = reparameterize(*posterior)
        return self._reconstruction(xs, z, which) - self.beta * _kl(*posterior)


class MVAE(_VAE):
    """Multimodal VAE with a product of experts (Wu and Goodman 2018).

    q(z | x_S) is proportional to p(z) prod_{m in S} q_m(z | x^(m)): the N(0, I) prior expert times
    the experts of the modalities given, a Gaussian (:func:`product_of_experts`). A missing modality
    is simply left out of the product. The prior expert comes from the paper's factorisation: the
    exact posterior is prod_m p(z | x^(m)) / p(z)^(M-1), a quotient of Gaussians; writing each
    p(z | x^(m)) as q_m(z | x^(m)) p(z) cancels the quotient and leaves one prior among the experts.
    It adds precision 1 in every dimension: the product's mean moves towards 0 and its variance shrinks.
    The loss is minus the joint ELBO plus, with ``unimodal=True`` (the paper), minus the ELBO of each
    modality alone (reconstructing only itself), which teaches every expert to stand on its own.

    Shape: ``xs`` one (B, ...) tensor or None per modality -> :class:`Generated`.
    """

    def __init__(self, coders: Sequence[Coder], beta: float = 1.0, unimodal: bool = True) -> None:
        super().__init__(coders, beta)
        self.unimodal = bool(unimodal)

    @staticmethod
    def _with_prior(experts: Gaussian, subset: Sequence[int] | None = None) -> Gaussian:
        """The product of the N(0, I) prior expert and the experts ``subset`` (all by default), unchecked.
        Shape: experts (E, B, D) twice -> (mu (B, D), logvar (B, D))."""
        mu, logvar = (experts.mu, experts.logvar) if subset is None else (experts.mu[subset], experts.logvar[subset])
        prior = torch.zeros_like(mu[:1])  # N(0, I): mean 0, log-variance 0
        return _product(torch.cat([prior, mu]), -torch.cat([prior, logvar]))

    def posterior(self, *xs: torch.Tensor | None) -> Gaussian:
        """The product of the prior expert and the experts given: (mu (B, D), logvar (B, D))."""
        return self._with_prior(self.experts(*xs)[0])

    def forward(self, *xs: torch.Tensor | None, sample: bool | None = None) -> Generated:
        """The posterior of the modalities given, a code (sampled in training, else the mean), the decoded outputs."""
        q = self.posterior(*xs)
        sample = self.training if sample is None else sample
        z = reparameterize(*q) if sample else q.mu
        return Generated(z, q.mu, q.logvar, self.decode(z))

    def loss(self, *xs: torch.Tensor | None) -> torch.Tensor:
        """Minus (the joint ELBO + the unimodal ELBOs), averaged over the batch."""
        experts, given = self.experts(*xs)
        subsets = [list(range(len(given)))]
        if self.unimodal and len(given) > 1:
            subsets += [[e] for e in range(len(given))]
        total = 0.0
        for subset in subsets:  # indices into the experts given
            total = total + self._elbo(xs, self._with_prior(experts, subset), [given[e] for e in subset])
        return -total.mean()


class MMVAE(_VAE):
    """Multimodal VAE with a mixture of experts (Shi et al. 2019).

    q(z | x_S) = (1/|S|) sum_{m in S} q_m(z | x^(m)). The loss is minus the stratified ELBO: for
    each expert, a sample z_m ~ q_m decodes *every* modality given, so each unimodal posterior
    alone must explain all modalities; the KL is that of each expert to the prior (an upper bound
    on the mixture's, by convexity). With ``k > 1`` the loss is the importance-weighted bound with
    k samples per expert (the paper's IWAE objective, with the plain IWAE gradient).

    Shape: ``xs`` one (B, ...) tensor or None per modality -> :class:`Generated`; ``logvar`` is the
    log-variance of a Gaussian with the mixture's mean and variance (moment-matched).
    """

    def __init__(self, coders: Sequence[Coder], beta: float = 1.0, k: int = 1) -> None:
        super().__init__(coders, beta)
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k: expected a positive number of samples per expert, got {k!r}")
        self.k = k

    def forward(self, *xs: torch.Tensor | None, sample: bool | None = None) -> Generated:
        """A code from the mixture (one expert picked per sample, then a sample from it; in eval the
        mixture's mean) and every modality decoded."""
        experts, _ = self.experts(*xs)
        mu = experts.mu.mean(0)
        var = (experts.logvar.exp() + experts.mu.pow(2)).mean(0) - mu.pow(2)
        sample = self.training if sample is None else sample
        if sample:
            z = mixture_of_experts_sample(*experts).z[:, 0]  # (E, B, D)
            pick = torch.randint(len(z), (z.shape[1],), device=z.device)
            z = z[pick, torch.arange(z.shape[1], device=z.device)]
        else:
            z = mu
        return Generated(z, mu, var.clamp_min(1e-12).log(), self.decode(z))

    def loss(self, *xs: torch.Tensor | None) -> torch.Tensor:
        """Minus the stratified ELBO (k = 1) or the stratified importance-weighted bound, averaged over the batch."""
        experts, given = self.experts(*xs)
        strata = mixture_of_experts_sample(*experts, k=self.k)
        if self.k == 1:
            elbos = torch.stack([self._reconstruction(xs, strata.z[e, 0], given)
                                 - self.beta * _kl(experts.mu[e], experts.logvar[e])
                                 for e in range(len(given))])  # (E, B)
            return -(strata.weight * elbos).sum(0).mean()
        bounds = []
        for e in range(len(given)):
            z = strata.z[e]  # (k, B, D)
            log_q = torch.logsumexp(gaussian_log_density(z[None], experts.mu[:, None], experts.logvar[:, None]), 0) \
                - math.log(len(given))  # log of the mixture density, (k, B)
            log_p = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z))
            recon = torch.stack([self._reconstruction(xs, z[i], given) for i in range(self.k)])  # (k, B)
            log_w = recon + self.beta * (log_p - log_q)
            bounds.append(torch.logsumexp(log_w, 0) - math.log(self.k))
        return -(strata.weight * torch.stack(bounds)).sum(0).mean()


def squared_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||a - b||^2 per row. Shape: (B, D) twice -> (B,)."""
    return (a - b).pow(2).sum(-1)


def standardized_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||s(a) - s(b)||^2 per row, where s standardises each of the D dimensions over the batch.

    Its mean over the batch is 2 (B - 1) / B sum_d (1 - rho_d), with rho_d the correlation of
    dimension d of ``a`` and ``b`` across the batch: minimising it makes the two codes correlate,
    as CCA does (lesson 02), and shrinking the codes cannot meet it. Shape: (B, D) twice, B >= 2 -> (B,).
    """
    def standardize(z: torch.Tensor) -> torch.Tensor:
        return (z - z.mean(0)) / z.std(0).clamp_min(1e-6)

    return squared_distance(standardize(a), standardize(b))


class AlignedAutoencoders(_MultimodalModel):
    """One autoencoder per modality, and a term that pulls the two codes of a pair together.

    z_m is the mean of coder m's posterior, used as a deterministic code; each modality is decoded
    from its own code, and the loss adds ``weight`` times ``alignment(z_1, z_2)`` summed over the
    pairs of modalities: the correspondence autoencoder of Feng, Wang and Li (2014),
    https://doi.org/10.1145/2647868.2654902. Given some modalities, the code is the mean of theirs.

    Shape: ``xs`` one (B, ...) tensor or None per modality -> :class:`Generated` (logvar None).
    """

    def __init__(self, coders: Sequence[Coder], weight: float = 1.0, alignment=standardized_distance) -> None:
        super().__init__(coders)
        if not isinstance(weight, (int, float)) or not weight >= 0:
            raise ValueError(f"weight: expected a weight >= 0 for the alignment term, got {weight!r}")
        if not callable(alignment):
            raise ValueError(f"alignment: expected a function (z_1 (B, D), z_2 (B, D)) -> (B,), got {alignment!r}")
        self.weight, self.alignment = float(weight), alignment

    def codes(self, *xs: torch.Tensor | None) -> list:
        """Each modality's own code (B, D), None for a missing one."""
        self._check(xs)
        return [None if x is None else c.encode(x).mu for c, x in zip(self.coders, xs)]

    def forward(self, *xs: torch.Tensor | None, sample: bool | None = None) -> Generated:
        """The mean of the given modalities' codes, and every modality decoded from it (``sample`` is ignored)."""
        z = torch.stack([z for z in self.codes(*xs) if z is not None]).mean(0)
        return Generated(z, z, None, self.decode(z))

    def _aligned(self, zs: Sequence[torch.Tensor | None]) -> torch.Tensor | float:
        """``alignment`` summed over the pairs of the codes given (None: missing); 0 with one code. (B,)."""
        given = [z for z in zs if z is not None]
        return sum(self.alignment(given[i], given[j]) for i in range(len(given)) for j in range(i + 1, len(given)))

    def alignment_term(self, *xs: torch.Tensor) -> torch.Tensor:
        """The alignment term of the loss, per sample, summed over the pairs of modalities given. Shape: (B,)."""
        return self._aligned(self.codes(*xs))

    def loss(self, *xs: torch.Tensor | None) -> torch.Tensor:
        """Mean over the batch of minus each modality's log-likelihood from its own code, plus the alignment term."""
        zs = self.codes(*xs)
        recon = sum(c.log_likelihood(x, c.decode(z)) for c, x, z in zip(self.coders, xs, zs) if x is not None)
        return (-recon + self.weight * self._aligned(zs)).mean()


def vae_step(columns: Sequence[str]):
    """A ``step`` for :func:`mmcourse.train.fit`: ``model.loss(*[batch[c] for c in columns])``."""
    columns = list(columns)

    def step(model: nn.Module, batch: dict) -> torch.Tensor:
        return model.loss(*(batch[c] for c in columns))

    return step
