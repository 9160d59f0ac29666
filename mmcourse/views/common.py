"""Drawing helpers shared by every lesson's views: one figure helper, the course's standard pictures
(digits, spectrograms, scenes, bars, curves) and the base class of the interactive views.

Views draw and never train; they take what ``mmcourse.experiments`` computed. Each lesson's own
plots and widgets live in ``mmcourse/views/<topic>.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from IPython.display import display

from ..data.shapes import ANSWERS

# Colour-blind-safe colours for categories (bars, lines, classes): Okabe and Ito's palette (Wong 2011,
# "Points of view: Color blindness", Nature Methods 8, 441), blue, orange, bluish green, vermillion,
# sky blue, reddish purple, yellow, black. Set as the default colour cycle, so plain ``ax.plot`` calls use
# it too; heatmaps use perceptually uniform maps (viridis, magma, gray) and diverging data a
# colour-blind-safe diverging map (DIVERGING). Ten classes need more: matplotlib's "tab10" is not
# safe, so classes beyond eight repeat with another marker (``category_marker``).
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442", "#000000"]
DIVERGING = "PuOr_r"
plt.rcParams["axes.prop_cycle"] = plt.cycler(color=PALETTE)


def category_colour(i: int) -> str:
    """The colour of category ``i`` (0, 1, ...) in the course's colour-blind-safe palette."""
    return PALETTE[i % len(PALETTE)]


def category_marker(i: int) -> str:
    """A scatter marker for category ``i``: circles for the first eight, then squares, triangles ..."""
    return "os^Dv"[(i // len(PALETTE)) % 5]


@contextmanager
def figure(width: float, height: float, ncols: int = 1, nrows: int = 1, tight: bool = True):
    """A figure of ``nrows`` x ``ncols`` axes, shown and closed when the block ends.

    Yields the axes as a flat array. Inside an ``ipywidgets.Output`` the figure lands in that
    output; closing it frees its memory (matplotlib keeps open figures alive)::

        with figure(8, 3, ncols=2) as axes:
            show_digit(axes[0], image)
            show_spectrogram(axes[1], spectrogram)
    """
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    try:
        yield axes.ravel()
        if tight:
            fig.tight_layout()
        plt.show()
    finally:
        plt.close(fig)


class View(ABC):
    """An interactive view: it displays as its ``widget`` (a box of controls and an Output).

    Each view keeps what it currently shows in ``shown`` (a dict of plain values), so that tests
    can move a control from Python and check the result without a browser.
    """

    widget: widgets.Widget
    shown: dict
    output: widgets.Output

    @abstractmethod
    def update(self) -> None:
        """Redraw ``output`` for the controls' current values and record it in ``shown``."""

    def _lay_out(self, rows: list, redraw_on=()) -> None:
        """Stack ``rows`` (a control, or a list of controls side by side) above a new Output, redraw when
        any control of ``redraw_on`` changes value, and draw once."""
        self.output = widgets.Output()
        self.shown = {}
        for control in redraw_on:
            control.observe(lambda _: self.update(), names="value")
        self.widget = widgets.VBox([widgets.HBox(list(r)) if isinstance(r, (list, tuple)) else r for r in rows]
                                   + [self.output])
        self.update()

    def _ipython_display_(self) -> None:
        display(self.widget)


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


def method_bars(ax, values: dict, reference: float | None = None, ylabel: str = "accuracy", title: str = "",
                ylim: tuple = (0.0, 1.0)) -> None:
    """One bar per method, ``{name: value}``; a NaN value is drawn as "n/a" (the model has no input).

    ``reference`` draws a dashed horizontal line (for example chance level).
    """
    names = list(values)
    heights = [0.0 if v != v else v for v in values.values()]  # NaN -> 0
    colours = [category_colour(i) for i in range(len(names))]
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
        ax.plot(list(levels), list(values), style, marker="o", markersize=3, color=category_colour(i), label=name)
    if chance is not None:
        ax.axhline(chance, color="0.6", linestyle=":", linewidth=0.8)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("test accuracy", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
