"""Contrastive learning of a shared space: the CLIP loss, a dual encoder, zero-shot classification, NDCG.

Two encoders map their modality into one space of unit vectors, so that a matching pair (an
image and its caption, a digit image and a spoken digit) lands close together and the other
pairs of a batch land apart. For a batch of B pairs the similarities form a B x B matrix whose
diagonal holds the matching pairs; the loss is a cross-entropy that picks the diagonal, row by
row (image -> text) and column by column (text -> image):

    logits = exp(s) * normalize(h_img) @ normalize(h_txt)^T,      (B, B)
    loss = (CE(logits, diagonal) + CE(logits^T, diagonal)) / 2,

with a learned temperature tau = 1 / exp(s), s initialised to log(1 / 0.07), as in CLIP, and clamped
to [0, log(100)] after every optimiser step, as OpenCLIP's training code does (the CLIP paper says only
that the scale is clipped at 100; OpenAI's released code has no training loop). After training, a
caption retrieves images (and an image captions) by cosine similarity, and class prompts ("a red
triangle") give a classifier for classes never trained on.

References
----------
Frome et al. (2013), "DeViSE: A Deep Visual-Semantic Embedding Model", NeurIPS,
https://papers.nips.cc/paper/5204-devise-a-deep-visual-semantic-embedding-model
Oord, Li and Vinyals (2018), "Representation Learning with Contrastive Predictive Coding" (InfoNCE),
https://arxiv.org/abs/1807.03748
Faghri, Fleet, Kiros and Fidler (2018), "VSE++: Improving Visual-Semantic Embeddings with Hard
Negatives", BMVC, https://arxiv.org/abs/1707.05612
Radford et al. (2021), "Learning Transferable Visual Models From Natural Language Supervision" (CLIP),
https://arxiv.org/abs/2103.00020
Ilharco et al. (2021), OpenCLIP, https://github.com/mlfoundations/open_clip (src/training/train.py: the clamp)
Jia et al. (2021), "Scaling Up Visual and Vision-Language Representation Learning With Noisy Text
Supervision" (ALIGN), https://arxiv.org/abs/2102.05918
Järvelin and Kekäläinen (2002), "Cumulated gain-based evaluation of IR techniques", ACM TOIS 20(4),
https://doi.org/10.1145/582415.582418
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .encoders import PatchEncoder
from .train import History, fit

LOGIT_SCALE_INIT = math.log(1 / 0.07)  # CLIP's initial temperature 0.07
LOGIT_SCALE_MAX = math.log(100)  # CLIP clamps the scale exp(s) to at most 100


def _check_embeddings(name: str, x: torch.Tensor, rows: int | None = None, dim: int | None = None) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected a non-empty tensor of shape (B, d), got {got}")
    if rows is not None and x.shape[0] != rows or dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name}: expected shape ({rows}, {dim}), like image_emb, got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name}: contains NaN or infinite values; expected finite embeddings")


def _check_shapes(image_emb: torch.Tensor, text_emb: torch.Tensor) -> None:
    """The shape checks of :func:`_check_embeddings` for a pair, without reading any value back."""
    for name, x in (("image_emb", image_emb), ("text_emb", text_emb)):
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"{name}: expected a non-empty tensor of shape (B, d), got {tuple(x.shape)}")
    if text_emb.shape != image_emb.shape:
        raise ValueError(f"text_emb: expected shape {tuple(image_emb.shape)}, like image_emb, got "
                         f"{tuple(text_emb.shape)}")


def _scale_tensor(logit_scale, like: torch.Tensor) -> torch.Tensor:
    scale = logit_scale if isinstance(logit_scale, torch.Tensor) else torch.tensor(float(logit_scale))
    if scale.numel() != 1 or not torch.isfinite(scale).all():
        raise ValueError(f"logit_scale: expected one finite number (the log of the inverse temperature), "
                         f"got {logit_scale!r}")
    return scale.reshape(()).to(like.device, like.dtype)


def similarity(image_emb: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    """Cosine similarities of every image to every text: both L2-normalised, then multiplied.

    Shape: ``image_emb`` (B_i, d), ``text_emb`` (B_t, d) -> (B_i, B_t), values in [-1, 1].
    """
    _check_embeddings("image_emb", image_emb)
    _check_embeddings("text_emb", text_emb, dim=image_emb.shape[1])
    return F.normalize(image_emb, dim=1) @ F.normalize(text_emb, dim=1).T


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale) -> torch.Tensor:
    """The symmetric contrastive loss of CLIP (Radford et al. 2021) for a batch of B matching pairs.

    Both embeddings are L2-normalised; ``logits = exp(logit_scale) * image @ text.T``; row i must
    pick column i (image i -> its text) and column i must pick row i (text i -> its image). The loss
    is the mean of the two cross-entropies, each averaged over the batch. Every other item of the
    batch is a negative, so a larger batch gives each pair more to be told apart from.

    Shape: ``image_emb`` (B, d), ``text_emb`` (B, d), ``logit_scale`` a number or a 0-d tensor (the
    log of the inverse temperature, learned in :class:`DualEncoder`) -> a scalar.

    Checks: it is the same with the modalities swapped; on random embeddings it is about log B
    (every item equally likely); on matching embeddings with a large scale it is about 0.

    >>> round(clip_loss(torch.eye(4), torch.eye(4), math.log(100)).item(), 4)
    0.0
    """
    _check_embeddings("image_emb", image_emb)
    _check_embeddings("text_emb", text_emb, rows=image_emb.shape[0], dim=image_emb.shape[1])
    return _clip_loss(image_emb, text_emb, _scale_tensor(logit_scale, image_emb))


def _clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """:func:`clip_loss` without the checks of the values (finite embeddings, one finite scale): those read
    the tensors back to the host, a synchronisation that stalls a GPU at every training step. ``scale`` is
    s as a 0-d tensor on the embeddings' device and of their dtype. Shapes are the caller's to check."""
    logits = scale.exp() * (F.normalize(image_emb, dim=1) @ F.normalize(text_emb, dim=1).T)  # (B, B)
    targets = torch.arange(len(logits), device=logits.device)  # pair i sits on the diagonal
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


class DualOutput(NamedTuple):
    """What :class:`DualEncoder` returns: both embeddings, unit length, and the logit scale."""

    image: torch.Tensor  # (B, dim), L2-normalised
    text: torch.Tensor  # (B, dim), L2-normalised
    logit_scale: torch.Tensor  # 0-d: s, the log of the inverse temperature; logits = exp(s) * image @ text.T


class DualEncoder(nn.Module):
    """Two encoders and two linear projections into one space of unit vectors, as in CLIP.

    Parameters
    ----------
    image_encoder, text_encoder : nn.Module
        Map a batch of each modality to features (B, ...) -> (B, d_m); each needs an ``out_dim``
        attribute (the encoders of :mod:`mmcourse.encoders` have one). The "text" side can be any
        second modality (AV-Digits' spectrograms).
    dim : size of the shared space.
    temperature : tau = 1 / exp(s): the initial temperature of a learned s (CLIP: 0.07), from 0.01 to 1
        since a learned s is clamped to [0, log 100] after every step; or the temperature for good
        when it is fixed, from 0.01 to 1000 (a fixed s is never clamped).
    learn_temperature : whether s is a trained parameter (CLIP) or fixed.

    Shape: ``forward(image, text)`` -> :class:`DualOutput` (image (B, dim), text (B, dim), logit_scale ()).
    """

    def __init__(self, image_encoder: nn.Module, text_encoder: nn.Module, dim: int = 64, temperature: float = 0.07,
                 learn_temperature: bool = True) -> None:
        super().__init__()
        if not isinstance(dim, numbers.Integral) or dim < 1:
            raise ValueError(f"dim: expected an integer >= 1, got {dim!r}")
        if not isinstance(temperature, numbers.Real) or not 1 / 100 <= temperature <= 1e3:
            raise ValueError(f"temperature: expected a number from 0.01 to 1000 (exp(s) at most 100), "
                             f"got {temperature!r}")
        if learn_temperature and temperature > 1:
            raise ValueError(f"temperature: a learned temperature is clamped to [0.01, 1] after every step, so it "
                             f"must start there; got {temperature!r} (pass learn_temperature=False to fix it)")
        for name, encoder in (("image_encoder", image_encoder), ("text_encoder", text_encoder)):
            if not isinstance(getattr(encoder, "out_dim", None), numbers.Integral):
                raise ValueError(f"{name}: expected a module with an integer out_dim attribute, "
                                 f"got {type(encoder).__name__}")
        self.image_encoder, self.text_encoder = image_encoder, text_encoder
        self.image_projection = nn.Linear(image_encoder.out_dim, dim, bias=False)
        self.text_projection = nn.Linear(text_encoder.out_dim, dim, bias=False)
        scale = torch.tensor(math.log(1 / temperature))
        if learn_temperature:
            self.logit_scale = nn.Parameter(scale)
        else:
            self.register_buffer("logit_scale", scale)
        self.dim = int(dim)

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """Unit-length image embeddings: (B, ...) -> (B, dim)."""
        return F.normalize(self.image_projection(self.image_encoder(image)), dim=-1)

    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        """Unit-length text (second-modality) embeddings: (B, ...) -> (B, dim)."""
        return F.normalize(self.text_projection(self.text_encoder(text)), dim=-1)

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> DualOutput:
        return DualOutput(self.encode_image(image), self.encode_text(text), self.logit_scale)

    @property
    def temperature(self) -> float:
        """The current temperature tau = 1 / exp(s)."""
        return math.exp(-float(self.logit_scale.detach()))

    @torch.no_grad()
    def clamp_logit_scale_(self) -> None:
        """Clamp a learned s to [0, log 100] in place, as OpenCLIP's ``train.py`` does after every optimiser
        step (Radford et al. 2021 clip the scale at 100: larger made training unstable). A fixed s (a
        buffer) is left as it was set."""
        if isinstance(self.logit_scale, nn.Parameter):
            self.logit_scale.clamp_(0.0, LOGIT_SCALE_MAX)

    def fit(self, data, image: str = "image", text: str = "caption_ids", *, epochs: int = 10, batch_size: int = 128,
            lr: float = 2e-3, seed: int = 0, progress: bool = True, device=None,
            description: str = "dual encoder") -> History:
        """Train with :func:`clip_loss` through :func:`mmcourse.train.fit` on the columns ``image`` and ``text``.

        Batches are full (``drop_last``): every batch gives each pair ``batch_size - 1`` negatives.
        The step clamps a learned s before each forward pass, that is after the previous optimiser
        step, and once more after training (``fit`` has no hook after the optimiser step; clamping at
        the start of the next step is the same thing); a fixed s stays as it was set. The value of s
        at every step is kept in ``logit_scales_`` (a list of floats). Returns the :class:`~mmcourse.train.History`.
        """
        step = ContrastiveStep(image, text)
        history = fit(self, data, [image, text], None, step=step, epochs=epochs, batch_size=batch_size,
                      drop_last=True, lr=lr, seed=seed, device=device, progress=progress, description=description)
        self.clamp_logit_scale_()
        self.logit_scales_ = step.logit_scales + [float(self.logit_scale.detach())]
        return history


class PatchSetEncoder(nn.Module):
    """A Shapes scene as one vector: the same small network on every patch, then the largest value of
    each feature over the patches.

    Each patch embedding of :class:`~mmcourse.encoders.PatchEncoder` (its mean colour, silhouette
    templates and a learned position) goes through ReLU -> Linear -> ReLU; a max over the patches
    keeps, for every feature, the patch where it fires most, so the result does not depend on the
    order of the patches: a set encoder (Zaheer et al. 2017, "Deep Sets",
    https://arxiv.org/abs/1703.06114; Qi et al. 2017, "PointNet", https://arxiv.org/abs/1612.00593).
    A feature can still say where, because each patch carries its position. The weights are shared
    by all patches, so a colour or a shape learned at one place is known everywhere.

    Shape: ``image`` (B, 3, 32, 32) -> (B, out_dim).
    """

    def __init__(self, out_dim: int = 64, patch_dim: int = 16, hidden: int = 64, patch_size: int = 4) -> None:
        super().__init__()
        self.patches = PatchEncoder(patch_dim, patch_size)
        self.per_patch = nn.Sequential(nn.ReLU(), nn.Linear(patch_dim, hidden), nn.ReLU())
        self.linear = nn.Linear(hidden, out_dim)
        self.out_dim = out_dim

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.linear(self.per_patch(self.patches(image)).amax(dim=1))  # (B, P, hidden) -> (B, out_dim)


class ConvTextEncoder(nn.Module):
    """Word embeddings, one convolution over windows of ``kernel`` words, and a max over the windows
    (Kim 2014, "Convolutional Neural Networks for Sentence Classification", https://arxiv.org/abs/1408.5882).

    A window of 8 words spans one object's phrase of a Shapes caption ("a large red triangle at the
    top left"), so each feature can bind a colour to its shape and place; the max keeps the best
    window, wherever it is in the caption. Unlike the last state of a GRU, nothing has to be carried
    from the first words to the end, and it trains several times faster.

    Shape: ``tokens`` (B, T) int64 padded with ``pad_id`` -> (B, out_dim).
    """

    def __init__(self, vocab_size: int, out_dim: int = 64, embed_dim: int = 32, hidden: int = 64, kernel: int = 8,
                 pad_id: int = 0) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.conv = nn.Conv1d(embed_dim, hidden, kernel, padding=kernel - 1)  # windows overlapping either end too
        self.linear = nn.Linear(hidden, out_dim)
        self.out_dim = out_dim

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2 or tokens.is_floating_point():
            got = f"{tokens.dtype} {tuple(tokens.shape)}" if isinstance(tokens, torch.Tensor) else type(tokens).__name__
            raise ValueError(f"tokens: expected integer token ids of shape (B, L), got {got}")
        windows = torch.relu(self.conv(self.embed(tokens).transpose(1, 2)))  # (B, hidden, T + kernel - 1)
        return self.linear(windows.amax(dim=2))


class ContrastiveStep:
    """The ``step`` of :func:`mmcourse.train.fit` for a :class:`DualEncoder`: clamp s, then the CLIP loss.

    Calls ``model.clamp_logit_scale_()`` first (so s is clamped after each optimiser step) and
    records s at every training step in ``logit_scales``.
    """

    def __init__(self, image: str = "image", text: str = "caption_ids") -> None:
        self.image, self.text = image, text
        self._scales: list[torch.Tensor] = []  # 0-d copies of s, left on the model's device until read

    @property
    def logit_scales(self) -> list[float]:
        """s at every training step so far, as floats (read back from the device in one go)."""
        return torch.stack(self._scales).tolist() if self._scales else []

    def __call__(self, model: DualEncoder, batch: dict) -> torch.Tensor:
        model.clamp_logit_scale_()
        out = model(batch[self.image], batch[self.text])
        # No host synchronisation per step: s stays a tensor on the device (a copy: the optimiser and the
        # clamp change the parameter in place), the values of the embeddings are not checked (a NaN shows
        # in the loss), only the shapes.
        if model.training:
            self._scales.append(out.logit_scale.detach().clone())
        _check_shapes(out.image, out.text)
        scale = out.logit_scale.reshape(()).to(out.image.device, out.image.dtype)
        return _clip_loss(out.image, out.text, scale)


class ZeroShotClassifier(nn.Module):
    """Classify images by their most similar class prompt: the image side of a :class:`DualEncoder`
    and the class embeddings from :func:`zero_shot_classifier`, one unit vector per class (C, dim)
    or one per prompt of each class (C, P, dim), in which case a class scores as its best prompt.

    Shape: ``forward(image)`` (B, ...) -> scores (B, C): exp(s) times the cosine similarity of each
    image to each class; ``argmax(1)`` is the predicted class.
    """

    def __init__(self, model: DualEncoder, class_embeddings: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("class_embeddings", F.normalize(class_embeddings, dim=-1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        similarity = self.model.encode_image(image) @ self.class_embeddings.flatten(0, -2).T  # (B, C) or (B, C * P)
        if self.class_embeddings.ndim == 3:
            similarity = similarity.unflatten(1, self.class_embeddings.shape[:2]).amax(dim=2)
        return self.model.logit_scale.exp() * similarity


@torch.no_grad()
def zero_shot_classifier(model: DualEncoder, prompts: torch.Tensor, ensemble: str = "mean") -> ZeroShotClassifier:
    """A classifier for C classes named only by text: each class's prompts embedded by the text encoder.

    With several prompts per class (for example "a small red triangle at the top", "a large red
    triangle at the center" ...) there are two ways to combine them. ``ensemble="mean"``: the class
    embedding is the normalised mean of the prompts' unit embeddings, CLIP's prompt ensembling
    (Radford et al. 2021, section 3.1.4). ``ensemble="max"``: a class scores as its best-matching
    prompt, so an image gets the class of the one caption that describes it best. No image of any
    class is needed, so the classes may be ones the model never saw.

    Shape: ``prompts`` (C, T) or (C, P, T): the text encoder's input for one or P prompts per class
    -> a :class:`ZeroShotClassifier` with ``class_embeddings`` (C, dim) ("mean") or (C, P, dim) ("max").
    """
    if ensemble not in ("mean", "max"):
        raise ValueError(f"ensemble: expected 'mean' or 'max', got {ensemble!r}")
    if not isinstance(model, DualEncoder):
        raise ValueError(f"model: expected a DualEncoder, got {type(model).__name__}")
    if not isinstance(prompts, torch.Tensor) or prompts.ndim not in (2, 3) or 0 in prompts.shape:
        got = tuple(prompts.shape) if isinstance(prompts, torch.Tensor) else type(prompts).__name__
        raise ValueError(f"prompts: expected a non-empty tensor of shape (C, L) or (C, P, L), got {got}")
    flat = prompts if prompts.ndim == 2 else prompts.flatten(0, 1)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    embedded = model.encode_text(flat.to(device))  # (C * P, dim), unit length
    model.train(was_training)
    if prompts.ndim == 3:
        embedded = embedded.reshape(prompts.shape[0], prompts.shape[1], -1)
        if ensemble == "mean":
            embedded = embedded.mean(1)
    return ZeroShotClassifier(model, embedded)
