"""Lesson 00's views: digits clean and corrupted, and a browser of the three data sets."""

from __future__ import annotations

import ipywidgets as widgets
from IPython.display import Audio, display

from ..data.audio import SAMPLE_RATE
from .common import View, describe_scene, figure, show_digit, show_scene, show_spectrogram


def clean_and_corrupted(clean, corrupted, labels, names: list[str]) -> None:
    """The same digits clean (top row) and with AV-Digits' default corruption (bottom row).

    Shape: ``clean``, ``corrupted`` (N, 1, 8, 8), ``labels`` (N,).
    """
    with figure(1.15 * len(labels), 2.6, ncols=len(labels), nrows=2) as axes:
        for k, label in enumerate(labels):
            show_digit(axes[k], clean[k], f"{names[int(label)]}\nclean" if k == 0 else names[int(label)])
            show_digit(axes[len(labels) + k], corrupted[k], "corrupted" if k == 0 else "")


class SampleBrowser(View):
    """Browse AV-Digits and Shapes & captions: pick a data set, a split and a sample.

    For AV-Digits it shows the digit, the spectrogram and an audio player; for Shapes the scene
    with its object outlines, the caption, the question and the answer.

    Parameters
    ----------
    datasets : dict
        ``{"AV-Digits": DatasetDict, "Shapes & captions": DatasetDict}`` (either may be left out).
    """

    def __init__(self, datasets: dict) -> None:
        if not datasets:
            raise ValueError("datasets: expected at least one {name: DatasetDict}, got an empty dict")
        self.datasets = datasets
        first = next(iter(datasets))
        self.dataset = widgets.Dropdown(options=list(datasets), value=first, description="data")
        self.split = widgets.Dropdown(options=list(datasets[first]), value="train", description="split")
        self.index = widgets.IntSlider(0, 0, len(datasets[first]["train"]) - 1, description="sample",
                                       continuous_update=False)
        self.output = widgets.Output()
        self.shown: dict = {}
        self._quiet = False  # True while the controls are being reset, to draw once
        self.dataset.observe(lambda _: self._reset(to_first=True), names="value")
        self.split.observe(lambda _: self._reset(to_first=False), names="value")
        self.index.observe(lambda _: self._quiet or self.update(), names="value")
        self.widget = widgets.VBox([widgets.HBox([self.dataset, self.split]), self.index, self.output])
        self.update()

    def _reset(self, to_first: bool) -> None:
        self._quiet = True
        self.index.max = len(self.datasets[self.dataset.value][self.split.value]) - 1
        if to_first:
            self.index.value = 0
        self._quiet = False
        self.update()

    def update(self) -> None:
        """Redraw the current sample."""
        name, split, i = self.dataset.value, self.split.value, self.index.value
        row = self.datasets[name][split][i]
        self.output.clear_output(wait=True)
        with self.output:
            if "waveform" in row:
                label = self.datasets[name][split].features["label"].int2str(int(row["label"]))
                with figure(7, 2.4, ncols=2) as axes:
                    show_digit(axes[0], row["image"], f"image: {label}")
                    show_spectrogram(axes[1], row["audio"], f"audio: {row['voice']}")
                display(Audio(row["waveform"].numpy(), rate=SAMPLE_RATE))
                self.shown = {"data": name, "split": split, "index": i, "label": label, "voice": row["voice"]}
            else:
                with figure(2.6, 2.6, tight=False) as axes:
                    show_scene(axes[0], row["image"], row["masks"])
                print(describe_scene(row))
                self.shown = {"data": name, "split": split, "index": i, "caption": row["caption"],
                              "answer": row["answer"]}
