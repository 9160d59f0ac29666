"""Exercises of lesson 08: per-task losses that turn to NaN when a task has no rows in the batch (find the bug),
the build (the distillation loss, then one training step of a student distilled from a frozen teacher) and the
experiment (how noisy the teacher's audio may get before it stops helping)."""

from __future__ import annotations

import copy

import torch

from . import Case, register, register_experiment


def _reference_distillation_loss(student_logits, teacher_logits, labels, temperature, alpha):
    from ..transfer import distillation_loss

    return distillation_loss(student_logits, teacher_logits, labels, temperature, alpha)


def _distillation_cases() -> list[Case]:
    g = torch.Generator().manual_seed(8)

    def case(description: str, batch: int, classes: int, temperature: float, alpha: float, spread: float = 3.0):
        return Case(description, (spread * torch.randn(batch, classes, generator=g),
                                  spread * torch.randn(batch, classes, generator=g),
                                  torch.randint(0, classes, (batch,), generator=g), temperature, alpha))

    same = torch.tensor([[2.0, 0.0, -1.0]])
    return [
        Case("student equals teacher, tau = 2, alpha = 1: the KL term is 0 (a cross-entropy with soft targets "
             "is not: it is the teacher's entropy there)", (same, same.clone(), torch.tensor([0]), 2.0, 1.0)),
        case("alpha = 0: plain cross-entropy with the labels", 4, 3, 4.0, 0.0),
        case("tau = 1, alpha = 0.5, 8 samples of 10 classes", 8, 10, 1.0, 0.5),
        case("tau = 4, alpha = 0.9: the soft term needs its factor tau^2", 8, 10, 4.0, 0.9),
        case("tau = 10, alpha = 1, one sample: the KL summed over classes, not averaged", 1, 5, 10.0, 1.0),
    ]


class _SGD:
    """p <- p - lr * grad for the student's parameters: the optimiser a step case hands over (the check's own, so
    that the package's optimisers stay free for the learner's code)."""

    def __init__(self, params, lr: float) -> None:
        self.params, self.lr = list(params), lr

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients (``set_to_none``, as in torch.optim: drop them, else fill them with zeros)."""
        for p in self.params:
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        for p in self.params:
            if p.grad is not None:
                p.add_(p.grad, alpha=-self.lr)


TEACHER_GRADIENTS = "the number of the teacher's parameters that got a gradient"


def _run_step(step, student, teacher, batch, temperature, alpha, stale_gradients=False, teacher_training=False):
    """Run ``step`` once from the case's start (copies of the student and the teacher) and return what it did: the
    loss, the student's parameters after the step, the teacher's, and how many of the teacher's parameters got a
    gradient. ``stale_gradients``: the student's parameters come with gradients left by an earlier step;
    ``teacher_training``: the teacher comes in training mode (as it is left after training)."""
    student, teacher = copy.deepcopy(student), copy.deepcopy(teacher)
    if stale_gradients:
        for p in student.parameters():
            p.grad = torch.ones_like(p)
    teacher.train(teacher_training)
    loss = step(student, teacher, dict(batch), _SGD(student.parameters(), lr=0.5), temperature, alpha)
    if not isinstance(loss, (int, float)) and not (isinstance(loss, torch.Tensor) and loss.numel() == 1):
        raise ValueError(f"the step should return the loss, a number or a tensor of one element; got {loss!r:.60}")
    return {"loss": float(loss.detach() if isinstance(loss, torch.Tensor) else loss),
            **{f"student's {name} after the step": p.detach().clone() for name, p in student.named_parameters()},
            **{f"teacher's {name}": p.detach().clone() for name, p in teacher.named_parameters()},
            TEACHER_GRADIENTS: sum(p.grad is not None for p in teacher.parameters())}


def _reference_distillation_step(student, teacher, batch, temperature, alpha, stale_gradients=False,
                                 teacher_training=False):
    from ..transfer import distillation_train_step

    return _run_step(distillation_train_step, student, teacher, batch, temperature, alpha, stale_gradients,
                     teacher_training)


def _drive_distillation_step(step, student, teacher, batch, temperature, alpha, stale_gradients=False,
                             teacher_training=False):
    return _run_step(step, student, teacher, batch, temperature, alpha, stale_gradients, teacher_training)


def _distillation_step_cases() -> list[Case]:
    from ..encoders import AudioEncoder, ImageEncoder
    from ..experiments.transfer import image_model, teacher_model
    from ..fusion import EarlyFusion, MultimodalClassifier

    torch.manual_seed(11)
    g = torch.Generator().manual_seed(11)
    student, teacher = image_model(), teacher_model()
    # A teacher trained with modality dropout: in training mode it drops the image or the audio of every pair.
    dropping = MultimodalClassifier([ImageEncoder(64), AudioEncoder(64)], EarlyFusion([64, 64], 64),
                                    torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(64, 10)), modality_dropout=1.0)

    # Untrained, the teacher's logits hardly differ (sd about 0.24): its soft targets would be near uniform, the soft
    # term about 1% of the loss, and a mistake inside it (a reversed KL) would hardly move the step. Scaled by 10,
    # its last layer gives logits with a trained teacher's spread.
    with torch.no_grad():
        for model in (teacher, dropping):
            model.head[1].weight.mul_(10.0)
            model.head[1].bias.mul_(10.0)

    def batch(size: int) -> dict:
        return {"image": torch.rand(size, 1, 8, 8, generator=g), "audio": torch.randn(size, 1, 32, 40, generator=g),
                "label": torch.randint(0, 10, (size,), generator=g)}

    return [
        Case("8 pairs, tau = 4, alpha = 0.5", (student, teacher, batch(8), 4.0, 0.5)),
        Case("alpha = 1: the soft term alone, tau = 2", (student, teacher, batch(8), 2.0, 1.0)),
        Case("the student's parameters come with gradients left by an earlier step", (
            student, teacher, batch(8), 4.0, 0.5), {"stale_gradients": True}),
        Case("a teacher trained with modality dropout, left in training mode", (
            student, dropping, batch(8), 4.0, 0.5), {"teacher_training": True}),
        Case("one pair (B = 1), tau = 1, alpha = 0.3", (student, teacher, batch(1), 1.0, 0.3)),
    ]


def _reference_task_losses(scores, answers, task, num_tasks):
    from ..transfer import per_task_losses

    return per_task_losses(scores, answers, task, num_tasks)[0]


def _task_losses_cases() -> list[Case]:
    g = torch.Generator().manual_seed(10)

    def case(description: str, task: list[int], num_tasks: int = 3, answers: int = 5) -> Case:
        n = len(task)
        return Case(description, (torch.randn(n, answers, generator=g), torch.randint(0, answers, (n,), generator=g),
                                  torch.tensor(task), num_tasks))

    return [case("every task has rows", [0, 1, 2, 0, 1, 2, 2]),
            case("one row per task", [2, 0, 1]),
            case("task 1 has no row in this batch", [0, 2, 2, 0, 0]),
            case("a batch of task 0 only", [0, 0, 0, 0])]


register("distillation_loss", _reference_distillation_loss, _distillation_cases)
register("distillation_step", _reference_distillation_step, _distillation_step_cases,
         drive=_drive_distillation_step, forbid=("mmcourse.transfer.distillation_loss",))
register("task_losses", _reference_task_losses, _task_losses_cases, explanation=(
    "The bug: F.cross_entropy over the rows of a task that has none in the batch is a mean over zero rows, "
    "0 / 0 = NaN. Most batches hold every task, so training runs fine for a while; then one batch misses a task "
    "and the loss is NaN. What the NaN does next depends on the task weights. With fixed weights lambda_t only the "
    "loss you log is NaN: the empty mean depends on no score, so its gradient is empty and reaches no parameter, "
    "and training goes on (but a history, an early stop or a scheduler that reads the loss is spoiled). With "
    "learned uncertainty weights (Kendall et al.) the gradient with respect to s_t, 1/2 - exp(-s_t) L_t, is NaN: "
    "s_t turns NaN at that step; at the next step its weight exp(-s_t) sends NaN into task t's head and the shared "
    "encoder, and the encoder's NaN features into every other head: every parameter is lost. Give a task without "
    "rows a loss of 0 (and leave it out of the sum), as mmcourse.transfer.per_task_losses does."))


def _run_noisy_teacher(attempt, seed: int) -> dict[str, float]:
    from ..experiments import transfer as experiments

    return experiments.noisy_teacher_run(attempt(), seed)


def _register_noisy_teacher() -> None:
    from ..experiments import transfer as experiments

    register_experiment(
        "noisy_teacher", _run_noisy_teacher,
        {experiments.NOISY_ADVANTAGE: experiments.DROWNED_TEACHER_WORSE,
         experiments.NOISY_LOSS: experiments.DROWNED_STUDENT_GAINS_LESS},
        question="how often the teacher names the digit of the unlabelled pairs at the cleanest audio where it no "
                 "longer helps (a fraction, next to the image-only model's, printed in the lesson)",
        predicted="noisy teacher's labels right", reference=lambda: experiments.DROWNED_SNR_DB)


_register_noisy_teacher()
