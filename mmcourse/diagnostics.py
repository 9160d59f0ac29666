"""The quantification toolkit: controls that back a lesson's interpretations.

"The model uses the audio" or "attention finds the object" means little without a control: the
accuracy left when the audio carries no information or belongs to another sample, when patches are
deleted in a random order instead, and how far the number could move on another test set.

References
----------
Efron and Tibshirani (1993), "An Introduction to the Bootstrap", Chapman & Hall.
Samek, Binder, Montavon, Lapuschkin and Mueller (2017), "Evaluating the visualization of what a deep
neural network has learned", https://arxiv.org/abs/1509.06321
Hooker, Erhan, Kindermans and Kim (2019), "A Benchmark for Interpretability Methods in Deep Neural
Networks", https://arxiv.org/abs/1806.10758
Hessel and Lee (2020), "Does my multimodal model learn cross-modal interactions? It's harder to tell
than you might think!", https://arxiv.org/abs/2010.06572
Frank, Bugliarello and Elliott (2021), "Vision-and-Language or Vision-for-Language? On Cross-Modal
Influence in Multimodal Transformers", https://arxiv.org/abs/2109.04448
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import NamedTuple

import torch

from .metrics import accuracy
from .train import fit, scores_of

Inputs = dict[str, torch.Tensor]
_EVAL_ROWS = 1024  # rows per forward pass when evaluating: bounds the activations' memory


def _check_rows(name: str, x, rows: int | None = None) -> torch.Tensor:
    """``x`` as a tensor with at least one row (exactly ``rows`` if given) and no NaN."""
    x = torch.as_tensor(x)
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"{name}: expected a non-empty tensor of shape (N, ...), got shape {tuple(x.shape)}")
    if rows is not None and len(x) != rows:
        raise ValueError(f"{name}: expected {rows} rows, got shape {tuple(x.shape)}")
    if x.is_floating_point() and x.isnan().any():
        raise ValueError(f"{name}: contains NaN; expected numbers")
    return x


# ----------------------------------------------------------------------------- bootstrap intervals
class Interval(NamedTuple):
    """An estimate with its bootstrap confidence interval; prints as ``0.912 [0.887, 0.934]``."""

    estimate: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap_interval(values, statistic: Callable | None = None, n_boot: int = 2000, level: float = 0.95,
                       seed: int = 0) -> Interval:
    """Percentile bootstrap interval of a statistic of per-sample values (Efron and Tibshirani 1993).

    Draw N rows with replacement ``n_boot`` times, compute the statistic on each resample and keep the
    central ``level`` fraction: how far the number could move on another test set of the same size.

    Shape:
        - values: (N,) numbers or bools (1.0 for a correct answer, 0.0 for a wrong one), or a tuple
          of (N, ...) tensors resampled with the same row indices
        - statistic: ``statistic(*resampled) -> number``; default the mean, vectorised over resamples
        - returns :class:`Interval` (the statistic on all N rows, low, high)

    Values may be on any device. The default mean is computed on the CPU, in float64 (which Apple's MPS
    lacks): the same numbers on every device. A ``statistic`` gets the tensors on their own device.
    """
    columns = values if isinstance(values, tuple) else (values,)
    columns = tuple(_check_rows("values", c, None if i == 0 else len(columns[0])) for i, c in enumerate(columns))
    if not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot: expected an integer >= 1, got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level: expected a number in (0, 1), e.g. 0.95, got {level!r}")
    n = len(columns[0])
    idx = torch.randint(n, (n_boot, n), generator=torch.Generator().manual_seed(seed))  # all resamples at once
    if statistic is None:
        if len(columns) != 1 or columns[0].ndim != 1:
            raise ValueError(f"statistic: the default (the mean) needs one (N,) tensor, got {len(columns)} "
                             f"tensor(s) of shape {tuple(columns[0].shape)}; pass a statistic")
        x = columns[0].to("cpu", torch.float64)
        estimate, stats = x.mean().item(), x[idx].mean(dim=1)
    else:
        estimate = float(statistic(*columns))
        stats = torch.tensor([float(statistic(*(c[i] for c in columns))) for i in idx], dtype=torch.float64)
        if stats.isnan().any():
            raise ValueError(f"statistic: returned NaN on {int(stats.isnan().sum())} of {n_boot} resamples")
    low, high = torch.quantile(stats, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64))
    return Interval(estimate, low.item(), high.item())


def paired_difference(correct_a, correct_b, n_boot: int = 2000, level: float = 0.95, seed: int = 0,
                      copies: int = 1) -> Interval:
    """Bootstrap interval of mean(a) - mean(b) for two models measured on the same test samples.

    Rows are resampled jointly: a hard sample is hard for both models, so the difference varies less
    than either accuracy. With ``copies`` > 1 the rows are ``copies`` corrupted versions of N clean
    samples, stacked copy after copy (row ``c * N + i`` is copy c of sample i); copies of one sample
    are not independent, so each sample is resampled with all its copies (a cluster bootstrap).
    Shape: ``correct_a``, ``correct_b`` (copies * N,) (1.0 correct, 0.0 wrong), on any devices (computed on
    the CPU, in float64) -> :class:`Interval`.
    """
    a, b = _check_rows("correct_a", correct_a), _check_rows("correct_b", correct_b)
    if a.ndim != 1:
        raise ValueError(f"correct_a: expected shape (N,), one value per sample, got {tuple(a.shape)}")
    if b.shape != a.shape:
        raise ValueError(f"correct_b: expected shape {tuple(a.shape)} like correct_a, got {tuple(b.shape)}")
    if not isinstance(copies, int) or copies < 1 or len(a) % copies:
        raise ValueError(f"copies: expected a whole number >= 1 that divides the {len(a)} rows, got {copies!r}")
    difference = a.to("cpu", torch.float64) - b.to("cpu", torch.float64)
    return bootstrap_interval(difference.view(copies, -1).mean(0), None, n_boot, level, seed)


def normal_interval(values, level: float = 0.95) -> Interval:
    """Mean of ``values`` with the normal-approximation interval mean +- z sd / sqrt(n), as the few-shot
    literature reports accuracy over episodes (z = 1.96 for 95%). Shape: (n,), n >= 2 -> :class:`Interval`.

    >>> round(normal_interval([0.5, 0.7]).estimate, 6)
    0.6
    """
    x = _check_rows("values", values).to("cpu", torch.float64)  # on the CPU: MPS has no float64
    if x.ndim != 1 or len(x) < 2:
        raise ValueError(f"values: expected shape (n,) with n >= 2, got {tuple(x.shape)}")
    if not 0 < level < 1:
        raise ValueError(f"level: expected a probability in (0, 1), got {level!r}")
    z = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(0.5 + level / 2, dtype=torch.float64)).item()
    mean, half = x.mean().item(), z * x.std().item() / math.sqrt(len(x))
    return Interval(mean, mean - half, mean + half)


# ----------------------------------------------------------------------------- modality controls
def _check_inputs(inputs: Inputs, names: Iterable[str], argument: str) -> list[str]:
    """Names as a list; every name a column of ``inputs``, whose columns have the same rows."""
    if not isinstance(inputs, dict) or not inputs:
        raise ValueError(f"inputs: expected a non-empty dict of tensors, one per modality, got {type(inputs).__name__}")
    rows = {k: len(v) if isinstance(v, torch.Tensor) and v.ndim else None for k, v in inputs.items()}
    if None in rows.values() or len(set(rows.values())) != 1 or 0 in rows.values():
        raise ValueError(f"inputs: expected tensors with the same number of rows (at least one), got {rows}")
    if any(v.is_floating_point() and v.isnan().any() for v in inputs.values()):
        raise ValueError(f"inputs: expected numbers, got NaN in {[k for k, v in inputs.items() if v.isnan().any()]}")
    names = [names] if isinstance(names, str) else list(names)
    unknown = [k for k in names if k not in inputs]
    if unknown:
        raise ValueError(f"{argument}: unknown column(s) {unknown}; expected some of {sorted(inputs)}")
    return names


def mean_ablation(inputs: Inputs, names: Iterable[str]) -> Inputs:
    """A copy of ``inputs`` where each named column is the same for every row, so it tells nothing
    about the sample (Frank, Bugliarello and Elliott 2021).

    Floating columns get their mean over the rows; integer and bool columns (token ids, masks), whose
    mean is no valid value, their most frequent value at each position. Other columns are shared, not
    copied. Shape: ``inputs`` {name: (N, ...)} -> the same shapes.
    """
    out = dict(inputs)
    for name in _check_inputs(inputs, names, "names"):
        x = inputs[name]
        constant = x.mean(dim=0) if x.is_floating_point() else x.mode(dim=0).values
        out[name] = constant.expand_as(x).clone()
    return out


def shuffled_pairs(inputs: Inputs, name: str, generator: torch.Generator | None = None) -> Inputs:
    """A copy of ``inputs`` where column ``name`` is permuted so that no row keeps its own partner (a
    related idea for classifiers: EMAP, Hessel and Lee 2020, averages predictions over every pairing).

    Each modality's distribution is unchanged but every pairing is broken: a model that uses the
    pairing falls to chance. The derangement is one random cycle: row ``order[i]`` takes row
    ``order[i + 1]``. Shape: ``inputs`` {name: (N, ...)} with N >= 2 -> the same shapes.
    """
    _check_inputs(inputs, [name], "name")
    n = len(inputs[name])
    if n < 2:
        raise ValueError(f"inputs: expected at least 2 rows to shuffle pairs, got {n}")
    order = torch.randperm(n, generator=generator)
    source = torch.empty_like(order)
    source[order] = order.roll(-1)
    return {**inputs, name: inputs[name][source.to(inputs[name].device)]}


def modality_controls(predict: Callable[[Inputs], torch.Tensor], inputs: Inputs, labels: torch.Tensor,
                      names: Iterable[str] | None = None, metric: Callable | None = None,
                      generator: torch.Generator | None = None) -> dict[str, float]:
    """A model's metric on intact inputs and under each modality control.

    Keys: ``"all"``; ``"without <name>"`` (that column mean-ablated, :func:`mean_ablation`);
    ``"modality-blind"`` (every named column ablated: what is left from the label prior alone);
    ``"shuffled <name>"`` (:func:`shuffled_pairs`). A small drop "without" a modality says the model
    ignores it; "shuffled" near chance says the model uses the pairing.

    Shape:
        - predict: ``predict(inputs) -> scores`` (N, C), e.g. ``lambda d: model(d["image"], d["audio"])``
        - inputs {name: (N, ...)}; labels (N,); names: the columns to control, default all
        - metric: ``metric(scores, labels) -> float``, default :func:`mmcourse.metrics.accuracy`
    """
    names = _check_inputs(inputs, list(inputs) if names is None else names, "names")
    labels = _check_rows("labels", labels, len(next(iter(inputs.values()))))
    metric = accuracy if metric is None else metric

    @torch.no_grad()
    def score(columns: Inputs) -> float:
        return float(metric(scores_of(predict(columns)), labels))

    results = {"all": score(inputs)}
    results.update({f"without {k}": score(mean_ablation(inputs, [k])) for k in names})
    results["modality-blind"] = score(mean_ablation(inputs, names))
    results.update({f"shuffled {k}": score(shuffled_pairs(inputs, k, generator)) for k in names})
    return results


def unimodal_baselines(make_model: Callable, train: Inputs, test: Inputs, modalities: Iterable[str],
                       target: str = "label", **fit_kwargs) -> dict[str, float]:
    """Test accuracy of a model trained on each modality alone: what the fused model must beat.

    ``make_model(name)`` builds a fresh model that takes the one input ``name``; it is trained with
    :func:`mmcourse.train.fit` (``fit_kwargs``: epochs, lr, seed ...) and evaluated in eval mode. It
    returns scores (B, C) or a NamedTuple with a ``scores`` field (Hessel and Lee 2020).

    Shape: ``train``, ``test`` {column: (N, ...)} with each modality and ``target`` (N,) -> {modality: accuracy}.
    """
    modalities = _check_inputs(test, modalities, "modalities")
    if target not in test:
        raise ValueError(f"target: unknown column {target!r}; expected one of {sorted(test)}")
    results = {}
    for name in modalities:
        model = make_model(name)
        fit(model, train, [name], target, progress=False, **fit_kwargs)
        device = next(model.parameters()).device
        model.eval()
        with torch.no_grad():
            scores = torch.cat([scores_of(model(x.to(device))).cpu() for x in test[name].split(_EVAL_ROWS)])
        results[name] = accuracy(scores, test[target].cpu())
    return results


# ----------------------------------------------------------------------------- deletion curves
def _check_images(images: torch.Tensor, grid: int) -> tuple[int, int, int, int]:
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images: expected a non-empty batch of shape (N, C, H, W), got {tuple(images.shape)}")
    n, c, h, w = images.shape
    if not isinstance(grid, int) or grid < 1 or h % grid or w % grid:
        raise ValueError(f"grid: expected an integer that divides the image size {h}x{w}, got {grid!r}")
    return n, c, h, w


def delete_patches(images: torch.Tensor, deleted: torch.Tensor, grid: int, fill) -> torch.Tensor:
    """A copy of ``images`` with the deleted patches of a ``grid`` x ``grid`` grid painted with ``fill``
    (Samek et al. 2017). Patches are numbered row by row, as :func:`mmcourse.metrics.patch_masks` does.

    Shape:
        - images (N, C, H, W), with H and W divisible by ``grid``
        - deleted bool (N, P), P = grid * grid
        - fill: a number, or (N, C) or (N, C, 1, 1), e.g. each image's background colour
        - returns (N, C, H, W), on the device of ``images`` (``deleted`` and ``fill`` are moved there)
    """
    n, c, h, w = _check_images(images, grid)
    if deleted.dtype != torch.bool or deleted.shape != (n, grid * grid):
        raise ValueError(f"deleted: expected a bool tensor of shape ({n}, {grid * grid}), got {deleted.dtype} "
                         f"{tuple(deleted.shape)}")
    if isinstance(fill, torch.Tensor):
        if fill.shape not in ((n, c), (n, c, 1, 1)):
            raise ValueError(f"fill: expected a number or a tensor of shape ({n}, {c}) or ({n}, {c}, 1, 1), "
                             f"got {tuple(fill.shape)}")
        fill = fill.reshape(n, c, 1, 1).to(images.device, images.dtype)
    elif isinstance(fill, bool) or not isinstance(fill, (int, float)):
        raise ValueError(f"fill: expected a number or a tensor of shape ({n}, {c}), got {type(fill).__name__}")
    # each patch flag covers an (H / grid) x (W / grid) block of pixels
    mask = deleted.to(images.device).reshape(n, 1, grid, 1, grid, 1).expand(n, 1, grid, h // grid, grid, w // grid)
    return torch.where(mask.reshape(n, 1, h, w), fill, images)


def saliency_order(saliency: torch.Tensor) -> torch.Tensor:
    """Patch indices from most to least salient, ties in patch order (Samek et al. 2017).

    Shape: ``saliency`` (N, P), e.g. attention weights or gradient x input summed per patch -> (N, P) long.
    """
    if saliency.ndim != 2 or saliency.isnan().any():
        raise ValueError(f"saliency: expected shape (N, P) without NaN, got {tuple(saliency.shape)}")
    return saliency.argsort(dim=1, descending=True, stable=True)


def random_order(n: int, p: int, generator: torch.Generator | None = None,
                 first: torch.Tensor | None = None) -> torch.Tensor:
    """A random order of the P patches for each of N rows: the control for :func:`saliency_order`
    (Hooker et al. 2019). With ``first``, the patches where it is True come first (in random order
    among themselves): "random order among the object's patches". Shape: ``first`` bool (N, P) -> (N, P) long.
    """
    keys = torch.rand(n, p, generator=generator)  # in [0, 1): argsort gives a uniform random order
    if first is not None:
        if first.dtype != torch.bool or first.shape != (n, p):
            raise ValueError(f"first: expected a bool tensor of shape ({n}, {p}), got {first.dtype} "
                             f"{tuple(first.shape)}")
        keys = keys - first.float()  # first patches' keys move to [-1, 0), before everyone else's
    return keys.argsort(dim=1)


def deletion_curve(predict: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, order: torch.Tensor,
                   grid: int, labels: torch.Tensor, fill, steps: Iterable[int] | None = None,
                   per_sample: bool = False) -> torch.Tensor:
    """Accuracy after deleting the first k patches of each row's ``order``, for each k in ``steps``
    (Samek et al. 2017; Hooker et al. 2019).

    A saliency that found what the model needs makes the curve fall sooner than a random order does.
    One k at a time, ``predict`` gets all N deleted images, so pass a model's other inputs by closing
    over them: ``predict = lambda x: model(x, captions)``, with ``captions`` (N, T) in the same rows.

    Shape:
        - images (N, C, H, W); order long (N, P) from :func:`saliency_order` or :func:`random_order`
          (on any device: a CPU order, as :func:`random_order` draws with a CPU generator, is moved to
          the images' device)
        - labels (N,); fill as in :func:`delete_patches`; steps: ints in [0, P], default 0, 1, ..., P
        - returns (S,) accuracies, S = len(steps) (P + 1 by default); with ``per_sample``, (S, N)
          whether each sample is still right (1.0) or not (0.0), whose mean over N is the curve
    """
    n = _check_images(images, grid)[0]
    p = grid * grid
    labels = _check_rows("labels", labels, n)
    if not isinstance(order, torch.Tensor):
        raise ValueError(f"order: expected a long tensor of shape ({n}, {p}), got {type(order).__name__}")
    order = order.to(images.device)
    patches = torch.arange(p, device=order.device)
    if order.shape != (n, p) or order.is_floating_point() or not (order.sort(dim=1).values == patches).all():
        raise ValueError(f"order: expected each of the {n} rows to be a permutation of the {p} patches, "
                         f"got {order.dtype} {tuple(order.shape)}")
    steps = list(range(p + 1)) if steps is None else list(steps)
    if not steps or any(not isinstance(k, int) or not 0 <= k <= p for k in steps):
        raise ValueError(f"steps: expected integers from 0 to P = {p}, got {steps}")
    rank = torch.empty_like(order).scatter_(1, order, patches.expand_as(order))  # patch -> its place in order
    correct = []
    with torch.no_grad():
        for k in steps:
            scores = scores_of(predict(delete_patches(images, rank < k, grid, fill)))
            correct.append((scores.argmax(1).cpu() == labels.cpu()).double())
    correct = torch.stack(correct)  # (S, N)
    return correct if per_sample else correct.mean(1)


def deletion_auc(curve: torch.Tensor, steps: Iterable[int] | None = None):
    """Normalised area under a deletion curve: trapezoids over the fraction of patches deleted, 0 to 1.

    Lower means the order found what the model needs sooner; a constant curve c has area c (Samek et
    al. 2017). Shape: ``curve`` (S,) -> a float; or (S, N), one curve per sample (``deletion_curve``
    with ``per_sample``) -> (N,) areas. ``steps``: the S values of k, increasing from 0 to P
    (default 0..S-1).
    """
    curve = torch.as_tensor(curve, dtype=torch.float64)
    if curve.ndim not in (1, 2) or len(curve) < 2 or curve.isnan().any():
        raise ValueError(f"curve: expected shape (S,) or (S, N) with S >= 2 and no NaN, got {tuple(curve.shape)}")
    x = torch.arange(len(curve), dtype=torch.float64) if steps is None else torch.as_tensor(steps, dtype=torch.float64)
    if x.shape != curve.shape[:1] or x[0] != 0 or not (x.diff() > 0).all():
        raise ValueError(f"steps: expected {len(curve)} increasing values from 0 to P, one per point of the "
                         f"curve, got {x.tolist()}")
    area = torch.trapezoid(curve, x / x[-1], dim=0)
    return area.item() if curve.ndim == 1 else area
