"""Lesson 03's exercise checks: the references pass, and typical mistakes are caught with a message that
says which case failed and why; the "find the bug" check catches the mask applied after the softmax; the build
(``cross_attention``, ``vqa_step``) takes a written-out layer and step and rejects the package's own."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.attention import MultiHeadAttention, scaled_dot_product_attention, split_heads
from mmcourse.exercises import EXERCISES, ExerciseError, check
from mmcourse.exercises.attention import MASK_AFTER_SOFTMAX


def _scores(q, k):
    return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])


def buggy_masked_attention(q, k, v, mask):
    """The lesson's bug: the mask zeroes weights after the softmax."""
    weights = torch.softmax(_scores(q, k), dim=-1).masked_fill(~mask, 0.0)
    return weights @ v, weights


def minus_inf_attention(q, k, v, mask):
    """The usual half fix: mask before the softmax with -inf (NaN for a query with no allowed key)."""
    weights = torch.softmax(_scores(q, k).masked_fill(~mask, float("-inf")), dim=-1)
    return weights @ v, weights


def _masked(q, k, v, mask):
    weights = torch.softmax(_scores(q, k).masked_fill(~mask, torch.finfo(q.dtype).min), dim=-1) * mask
    return weights @ v, weights


def _grounding(weights, masks, token_to_object):
    from mmcourse.metrics import patch_masks

    rows, cols = (token_to_object >= 0).nonzero(as_tuple=True)
    inside = patch_masks(masks, math.isqrt(weights.shape[-1]))[rows, token_to_object[rows, cols]]
    hits = inside[torch.arange(len(rows)), weights[rows, cols].argmax(-1)]
    return hits.float().mean().item(), inside.float().mean().item()


SOLUTIONS = {  # written out, as a learner would (the package's own functions are rejected: tests/test_exercises.py)
    "masked_attention": _masked,
    "grounding_accuracy": _grounding,
}


@pytest.mark.parametrize("name", sorted(SOLUTIONS))
def test_a_written_out_solution_passes_each_check(name, capsys):
    assert check(name, SOLUTIONS[name], must_pass=True)
    assert f"{name}: all" in capsys.readouterr().out


def test_find_the_bug_catches_the_mask_after_the_softmax(capsys):
    assert not check("masked_attention", buggy_masked_attention)
    out = capsys.readouterr().out
    assert "case 1 of 4 (one query, key 2 masked out: the weights of keys 0 and 1 must sum to one)" in out
    assert "wrong values" in out and MASK_AFTER_SOFTMAX not in out  # the explanation comes once it is fixed
    case = EXERCISES["masked_attention"].cases()[0]
    assert buggy_masked_attention(*case.args)[1].sum().item() == pytest.approx(0.60, abs=0.005)  # as it says
    with pytest.raises(ExerciseError, match="case 1 of 4"):
        check("masked_attention", buggy_masked_attention, must_pass=True)


def test_find_the_bug_catches_the_nan_of_a_minus_inf_fill(capsys):
    assert not check("masked_attention", minus_inf_attention)
    assert "case 4 of 4 (query 1 may attend to nothing: its weights and output must be zeros, not NaN)" in \
        capsys.readouterr().out


def test_the_fix_passes_and_the_bug_is_explained(capsys):
    def fixed(q, k, v, mask):
        scores = _scores(q, k).masked_fill(~mask, torch.finfo(q.dtype).min)
        weights = torch.softmax(scores, dim=-1) * mask
        return weights @ v, weights

    assert check("masked_attention", fixed, must_pass=True)
    out = capsys.readouterr().out
    assert "all 4 cases match" in out and MASK_AFTER_SOFTMAX in out


def test_grounding_check_catches_swapped_outputs(capsys):
    assert not check("grounding_accuracy", lambda *a: tuple(reversed(_grounding(*a))))
    assert "case 1 of 3" in capsys.readouterr().out


# --- The build: the words-over-patches layer and the training step ----------------------------------------------


class _Given(nn.Module):
    """The stub's __init__, as the lesson gives it: MultiHeadAttention's parameter names and shapes."""

    def __init__(self, embed_dim, num_heads, kdim=None, vdim=None):
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(kdim or embed_dim, embed_dim)
        self.v_proj = nn.Linear(vdim or embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)


def _layer(scale_by_d=False, out_proj=True, transpose=True, average_heads=False):
    """A written-out layer, right by default, or with one of the usual mistakes."""

    class Layer(_Given):
        def forward(self, query, key, value, key_padding_mask=None):
            b, t, d = query.shape
            h = self.num_heads

            def heads(x):
                if not transpose:  # straight to (B, H, L, d/H): right shape, wrong features
                    return x.reshape(b, h, x.shape[1], d // h)
                return x.reshape(b, x.shape[1], h, d // h).transpose(1, 2)

            q, k, v = heads(self.q_proj(query)), heads(self.k_proj(key)), heads(self.v_proj(value))
            weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d if scale_by_d else d // h), dim=-1)
            out = (weights @ v).transpose(1, 2).reshape(b, t, d)
            return (self.out_proj(out) if out_proj else out), (weights.mean(1) if average_heads else weights)

    return Layer


def test_a_written_out_layer_passes_the_build(capsys):
    assert check("cross_attention", _layer(), must_pass=True)
    assert "cross_attention: all 4 cases match" in capsys.readouterr().out


@pytest.mark.parametrize("mistake, message", [
    ({"scale_by_d": True}, "case 2 of 4 (2 questions of 5 words over 7 patches, d=8, 2 heads: each head holds d/H "
                           "= 4 features, and its scores are divided by the square root of that): item 0 of the "
                           "result has wrong values"),
    ({"out_proj": False}, "case 1 of 4 (one word over three patches, d=4, one head, a batch of 1): item 0 of the "
                          "result has wrong values"),
    ({"transpose": False}, "case 2 of 4"),
    ({"average_heads": True}, "item 1 of the result has shape (1, 1, 3), expected (1, 1, 1, 3)"),
])
def test_the_build_catches_the_usual_mistakes(mistake, message, capsys):
    assert not check("cross_attention", _layer(**mistake))
    out = capsys.readouterr().out
    assert message in out
    if "case 2" in message:
        assert "passed before it: case 1" in out  # one head hides the mistake


class _Subclass(MultiHeadAttention):
    def forward(self, query, key, value, key_padding_mask=None):
        return super().forward(query, key, value)


class _PackageAttention(_Given):
    def forward(self, query, key, value, key_padding_mask=None):
        h = self.num_heads
        q, k, v = (split_heads(p(x), h) for p, x in ((self.q_proj, query), (self.k_proj, key), (self.v_proj, value)))
        out, weights = scaled_dot_product_attention(q, k, v)
        return self.out_proj(out.transpose(1, 2).flatten(2)), weights


@pytest.mark.parametrize("layer, name", [
    (MultiHeadAttention, "mmcourse.attention.MultiHeadAttention.__init__"),
    (_Subclass, "mmcourse.attention.MultiHeadAttention.__init__"),
    (_PackageAttention, "mmcourse.attention.split_heads"),
])
def test_the_build_rejects_the_package_attention(layer, name, capsys):
    assert not check("cross_attention", layer)
    assert f"your function calls `{name}`" in capsys.readouterr().out


def _step(reduction="mean", zero_grad=True, returns=True):
    def step(model, batch, optimizer):
        scores = model(batch["image"], batch["question_ids"]).scores
        loss = F.cross_entropy(scores, batch["answer_id"], reduction=reduction)
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item() if returns else None

    return step


def _log_softmax_step(model, batch, optimizer):  # the same loss written another way: passes
    log_p = model(batch["image"], batch["question_ids"]).scores.log_softmax(-1)
    loss = -log_p.gather(1, batch["answer_id"][:, None]).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


@pytest.mark.parametrize("step", [_step(), _log_softmax_step])
def test_a_written_out_step_passes(step, capsys):
    assert check("vqa_step", step, must_pass=True)
    assert "vqa_step: all 3 cases match" in capsys.readouterr().out


@pytest.mark.parametrize("mistake, message", [
    ({"reduction": "sum"}, "case 1 of 3 (SGD (lr 0.5), 4 questions: the loss is the mean over the batch): item 0 of "
                           "the result['loss'] is"),
    ({"zero_grad": False}, "case 2 of 3 (SGD, one question, gradients left from an earlier batch: clear them before "
                           "backward): the result['text.position after the step'] has wrong values"),
    ({"returns": False}, "item 0 of the result['loss'] should be a number, got NoneType"),
])
def test_the_step_check_catches_the_usual_mistakes(mistake, message, capsys):
    assert not check("vqa_step", _step(**mistake))
    assert message in capsys.readouterr().out


def test_the_step_check_rejects_the_package_step(capsys):
    from mmcourse.experiments.attention import vqa_step

    assert not check("vqa_step", vqa_step)
    assert "your function calls `mmcourse.experiments.attention.vqa_step`" in capsys.readouterr().out
    assert not check("vqa_step", lambda model, batch, optimizer: vqa_step(model, batch, optimizer))
    assert "your function calls `mmcourse.experiments.attention.vqa_step`" in capsys.readouterr().out


def test_the_stubs_are_not_done_yet(capsys):
    class Stub(_Given):
        def forward(self, query, key, value, key_padding_mask=None):
            raise NotImplementedError

    def stub_step(model, batch, optimizer):
        raise NotImplementedError

    assert not check("cross_attention", Stub)
    assert "cross_attention: not done yet" in capsys.readouterr().out
    assert not check("vqa_step", stub_step)
    assert "vqa_step: not done yet" in capsys.readouterr().out


def test_the_step_checks_leave_the_learners_random_numbers_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check("vqa_step", _step())
    check("cross_attention", _layer())
    assert torch.equal(torch.rand(3), expected)
