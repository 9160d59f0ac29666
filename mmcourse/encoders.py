"""Small encoders shared by the lessons: 8x8 digit images, log-mel spectrograms, token sequences.

Each maps one modality to an embedding h in R^d (``out_dim``) and trains in seconds on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn


def _check_input(name: str, x: torch.Tensor, shape: tuple) -> None:
    """Raise ValueError unless ``x`` is (B, *shape) with None entries free."""
    if x.ndim != len(shape) + 1 or any(s is not None and s != d for s, d in zip(shape, x.shape[1:])):
        expected = ", ".join("B" if s is None else str(s) for s in (None, *shape))
        raise ValueError(f"{name}: expected shape ({expected}), got {tuple(x.shape)}")


class ImageEncoder(nn.Module):
    """Two 3x3 convolutions and a linear map for 8x8 grey images.

    Shape: ``x`` (B, 1, 8, 8) -> (B, out_dim).
    """

    def __init__(self, out_dim: int = 64, channels: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 2c, 4, 4)
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
        self.net = nn.Sequential(
            nn.Conv2d(3, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, c, 16, 16)
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 2c, 8, 8)
            nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 2c, 4, 4)
            nn.Flatten(), nn.Linear(2 * c * 16, out_dim), nn.ReLU(),
        )
        self.out_dim = out_dim

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        _check_input("image", image, (3, 32, 32))
        return self.net(image)


class TokenEncoder(nn.Module):
    """Word embeddings and a GRU over a padded token sequence; the last real step is the embedding.

    Shape: ``tokens`` (B, L) int64 with ``pad_id`` after the real tokens -> (B, out_dim).
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
        states, _ = self.gru(self.embed(tokens))  # (B, L, out_dim)
        last = (tokens != self.pad_id).sum(1).clamp(min=1) - 1  # index of the last real token
        return states[torch.arange(len(tokens), device=tokens.device), last]


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
