"""Lesson 08's views: the two diagrams, the multi-task comparison with a task selector, the teacher's soft labels,
and the distillation explorer (temperature and alpha sliders over the students the lesson trained)."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch

from ..data.shapes import ANSWERS, VOCAB
from ..transfer import soft_targets
from .common import DIVERGING, View, figure, show_digit, show_scene

SHARED, SEPARATE = "#0072B2", "#E69F00"  # Okabe-Ito blue and orange


def multitask_diagram(ax) -> None:
    """Hard parameter sharing: image and question into one shared encoder, four task heads on top."""
    style = {"boxstyle": "round,pad=0.3", "edgecolor": "0.5"}
    inputs = [ax.text(0.08, y, name, ha="center", va="center", fontsize=8, bbox={**style, "facecolor": "#cde"})
              for y, name in ((0.7, "image"), (0.3, "question"))]
    encoder = ax.text(0.4, 0.5, "shared encoder\n(lesson 03: words\nattend to patches)", ha="center", va="center",
                      fontsize=8, bbox={**style, "facecolor": "0.93"})
    heads = [ax.text(0.78, y, f"{name} head", ha="center", va="center", fontsize=7,
                     bbox={**style, "facecolor": "#fde0c0"})
             for y, name in zip((0.85, 0.62, 0.38, 0.15), ("colour", "size", "position", "exists"))]
    arrow = {"arrowstyle": "->", "color": "0.3", "lw": 0.8, "shrinkA": 2, "shrinkB": 2}
    for box in inputs:
        ax.annotate("", xy=(0, 0.5), xycoords=encoder, xytext=(1, 0.5), textcoords=box, arrowprops=arrow)
    for box in heads:
        ax.annotate("", xy=(0, 0.5), xycoords=box, xytext=(1, 0.5), textcoords=encoder, arrowprops=arrow)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("one encoder, one head per question type", fontsize=9)
    ax.axis("off")


def distillation_diagram(ax) -> None:
    """Cross-modal distillation: a teacher hears and sees an unlabelled pair, an image-only student learns
    from the teacher's soft labels."""
    style = {"boxstyle": "round,pad=0.3", "edgecolor": "0.5"}
    boxes = {
        "pair": ax.text(0.1, 0.5, "unlabelled\nimage + audio", ha="center", va="center", fontsize=8,
                        bbox={**style, "facecolor": "#cde"}),
        "teacher": ax.text(0.42, 0.78, "teacher\n(image + audio)", ha="center", va="center", fontsize=8,
                           bbox={**style, "facecolor": "0.93"}),
        "student": ax.text(0.42, 0.22, "student\n(image only)", ha="center", va="center", fontsize=8,
                           bbox={**style, "facecolor": "#fde0c0"}),
        "soft": ax.text(0.82, 0.5, "soft labels\n" r"softmax($v / \tau$)", ha="center", va="center", fontsize=8,
                        bbox={**style, "facecolor": "white"}),
    }
    arrow = {"arrowstyle": "->", "color": "0.3", "lw": 0.8, "shrinkA": 2, "shrinkB": 2}
    for a, b in (("pair", "teacher"), ("pair", "student"), ("teacher", "soft")):
        ax.annotate("", xy=(0, 0.5), xycoords=boxes[b], xytext=(1, 0.5), textcoords=boxes[a], arrowprops=arrow)
    ax.annotate("", xy=(1, 0.5), xycoords=boxes["student"], xytext=(0.5, 0), textcoords=boxes["soft"],
                arrowprops={**arrow, "linestyle": "--"})
    ax.text(0.7, 0.22, "match them\n" r"(KL at $\tau$)", ha="center", va="center", fontsize=7, color="0.3")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("the teacher hears what the student cannot see", fontsize=9)
    ax.axis("off")


def question_examples(data: dict, rows) -> None:
    """Shapes scenes at ``rows`` of ``data`` (columns image, question_ids, answer_id), titled with their
    question and answer."""
    with figure(2.2 * len(rows), 2.6, ncols=len(rows), tight=False) as axes:
        for ax, i in zip(axes, rows):
            question = VOCAB.decode(data["question_ids"][i]).replace(" ?", "?")
            show_scene(ax, data["image"][i], title=f"{question}\n-> {ANSWERS[int(data['answer_id'][i])]}")


def per_digit_gains(student_gain, teacher_advantage) -> None:
    """Per digit: the student's test accuracy gain over the labels-only model, next to how much more often
    the teacher than the image-only model names the unlabelled training pairs' digit. Both (10,)."""
    with figure(7, 2.6) as axes:
        ax = axes[0]
        x = torch.arange(10, dtype=torch.float32)
        ax.bar(x - 0.2, torch.as_tensor(student_gain).tolist(), 0.4, color=SHARED, label="student's test gain")
        ax.bar(x + 0.2, torch.as_tensor(teacher_advantage).tolist(), 0.4, color=SEPARATE,
               label="teacher's label advantage")
        ax.axhline(0, color="0.4", linewidth=0.8)
        ax.set_xticks(x.tolist(), [str(d) for d in range(10)], fontsize=8)
        ax.set_xlabel("digit", fontsize=8)
        ax.set_ylabel("accuracy difference", fontsize=8)
        ax.set_title("where the student gains, and where the teacher's labels beat the image model's", fontsize=9)
        ax.legend(fontsize=7)


def sharing_bars(ax, shared: dict, separate: dict, intervals: dict | None = None, title: str = "") -> None:
    """Test accuracy per task of the shared model and of the per-task models, side by side.

    ``shared``, ``separate``: {task: accuracy}; ``intervals``: {task: Interval of shared minus separate},
    written above each pair.
    """
    tasks = list(shared)
    x = torch.arange(len(tasks), dtype=torch.float32)
    ax.bar(x - 0.2, [shared[t] for t in tasks], 0.4, color=SHARED, label="shared")
    ax.bar(x + 0.2, [separate[t] for t in tasks], 0.4, color=SEPARATE, label="one per task")
    if intervals:
        for i, t in enumerate(tasks):
            d = intervals[t]
            ax.text(i, max(shared[t], separate[t]) + 0.03, f"{d.estimate:+.2f}\n[{d.low:+.2f}, {d.high:+.2f}]",
                    ha="center", fontsize=6)
    ax.set_xticks(x.tolist(), tasks, fontsize=8)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("test accuracy", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")


def soft_label_bars(ax, logits: torch.Tensor, temperature: float, label: int | None = None, title: str = "") -> None:
    """One sample's soft labels softmax(logits / tau) over the 10 digits; the true digit's bar is dark."""
    p = soft_targets(logits.reshape(1, -1), temperature)[0]
    colours = ["0.75"] * len(p)
    if label is not None:
        colours[label] = "0.2"
    ax.bar(range(len(p)), p.tolist(), color=colours)
    ax.set_xticks(range(len(p)), [str(i) for i in range(len(p))], fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=8)


def soft_labels_at_temperatures(images, logits, labels, temperatures) -> None:
    """A grid: each row one image and the teacher's soft labels at each temperature."""
    n, k = len(images), len(temperatures)
    with figure(1.6 * (k + 1), 1.4 * n, ncols=k + 1, nrows=n) as axes:
        for i in range(n):
            show_digit(axes[i * (k + 1)], images[i], f"digit {int(labels[i])}")
            for j, t in enumerate(temperatures):
                title = rf"$\tau$ = {t:g}" if i == 0 else ""
                soft_label_bars(axes[i * (k + 1) + j + 1], logits[i], t, int(labels[i]), title)


def accuracy_grid(ax, grid: dict, temperatures, alphas, reference: float | None = None,
                  current: tuple | None = None) -> None:
    """Student test accuracy for each (temperature, alpha) as a heatmap; ``current`` (tau, alpha) is boxed.

    ``grid``: {(tau, alpha): accuracy}; ``reference`` (the student trained on the labels alone) sets the
    colour scale's midpoint, so that gains and losses show as two colours.
    """
    values = torch.tensor([[grid[(t, a)] for t in temperatures] for a in alphas])
    centre = reference if reference is not None else float(values.mean())
    spread = max(float((values - centre).abs().max()), 0.01)
    ax.imshow(values.numpy(), cmap=DIVERGING, vmin=centre - spread, vmax=centre + spread, origin="lower")
    for i, a in enumerate(alphas):
        for j, t in enumerate(temperatures):
            strong = abs(grid[(t, a)] - centre) > 0.6 * spread  # dark cell: white text
            ax.text(j, i, f"{grid[(t, a)]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if strong else "black")
    if current is not None:
        j, i = list(temperatures).index(current[0]), list(alphas).index(current[1])
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2))
    ax.set_xticks(range(len(temperatures)), [f"{t:g}" for t in temperatures], fontsize=8)
    ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas], fontsize=8)
    ax.set_xlabel(r"temperature $\tau$", fontsize=8)
    ax.set_ylabel("alpha", fontsize=8)
    ax.set_title("student accuracy\n(blue: above labels alone)", fontsize=8)


class DistillationView(View):
    """Temperature and alpha sliders: the teacher's soft labels for a few images, and the accuracy of the
    student distilled at those settings (lesson 08).

    Nothing trains when a slider moves: the students of every (tau, alpha) were trained by the lesson.

    Parameters
    ----------
    images : (K, 1, 8, 8) a few unlabelled training images; ``logits`` (K, 10) the teacher's scores for
        them; ``labels`` (K,) their digits (shown, never used by the student).
    grid : {(tau, alpha): student test accuracy}, over ``temperatures`` x ``alphas``.
    baseline : test accuracy of the student trained on the labelled images alone; ``teacher``: of the teacher.
    start : the (tau, alpha) the sliders open at (a cell of ``grid``); default the middle temperature and alpha.

    ``shown`` holds ``temperature``, ``alpha``, ``accuracy`` (the student's at those settings), ``gain``
    (over the baseline) and ``soft_labels`` (K lists of 10 probabilities).
    """

    def __init__(self, images, logits, labels, grid: dict, baseline: float, teacher: float,
                 start: tuple | None = None) -> None:
        temperatures = sorted({t for t, _ in grid})
        alphas = sorted({a for _, a in grid})
        if len(grid) != len(temperatures) * len(alphas):
            raise ValueError(f"grid: expected an accuracy for every (tau, alpha) of {temperatures} x {alphas}, "
                             f"got {len(grid)} entries")
        if not (len(images) == len(logits) == len(labels)) or len(labels) == 0:
            raise ValueError(f"images, logits, labels: expected the same number (>= 1) of samples, got "
                             f"{len(images)}, {len(logits)}, {len(labels)}")
        start = (temperatures[len(temperatures) // 2], alphas[len(alphas) // 2]) if start is None else tuple(start)
        if start not in grid:
            raise ValueError(f"start: expected a (tau, alpha) of the grid, {temperatures} x {alphas}, got {start}")
        self.images, self.logits, self.labels = images, logits, labels
        self.grid, self.baseline, self.teacher = grid, baseline, teacher
        self.temperatures, self.alphas = temperatures, alphas
        wide = {"description_width": "initial"}
        self.temperature = widgets.SelectionSlider(options=temperatures, value=start[0],
                                                   description="temperature \N{GREEK SMALL LETTER TAU}",
                                                   continuous_update=False, style=wide)
        self.alpha = widgets.SelectionSlider(options=alphas, value=start[1], description="alpha",
                                             continuous_update=False, style=wide)
        self._lay_out([[self.temperature, self.alpha]], redraw_on=[self.temperature, self.alpha])

    def update(self) -> None:
        """Read the student's accuracy at the current settings from the grid and redraw."""
        t, a = self.temperature.value, self.alpha.value
        accuracy = self.grid[(t, a)]
        soft = soft_targets(self.logits, t)
        self.shown = {"temperature": t, "alpha": a, "accuracy": accuracy, "gain": accuracy - self.baseline,
                      "soft_labels": soft.tolist()}
        k = len(self.images)
        self.output.clear_output(wait=True)
        with self.output:
            with figure(2.2 * k + 3.5, 2.6, ncols=k + 1) as axes:
                for i in range(k):
                    soft_label_bars(axes[i], self.logits[i], t, int(self.labels[i]),
                                    rf"digit {int(self.labels[i])}: teacher at $\tau$ = {t:g}")
                    axes[i].set_ylim(0, 1.5)  # room above the bars for the image
                    axes[i].set_yticks([0, 0.5, 1])
                    inset = axes[i].inset_axes([0.7, 0.69, 0.28, 0.3])
                    show_digit(inset, self.images[i])
                accuracy_grid(axes[k], self.grid, self.temperatures, self.alphas, self.baseline, (t, a))
            print(f"student at tau = {t:g}, alpha = {a:g}: accuracy {accuracy:.3f} ({accuracy - self.baseline:+.3f} "
                  f"over the labels alone, {self.baseline:.3f}); teacher with audio: {self.teacher:.3f}")


class MultiTaskView(View):
    """A task selector for the multi-task comparison: the shared model against the task's own model, in
    each data regime, with the bootstrap interval of the difference (lesson 08).

    Parameters
    ----------
    results : {regime name: :class:`mmcourse.experiments.transfer.SharingResult`}.

    ``shown`` holds ``task``, and per regime ``shared``, ``separate`` (accuracies) and ``difference``
    (estimate, low, high).
    """

    def __init__(self, results: dict) -> None:
        if not results:
            raise ValueError("results: expected at least one {regime: SharingResult}, got an empty dict")
        self.results = results
        tasks = list(next(iter(results.values())).shared)
        self.task = widgets.Dropdown(options=tasks, value=tasks[0], description="task")
        self._lay_out([self.task], redraw_on=[self.task])

    def update(self) -> None:
        """Redraw the selected task's accuracies in every regime."""
        task = self.task.value
        self.shown = {"task": task}
        for regime, result in self.results.items():
            d = result.difference(task)
            self.shown[regime] = {"shared": float(result.shared[task].mean()),
                                  "separate": float(result.separate[task].mean()),
                                  "difference": (d.estimate, d.low, d.high)}
        self.output.clear_output(wait=True)
        with self.output:
            with figure(5.5, 2.6) as axes:
                ax = axes[0]
                regimes = list(self.results)
                x = torch.arange(len(regimes), dtype=torch.float32)
                ax.bar(x - 0.2, [self.shown[r]["shared"] for r in regimes], 0.4, color=SHARED, label="shared")
                ax.bar(x + 0.2, [self.shown[r]["separate"] for r in regimes], 0.4, color=SEPARATE,
                       label="its own model")
                for i, r in enumerate(regimes):
                    e, lo, hi = self.shown[r]["difference"]
                    top = max(self.shown[r]["shared"], self.shown[r]["separate"])
                    ax.text(i, top + 0.03, f"{e:+.2f} [{lo:+.2f}, {hi:+.2f}]", ha="center", fontsize=7)
                ax.set_xticks(x.tolist(), regimes, fontsize=8)
                ax.set_ylim(0, 1.15)
                ax.set_ylabel("test accuracy", fontsize=8)
                ax.set_title(f"{task} questions: shared minus own model, 95% interval", fontsize=9)
                ax.legend(fontsize=7, loc="lower right")
