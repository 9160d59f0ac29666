"""Lesson 05's views: the three ways to combine modalities, products and mixtures of Gaussians, generated
samples, coherence bars, and the latent-space explorer."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch

from ..autoencoders import product_of_experts
from ..data import COLOURS, DIGIT_NAMES, SHAPES
from ..data.shapes import RGB
from ..experiments.autoencoders import COLOUR, SHAPE, describe, latent_map
from .common import View, category_colour, category_marker, figure, show_digit, show_scene, show_spectrogram

MARKERS = {"circle": "o", "square": "s", "triangle": "^"}


def three_ways(axes) -> None:
    """Three schematic panels: a shared code from concatenated features (bimodal autoencoder), a product
    of experts (MVAE) and a mixture of experts (MMVAE). ``axes``: three matplotlib axes."""
    panels = [("one code from both (autoencoder)", "concatenate\n+ layer"),
              ("product of experts (MVAE)", "p(z) q1 q2\n(multiply)"),
              ("mixture of experts (MMVAE)", "(q1 + q2) / 2\n(average)")]
    style = {"boxstyle": "round,pad=0.3", "edgecolor": "0.5"}
    for ax, (title, combine) in zip(axes, panels):
        def box(x, y, text, colour="0.93", ax=ax):
            return ax.text(x, y, text, ha="center", va="center", fontsize=7, bbox={**style, "facecolor": colour})

        inputs = [box(0.08, 0.75, "image", "#cde"), box(0.08, 0.25, "caption\nor audio", "#cde")]
        encoders = [box(0.33, 0.75, "encoder 1"), box(0.33, 0.25, "encoder 2")]
        middle, code = box(0.6, 0.5, combine, "#fdb"), box(0.85, 0.5, "z", "#dfd")
        arrows = [(inputs[0], encoders[0]), (inputs[1], encoders[1]), (encoders[0], middle), (encoders[1], middle),
                  (middle, code)]
        for source, target in arrows:
            ax.annotate("", xy=(0, 0.5), xycoords=target, xytext=(1, 0.5), textcoords=source,
                        arrowprops={"arrowstyle": "->", "color": "0.3", "lw": 0.8, "shrinkA": 2, "shrinkB": 2})
        ax.text(0.85, 0.2, "decoders:\nimage, caption", ha="center", fontsize=7, color="0.35")
        ax.set_xlim(0, 1)
        ax.set_ylim(0.05, 0.95)
        ax.set_title(title, fontsize=9)
        ax.axis("off")


def show_pairs(shapes, av, indices=(0, 1, 2)) -> None:
    """A few training pairs of each data set: scenes with their captions, digits with their spectrograms."""
    n = len(indices)
    with figure(2.2 * n * 2, 2.4, ncols=2 * n) as axes:
        for k, i in enumerate(indices):
            caption = describe(shapes.train["caption"][i]).replace(" at", "\nat")
            show_scene(axes[k], shapes.train["image"][i], title=caption)
            show_digit(axes[n + k], av.train["image"][i], f"image: {DIGIT_NAMES[int(av.train['label'][i])]}")
        for k, i in enumerate(indices):  # spectrograms as small insets under each digit's title
            inset = axes[n + k].inset_axes([1.02, 0.0, 0.5, 1.0])
            show_spectrogram(inset, av.train["audio"][i], "spoken")
            inset.set_xticks([])
            inset.set_yticks([])
            inset.set_xlabel("")
            inset.set_ylabel("")


def gaussian_product(ax, mus, variances, with_prior: bool = False, title: str = "") -> None:
    """1-D Gaussian experts N(mu_i, var_i) (dashed) and their product (solid), computed with
    :func:`~mmcourse.autoencoders.product_of_experts`; ``with_prior`` adds the N(0, 1) expert (dotted)."""
    mus, variances = [float(m) for m in mus], [float(v) for v in variances]  # numbers, maybe device tensors
    if with_prior:
        mus, variances = [0.0, *mus], [1.0, *variances]
    mu = torch.tensor(mus, dtype=torch.float64).view(-1, 1, 1)
    logvar = torch.tensor(variances, dtype=torch.float64).log().view(-1, 1, 1)
    product = product_of_experts(mu, logvar)
    x = torch.linspace(-4, 6, 400, dtype=torch.float64)

    def density(m, v):
        return torch.exp(-0.5 * (x - m) ** 2 / v) / (2 * torch.pi * v) ** 0.5

    for i, (m, v) in enumerate(zip(mus, variances)):
        prior = with_prior and i == 0
        ax.plot(x, density(m, v), ":" if prior else "--", color="0.5" if prior else category_colour(i),
                label="prior N(0, 1)" if prior else f"expert N({m:g}, {v:g})")
    m, v = float(product.mu), float(product.logvar.exp())
    ax.plot(x, density(m, v), color="black", lw=2, label=f"product N({m:.2f}, {v:.2f})")
    ax.legend(fontsize=7)
    ax.set_yticks([])
    ax.set_xlabel("z", fontsize=8)
    ax.set_title(title, fontsize=9)


def gaussian_mixture(ax, mus: Sequence[float], variances: Sequence[float], title: str = "") -> None:
    """1-D Gaussian experts N(mu_i, sigma_i^2) (dashed) and their mixture with equal weights 1/M (solid), the
    MMVAE posterior: the mixture's density is the average of the experts' densities."""
    x = torch.linspace(-4, 6, 400, dtype=torch.float64)
    mu = torch.tensor([float(m) for m in mus], dtype=torch.float64)  # numbers, maybe device tensors
    variance = torch.tensor([float(v) for v in variances], dtype=torch.float64)
    density = torch.exp(-0.5 * (x[:, None] - mu) ** 2 / variance) / (2 * torch.pi * variance) ** 0.5  # (400, M)
    for i, (m, v) in enumerate(zip(mu.tolist(), variance.tolist())):
        ax.plot(x, density[:, i], "--", color=category_colour(i), label=f"expert N({m:g}, {v:g})")
    ax.plot(x, density.mean(-1), color="black", lw=2, label="mixture")
    ax.legend(fontsize=7)
    ax.set_yticks([])
    ax.set_xlabel("z", fontsize=8)
    ax.set_title(title, fontsize=9)


def product_and_mixture(mus: Sequence[float], variances: Sequence[float]) -> None:
    """The same 1-D Gaussian experts N(mu_i, sigma_i^2) combined the two ways of lesson 05, side by side:
    their product (MVAE, :func:`gaussian_product`) and their mixture (MMVAE, :func:`gaussian_mixture`)."""
    with figure(10, 2.6, ncols=2) as axes:
        gaussian_product(axes[0], mus, variances, title="their product (MVAE)")
        gaussian_mixture(axes[1], mus, variances, title="their mixture (MMVAE)")


def training_curves(histories: dict, title: str = "training loss (minus the ELBO for the VAEs)") -> None:
    """The training loss per epoch of each model, ``{name: History}``, one panel per model (their scales differ)."""
    with figure(3.2 * len(histories), 2.4, ncols=len(histories)) as axes:
        for ax, (name, history) in zip(axes, histories.items()):
            ax.plot(history.epoch, history.train_loss)
            ax.set_xlabel("epoch", fontsize=8)
            ax.set_title(name, fontsize=9)
        axes[0].set_ylabel(title, fontsize=8)


def _show_output(ax, data, modality: str, x: torch.Tensor, title: str = "") -> None:
    """Draw one sample of ``modality`` of ``data`` (a scene, a caption, a digit or a spectrogram)."""
    if modality == "caption":
        ax.text(0.5, 0.5, describe(x).replace(" at", "\nat"), ha="center", va="center", fontsize=8, wrap=True)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    elif modality == "audio":
        show_spectrogram(ax, x, title)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.set_xticks([])
        ax.set_yticks([])
    elif data.name == "shapes":
        show_scene(ax, x, title=title)
    else:
        show_digit(ax, x, title)


def caption_title(tokens: torch.Tensor) -> str:
    """A caption's four tokens (4,) as a short title on three lines: size and colour, shape, position."""
    words = describe(tokens).split()  # "a <size> <colour> <shape> at the <position...>"
    return f"{words[1]} {words[2]}\n{words[3]}\n{' '.join(words[6:])}"


def generated_rows(data, rows: dict, titles: list[str], modality: str = "image") -> None:
    """Rows of samples of ``modality``: ``rows = {label: (N, ...) tensor}``, one column per sample,
    the columns titled with ``titles`` (e.g. the conditioning captions) and each row named by its label."""
    n = len(titles)
    with figure(1.45 * n + 0.8, 1.55 * len(rows), ncols=n, nrows=len(rows), tight=False) as axes:
        axes = axes.reshape(len(rows), n)
        for r, (label, samples) in enumerate(rows.items()):
            for c in range(n):
                _show_output(axes[r, c], data, modality, samples[c], titles[c] if r == 0 else "")
            axes[r, 0].text(-0.15, 0.5, label, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=8)
        plt.gcf().subplots_adjust(left=0.14, wspace=0.1, hspace=0.15, top=0.8)


def coherence_bars(tables: dict, title: str = "") -> None:
    """Cross-modal and joint coherence of each model: one panel per data set, ``tables = {data set:
    {model: {direction: Coherence}}}`` (from :func:`~mmcourse.experiments.autoencoders.coherence_table`);
    grey ticks mark each bar's chance level. A direction a model lacks (the autoencoder's joint
    coherence) leaves its bar out."""
    with figure(5.2 * len(tables), 2.9, ncols=len(tables)) as axes:
        for ax, (name, table) in zip(axes, tables.items()):
            models = list(table)
            directions = list(dict.fromkeys(d for row in table.values() for d in row))  # every direction, in order
            width = 0.8 / len(models)
            for j, model in enumerate(models):
                present = [i for i, d in enumerate(directions) if d in table[model]]
                xs = [i + (j - (len(models) - 1) / 2) * width for i in present]
                cells = [table[model][directions[i]] for i in present]
                ax.bar(xs, [c.coherence for c in cells], width, label=model, color=category_colour(j))
                ax.hlines([c.chance for c in cells], [x - width / 2 for x in xs], [x + width / 2 for x in xs],
                          color="0.3", lw=1.5)
            ax.set_xticks(range(len(directions)), directions, fontsize=8)
            ax.set_ylim(0, 1)
            ax.set_ylabel("coherence", fontsize=8)
            ax.set_title(name, fontsize=9)
        axes[0].legend(fontsize=7, loc="upper right")
        if title:
            plt.gcf().suptitle(title, fontsize=9)


def alignment_pitfall(results: dict) -> None:
    """Section 6: both models' training loss, and each one's image-audio code distance for real and for
    shuffled test pairs (``results`` from :func:`~mmcourse.experiments.autoencoders.alignment_pitfall`)."""
    with figure(9, 2.8, ncols=2) as axes:
        for name, r in results.items():
            axes[0].plot(r["history"].epoch, r["history"].train_loss, label=f"{name} term")
        axes[0].set_xlabel("epoch", fontsize=8)
        axes[0].set_title("training loss: both train happily", fontsize=9)
        axes[0].legend(fontsize=7)
        names = list(results)
        for k, (key, label) in enumerate((("paired", "real pairs"), ("shuffled", "shuffled pairs"))):
            axes[1].bar([i + (k - 0.5) * 0.35 for i in range(len(names))], [results[n][key] for n in names], 0.35,
                        label=label, color=category_colour(k))
        axes[1].set_xticks(range(len(names)), [f"{n} term" for n in names], fontsize=8)
        axes[1].set_ylabel("distance of the two codes", fontsize=8)
        axes[1].set_title("real pairs against shuffled pairs", fontsize=9)
        axes[1].legend(fontsize=7, loc="upper center")


class LatentExplorer(View):
    """The latent space of a trained model: the test set's codes in 2-D, a point you move, and an interpolation.

    The codes are the posterior means (:meth:`embed`) of the test split from one modality ("in"), or
    from both, drawn on their first two principal components, computed once from the codes of both
    modalities (:func:`~mmcourse.experiments.autoencoders.latent_map`). Scenes are drawn in their
    object's colour with their shape as the marker; digits in one colour each. The two sliders move a
    point in that plane (it starts near test sample 0); it is decoded live into both modalities. Its
    code is that of the nearest test code in the plane, moved along the two components to the point:
    the other D - 2 coordinates come from a real sample, so the decoded point stays among codes the
    model knows (the mean code would decode to a blur of every scene). The two sample sliders pick test
    samples; their codes (from the "in" modality) are interpolated in 7 steps and decoded into the
    other modality.

    Parameters
    ----------
    model : a trained model of :mod:`mmcourse.autoencoders` (eval mode).
    data : a :class:`~mmcourse.experiments.autoencoders.Paired` data set.

    ``shown`` holds ``point`` (x, y), ``given`` (the "in" modality), ``nearest`` (the test sample whose
    code it starts from), ``code`` (D floats, the decoded point's code), ``decoded`` (the point's
    decoded caption text, or the sum of its decoded digit image), ``samples`` (a, b) and ``path``
    (the interpolation's codes, 7 x D).
    """

    STEPS = 7

    def __init__(self, model, data, given: str | None = None) -> None:
        self.model, self.data = model, data
        self.device = next(model.parameters(), torch.empty(0)).device  # the model's, maybe an accelerator
        on_model = dataclasses.replace(data, test={k: v.to(self.device) for k, v in data.test.items()})
        found = latent_map(model, on_model)
        self.map = {"codes": {k: c.cpu() for k, c in found["codes"].items()}, "mean": found["mean"].cpu(),
                    "components": found["components"].cpu(),
                    "project": lambda z: found["project"](z.to(self.device)).cpu(),
                    "points": {k: p.cpu() for k, p in found["points"].items()}}  # on the CPU, for drawing
        first, second = data.modalities
        given = second if given is None else given
        options = [(f"{first} only", first), (f"{second} only", second), ("both", "both")]
        if given not in dict((v, v) for _, v in options):
            raise ValueError(f"given: expected {first!r}, {second!r} or 'both', got {given!r}")
        every = torch.cat(list(self.map["points"].values()))
        lows, highs = (every.min(0).values * 10).floor() / 10, (every.max(0).values * 10).ceil() / 10
        start = (self.map["points"][given][0] * 10).round() / 10  # the point starts at test sample 0
        self.x = widgets.FloatSlider(float(start[0]), min=float(lows[0]), max=float(highs[0]), step=0.1,
                                     description="point x", continuous_update=False)
        self.y = widgets.FloatSlider(float(start[1]), min=float(lows[1]), max=float(highs[1]), step=0.1,
                                     description="point y", continuous_update=False)
        self.given = widgets.Dropdown(options=options, value=given, description="in")
        n = len(data.test["label"])
        self.a = widgets.IntSlider(0, 0, n - 1, description="sample a", continuous_update=False)
        self.b = widgets.IntSlider(1, 0, n - 1, description="sample b", continuous_update=False)
        self._lay_out([[self.x, self.y, self.given], [self.a, self.b]],
                      redraw_on=[self.x, self.y, self.given, self.a, self.b])

    def _scatter(self, ax, points: torch.Tensor) -> None:
        labels = self.data.test["label"].cpu()
        if self.data.name == "shapes":
            caption = self.data.test["caption"].cpu()
            for s, shape in enumerate(SHAPES):
                for c, colour in enumerate(COLOURS):
                    at = (caption[:, SHAPE] == s) & (caption[:, COLOUR] == c)
                    ax.scatter(points[at, 0], points[at, 1], s=9, marker=MARKERS[shape], color=RGB[colour],
                               alpha=0.6)
                ax.scatter([], [], s=12, marker=MARKERS[shape], color="0.4", label=shape)  # legend: shape only
        else:
            for d in range(10):
                at = labels == d
                ax.scatter(points[at, 0], points[at, 1], s=7, color=category_colour(d), marker=category_marker(d),
                           alpha=0.6, label=DIGIT_NAMES[d])
        ax.legend(fontsize=6, markerscale=1.5, ncol=2, loc="upper right")

    @torch.no_grad()
    def update(self) -> None:
        """Decode the point and the interpolation for the current controls, and redraw."""
        given, first, second = self.given.value, *self.data.modalities
        codes, points = self.map["codes"][given], self.map["points"][given]
        target = torch.tensor([self.x.value, self.y.value], dtype=points.dtype)
        nearest = int((points - target).pow(2).sum(1).argmin())
        code = codes[nearest] + (target - points[nearest]) @ self.map["components"]  # projects onto the point
        decoded = [x.cpu() for x in self.model.decode(code[None].to(self.device))]
        t = torch.linspace(0, 1, self.STEPS)[:, None]
        path = (1 - t) * codes[self.a.value] + t * codes[self.b.value]  # (STEPS, D)
        made = first if given == second else second  # the other modality ("both": the first)
        along = self.model.decode(path.to(self.device))[self.data.modalities.index(made)].cpu()
        path_2d = self.map["project"](path)
        decoded_value = (describe(decoded[1][0]) if self.data.name == "shapes"
                         else round(float(decoded[0].sum()), 4))
        self.shown = {"point": (self.x.value, self.y.value), "given": given, "nearest": nearest, "code": code.tolist(),
                      "decoded": decoded_value, "samples": (self.a.value, self.b.value), "path": path.tolist()}
        self.output.clear_output(wait=True)
        with self.output:
            fig, axes = plt.subplot_mosaic([["map", "map", "one", "two"], ["map", "map", "one", "two"],
                                            ["path"] * 4], figsize=(10, 6.4),
                                           gridspec_kw={"height_ratios": [1, 1, 0.9]})
            try:
                self._scatter(axes["map"], points)
                axes["map"].plot(path_2d[:, 0], path_2d[:, 1], "k.-", lw=1, ms=4)
                axes["map"].plot([self.x.value], [self.y.value], "k*", ms=14, mec="white")
                axes["map"].set_title(f"test codes from {given if given == 'both' else given + ' only'} "
                                      "(principal components 1 and 2)", fontsize=9)
                _show_output(axes["one"], self.data, first, decoded[0][0], f"the point as {first}")
                _show_output(axes["two"], self.data, second, decoded[1][0], f"the point as {second}")
                strip = axes["path"]
                strip.axis("off")
                strip.set_title(f"from sample a to sample b: {given} in, {made} out", fontsize=9)
                for k in range(self.STEPS):
                    inner = strip.inset_axes([k / self.STEPS + 0.01, 0.0, 1 / self.STEPS - 0.02, 0.9])
                    end = "a" if k == 0 else "b" if k == self.STEPS - 1 else ""
                    _show_output(inner, self.data, made, along[k], end)
                fig.tight_layout()
                plt.show()
            finally:
                plt.close(fig)
