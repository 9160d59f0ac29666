"""Lesson 03's views: pictures of multi-head attention and of the cross-modal block, the build's loss curve,
attention heatmaps over a scene, where the words look, deletion curves, and the attention explorer."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from matplotlib.patches import FancyBboxPatch, Rectangle

from ..data.shapes import ANSWERS, VOCAB
from ..metrics import patch_grid, patch_masks
from .common import View, category_colour, figure, show_scene

_ARROW = {"arrowstyle": "->", "color": "0.3", "lw": 0.9, "shrinkA": 0, "shrinkB": 0}


def _matrix(ax, x: float, y: float, rows: int, cols: int, colours, cell: float = 0.3) -> None:
    """A rows x cols grid of cells with its top-left corner at (x, y); ``colours[j]`` fills column j."""
    for j in range(cols):
        for i in range(rows):
            ax.add_patch(Rectangle((x + j * cell, y - (i + 1) * cell), cell, cell, facecolor=colours[j],
                                   edgecolor="white", linewidth=0.6))


def _arrow(ax, start: tuple, end: tuple, label: str = "", above: bool = True) -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops=_ARROW)
    if label:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + (0.12 if above else -0.12), label,
                ha="center", va="bottom" if above else "top", fontsize=7)


def draw_multi_head(ax, num_heads: int = 4, length: int = 3, dim: int = 8) -> None:
    r"""Multi-head attention as a picture: split, attend in each head, merge (Vaswani et al. 2017).

    Written as lesson 03 writes it, with T = ``length`` tokens of d = ``dim`` features and the maps
    acting on rows as ``nn.Linear`` does (``\top``: transposed). Left to right: the projected queries
    $Q W_h^{Q\top}$ of every head h side by side (T x d, one colour per head's columns); ``split_heads``
    cuts them into H blocks of T x d/H; each head computes its own T x T weights
    $\alpha_h = \mathrm{softmax}(Q W_h^{Q\top} (K W_h^{K\top})^\top / \sqrt{d/H})$ and its output
    $\mathrm{head}_h = \alpha_h V W_h^{V\top}$, T x d/H; ``merge_heads`` puts the outputs side by side
    again, and $W^O$ mixes the heads: $\mathrm{MultiHead}(Q, K, V) = \mathrm{concat}(\mathrm{head}_1,
    \dots, \mathrm{head}_H)\, W^{O\top}$, T x d. The keys and values are projected and split the same
    way (not drawn).
    """
    if num_heads < 1 or dim % num_heads:
        raise ValueError(f"num_heads: expected a divisor of dim={dim}, got {num_heads}")
    cell, d = 0.3, dim // num_heads
    colours = [category_colour(h) for h in range(num_heads)]
    by_column = [colours[j // d] for j in range(dim)]
    block, gap = length * cell, 0.35
    top = num_heads * (block + gap) - gap  # the heads' column sets the height
    mid = top / 2 + block / 2  # top edge of the full matrices, centred
    _matrix(ax, 0, mid, length, dim, by_column)
    ax.text(dim * cell / 2, mid - block - 0.15, f"$Q W_h^{{Q\\top}}$\nfor every h\n(T={length}) x (d={dim})",
            ha="center", va="top", fontsize=7)
    x_heads, x_maps, x_outs = dim * cell + 1.3, dim * cell + 1.3 + d * cell + 0.9, dim * cell + 3.6 + d * cell + block
    weights = torch.softmax(2 * torch.randn(num_heads, length, length, generator=torch.Generator().manual_seed(0)), -1)
    for h in range(num_heads):
        y = top - h * (block + gap)
        _matrix(ax, x_heads, y, length, d, [colours[h]] * d)
        ax.text(x_heads - 0.08, y - block / 2, f"head {h}", ha="right", va="center", fontsize=7)
        ax.imshow(weights[h].numpy(), cmap="gray_r", vmin=0, vmax=1, extent=(x_maps, x_maps + block, y - block, y))
        _arrow(ax, (x_heads + d * cell + 0.05, y - block / 2), (x_maps - 0.05, y - block / 2))
        _matrix(ax, x_outs, y, length, d, [colours[h]] * d)
        _arrow(ax, (x_maps + block + 0.05, y - block / 2), (x_outs - 0.05, y - block / 2))
    ax.text(x_maps + block / 2, top + 0.5,
            "$\\alpha_h = \\mathrm{softmax}(Q W_h^{Q\\top} (K W_h^{K\\top})^\\top / \\sqrt{d/H})$", ha="center",
            va="bottom", fontsize=7)
    ax.text(x_outs + d * cell / 2, top + 0.1, "$\\mathrm{head}_h = \\alpha_h\\, V W_h^{V\\top}$", ha="center",
            va="bottom", fontsize=7)
    _arrow(ax, (dim * cell + 0.1, mid - block / 2), (x_heads - 0.55, mid - block / 2), "split")
    x_merged = x_outs + d * cell + 1.2
    _arrow(ax, (x_outs + d * cell + 0.1, mid - block / 2), (x_merged - 0.1, mid - block / 2), "merge")
    _matrix(ax, x_merged, mid, length, dim, by_column)
    x_out = x_merged + dim * cell + 1.1
    _arrow(ax, (x_merged + dim * cell + 0.1, mid - block / 2), (x_out - 0.1, mid - block / 2), "$W^O$")
    _matrix(ax, x_out, mid, length, dim, ["0.55"] * dim)
    ax.text(x_merged + dim * cell / 2, mid - block - 0.15, "concat($\\mathrm{head}_h$)\n(T x d)", ha="center",
            va="top", fontsize=7)
    ax.text(x_out + dim * cell / 2, mid - block - 0.15, "MultiHead(Q, K, V)\n= concat($\\mathrm{head}_h$) $W^{O\\top}$",
            ha="center", va="top", fontsize=7)
    ax.set_xlim(-0.2, x_out + dim * cell + 0.2)
    ax.set_ylim(-0.5, top + 0.9)
    ax.set_aspect("equal")
    ax.axis("off")


def multi_head_picture(num_heads: int = 4, length: int = 3, dim: int = 8) -> None:
    """Show :func:`draw_multi_head` in a figure of its own."""
    with figure(9, 2.6, tight=False) as axes:
        draw_multi_head(axes[0], num_heads, length, dim)


def _box(ax, x: float, y: float, text: str, colour: str = "0.93", width: float = 1.1, height: float = 0.5) -> None:
    """A rounded box centred at (x, y)."""
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.05",
                                facecolor=colour, edgecolor="0.4", linewidth=0.8))
    ax.text(x, y, text, ha="center", va="center", fontsize=7)


def draw_cross_modal_block(ax) -> None:
    """One cross-modal block (MulT, Tsai et al. 2019) as a picture: pre-LN, attention, residual, FF.

    As lesson 03 writes it: the words Z_text (B, T, d) give the queries, the patches Z_image (B, P, d)
    the keys and values, each through its own LayerNorm *before* attention (pre-LN), and the weights
    alpha are (B, H, T, P); attention's output is added to Z_text (residual) to give U; U goes through
    LayerNorm and a feed-forward layer, added to U again:
    U = Z_text + MultiHead(LN(Z_text), LN(Z_image), LN(Z_image)), Z_text' = U + FF(LN(U)).
    """
    y_t, y_s = 1.6, 0.4
    _box(ax, 0.5, y_t, "$Z_\\mathrm{text}$: words\n(B, T, d)", "#cde", 1.2, 0.6)
    _box(ax, 0.5, y_s, "$Z_\\mathrm{image}$: patches\n(B, P, d)", "#cde", 1.2, 0.6)
    _box(ax, 2.0, y_t, "LayerNorm")
    _box(ax, 2.0, y_s, "LayerNorm")
    _box(ax, 3.7, y_t, "multi-head\nattention", "#fdb", 1.3, 0.7)
    _box(ax, 5.0, y_t, "+", "white", 0.35, 0.35)
    _box(ax, 6.2, y_t, "LayerNorm")
    _box(ax, 7.6, y_t, "feed-forward\nLinear, GELU,\nLinear", "#dfd", 1.3, 0.8)
    _box(ax, 8.9, y_t, "+", "white", 0.35, 0.35)
    _box(ax, 10.0, y_t, "$Z_\\mathrm{text}'$\n(B, T, d)", "#cde", 1.0, 0.6)
    for start, end, label in (((1.1, y_t), (1.45, y_t), ""), ((1.1, y_s), (1.45, y_s), ""),
                              ((2.55, y_t), (3.05, y_t), "Q"), ((5.18, y_t), (5.65, y_t), "U"),
                              ((6.75, y_t), (6.95, y_t), ""), ((8.25, y_t), (8.72, y_t), ""),
                              ((9.08, y_t), (9.5, y_t), ""), ((4.35, y_t), (4.82, y_t), "")):
        _arrow(ax, start, end, label)
    ax.plot([2.55, 3.7], [y_s, y_s], color="0.3", lw=0.9)  # the source's keys and values, up into attention
    _arrow(ax, (3.7, y_s), (3.7, y_t - 0.4))
    ax.text(3.1, y_s + 0.06, "K, V", fontsize=7, ha="center", va="bottom")
    ax.text(3.8, (y_s + y_t) / 2 - 0.1, "weights $\\alpha$\n(B, H, T, P)", ha="left", va="center", fontsize=6.5,
            color="0.3")
    rail = y_t + 0.75
    for x0, y0, x1 in ((0.5, y_t + 0.3, 5.0), (5.4, y_t, 8.9)):  # the skip connections, over the top
        ax.plot([x0, x0, x1], [y0, rail, rail], color="0.3", lw=0.9)
        _arrow(ax, (x1, rail), (x1, y_t + 0.22))
        ax.text((x0 + x1) / 2, rail + 0.05, "residual", ha="center", va="bottom", fontsize=7)
    ax.text(5.5, y_s, "pre-LN: normalise before attention and FF;\n"
            "the residuals keep $Z_\\mathrm{text}$ itself in the output", ha="left", va="center", fontsize=7,
            color="0.3")
    ax.set_xlim(-0.2, 10.6)
    ax.set_ylim(0.0, 2.8)
    ax.axis("off")


def cross_modal_block_picture() -> None:
    """Show :func:`draw_cross_modal_block` in a figure of its own."""
    with figure(10, 2.6, tight=False) as axes:
        draw_cross_modal_block(axes[0])


def show_attention(ax, image: torch.Tensor, weights: torch.Tensor, masks: torch.Tensor | None = None,
                   highlight: int | None = None, title: str = "") -> None:
    """Attention over a grid of patches as a heatmap on a Shapes scene; the top patch is boxed.

    ``image`` (3, H, W); ``weights`` (P,) with P = g * g patches numbered row by row; ``masks``
    (K, H, W) are outlined, object ``highlight`` in white.
    """
    size = image.shape[-1]
    grid = patch_grid(weights.numel())
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


def soft_lookup(weights, values, names: list[str]) -> None:
    """One query's attention weights over named keys (bars in each value's colour), and the answer:
    the weighted average of the values (RGB colours (K, 3))."""
    weights, values = weights.detach().cpu(), values.detach().cpu()  # they may come from an accelerator
    answer = weights @ values
    with figure(6, 1.8, ncols=2, tight=False) as axes:
        bars = axes[0].bar(names, weights.tolist(), color=values.tolist())
        axes[0].bar_label(bars, fmt="%.2f", fontsize=7)  # the numbers, not only the bar heights
        axes[0].set_ylim(0, 1.15)
        axes[0].tick_params(labelsize=7)
        axes[0].set_title("weights", fontsize=9)
        axes[1].imshow(answer.reshape(1, 1, 3).numpy())
        axes[1].set_title("answer: the weighted average colour", fontsize=9)
        axes[1].axis("off")


def scene_and_silhouette(image, silhouette) -> None:
    """A scene (3, H, W) next to its silhouette (H, W): which pixels differ from the background."""
    with figure(4.5, 2.3, ncols=2, tight=False) as axes:
        show_scene(axes[0], image, title="scene")
        axes[1].imshow(silhouette.detach().cpu().numpy(), cmap="gray")
        axes[1].set_title("silhouette", fontsize=9)
        axes[1].axis("off")


def named_word(question_object) -> tuple[int, int]:
    """The position of the word that names an object in a colour question (T,), and that object's index."""
    return int((question_object >= 0).float().argmax()), int(question_object.max())


def attention_examples(test: dict, weights, scores, indices) -> None:
    """For each test question at ``indices``: the shape word's head-averaged attention over the scene,
    its object outlined, titled with the word and the model's answer (``weights`` (n, H, T, P))."""
    with figure(2 * len(indices), 2.4, ncols=len(indices), tight=False) as axes:
        for ax, i in zip(axes, indices):
            word, obj = named_word(test["question_object"][i])
            show_attention(ax, test["image"][i], weights[i, :, word].mean(0), test["masks"][i], obj,
                           title=f"{VOCAB.itos[int(test['question_ids'][i, word])]} -> "
                                 f"{ANSWERS[int(scores[i].argmax())]}")


def attention_case(test: dict, weights, scores, i: int, title: str) -> None:
    """One test question: the scene with its named object, and the shape word's attention."""
    word, obj = named_word(test["question_object"][i])
    with figure(5.4, 2.8, ncols=2) as axes:
        show_scene(axes[0], test["image"][i], test["masks"][i], obj,
                   title=f"{VOCAB.decode(test['question_ids'][i])} {ANSWERS[int(scores[i].argmax())]}")
        show_attention(axes[1], test["image"][i], weights[i, :, word].mean(0), test["masks"][i], obj, title=title)


class AttentionExplorer(View):
    """Where does each word of a question look? Pick a sample, a word and a head.

    Shows the scene with the object the word names outlined in white, and the word's attention over
    the image patches as a heatmap (the most-attended patch boxed). The weights are computed once
    (``weights``), so moving a control only looks them up.

    Parameters
    ----------
    weights : tensor (n, H, T, P)
        Text-to-image attention of n questions: H heads, T words, P = g * g patches.
    data : dict of tensors
        ``image`` (n, 3, 32, 32), ``masks`` (n, K, 32, 32), ``question_ids`` (n, T),
        ``question_object`` (n, T), ``answer_id`` (n,), as returned by ``mmcourse.train.as_tensors``.
    predictions : tensor (n,), optional
        The model's answers, shown next to the true ones.
    """

    def __init__(self, weights, data: dict, predictions=None) -> None:
        if weights.ndim != 4 or weights.shape[0] != len(data["image"]):
            raise ValueError(f"weights: expected shape ({len(data['image'])}, H, L, P), got {tuple(weights.shape)}")
        self.weights, self.data, self.predictions, self.vocab = weights, data, predictions, VOCAB
        heads = [("average", -1)] + [(f"head {h}", h) for h in range(weights.shape[1])]
        self.index = widgets.IntSlider(0, 0, len(weights) - 1, description="sample", continuous_update=False)
        self.word = widgets.Dropdown(description="word")
        self.head = widgets.Dropdown(options=heads, value=-1, description="head")
        self.output = widgets.Output()
        self.shown: dict = {}
        self._quiet = False
        self.index.observe(lambda _: self._new_sample(), names="value")
        self.word.observe(lambda _: self._quiet or self.update(), names="value")
        self.head.observe(lambda _: self.update(), names="value")
        self.widget = widgets.VBox([self.index, widgets.HBox([self.word, self.head]), self.output])
        self._new_sample()

    def _new_sample(self) -> None:
        """Offer the words of the new question; start at the word that names an object."""
        i = self.index.value
        ids, refers = self.data["question_ids"][i], self.data["question_object"][i]
        options = [(f"{self.vocab.itos[int(t)]} ({j})", j) for j, t in enumerate(ids) if int(t) != self.vocab.pad_id]
        named = [j for _, j in options if int(refers[j]) >= 0]
        self._quiet = True
        self.word.options = options
        self.word.value = named[0] if named else options[0][1]
        self._quiet = False
        self.update()

    def update(self) -> None:
        """Look up the chosen attention and redraw."""
        i, j, h = self.index.value, self.word.value, self.head.value
        w = self.weights[i, :, j].mean(0) if h == -1 else self.weights[i, h, j]  # (P,)
        masks, obj = self.data["masks"][i], int(self.data["question_object"][i, j])
        top = int(w.argmax())
        on_top_patch = patch_masks(masks[None], patch_grid(w.numel()))[0, :, top]  # (K,): objects the patch touches
        answer = ANSWERS[int(self.data["answer_id"][i])]
        predicted = ANSWERS[int(self.predictions[i])] if self.predictions is not None else None
        self.shown = {
            "index": i, "question": self.vocab.decode(self.data["question_ids"][i]),
            "word": self.vocab.itos[int(self.data["question_ids"][i, j])], "position": j, "head": h,
            "object": obj, "top_patch": top, "top_in_object": bool(on_top_patch[obj]) if obj >= 0 else None,
            "max_weight": float(w.max()), "answer": answer, "predicted": predicted,
        }
        self.output.clear_output(wait=True)
        with self.output:
            with figure(5.4, 2.8, ncols=2) as axes:
                show_scene(axes[0], self.data["image"][i], masks, highlight=obj if obj >= 0 else None,
                           title=self.shown["question"])
                head = "average of heads" if h == -1 else f"head {h}"
                show_attention(axes[1], self.data["image"][i], w, masks, obj if obj >= 0 else None,
                               title=f"'{self.shown['word']}' ({head}), max {self.shown['max_weight']:.2f}")
            print(f"answer: {answer}" + (f" | model: {predicted}" if predicted is not None else ""))



def loss_curve(losses, title: str = "", smooth: int = 20) -> None:
    """The training loss of every step (light) and its running mean over ``smooth`` steps (dark)."""
    values = torch.as_tensor(losses, dtype=torch.float32)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"losses: expected a non-empty list of numbers, got shape {tuple(values.shape)}")
    window = min(smooth, len(values))
    mean = values.unfold(0, window, 1).mean(1)  # (S - window + 1,)
    with figure(5.0, 2.2) as axes:
        ax = axes[0]
        ax.plot(range(1, len(values) + 1), values.tolist(), color="0.8", linewidth=0.7, label="one step")
        ax.plot(range(window, len(values) + 1), mean.tolist(), color=category_colour(0), linewidth=1.4,
                label=f"mean of {window} steps")
        ax.set_xlabel("training step (a batch of 32 questions)", fontsize=8)
        ax.set_ylabel("cross-entropy", fontsize=8)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7)
        ax.set_title(title, fontsize=8)


def where_words_look(grounding, title: str = "scenes with two or three objects") -> None:
    """Where the shape word's most-attended patch lies (named object, another object, background), next
    to the two baselines: a word-blind map that looks at a random object patch, and a random patch.

    ``grounding``: an :class:`mmcourse.experiments.attention.ObjectGrounding`.
    """
    parts = {"its object": grounding.named, "another object only": grounding.other_object,
             "no object": grounding.background}
    with figure(6.5, 2.0, ncols=2) as axes:
        left = 0.0
        for i, (name, value) in enumerate(parts.items()):
            axes[0].barh(0, value, left=left, color=category_colour(i), label=f"{name} {value:.2f}")
            left += value
        axes[0].set_xlim(0, 1)
        axes[0].set_yticks([])
        axes[0].legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3, frameon=False)
        axes[0].set_title(f"top patch of the shape word ({title})", fontsize=8)
        names = ["the model", "any-object\nbaseline", "random patch"]
        values = [grounding.named, grounding.any_object_baseline, grounding.chance]
        axes[1].bar(range(3), values, color=[category_colour(0), "0.6", "0.8"])
        for i, v in enumerate(values):
            axes[1].text(i, v + 0.02, f"{v:.2f}", ha="center", fontsize=7)
        axes[1].set_xticks(range(3), names, fontsize=7)
        axes[1].set_ylim(0, 1.1)
        axes[1].set_title("top patch on the named object", fontsize=8)


def deletion_plot(deletion, reference: float | None = None) -> None:
    """Test accuracy against the number of patches deleted, one curve per order, with its area.

    ``deletion``: an :class:`mmcourse.experiments.attention.Deletion`; ``reference`` draws a dashed
    line (for example the majority answer's accuracy).
    """
    with figure(5.5, 2.8) as axes:
        ax = axes[0]
        for i, (name, curve) in enumerate(deletion.curves.items()):
            ax.plot(deletion.steps, curve.tolist(), marker="o", markersize=2.5, color=category_colour(i),
                    label=f"{name} (area {deletion.areas[name]:.2f})")
        if reference is not None:
            ax.axhline(reference, color="0.5", linestyle="--", linewidth=0.8, label="majority answer")
        ax.set_xlabel("patches deleted (painted with the background colour)", fontsize=8)
        ax.set_ylabel("test accuracy", fontsize=8)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
