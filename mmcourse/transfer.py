"""Sharing and transferring knowledge: a multi-task model with one head per task, and distillation.

Two ways to learn more from fewer labels (the *transference* challenge of Liang, Zadeh and
Morency 2022, https://arxiv.org/abs/2209.03430):

- **Multi-task learning** (Caruana 1997, "Multitask Learning", Machine Learning 28: 41-75): one
  shared encoder, one small head per task, trained on every task at once, so that what one task
  teaches the encoder serves the others. :class:`MultiTaskVQA` shares lesson 03's question-over-image
  attention model between the four kinds of Shapes question. Its loss is a weighted sum of the tasks'
  losses, with fixed weights or with weights learned from each task's uncertainty (Kendall, Gal and
  Cipolla 2018, https://arxiv.org/abs/1705.07115).
- **Knowledge distillation** (Hinton, Vinyals and Dean 2015, https://arxiv.org/abs/1503.02531): a
  student learns from a teacher's softened class probabilities. Across modalities (Gupta, Hoffman
  and Malik 2016, https://arxiv.org/abs/1507.00448) the teacher sees a modality the student lacks,
  and labels unlabelled pairs for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .attention import AttentionVQA
from .data.shapes import ANSWERS, COLOURS, POSITIONS, QUESTION_TYPES, SIZES, VOCAB
from .train import Step, scores_of

# ----------------------------------------------------------------------------------- multi-task


def shapes_task_answers(question_types: Sequence[str] = QUESTION_TYPES) -> list[list[int]]:
    """For each Shapes question type, the ids (indices into ``ANSWERS``) of the answers it can have.

    >>> [len(a) for a in shapes_task_answers()]  # colour, size, position, exists
    [4, 2, 9, 2]
    """
    answers = {"colour": COLOURS, "size": SIZES, "position": POSITIONS, "exists": ["yes", "no"]}
    unknown = [t for t in question_types if t not in answers]
    if unknown or not question_types:
        raise ValueError(f"question_types: expected a non-empty list from {list(QUESTION_TYPES)}, got "
                         f"{list(question_types)!r}")
    return [[ANSWERS.index(a) for a in answers[t]] for t in question_types]


def task_ids(question_types: Sequence[str], tasks: Sequence[str] = QUESTION_TYPES) -> torch.Tensor:
    """Each row's task as an index into ``tasks``: ``["size", "colour"]`` -> ``tensor([1, 0])``."""
    unknown = sorted(set(question_types) - set(tasks))
    if unknown:
        raise ValueError(f"question_types: expected types among {list(tasks)}, got {unknown}")
    return torch.tensor([list(tasks).index(t) for t in question_types], dtype=torch.long)


class MultiTaskOutput(NamedTuple):
    """What :class:`MultiTaskVQA` returns."""

    scores: torch.Tensor  # (B, A) answer scores from each row's own task head; other answers get the lowest float
    features: torch.Tensor  # (B, dim) the shared representation the task heads read


class MultiTaskLoss(NamedTuple):
    """What :meth:`MultiTaskVQA.loss` and the loss functions below return."""

    total: torch.Tensor  # () the weighted sum that training minimises
    per_task: torch.Tensor  # (num_tasks,) each task's mean cross-entropy over its rows of the batch, 0 if it has none
    present: torch.Tensor  # (num_tasks,) bool: which tasks have rows in the batch


def per_task_losses(scores: torch.Tensor, answers: torch.Tensor, task: torch.Tensor,
                    num_tasks: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy of each task over its own rows, and which tasks have rows at all.

    A task without rows in the batch gets 0, not the NaN of an empty mean.
    Shape: ``scores`` (B, A), ``answers`` (B,), ``task`` (B,) ints in [0, num_tasks) -> (num_tasks,) losses,
    (num_tasks,) bool.
    """
    if scores.ndim != 2 or answers.shape != scores.shape[:1] or task.shape != scores.shape[:1]:
        raise ValueError(f"scores, answers, task: expected shapes (B, A), (B,), (B,), got {tuple(scores.shape)}, "
                         f"{tuple(answers.shape)}, {tuple(task.shape)}")
    rows = F.cross_entropy(scores, answers, reduction="none")  # (B,)
    one_hot = F.one_hot(task, num_tasks).to(rows.dtype)  # (B, num_tasks)
    counts = one_hot.sum(0)
    return (one_hot * rows[:, None]).sum(0) / counts.clamp_min(1), counts > 0


def weighted_task_loss(per_task: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """sum_t lambda_t L_t: the plain multi-task loss with fixed task weights lambda_t.

    Shape: (num_tasks,), (num_tasks,) -> ().
    """
    if per_task.shape != weights.shape or per_task.ndim != 1:
        raise ValueError(f"weights: expected shape {tuple(per_task.shape)} (one per task), got {tuple(weights.shape)}")
    return (weights * per_task).sum()


def uncertainty_weighted_loss(per_task: torch.Tensor, log_vars: torch.Tensor,
                              present: torch.Tensor | None = None) -> torch.Tensor:
    """Kendall, Gal and Cipolla (2018): sum_t (exp(-s_t) L_t + s_t / 2), with s_t = log sigma_t^2 learned.

    For a classification task the weight 1 / sigma_t^2 scales the cross-entropy and log sigma_t =
    s_t / 2 keeps sigma_t from growing without bound (without it the loss falls to 0 as every s_t
    grows). At the optimum exp(-s_t) = 1 / (2 L_t): a task whose loss stays high gets a small weight.
    Tasks absent from the batch (``present`` False) add nothing. Shape: (num_tasks,) three times, the last
    bool -> ().
    https://arxiv.org/abs/1705.07115
    """
    if per_task.shape != log_vars.shape or per_task.ndim != 1:
        raise ValueError(f"log_vars: expected shape {tuple(per_task.shape)} (one per task), got "
                         f"{tuple(log_vars.shape)}")
    terms = torch.exp(-log_vars) * per_task + log_vars / 2
    return terms.sum() if present is None else (terms * present).sum()


class MultiTaskVQA(nn.Module):
    """One shared encoder of image and question, one answer head per task (hard parameter sharing).

    The encoder is lesson 03's :class:`~mmcourse.attention.AttentionVQA` without its answer layer:
    the question's words attend over the image's patches and are pooled into one vector h (B, dim).
    Task head t, ``task_heads[t]`` (LayerNorm, Linear), maps h to the scores of task t's answers; each
    row goes through its own task's head only, and its scores land in that task's columns of a (B, A) tensor over all
    answers, so ``answer_id`` is the label of every task and ``argmax`` never picks another task's
    answer. After Caruana (1997) and Ruder (2017), https://arxiv.org/abs/1706.05098.

    Parameters
    ----------
    task_answers : for each task, the answer ids its head scores (:func:`shapes_task_answers`).
    num_answers : A, the size of the whole answer list (``len(ANSWERS)``).
    vocab_size, dim : as for ``AttentionVQA``.
    num_heads : the number of *attention* heads of the encoder, as for ``AttentionVQA`` (the task
        heads are ``task_heads``, one per task).
    task_weights : fixed weights lambda_t of the loss (default 1 each).
    uncertainty : learn the weights instead, from log-variances s_t, ``log_vars`` (num_tasks,) (Kendall et al. 2018).

    Shape: image (B, 3, 32, 32), tokens (B, T), task (B,) ints in [0, num_tasks) -> :class:`MultiTaskOutput`
    (scores (B, A), features (B, dim)).
    """

    def __init__(self, task_answers: Sequence[Sequence[int]], num_answers: int = len(ANSWERS),
                 vocab_size: int = len(VOCAB), dim: int = 32, num_heads: int = 2,
                 task_weights: Sequence[float] | None = None, uncertainty: bool = False) -> None:
        super().__init__()
        if not task_answers or any(not a or min(a) < 0 or max(a) >= num_answers for a in task_answers):
            raise ValueError(f"task_answers: expected one non-empty list of answer ids in [0, {num_answers}) per "
                             f"task, got {task_answers!r}")
        self.encoder = AttentionVQA(vocab_size, 1, dim, num_heads)
        self.encoder.head = nn.Identity()  # lesson 03's model without its answer layer
        self.task_heads = nn.ModuleList(nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, len(a)))
                                        for a in task_answers)
        for t, answers in enumerate(task_answers):
            self.register_buffer(f"answers_{t}", torch.tensor(list(answers), dtype=torch.long))
        self.num_tasks, self.num_answers = len(task_answers), num_answers
        weights = torch.ones(self.num_tasks) if task_weights is None else torch.as_tensor(task_weights).float()
        if weights.shape != (self.num_tasks,) or (weights < 0).any():
            raise ValueError(f"task_weights: expected {self.num_tasks} weights >= 0, got {task_weights!r}")
        self.register_buffer("task_weights", weights)
        self.log_vars = nn.Parameter(torch.zeros(self.num_tasks)) if uncertainty else None

    def task_answers(self, t: int) -> torch.Tensor:
        """The answer ids task ``t``'s head scores, (A_t,)."""
        return getattr(self, f"answers_{t}")

    def forward(self, image: torch.Tensor, tokens: torch.Tensor, task: torch.Tensor) -> MultiTaskOutput:
        if task.shape != tokens.shape[:1] or task.is_floating_point():
            raise ValueError(f"task: expected integer task ids of shape ({len(tokens)},), got {task.dtype} "
                             f"{tuple(task.shape)}")
        # One read-back to the host per forward pass (a synchronisation on a GPU; it was six): the smallest and
        # largest id, for the check, and the number of rows of each task, to cut the rows into one block per
        # head. It cannot go without changing the results: a head must see only its own task's rows (the
        # same matrix products as before), and a head whose task has no row in the batch must not be called
        # at all (its parameters then get no gradient, and Adam leaves them alone; a zero gradient would move
        # them by their momentum).
        counts = [0] * self.num_tasks
        if len(task):
            low, high = torch.aminmax(task)
            per_task = (task[:, None] == torch.arange(self.num_tasks, device=task.device)).sum(0)  # (num_tasks,)
            low, high, *counts = torch.cat([low[None], high[None], per_task]).tolist()
            if low < 0 or high >= self.num_tasks:
                raise ValueError(f"task: expected ids in [0, {self.num_tasks}), got values from {low} to {high}")
        # Each task's rows in ascending order, task after task: block t holds what (task == t).nonzero() would.
        blocks = torch.argsort(task, stable=True).split(counts)
        h = self.encoder.summarize(image, tokens).text  # (B, dim): the question after looking at the image
        scores = h.new_full((len(h), self.num_answers), torch.finfo(h.dtype).min)
        for t, (head, rows) in enumerate(zip(self.task_heads, blocks)):
            if counts[t]:  # this head sees its own task's rows only
                scores[rows[:, None], self.task_answers(t)] = head(h[rows])
        return MultiTaskOutput(scores, h)

    def loss(self, output: MultiTaskOutput, answers: torch.Tensor, task: torch.Tensor) -> MultiTaskLoss:
        """The training loss: fixed weights sum_t lambda_t L_t, or uncertainty weighting with ``uncertainty=True``."""
        per_task, present = per_task_losses(output.scores, answers, task, self.num_tasks)
        if self.log_vars is not None:
            return MultiTaskLoss(uncertainty_weighted_loss(per_task, self.log_vars, present), per_task, present)
        return MultiTaskLoss(weighted_task_loss(per_task, self.task_weights), per_task, present)


MULTITASK_COLUMNS = ["image", "question_ids", "task", "answer_id"]


def multitask_step(model: MultiTaskVQA, batch: dict) -> torch.Tensor:
    """The ``step`` of :func:`mmcourse.train.fit` for a :class:`MultiTaskVQA`: its weighted loss on a batch
    with the columns :data:`MULTITASK_COLUMNS`."""
    output = model(batch["image"], batch["question_ids"], batch["task"])
    return model.loss(output, batch["answer_id"], batch["task"]).total


# --------------------------------------------------------------------------------- distillation


def _check_temperature(temperature) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"temperature: expected a number > 0, got {temperature!r}")


def _check_alpha(alpha) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha: expected a number in [0, 1], got {alpha!r}")


def soft_targets(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(logits / tau): class probabilities softened by the temperature tau (tau = 1: the usual softmax).

    Large tau flattens them towards uniform and lets the small probabilities (which other classes an
    input resembles, Hinton's "dark knowledge") show. Shape: (B, C) -> (B, C).
    """
    _check_temperature(temperature)
    return torch.softmax(logits / temperature, dim=-1)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float = 4.0, alpha: float = 0.5) -> torch.Tensor:
    """Hinton et al. (2015): alpha tau^2 KL(p || q) + (1 - alpha) CE(student, labels).

    p = softmax(teacher / tau) and q = softmax(student / tau) are the distributions softened by the
    temperature tau (the argument ``temperature``); the KL divergence is averaged over the batch. The
    gradient of the soft term with respect to the student's logits is (q - p) / tau, so it shrinks like
    1 / tau^2 as tau grows (for logits of a fixed spread); the factor tau^2 restores its scale, so that
    alpha means the same at every temperature. The teacher gets no gradient. alpha = 0 is plain
    cross-entropy with the labels. https://arxiv.org/abs/1503.02531

    Hinton et al. write the soft term as the cross-entropy with the soft targets, H(p, q) = KL(p || q) +
    H(p). The teacher's entropy H(p) does not depend on the student, so both have the same gradient;
    the KL used here has a different value, 0 when the student matches the teacher.

    Shape: ``student_logits`` (B, C), ``teacher_logits`` (B, C), ``labels`` (B,) int -> () scalar.
    """
    if student_logits.ndim != 2 or teacher_logits.shape != student_logits.shape:
        raise ValueError(f"teacher_logits: expected the student's shape (B, C) = {tuple(student_logits.shape)}, "
                         f"got {tuple(teacher_logits.shape)}")
    if labels.shape != student_logits.shape[:1] or labels.is_floating_point():
        raise ValueError(f"labels: expected integer class ids of shape ({len(student_logits)},), got "
                         f"{labels.dtype} {tuple(labels.shape)}")
    _check_temperature(temperature)
    _check_alpha(alpha)
    tau = temperature
    soft = F.kl_div(F.log_softmax(student_logits / tau, dim=-1), F.log_softmax(teacher_logits.detach() / tau, dim=-1),
                    log_target=True, reduction="batchmean")
    return alpha * tau * tau * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)


def distillation_step(temperature: float, alpha: float, inputs: Sequence[str] = ("image",),
                      teacher: str = "teacher_logits", target: str = "label") -> Step:
    """The ``step`` of :func:`mmcourse.train.fit` that trains a student with :func:`distillation_loss`.

    Each batch holds the student's ``inputs``, the teacher's logits for the same rows (column
    ``teacher``, computed once beforehand) and the labels (``target``). Pass
    ``inputs=[*inputs, teacher]`` and ``target`` to ``fit``.
    """
    _check_temperature(temperature)
    _check_alpha(alpha)

    def step(model: nn.Module, batch: dict) -> torch.Tensor:
        output = model(*(batch[c] for c in inputs))
        scores = output.scores if hasattr(output, "scores") else output
        return distillation_loss(scores, batch[teacher], batch[target], temperature, alpha)

    return step


def distillation_train_step(student: nn.Module, teacher: nn.Module, batch: dict, optimizer,
                            temperature: float = 4.0, alpha: float = 0.5, student_inputs: Sequence[str] = ("image",),
                            teacher_inputs: Sequence[str] = ("image", "audio"), target: str = "label") -> torch.Tensor:
    """One training step of a student distilled from a frozen teacher (Hinton et al. 2015), teacher included.

    The teacher is put in eval mode (no dropout, of modalities or units) and run under ``torch.no_grad()``:
    its logits v are targets, and it learns nothing. The student's logits u on its own inputs give
    :func:`distillation_loss` (u, v, ``batch[target]``, tau, alpha); then the optimiser's ``zero_grad``, the
    backward pass and its ``step``, which moves the student's parameters only. :func:`distillation_step` is the
    same loss for :func:`mmcourse.train.fit`, with the teacher's logits computed once beforehand.
    https://arxiv.org/abs/1503.02531

    Shape: ``batch`` {column: (B, ...)}: the student's ``student_inputs``, the teacher's ``teacher_inputs`` and
    ``target`` (B,) class ids; ``optimizer`` over the student's parameters (``zero_grad()`` and ``step()``) ->
    the loss, a detached () tensor.
    """
    _check_temperature(temperature)
    _check_alpha(alpha)
    teacher.eval()
    with torch.no_grad():
        teacher_logits = scores_of(teacher(*(batch[c] for c in teacher_inputs)))
    student.train()
    student_logits = scores_of(student(*(batch[c] for c in student_inputs)))
    loss = distillation_loss(student_logits, teacher_logits, batch[target], temperature, alpha)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach()
