"""Drawing helpers shared by the lessons (matplotlib, inline backend)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from .data.shapes import ANSWERS


def show_digit(ax, image: torch.Tensor, title: str = "") -> None:
    """Draw one 8x8 digit image (1, 8, 8)."""
    ax.imshow(image.squeeze(0).cpu().numpy(), cmap="gray_r")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def show_spectrogram(ax, spectrogram: torch.Tensor, title: str = "") -> None:
    """Draw a log-mel spectrogram (1, n_mels, frames) with time on x and mel band on y."""
    ax.imshow(spectrogram.squeeze(0).cpu().numpy(), origin="lower", aspect="auto", cmap="magma")
    ax.set_xlabel("frame (20 ms)", fontsize=8)
    ax.set_ylabel("mel band", fontsize=8)
    ax.set_title(title, fontsize=9)


def show_scene(ax, image: torch.Tensor, masks: torch.Tensor | None = None, highlight: int | None = None,
               title: str = "") -> None:
    """Draw a Shapes scene (3, H, W); outline its object masks (K, H, W), ``highlight`` in white."""
    ax.imshow(image.permute(1, 2, 0).clamp(0, 1).cpu().numpy())
    if masks is not None:
        for k, mask in enumerate(masks):
            if mask.any():
                colour = "white" if k == highlight else "0.6"
                width = 1.5 if k == highlight else 0.8
                ax.contour(mask.float().cpu().numpy(), levels=[0.5], colors=colour, linewidths=width)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def describe_scene(row: dict) -> str:
    """Caption, question and answer of a Shapes row, as text."""
    return f"caption:  {row['caption']}\nquestion: {row['question']}\nanswer:   {ANSWERS[int(row['answer_id'])]}"


def new_figure(width: float, height: float, ncols: int = 1, nrows: int = 1):
    """``plt.subplots`` with the course's defaults; remember to ``plt.close(fig)`` after showing."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    return fig, axes.ravel()
