"""Lesson 06's exercises: the worked solutions pass, and typical mistakes are caught and explained."""

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad

from mmcourse.exercises import check


def _logits(support, labels, query, n_way):
    protos = torch.stack([support[labels == n].mean(0) for n in range(n_way)])
    return -((query[:, None] - protos[None]) ** 2).sum(-1)


def _log_probabilities(support, labels, query, n_way):
    return torch.log_softmax(_logits(support, labels, query, n_way), -1)


def test_prototype_exercise(capsys):
    assert check("prototype_log_probabilities", _log_probabilities)
    # the expanded form 2 c^T f(x) - ||c||^2 drops -||f(x)||^2, a constant per query: the same probabilities
    def expanded(s, y, q, n):
        protos = torch.stack([s[y == k].mean(0) for k in range(n)])
        return torch.log_softmax(2 * q @ protos.T - (protos**2).sum(-1), -1)

    assert check("prototype_log_probabilities", expanded)
    capsys.readouterr()
    # the reshape that assumes the support rows come class by class
    def reshaped(s, y, q, n):
        return torch.log_softmax(-torch.cdist(q, s.reshape(n, -1, s.shape[1]).mean(1)) ** 2, -1)

    assert not check("prototype_log_probabilities", reshaped)
    assert "case 3 of 4 (5-way 5-shot, support rows in shuffled order)" in capsys.readouterr().out
    # distances instead of squared distances; plus instead of minus; logits without the log-softmax
    assert not check("prototype_log_probabilities",
                     lambda s, y, q, n: torch.log_softmax(-(-_logits(s, y, q, n)).sqrt(), -1))
    assert "case 1 of 4 (2-way 1-shot in 1-D)" in capsys.readouterr().out
    assert not check("prototype_log_probabilities", lambda s, y, q, n: torch.log_softmax(-_logits(s, y, q, n), -1))
    assert not check("prototype_log_probabilities", _logits)


def _adapted(model, params, x, y, query, lr, sign=-1.0):
    g = grad(lambda p: F.cross_entropy(functional_call(model, p, (x,)), y))(params)
    return functional_call(model, {k: params[k] + sign * lr * g[k] for k in params}, (query,))


def test_maml_step_exercise(capsys):
    assert check("maml_inner_step", _adapted)
    assert not check("maml_inner_step", lambda *a: _adapted(*a, sign=1.0))  # a step uphill
    assert "case 1 of 3 (a linear model, 2-way 1-shot)" in capsys.readouterr().out
    # no step at all: the scores of the initial parameters
    assert not check("maml_inner_step", lambda model, params, x, y, query, lr: functional_call(model, params, (query,)))


def _meta_gradient(model, params, x, y, qx, qy, lr, create_graph=True):
    support_loss = F.cross_entropy(functional_call(model, params, (x,)), y)
    g = torch.autograd.grad(support_loss, list(params.values()), create_graph=create_graph)
    adapted = {k: p - lr * g_k for (k, p), g_k in zip(params.items(), g)}
    query_loss = F.cross_entropy(functional_call(model, adapted, (qx,)), qy)
    return dict(zip(params, torch.autograd.grad(query_loss, list(params.values()))))


def test_the_first_order_meta_gradient_is_caught_and_explained(capsys):
    assert not check("meta_gradient", lambda *a: _meta_gradient(*a, create_graph=False))
    out = capsys.readouterr().out
    assert "case 2 of 3 (a linear model, 2-way 2-shot, inner_lr = 1)" in out and "The bug" not in out
    assert check("meta_gradient", _meta_gradient, must_pass=True)
    out = capsys.readouterr().out
    assert "all 3 cases match" in out and "The bug: torch.autograd.grad without create_graph=True" in out
    # the query gradient at the initial parameters (no inner step at all) is caught too
    def no_step(model, params, x, y, qx, qy, lr):
        loss = F.cross_entropy(functional_call(model, params, (qx,)), qy)
        return dict(zip(params, torch.autograd.grad(loss, list(params.values()))))

    assert not check("meta_gradient", no_step)
