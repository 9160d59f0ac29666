"""Lesson 01's views: fusion diagrams, the tensor-fusion grid and its low-rank factorisation, robustness and
modality weights."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from IPython.display import Audio, display

from ..data import DIGIT_NAMES, audio_features, corrupt_images
from ..data.audio import SAMPLE_RATE
from .common import (
    DIVERGING,
    View,
    accuracy_curves,
    category_colour,
    figure,
    method_bars,
    show_digit,
    show_scene,
    show_spectrogram,
)


def fusion_diagram(axes) -> None:
    """Three schematic panels: early (concatenate, then learn), late (predict, then combine) and
    intermediate fusion (embed, weigh, combine). ``axes``: three matplotlib axes."""
    panels = [
        ("early fusion", [("image", "audio"), ("concatenate",), ("model",), ("y",)]),
        ("late fusion", [("image", "audio"), ("model 1", "model 2"), ("average\nlog p",), ("y",)]),
        ("intermediate fusion", [("image", "audio"), ("encoder 1", "encoder 2"), ("fuse\nh1, h2",), ("y",)]),
    ]
    style = {"boxstyle": "round,pad=0.3", "edgecolor": "0.5"}
    for ax, (title, columns) in zip(axes, panels):
        boxes = []
        for x, items in zip([0.08, 0.4, 0.7, 0.95], columns):
            ys = [0.72, 0.28] if len(items) == 2 else [0.5]
            boxes.append([ax.text(x, y, item, ha="center", va="center", fontsize=7,
                                  bbox={**style, "facecolor": "#cde" if not boxes else "0.93"})
                          for y, item in zip(ys, items)])
        for left, right in zip(boxes[:-1], boxes[1:]):
            for i, source in enumerate(left):
                target = right[i] if len(right) == len(left) else right[0]
                ax.annotate("", xy=(0, 0.5), xycoords=target, xytext=(1, 0.5), textcoords=source,
                            arrowprops={"arrowstyle": "->", "color": "0.3", "lw": 0.8, "shrinkA": 2, "shrinkB": 2})
        ax.set_xlim(0, 1)
        ax.set_ylim(0.1, 0.9)
        ax.set_title(title, fontsize=9)
        ax.axis("off")


def tensor_fusion_grid(ax, h1: torch.Tensor, h2: torch.Tensor, title: str = "") -> None:
    """Picture of the Tensor Fusion outer product [1, h1] x [1, h2] (h1: (d1,), h2: (d2,)).

    Row 0 holds [1, h2], column 0 holds [1, h1]: the unimodal terms; the rest are the products.
    """
    a = torch.cat([torch.ones(1), torch.as_tensor(h1, dtype=torch.float32).flatten().cpu()])
    b = torch.cat([torch.ones(1), torch.as_tensor(h2, dtype=torch.float32).flatten().cpu()])
    z = torch.outer(a, b)
    limit = float(z.abs().max())
    ax.imshow(z.numpy(), cmap=DIVERGING, vmin=-limit, vmax=limit)
    ax.add_patch(plt.Rectangle((-0.5, -0.5), len(b), 1, fill=False, edgecolor="black", linewidth=1.5))
    ax.add_patch(plt.Rectangle((-0.5, -0.5), 1, len(a), fill=False, edgecolor="black", linewidth=1.5))
    ax.set_xticks([0, len(b) // 2], ["1", "$h^{(2)}$"], fontsize=8)
    ax.set_yticks([0, len(a) // 2], ["1", "$h^{(1)}$"], fontsize=8)
    ax.set_title(title, fontsize=9)


def low_rank_weight(axes, fusion, output: int = 0) -> None:
    """Picture of low-rank fusion's weight for one output: the full (d_1 + 1) x (d_2 + 1) grid of weights,
    one per cell of the tensor-fusion grid, as the sum of r outer products omega_i a_i b_i^T.

    ``fusion`` is a two-modality :class:`~mmcourse.fusion.LowRankFusion` of rank r; a_i and b_i are
    row ``output`` of its factors W_1^(i) and W_2^(i) (stored transposed, so ``fusion.factors[m][i][:, output]``).
    ``axes``: r + 1 matplotlib axes (the grid, then the r rank-one terms), drawn on one colour scale.
    """
    if len(fusion.factors) != 2:
        raise ValueError(f"fusion: expected two modalities, got {len(fusion.factors)}")
    rank = fusion.rank_weights.shape[0]
    if len(axes) != rank + 1:
        raise ValueError(f"axes: expected rank + 1 = {rank + 1} axes, got {len(axes)}")
    with torch.no_grad():
        a, b = (w[:, :, output].detach().cpu() for w in fusion.factors)  # (r, d_1 + 1), (r, d_2 + 1)
        terms = fusion.rank_weights.detach().cpu()[:, None, None] * a[:, :, None] * b[:, None, :]  # (r, d_1+1, d_2+1)
    panels = [(terms.sum(0), r"weights of output $o$ =")]
    for i, term in enumerate(terms):
        panels.append((term, ("" if i == 0 else "+ ") + rf"$\omega_{i + 1} a_{i + 1} b_{i + 1}^\top$"))
    limit = float(max(p.abs().max() for p, _ in panels))
    for ax, (grid, title) in zip(axes, panels):
        ax.imshow(grid.numpy(), cmap=DIVERGING, vmin=-limit, vmax=limit)
        ax.set_xticks([0, grid.shape[1] // 2], ["1", "$h^{(2)}$"], fontsize=8)
        ax.set_yticks([0, grid.shape[0] // 2], ["1", "$h^{(1)}$"], fontsize=8)
        ax.set_title(title, fontsize=9)


def modality_weights(ax, weights, names=("image", "audio"), title: str = "attention weights") -> None:
    """Horizontal bars of one sample's modality weights (they sum to one)."""
    weights = torch.as_tensor(weights).detach().cpu().tolist()
    ax.barh(range(len(weights)), weights, color=[category_colour(i) for i in range(len(weights))])
    for i, w in enumerate(weights):
        ax.text(min(w + 0.02, 0.85), i, f"{w:.2f}", va="center", fontsize=8)
    ax.set_yticks(range(len(weights)), list(names), fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_title(title, fontsize=9)


def sensor_failure_examples(train: dict, examples: dict[str, int]) -> None:
    """Show training rows side by side: ``examples`` maps a title to a row index of ``train`` (the
    columns of :func:`mmcourse.experiments.fusion.sensor_failure_copies`); each gets its digit and spectrogram."""
    with figure(3.7 * len(examples), 2.2, ncols=2 * len(examples)) as axes:
        for k, (name, i) in enumerate(examples.items()):
            show_digit(axes[2 * k], train["image"][i], f"{name}\nnoise {train['image_noise'][i]:.1f}")
            show_spectrogram(axes[2 * k + 1], train["audio"][i], f"{train['audio_snr_db'][i]:.0f} dB")


def robustness_curves(grid, curves: dict) -> None:
    """Accuracy of every method as the image gets noisier, and as the audio does (``curves`` from
    :meth:`mmcourse.experiments.fusion.RobustnessGrid.curves`); dashed: unimodal models, dotted: chance."""
    with figure(10, 3, ncols=2) as axes:
        accuracy_curves(axes[0], grid.image_noises, curves["image_noise"], "image pixel noise (std)",
                        "image gets noisier", chance=0.1)
        accuracy_curves(axes[1], grid.audio_snrs, curves["audio_snr_db"], "audio SNR (dB)", "audio gets noisier", 0.1)
        axes[1].invert_xaxis()
        axes[1].legend(fontsize=7, loc="lower left")


def attention_weight_curves(weights: dict, grid) -> None:
    """Mean attention weight of each modality as the image, then the audio, gets noisier (``weights``
    from :func:`mmcourse.experiments.fusion.mean_attention_weights`)."""
    with figure(9, 2.8, ncols=2) as axes:
        for ax, key, levels, label in ((axes[0], "image_noise", grid.image_noises, "image pixel noise (std)"),
                                       (axes[1], "audio_snr_db", grid.audio_snrs, "audio SNR (dB)")):
            mean = torch.as_tensor(weights[key]).detach().cpu()  # (levels, 2), maybe from an accelerator
            ax.plot(levels, mean[:, 0], "o-", label="image weight")
            ax.plot(levels, mean[:, 1], "o-", label="audio weight")
            ax.set_xlabel(label, fontsize=8)
            ax.set_ylim(0, 1)
        axes[1].invert_xaxis()
        axes[0].legend(fontsize=7)
        axes[0].set_ylabel("mean attention weight", fontsize=8)


def caption_pairs(pairs: dict, rows) -> None:
    """The scenes of caption-matching ``pairs`` (from :func:`mmcourse.experiments.fusion.caption_pairs`)
    at ``rows``, titled with their row and label."""
    with figure(1.5 * len(rows), 2.4, ncols=len(rows), tight=False) as axes:
        for ax, i in zip(axes, rows):
            show_scene(ax, pairs["image"][i], title=f"row {i}: label {int(pairs['label'][i])}")


class FusionRobustnessView(View):
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
        self._lay_out([[self.image_noise, self.image_missing], [self.audio_snr, self.audio_missing]],
                      redraw_on=[self.image_noise, self.audio_snr, self.image_missing, self.audio_missing])

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
            with figure(7, 2.8) as axes:
                method_bars(axes[0], accuracy, reference=0.1, title=f"{image}, {audio} (dashed: chance)")


class ModalityWeightsView(View):
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
        controls = [self.index, self.image_noise, self.audio_snr]
        self._lay_out([controls], redraw_on=controls)

    def sample(self):
        """The current sample, corrupted: image (1, 1, 8, 8), waveform (1, 6400), spectrogram (1, 1, 32, 40)."""
        i = self.index.value
        g = torch.Generator().manual_seed(i)  # the same noise for the same sample and level
        # on the CPU, where the CPU generator draws the noise (the data may live on an accelerator)
        image = corrupt_images(self.images[i : i + 1].cpu(), self.image_noise.value, self.occlusion, g)
        waveform, spectrogram = audio_features(self.waveforms[i : i + 1].cpu(), self.audio_snr.value, g)
        return image, waveform, spectrogram

    def update(self) -> None:
        """Corrupt the chosen sample, run the model and redraw."""
        image, waveform, spectrogram = self.sample()
        self.model.eval()
        device = next(self.model.parameters(), torch.empty(0)).device  # the model's, maybe an accelerator
        with torch.no_grad():
            scores, weights = self.model(image.to(device), spectrogram.to(device))
        scores, weights = scores.cpu(), weights.cpu()
        i, label, prediction = self.index.value, int(self.labels[self.index.value]), int(scores.argmax(1))
        self.shown = {"index": i, "image_noise": self.image_noise.value, "audio_snr_db": self.audio_snr.value,
                      "weights": weights[0].tolist(), "prediction": prediction, "label": label}
        self.output.clear_output(wait=True)
        with self.output:
            verdict = "right" if prediction == label else "wrong"
            with figure(9, 2.3, ncols=3) as axes:
                show_digit(axes[0], image[0], f"image (noise {self.image_noise.value:g})")
                show_spectrogram(axes[1], spectrogram[0], f"audio ({self.audio_snr.value:g} dB)")
                modality_weights(axes[2], weights[0], title=f"predicts {DIGIT_NAMES[prediction]} ({verdict})")
            display(Audio(waveform[0].numpy(), rate=SAMPLE_RATE))

