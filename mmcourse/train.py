"""A small training loop: ``fit`` and ``evaluate`` with a progress bar and a returned history.

Data is either a ``datasets.Dataset`` (formatted for torch) or a dict of tensors with one row
per sample. Columns named in ``inputs`` are passed to the model in that order; ``target`` holds
the labels. Columns are turned into tensors once, then batches are sliced from them, which is
much faster than going through the Arrow table for every batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .device import get_device


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


def as_tensors(data, columns: Sequence[str], device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """Columns of a ``datasets.Dataset`` or a dict of tensors, as a dict of tensors on ``device``."""
    names = data.column_names if hasattr(data, "column_names") else list(data)
    missing = [c for c in columns if c not in names]
    if missing:
        raise ValueError(f"data: missing columns {missing}; it has {sorted(names)}")
    out = {}
    for c in columns:
        value = data[c]
        if not isinstance(value, torch.Tensor):
            value = _column_tensor(data, c) if hasattr(data, "with_format") else torch.as_tensor(value)
        out[c] = value.to(device) if device is not None else value
    sizes = {c: len(v) for c, v in out.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"data: columns have different numbers of rows: {sizes}")
    if next(iter(sizes.values()), 0) == 0:
        raise ValueError("data: no rows")
    return out


def _column_tensor(data, column: str) -> torch.Tensor:
    """One column of a ``datasets.Dataset`` as a tensor.

    Fixed-size array columns (images, spectrograms) are read straight from Arrow, which is about a
    hundred times faster than the torch formatter for thousands of images.
    """
    import numpy as np
    import pyarrow as pa

    array = data.with_format("arrow")[column][:].combine_chunks()
    shape = []
    while pa.types.is_fixed_size_list(array.type):
        shape.append(array.type.list_size)
        array = array.flatten()
    if not shape or array.null_count or not (pa.types.is_floating(array.type) or pa.types.is_integer(array.type)
                                              or pa.types.is_boolean(array.type)):
        return data.with_format("torch")[column][:]
    return torch.from_numpy(np.array(array.to_numpy(zero_copy_only=False)).reshape(-1, *shape))


def _batches(n: int, batch_size: int, generator: torch.Generator | None):
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def _progress(total: int, enabled: bool, description: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=description, leave=True)


@torch.no_grad()
def predict(model: nn.Module, data, inputs: Sequence[str], batch_size: int = 1024) -> torch.Tensor:
    """Model outputs for every row, in order, on the CPU. Shape: (N, ...) as the model returns."""
    device = next(model.parameters()).device
    columns = as_tensors(data, inputs)
    n = len(next(iter(columns.values())))
    was_training = model.training
    model.eval()
    outputs = []
    for idx in _batches(n, batch_size, None):
        out = model(*(columns[c][idx].to(device) for c in inputs))
        outputs.append((out[0] if isinstance(out, tuple) else out).cpu())
    model.train(was_training)
    return torch.cat(outputs)


def evaluate(
    model: nn.Module,
    data,
    inputs: Sequence[str] = ("image",),
    target: str = "label",
    loss_fn: Callable = F.cross_entropy,
) -> dict[str, float]:
    """Loss and accuracy of ``model`` on ``data`` (no gradients, eval mode)."""
    scores = predict(model, data, inputs)
    labels = as_tensors(data, [target])[target]
    return {
        "loss": float(loss_fn(scores, labels)),
        "accuracy": (scores.argmax(1) == labels).float().mean().item(),
    }


def fit(
    model: nn.Module,
    train,
    inputs: Sequence[str] = ("image",),
    target: str = "label",
    *,
    validation=None,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    loss_fn: Callable = F.cross_entropy,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
    before_step: Callable | None = None,
) -> History:
    """Train ``model`` with Adam on ``train`` and return its :class:`History`.

    Parameters
    ----------
    model : nn.Module
        Called as ``model(*[batch[c] for c in inputs])``; must return scores (B, C) (or a tuple
        whose first element is the scores).
    train, validation : datasets.Dataset or dict of tensors
        Rows to learn from, and rows to measure after each epoch (optional).
    inputs, target : column names
    epochs, batch_size, lr, weight_decay : the usual knobs.
    loss_fn : callable(scores, labels) -> scalar loss
    seed : fixes the shuffling of the batches.
    device : defaults to :func:`mmcourse.get_device`.
    progress : show a ``tqdm`` bar over the epochs.
    before_step : optional ``callable(batch_dict) -> batch_dict`` applied to each training batch
        (for example to corrupt or drop a modality).
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size: expected >= 1, got epochs={epochs}, batch_size={batch_size}")
    device = torch.device(device) if device is not None else get_device()
    model.to(device)
    columns = as_tensors(train, [*inputs, target], device)
    n = len(columns[target])
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    history = History()
    start = time.perf_counter()
    with _progress(epochs, progress, "training") as bar:
        for epoch in range(1, epochs + 1):
            model.train()
            total, count = 0.0, 0
            for idx in _batches(n, batch_size, generator):
                batch = {c: v[idx.to(v.device)] for c, v in columns.items()}
                if before_step is not None:
                    batch = before_step(batch)
                out = model(*(batch[c] for c in inputs))
                loss = loss_fn(out[0] if isinstance(out, tuple) else out, batch[target])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(idx)
                count += len(idx)
            history.epoch.append(epoch)
            history.train_loss.append(total / count)
            postfix = {"loss": f"{total / count:.3f}"}
            if validation is not None:
                result = evaluate(model, validation, inputs, target, loss_fn)
                history.val_loss.append(result["loss"])
                history.val_accuracy.append(result["accuracy"])
                postfix["val_acc"] = f"{result['accuracy']:.3f}"
            bar.set_postfix(postfix)
            bar.update(1)
    history.seconds = time.perf_counter() - start
    return history
