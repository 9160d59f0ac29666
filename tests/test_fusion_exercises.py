"""Lesson 01's exercise checks: the solutions pass, and typical mistakes (and the planted bug) are caught
with a message that says which case and what is wrong; the build's checks reject the package's own class and
training step."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmcourse import exercises
from mmcourse.exercises.fusion import buggy_modality_attention
from mmcourse.experiments import fusion as experiments
from mmcourse.fusion import Fused, LowRankFusion


def _fixed_attention(u, v):
    alpha = torch.softmax(u @ v, dim=-1)
    return (alpha.unsqueeze(-1) * u).sum(1), alpha


class _Given(nn.Module):
    """The build's scaffold: the lesson's ``__init__`` (the package's names and shapes), no forward yet."""

    def __init__(self, dims, out_dim, rank=4):
        super().__init__()
        self.dims = list(dims)
        self.factors = nn.ParameterList(
            nn.Parameter(torch.randn(rank, d + 1, out_dim) / math.sqrt(d + 1)) for d in dims)
        self.rank_weights = nn.Parameter(torch.full((rank,), 1.0 / rank))
        self.bias = nn.Parameter(torch.zeros(out_dim))

    def forward(self, hs):
        raise NotImplementedError


def _projections(hs, factors):
    """Each modality with its leading 1, projected by all r factors: [(B, r, d_out)]."""
    return [torch.einsum("bd,rdo->bro", torch.cat([torch.ones(len(h), 1), h], dim=1), w)
            for h, w in zip(hs, factors)]


class _Right(_Given):
    """Written independently of the lesson's solution: the product over the modalities with torch.stack."""

    def forward(self, hs):
        product = torch.stack(_projections(hs, self.factors)).prod(0)
        return Fused((product * self.rank_weights[:, None]).sum(1) + self.bias, None)


def _right_step(model, batch, optimizer):
    scores = model(batch["image"], batch["audio"]).scores
    loss = -torch.log_softmax(scores, dim=1).gather(1, batch["label"][:, None]).mean()  # the cross-entropy by hand
    model.zero_grad()
    loss.backward()
    optimizer.step()
    return loss  # a one-number tensor is as good as a float


def test_solutions_pass(capsys):
    assert exercises.check("modality_attention_bug", _fixed_attention)
    assert exercises.check("low_rank_fusion", _Right)
    assert exercises.check("fusion_step", _right_step)
    assert capsys.readouterr().out.count("\N{CHECK MARK}") == 3


def test_the_package_state_dict_loads_into_the_scaffold():
    package = LowRankFusion([3, 5], 4, rank=2)
    mine = _Right([3, 5], 4, rank=2)
    mine.load_state_dict(package.state_dict())  # strict: the same names and shapes
    hs = [torch.randn(6, 3), torch.randn(6, 5)]
    assert torch.allclose(mine(hs).z, package(hs).z, atol=1e-5)


def test_the_stubs_are_not_done_yet(capsys):
    def step(model, batch, optimizer):
        raise NotImplementedError

    assert not exercises.check("low_rank_fusion", _Given)
    assert "low_rank_fusion: not done yet" in capsys.readouterr().out
    assert not exercises.check("fusion_step", step)
    assert "fusion_step: not done yet" in capsys.readouterr().out


def test_the_package_class_and_step_are_rejected(capsys):
    class Thin(_Given):  # the package's forward on the scaffold's parameters
        def forward(self, hs):
            return LowRankFusion.forward(self, hs)

    class Subclass(LowRankFusion):
        pass

    for cls in (LowRankFusion, Subclass, Thin):
        assert not exercises.check("low_rank_fusion", cls)
        assert "your function calls `mmcourse.fusion.LowRankFusion." in capsys.readouterr().out
    assert not exercises.check("fusion_step", experiments.train_step)
    assert "your function calls `mmcourse.experiments.fusion.train_step`" in capsys.readouterr().out
    with pytest.raises(exercises.ExerciseError, match="your function calls"):
        exercises.check("low_rank_fusion", Thin, must_pass=True)


class _WithoutOnes(_Given):
    def forward(self, hs):  # drops row 0 of each factor, the one the constant 1 picks
        parts = [torch.einsum("bd,rdo->bro", h, w[:, 1:]) for h, w in zip(hs, self.factors)]
        return Fused(torch.einsum("r,bro->bo", self.rank_weights, torch.stack(parts).prod(0)) + self.bias, None)


class _Summed(_Given):
    def forward(self, hs):  # adds the projections: linear in the embeddings, like early fusion
        total = sum(_projections(hs, self.factors))
        return Fused(torch.einsum("r,bro->bo", self.rank_weights, total) + self.bias, None)


class _TwoOnly(_Given):
    def forward(self, hs):  # written for two modalities
        a, b = _projections(hs[:2], self.factors[:2])
        return Fused(torch.einsum("r,bro->bo", self.rank_weights, a * b) + self.bias, None)


class _NoRankWeights(_Given):
    def forward(self, hs):
        return Fused(torch.stack(_projections(hs, self.factors)).prod(0).sum(1) + self.bias, None)


class _JustZ(_Right):
    def forward(self, hs):
        return super().forward(hs).z


class _DetachedBias(_Given):
    def forward(self, hs):  # the bias through .data: never trained
        product = torch.stack(_projections(hs, self.factors)).prod(0)
        return Fused(torch.einsum("r,bro->bo", self.rank_weights, product) + self.bias.data, None)


@pytest.mark.parametrize(("cls", "message"), [
    (_WithoutOnes, "case 1 of 4 (two modalities of sizes 3 and 2, 4 samples, rank 3): the result['z'] has wrong "
                   "values"),
    (_Summed, "case 1 of 4 (two modalities of sizes 3 and 2, 4 samples, rank 3): the result['z'] has wrong values"),
    (_TwoOnly, "case 4 of 4 (three modalities: the product runs over every modality) raised ValueError: the "
               "parameter factors.2 gets no gradient from z"),
    (_NoRankWeights, "case 1 of 4 (two modalities of sizes 3 and 2, 4 samples, rank 3) raised ValueError: the "
                     "parameter rank_weights gets no gradient from z"),
    (_JustZ, "raised TypeError: forward should return Fused(z, None)"),
    (_DetachedBias, "raised ValueError: the parameter bias gets no gradient from z, so it would never be trained"),
], ids=lambda v: v.__name__ if isinstance(v, type) else "")
def test_low_rank_mistakes_are_explained(cls, message, capsys):
    assert not exercises.check("low_rank_fusion", cls)
    assert message in capsys.readouterr().out


def _loss(model, batch, reduction="mean"):
    return F.cross_entropy(model(batch["image"], batch["audio"]).scores, batch["label"], reduction=reduction)


def _keeps_old_gradients(model, batch, optimizer):
    loss = _loss(model, batch)
    loss.backward()
    optimizer.step()
    return loss.item()


def _summed_loss(model, batch, optimizer):
    loss = _loss(model, batch, "sum")
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _clears_after_backward(model, batch, optimizer):
    loss = _loss(model, batch)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()


def _returns_nothing(model, batch, optimizer):
    _right_step(model, batch, optimizer)


@pytest.mark.parametrize(("step", "message"), [
    (_keeps_old_gradients, "case 2 of 3 (SGD, 8 samples, gradients left from an earlier batch): the result["),
    (_summed_loss, "case 1 of 3 (SGD, 8 samples): the result['loss'] is"),
    (_clears_after_backward, "case 1 of 3 (SGD, 8 samples): the result['encoders.0.net.0.weight after the step'] has "
                             "wrong values"),
    (_returns_nothing, "the result['loss'] should be a number, got NoneType"),
], ids=lambda v: v.__name__ if callable(v) else "")
def test_training_step_mistakes_are_explained(step, message, capsys):
    assert not exercises.check("fusion_step", step)
    assert message in capsys.readouterr().out


def test_the_step_check_leaves_the_learners_random_numbers_alone():
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    exercises.EXERCISES["fusion_step"].cases()
    assert torch.equal(torch.rand(3), expected)


def test_the_softmax_over_the_batch_is_caught_and_explained(capsys):
    assert not exercises.check("modality_attention_bug", buggy_modality_attention)
    out = capsys.readouterr().out
    assert "case 1 of 3 (one sample" in out and "its weights must sum to 1 over the modalities" in out
    assert "softmax" not in out, "the failing check states the symptom; the cause is the solution's explanation"
    assert exercises.check("modality_attention_bug", _fixed_attention, must_pass=True)
    assert "a softmax over the batch of one gives every weight 1" in capsys.readouterr().out
    # each case catches the bug on its own, even where the shapes give nothing away (B = M)
    for case in exercises.EXERCISES["modality_attention_bug"].cases():
        z, alpha = buggy_modality_attention(*case.args)
        assert not torch.allclose(alpha.sum(1), torch.ones(len(alpha))), case.description
    # the fixed version: rows sum to 1 and a sample's weights do not depend on the rest of the batch
    u, v = torch.randn(5, 3, 4), torch.randn(4)
    _, alpha = _fixed_attention(u, v)
    assert torch.allclose(alpha.sum(1), torch.ones(5)) and torch.allclose(_fixed_attention(u[:1], v)[1], alpha[:1])
