"""The course's running comparison: speech-to-image retrieval on AV-Digits' test split, one task for every method
that maps images and sounds into one space (lessons 02, 04, 05 and 07).

Each spoken digit of the test split (voices never heard in training) is a query, the test images are the gallery,
and a retrieved image is a hit when it shows the spoken digit: Recall@1 and @5 against their exact chance levels
(:func:`mmcourse.metrics.comparison_entry`). A lesson computes its rows once, from the models it trained, prints
them with :func:`table` and keeps them with :func:`keep`. Lesson 07 shows the whole table with :func:`gather`,
each row the number its lesson printed: read back from where that lesson kept it or, for a lesson not run with
this code on this machine, computed now by that lesson's experiments module (its ``speech_to_image_retrieval``:
the lesson's own settings and seed, so on a CPU the same computation and the same numbers).

Rows are kept as JSON in ``$MMCOURSE_CACHE/running-comparison/`` (default ``~/.cache/mmcourse``) with a
fingerprint of the package's code, torch's version and the device; a row kept by other code is computed again.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import tempfile
import warnings
from functools import cache
from pathlib import Path
from typing import NamedTuple

import torch

from ..device import get_device
from ..diagnostics import Interval, paired_difference
from ..metrics import ComparisonEntry, Retrieval

TOPICS = {"02": "cca", "04": "alignment", "05": "autoencoders", "07": "contrastive"}  # lesson -> experiments module
PACKAGE = Path(__file__).resolve().parents[1]


def cache_folder() -> Path:
    """Where lessons keep their rows: ``$MMCOURSE_CACHE/running-comparison`` (default ``~/.cache/mmcourse``)."""
    root = os.environ.get("MMCOURSE_CACHE") or Path.home() / ".cache" / "mmcourse"
    return Path(root) / "running-comparison"


@cache
def fingerprint() -> str:
    """A hash of every source file of the package, torch's version and the device type: rows kept under another
    fingerprint came from other code or another machine's arithmetic."""
    digest = hashlib.sha256(f"{torch.__version__} {get_device().type}".encode())
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _path(topic: str, seed: int) -> Path:
    if topic not in TOPICS.values():
        raise ValueError(f"topic: expected one of {sorted(TOPICS.values())}, got {topic!r}")
    return cache_folder() / f"{topic}-seed{seed}.json"


def keep(topic: str, seed: int, entries: list[ComparisonEntry]) -> None:
    """Keep a lesson's rows (``topic``: its experiments module, e.g. ``"cca"``) for lesson 07's table. Where the
    folder cannot be written, warn and go on: lesson 07 then computes the rows again."""
    rows = [{**e._asdict(), "retrieval": list(e.retrieval), "hits": list(e.hits)} for e in entries]
    text = json.dumps({"fingerprint": fingerprint(), "seed": seed, "rows": rows})
    try:
        path = _path(topic, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
            f.write(text)
        os.replace(f.name, path)  # whole or not at all, even with two kernels at once
    except OSError as err:
        warnings.warn(f"could not keep the running comparison's rows in {cache_folder()}: {err}", stacklevel=2)


def kept(topic: str, seed: int) -> list[ComparisonEntry] | None:
    """The rows a lesson kept for ``seed`` with this code on this machine, or None."""
    try:
        saved = json.loads(_path(topic, seed).read_text())
    except (OSError, ValueError):
        return None
    if saved.get("fingerprint") != fingerprint() or saved.get("seed") != seed:
        return None
    return [ComparisonEntry(**{**row, "retrieval": Retrieval(*row["retrieval"]), "hits": tuple(row["hits"])})
            for row in saved["rows"]]


class Comparison(NamedTuple):
    """The running comparison: its rows in lesson order, and for each lesson where they came from."""

    entries: list[ComparisonEntry]
    origins: dict[str, str]  # lesson -> "kept by lesson NN" or "computed now (lesson NN not run with this code)"


def gather(seed: int = 0, lessons=tuple(TOPICS)) -> Comparison:
    """Every lesson's rows, as its lesson printed them: kept (:func:`kept`) or, where missing, computed now with
    the lesson's own settings (``mmcourse.experiments.<topic>.speech_to_image_retrieval(seed)``) and kept."""
    entries, origins = [], {}
    for lesson in lessons:
        topic = TOPICS[lesson]
        rows = kept(topic, seed)
        if rows is None:
            rows = importlib.import_module(f"{__package__}.{topic}").speech_to_image_retrieval(seed)
            keep(topic, seed, rows)
            origins[lesson] = f"computed now (lesson {lesson} not run with this code)"
        else:
            origins[lesson] = f"kept by lesson {lesson}"
        entries += rows
    return Comparison(entries, origins)


def table(entries: list[ComparisonEntry]) -> str:
    """The running comparison as aligned text: what each method used, and its retrieval against chance."""
    rows = [f"{'method':<37}{'lesson':>7}{'pairs':>7}{'labels':>17}{'R@1':>7}{'chance':>8}{'R@5':>7}{'chance':>8}"
            "  note"]
    for e in entries:
        r = e.retrieval
        rows.append(f"{e.method:<37}{e.lesson:>7}{e.pairs:>7}{e.labels:>17}{r.recall_at_1:>7.3f}{r.chance_at_1:>8.3f}"
                    f"{r.recall_at_5:>7.3f}{r.chance_at_5:>8.3f}  {e.note}")
    return "\n".join(rows)


def paired_gain(better: ComparisonEntry, worse: ComparisonEntry, seed: int = 0) -> Interval:
    """Recall@1 of ``better`` minus ``worse`` on the same spoken queries, with a bootstrap interval that resamples
    the queries jointly (:func:`mmcourse.diagnostics.paired_difference`)."""
    if not better.hits or len(better.hits) != len(worse.hits):
        raise ValueError(f"better, worse: expected per-query hits on the same queries, got {len(better.hits)} and "
                         f"{len(worse.hits)}")
    return paired_difference(torch.tensor(better.hits, dtype=torch.float64),
                             torch.tensor(worse.hits, dtype=torch.float64), seed=seed)
