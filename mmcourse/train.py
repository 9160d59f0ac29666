"""One training loop for the whole course: ``fit`` (with a progress bar, returning a history),
``predict`` and ``evaluate``.

Data is either a ``datasets.Dataset`` (formatted for torch) or a dict of tensors with one row per
sample. Columns are turned into tensors once, then batches are sliced from them, which is much
faster than going through the Arrow table for every batch. By default ``fit`` trains a classifier:
the columns named in ``inputs`` go to the model in that order and ``target`` holds the labels.
Any other objective (Deep CCA's correlation, a VAE's ELBO, a contrastive loss) is a ``step``:
a function ``step(model, batch) -> loss`` of the model and a dict of batch columns, so every
lesson trains with the same loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .data.util import as_tensors
from .device import get_device
from .metrics import accuracy


@dataclass
class History:
    """What ``fit`` measured after each epoch."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def __repr__(self) -> str:
        last = f", val_accuracy={self.val_accuracy[-1]:.3f}" if self.val_accuracy else ""
        loss = f"{self.train_loss[-1]:.4f}" if self.train_loss else "n/a"
        return f"History(epochs={len(self.epoch)}, train_loss={loss}{last}, seconds={self.seconds:.1f})"


Step = Callable[[nn.Module, dict], torch.Tensor]


def scores_of(output) -> torch.Tensor:
    """The class scores in a model's output: the output itself, or its ``scores`` field.

    The course's classifiers return a ``NamedTuple`` whose first field, ``scores`` (B, C), is
    what ``fit`` trains and ``predict`` returns; plain modules (``nn.Sequential``) return scores.
    """
    return output.scores if hasattr(output, "scores") else output


def classification_step(inputs: Sequence[str], target: str, loss_fn: Callable = F.cross_entropy) -> Step:
    """The default ``step`` of :func:`fit`: ``loss_fn(scores_of(model(*inputs)), batch[target])``."""

    def step(model: nn.Module, batch: dict) -> torch.Tensor:
        return loss_fn(scores_of(model(*(batch[c] for c in inputs))), batch[target])

    return step


class Adam:
    """Adam (Kingma and Ba 2015, https://arxiv.org/abs/1412.6980) with L2 weight decay, written out.

    For each parameter p with gradient g, at its t-th step (moments m and v start at zero)::

        g <- g + weight_decay * p
        m <- m + (1 - beta1) (g - m)                 (a running mean of the gradients)
        v <- beta2 v + (1 - beta2) g^2               (... and of their squares)
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    The divisions by 1 - beta^t undo the pull towards the zero start in the first steps. These are
    ``torch.optim.Adam``'s operations in its order (its per-parameter path, the one it takes on a
    CPU), so the two give the same weights bit for bit (tests/test_core.py compares them). Why not
    just use it: the first ``torch.optim`` optimiser of a process imports TorchDynamo, which took 1.1 s
    on an idle 2-core machine and up to 2.6 s on a busy one (as long as training one of lesson 01's
    models), and its wrappers cost about a fifth of a millisecond at every step.
    Parameters that get no gradient at a step are left alone, and their step count stays.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("params: expected at least one tensor that requires a gradient, got none")
        if not (lr > 0 and 0 <= betas[0] < 1 and 0 <= betas[1] < 1 and eps >= 0 and weight_decay >= 0):
            raise ValueError(f"lr, betas, eps, weight_decay: expected lr > 0, betas in [0, 1), eps >= 0 and "
                             f"weight_decay >= 0, got {lr}, {betas}, {eps}, {weight_decay}")
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.state: dict[torch.Tensor, dict] = {}  # per parameter: step t, moments m and v

    def zero_grad(self) -> None:
        """Forget the gradients (set them to None, as ``torch.optim`` does by default)."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One Adam step for every parameter that has a gradient."""
        beta1, beta2 = self.betas
        for p in self.params:
            if p.grad is None:
                continue
            g = p.grad if self.weight_decay == 0 else p.grad.add(p, alpha=self.weight_decay)
            if p not in self.state:
                zeros = torch.zeros_like(p, memory_format=torch.preserve_format)
                self.state[p] = {"t": 0, "m": zeros, "v": zeros.clone()}
            state = self.state[p]
            state["t"] += 1
            t, m, v = state["t"], state["m"], state["v"]
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denominator = (v.sqrt() / (1 - beta2**t) ** 0.5).add_(self.eps)
            p.addcdiv_(m, denominator, value=-self.lr / (1 - beta1**t))


class SGD:
    """Plain stochastic gradient descent, p <- p - lr * g: ``torch.optim.SGD`` without momentum, the same
    numbers, written out for the reason given in :class:`Adam`."""

    def __init__(self, params, lr: float) -> None:
        self.params = [p for p in params if p.requires_grad]
        if not self.params or not lr > 0:
            raise ValueError(f"params, lr: expected tensors that require a gradient and lr > 0, got "
                             f"{len(self.params)} tensors and lr={lr}")
        self.lr = lr

    def zero_grad(self) -> None:
        """Forget the gradients (set them to None)."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One step for every parameter that has a gradient."""
        for p in self.params:
            if p.grad is not None:
                p.add_(p.grad, alpha=-self.lr)


def _batches(n: int, batch_size: int, generator: torch.Generator | None, drop_last: bool = False,
             device: torch.device | None = None):
    """The row indices of each batch of one pass over ``n`` rows: shuffled by ``generator`` (drawn on the
    CPU, so every device gets the CPU's order), else in order. With ``device``, the indices are made or
    copied there once per pass, not once per batch (each copy from the host stalls a GPU's pipeline)."""
    if generator is not None:
        order = torch.randperm(n, generator=generator)
        order = order.to(device) if device is not None else order
    else:
        order = torch.arange(n, device=device)
    end = n // batch_size * batch_size if drop_last else n
    for start in range(0, end, batch_size):
        yield order[start : start + batch_size]


def _index_device(columns: dict) -> torch.device:
    """Where to make the batches' indices: the columns' device when they share one, else the CPU (a CPU
    index works on any device's tensor, at the price of a copy per batch)."""
    devices = {v.device for v in columns.values()}
    return devices.pop() if len(devices) == 1 else torch.device("cpu")


def _total_of_batches(losses: list[torch.Tensor], sizes: list[int]) -> float:
    """The sum of ``loss * size`` over batches of per-batch mean losses, read from the device once.

    The arithmetic is that of adding ``loss.item() * size`` batch by batch in Python floats from 0: each
    loss is read as its own dtype's value (``tolist``, like ``item``; ``stack`` promotes mixed dtypes
    exactly), so the result is the same, bit for bit, as reading each loss at its step."""
    values = torch.stack([loss.reshape(()) for loss in losses]).cpu().tolist()
    total = 0.0
    for value, size in zip(values, sizes):
        total += value * size
    return total


def _progress(total: int, enabled: bool, description: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=description, leave=True)


@torch.no_grad()
def _scores(model: nn.Module, columns: dict, inputs: Sequence[str], batch_size: int) -> torch.Tensor:
    """Class scores of every row of ``columns``, in order, on the model's device (eval mode). Columns on
    the CPU go to the device batch by batch; the scores stay there (the caller reads them once)."""
    device = next(model.parameters()).device
    n = len(next(iter(columns.values())))
    was_training = model.training
    model.eval()
    outputs = [scores_of(model(*(columns[c][idx].to(device) for c in inputs)))
               for idx in _batches(n, batch_size, None, device=_index_device(columns))]
    model.train(was_training)
    return torch.cat(outputs)


PREDICT_BATCH = 1024  # rows per forward pass when scoring: predict's default, and fit's validation


def predict(model: nn.Module, data, inputs: Sequence[str], batch_size: int = PREDICT_BATCH) -> torch.Tensor:
    """Class scores of ``model`` for every row, in order, on the CPU (eval mode). Shape: (N, C)."""
    return _scores(model, as_tensors(data, inputs), inputs, batch_size).cpu()


def evaluate(
    model: nn.Module,
    data,
    inputs: Sequence[str] = ("image",),
    target: str = "label",
    loss_fn: Callable = F.cross_entropy,
) -> dict[str, float]:
    """Loss and accuracy of a classifier on ``data`` (no gradients, eval mode)."""
    return _loss_and_accuracy(predict(model, data, inputs), as_tensors(data, [target])[target], loss_fn)


def _loss_and_accuracy(scores: torch.Tensor, labels: torch.Tensor, loss_fn: Callable) -> dict[str, float]:
    return {"loss": float(loss_fn(scores, labels)), "accuracy": accuracy(scores, labels)}


@torch.no_grad()
def _mean_step_loss(model: nn.Module, step: Step, columns: dict, batch_size: int) -> float:
    """The mean of ``step``'s loss over the rows of ``columns`` (on the device), read from it once."""
    was_training = model.training
    model.eval()
    n = len(next(iter(columns.values())))
    losses, sizes = [], []
    for idx in _batches(n, batch_size, None, device=_index_device(columns)):
        losses.append(step(model, {c: v[idx] for c, v in columns.items()}))
        sizes.append(len(idx))
    model.train(was_training)
    return _total_of_batches(losses, sizes) / n


def fit(
    model: nn.Module,
    train,
    inputs: Sequence[str] = ("image",),
    target: str | None = "label",
    *,
    step: Step | None = None,
    validation=None,
    epochs: int = 10,
    batch_size: int = 64,
    drop_last: bool = False,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    loss_fn: Callable = F.cross_entropy,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
    before_step: Callable | None = None,
    description: str = "training",
) -> History:
    """Train ``model`` with :class:`Adam` on ``train`` and return its :class:`History`.

    Parameters
    ----------
    model : nn.Module
    train, validation : datasets.Dataset or dict of tensors
        Rows to learn from, and rows to measure after each epoch (optional).
    inputs, target : column names
        The columns each batch holds (``target`` may be ``None``). Without ``step``, the model is
        called as ``model(*[batch[c] for c in inputs])`` and must return class scores (B, C), or a
        NamedTuple with a ``scores`` field; the loss is ``loss_fn(scores, batch[target])``.
    step : callable(model, batch) -> scalar loss, optional
        Any other objective; ``batch`` is a dict of the ``inputs`` and ``target`` columns of one
        minibatch, on the device. With a ``step``, the validation history holds its mean loss.
    epochs, batch_size, lr, weight_decay : the usual knobs.
    drop_last : skip the last, smaller batch of each epoch (losses measured inside a batch, such as
        correlations, need full batches).
    seed : fixes the shuffling of the batches.
    device : defaults to :func:`mmcourse.get_device`.
    progress : show a ``tqdm`` bar over the epochs, labelled ``description``.
    before_step : optional ``callable(batch) -> batch`` applied to each training batch
        (for example to corrupt or drop a modality).

    On a GPU, ``fit`` waits for the device only a few times per epoch, never at every step: the losses
    stay on the device and are read once at each epoch's end (the history's numbers are those of
    reading each at its step), the epoch's shuffled order goes to the device once, and the validation
    rows once per fit. There is no check for a NaN loss: a NaN shows in the epoch's ``train_loss``.
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size: expected >= 1, got epochs={epochs}, batch_size={batch_size}")
    if step is None and target is None:
        raise ValueError("target: expected the label column for the default classification step, got None")
    classify = step is None
    step = classification_step(inputs, target, loss_fn) if classify else step
    device = torch.device(device) if device is not None else get_device()
    model.to(device)
    columns_used = [*inputs, *([target] if target is not None else [])]
    columns = as_tensors(train, columns_used, device)
    n = len(next(iter(columns.values())))
    if drop_last and batch_size > n:
        raise ValueError(f"batch_size: with drop_last, expected at most the {n} training rows, got {batch_size}")
    optimizer = Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    # Validation rows go to the device once; a classifier's labels stay on the CPU, where its loss and
    # accuracy are computed from the scores as evaluate() does (the same numbers as evaluate's).
    val_columns = None if validation is None else as_tensors(validation, inputs if classify else columns_used,
                                                              device)
    val_labels = as_tensors(validation, [target])[target] if validation is not None and classify else None
    history = History()
    start = time.perf_counter()
    with _progress(epochs, progress, description) as bar:
        for epoch in range(1, epochs + 1):
            model.train()
            losses, sizes = [], []  # read once at the epoch's end: .item() here would stall a GPU every step
            for idx in _batches(n, batch_size, generator, drop_last, device=_index_device(columns)):
                # index_select: the same rows as v[idx], about four times faster for a small batch
                batch = {c: v.index_select(0, idx) for c, v in columns.items()}
                if before_step is not None:
                    batch = before_step(batch)
                loss = step(model, batch)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.detach())
                sizes.append(len(idx))
            total, count = _total_of_batches(losses, sizes), sum(sizes)
            history.epoch.append(epoch)
            history.train_loss.append(total / count)
            postfix = {"loss": f"{total / count:.3f}"}
            if val_labels is not None:
                scores = _scores(model, val_columns, inputs, PREDICT_BATCH).cpu()
                result = _loss_and_accuracy(scores, val_labels, loss_fn)
                history.val_loss.append(result["loss"])
                history.val_accuracy.append(result["accuracy"])
                postfix["val_acc"] = f"{result['accuracy']:.3f}"
            elif val_columns is not None:
                history.val_loss.append(_mean_step_loss(model, step, val_columns, batch_size))
                postfix["val_loss"] = f"{history.val_loss[-1]:.3f}"
            bar.set_postfix(postfix)
            bar.update(1)
    history.seconds = time.perf_counter() - start
    return history
