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


def correlation_bars(ax, values: dict, highlight: int | None = None, title: str = "") -> None:
    """Grouped bars of correlations per canonical component, e.g. ``{"train": r1, "held out": r2}``.

    Each value is a sequence (k,); component ``highlight`` (0-based) gets a grey background.
    """
    width = 0.8 / len(values)
    for j, (name, r) in enumerate(values.items()):
        r = torch.as_tensor(r, dtype=torch.float64).cpu().tolist()
        ax.bar([i + (j - (len(values) - 1) / 2) * width for i in range(len(r))], r, width, label=name)
    if highlight is not None:
        ax.axvspan(highlight - 0.45, highlight + 0.45, color="0.9", zorder=0)
    k = len(next(iter(values.values())))
    ax.set_xticks(range(k), [str(i + 1) for i in range(k)])
    ax.set_ylim(min(0.0, *(float(min(r)) for r in values.values())) - 0.02, 1.05)
    ax.set_xlabel("canonical component", fontsize=8)
    ax.set_ylabel("correlation", fontsize=8)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)


def canonical_pair(ax, u: torch.Tensor, v: torch.Tensor, labels: torch.Tensor | None = None, title: str = "",
                   names: list[str] | None = None) -> None:
    """Scatter one canonical pair: the projection of view x (``u``, (N,)) against that of view y (``v``).

    With integer ``labels`` (N,) the points are coloured by class (tab10), with a legend if ``names``.
    """
    u, v = torch.as_tensor(u).cpu().numpy(), torch.as_tensor(v).cpu().numpy()
    if labels is None:
        ax.scatter(u, v, s=6, alpha=0.5)
    else:
        labels = torch.as_tensor(labels).cpu()
        for c in labels.unique().tolist():
            at = (labels == c).numpy()
            ax.scatter(u[at], v[at], s=6, alpha=0.7, color=plt.cm.tab10(c % 10), label=names[c] if names else None)
        if names:
            ax.legend(fontsize=6, markerscale=2, ncol=2)
    ax.set_xlabel("x projection  $w_x^T x$", fontsize=8)
    ax.set_ylabel("y projection  $w_y^T y$", fontsize=8)
    ax.set_title(title, fontsize=9)


def two_views_with_directions(axes, x: torch.Tensor, y: torch.Tensor, w_x: torch.Tensor, w_y: torch.Tensor) -> None:
    """The 2-D picture of CCA: view x (N, 2) and view y (N, 2) with their first canonical directions.

    Each sample has the same colour in both panels (its position along ``w_x``), so you can see
    which points of x go with which points of y. ``w_x``, ``w_y``: (2,) directions.
    """
    x, y = torch.as_tensor(x).cpu(), torch.as_tensor(y).cpu()
    colour = ((x - x.mean(0)) @ torch.as_tensor(w_x, dtype=x.dtype).cpu()).numpy()
    for ax, data, w, name in ((axes[0], x, w_x, "x"), (axes[1], y, w_y, "y")):
        ax.scatter(data[:, 0].numpy(), data[:, 1].numpy(), c=colour, cmap="coolwarm", s=6)
        w = torch.as_tensor(w, dtype=data.dtype).cpu()
        w = 2.5 * data.std(0).max() * w / w.norm()
        centre = data.mean(0)
        ax.annotate("", (centre + w).tolist(), (centre - w).tolist(), arrowprops={"arrowstyle": "->", "lw": 2})
        ax.set_title(f"view {name}, arrow: $w_{name}$", fontsize=9)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xlabel(f"${name}_1$", fontsize=8)
        ax.set_ylabel(f"${name}_2$", fontsize=8)
