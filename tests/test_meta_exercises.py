"""Lesson 06's exercises: the worked solutions pass, and typical mistakes are caught and explained."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad

from mmcourse.exercises import check
from mmcourse.meta import EpisodeSampler, FewShot, ProtoNet, protonet_loss, protonet_step, prototypical_logits
from mmcourse.train import SGD


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


# --- the build: a ProtoNet and its training step -----------------------------------------------------------------


class _Solution(nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def prototypes(self, hs, labels, n_way):
        return torch.stack([hs[labels == n].mean(0) for n in range(n_way)])

    def forward(self, support, support_labels, query, n_way):
        hs, hq = self.encoder(support), self.encoder(query)
        protos = self.prototypes(hs, support_labels, n_way)
        return FewShot(-((hq[:, None, :] - protos[None, :, :]) ** 2).sum(-1), protos)


def _variant(forward):
    """A MyProtoNet whose forward is ``forward(self, hs, labels, hq, n_way)`` on the embeddings."""
    class Variant(_Solution):
        def forward(self, support, support_labels, query, n_way):
            return forward(self, self.encoder(support), support_labels, self.encoder(query), n_way)

    return Variant


def test_the_protonet_build_passes_and_common_mistakes_are_named(capsys):
    assert check("protonet", _Solution, must_pass=True)
    capsys.readouterr()

    # prototypes by reshaping, as if the support rows came class by class
    def reshaped(self, hs, y, hq, n):
        protos = hs.reshape(n, -1, hs.shape[-1]).mean(1)
        return FewShot(-torch.cdist(hq, protos) ** 2, protos)

    assert not check("protonet", _variant(reshaped))
    out = capsys.readouterr().out
    assert "case 2 of 4 (3-way 2-shot, support rows in shuffled order" in out and "passed before it: case 1" in out

    # distances, not squared distances
    def unsquared(self, hs, y, hq, n):
        protos = self.prototypes(hs, y, n)
        return FewShot(-torch.cdist(hq, protos), protos)

    assert not check("protonet", _variant(unsquared))
    assert "case 1 of 4 (2-way 1-shot in 1-D, the identity as encoder): item 0 of the result has wrong values" in \
        capsys.readouterr().out

    # summed instead of averaged: the same at one shot, wrong from two shots
    def summed(self, hs, y, hq, n):
        protos = torch.stack([hs[y == k].sum(0) for k in range(n)])
        return FewShot(-((hq[:, None] - protos[None]) ** 2).sum(-1), protos)

    assert not check("protonet", _variant(summed))
    assert "case 2 of 4" in capsys.readouterr().out

    # log-probabilities instead of the scores; the scores alone, not a FewShot
    def log_probabilities(self, hs, y, hq, n):
        protos = self.prototypes(hs, y, n)
        return FewShot(torch.log_softmax(-((hq[:, None] - protos[None]) ** 2).sum(-1), -1), protos)

    assert not check("protonet", _variant(log_probabilities))
    capsys.readouterr()
    def scores(self, hs, y, hq, n):
        return -torch.cdist(hq, self.prototypes(hs, y, n)) ** 2

    # the expanded form of section 3: the same probabilities, other scores; the message says why
    def expanded(self, hs, y, hq, n):
        protos = self.prototypes(hs, y, n)
        return FewShot(2 * hq @ protos.T - (protos ** 2).sum(-1), protos)

    assert not check("protonet", _variant(expanded))
    assert "the expanded form 2 f(x)·c_n - ||c_n||^2 drops -||f(x)||^2" in capsys.readouterr().out

    for plain in (scores, lambda self, hs, y, hq, n: (scores(self, hs, y, hq, n), self.prototypes(hs, y, n))):
        assert not check("protonet", _variant(plain))
        assert "case 1 of 4 (2-way 1-shot in 1-D, the identity as encoder) raised TypeError: forward should return " \
               "FewShot(scores, prototypes)" in capsys.readouterr().out


def test_the_protonet_build_must_not_call_the_package_and_must_keep_its_parameter_names(capsys):
    class Lazy(_Solution):  # the package's forward on the learner's module
        def forward(self, support, support_labels, query, n_way):
            return ProtoNet.forward(self, support, support_labels, query, n_way)

    class Inherits(ProtoNet):  # the package's class itself, renamed
        pass

    class Logits(_Solution):  # the package's distance function
        def forward(self, support, support_labels, query, n_way):
            hs, hq = self.encoder(support), self.encoder(query)
            protos = self.prototypes(hs, support_labels, n_way)
            return FewShot(prototypical_logits(hq, protos), protos)

    class Renamed(_Solution):  # the encoder kept under another name: the package's weights do not load
        def __init__(self, encoder):
            nn.Module.__init__(self)
            self.net = encoder

        def forward(self, support, support_labels, query, n_way):
            self.encoder = self.net
            return super().forward(support, support_labels, query, n_way)

    for cls, called in ((Lazy, "mmcourse.meta.ProtoNet.forward"), (Inherits, "mmcourse.meta.ProtoNet.__init__"),
                        (Logits, "mmcourse.meta.prototypical_logits")):
        assert not check("protonet", cls)
        assert f"your function calls `{called}`" in capsys.readouterr().out
    assert not check("protonet", Renamed)
    assert "raised RuntimeError" in capsys.readouterr().out

    class Stub(nn.Module):
        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder

        def forward(self, support, support_labels, query, n_way):
            raise NotImplementedError

    assert not check("protonet", Stub)
    assert "not done yet" in capsys.readouterr().out


def _step(model, episode, optimizer, loss_of=None, zero_grad=True, update=True):
    xs, ys, xq, yq = episode.support["x"], episode.support_labels, episode.query["x"], episode.query_labels
    scores = model(xs, ys, xq, len(episode.classes)).scores
    loss = F.cross_entropy(scores, yq) if loss_of is None else loss_of(model, xs, ys, xq, yq, scores)
    if zero_grad:
        optimizer.zero_grad()
    loss.backward()
    if update:
        optimizer.step()
    return loss.item()


def test_the_protonet_step_passes_and_common_mistakes_are_named(capsys):
    assert check("protonet_step", _step, must_pass=True)
    capsys.readouterr()
    summed = lambda m, e, o: _step(m, e, o, loss_of=lambda *a: F.cross_entropy(a[-1], a[-2], reduction="sum"))  # noqa: E731
    assert not check("protonet_step", summed)
    assert "case 1 of 3 (SGD (lr 0.5), one 3-way 2-shot episode" in capsys.readouterr().out
    assert not check("protonet_step", lambda m, e, o: _step(m, e, o, zero_grad=False))
    out = capsys.readouterr().out
    assert "case 2 of 3 (SGD, gradients left from an earlier episode" in out and "after the step" in out

    def on_the_support(model, xs, ys, xq, yq, scores):
        return F.cross_entropy(model(xs, ys, xs, int(ys.max()) + 1).scores, ys)

    assert not check("protonet_step", lambda m, e, o: _step(m, e, o, loss_of=on_the_support))
    assert "case 1 of 3" in capsys.readouterr().out
    assert not check("protonet_step", lambda m, e, o: _step(m, e, o, update=False))
    assert "after the step" in capsys.readouterr().out
    assert not check("protonet_step", lambda m, e, o: torch.tensor(_step(m, e, o)))  # a tensor, not loss.item()
    assert "should return the loss as a Python float (return loss.item()), got Tensor" in capsys.readouterr().out
    for package in (protonet_step, lambda m, e, o: protonet_loss(m, e).item()):
        assert not check("protonet_step", package)
        assert "your function calls `mmcourse.meta.protonet_" in capsys.readouterr().out


def test_protonet_loss_and_step_against_a_computation_by_hand():
    torch.manual_seed(0)
    pool, labels = {"x": torch.randn(40, 3)}, torch.arange(40) % 4
    sampler = EpisodeSampler(pool, labels, range(4), 3, 2, 3, seed=1)
    model = ProtoNet(nn.Linear(3, 2))
    one, batch = sampler.sample(0), sampler.sample_batch([0, 1])
    h = model.encoder(one.support["x"])
    protos = torch.stack([h[one.support_labels == n].mean(0) for n in range(3)])
    by_hand = F.cross_entropy(-torch.cdist(model.encoder(one.query["x"]), protos) ** 2, one.query_labels)
    assert torch.allclose(protonet_loss(model, one), by_hand, atol=1e-6)
    second = protonet_loss(model, sampler.sample(1))  # a batch of two episodes: the mean over all their queries
    assert torch.allclose(protonet_loss(model, batch), (by_hand + second) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="column: expected one of the episode's columns"):
        protonet_loss(model, one, "image")
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    grads = torch.autograd.grad(by_hand, list(model.parameters()))
    loss = protonet_step(model, one, SGD(model.parameters(), lr=0.1))
    assert loss == pytest.approx(by_hand.item(), abs=1e-6)
    for (name, p), g in zip(model.named_parameters(), grads):
        assert torch.allclose(p, before[name] - 0.1 * g, atol=1e-6)


# --- the experiment: the shot count at which fine-tuning pulls ahead ----------------------------------------------


def test_the_shots_experiment_passes_with_the_solution_and_fails_at_few_shots(capsys):
    from mmcourse.exercises import PREDICTIONS, predict

    predict("fine_tuning_shots", 0.05)
    assert check("fine_tuning_shots", lambda: 40, must_pass=True)
    out = capsys.readouterr().out
    assert "meets every outcome" in out and "at your k, fitted head minus class mean = " in out
    assert "4-way 1-shot accuracy, fitted head minus class mean = " in out and "raw class mean accuracy" in out
    for shots in (5, 1):  # the lesson's shot count, and one shot
        assert not check("fine_tuning_shots", lambda shots=shots: shots)
        out = capsys.readouterr().out
        assert "misses an outcome" in out and "(needed > 0" in out and "you predicted" in out
    PREDICTIONS.pop("fine_tuning_shots", None)


@pytest.mark.parametrize("shots", [0, 41, 2.5, True, "30"])
def test_a_shot_count_out_of_range_is_rejected_before_anything_trains(capsys, shots):
    assert not check("fine_tuning_shots", lambda: shots)
    assert "your attempt was rejected: k_shot: expected a whole number of shots per class from 1 to 40" in \
        capsys.readouterr().out


def test_the_unfinished_experiment_is_not_done_yet(capsys):
    def my_shots():
        raise NotImplementedError

    assert not check("fine_tuning_shots", my_shots)
    assert "not done yet" in capsys.readouterr().out
