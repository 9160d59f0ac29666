"""Lesson 06's views: episodes, accuracy against N and k, modality weights per episode, and the few-shot explorer."""

from __future__ import annotations

import ipywidgets as widgets
import torch

from ..data import DIGIT_NAMES
from ..diagnostics import normal_interval
from ..experiments.meta import CONDITIONS, few_shot_accuracy, test_sampler
from ..meta import prototypes
from .common import View, category_colour, figure, show_digit, show_scene

TRAIN_COLOUR, TEST_COLOUR = "#0072B2", "#D55E00"  # Okabe-Ito blue and vermillion


def _show(ax, image: torch.Tensor, title: str = "") -> None:
    """A digit (1, 8, 8) or a Shapes scene (3, H, W)."""
    if image.shape[0] == 1:
        show_digit(ax, image, title)
    else:
        show_scene(ax, image, title=title)


def _frame(ax, colour: str) -> None:
    ax.axis("on")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(2.5)


def class_split(examples: dict, meta_train: list, meta_test: list, title: str = "") -> None:
    """One example per class, framed in blue for meta-training classes and in vermillion for meta-test ones.

    ``examples``: {class name: image (1, 8, 8) or (3, H, W)}; ``meta_train``, ``meta_test``: class names.
    """
    names = list(meta_train) + list(meta_test)
    with figure(min(1.1 * len(names), 12), 1.5, ncols=len(names), tight=False) as axes:
        for ax, name in zip(axes, names):
            _show(ax, examples[name], name)
            _frame(ax, TRAIN_COLOUR if name in meta_train else TEST_COLOUR)
        axes[0].figure.suptitle(title or "blue: meta-training classes, vermillion: meta-test classes (never "
                                "seen in training)", fontsize=9, y=1.08)


def episode(support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor, query_labels: torch.Tensor,
            class_names: list, queries_per_class: int = 3) -> None:
    """An episode as a grid: one row per class, its k support examples, then some of its queries.

    Shape: ``support`` (|S|, channels, height, width) with |S| = N * k, ``query`` (|Q|, channels, height,
    width); labels in 0..N-1; ``class_names`` (N,).
    """
    n_way = len(class_names)
    k_shot = int((support_labels == 0).sum())
    q = min(queries_per_class, int((query_labels == 0).sum()))
    cols = k_shot + 1 + q
    with figure(1.0 * cols, 1.05 * n_way, ncols=cols, nrows=n_way, tight=False) as axes:
        axes = axes.reshape(n_way, cols)
        for n in range(n_way):
            for j, image in enumerate(support[support_labels == n][:k_shot]):
                _show(axes[n, j], image, "support" if n == 0 and j == 0 else "")
            axes[n, k_shot].axis("off")
            axes[n, k_shot].text(0.5, 0.5, str(class_names[n]).replace(" ", "\n"), ha="center", va="center",
                                 fontsize=8)
            for j, image in enumerate(query[query_labels == n][:q]):
                _show(axes[n, k_shot + 1 + j], image, "query" if n == 0 and j == 0 else "")
        axes[0, 0].figure.suptitle(f"a {n_way}-way {k_shot}-shot episode: learn from the left, classify the right",
                                   fontsize=9, y=1.0)


def accuracy_against_shots(grid: dict, title: str = "") -> None:
    """Meta-test accuracy against k for each N, with 95% intervals (``grid``: {(N, k): Interval});
    dotted: chance, 1/N."""
    ways = sorted({n for n, _ in grid})
    with figure(5, 3) as axes:
        ax = axes[0]
        for i, n in enumerate(ways):
            shots = sorted(k for m, k in grid if m == n)
            values = [grid[(n, k)] for k in shots]
            colour = category_colour(i)
            ax.errorbar(shots, [v.estimate for v in values], yerr=[[v.estimate - v.low for v in values],
                                                                   [v.high - v.estimate for v in values]],
                        marker="o", markersize=3, capsize=2, color=colour, label=f"{n}-way")
            ax.axhline(1 / n, color=colour, linestyle=":", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xticks(sorted({k for _, k in grid}), [str(k) for k in sorted({k for _, k in grid})])
        ax.set_xlabel("k: examples per class in the support set", fontsize=8)
        ax.set_ylabel("meta-test accuracy", fontsize=8)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
        ax.set_title(title, fontsize=9)


def per_class_bars(per_class: dict, title: str = "accuracy on each new digit, 4-way 5-shot") -> None:
    """Grouped bars: for each class, the accuracy of each set of modalities (``{name: {class: accuracy}}``)."""
    names = list(per_class)
    classes = list(next(iter(per_class.values())))
    width = 0.8 / len(names)
    with figure(6, 2.6) as axes:
        ax = axes[0]
        for i, name in enumerate(names):
            ax.bar([c + (i - (len(names) - 1) / 2) * width for c in range(len(classes))],
                   [per_class[name][c] for c in classes], width, label=name, color=category_colour(i))
        ax.set_xticks(range(len(classes)), [DIGIT_NAMES[c] for c in classes], fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy", fontsize=8)
        ax.legend(fontsize=7, ncols=len(names))
        ax.set_title(title, fontsize=9)


def weights_by_condition(conditions: torch.Tensor, weights: torch.Tensor, accuracy: dict,
                         rule_weights: torch.Tensor | None = None,
                         squared_rule_weights: torch.Tensor | None = None) -> None:
    """Left: each meta-test episode's predicted image weight against its corruption (a dot per episode, a bar
    at the mean; a dashed bar at the mean of ``rule_weights`` and a dash-dotted one at the mean of
    ``squared_rule_weights``, when given). Right: mean accuracy of each method with its 95% interval.

    ``conditions`` (E,) indices into :data:`~mmcourse.experiments.meta.CONDITIONS`; ``weights``,
    ``rule_weights`` and ``squared_rule_weights`` (E, 2), column 0 the image; ``accuracy`` {method: (E,)
    per-episode accuracy}.
    """
    labels = [f"{m} {level:g}" + (" dB" if m == "audio" else "") for m, level in CONDITIONS]
    g = torch.Generator().manual_seed(0)
    rules = [(w, style, name) for w, style, name in ((rule_weights, "--", "dashed: the rule's mean"),
                                                      (squared_rule_weights, "-.", "dash-dot: the squared rule's"))
             if w is not None]
    with figure(11, 3, ncols=2) as axes:
        ax = axes[0]
        for i in range(len(CONDITIONS)):
            w = weights[conditions == i, 0]
            jitter = 0.25 * (torch.rand(len(w), generator=g) - 0.5)
            colour = TEST_COLOUR if CONDITIONS[i][0] == "image" else TRAIN_COLOUR
            ax.scatter(i + jitter, w, s=4, alpha=0.4, color=colour)
            ax.hlines(w.mean(), i - 0.3, i + 0.3, color="black", linewidth=1.5)
            for rule, style, _ in rules:
                ax.hlines(rule[conditions == i, 0].mean(), i - 0.3, i + 0.3, color="0.45", linewidth=1.2,
                          linestyle=style)
        ax.axhline(0.5, color="0.6", linestyle=":", linewidth=0.8)
        ax.set_xticks(range(len(CONDITIONS)), ["noisy " + label for label in labels], rotation=25, ha="right",
                      fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_ylabel("predicted image weight", fontsize=8)
        ax.set_title("each meta-test episode's weights (bar: mean" + "".join(f"; {name}" for *_, name in rules)
                     + "; dotted: equal)", fontsize=9)
        ax = axes[1]
        names = list(accuracy)
        intervals = [normal_interval(accuracy[n]) for n in names]
        ax.bar(range(len(names)), [v.estimate for v in intervals],
               color=[category_colour(i) for i in range(len(names))],
               yerr=[[v.estimate - v.low for v in intervals], [v.high - v.estimate for v in intervals]], capsize=3)
        for i, v in enumerate(intervals):
            ax.text(i, v.high + 0.02, f"{v.estimate:.2f}", ha="center", fontsize=7)
        ax.axhline(0.25, color="0.4", linestyle="--", linewidth=0.8)
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title("meta-test accuracy, corruption varying by episode (dashed: chance)", fontsize=9)


def _two_d(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre of ``points`` (P, d) and the projection on their top two principal directions, (d, 2)."""
    centre = points.mean(0)
    _, _, v = torch.linalg.svd(points - centre, full_matrices=False)
    return centre, v[:2].T


class FewShotView(View):
    """Meta-test accuracy of a trained ProtoNet as you change N, k and the modality, and one episode in 2-D.

    Moving a control only evaluates (no training): it draws ``episodes`` meta-test episodes with the
    chosen sizes, classifies their queries by the nearest prototype in the precomputed embeddings, and
    shows the mean accuracy with its 95% interval. Below, the first of those episodes projected on its
    two principal directions: support examples (dots), queries (crosses) and prototypes (stars),
    coloured by class, and a ring on each query the prototypes get wrong.

    Parameters
    ----------
    data : a :class:`~mmcourse.experiments.meta.MetaData` (its meta-test pool).
    embeddings : {"image": (P, d), "audio": (P, d)} embeddings of ``data.test``; "both" concatenates them
        (the same as averaging the two modalities' logits).
    episodes : episodes per setting.

    ``shown`` holds ``n_way``, ``k_shot``, ``modality``, ``accuracy`` (the mean), ``interval``
    ((low, high)) and ``chance``.
    """

    def __init__(self, data, embeddings: dict, episodes: int = 200, max_shots: int = 10) -> None:
        if set(embeddings) != {"image", "audio"}:
            raise ValueError(f"embeddings: expected {{'image': ..., 'audio': ...}}, got keys {sorted(embeddings)}")
        self.data, self.embeddings, self.episodes = data, embeddings, episodes
        ways = len(torch.unique(data.test["label"]))
        self.k_shot = widgets.IntSlider(5, 1, max_shots, description="k-shot", continuous_update=False)
        self.n_way = widgets.IntSlider(ways, 2, ways, description="N-way", continuous_update=False)
        self.modality = widgets.Dropdown(options=["both", "image", "audio"], value="both", description="modality")
        self._lay_out([[self.k_shot, self.n_way, self.modality]], redraw_on=[self.n_way, self.k_shot, self.modality])

    def columns(self) -> dict:
        """The embeddings of the chosen modality (or both)."""
        m = self.modality.value
        return dict(self.embeddings) if m == "both" else {m: self.embeddings[m]}

    def update(self) -> None:
        """Evaluate the chosen setting and redraw."""
        n, k, columns = self.n_way.value, self.k_shot.value, self.columns()
        interval = normal_interval(few_shot_accuracy(self.data, columns, n, k, episodes=self.episodes))
        self.shown = {"n_way": n, "k_shot": k, "modality": self.modality.value, "accuracy": interval.estimate,
                      "interval": (interval.low, interval.high), "chance": 1 / n}
        joined = torch.cat(list(columns.values()), dim=1)  # concatenation: distances add up over modalities
        e = test_sampler(self.data, {"h": joined}, n, k).sample(0)
        self.output.clear_output(wait=True)
        with self.output:
            with figure(9, 3.2, ncols=2) as axes:
                self._draw_episode(axes[1], e, n)
                self._draw_accuracy(axes[0], interval, n, k)

    def _draw_accuracy(self, ax, interval, n: int, k: int) -> None:
        ax.bar([0], [interval.estimate], yerr=[[interval.estimate - interval.low], [interval.high - interval.estimate]],
               color=TRAIN_COLOUR, capsize=4, width=0.5)
        ax.axhline(1 / n, color="0.4", linestyle="--", linewidth=0.8)
        ax.text(0, interval.high + 0.03, f"{interval}", ha="center", fontsize=8)
        ax.set_xlim(-1, 1)
        ax.set_xticks([])
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("meta-test accuracy", fontsize=8)
        ax.set_title(f"{n}-way {k}-shot, {self.modality.value}\n{self.episodes} meta-test episodes (dashed: chance)",
                     fontsize=9)

    def _draw_episode(self, ax, e, n: int) -> None:
        support, query = e.support["h"], e.query["h"]
        protos = prototypes(support, e.support_labels, n)
        centre, directions = _two_d(torch.cat([support, query]))
        s2, q2, p2 = ((x - centre) @ directions for x in (support, query, protos))
        wrong = torch.cdist(query, protos).argmin(1) != e.query_labels
        for c in range(n):
            colour = category_colour(c)
            label = DIGIT_NAMES[int(e.classes[c])]
            ax.scatter(*q2[e.query_labels == c].T, marker="x", s=14, color=colour, alpha=0.6)
            ax.scatter(*s2[e.support_labels == c].T, s=22, color=colour, label=label)
            ax.scatter(*p2[c], marker="*", s=220, color=colour, edgecolor="black", linewidth=0.8)
        ax.scatter(*q2[wrong].T, s=70, facecolor="none", edgecolor="black", linewidth=0.6)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=7, loc="best")
        ax.set_title("one episode in 2-D: support (dots), queries (x),\nprototypes (stars), wrong queries ringed",
                     fontsize=9)


def input_weights(weights: torch.Tensor, title: str = "") -> None:
    """The learned weight of each input cell of :class:`~mmcourse.meta.InputWeighting`, as a map.

    ``weights``: (1, n_mels, frames) for a spectrogram (drawn with time across, low frequencies at the
    bottom) or (1, 8, 8) for an image.
    """
    with figure(5, 2.6) as axes:
        ax = axes[0]
        grid = weights.detach()[0]
        shown = ax.imshow(grid, origin="lower" if grid.shape[0] != grid.shape[1] else "upper", cmap="viridis",
                          aspect="auto")
        ax.figure.colorbar(shown, ax=ax, fraction=0.04)
        if grid.shape[0] != grid.shape[1]:
            ax.set_xlabel("frame", fontsize=8)
            ax.set_ylabel("mel band", fontsize=8)
        ax.set_title(title or f"learned weight of each cell (1 = as in the raw input; {grid.min():.2f} to "
                     f"{grid.max():.2f})", fontsize=9)
