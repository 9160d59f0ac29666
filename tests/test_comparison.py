"""The course's running comparison: rows kept by their lessons and read back exactly, computed where missing, and
said which; rows of other code, arithmetic or test splits not reused; paired differences on the same queries."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import torch

from mmcourse.experiments import comparison
from mmcourse.metrics import ComparisonEntry, Retrieval, comparison_entry, split_id

ROOT = Path(__file__).parents[1]


def _entry(method: str = "linear CCA", lesson: str = "02", seed: int = 0) -> ComparisonEntry:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randperm(40, generator=g) % 10
    images = torch.randn(40, 4, generator=g) + torch.nn.functional.one_hot(labels, 10)[:, :4] * 3
    sounds = images + 0.5 * torch.randn(40, 4, generator=g)
    return comparison_entry(method, lesson, "all", "model selection", sounds, images, labels, labels, "a note")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path))
    monkeypatch.setattr(comparison, "_warned", False)
    return tmp_path / "running-comparison"


def test_an_entry_has_its_retrieval_the_hit_of_every_query_and_its_split():
    entry = _entry()
    assert isinstance(entry.retrieval, Retrieval) and len(entry.hits) == 40
    assert sum(entry.hits) / 40 == pytest.approx(entry.retrieval.recall_at_1)
    assert entry.split == split_id(torch.randperm(40, generator=torch.Generator().manual_seed(0)) % 10)
    assert _entry(seed=1).split != entry.split
    with pytest.raises(ValueError, match="labels: expected one of"):
        comparison_entry("x", "02", "all", "yes", torch.zeros(3, 2), torch.zeros(3, 2), torch.arange(3),
                         torch.arange(3))


def test_kept_rows_come_back_exactly_and_say_who_kept_them(cache):
    rows = [_entry(), _entry("Deep CCA")]
    comparison.keep("cca", 3, rows)
    assert comparison.kept("cca", 3) == (rows, comparison.BY_LESSON)
    assert comparison.kept("cca", 4) is None and comparison.kept("alignment", 3) is None


def test_the_fingerprint_follows_the_code_torch_the_device_and_the_threads(tmp_path, monkeypatch):
    package = tmp_path / "mmcourse"
    package.mkdir()
    (package / "a.py").write_text("x = 1\n")
    before = comparison.code_hash(package)
    (package / "a.py").write_text("x = 2\n")
    assert comparison.code_hash(package) != before
    start = comparison.fingerprint()
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)
        assert comparison.fingerprint() != start
    finally:
        torch.set_num_threads(threads)
    monkeypatch.setattr(torch, "__version__", "0.0.1")
    assert comparison.fingerprint() != start
    monkeypatch.setattr(comparison, "CODE", "other code")
    assert "other code" in comparison.fingerprint()


def test_rows_kept_by_other_code_or_in_another_format_are_not_used(cache):
    comparison.keep("cca", 0, [_entry()])
    path = cache / "cca-seed0.json"
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, "fingerprint": "another version"}))
    assert comparison.kept("cca", 0) is None
    for text in ("not json", "null", "[1, 2]", json.dumps({**saved, "rows": [{"method": "x"}]})):
        path.write_text(text)
        assert comparison.kept("cca", 0) is None, text


def test_an_unknown_topic_is_a_clear_error(cache):
    with pytest.raises(ValueError, match="topic: expected one of"):
        comparison.keep("fusion", 0, [])


def test_gather_says_which_rows_a_lesson_kept_and_which_it_computed(cache, monkeypatch):
    from mmcourse.experiments import alignment, cca

    comparison.keep("cca", 0, [_entry()])
    monkeypatch.setattr(cca, "speech_to_image_retrieval", lambda seed: pytest.fail("lesson 02's rows were kept"))
    monkeypatch.setattr(alignment, "speech_to_image_retrieval", lambda seed: [_entry("Procrustes", "04")])
    result = comparison.gather(seed=0, lessons=("02", "04"))
    assert [e.method for e in result.entries] == ["linear CCA", "Procrustes"]
    assert result.origins["02"] == "kept by lesson 02"
    assert result.origins["04"].startswith("computed now with lesson 04's settings")
    # Computed rows are kept for the next time, but never passed off as the lesson's own.
    monkeypatch.setattr(alignment, "speech_to_image_retrieval", lambda seed: pytest.fail("kept the first time"))
    again = comparison.gather(seed=0, lessons=("02", "04"))
    assert again.entries == result.entries
    assert again.origins["04"] == "computed by lesson 07 with lesson 04's settings, earlier"


def test_gather_computes_again_the_rows_kept_for_another_test_split(cache, monkeypatch):
    from mmcourse.experiments import cca

    comparison.keep("cca", 0, [_entry(seed=5)])  # a lesson 02 run on another split, kept as seed 0
    monkeypatch.setattr(cca, "speech_to_image_retrieval", lambda seed: [_entry()])
    result = comparison.gather(seed=0, lessons=("02",), split=_entry().split)
    assert result.entries == [_entry()] and result.origins["02"].startswith("computed now")


def test_keep_warns_once_where_it_cannot_write_and_leaves_nothing_behind(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("MMCOURSE_CACHE", str(blocker))  # a file where the folder should be
    monkeypatch.setattr(comparison, "_warned", False)
    with pytest.warns(UserWarning, match="Set MMCOURSE_CACHE to a folder you can write"):
        comparison.keep("cca", 0, [_entry()])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        comparison.keep("cca", 0, [_entry()])  # once is enough
    assert list(tmp_path.iterdir()) == [blocker]


def test_the_table_says_what_labels_did():
    text = comparison.table([_entry()])
    assert "model selection" in text and "linear CCA" in text and f"{_entry().retrieval.recall_at_1:.3f}" in text


def test_paired_gain_is_paired_and_resamples_whole_groups():
    g = torch.Generator().manual_seed(0)
    hard = (torch.rand(400, generator=g) < 0.5).double()  # queries both methods find, or both miss
    extra = torch.zeros(400, dtype=torch.float64)
    extra[::10] = 1.0  # 'better' finds 40 more: a gain of exactly 0.1 on every resample of query pairs
    worse, better = _entry()._replace(hits=tuple(hard.tolist())), _entry()._replace(
        hits=tuple(torch.maximum(hard, extra).tolist()))
    gain = comparison.paired_gain(better, worse)
    assert gain.estimate == pytest.approx((torch.maximum(hard, extra) - hard).mean().item())
    assert gain.high - gain.low < 0.07  # unpaired, the two means' own spread would give an interval about 0.14 wide
    # Ten groups: the gain comes from one group only, so resampling groups widens the interval a lot.
    groups = [i // 40 for i in range(400)]
    lumpy = torch.zeros(400, dtype=torch.float64)
    lumpy[:40] = 1.0
    grouped = comparison.paired_gain(worse._replace(hits=tuple(torch.maximum(hard, lumpy).tolist())), worse,
                                     groups=groups)
    single = comparison.paired_gain(worse._replace(hits=tuple(torch.maximum(hard, lumpy).tolist())), worse)
    assert grouped.high - grouped.low > 2 * (single.high - single.low)
    with pytest.raises(ValueError, match="the same test split"):
        comparison.paired_gain(better, worse._replace(hits=(1.0,) * 39))
    with pytest.raises(ValueError, match="the same test split"):
        comparison.paired_gain(better, worse._replace(split="another"))
    with pytest.raises(ValueError, match="groups: expected one group per query"):
        comparison.paired_gain(better, worse, groups=[0] * 3)


# Each lesson's cells must compute its rows as its experiments module's speech_to_image_retrieval does (which
# lesson 07 runs when nothing was kept), and keep them. Settings a learner may change in a cell would make the
# two differ, so the lessons call these functions with nothing but the seed, the data and a progress bar.
ROW_FUNCTIONS = {"02_cca": ("cca", {"av_digits_retrieval", "deep_cca_retrieval", "comparison_rows"}),
                 "04_alignment": ("alignment", {"train_unimodal_encoders", "cross_modal_alignment", "comparison_rows"}),
                 "05_autoencoders": ("autoencoders", {"av_data", "train_models", "comparison_rows"}),
                 "07_contrastive": ("contrastive", {"speech_to_image_retrieval"})}
ALLOWED_KEYWORDS = {"seed", "data", "progress", "encoders"}


@pytest.mark.parametrize("lesson", sorted(ROW_FUNCTIONS))
def test_each_lesson_keeps_its_rows_computed_with_the_settings_lesson_07_uses(lesson):
    topic, functions = ROW_FUNCTIONS[lesson]
    source = (ROOT / "lessons" / f"{lesson}.py").read_text()
    assert re.search(rf'comparison\.keep\("{topic}", seed=0, entries=\w+\)', source), "the lesson keeps its rows"
    seen = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in functions:
            if node.func.attr == "train_models" and "av_run" not in ast.unparse(node):
                continue  # lesson 05 trains Shapes models too; the comparison's MVAE is av_run's
            if any(k.arg == "train_seed" for k in node.keywords):
                continue  # lesson 04's second pair of encoders, a control outside the comparison
            seen.add(node.func.attr)
            extra = {k.arg for k in node.keywords} - ALLOWED_KEYWORDS
            assert not extra, f"{ast.unparse(node)} sets {extra}: lesson 07 would compute other rows"
            for k in node.keywords:
                if k.arg == "seed":
                    assert ast.unparse(k.value) == "0", ast.unparse(node)
    assert seen == functions, f"the lesson does not call {functions - seen}"
