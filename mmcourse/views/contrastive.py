"""Lesson 07's views: the similarity matrix, the build's loss curve, the temperature, retrievals, zero-shot
results, the running comparison, and the retrieval browser."""

from __future__ import annotations

import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch

from ..contrastive import LOGIT_SCALE_MAX
from ..data.shapes import COLOURS, POSITIONS, SHAPES, SIZES
from ..experiments.contrastive import (
    CLASSES,
    UNSEEN,
    ZERO_SHOT_PARTS,
    attribute_matches,
    caption_of,
    contained,
    encode_captions,
)
from .common import View, figure, method_bars, show_scene


def similarity_matrix(images: torch.Tensor, similarities: torch.Tensor, title: str = "") -> None:
    """B scenes, each left of its row of the B x B matrix of scene-to-caption similarities (rows scenes,
    columns captions, as in the loss's logits); the matching pairs (the diagonal, which the loss asks
    to win its row and its column) are outlined.

    ``images`` (B, 3, 32, 32); ``similarities`` (B, B): row i is scene i, column j caption j.
    """
    b = len(images)
    cell, left, bottom = 0.8, 1.4, 0.5  # inches: one cell of the matrix, the margins left of and below it
    width, height = cell * b + left + 0.3, cell * b + bottom + 0.6
    with figure(width, height, ncols=b, nrows=2, tight=False) as axes:
        fig = axes[0].figure
        for i, ax in enumerate(axes[:b]):  # one thumbnail left of each row of the matrix
            show_scene(ax, images[i])
            y = bottom + cell * (b - 1 - i) + 0.05
            ax.set_position((0.05 / width, y / height, 0.7 * cell / width, 0.7 * cell / height))
        for ax in axes[b:]:
            ax.remove()
        ax = fig.add_axes((left / width, bottom / height, cell * b / width, cell * b / height))
        ax.imshow(similarities.detach().cpu().numpy(), cmap="viridis", vmin=-1, vmax=1)
        for i in range(b):
            ax.add_patch(plt.Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="white", linewidth=2))
            for j in range(b):
                ax.text(j, i, f"{float(similarities[i, j]):.2f}", ha="center", va="center", fontsize=7,
                        color="black" if similarities[i, j] > 0.3 else "white")
        ax.set_xticks(range(b), [f"caption {j}" for j in range(b)], fontsize=7)
        ax.set_yticks(range(b), [f"scene {i}" for i in range(b)], fontsize=7)
        ax.set_title(title, fontsize=9)


def loss_curve(losses: list[float], batch_size: int, title: str = "your build, training") -> None:
    """The CLIP loss at every training step, with log B, the loss of embeddings that carry no information (about
    where training starts: section 2), as a dashed line."""
    with figure(6, 2.4) as axes:
        ax = axes[0]
        ax.plot(range(1, len(losses) + 1), losses, lw=1.2, label="loss of the batch")
        ax.axhline(math.log(batch_size), color="0.3", ls="--", lw=0.8, label=f"log B = log {batch_size}")
        ax.set_ylim(0, math.log(batch_size) * 1.1)
        ax.set_xlabel("training step", fontsize=8)
        ax.set_ylabel("loss", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="lower left")


def temperature_curve(runs: dict[str, list[float]] | list[float], lr: float | None = None,
                      title: str = "the learned temperature") -> None:
    """The temperature tau = 1 / exp(s) at every training step of one run (``runs``: s per step) or of
    several ({name: s per step}), on a log scale, with CLIP's floor 0.01 (the clamp s <= log 100). With
    ``lr``, a dotted line for each run where tau would be if s rose by exactly ``lr`` every step
    (about the fastest Adam moves it: :class:`~mmcourse.experiments.contrastive.TemperatureDrift`)."""
    runs = runs if isinstance(runs, dict) else {"learned": runs}
    with figure(6, 2.8) as axes:
        ax = axes[0]
        for name, scales in runs.items():
            s = torch.tensor(scales, dtype=torch.float64)
            line, = ax.plot(range(len(s)), s.neg().exp().numpy(), label=name)
            if lr is not None:
                steps = torch.arange(len(s), dtype=torch.float64)
                ax.plot(steps.numpy(), (-s[0] - lr * steps).exp().numpy(), color=line.get_color(), ls=":", lw=1,
                        label=f"{name}: s up by lr every step")
        ax.axhline(torch.tensor(-LOGIT_SCALE_MAX).exp().item(), color="0.3", ls="--", lw=0.8, label="floor: 0.01")
        ax.set_yscale("log")
        ax.set_ylim(0.002, 1.5)
        ax.set_xlabel("training step", fontsize=8)
        ax.set_ylabel("temperature", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="lower left", ncol=2)


def retrieval_examples(captions: list[str], images: torch.Tensor, scores: torch.Tensor, relevance: torch.Tensor,
                       queries, top: int = 5) -> None:
    """For each caption index in ``queries``, its ``top`` scenes, titled with similarity and relevance.

    ``captions`` (Q strings); ``images`` (G, 3, 32, 32); ``scores`` and ``relevance`` (Q, G).
    """
    queries = list(queries)
    with figure(1.6 * top, 2.1 * len(queries), ncols=top, nrows=len(queries), tight=False) as axes:
        for row, q in enumerate(queries):
            best = scores[q].topk(top).indices
            for col, g in enumerate(best.tolist()):
                show_scene(axes[row * top + col], images[g],
                           title=f"{float(scores[q, g]):.2f}, relevance {int(relevance[q, g])}")
            axes[row * top + top // 2].annotate(f"caption {q}: {captions[q]}", (0.5, 1.3), xycoords="axes fraction",
                                                ha="center", va="bottom", fontsize=8)
        axes[0].figure.subplots_adjust(hspace=0.75, top=0.88, bottom=0.02)


def zero_shot_bars(result) -> None:
    """Accuracy of each method on the seen classes (choosing among the 9 seen, then among all 12) and on
    the unseen ones (among all 12) (``result`` from :func:`mmcourse.experiments.contrastive.zero_shot`);
    dashed: chance (1 in 9 or 1 in 12)."""
    with figure(12, 2.8, ncols=len(ZERO_SHOT_PARTS)) as axes:
        for ax, part in zip(axes, ZERO_SHOT_PARTS):
            values = {m: result.accuracy[(m, part)] for m in dict.fromkeys(m for m, _ in result.accuracy)}
            scenes, among = part.split(", ")
            method_bars(ax, values, reference=result.chance[part], title=f"{scenes} combinations, {among} classes")


def unseen_examples(result, method: str = "prompts, best", count: int = 8) -> None:
    """The first ``count`` scenes of unseen classes, titled with the class ``method`` gives them."""
    unseen = torch.isin(result.scenes["label"], torch.tensor(UNSEEN)).nonzero().squeeze(1)
    picked = unseen[torch.linspace(0, len(unseen) - 1, count).long()]
    with figure(1.4 * count, 1.9, ncols=count, tight=False) as axes:
        for ax, i in zip(axes, picked.tolist()):
            predicted = CLASSES[int(result.predictions[method][i])]
            right = "right" if predicted == CLASSES[int(result.scenes["label"][i])] else "wrong"
            show_scene(ax, result.scenes["image"][i], title=f"{' '.join(predicted)}\n({right})")


def comparison_chart(entries) -> None:
    """The running comparison: Recall@1 and @5 of each method (bars) with their chance levels (ticks),
    and under each method what its training used (``entries``: :class:`mmcourse.metrics.ComparisonEntry`)."""
    names = [f"{e.method} ({e.lesson})\npairs: {e.pairs}\nlabels: {e.labels}" for e in entries]
    with figure(max(6.0, 1.8 * len(entries)), 3.4) as axes:
        ax = axes[0]
        x = torch.arange(len(entries)).float()
        for shift, at, name in ((-0.2, "recall_at_1", "Recall@1"), (0.2, "recall_at_5", "Recall@5")):
            values = [getattr(e.retrieval, at) for e in entries]
            chance = [getattr(e.retrieval, at.replace("recall", "chance")) for e in entries]
            bars = ax.bar((x + shift).numpy(), values, 0.38, label=name)
            ax.hlines(chance, (x + shift - 0.19).numpy(), (x + shift + 0.19).numpy(), colors="black", linestyles="--",
                      linewidth=1)
            for bar, v in zip(bars, values):
                ax.text(bar.get_x() + bar.get_width() / 2, v + 0.01, f"{v:.2f}", ha="center", fontsize=7)
        ax.set_xticks(x.numpy(), names, fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_ylabel("speech -> image retrieval", fontsize=8)
        ax.set_title("AV-Digits test split: spoken digits retrieve images of the same digit (dashed: chance)",
                     fontsize=9)
        ax.legend(fontsize=7, loc="upper left")


class RetrievalBrowser(View):
    """Pick a one-object caption with four dropdowns and see the scenes a model ranks highest.

    Parameters
    ----------
    models : {name: model}, each with ``encode_image(images)`` and ``encode_text(caption_ids)`` giving
        unit-length embeddings (a :class:`~mmcourse.contrastive.DualEncoder`, or the experiments'
        ``LinearCCA`` on pooled pixels and word counts).
    scenes : the gallery as columns: ``image`` (G, 3, 32, 32) and the ``object_*`` attributes (G, K).
    top : how many scenes to show.

    The gallery is embedded once per model; a change of control embeds one caption and ranks. Each
    shown scene is titled with its similarity, whether it contains the object the caption names
    (its relevance, 0 or 1) and how many of the four attributes its closest object shares.
    ``shown`` holds ``caption``, ``model``, ``top`` (gallery indices), ``scores``, ``relevance``
    and ``attributes`` (lists, best first).
    """

    def __init__(self, models: dict, scenes: dict, top: int = 8) -> None:
        if not models:
            raise ValueError("models: expected at least one {name: model}, got an empty dict")
        if not isinstance(top, int) or not 1 <= top <= len(scenes["image"]):
            raise ValueError(f"top: expected an integer from 1 to the {len(scenes['image'])} scenes, got {top!r}")
        self.models, self.scenes, self.top = models, scenes, top
        with torch.no_grad():
            self.gallery = {name: model.encode_image(scenes["image"]) for name, model in models.items()}
        self.objects = torch.stack([scenes[a] for a in ("object_shape", "object_colour", "object_size",
                                                        "object_position")], dim=2)
        self.size = widgets.Dropdown(options=SIZES, value="large", description="size")
        self.colour = widgets.Dropdown(options=COLOURS, value="red", description="colour")
        self.shape = widgets.Dropdown(options=SHAPES, value="triangle", description="shape")
        self.position = widgets.Dropdown(options=POSITIONS, value="center", description="position")
        self.model = widgets.ToggleButtons(options=list(models), value=next(iter(models)), description="model")
        self._lay_out([[self.size, self.colour], [self.shape, self.position], self.model],
                      redraw_on=[self.size, self.colour, self.shape, self.position, self.model])

    def query(self) -> torch.Tensor:
        """The object the caption names as (1, 1, 4) attribute indices (shape, colour, size, position)."""
        return torch.tensor([[[SHAPES.index(self.shape.value), COLOURS.index(self.colour.value),
                               SIZES.index(self.size.value), POSITIONS.index(self.position.value)]]])

    def update(self) -> None:
        """Embed the caption with the chosen model, rank the gallery and redraw."""
        caption = caption_of(self.size.value, self.colour.value, self.shape.value, self.position.value)
        model = self.models[self.model.value]
        with torch.no_grad():
            scores = (model.encode_text(encode_captions([caption])) @ self.gallery[self.model.value].T)[0]
        best = scores.topk(self.top).indices
        relevance = contained(self.query(), self.objects)[0, best]
        attributes = attribute_matches(self.query(), self.objects)[0, best]
        self.shown = {"caption": caption, "model": self.model.value, "top": best.tolist(),
                      "scores": scores[best].tolist(), "relevance": relevance.int().tolist(),
                      "attributes": attributes.tolist()}
        self.output.clear_output(wait=True)
        with self.output:
            with figure(1.5 * self.top, 2.1, ncols=self.top, tight=False) as axes:
                axes[0].figure.suptitle(f"{self.model.value}: \"{caption}\"", fontsize=9, y=1.02)
                for ax, g, s, r, a in zip(axes, best.tolist(), scores[best].tolist(), relevance.tolist(),
                                          attributes.tolist()):
                    show_scene(ax, self.scenes["image"][g], title=f"{s:.2f}\n{'contains it' if r else f'{a}/4 attr.'}")
