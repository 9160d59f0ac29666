"""Small encoders shared by the lessons: 8x8 digit images, log-mel spectrograms, token sequences,
and, for attention, Shapes images as patch grids and token sequences kept whole.

Each maps one modality to an embedding h in R^d (``out_dim``) and trains in seconds on a CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _check_input(name: str, x: torch.Tensor, shape: tuple) -> None:
    """Raise ValueError unless ``x`` is (B, *shape) with None entries free."""
    if x.ndim != len(shape) + 1 or any(s is not None and s != d for s, d in zip(shape, x.shape[1:])):
        expected = ", ".join("B" if s is None else str(s) for s in (None, *shape))
        raise ValueError(f"{name}: expected shape ({expected}), got {tuple(x.shape)}")


class MaxPool(nn.Module):
    """2 x 2 max pooling with stride 2, computed in channels-last memory layout.

    The same values and gradients as ``nn.MaxPool2d(2)`` (both keep the first maximum of each
    window), only faster on a CPU: PyTorch's pooling over the usual (B, C, H, W) layout handles one
    small map at a time (1.2 ms against 0.3 ms for a batch of 64 x 32 x 8 x 8 on one thread). The
    result is returned in the usual layout.

    Shape: ``x`` (B, C, H, W) -> (B, C, H // 2, W // 2).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x.contiguous(memory_format=torch.channels_last), 2).contiguous()


class ImageEncoder(nn.Module):
    """Two 3x3 convolutions and a linear map for 8x8 grey images.

    Shape: ``x`` (B, 1, 8, 8) -> (B, out_dim).
    """

    def __init__(self, out_dim: int = 64, channels: int = 16) -> None:
        super().__init__()
        # Pooling before the ReLU gives the same numbers, gradients included (a ReLU keeps the order of
        # the values it is given), and leaves the ReLU a quarter of the values: this encoder's forward
        # and backward pass about 10% faster (tests/test_fusion.py checks the numbers).
        self.net = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), MaxPool(), nn.ReLU(),  # (B, 2c, 4, 4)
            nn.Flatten(), nn.Linear(2 * channels * 16, out_dim), nn.ReLU(),
        )
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input("x", x, (1, 8, 8))
        return self.net(x)


class AudioEncoder(nn.Module):
    """A two-layer perceptron over a flattened log-mel spectrogram.

    AV-Digits clips are endpointed (each word starts at frame 0), so a perceptron that sees every
    time-frequency cell learns fast and well; a convolution would buy little here.

    Shape: ``x`` (B, 1, n_mels, frames) (AV-Digits: (B, 1, 32, 40)) -> (B, out_dim).
    """

    def __init__(self, out_dim: int = 64, n_mels: int = 32, frames: int = 40, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(n_mels * frames, hidden), nn.ReLU(), nn.Linear(hidden, out_dim), nn.ReLU()
        )
        self.shape = (1, n_mels, frames)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input("x", x, self.shape)
        return self.net(x)


class SceneEncoder(nn.Module):
    """Three 3x3 convolutions, each followed by 2x2 max pooling, and a linear map, for Shapes scenes.

    The 4x4 map left after pooling keeps coarse positions (the 3x3 grid of a scene), which a
    global average would throw away.

    Shape: ``image`` (B, 3, 32, 32) -> (B, out_dim).
    """

    def __init__(self, out_dim: int = 64, channels: int = 16) -> None:
        super().__init__()
        c = channels
        # Each pooling comes before its ReLU: the same numbers as the usual order, gradients included
        # (a ReLU keeps the order of values), and the ReLUs see a quarter of the values: the forward and
        # backward pass about a fifth faster.
        self.net = nn.Sequential(
            nn.Conv2d(3, c, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),  # (B, c, 16, 16)
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),  # (B, 2c, 8, 8)
            nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),  # (B, 2c, 4, 4)
            nn.Flatten(), nn.Linear(2 * c * 16, out_dim), nn.ReLU(),
        )
        self.out_dim = out_dim

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        _check_input("image", image, (3, 32, 32))
        # In channels-last memory layout (each pixel's channels side by side) PyTorch's CPU
        # convolutions and pooling train this encoder about 1.6 times faster; same maths, other rounding.
        return self.net(image.contiguous(memory_format=torch.channels_last))


class TokenEncoder(nn.Module):
    """Word embeddings and a GRU over a padded token sequence; the last real step is the embedding.

    Shape: ``tokens`` (B, T) int64 with ``pad_id`` after the real tokens -> (B, out_dim).
    """

    def __init__(self, vocab_size: int, out_dim: int = 64, embed_dim: int = 32, pad_id: int = 0) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.gru = nn.GRU(embed_dim, out_dim, batch_first=True)
        self.pad_id = pad_id
        self.out_dim = out_dim

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        _check_input("tokens", tokens, (None,))
        if tokens.is_floating_point():
            raise ValueError(f"tokens: expected integer token ids, got {tokens.dtype}")
        states, _ = self.gru(self.embed(tokens))  # (B, T, out_dim)
        last = (tokens != self.pad_id).sum(1).clamp(min=1) - 1  # index of the last real token
        return states[torch.arange(len(tokens), device=tokens.device), last]


class PatchEncoder(nn.Module):
    """A Shapes image as a grid of patch embeddings with learned positions, for attention.

    The image is cut into a grid of ``patch_size`` x ``patch_size`` cells, as in ViT (Dosovitskiy
    et al. 2021, "An Image is Worth 16x16 Words", https://arxiv.org/abs/2010.11929). Each patch
    embedding adds three parts:

    - *colour*: a linear map of the cell's mean colour;
    - *shape*: a linear map (a bank of learned templates) of the silhouette, which pixels differ
      from the background whatever their colour, in a window reaching ``context`` pixels beyond
      the cell on every side: a small cell alone cannot tell a circle's edge from a square's, and
      separating shape from colour lets a tiny model learn shapes from a few thousand scenes;
    - *position*: a learned embedding of the cell.

    The background colour is the median colour of each image's border (Shapes scenes have a plain
    background, and objects cover little of the border).
    Patches are numbered row by row: patch j is the cell at grid row ``j // g`` and column
    ``j % g``, with g = image_size / patch_size cells per side.

    Shape: ``image`` (B, 3, image_size, image_size) -> (B, g * g, out_dim).
    """

    def __init__(self, out_dim: int = 32, patch_size: int = 4, image_size: int = 32, context: int = 4,
                 threshold: float = 0.2) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"patch_size: expected a divisor of image_size={image_size}, got {patch_size}")
        self.grid, self.patch_size = image_size // patch_size, patch_size
        self.context, self.threshold = context, threshold
        window = patch_size + 2 * context
        self.colour = nn.Linear(3, out_dim)
        # One linear map applied to every window, i.e. a strided convolution (faster than unfolding).
        self.templates = nn.Conv2d(1, out_dim, window, stride=patch_size, padding=context)
        self.position = nn.Parameter(0.02 * torch.randn(self.grid * self.grid, out_dim))
        self.shape = (3, image_size, image_size)
        self.out_dim = out_dim

    def silhouette(self, image: torch.Tensor) -> torch.Tensor:
        """1.0 where a pixel's colour differs from the background. Shape: (B, 3, H, W) -> (B, 1, H, W)."""
        border = torch.cat([image[:, :, 0], image[:, :, -1], image[:, :, 1:-1, 0], image[:, :, 1:-1, -1]], dim=2)
        background = border.median(dim=2).values[:, :, None, None]  # (B, 3, 1, 1)
        return ((image - background).abs().amax(dim=1, keepdim=True) > self.threshold).float()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        _check_input("image", image, self.shape)
        colour = nn.functional.avg_pool2d(image, self.patch_size).flatten(2).transpose(1, 2)  # (B, g * g, 3)
        shape = self.templates(self.silhouette(image)).flatten(2).transpose(1, 2)  # (B, g * g, out_dim)
        return self.colour(colour) + shape + self.position


class TokenSequenceEncoder(nn.Module):
    """Word embeddings plus learned position embeddings, keeping the whole sequence, for attention.

    Unlike :class:`TokenEncoder` this returns one vector per token, and a padding mask that says
    which tokens are padding (True), in the convention of ``torch.nn.MultiheadAttention``'s
    ``key_padding_mask``.

    Shape: ``tokens`` (B, T) int64, T <= max_length -> (B, T, out_dim) and mask (B, T) bool.
    """

    def __init__(self, vocab_size: int, out_dim: int = 32, max_length: int = 32, pad_id: int = 0) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, out_dim, padding_idx=pad_id)
        with torch.no_grad():  # small, like the positions, so that what attention adds is not drowned out
            self.embed.weight.normal_(0, 0.02)
            self.embed.weight[pad_id] = 0
        self.position = nn.Parameter(0.02 * torch.randn(max_length, out_dim))
        self.pad_id, self.max_length, self.out_dim = pad_id, max_length, out_dim

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_input("tokens", tokens, (None,))
        if tokens.is_floating_point():
            raise ValueError(f"tokens: expected integer token ids, got {tokens.dtype}")
        if tokens.shape[1] > self.max_length:
            raise ValueError(f"tokens: expected at most max_length={self.max_length} tokens, got {tokens.shape[1]}")
        return self.embed(tokens) + self.position[: tokens.shape[1]], tokens == self.pad_id


class MLPEncoder(nn.Module):
    """A perceptron with ReLU hidden layers for flat feature vectors (two-view data, pooled features).

    Shape: ``x`` (B, in_dim) -> (B, out_dim). The last layer is linear (no ReLU), so the output
    can take any sign, as Deep CCA's projections need.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 64, layers: int = 2) -> None:
        super().__init__()
        sizes = [in_dim] + [hidden] * layers
        blocks = [m for a, b in zip(sizes[:-1], sizes[1:]) for m in (nn.Linear(a, b), nn.ReLU())]
        self.net = nn.Sequential(*blocks, nn.Linear(sizes[-1], out_dim))
        self.in_dim, self.out_dim = in_dim, out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input("x", x, (self.in_dim,))
        return self.net(x)
