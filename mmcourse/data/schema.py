"""Checks that a learner's own `datasets.Dataset` has the columns a loader documents."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Column:
    """One documented column: its name, the shape of one row and the kind of number it holds."""

    name: str
    shape: tuple[int, ...]
    kind: str  # "float", "int" or "bool"
    required: bool = True

    def describe(self) -> str:
        return f"'{self.name}' ({self.kind}, shape {self.shape})"


_KINDS = {
    "float": lambda t: t.is_floating_point(),
    "int": lambda t: not t.is_floating_point() and t.dtype != torch.bool,
    "bool": lambda t: t.dtype in (torch.bool, torch.uint8),
}


def check_columns(dataset, columns: list[Column], argument: str, loader: str):
    """Return ``dataset`` formatted for torch after checking its columns; raise ValueError if wrong.

    ``dataset`` must be a `datasets.Dataset` with at least one row. Each required column must be
    present and its first row must be a tensor of the documented shape and kind.
    """
    import datasets

    if not isinstance(dataset, datasets.Dataset):
        raise ValueError(
            f"{argument}: expected a datasets.Dataset (or a DatasetDict of them) for {loader}, "
            f"got {type(dataset).__name__}"
        )
    names = set(dataset.column_names)
    missing = [c for c in columns if c.required and c.name not in names]
    if missing:
        raise ValueError(
            f"{argument}: {loader} needs the columns "
            + ", ".join(c.describe() for c in columns if c.required)
            + f"; missing {[c.name for c in missing]} (it has {sorted(names)})"
        )
    if len(dataset) == 0:
        raise ValueError(f"{argument}: the dataset is empty; {loader} needs at least one row")
    present = [c for c in columns if c.name in names]
    formatted = dataset.with_format("torch", columns=[c.name for c in present], output_all_columns=True)
    row = formatted[0]
    for c in present:
        value = row[c.name]
        if not isinstance(value, torch.Tensor):
            raise ValueError(
                f"{argument}: column {c.describe()} must hold numbers, got {type(value).__name__}"
                f" (feature {dataset.features[c.name]})"
            )
        if tuple(value.shape) != c.shape or not _KINDS[c.kind](value):
            raise ValueError(
                f"{argument}: column {c.describe()} expected, got {value.dtype} of shape "
                f"{tuple(value.shape)} in the first row"
            )
    return formatted
