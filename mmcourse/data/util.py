"""Small helpers shared by the loaders: argument checks, splits, numpy -> DatasetDict, and columns as tensors."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

SPLITS = ("train", "validation", "test")


def check_nonnegative(name: str, value) -> None:
    """Raise ValueError unless ``value`` is a finite number >= 0."""
    if not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")


def check_fraction(name: str, fractions) -> None:
    """Raise ValueError unless ``fractions`` is three positive shares that sum to 1."""
    try:
        ok = len(fractions) == 3 and all(f > 0 for f in fractions) and abs(sum(fractions) - 1) < 1e-6
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(
            f"{name}: expected three positive shares (train, validation, test) summing to 1, got {fractions!r}"
        )


def split_dataset(n: int, fractions, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffle ``range(n)`` and cut it into three index tensors with the given shares."""
    perm = torch.randperm(n, generator=generator)
    n_train = round(fractions[0] * n)
    n_val = round(fractions[1] * n)
    return [perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val :]]


def _arrow(values):
    """Numpy array (N, *shape) or list of str -> (pyarrow array, datasets feature)."""
    import pyarrow as pa
    from datasets import List, Value

    if isinstance(values, list):
        return pa.array(values, type=pa.string()), Value("string")
    values = np.ascontiguousarray(values)
    feature = Value(str(values.dtype))
    array = pa.array(values.reshape(-1))
    for size in reversed(values.shape[1:]):
        array = pa.FixedSizeListArray.from_arrays(array, size)
        feature = List(feature, length=size)
    return array, feature


def table(parts: dict[str, dict], class_labels: dict[str, list[str]]):
    """Build a ``DatasetDict`` formatted for torch from ``{split: {column: array or list of str}}``.

    Columns named in ``class_labels`` become ``ClassLabel`` features with those names.
    """
    import pyarrow as pa
    from datasets import ClassLabel, Dataset, DatasetDict, Features

    out = {}
    for split, columns in parts.items():
        arrays, features = {}, {}
        for name, values in columns.items():
            arrays[name], features[name] = _arrow(values)
            if name in class_labels:
                features[name] = ClassLabel(names=class_labels[name])
        schema = Features(features).arrow_schema
        out[split] = Dataset(pa.table(arrays).cast(schema)).with_format("torch")
    return DatasetDict(out)


def dataset_dict(source, argument: str, loader: str, fractions, seed: int):
    """A learner's ``Dataset`` (split by ``fractions``) or ``DatasetDict`` (with the three splits)."""
    from datasets import Dataset, DatasetDict

    if isinstance(source, DatasetDict):
        missing = [s for s in SPLITS if s not in source]
        if missing:
            raise ValueError(f"{argument}: {loader} needs the splits {list(SPLITS)}, missing {missing}")
        return DatasetDict({s: source[s] for s in SPLITS})
    if isinstance(source, Dataset):
        check_fraction("fractions", fractions)
        if len(source) < 3:
            raise ValueError(f"{argument}: need at least 3 rows to make three splits, got {len(source)}")
        idx = split_dataset(len(source), fractions, torch.Generator().manual_seed(seed))
        return DatasetDict({s: source.select(i.tolist()) for s, i in zip(SPLITS, idx)})
    raise ValueError(
        f"{argument}: expected a datasets.Dataset or datasets.DatasetDict for {loader}, got {type(source).__name__}"
    )


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
