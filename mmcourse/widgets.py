"""Interactive views used by the lessons (ipywidgets + inline matplotlib).

Each view keeps what it currently shows in ``shown`` (a dict of plain values), so that tests can
move a control from Python and check the result without a browser.
"""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import Audio, display

from . import plots
from .data.audio import SAMPLE_RATE


def _show(fig) -> None:
    """Show ``fig`` inline (inside the current Output widget) and free it."""
    plt.show()
    plt.close(fig)


class _View:
    """A view displays as its ``widget`` (a box of controls and an Output)."""

    widget: widgets.Widget

    def _ipython_display_(self) -> None:
        display(self.widget)


class SampleBrowser(_View):
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
                fig, axes = plots.new_figure(7, 2.4, ncols=2)
                plots.show_digit(axes[0], row["image"], f"image: {label}")
                plots.show_spectrogram(axes[1], row["audio"], f"audio: {row['voice']}")
                _show(fig)
                display(Audio(row["waveform"].numpy(), rate=SAMPLE_RATE))
                self.shown = {"data": name, "split": split, "index": i, "label": label, "voice": row["voice"]}
            else:
                fig, axes = plots.new_figure(2.6, 2.6)
                plots.show_scene(axes[0], row["image"], row["masks"])
                _show(fig)
                print(plots.describe_scene(row))
                self.shown = {"data": name, "split": split, "index": i, "caption": row["caption"],
                              "answer": row["answer"]}


class CCAExplorer(_View):
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
        from .cca import CCA

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
        self.output = widgets.Output()
        self.shown: dict = {}
        self.reg.observe(lambda _: self.update(), names="value")
        self.component.observe(lambda _: self.update(), names="value")
        self.widget = widgets.VBox([widgets.HBox([self.reg, self.component]), self.output])
        self.update()

    def update(self) -> None:
        """Redraw for the current ridge and component."""
        at, c = self.regs.index(self.reg.value), self.component.value
        train, held_out = self.train[at], self.held_out[at]
        u, v = self.models[at].transform(self.x_test, self.y_test)
        self.shown = {"reg": self.reg.value, "component": c + 1, "train": train, "held_out": held_out,
                      "pair": (train[c], held_out[c])}
        self.output.clear_output(wait=True)
        with self.output:
            fig, axes = plots.new_figure(11, 3.2, ncols=3)
            plots.correlation_bars(axes[0], {"train": train, "held out": held_out}, highlight=c,
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
            plots.canonical_pair(axes[2], u[:, c], v[:, c], title=f"held-out pair {c + 1}: r = {held_out[c]:.2f}")
            fig.tight_layout()
            _show(fig)


class FusionRobustnessView(_View):
    """Every method's test accuracy as you make each modality noisier or take it away (lesson 01).

    Moving a control only evaluates the trained models on test data corrupted in advance at every
    level of the sliders (no training): image pixel noise, audio signal-to-noise ratio, and two
    boxes that remove a modality. A unimodal model whose modality is removed shows "n/a".

    Parameters
    ----------
    models : {method: trained model}, as from :func:`mmcourse.experiments.fusion.train_av_methods`.
    grid : a :class:`mmcourse.experiments.fusion.RobustnessGrid` (the corrupted test sets).

    ``shown`` holds ``image_noise`` and ``audio_snr_db`` (None when that modality is removed) and
    ``accuracy`` ({method: accuracy}).
    """

    def __init__(self, models: dict, grid, image_noise: float = 0.3, audio_snr_db: float = 0.0) -> None:
        if not models:
            raise ValueError("models: expected at least one {method: model}, got an empty dict")
        self.models, self.grid = models, grid
        self.image_noise = widgets.SelectionSlider(options=list(grid.image_noises), value=image_noise,
                                                   description="image noise", continuous_update=False)
        self.audio_snr = widgets.SelectionSlider(options=[(f"{d:g} dB", d) for d in grid.audio_snrs],
                                                 value=audio_snr_db, description="audio SNR", continuous_update=False)
        self.image_missing = widgets.Checkbox(False, description="no image")
        self.audio_missing = widgets.Checkbox(False, description="no audio")
        self.output = widgets.Output()
        self.shown: dict = {}
        for control in (self.image_noise, self.audio_snr, self.image_missing, self.audio_missing):
            control.observe(lambda _: self.update(), names="value")
        self.widget = widgets.VBox([widgets.HBox([self.image_noise, self.image_missing]),
                                    widgets.HBox([self.audio_snr, self.audio_missing]), self.output])
        self.update()

    def update(self) -> None:
        """Evaluate every model at the current settings and redraw the bars."""
        noise = None if self.image_missing.value else self.image_noise.value
        snr = None if self.audio_missing.value else self.audio_snr.value
        accuracy = {m: self.grid.accuracy(model, m, noise, snr) for m, model in self.models.items()}
        self.shown = {"image_noise": noise, "audio_snr_db": snr, "accuracy": accuracy}
        image = "no image" if noise is None else f"image noise {noise:g}"
        audio = "no audio" if snr is None else f"audio {snr:g} dB"
        self.output.clear_output(wait=True)
        with self.output:
            fig, axes = plots.new_figure(7, 2.8)
            plots.method_bars(axes[0], accuracy, reference=0.1, title=f"{image}, {audio} (dashed: chance)")
            fig.tight_layout()
            _show(fig)


class ModalityWeightsView(_View):
    """One AV-Digits test sample through an attention-fusion model: see it, hear it, read its weights.

    Pick a sample and how much to corrupt each modality; the view corrupts that one sample (the
    same noise for the same sample and level), runs the model (evaluation only) and shows the
    digit, the spectrogram, an audio player, the two attention weights and the prediction.

    Parameters
    ----------
    model : a trained classifier returning (scores, weights (B, 2)) for (image, audio) inputs.
    images : clean test images (N, 1, 8, 8); ``waveforms``: clean test clips (N, 6400); ``labels`` (N,).
    image_noises, audio_snrs : the levels on the two sliders; ``occlusion``: side of the occluder.

    ``shown`` holds ``index``, ``image_noise``, ``audio_snr_db``, ``weights`` ([image, audio]),
    ``prediction`` and ``label``.
    """

    def __init__(self, model, images, waveforms, labels, image_noises=(0.0, 0.3, 0.6, 1.0, 1.5, 2.0, 3.0),
                 audio_snrs=(20.0, 10.0, 5.0, 0.0, -5.0, -10.0, -20.0), occlusion: int = 3) -> None:
        if not (len(images) == len(waveforms) == len(labels)) or len(labels) == 0:
            raise ValueError(f"images, waveforms, labels: expected the same number (>= 1) of samples, got "
                             f"{len(images)}, {len(waveforms)}, {len(labels)}")
        self.model, self.images, self.waveforms, self.labels = model, images, waveforms, labels
        self.occlusion = occlusion
        self.index = widgets.IntSlider(0, 0, len(labels) - 1, description="sample", continuous_update=False)
        self.image_noise = widgets.SelectionSlider(options=list(image_noises), value=image_noises[0],
                                                   description="image noise", continuous_update=False)
        self.audio_snr = widgets.SelectionSlider(options=[(f"{d:g} dB", d) for d in audio_snrs], value=audio_snrs[0],
                                                 description="audio SNR", continuous_update=False)
        self.output = widgets.Output()
        self.shown: dict = {}
        for control in (self.index, self.image_noise, self.audio_snr):
            control.observe(lambda _: self.update(), names="value")
        self.widget = widgets.VBox([widgets.HBox([self.index, self.image_noise, self.audio_snr]), self.output])
        self.update()

    def sample(self):
        """The current sample, corrupted: image (1, 1, 8, 8), waveform (1, 6400), spectrogram (1, 1, 32, 40)."""
        import torch

        from .data import audio_features, corrupt_images

        i = self.index.value
        g = torch.Generator().manual_seed(i)  # the same noise for the same sample and level
        image = corrupt_images(self.images[i : i + 1], self.image_noise.value, self.occlusion, g)
        waveform, spectrogram = audio_features(self.waveforms[i : i + 1], self.audio_snr.value, g)
        return image, waveform, spectrogram

    def update(self) -> None:
        """Corrupt the chosen sample, run the model and redraw."""
        import torch

        from .data import DIGIT_NAMES

        image, waveform, spectrogram = self.sample()
        self.model.eval()
        with torch.no_grad():
            scores, weights = self.model(image, spectrogram)
        i, label, prediction = self.index.value, int(self.labels[self.index.value]), int(scores.argmax(1))
        self.shown = {"index": i, "image_noise": self.image_noise.value, "audio_snr_db": self.audio_snr.value,
                      "weights": weights[0].tolist(), "prediction": prediction, "label": label}
        self.output.clear_output(wait=True)
        with self.output:
            fig, axes = plots.new_figure(9, 2.3, ncols=3)
            plots.show_digit(axes[0], image[0], f"image (noise {self.image_noise.value:g})")
            plots.show_spectrogram(axes[1], spectrogram[0], f"audio ({self.audio_snr.value:g} dB)")
            verdict = "right" if prediction == label else "wrong"
            plots.modality_weights(axes[2], weights[0], title=f"predicts {DIGIT_NAMES[prediction]} ({verdict})")
            fig.tight_layout()
            _show(fig)
            display(Audio(waveform[0].numpy(), rate=SAMPLE_RATE))


class AttentionExplorer(_View):
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
        from .data.shapes import VOCAB

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
        from .data.shapes import ANSWERS

        i, j, h = self.index.value, self.word.value, self.head.value
        w = self.weights[i, :, j].mean(0) if h == -1 else self.weights[i, h, j]  # (P,)
        masks, obj = self.data["masks"][i], int(self.data["question_object"][i, j])
        grid = int(round(w.numel() ** 0.5))
        top = int(w.argmax())
        size = masks.shape[-1] // grid
        cell = masks[:, (top // grid) * size:(top // grid + 1) * size, (top % grid) * size:(top % grid + 1) * size]
        answer = ANSWERS[int(self.data["answer_id"][i])]
        predicted = ANSWERS[int(self.predictions[i])] if self.predictions is not None else None
        self.shown = {
            "index": i, "question": self.vocab.decode(self.data["question_ids"][i]),
            "word": self.vocab.itos[int(self.data["question_ids"][i, j])], "position": j, "head": h,
            "object": obj, "top_patch": top, "top_in_object": bool(cell[obj].any()) if obj >= 0 else None,
            "max_weight": float(w.max()), "answer": answer, "predicted": predicted,
        }
        self.output.clear_output(wait=True)
        with self.output:
            fig, axes = plots.new_figure(5.4, 2.8, ncols=2)
            plots.show_scene(axes[0], self.data["image"][i], masks, highlight=obj if obj >= 0 else None,
                             title=self.shown["question"])
            head = "average of heads" if h == -1 else f"head {h}"
            plots.show_attention(axes[1], self.data["image"][i], w, masks, obj if obj >= 0 else None,
                                 title=f"'{self.shown['word']}' ({head}), max {self.shown['max_weight']:.2f}")
            fig.tight_layout()
            _show(fig)
            print(f"answer: {answer}" + (f" | model: {predicted}" if predicted is not None else ""))

