"""Experiments of lesson 08 (transfer): multi-task learning on Shapes questions, cross-modal distillation on
AV-Digits, and the claims they back.

Each claim is a :class:`~mmcourse.claims.Claim` constant at the end, with its threshold; the lesson checks
it on its seed-0 run and :func:`measure_claims` computes every claimed quantity for any seed
(``tests/test_transfer_experiments.py`` runs another seed, ``benchmarks/claims.py`` seeds 0-9). The claims
are about distillation only: at the lesson's budget, no comparison of the shared model with the separate
ones (per task, averaged over the tasks, or between the two data regimes) held on seeds 0-9 with a margin,
so the lesson shows that comparison with its intervals and reports its direction without a claim. (Averaged
over the tasks, shared minus separate accuracy was +0.002 to +0.164 over seeds 0-9 with 400 questions per
type, median +0.077, sd 0.042: ahead on every seed, but the worst seed 0.05 sd clear of zero; and -0.008 to
+0.129 with 100, ahead on 9 of 10.)

In the distillation, every image-only network (the labels-only model, the students and the controls) trains
with Adam's step :data:`STUDENT_LR`, the labels-only model with more steps than a student (:func:`training_steps`),
and every model is tested on AV-Digits' validation and test splits together. Against a labels-only model at
Adam's default step (1e-3), as in an earlier version, the gain was flattered; against one trained like the
students but tested on the test split alone (360 pairs), the distilled student's gain was positive on every
seed but only 1.3 sd clear of zero, much of the spread being the test images' sampling noise. The controls
split the gain: the student of the teacher's hard labels alone (:data:`HARD`) gains as much as the distilled
one (distilled minus hard labels: -0.024 to +0.049 on seeds 0-9, median +0.012, too close to zero to claim
either way), and self-training on the image-only model's labels adds nothing measurable. With the audio
drowned (:data:`DROWNED_SNR_DB`) the teacher names the digit of a median 0.39 of the unlabelled pairs, below
the image-only model's 0.55, and its student falls below the labels alone on every seed (median -0.065) but
only 0.1 sd clear of zero on the closest, so that is reported, not claimed. At 10 dB (teacher 0.79) the
hard-label student's gain is +0.063 to +0.150 (2.1 sd), at 0 dB (0.66) +0.024 to +0.115 (0.8 sd); the gain
was smaller at 0 dB than at 30 dB on every seed, but only 0.9 sd clear, so the lesson claims the two ends only.

The lesson's experiment exercise (:func:`noisy_teacher_run`) asks for an audio signal-to-noise ratio (SNR) at which
the teacher stops helping; its outcomes are the two drowned-teacher claims, measured by :func:`measure_claims` at
the reference's -10 dB. They judge "stops helping", not "the cleanest such audio": -20 or -30 dB pass as well, and
:data:`DROWNED_STUDENT_GAINS_LESS` is a sanity outcome (the student's gain is smaller at 0 dB than at 30 dB on every
seed too). An outcome for "the cleanest" (10 dB cleaner, the teacher still labels better than the image-only
model: true at 0 dB on every seed, which would fail -20 and -30 dB) was measured and is not robust: at 0 dB the
teacher's lead was +0.194 / +0.115 / +0.085 / +0.012 / +0.169 on seeds 0-4, the worst 0.2 sd clear of zero.
Over seeds 0-9 (medians, 30 / 20 / 10 / 5 / 0 / -5 / -10 dB): the teacher minus the image-only model's
labels right +0.296 / +0.276 / +0.238 / +0.193 / +0.109 / -0.003 / -0.145 (at 0 dB above zero on every seed, at
-5 dB below it on 5 of 10), the hard-label student's gain over the labels alone +0.115 / +0.124 / +0.116 / +0.095
/ +0.066 / +0.021 / -0.064. The gain is flat down to about 10 dB and gone where the teacher labels no better than
the image-only model; no single setting marks its end with a margin, so the exercise judges the two ends.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..claims import Claim
from ..data import QUESTION_TYPES, as_tensors, load_av_digits, load_shapes
from ..device import get_device, seed_everything
from ..diagnostics import Interval, paired_difference
from ..encoders import AudioEncoder, ImageEncoder
from ..fusion import EarlyFusion, MultimodalClassifier
from ..train import Adam, fit
from ..transfer import (
    MULTITASK_COLUMNS,
    MultiTaskVQA,
    distillation_step,
    multitask_step,
    shapes_task_answers,
    task_ids,
)

# ----------------------------------------------------------------------------- 1. multi-task learning

TASKS = tuple(QUESTION_TYPES)  # colour, size, position, exists: one head each


def question_tensors(split) -> dict[str, torch.Tensor]:
    """A Shapes split as the tensors :class:`~mmcourse.transfer.MultiTaskVQA` trains on, with ``task``
    (N,) the index of each row's question type in :data:`TASKS`."""
    columns = as_tensors(split, ["image", "question_ids", "answer_id"])
    columns["task"] = task_ids(split["question_type"], TASKS)
    return columns


def rows_per_task(data: dict, per_task: int) -> dict[str, torch.Tensor]:
    """The first ``per_task`` rows of every task (the scenes are random, so the first are a random sample)."""
    counts = torch.bincount(data["task"], minlength=len(TASKS))
    if (counts < per_task).any():
        raise ValueError(f"per_task: expected at most {int(counts.min())} (the rarest task's rows), got {per_task}")
    keep = torch.cat([(data["task"] == t).nonzero().flatten()[:per_task] for t in range(len(TASKS))]).sort().values
    return {k: v[keep] for k, v in data.items()}


FULL_EPOCHS, LITTLE_EPOCHS = 8, 12  # with batches of 64 and 32: 200 and 156 steps of the shared model


def steps_per_pass(train: dict, batch_size: int) -> dict[str, int]:
    """Optimiser steps in one pass over ``train``: ``"shared"``, of the model trained on every row, and
    ``"separate"``, of the single-task models together (each task's last batch of a pass is a partial one, so
    the separate models take a few more)."""
    if batch_size < 1:
        raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
    counts = torch.bincount(train["task"], minlength=len(TASKS)).tolist()
    return {"shared": math.ceil(len(train["task"]) / batch_size),
            "separate": sum(math.ceil(n / batch_size) for n in counts)}


@dataclass
class QuestionData:
    """Shapes questions of all four types: a large and a small training set, and a test set."""

    full: dict  # ``full_per_task`` rows of each type
    little: dict  # the first ``little_per_task`` of them
    test: dict
    seed: int


def question_data(seed: int = 0, full_per_task: int = 400, little_per_task: int = 100,
                  n_test: int = 1000, max_objects: int = 3) -> QuestionData:
    """Generate Shapes scenes with one question each, of the four types drawn uniformly, and split them."""
    pool = max(int(4.6 * full_per_task), 4 * full_per_task + 60)  # enough that every type has full_per_task rows
    shapes = load_shapes(n_train=pool, n_validation=1, n_test=n_test, max_objects=max_objects, seed=seed)
    full = rows_per_task(question_tensors(shapes["train"]), full_per_task)
    return QuestionData(full, rows_per_task(full, little_per_task), question_tensors(shapes["test"]), seed)


def only_task(data: dict, t: int) -> dict[str, torch.Tensor]:
    """The rows of task ``t``, relabelled as task 0 (for a model with a single head)."""
    rows = data["task"] == t
    return {**{k: v[rows] for k, v in data.items()}, "task": torch.zeros(int(rows.sum()), dtype=torch.long)}


def train_multitask(train: dict, tasks: list[int] | None = None, epochs: int = 10, seed: int = 0,
                    batch_size: int = 64, lr: float = 3e-3, uncertainty: bool = False,
                    progress: bool = False) -> MultiTaskVQA:
    """A :class:`~mmcourse.transfer.MultiTaskVQA` with one head per task in ``tasks`` (default: all of
    :data:`TASKS`), trained on ``train`` through :func:`~mmcourse.train.fit` with
    :func:`~mmcourse.transfer.multitask_step`."""
    tasks = range(len(TASKS)) if tasks is None else tasks
    seed_everything(seed)
    model = MultiTaskVQA([shapes_task_answers()[t] for t in tasks], uncertainty=uncertainty)
    fit(model, train, MULTITASK_COLUMNS, None, step=multitask_step, epochs=epochs, batch_size=batch_size, lr=lr,
        seed=seed, progress=progress, description="multi-task")
    return model.cpu().eval()


@torch.no_grad()
def correct_answers(model: MultiTaskVQA, data: dict) -> torch.Tensor:
    """1.0 where ``model`` answers a row of ``data`` right, else 0.0. Shape: (N,)."""
    model.eval()
    scores = model(data["image"], data["question_ids"], data["task"]).scores
    return (scores.argmax(1) == data["answer_id"]).float()


@dataclass
class SharingResult:
    """The shared model against one model per task, trained on the same rows for the same number of epochs."""

    shared: dict  # task -> (N_t,) 1.0 where the shared model is right on that task's test rows
    separate: dict  # task -> (N_t,) the same for the task's own model
    models: dict = field(default_factory=dict)  # "shared" and each task's name -> trained model
    majority: dict = field(default_factory=dict)  # task -> test accuracy of the task's most common training answer
    majority_correct: dict = field(default_factory=dict)  # task -> (N_t,) 1.0 where that answer is right

    def accuracy(self, which: str) -> dict[str, float]:
        """Test accuracy per task of ``"shared"`` or ``"separate"``."""
        return {t: float(c.mean()) for t, c in getattr(self, which).items()}

    def difference(self, task: str, seed: int = 0) -> Interval:
        """Shared minus separate accuracy on ``task``, with a paired bootstrap interval over its test rows."""
        return paired_difference(self.shared[task], self.separate[task], seed=seed)

    def table(self) -> str:
        """Per-task accuracy of both, and their difference with its 95% bootstrap interval, as text."""
        rows = [f"{'task':<9} {'majority':>8} {'shared':>6} {'separate':>8}   shared - separate [95% interval]"]
        for task in self.shared:
            d = self.difference(task)
            shared, separate = float(self.shared[task].mean()), float(self.separate[task].mean())
            rows.append(f"{task:<9} {self.majority.get(task, float('nan')):>8.3f} {shared:>6.3f} {separate:>8.3f}"
                        f"   {d.estimate:+.3f} [{d.low:+.3f}, {d.high:+.3f}]")
        return "\n".join(rows)

    def over_majority(self, which: str, task: str, seed: int = 0) -> Interval:
        """``"shared"`` or ``"separate"`` accuracy on ``task`` minus that of always giving the task's most common
        training answer, with a paired bootstrap interval over the task's test rows."""
        return paired_difference(getattr(self, which)[task], self.majority_correct[task], seed=seed)

    def mean_difference(self) -> float:
        """Shared minus separate accuracy, averaged over the tasks."""
        return sum(float(self.shared[t].mean() - self.separate[t].mean()) for t in self.shared) / len(self.shared)


def compare_sharing(train: dict, test: dict, epochs: int, seed: int = 0, batch_size: int = 64,
                    progress: bool = False) -> SharingResult:
    """Train one shared model on every task and one model per task on its own rows, with the same budget.

    Every model passes ``epochs`` times over its rows, so each training question is seen equally often
    and the four single-task models together take about as many steps as the shared one (a few more:
    :func:`steps_per_pass`).
    """
    shared = train_multitask(train, epochs=epochs, seed=seed, batch_size=batch_size, progress=progress)
    result = SharingResult({}, {}, {"shared": shared})
    for t, name in enumerate(TASKS):
        own = train_multitask(only_task(train, t), [t], epochs=epochs, seed=seed, batch_size=batch_size,
                              progress=progress)
        result.models[name] = own
        result.shared[name] = correct_answers(shared, {k: v[test["task"] == t] for k, v in test.items()})
        result.separate[name] = correct_answers(own, only_task(test, t))
        common = torch.mode(train["answer_id"][train["task"] == t]).values
        result.majority_correct[name] = (test["answer_id"][test["task"] == t] == common).float()
        result.majority[name] = float(result.majority_correct[name].mean())
    return result


# --------------------------------------------------------------------------- 2. cross-modal distillation

# The images of lessons 00-01 (pixel noise 0.3, a 3 x 3 square hidden) and clean audio: the teacher hears
# what the student cannot see.
IMAGE_NOISE, AUDIO_SNR_DB = 0.3, 30.0
STUDENT_LR, STUDENT_EPOCHS = 3e-3, 8  # the students' Adam step and passes (at 1e-3 they fell short of converged)
STUDENT_BATCH = 64
# The models trained on the labelled pairs alone: 40 passes in batches of 32. The image-only model (the labels-only
# baseline) takes the students' step, so that it is trained the same way, with more steps than a student takes;
# the teacher keeps Adam's default step, 1e-3.
LABELS_EPOCHS, LABELS_BATCH, TEACHER_LR = 40, 32, 1e-3
TEMPERATURES = (1.0, 4.0, 16.0)
ALPHAS = (0.0, 0.5, 1.0)
DEFAULT_TEMPERATURE, DEFAULT_ALPHA = 4.0, 0.5  # the lesson's distillation setting


@dataclass
class DistillationData:
    """AV-Digits for distillation: a few labelled training pairs, the rest of the training pairs without
    labels (``label`` is kept only to measure the teacher), and the held-out pairs that every model is tested
    on (``test``: AV-Digits' validation and test splits together, since nothing here is tuned on the
    validation split; twice the test pairs halve the variance of a measured accuracy)."""

    labelled: dict
    unlabelled: dict
    test: dict
    seed: int
    labels_per_class: int = 10  # the settings of distillation_data that made it
    image_noise: float = IMAGE_NOISE
    audio_snr_db: float = AUDIO_SNR_DB

    def training_rows(self, columns) -> dict[str, torch.Tensor]:
        """Every training pair, the labelled rows first, then the unlabelled ones: {column: (N, ...)}."""
        return {k: torch.cat([self.labelled[k], self.unlabelled[k]]) for k in columns}


def distillation_data(seed: int = 0, labels_per_class: int = 10, image_noise: float = IMAGE_NOISE,
                      audio_snr_db: float = AUDIO_SNR_DB) -> DistillationData:
    """Load AV-Digits with the default images (pixel noise 0.3, as in lessons 00-01) and cleaner audio than the
    default (30 dB instead of 0 dB), and keep ``labels_per_class`` labels of each digit in the training split
    (chosen at random)."""
    av = load_av_digits(image_noise=image_noise, audio_snr_db=audio_snr_db, seed=seed)
    columns = ["image", "audio", "label"]
    train = as_tensors(av["train"], columns)
    held_out = [as_tensors(av[split], columns) for split in ("validation", "test")]
    test = {k: torch.cat([part[k] for part in held_out]) for k in columns}
    order = torch.randperm(len(train["label"]), generator=torch.Generator().manual_seed(seed))
    chosen = torch.cat([order[train["label"][order] == d][:labels_per_class] for d in range(10)])
    labelled = torch.zeros(len(order), dtype=torch.bool)
    labelled[chosen] = True
    return DistillationData({k: v[labelled] for k, v in train.items()}, {k: v[~labelled] for k, v in train.items()},
                            test, seed, labels_per_class, image_noise, audio_snr_db)


def image_model() -> nn.Sequential:
    """The student: lesson 00's image classifier (:class:`~mmcourse.encoders.ImageEncoder` and a linear layer)."""
    return nn.Sequential(ImageEncoder(out_dim=64), nn.Linear(64, 10))


def teacher_model() -> MultimodalClassifier:
    """The teacher: image and audio encoders, early fusion and a head (lesson 01's early fusion)."""
    return MultimodalClassifier([ImageEncoder(64), AudioEncoder(64)], EarlyFusion([64, 64], 64),
                                nn.Sequential(nn.ReLU(), nn.Linear(64, 10)))


def train_on_labels(build: Callable[[], nn.Module], rows: dict, inputs, seed: int, epochs: int = LABELS_EPOCHS,
                    lr: float = TEACHER_LR) -> nn.Module:
    """Build a model with ``build()`` after seeding (so its initial weights follow ``seed`` too) and train it
    on the labelled ``rows`` with cross-entropy and Adam's step ``lr`` (small batches: the rows are few)."""
    seed_everything(seed)
    model = build()
    fit(model, rows, list(inputs), "label", epochs=epochs, batch_size=LABELS_BATCH, lr=lr, seed=seed, progress=False)
    return model.cpu().eval()


def training_steps(data: DistillationData, epochs: int = STUDENT_EPOCHS) -> dict[str, int]:
    """Adam steps of ``"labels alone"`` (the image-only model, on the labelled rows) and of one ``"student"``
    (on every training image), both at the step :data:`STUDENT_LR`."""
    n_labelled = len(data.labelled["label"])
    return {"labels alone": LABELS_EPOCHS * math.ceil(n_labelled / LABELS_BATCH),
            "student": epochs * math.ceil((n_labelled + len(data.unlabelled["label"])) / STUDENT_BATCH)}


@torch.no_grad()
def logits_of(model: nn.Module, rows: dict, inputs) -> torch.Tensor:
    """The model's class scores (N, 10) for ``rows`` (eval mode)."""
    model.eval()
    out = model(*(rows[c] for c in inputs))
    return out.scores if hasattr(out, "scores") else out


def distil(data: DistillationData, teacher_logits: torch.Tensor, temperature: float, alpha: float,
           epochs: int = STUDENT_EPOCHS, seed: int = 0) -> nn.Module:
    """Train a new image-only student on every training image with :func:`~mmcourse.transfer.distillation_loss`.

    ``teacher_logits`` (N_labelled + N_unlabelled, 10) are the teacher's scores for the labelled rows, then
    the unlabelled ones. The cross-entropy part uses the true labels of the labelled rows and the teacher's
    most likely class (a hard pseudo-label) for the unlabelled rows: the student never sees their labels.
    """
    n = len(data.labelled["label"])
    pseudo = teacher_logits[n:].argmax(1)
    rows = {**data.training_rows(["image"]), "teacher_logits": teacher_logits,
            "label": torch.cat([data.labelled["label"], pseudo])}
    seed_everything(seed)
    student = image_model()
    fit(student, rows, ["image", "teacher_logits"], "label", step=distillation_step(temperature, alpha),
        epochs=epochs, batch_size=STUDENT_BATCH, lr=STUDENT_LR, seed=seed, progress=False)
    return student.cpu().eval()


def hard_labels(data: DistillationData, teacher: nn.Module) -> torch.Tensor:
    """The labels a student learns from, (N_labelled + N_unlabelled,): the true digit of each labelled pair, then the
    teacher's most likely digit for each unlabelled one (a pseudo-label; the student never sees their labels)."""
    return torch.cat([data.labelled["label"], logits_of(teacher, data.unlabelled, ["image", "audio"]).argmax(1)])


def train_student(step: Callable, teacher: nn.Module, data: DistillationData,
                  temperature: float = DEFAULT_TEMPERATURE, alpha: float = DEFAULT_ALPHA, epochs: int = STUDENT_EPOCHS,
                  seed: int = 0) -> tuple[nn.Module, list[float]]:
    """Distil a new image-only student from a frozen ``teacher`` (Hinton et al. 2015) with ``step``, one call per
    batch; return the student (on the CPU, in eval mode) and the loss of every step.

    ``step(student, teacher, batch, optimizer, temperature, alpha)`` is one training step
    (:func:`~mmcourse.transfer.distillation_train_step`, or a learner's own): ``batch`` holds ``"image"``
    (B, 1, 8, 8), ``"audio"`` (B, 1, 32, 40) and ``"label"`` (B,) (:func:`hard_labels`) of the training pairs,
    in the students' batches and order, and the optimiser is Adam at :data:`STUDENT_LR`. The recipe of
    :func:`distil`, with the teacher run at every step instead of once beforehand: with the package's step, the
    same student. https://arxiv.org/abs/1503.02531
    """
    device = get_device()
    rows = {**data.training_rows(["image", "audio"]), "label": hard_labels(data, teacher)}
    rows = {k: v.to(device) for k, v in rows.items()}
    seed_everything(seed)
    student = image_model().to(device)
    teacher.to(device)
    optimizer = Adam(student.parameters(), lr=STUDENT_LR)
    order = torch.Generator().manual_seed(seed)  # the batches of fit(..., seed=seed)
    losses = []
    try:
        for _ in range(epochs):
            for idx in torch.randperm(len(rows["label"]), generator=order).to(device).split(STUDENT_BATCH):
                loss = step(student, teacher, {k: v[idx] for k, v in rows.items()}, optimizer, temperature, alpha)
                losses.append(loss.detach() if isinstance(loss, torch.Tensor) else loss)  # read at the end, not
                # at every step (a GPU would wait), and without the step's graph
    finally:
        teacher.cpu()
    return student.cpu().eval(), [float(loss) for loss in losses]


@torch.no_grad()
def correct_digits(model: nn.Module, rows: dict, inputs=("image",)) -> torch.Tensor:
    """1.0 where ``model`` names the digit of a row right. Shape: (N,)."""
    return (logits_of(model, rows, inputs).argmax(1) == rows["label"]).float()


@dataclass
class Distillation:
    """What :func:`distillation_experiment` trained and measured (accuracies on the held-out pairs)."""

    data: DistillationData
    teacher: nn.Module
    baseline: nn.Module  # the image-only model: the student's network trained on the labelled images alone
    teacher_logits: torch.Tensor  # (N_labelled + N_unlabelled, 10) on the training pairs, labelled rows first
    baseline_logits: torch.Tensor  # (N_labelled + N_unlabelled, 10): the image-only model on the same images
    students: dict  # (tau, alpha) -> the student distilled from the teacher
    correct: dict = field(default_factory=dict)  # name -> (N_test,) 1.0 where right: "baseline", "teacher",
    # "self-trained", "all labels" and (tau, alpha) for every student
    controls: dict = field(default_factory=dict)  # "self-trained", "all labels" -> the control student

    def accuracy(self, name) -> float:
        """Test accuracy of ``name`` (a key of ``correct``)."""
        return float(self.correct[name].mean())

    def grid(self) -> dict:
        """{(tau, alpha): test accuracy} of the distilled students."""
        return {key: self.accuracy(key) for key in self.students}

    def labels_right(self) -> dict[str, float]:
        """How often the teacher and the image-only model name the digit of the unlabelled training pairs."""
        n = len(self.data.labelled["label"])
        truth = self.data.unlabelled["label"]
        return {"teacher": float((self.teacher_logits[n:].argmax(1) == truth).float().mean()),
                "image only": float((self.baseline_logits[n:].argmax(1) == truth).float().mean())}


HARD = (DEFAULT_TEMPERATURE, 0.0)  # the student of hard labels alone (alpha = 0: the same student at every tau)


def distillation_experiment(data: DistillationData, temperatures=TEMPERATURES, alphas=ALPHAS,
                            epochs: int = STUDENT_EPOCHS, controls: bool = True,
                            baseline: nn.Module | None = None, teacher: nn.Module | None = None) -> Distillation:
    """Train the teacher and the image-only model on the labelled pairs, distil a student for every (tau, alpha),
    and (with ``controls``) two more students with the same recipe: one self-trained on the image-only model's
    hard labels instead of the teacher's (``"self-trained"``, alpha = 0, like the student at :data:`HARD`), and one
    trained on every training image with its true label (``"all labels"``, what labelling everything would give).

    With alpha = 0 the soft labels play no part, so that student is trained once and shared by every tau.
    ``baseline``, ``teacher``: the image-only model and the teacher already trained on the same labelled pairs with
    the same seed (:func:`train_on_labels`), to reuse instead of training them again (every model seeds itself, so
    the others are the same either way).
    """
    seed = data.seed
    if teacher is None:
        teacher = train_on_labels(teacher_model, data.labelled, ["image", "audio"], seed)
    if baseline is None:
        baseline = train_on_labels(image_model, data.labelled, ["image"], seed, lr=STUDENT_LR)
    rows = data.training_rows(["image", "audio", "label"])
    result = Distillation(data, teacher, baseline, logits_of(teacher, rows, ["image", "audio"]),
                          logits_of(baseline, rows, ["image"]), {})
    hard = None  # the alpha = 0 student: the same at every temperature
    for alpha in alphas:
        for t in temperatures:
            if alpha == 0 and hard is not None:
                result.students[(t, alpha)] = hard
                continue
            result.students[(t, alpha)] = distil(data, result.teacher_logits, t, alpha, epochs, seed)
            hard = result.students[(t, alpha)] if alpha == 0 else hard
    result.correct = {"baseline": correct_digits(baseline, data.test),
                      "teacher": correct_digits(teacher, data.test, ["image", "audio"]),
                      **{key: correct_digits(s, data.test) for key, s in result.students.items()}}
    if controls:
        result.controls = {"self-trained": distil(data, result.baseline_logits, *HARD, epochs, seed),
                           "all labels": distil_on_labels(data, epochs)}
        result.correct.update({name: correct_digits(s, data.test) for name, s in result.controls.items()})
    return result


DROWNED_SNR_DB = -10.0  # audio drowned in noise: the teacher's labels are worse than the image-only model's


def drowned_teacher_experiment(clean: Distillation, audio_snr_db: float = DROWNED_SNR_DB,
                               epochs: int = STUDENT_EPOCHS) -> Distillation:
    """``clean``'s experiment again for the hard-label student only (:data:`HARD`, no controls), with the audio at
    ``audio_snr_db``: the same images, labels, image-only model (reused) and student recipe (the image noise does
    not depend on the audio's), and a teacher whose labels are right less often."""
    data = distillation_data(clean.data.seed, clean.data.labels_per_class, clean.data.image_noise, audio_snr_db)
    return distillation_experiment(data, temperatures=(HARD[0],), alphas=(HARD[1],), epochs=epochs,
                                   controls=False, baseline=clean.baseline)


_HEARS: dict[int, Distillation] = {}  # seed -> the last teacher_that_hears (the exercise asks for it at every attempt)


def teacher_that_hears(seed: int) -> Distillation:
    """The lesson's teacher (audio at :data:`AUDIO_SNR_DB`), the image-only model and the student of the teacher's
    hard labels (:data:`HARD`) for ``seed``, without the other students and the controls; kept for the next call
    (or the lesson's own run, handed over with :func:`keep_teacher_that_hears`)."""
    if seed not in _HEARS:
        _HEARS.clear()
        _HEARS[seed] = distillation_experiment(distillation_data(seed), temperatures=(HARD[0],), alphas=(HARD[1],),
                                               controls=False)
    return _HEARS[seed]


def keep_teacher_that_hears(result: Distillation) -> None:
    """Keep ``result``, the lesson's :func:`distillation_experiment` on ``distillation_data(seed)`` with its defaults
    and the teacher of :func:`train_on_labels` for that seed, as :func:`teacher_that_hears` of its seed: the
    experiment exercise then trains only the noisy teacher and its student. ``result`` must hold the student at
    :data:`HARD`, and its data the lesson's settings (a ``ValueError`` otherwise)."""
    data = result.data
    if (data.labels_per_class, data.image_noise, data.audio_snr_db) != (10, IMAGE_NOISE, AUDIO_SNR_DB) \
            or HARD not in result.students:
        raise ValueError("result: expected the lesson's distillation experiment (10 labels per digit, image noise "
                         f"{IMAGE_NOISE:g}, audio {AUDIO_SNR_DB:g} dB, a student at {HARD}), got labels_per_class="
                         f"{data.labels_per_class}, image_noise={data.image_noise:g}, audio_snr_db="
                         f"{data.audio_snr_db:g}, students {sorted(result.students)}")
    _HEARS.clear()
    _HEARS[data.seed] = result


NOISIEST_SNR_DB = -30.0  # the noisiest audio the experiment exercise accepts: the teacher hears next to nothing
NOISY_ADVANTAGE = "noisy teacher minus image-only model's labels right"  # what noisy_teacher_run measures
NOISY_LOSS = "student of the teacher that hears minus the noisy teacher's student"


def noisy_teacher_run(audio_snr_db: float, seed: int = 0, clean: Distillation | None = None,
                      epochs: int = STUDENT_EPOCHS) -> dict[str, float]:
    """The experiment exercise: drown the teacher's audio to ``audio_snr_db`` and measure whether it still helps.

    The teacher is trained again on the same labelled pairs with the noisier audio, and a student learns its hard
    labels with the same recipe, images, labels and image-only model (:func:`drowned_teacher_experiment`).
    ``clean``: the experiment at the lesson's 30 dB for the same seed (default: :func:`teacher_that_hears`), its
    students trained for ``epochs`` passes like the noisy teacher's.
    Returns, by name: how much more often the noisy teacher than the image-only model names the digit of the
    unlabelled pairs (:data:`NOISY_ADVANTAGE`), how much the student of the teacher that hears beats the noisy
    teacher's student on the held-out pairs (:data:`NOISY_LOSS`), and, for the learner to read, the two labelling
    accuracies and the noisy teacher's student minus the labels alone.
    """
    if isinstance(audio_snr_db, bool) or not isinstance(audio_snr_db, (int, float)) or \
            not NOISIEST_SNR_DB <= audio_snr_db <= AUDIO_SNR_DB:
        raise ValueError(f"audio_snr_db: expected a number of decibels from {NOISIEST_SNR_DB:g} to {AUDIO_SNR_DB:g} "
                         f"(the lesson's teacher hears {AUDIO_SNR_DB:g} dB), got {audio_snr_db!r}")
    clean = teacher_that_hears(seed) if clean is None else clean
    noisy = drowned_teacher_experiment(clean, float(audio_snr_db), epochs)
    right = noisy.labels_right()
    return {NOISY_ADVANTAGE: right["teacher"] - right["image only"],
            NOISY_LOSS: clean.accuracy(HARD) - noisy.accuracy(HARD),
            "noisy teacher's labels right": right["teacher"], "image-only model's labels right": right["image only"],
            "noisy teacher's student minus the labels alone": noisy.accuracy(HARD) - noisy.accuracy("baseline")}


def distil_on_labels(data: DistillationData, epochs: int = STUDENT_EPOCHS) -> nn.Module:
    """The student trained on every training image with its true label: what labelling everything would give."""
    rows = data.training_rows(["image", "label"])
    seed_everything(data.seed)
    student = image_model()
    fit(student, rows, ["image"], "label", epochs=epochs, batch_size=STUDENT_BATCH, lr=STUDENT_LR, seed=data.seed,
        progress=False)
    return student.cpu().eval()


# --- The lesson's claims and the quantities that test them -------------------------------------
# Every student, the image-only model and the controls train with the same Adam step (STUDENT_LR) and are
# tested on the same held-out pairs; "labels alone" is the image-only model.

TEACHER_HEARS = Claim("the teacher labels the unlabelled pairs far better than the image-only model",
                      "teacher minus image-only accuracy on the unlabelled training pairs", ">=", 0.1)
GAIN_FROM_AUDIO = Claim("on the same images, with the same recipe, the student of the teacher's labels beats the one "
                        "self-trained on the image-only model's labels",
                        "student of the teacher's hard labels minus self-trained test accuracy (both alpha = 0)", ">",
                        0.0)
SELF_TRAINING_ADDS_NOTHING = Claim("self-training on the image-only model's own labels adds nothing measurable over "
                                   "the labels alone (within 0.05 either way)",
                                   "|self-trained minus labels-alone test accuracy| (alpha = 0)", "<=", 0.05)
TEACHER_LABELS_HELP = Claim("the student of the teacher's hard labels (alpha = 0) beats the same network trained the "
                            "same way on the labels alone",
                            "student of the teacher's hard labels minus labels-alone test accuracy", ">", 0.0)
DISTILLATION_HELPS = Claim("the student distilled at tau = 4, alpha = 0.5 beats the same network trained the same way "
                           "on the labels alone",
                           "distilled (tau = 4, alpha = 0.5) minus labels-alone test accuracy", ">", 0.0)
# The experiment exercise's outcomes (noisy_teacher_run): measured with the reference's audio, DROWNED_SNR_DB.
DROWNED_TEACHER_WORSE = Claim("with the audio drowned, the teacher labels fewer unlabelled pairs right than the "
                              "image-only model",
                              "drowned teacher minus image-only accuracy on the unlabelled training pairs", "<", 0.0)
# A sanity outcome: it holds wherever the teacher got worse, not only where it stopped helping (see the top).
DROWNED_STUDENT_GAINS_LESS = Claim("the student of the drowned teacher's labels falls short of the student of the "
                                   "teacher that hears",
                                   "test accuracy of the student of the 30 dB teacher's hard labels minus that of the "
                                   "drowned teacher's (the same images, labels and image-only model)", ">", 0.0)


def measure_claims(seed: int) -> dict[Claim, float]:
    """Run every experiment of lesson 08 for ``seed``; return the quantity each claim tests."""
    distillation = distillation_experiment(distillation_data(seed))
    drowned = noisy_teacher_run(DROWNED_SNR_DB, seed, clean=distillation)  # the experiment exercise's reference
    right = distillation.labels_right()
    hard, distilled, alone, self_trained = (distillation.accuracy(name) for name in
                                            (HARD, (DEFAULT_TEMPERATURE, DEFAULT_ALPHA), "baseline", "self-trained"))
    return {
        TEACHER_HEARS: right["teacher"] - right["image only"],
        GAIN_FROM_AUDIO: hard - self_trained,
        SELF_TRAINING_ADDS_NOTHING: abs(self_trained - alone),
        TEACHER_LABELS_HELP: hard - alone,
        DISTILLATION_HELPS: distilled - alone,
        DROWNED_TEACHER_WORSE: drowned[NOISY_ADVANTAGE],
        DROWNED_STUDENT_GAINS_LESS: drowned[NOISY_LOSS],
    }


def per_digit(result: Distillation, key: tuple = HARD) -> dict[str, torch.Tensor]:
    """Per digit (10,): ``"student gain"``, the test accuracy of the student at ``key`` (default: the student of
    the teacher's hard labels) minus the labels-only model's, and ``"teacher advantage"``, how much more often
    the teacher than the image-only model names the digit of the unlabelled training pairs (what the
    teacher's labels add)."""
    test, truth = result.data.test["label"], result.data.unlabelled["label"]
    n = len(result.data.labelled["label"])
    teacher_right = (result.teacher_logits[n:].argmax(1) == truth).float()
    image_right = (result.baseline_logits[n:].argmax(1) == truth).float()
    gain = result.correct[key] - result.correct["baseline"]
    return {"student gain": torch.stack([gain[test == d].mean() for d in range(10)]),
            "teacher advantage": torch.stack([(teacher_right - image_right)[truth == d].mean() for d in range(10)])}
