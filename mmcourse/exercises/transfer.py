"""Exercises of lesson 08: the distillation loss, a forward pass through two task heads, and per-task losses
that turn to NaN when a task has no rows in the batch (find the bug)."""

from __future__ import annotations

import torch

from . import Case, register


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


def _reference_two_heads(h, task, w0, b0, w1, b1):
    """Row i gets head task[i]'s scores: h[i] @ w_t.T + b_t."""
    out = torch.empty(len(h), w0.shape[0], dtype=h.dtype)
    for i in range(len(h)):
        w, b = (w0, b0) if int(task[i]) == 0 else (w1, b1)
        out[i] = h[i] @ w.T + b
    return out


def _two_heads_cases() -> list[Case]:
    g = torch.Generator().manual_seed(9)

    def case(description: str, task: list[int], d: int = 4, c: int = 3) -> Case:
        return Case(description, (torch.randn(len(task), d, generator=g), torch.tensor(task),
                                  torch.randn(c, d, generator=g), torch.randn(c, generator=g),
                                  torch.randn(c, d, generator=g), torch.randn(c, generator=g)))

    return [case("rows of both tasks, in turn", [0, 1, 0, 1]), case("every row of task 1", [1, 1, 1]),
            case("every row of task 0", [0, 0]), case("10 rows in a random order, d = 8, 5 answers",
                                                       [1, 0, 0, 1, 1, 0, 1, 0, 0, 0], d=8, c=5)]


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
register("two_heads", _reference_two_heads, _two_heads_cases)
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
