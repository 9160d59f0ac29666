"""Lesson 07's exercises: the worked solutions pass, and typical mistakes are caught and explained."""

import torch
import torch.nn.functional as F

from mmcourse.exercises import check


def _clip(image, text, s, normalise=True, both=True):
    if normalise:
        image, text = F.normalize(image, dim=1), F.normalize(text, dim=1)
    logits = s.exp() * image @ text.T
    targets = torch.arange(len(logits))
    row = F.cross_entropy(logits, targets)
    return (row + F.cross_entropy(logits.T, targets)) / 2 if both else row


def _ndcg(scores, relevance, k, gain=lambda r: r):
    discount = 1 / torch.log2(torch.arange(2, k + 2).float())
    dcg = (gain(relevance[scores.argsort(descending=True)[:k]]) * discount).sum()
    ideal = (gain(relevance.sort(descending=True).values[:k]) * discount).sum()
    return (dcg / ideal).item() if ideal > 0 else 0.0


def test_clip_loss_exercise(capsys):
    assert check("clip_loss", _clip)
    assert not check("clip_loss", lambda i, t, s: _clip(i, t, s, normalise=False))
    assert "case 2 of 4" in capsys.readouterr().out  # case 1 has unit vectors: normalising changes nothing there
    assert not check("clip_loss", lambda i, t, s: _clip(i, t, s, both=False))  # one direction only
    assert "case 2 of 4" in capsys.readouterr().out


def test_ndcg_exercise(capsys):
    assert check("ndcg_one_query", _ndcg)
    assert not check("ndcg_one_query", lambda s, r, k: _ndcg(s, r, k, gain=lambda x: 2**x - 1))  # another gain
    assert "case 1 of 5" in capsys.readouterr().out
    assert not check("ndcg_one_query", lambda s, r, k: _ndcg(-s, r, k))  # ranked lowest first
    # forgetting the convention for a query with nothing relevant: 0 / 0
    assert not check("ndcg_one_query", lambda s, r, k: (lambda d, i: (d / i).item())(
        *(torch.tensor(1.0) * 0, torch.tensor(0.0))) if r.sum() == 0 else _ndcg(s, r, k))
    assert "case 5 of 5" in capsys.readouterr().out


def test_reordered_captions_exercise(capsys):
    def fixed(image, text, order, s):
        return _clip(image, text[order.argsort()], s)

    def buggy(image, text, order, s):
        return _clip(image, text, s)

    assert check("reordered_captions_loss", fixed)
    assert "The bug:" in capsys.readouterr().out  # the explanation follows a pass
    assert not check("reordered_captions_loss", buggy)
    out = capsys.readouterr().out
    assert "case 2 of 4 (two captions swapped)" in out and "The bug:" not in out
    assert not check("reordered_captions_loss", lambda i, t, o, s: _clip(i, t[o], s))  # the inverse permutation
