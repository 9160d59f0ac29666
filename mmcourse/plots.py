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


def method_bars(ax, values: dict, reference: float | None = None, ylabel: str = "accuracy", title: str = "",
                ylim: tuple = (0.0, 1.0)) -> None:
    """One bar per method, ``{name: value}``; a NaN value is drawn as "n/a" (the model has no input).

    ``reference`` draws a dashed horizontal line (for example chance level).
    """
    names = list(values)
    heights = [0.0 if v != v else v for v in values.values()]  # NaN -> 0
    colours = [plt.cm.tab10(i % 10) for i in range(len(names))]
    ax.bar(range(len(names)), heights, color=colours)
    for i, v in enumerate(values.values()):
        ax.text(i, (0.02 if v != v else v + 0.01), "n/a" if v != v else f"{v:.2f}", ha="center", fontsize=7)
    if reference is not None:
        ax.axhline(reference, color="0.4", linestyle="--", linewidth=0.8)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(*ylim)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9)


def accuracy_curves(ax, levels, curves: dict, xlabel: str, title: str = "", chance: float | None = None) -> None:
    """Accuracy of several methods against a corruption level: ``curves = {name: [value per level]}``."""
    for i, (name, values) in enumerate(curves.items()):
        style = "--" if name.endswith("only") else "-"
        ax.plot(list(levels), list(values), style, marker="o", markersize=3, color=plt.cm.tab10(i % 10), label=name)
    if chance is not None:
        ax.axhline(chance, color="0.6", linestyle=":", linewidth=0.8)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("test accuracy", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)


def modality_weights(ax, weights, names=("image", "audio"), title: str = "attention weights") -> None:
    """Horizontal bars of one sample's modality weights (they sum to one)."""
    weights = torch.as_tensor(weights).detach().cpu().tolist()
    ax.barh(range(len(weights)), weights, color=[plt.cm.tab10(i) for i in range(len(weights))])
    for i, w in enumerate(weights):
        ax.text(min(w + 0.02, 0.85), i, f"{w:.2f}", va="center", fontsize=8)
    ax.set_yticks(range(len(weights)), list(names), fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_title(title, fontsize=9)


def tensor_fusion_grid(ax, h1: torch.Tensor, h2: torch.Tensor, title: str = "") -> None:
    """Picture of the Tensor Fusion outer product [1, h1] x [1, h2] (h1: (d1,), h2: (d2,)).

    Row 0 holds [1, h2], column 0 holds [1, h1]: the unimodal terms; the rest are the products.
    """
    a = torch.cat([torch.ones(1), torch.as_tensor(h1, dtype=torch.float32).flatten().cpu()])
    b = torch.cat([torch.ones(1), torch.as_tensor(h2, dtype=torch.float32).flatten().cpu()])
    z = torch.outer(a, b)
    limit = float(z.abs().max())
    ax.imshow(z.numpy(), cmap="coolwarm", vmin=-limit, vmax=limit)
    ax.add_patch(plt.Rectangle((-0.5, -0.5), len(b), 1, fill=False, edgecolor="black", linewidth=1.5))
    ax.add_patch(plt.Rectangle((-0.5, -0.5), 1, len(a), fill=False, edgecolor="black", linewidth=1.5))
    ax.set_xticks([0, len(b) // 2], ["1", "$h^{(2)}$"], fontsize=8)
    ax.set_yticks([0, len(a) // 2], ["1", "$h^{(1)}$"], fontsize=8)
    ax.set_title(title, fontsize=9)


def fusion_diagram(axes) -> None:
    """Three schematic panels: early (concatenate, then learn), late (predict, then combine) and
    intermediate fusion (embed, weigh, combine). ``axes``: three matplotlib axes."""
    panels = [
        ("early fusion", [("image", "audio"), ("concatenate",), ("model",), ("y",)]),
        ("late fusion", [("image", "audio"), ("model 1", "model 2"), ("average\nlog p",), ("y",)]),
        ("intermediate fusion", [("image", "audio"), ("encoder 1", "encoder 2"), ("fuse\nh1, h2",), ("y",)]),
    ]
    style = {"boxstyle": "round,pad=0.3", "edgecolor": "0.5"}
    for ax, (title, columns) in zip(axes, panels):
        boxes = []
        for x, items in zip([0.08, 0.4, 0.7, 0.95], columns):
            ys = [0.72, 0.28] if len(items) == 2 else [0.5]
            boxes.append([ax.text(x, y, item, ha="center", va="center", fontsize=7,
                                  bbox={**style, "facecolor": "#cde" if not boxes else "0.93"})
                          for y, item in zip(ys, items)])
        for left, right in zip(boxes[:-1], boxes[1:]):
            for i, source in enumerate(left):
                target = right[i] if len(right) == len(left) else right[0]
                ax.annotate("", xy=(0, 0.5), xycoords=target, xytext=(1, 0.5), textcoords=source,
                            arrowprops={"arrowstyle": "->", "color": "0.3", "lw": 0.8, "shrinkA": 2, "shrinkB": 2})
        ax.set_xlim(0, 1)
        ax.set_ylim(0.1, 0.9)
        ax.set_title(title, fontsize=9)
        ax.axis("off")


def show_attention(ax, image: torch.Tensor, weights: torch.Tensor, masks: torch.Tensor | None = None,
                   highlight: int | None = None, title: str = "") -> None:
    """Attention over a grid of patches as a heatmap on a Shapes scene; the top patch is boxed.

    ``image`` (3, H, W); ``weights`` (P,) with P = g * g patches numbered row by row; ``masks``
    (K, H, W) are outlined, object ``highlight`` in white.
    """
    size = image.shape[-1]
    grid = int(round(weights.numel() ** 0.5))
    patch = size / grid
    ax.imshow(0.6 * image.permute(1, 2, 0).clamp(0, 1).cpu().numpy())  # the scene, dimmed
    heat = weights.detach().reshape(grid, grid).cpu().float()
    heat = (heat / heat.max().clamp_min(1e-12)).numpy()  # 1 at the largest weight
    ax.imshow(heat, cmap="viridis", alpha=0.85 * heat, extent=(-0.5, size - 0.5, size - 0.5, -0.5), vmin=0, vmax=1,
              interpolation="nearest")  # transparent where the weight is small
    if masks is not None:
        for k, mask in enumerate(masks):
            if mask.any():
                ax.contour(mask.float().cpu().numpy(), levels=[0.5], colors="white" if k == highlight else "0.6",
                           linewidths=1.5 if k == highlight else 0.8)
    row, col = divmod(int(weights.argmax()), grid)
    ax.add_patch(plt.Rectangle((col * patch - 0.5, row * patch - 0.5), patch, patch, fill=False,
                               edgecolor="cyan", linewidth=1.5))
    ax.set_title(title, fontsize=9)
    ax.axis("off")
