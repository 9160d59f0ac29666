"""Lesson 02's views: two views with their canonical directions, canonical pairs, the ridge explorer."""

from __future__ import annotations

import ipywidgets as widgets
import torch

from .common import DIVERGING, View, category_colour, category_marker, figure, method_bars, show_digit, show_spectrogram


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

    With integer ``labels`` (N,) the points are coloured by class (the course's palette; classes past
    eight get another marker), with a legend if ``names``.
    """
    u, v = torch.as_tensor(u).cpu().numpy(), torch.as_tensor(v).cpu().numpy()
    if labels is None:
        ax.scatter(u, v, s=6, alpha=0.5)
    else:
        labels = torch.as_tensor(labels).cpu()
        for c in labels.unique().tolist():
            at = (labels == c).numpy()
            ax.scatter(u[at], v[at], s=6, alpha=0.7, color=category_colour(c),
                       marker=category_marker(c), label=names[c] if names else None)
        if names:
            ax.legend(fontsize=6, markerscale=2, ncol=2)
    ax.set_xlabel("x projection  $w_x^\\top x$", fontsize=8)
    ax.set_ylabel("y projection  $w_y^\\top y$", fontsize=8)
    ax.set_title(title, fontsize=9)


def two_views_with_directions(axes, x: torch.Tensor, y: torch.Tensor, w_x: torch.Tensor, w_y: torch.Tensor) -> None:
    """The 2-D picture of CCA: view x (N, 2) and view y (N, 2) with their first canonical directions.

    Each sample has the same colour in both panels (its position along ``w_x``), so you can see
    which points of x go with which points of y. ``w_x``, ``w_y``: (2,) directions.
    """
    x, y = torch.as_tensor(x).cpu(), torch.as_tensor(y).cpu()
    colour = ((x - x.mean(0)) @ torch.as_tensor(w_x, dtype=x.dtype).cpu()).numpy()
    for ax, data, w, name in ((axes[0], x, w_x, "x"), (axes[1], y, w_y, "y")):
        ax.scatter(data[:, 0].numpy(), data[:, 1].numpy(), c=colour, cmap=DIVERGING, s=6)
        w = torch.as_tensor(w, dtype=data.dtype).cpu()
        w = 2.5 * data.std(0).max() * w / w.norm()
        centre = data.mean(0)
        ax.annotate("", (centre + w).tolist(), (centre - w).tolist(), arrowprops={"arrowstyle": "->", "lw": 2})
        ax.set_title(f"view {name}, arrow: $w_{name}$", fontsize=9)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xlabel(f"${name}_1$", fontsize=8)
        ax.set_ylabel(f"${name}_2$", fontsize=8)


def cca_picture(small, cca) -> None:
    """The 2-D picture of CCA: both views with their first canonical directions, and the first pair."""
    u, v = cca.transform(small.x, small.y)
    with figure(11, 3.4, ncols=3) as axes:
        two_views_with_directions(axes, small.x, small.y, cca.x_weights_[:, 0], cca.y_weights_[:, 0])
        canonical_pair(axes[2], u[:, 0], v[:, 0], title=f"first pair: r = {cca.canonical_correlations_[0]:.2f}")


def shared_space(image_scores, audio_scores, labels, names: list[str]) -> None:
    """The first two canonical components of test images and sounds, coloured by class."""
    with figure(10, 4, ncols=2) as axes:
        for ax, scores, name in ((axes[0], image_scores, "images"), (axes[1], audio_scores, "sounds")):
            canonical_pair(ax, scores[:, 0], scores[:, 1], labels, f"test {name}", names)
            ax.set_xlabel("canonical component 1", fontsize=8)
            ax.set_ylabel("canonical component 2", fontsize=8)


def retrieval_row(query_spectrogram, images, similarities, labels, names: list[str], title: str) -> None:
    """One spoken query and the images it retrieves, each titled with its class and similarity."""
    with figure(1.5 * (len(images) + 1), 1.9, ncols=len(images) + 1) as axes:
        show_spectrogram(axes[0], query_spectrogram, title)
        for ax, image, score, label in zip(axes[1:], images, similarities, labels):
            show_digit(ax, image, f"{names[int(label)]} ({float(score):.2f})")


def deep_cca_results(history, linear_pair, deep_pair) -> None:
    """Deep CCA's training loss, and the first held-out pair of linear and of Deep CCA (each (u, v))."""
    with figure(11, 3.2, ncols=3) as axes:
        axes[0].plot(history.epoch, history.train_loss)
        axes[0].set_xlabel("epoch", fontsize=8)
        axes[0].set_title("training loss (minus total correlation)", fontsize=9)
        canonical_pair(axes[1], *linear_pair, title="held out, linear CCA, pair 1")
        canonical_pair(axes[2], *deep_pair, title="held out, Deep CCA, pair 1")


class CCAExplorer(View):
    """Regularised CCA, train against held-out: a ridge slider and a component selector.

    For every ridge on the slider a :class:`mmcourse.cca.CCA` is fitted once, up front (closed
    form, milliseconds each), so moving a control only redraws. The view shows the correlation of
    each canonical pair on the training and the held-out data, how the chosen pair's two
    correlations change with the ridge, and the held-out scatter of the chosen pair.

    Parameters
    ----------
    x, y : training views (n, p), (n, q).
    x_test, y_test : held-out views (m, p), (m, q).
    n_components : int, canonical pairs to fit.
    regs : the ridges on the slider, increasing (0 is plain CCA).

    ``shown`` holds ``reg``, ``component`` (1-based), ``train`` and ``held_out`` (lists of k
    correlations at that ridge) and ``pair`` (train and held-out correlation of the chosen pair).
    """

    def __init__(self, x, y, x_test, y_test, n_components: int = 3,
                 regs=(0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)) -> None:
        from ..cca import CCA  # fitting CCA takes milliseconds: the explorer fits one per ridge

        self.regs = [float(r) for r in regs]
        if not self.regs or sorted(self.regs) != self.regs or self.regs[0] < 0:
            raise ValueError(f"regs: expected one or more increasing ridges >= 0, got {regs!r}")
        self.x_test, self.y_test = x_test, y_test
        self.models = [CCA(n_components, reg=r).fit(x, y) for r in self.regs]
        self.train = [m.correlations(x, y).tolist() for m in self.models]
        self.held_out = [m.correlations(x_test, y_test).tolist() for m in self.models]
        self.reg = widgets.SelectionSlider(options=[(f"{r:g}", r) for r in self.regs], value=self.regs[0],
                                           description="ridge", continuous_update=False)
        self.component = widgets.ToggleButtons(options=[(str(i + 1), i) for i in range(n_components)], value=0,
                                               description="component", style={"button_width": "40px"})
        self._lay_out([[self.reg, self.component]], redraw_on=[self.reg, self.component])

    def update(self) -> None:
        """Redraw for the current ridge and component."""
        at, c = self.regs.index(self.reg.value), self.component.value
        train, held_out = self.train[at], self.held_out[at]
        u, v = self.models[at].transform(self.x_test, self.y_test)
        self.shown = {"reg": self.reg.value, "component": c + 1, "train": train, "held_out": held_out,
                      "pair": (train[c], held_out[c])}
        self.output.clear_output(wait=True)
        with self.output:
            with figure(11, 3.2, ncols=3) as axes:
                correlation_bars(axes[0], {"train": train, "held out": held_out}, highlight=c,
                                 title=f"ridge {self.reg.value:g}")
                steps = range(len(self.regs))
                axes[1].plot(steps, [t[c] for t in self.train], "o-", label="train")
                axes[1].plot(steps, [h[c] for h in self.held_out], "o-", label="held out")
                axes[1].axvline(at, color="0.6", lw=1)
                axes[1].set_xticks(steps, [f"{r:g}" for r in self.regs], rotation=90, fontsize=7)
                axes[1].set_xlabel("ridge", fontsize=8)
                axes[1].set_ylabel("correlation", fontsize=8)
                axes[1].set_title(f"component {c + 1} against the ridge", fontsize=9)
                axes[1].legend(fontsize=7)
                canonical_pair(axes[2], u[:, c], v[:, c], title=f"held-out pair {c + 1}: r = {held_out[c]:.2f}")



def _box(ax, centre: tuple[float, float], text: str, width: float, height: float, colour: str) -> None:
    """A rounded box with centred text, in axes coordinates."""
    from matplotlib.patches import FancyBboxPatch

    x, y = centre
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.01",
                                facecolor=colour, edgecolor="0.3", linewidth=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=9)


def _arrow(ax, start: tuple[float, float], end: tuple[float, float], dashed: bool = False) -> None:
    ax.annotate("", end, start, arrowprops={"arrowstyle": "->", "lw": 1.3, "color": "0.25",
                                            "linestyle": "--" if dashed else "-"})


def deep_cca_architecture() -> None:
    """The picture of Deep CCA (Andrew et al. 2013): two networks, one per view, and the correlation
    objective on top of their outputs, measured on a minibatch; the gradient flows back into both."""
    with figure(9, 4.2) as (ax,):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.axis("off")
        blue, green, grey, yellow = "#cfe3f3", "#cdeee2", "0.93", "#fbeec2"  # Okabe-Ito tints
        for x, view, name, net, h in ((0.25, "x", "view x, e.g. pixels (B, $d_x$)", "$f_1$: network",
                                       "$h^{(1)} = f_1(x)$"),
                                      (0.75, "y", "view y, e.g. a spectrogram (B, $d_y$)", "$f_2$: network",
                                       "$h^{(2)} = f_2(y)$")):
            _box(ax, (x, 0.08), name, 0.36, 0.1, grey)
            _box(ax, (x, 0.33), net, 0.26, 0.14, blue if view == "x" else green)
            _box(ax, (x, 0.57), h + ("  (B, $d_1$)" if view == "x" else "  (B, $d_2$)"), 0.3, 0.1, grey)
            _arrow(ax, (x, 0.13), (x, 0.26))
            _arrow(ax, (x, 0.40), (x, 0.52))
            _arrow(ax, (x, 0.62), (0.5 + 0.55 * (x - 0.5), 0.78))
            side = 0.5 + 1.8 * (x - 0.5)  # outside the column: the gradient's way back
            ax.plot([side, side], [0.78, 0.33], "--", color="0.25", lw=1.3)
            _arrow(ax, (side, 0.33), (x + 0.13 * (1 if x > 0.5 else -1), 0.33), dashed=True)
        _box(ax, (0.5, 0.86), "correlation objective on the batch:  $\\mathcal{L} = -(s_1 + \\dots + s_r)$,  "
             "$s_1, \\dots, s_r$ the $r$ largest singular values of\n"
             "$\\tilde C_{xy} = (C_{xx} + \\lambda I)^{-1/2}\\, C_{xy}\\, "
             "(C_{yy} + \\lambda I)^{-1/2}$", 0.9, 0.16, yellow)
        ax.text(0.5, 0.47, "no labels: only which x\nwas paired with which y", ha="center", va="center",
                fontsize=8, color="0.35")
        ax.text(0.5, 0.68, "dashed: the gradient of $\\mathcal{L}$\ntrains both networks", ha="center",
                va="center", fontsize=8, color="0.35")
        ax.set_title("Deep CCA: two networks trained so that their outputs are maximally correlated", fontsize=10)


def retrieval_comparison(results: dict, chance: tuple[float, float]) -> None:
    """Recall@1 and Recall@5 of several methods, ``{name: (recall1, recall5)}``, with chance dashed."""
    with figure(8, 3, ncols=2) as axes:
        for i, (ax, k) in enumerate(zip(axes, (1, 5))):
            method_bars(ax, {name: r[i] for name, r in results.items()}, reference=chance[i],
                        ylabel=f"Recall@{k}", title=f"speech to image, Recall@{k} (dashed: chance)")
