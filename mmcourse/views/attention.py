"""Lesson 03's views: attention heatmaps over a scene and the attention explorer."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch

from ..data.shapes import ANSWERS, VOCAB
from ..metrics import patch_grid, patch_masks
from .common import View, figure, show_scene


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
    answer = weights @ values
    with figure(6, 1.8, ncols=2, tight=False) as axes:
        axes[0].bar(names, weights.tolist(), color=values.tolist())
        axes[0].set_title("weights", fontsize=9)
        axes[1].imshow(answer.reshape(1, 1, 3).numpy())
        axes[1].set_title("answer: the weighted average colour", fontsize=9)
        axes[1].axis("off")


def scene_and_silhouette(image, silhouette) -> None:
    """A scene (3, H, W) next to its silhouette (H, W): which pixels differ from the background."""
    with figure(4.5, 2.3, ncols=2, tight=False) as axes:
        show_scene(axes[0], image, title="scene")
        axes[1].imshow(silhouette.numpy(), cmap="gray")
        axes[1].set_title("silhouette", fontsize=9)
        axes[1].axis("off")


def named_word(question_object) -> tuple[int, int]:
    """The position of the word that names an object in a colour question (L,), and that object's index."""
    return int((question_object >= 0).float().argmax()), int(question_object.max())


def attention_examples(test: dict, weights, scores, indices) -> None:
    """For each test question at ``indices``: the shape word's head-averaged attention over the scene,
    its object outlined, titled with the word and the model's answer (``weights`` (N, H, L, P))."""
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
    weights : tensor (N, H, L, P)
        Text-to-image attention of N questions: H heads, L words, P = g * g patches.
    data : dict of tensors
        ``image`` (N, 3, 32, 32), ``masks`` (N, K, 32, 32), ``question_ids`` (N, L),
        ``question_object`` (N, L), ``answer_id`` (N,), as returned by ``mmcourse.train.as_tensors``.
    predictions : tensor (N,), optional
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

