"""The course's running comparison: speech-to-image retrieval on AV-Digits' test split, one task for every method
that maps images and sounds into one space (lessons 02, 04, 05 and 07).

Each spoken digit of the test split (voices never heard in training) is a query, the test images are the gallery,
and a retrieved image is a hit when it shows the spoken digit: Recall@1 and @5 against their exact chance levels
(:func:`mmcourse.metrics.comparison_entry`). A lesson computes its rows once, from the models it trained, prints
them with :func:`table` and keeps them with :func:`keep`. Lesson 07 shows the whole table with :func:`gather`, each
row the number its lesson printed: read back from where that lesson kept it or, for a lesson not run with this code
on this machine, computed now by that lesson's experiments module (its ``speech_to_image_retrieval``: the lesson's
own settings and seed, in a kernel with the same number of threads, so on a CPU the same computation and the same
numbers).

Rows are kept as JSON in ``$MMCOURSE_CACHE/running-comparison/`` (default ``~/.cache/mmcourse``) with a
fingerprint: the package's code as this process imported it, torch's version, the device and the number of torch
threads. Rows kept under another fingerprint, or for another test split, are computed again.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import NamedTuple

import torch

from ..data import load_av_digits
from ..device import get_device
from ..diagnostics import Interval
from ..metrics import ComparisonEntry, Retrieval

TOPICS = {"02": "cca", "04": "alignment", "05": "autoencoders", "07": "contrastive"}  # lesson -> experiments module
PACKAGE = Path(__file__).resolve().parents[1]
LESSON = {topic: lesson for lesson, topic in TOPICS.items()}
BY_LESSON = "the lesson"  # who kept a row: its lesson, or lesson 07 computing it with that lesson's settings


def code_hash(package: Path = PACKAGE) -> str:
    """A hash of every source file of the package under ``package``."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


CODE = code_hash()  # the code as this process imported it (not as the files are later: a kernel does not reload)


def fingerprint() -> str:
    """Which arithmetic computed a row: the package's code, torch's version, the device and the number of torch
    threads (a different thread count splits sums differently and changes some results)."""
    return f"{CODE} torch {torch.__version__} {get_device().type} threads {torch.get_num_threads()}"


def _path(topic: str, seed: int) -> Path:
    if topic not in LESSON:
        raise ValueError(f"topic: expected one of {sorted(LESSON)}, got {topic!r}")
    root = os.environ.get("MMCOURSE_CACHE") or Path.home() / ".cache" / "mmcourse"
    return Path(root) / "running-comparison" / f"{topic}-seed{seed}.json"


_warned = False


def keep(topic: str, seed: int, entries: list[ComparisonEntry], by: str = BY_LESSON) -> None:
    """Keep a lesson's rows (``topic``: its experiments module, e.g. ``"cca"``) for lesson 07's table. Where the
    folder cannot be written, warn once and go on: lesson 07 then computes the rows again."""
    global _warned
    rows = [{**e._asdict(), "retrieval": list(e.retrieval), "hits": list(e.hits)} for e in entries]
    text = json.dumps({"fingerprint": fingerprint(), "seed": seed, "by": by, "rows": rows})
    path, temporary = _path(topic, seed), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
            temporary = f.name
            f.write(text)
        os.replace(temporary, path)  # whole or not at all, even with two kernels at once
    except OSError as err:
        if temporary:
            Path(temporary).unlink(missing_ok=True)
        if not _warned:
            _warned = True
            warnings.warn(f"could not keep the running comparison's rows in {path.parent} ({err}); lesson 07 will "
                          "compute them again. Set MMCOURSE_CACHE to a folder you can write to keep them.",
                          stacklevel=2)


class Kept(NamedTuple):
    """What :func:`kept` returns: the rows, and who kept them."""

    entries: list[ComparisonEntry]
    by: str  # BY_LESSON, or a note on who computed them


def kept(topic: str, seed: int) -> Kept | None:
    """The rows kept for ``seed`` with this code and arithmetic on this machine, and who kept them; or None."""
    try:
        saved = json.loads(_path(topic, seed).read_text())
        if saved["fingerprint"] != fingerprint() or saved["seed"] != seed:
            return None
        entries = [ComparisonEntry(**{**row, "retrieval": Retrieval(*row["retrieval"]), "hits": tuple(row["hits"])})
                   for row in saved["rows"]]
        return Kept(entries, saved["by"])
    except (OSError, ValueError, TypeError, KeyError):  # missing, unreadable, or another format
        return None


class Comparison(NamedTuple):
    """The running comparison: its rows in lesson order, and for each lesson where they came from."""

    entries: list[ComparisonEntry]
    origins: dict[str, str]  # lesson -> "kept by lesson NN", or what computed them and why


def gather(seed: int = 0, lessons=tuple(TOPICS), split: str = "") -> Comparison:
    """Every lesson's rows, as its lesson printed them: kept (:func:`kept`) or, where missing, computed now with
    the lesson's own settings (``mmcourse.experiments.<topic>.speech_to_image_retrieval(seed)``) and kept, marked
    as computed. With ``split`` (a row's :func:`~mmcourse.metrics.split_id`), rows kept for another test split are
    computed again."""
    entries, origins = [], {}
    for lesson in lessons:
        topic = TOPICS[lesson]
        found = kept(topic, seed)
        if found is not None and split and any(e.split != split for e in found.entries):
            found = None  # kept for another test split (a lesson run with another seed)
        if found is None:
            rows = importlib.import_module(f"{__package__}.{topic}").speech_to_image_retrieval(seed)
            keep(topic, seed, rows, by=f"computed by lesson 07 with lesson {lesson}'s settings")
            origins[lesson] = f"computed now with lesson {lesson}'s settings (no rows kept by it with this code)"
        elif found.by == BY_LESSON:
            rows = found.entries
            origins[lesson] = f"kept by lesson {lesson}"
        else:
            rows = found.entries
            origins[lesson] = f"{found.by}, earlier"
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


def query_voices(seed: int = 0) -> list[str]:
    """The voice of each query of AV-Digits' test split (``load_av_digits(seed=seed)``, kept from an earlier call)."""
    return list(load_av_digits(seed=seed)["test"]["voice"])


def paired_gain(better: ComparisonEntry, worse: ComparisonEntry, groups=None, n_boot: int = 2000,
                level: float = 0.95, seed: int = 0) -> Interval:
    """Recall@1 of ``better`` minus ``worse`` on the same spoken queries, with a bootstrap interval.

    The queries are not independent: a voice's clips share its accent and timbre (and the test split holds
    each clip several times with fresh noise). With ``groups`` (the voice of each query, :func:`query_voices`),
    the bootstrap resamples whole voices, each with all its queries (a cluster bootstrap); without, single
    queries, which gives too narrow an interval when groups matter.
    """
    if not better.hits or len(better.hits) != len(worse.hits) or better.split != worse.split:
        raise ValueError(f"better, worse: expected per-query hits on the same test split, got {len(better.hits)} and "
                         f"{len(worse.hits)} queries of splits {better.split!r} and {worse.split!r}")
    difference = torch.tensor(better.hits, dtype=torch.float64) - torch.tensor(worse.hits, dtype=torch.float64)
    if groups is None:
        groups = list(range(len(difference)))
    if len(groups) != len(difference):
        raise ValueError(f"groups: expected one group per query ({len(difference)}), got {len(groups)}")
    names = sorted(set(groups))
    index = torch.tensor([names.index(g) for g in groups])
    total = torch.zeros(len(names), dtype=torch.float64).index_add_(0, index, difference)
    count = torch.zeros(len(names), dtype=torch.float64).index_add_(0, index, torch.ones_like(difference))
    draws = torch.randint(len(names), (n_boot, len(names)), generator=torch.Generator().manual_seed(seed))
    means = total[draws].sum(1) / count[draws].sum(1)  # each draw: the mean over the queries of the drawn groups
    low, high = torch.quantile(means, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64))
    return Interval(difference.mean().item(), low.item(), high.item())
