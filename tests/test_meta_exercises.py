"""Lesson 06's exercises: the worked solutions pass, and typical mistakes are caught and explained."""

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad

from mmcourse.exercises import check


def _logits(support, labels, query, n_way):
    protos = torch.stack([support[labels == n].mean(0) for n in range(n_way)])
    return -((query[:, None] - protos[None]) ** 2).sum(-1)


def test_prototype_exercise(capsys):
    assert check("prototypical_logits", _logits)
    # the reshape that assumes the support rows come class by class
    def reshaped(s, y, q, n):
        return -torch.cdist(q, s.reshape(n, -1, s.shape[1]).mean(1)) ** 2

    assert not check("prototypical_logits", reshaped)
    assert "case 3 of 4 (5-way 5-shot, support rows in shuffled order)" in capsys.readouterr().out
    # distances instead of squared distances
    assert not check("prototypical_logits", lambda s, y, q, n: -(-_logits(s, y, q, n)).sqrt())
    assert "case 1 of 4 (2-way 1-shot in 1-D)" in capsys.readouterr().out


def _adapted(model, params, x, y, query, lr, sign=-1.0):
    g = grad(lambda p: F.cross_entropy(functional_call(model, p, (x,)), y))(params)
    return functional_call(model, {k: params[k] + sign * lr * g[k] for k in params}, (query,))


def test_maml_step_exercise(capsys):
    assert check("maml_inner_step", _adapted)
    assert not check("maml_inner_step", lambda *a: _adapted(*a, sign=1.0))  # a step uphill
    assert "case 1 of 3 (a linear model, 2-way 1-shot)" in capsys.readouterr().out
    # no step at all: the scores of the initial parameters
    assert not check("maml_inner_step", lambda model, params, x, y, query, lr: functional_call(model, params, (query,)))


def test_the_softmax_over_episodes_is_caught_and_explained(capsys):
    def buggy(logits, scores):
        return torch.einsum("tm,tmqn->tqn", torch.softmax(scores, dim=0), logits)

    def fixed(logits, scores):
        return torch.einsum("tm,tmqn->tqn", torch.softmax(scores, dim=1), logits)

    assert not check("episode_fusion", buggy)
    out = capsys.readouterr().out
    assert "case 1 of 4 (one episode, two modalities)" in out and "The bug" not in out
    assert check("episode_fusion", fixed)
    out = capsys.readouterr().out
    assert "all 4 cases match" in out and "The bug: torch.softmax(scores, dim=0)" in out
    # summing the logits without weights (equal weights of 1) is caught too
    assert not check("episode_fusion", lambda logits, scores: logits.sum(1))
