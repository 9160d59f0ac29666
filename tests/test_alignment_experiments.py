"""Lesson 04's claims hold on a seed other than the lesson's (``claims_hold``); the helpers behind them."""

import pytest
import scipy.stats
import torch
from claims_hold import claim_tests

from mmcourse.alignment import random_rotation
from mmcourse.experiments import alignment as experiments
from mmcourse.metrics import ComparisonEntry

measured, test_every_claim_is_measured, test_claim_holds = claim_tests(experiments, seeds=(1,))


def test_rank_correlation_equals_scipy():
    a, b = [0.3, 0.9, 0.1, 0.5, 0.7], [1.0, 3.0, 2.0, 5.0, 4.0]
    assert experiments.rank_correlation(a, b) == pytest.approx(scipy.stats.spearmanr(a, b).statistic)


def test_synthetic_spaces_share_everything_but_the_warp():
    plain, bent = experiments.synthetic_spaces(3, n=300), experiments.synthetic_spaces(3, warp_strength=1.0, n=300)
    assert torch.equal(plain.source, bent.source) and torch.equal(plain.rotation, bent.rotation)
    assert not torch.allclose(plain.target, bent.target)
    assert torch.allclose(plain.target.norm(dim=1), torch.ones(300), atol=1e-5)


def test_ten_pairs_take_one_row_per_digit():
    labels = torch.arange(100) % 10
    pick = experiments.ten_pairs(labels, seed=4)
    assert sorted(labels[pick].tolist()) == list(range(10))


def test_centroid_geometry_ignores_rotations():
    g = torch.Generator().manual_seed(5)
    embeddings, labels = torch.randn(200, 12, generator=g), torch.arange(200) % 10
    turned = embeddings @ random_rotation(12, generator=g)
    assert torch.allclose(experiments.centroid_geometry(embeddings, labels),
                          experiments.centroid_geometry(turned, labels), atol=1e-5)


def test_bag_of_words_counts_words_without_padding():
    counts = experiments.bag_of_words(torch.tensor([[3, 4, 3, 0, 0], [5, 0, 0, 0, 0]]), vocabulary_size=6)
    assert counts.tolist() == [[0, 0, 0, 2, 1, 0], [0, 0, 0, 0, 0, 1]]


def test_speech_to_image_retrieval_gives_lesson_07_three_rows():
    entries = experiments.speech_to_image_retrieval(seed=2, fast=True)
    assert [e.pairs for e in entries] == ["all", "10", "none"]
    assert all(isinstance(e, ComparisonEntry) and e.lesson == "04" and e.labels for e in entries)
    all_pairs, _, none = (e.retrieval for e in entries)
    assert all_pairs.recall_at_1 > 2 * all_pairs.chance_at_1 and none.recall_at_1 < 2 * none.chance_at_1
