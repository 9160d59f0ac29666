"""The course's running comparison: rows kept by their lessons and read back exactly, computed where missing."""

from __future__ import annotations

import json

import pytest
import torch

from mmcourse.experiments import comparison
from mmcourse.metrics import ComparisonEntry, Retrieval, comparison_entry


def _entry(method: str = "linear CCA", lesson: str = "02") -> ComparisonEntry:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(40) % 10
    images = torch.randn(40, 4, generator=g) + torch.nn.functional.one_hot(labels, 10)[:, :4] * 3
    sounds = images + 0.5 * torch.randn(40, 4, generator=g)
    return comparison_entry(method, lesson, "all", "model selection", sounds, images, labels, labels, "a note")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path))
    return tmp_path / "running-comparison"


def test_an_entry_has_its_retrieval_and_the_hit_of_every_query():
    entry = _entry()
    assert isinstance(entry.retrieval, Retrieval) and len(entry.hits) == 40
    assert sum(entry.hits) / 40 == pytest.approx(entry.retrieval.recall_at_1)
    with pytest.raises(ValueError, match="labels: expected one of"):
        comparison_entry("x", "02", "all", "yes", torch.zeros(3, 2), torch.zeros(3, 2), torch.arange(3),
                         torch.arange(3))


def test_kept_rows_come_back_exactly(cache):
    rows = [_entry(), _entry("Deep CCA")]
    comparison.keep("cca", 3, rows)
    assert comparison.kept("cca", 3) == rows
    assert comparison.kept("cca", 4) is None and comparison.kept("alignment", 3) is None


def test_rows_kept_by_other_code_are_not_used(cache):
    comparison.keep("cca", 0, [_entry()])
    path = cache / "cca-seed0.json"
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, "fingerprint": "another version"}))
    assert comparison.kept("cca", 0) is None
    path.write_text("not json")
    assert comparison.kept("cca", 0) is None


def test_an_unknown_topic_is_a_clear_error(cache):
    with pytest.raises(ValueError, match="topic: expected one of"):
        comparison.keep("fusion", 0, [])


def test_gather_reads_kept_rows_and_computes_the_missing_ones(cache, monkeypatch):
    from mmcourse.experiments import alignment, cca

    comparison.keep("cca", 0, [_entry()])
    monkeypatch.setattr(cca, "speech_to_image_retrieval", lambda seed: pytest.fail("lesson 02's rows were kept"))
    monkeypatch.setattr(alignment, "speech_to_image_retrieval", lambda seed: [_entry("Procrustes", "04")])
    result = comparison.gather(seed=0, lessons=("02", "04"))
    assert [e.method for e in result.entries] == ["linear CCA", "Procrustes"]
    assert result.origins == {"02": "kept by lesson 02", "04": "computed now (lesson 04 not run with this code)"}
    assert comparison.kept("alignment", 0) == [_entry("Procrustes", "04")]  # kept for the next time


def test_keep_warns_where_it_cannot_write(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("MMCOURSE_CACHE", str(blocker))  # a file where the folder should be
    with pytest.warns(UserWarning, match="could not keep"):
        comparison.keep("cca", 0, [_entry()])


def test_the_table_says_what_labels_did():
    text = comparison.table([_entry()])
    assert "model selection" in text and "linear CCA" in text and f"{_entry().retrieval.recall_at_1:.3f}" in text


def test_paired_gain_is_the_difference_of_the_hits_on_the_same_queries():
    better, worse = _entry(), _entry()._replace(hits=(False,) * 40)
    gain = comparison.paired_gain(better, worse)
    assert gain.estimate == pytest.approx(sum(better.hits) / 40)
    assert gain.low <= gain.estimate <= gain.high
    with pytest.raises(ValueError, match="the same queries"):
        comparison.paired_gain(better, worse._replace(hits=(True,) * 39))
