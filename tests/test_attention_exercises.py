"""Lesson 03's exercise checks: the references pass, and typical mistakes are caught with a message that
says which case failed and why; the "find the bug" check catches the mask applied after the softmax."""

import math

import pytest
import torch

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


def _attention(q, k, v):
    weights = torch.softmax(_scores(q, k), dim=-1)
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
    "scaled_dot_product_attention": _attention,
    "masked_attention": _masked,
    "split_heads": lambda x, h: x.reshape(x.shape[0], x.shape[1], h, x.shape[2] // h).transpose(1, 2),
    "merge_heads": lambda x: x.transpose(1, 2).reshape(x.shape[0], x.shape[2], x.shape[1] * x.shape[3]),
    "grounding_accuracy": _grounding,
}


@pytest.mark.parametrize("name", sorted(SOLUTIONS))
def test_a_written_out_solution_passes_each_check(name, capsys):
    assert check(name, SOLUTIONS[name], must_pass=True)
    assert f"{name}: all" in capsys.readouterr().out


@pytest.mark.parametrize("fn, message", [
    (lambda q, k, v: (torch.softmax(q @ k.transpose(-2, -1), -1) @ v, torch.softmax(q @ k.transpose(-2, -1), -1)),
     "case 1 of 4"),  # no division by sqrt(d_k)
    (lambda q, k, v: (torch.softmax(_scores(q, k), -2) @ v, torch.softmax(_scores(q, k), -2)),
     "case 1 of 4"),  # softmax over the queries
    (lambda q, k, v: (torch.softmax(_scores(q, k), -1) @ v, torch.softmax(_scores(q, k), -1).transpose(-2, -1)),
     "item 1 of the result has shape (3, 1), expected (1, 3)"),
])
def test_attention_check_catches_typical_mistakes(fn, message, capsys):
    assert not check("scaled_dot_product_attention", fn)
    assert message in capsys.readouterr().out


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


def test_split_and_merge_checks_catch_a_reshape_without_transpose(capsys):
    assert not check("split_heads", lambda x, h: x.reshape(x.shape[0], h, x.shape[1], -1))
    assert "case 1 of 4 (B=1, T=2, d=4 into 2 heads): the result has wrong values" in capsys.readouterr().out
    assert not check("merge_heads", lambda x: x.reshape(x.shape[0], x.shape[2], -1))
    assert "case 1 of 3 (B=1, 2 heads, T=2, d/H=2): the result has wrong values" in capsys.readouterr().out


def test_grounding_check_catches_swapped_outputs(capsys):
    assert not check("grounding_accuracy", lambda *a: tuple(reversed(_grounding(*a))))
    assert "case 1 of 3" in capsys.readouterr().out
