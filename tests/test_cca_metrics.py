"""Recall@K and its chance level, against hand-worked cases and exhaustive enumeration."""

import itertools
import math

import pytest
import torch

from mmcourse.metrics import chance_recall_at_k, recall_at_k


def test_recall_at_k_by_hand():
    scores = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.8, 0.3], [0.1, 0.2, 0.3]])
    relevant = torch.tensor([[False, False, True], [True, False, False], [False, False, True]])
    assert recall_at_k(scores, relevant, 1) == pytest.approx(1 / 3)  # only query 3's best item is relevant
    assert recall_at_k(scores, relevant, 2) == pytest.approx(2 / 3)
    assert recall_at_k(scores, relevant, 3) == 1.0
    assert recall_at_k(scores, torch.zeros(3, 3, dtype=torch.bool), 3) == 0.0


def test_chance_recall_matches_every_ranking():
    relevant = torch.tensor([[True, False, False, False, True], [False, False, True, False, False]])
    for k in (1, 2, 3, 5):
        rankings = list(itertools.permutations(range(5)))
        mean = sum(relevant[:, list(r[:k])].any(1).float().mean().item() for r in rankings) / len(rankings)
        assert chance_recall_at_k(relevant, k) == pytest.approx(mean)
    # one relevant item among G: chance is k / G
    assert chance_recall_at_k(torch.eye(10, dtype=torch.bool), 3) == pytest.approx(0.3)
    assert chance_recall_at_k(torch.eye(10, dtype=torch.bool), 1) == pytest.approx(1 / 10)
    assert math.isclose(chance_recall_at_k(torch.ones(2, 4, dtype=torch.bool), 1), 1.0)


@pytest.mark.parametrize(
    "scores, relevant, k, match",
    [
        (torch.rand(3), torch.ones(3, dtype=torch.bool), 1, "scores"),
        (torch.rand(3, 4), torch.ones(3, 5, dtype=torch.bool), 1, "relevant: expected a bool tensor of shape"),
        (torch.rand(3, 4), torch.ones(3, 4), 1, "relevant"),
        (torch.rand(3, 4), torch.ones(3, 4, dtype=torch.bool), 5, "k: expected an integer from 1 to the gallery"),
        (torch.rand(3, 4), torch.ones(3, 4, dtype=torch.bool), 0, "k"),
    ],
)
def test_bad_input(scores, relevant, k, match):
    with pytest.raises(ValueError, match=match):
        recall_at_k(scores, relevant, k)
