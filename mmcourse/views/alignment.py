"""Lesson 04's views: two spaces and a rotation, Procrustes curves, the adversarial training replay,
the non-isometry slider, k-occurrence histograms, cross-modal results."""

from __future__ import annotations

import ipywidgets as widgets
import torch

from .common import DIVERGING, View, category_colour, category_marker, figure

PRECISION_COLOUR, CRITERION_COLOUR, DISCRIMINATOR_COLOUR = "#0072B2", "#D55E00", "#009E73"  # Okabe-Ito


def _host(values):
    """``values`` (a tensor, or a list of numbers or tensors) with every tensor moved to the CPU for matplotlib
    (results computed on an accelerator); anything else as it is."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu()
    if isinstance(values, (list, tuple)):
        return [_host(v) for v in values]
    return values


def principal_axes(points: torch.Tensor, components: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean (d,) and the top principal directions (d, components) of ``points`` (n, d)."""
    mean = points.mean(0)
    _, _, vh = torch.linalg.svd(points - mean, full_matrices=False)
    return mean, vh[:components].T


def scatter_clusters(ax, points2d: torch.Tensor, cluster: torch.Tensor | None = None, size: float = 4,
                     alpha: float = 0.6, marker: str = "o", colour=None, label: str | None = None) -> None:
    """A 2-D scatter, coloured by cluster (the course's colour-blind-safe palette, clusters beyond eight
    with another marker) unless ``colour`` is given."""
    p = points2d.detach().cpu().numpy()
    if colour is not None or cluster is None:
        ax.scatter(p[:, 0], p[:, 1], s=size, alpha=alpha, c=colour, marker=marker, label=label, linewidths=0)
        return
    cluster = cluster.cpu()
    for i, c in enumerate(cluster.unique().tolist()):
        at = (cluster == c).numpy()
        ax.scatter(p[at, 0], p[at, 1], s=size, alpha=alpha, color=category_colour(c),
                   marker=category_marker(c) if marker == "o" else marker, label=label if i == 0 else None,
                   linewidths=0)


def two_spaces(source2d: torch.Tensor, target2d: torch.Tensor, cluster: torch.Tensor, titles=("space A", "space B")):
    """The opening picture: the same items in two 2-D spaces, coloured by cluster."""
    with figure(8, 3.4, ncols=2) as axes:
        for ax, points, title in zip(axes, (source2d, target2d), titles):
            scatter_clusters(ax, points, cluster, size=6)
            ax.set_title(title, fontsize=9)
            ax.set_aspect("equal", adjustable="datalim")
            ax.set_xticks([])
            ax.set_yticks([])


def procrustes_curves(recovery: dict) -> None:
    """Relative error of the recovered rotation against the number of pairs, one curve per noise level
    (``recovery`` from :func:`mmcourse.experiments.alignment.procrustes_recovery`)."""
    with figure(6, 3.2) as axes:
        ax = axes[0]
        for noise in recovery["noises"]:
            ax.plot(recovery["pairs"], _host(recovery["error"][noise]), "o-", markersize=3, label=f"noise {noise:g}")
        ax.axvline(recovery["dim"], color="0.6", linestyle=":", linewidth=1)
        ax.text(recovery["dim"], ax.get_ylim()[1] * 0.9, f" d = {recovery['dim']}", fontsize=8, color="0.4")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("number of pairs", fontsize=8)
        ax.set_ylabel("||W - R|| / ||R||", fontsize=8)
        ax.set_title("Procrustes: how many pairs pin down the rotation", fontsize=9)
        ax.legend(fontsize=7)


def _curves(ax, steps, precision, criterion, at: int | None = None, xlabel: str = "training step") -> None:
    """Precision@1 (left axis) and the criterion (right axis) against ``steps``; a marker at index ``at``."""
    precision, criterion = _host(precision), _host(criterion)
    if precision is not None:
        ax.plot(steps, precision, "o-", markersize=2.5, color=PRECISION_COLOUR, label="precision@1 (needs labels)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("precision@1", fontsize=8, color=PRECISION_COLOUR)
    twin = ax.twinx()
    twin.plot(steps, criterion, "s-", markersize=2.5, color=CRITERION_COLOUR, label="criterion (no labels)")
    twin.set_ylabel("mean cosine criterion", fontsize=8, color=CRITERION_COLOUR)
    if at is not None:
        ax.axvline(steps[at], color="0.3", linewidth=1)
        if precision is not None:
            ax.plot([steps[at]], [precision[at]], "o", color=PRECISION_COLOUR, markersize=7)
        twin.plot([steps[at]], [criterion[at]], "s", color=CRITERION_COLOUR, markersize=7)
    lines = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], fontsize=7, loc="best", framealpha=0.6)


class AdversarialReplay(View):
    """Replay adversarial training step by step: where the mapped source points are, and how the
    measures move.

    Left: both spaces on the target's first two principal axes (fixed for the whole replay): target
    points in grey, mapped source points W_t x (in code, rows: x @ w with w = W_t^T) coloured by cluster.
    Middle: precision@1 and the unsupervised criterion against the step, with a marker at the chosen step. Right: the
    discriminator's accuracy (0.5 = it cannot tell the two apart). Nothing is trained here: the
    history holds the map of every recorded step.

    Parameters
    ----------
    source, target : (n, d) the two spaces; ``cluster`` (n,) colours the source points.
    history : an :class:`mmcourse.alignment.AdversarialHistory`; ``run`` picks one of its runs.
    points : how many source points to draw.

    ``shown`` holds ``step``, ``precision`` (None without a ground truth), ``criterion``,
    ``discriminator_accuracy`` and ``offset``: the mean distance, in the picture, between each drawn
    mapped source point and the target point of the same row (its partner in the lesson's spaces).
    """

    def __init__(self, source, target, cluster, history, run: int = 0, points: int = 600) -> None:
        if not history.step:
            raise ValueError("history: expected at least one recorded step, got none")
        self.source, self.target, self.cluster = source[:points], target, cluster[:points]
        self.history, self.run = history, run
        self.mean, self.axes2d = principal_axes(target)
        self.target2d = (target[:points] - self.mean) @ self.axes2d
        self.steps = list(history.step)
        self.precision = [float(p[run]) for p in history.precision] if history.precision else None
        self.criterion = [float(c[run]) for c in history.criterion]
        self.accuracy = [float(a[run]) for a in history.discriminator_accuracy]
        self.slider = widgets.SelectionSlider(options=self.steps, value=self.steps[0], description="step",
                                              continuous_update=False)
        self._lay_out([self.slider], redraw_on=[self.slider])

    def update(self) -> None:
        """Map the source with the chosen step's W and redraw."""
        at = self.steps.index(self.slider.value)
        w = self.history.maps[at][self.run].to(self.source.device)  # the history may be on another device
        mapped2d = (self.source @ w - self.mean) @ self.axes2d
        offset = (mapped2d - self.target2d[: len(mapped2d)]).norm(dim=1).mean().item()
        self.shown = {"step": self.slider.value, "precision": None if self.precision is None else self.precision[at],
                      "criterion": self.criterion[at], "discriminator_accuracy": self.accuracy[at], "offset": offset}
        self.output.clear_output(wait=True)
        with self.output, figure(12, 3.4, ncols=3) as axes:
            scatter_clusters(axes[0], self.target2d, colour="0.75", size=5, label="target")
            scatter_clusters(axes[0], mapped2d, self.cluster, size=5, alpha=0.7)
            axes[0].set_title(f"step {self.slider.value}: mapped source $Wx$ (colour), target (grey)", fontsize=9)
            axes[0].set_xticks([])
            axes[0].set_yticks([])
            _curves(axes[1], self.steps, self.precision, self.criterion, at)
            axes[1].set_title("the two measures", fontsize=9)
            axes[2].plot(self.steps, self.accuracy, "o-", markersize=2.5, color=DISCRIMINATOR_COLOUR)
            axes[2].axhline(0.5, color="0.6", linestyle=":", linewidth=1)
            axes[2].axvline(self.steps[at], color="0.3", linewidth=1)
            axes[2].set_ylim(0.3, 1.02)
            axes[2].set_xlabel("training step", fontsize=8)
            axes[2].set_title(f"discriminator accuracy {self.accuracy[at]:.2f} (0.5: fooled)", fontsize=9)


class NonIsometryView(View):
    """How far is the target from a rotated copy of the source? A slider over the warp strength.

    Left: the warped target (grey) and the source mapped by the unsupervised recipe's refined map
    (colours), on the target's principal axes. Right: precision@1 and the criterion against the
    warp, a marker at the chosen one, and the precision of the best orthogonal map (all true pairs)
    dashed. Everything was computed by :func:`mmcourse.experiments.alignment.non_isometry`.

    ``shown`` holds ``warp``, ``precision``, ``criterion`` and ``ceiling``.
    """

    def __init__(self, result: dict, points: int = 600) -> None:
        self.result, self.points = result, points
        self.warps = list(result["warps"])
        self.slider = widgets.SelectionSlider(options=self.warps, value=self.warps[0], description="warp",
                                              continuous_update=False)
        self._lay_out([self.slider], redraw_on=[self.slider])

    def update(self) -> None:
        """Show the chosen warp."""
        at = self.warps.index(self.slider.value)
        spaces, w = self.result["spaces"][at], self.result["maps"][at]
        w = w.to(spaces.source.device)  # the map may be on another device
        mean, axes2d = principal_axes(spaces.target)
        target2d = (spaces.target[: self.points] - mean) @ axes2d
        mapped2d = (spaces.source[: self.points] @ w - mean) @ axes2d
        self.shown = {"warp": self.slider.value, "precision": self.result["precision"][at],
                      "criterion": self.result["criterion"][at], "ceiling": self.result["ceiling"][at]}
        self.output.clear_output(wait=True)
        with self.output, figure(9, 3.4, ncols=2) as axes:
            scatter_clusters(axes[0], target2d, colour="0.75", size=5)
            scatter_clusters(axes[0], mapped2d, spaces.cluster[: self.points], size=5, alpha=0.7)
            axes[0].set_title(f"warp {self.slider.value:g}: mapped source on target", fontsize=9)
            axes[0].set_xticks([])
            axes[0].set_yticks([])
            _curves(axes[1], self.warps, self.result["precision"], self.result["criterion"], at, xlabel="warp strength")
            axes[1].plot(self.warps, _host(self.result["ceiling"]), "--", color=PRECISION_COLOUR, linewidth=1)
            axes[1].set_title(f"P@1 {self.shown['precision']:.2f}, criterion {self.shown['criterion']:.3f} "
                              "(dashed: all pairs)", fontsize=9)


def singular_values(failures: dict, names) -> None:
    """The singular values of each run's adversarial map (1 for an orthogonal map), one bar group per run."""
    with figure(6, 2.8) as axes:
        ax = axes[0]
        for name in names:
            values = failures[name]["singular_values"].tolist()
            ax.plot(range(1, len(values) + 1), values, "o-", markersize=3, label=name)
        ax.axhline(1.0, color="0.6", linestyle=":", linewidth=1)
        ax.set_xlabel("singular value, largest first", fontsize=8)
        ax.set_title("singular values of the adversarial map", fontsize=9)
        ax.legend(fontsize=7)


def occurrence_histograms(result: dict, k: int = 10) -> None:
    """Histograms of the k-occurrence of the targets under cosine and under CSLS retrieval (``result``
    from :func:`mmcourse.experiments.alignment.hubness_and_csls`)."""
    top = max(int(result[n]["occurrence"].max()) for n in ("cosine", "csls"))
    bins = torch.arange(0, top + 2).numpy() - 0.5
    with figure(10, 3, ncols=2) as axes:
        for ax, name in zip(axes, ("cosine", "csls")):
            counts, h = result[name]["occurrence"].detach().cpu().numpy(), result[name]["hubness"]
            ax.hist(counts, bins=bins, color=PRECISION_COLOUR if name == "cosine" else CRITERION_COLOUR)
            ax.set_yscale("log")
            ax.set_xlabel(f"N_{k}: how many queries have this target in their top {k}", fontsize=8)
            ax.set_title(f"{name}: skewness {h.skewness:.2f}, largest {h.largest}, never {h.never:.0%}", fontsize=9)
        axes[0].set_ylabel("number of targets", fontsize=8)


def cross_modal_results(result: dict, names) -> None:
    """Speech-to-image Recall@K against K for each alignment, with a random ranking's (chance) dotted,
    and the digits' centroid geometry in each space (``result`` from
    :func:`mmcourse.experiments.alignment.cross_modal_alignment`)."""
    with figure(12, 3.3, ncols=3) as axes:
        ks = sorted(result[names[0]]["recall_at"])
        for name in names:
            axes[0].plot(ks, _host([result[name]["recall_at"][k][0] for k in ks]), "o-", markersize=3, label=name)
        axes[0].plot(ks, _host([result[names[0]]["recall_at"][k][1] for k in ks]), ":", color="0.4", label="chance")
        axes[0].set_xscale("log")
        axes[0].set_xticks(ks, [str(k) for k in ks])
        axes[0].set_ylim(0, 1.02)
        axes[0].set_xlabel("K", fontsize=8)
        axes[0].set_ylabel("Recall@K", fontsize=8)
        axes[0].set_title("speech -> image retrieval", fontsize=9)
        axes[0].legend(fontsize=7)
        for ax, space in zip(axes[1:], ("image", "audio")):
            ax.imshow(result["geometry"][space].detach().cpu().numpy(), cmap=DIVERGING, vmin=-1, vmax=1)
            ax.set_xticks(range(10))
            ax.set_yticks(range(10))
            ax.tick_params(labelsize=6)
            ax.set_title(f"{space}: cosine of digit centroids", fontsize=9)


def caption_results(result: dict) -> None:
    """Recall@K of image-to-caption retrieval for each adversarial weight, chance dotted (``result`` from
    :func:`mmcourse.experiments.alignment.image_to_caption`)."""
    with figure(6, 3) as axes:
        ax = axes[0]
        ks = [1, 5, 10]
        for weight in result["weights"]:
            name = "regression" if weight == 0 else f"+ adversarial, weight {weight:g}"
            ax.plot(ks, _host([result[weight]["recall"][k] for k in ks]), "o-", label=name)
        ax.plot(ks, _host([result["chance"][k] for k in ks]), ":", color="0.5", label="chance")
        ax.set_xticks(ks)
        ax.set_xlabel("K", fontsize=8)
        ax.set_ylabel("Recall@K", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title("image -> caption retrieval on the test split", fontsize=9)
        ax.legend(fontsize=7)
