"""Lesson 01's exercise checks: the solutions pass, and typical mistakes (and the planted bug) are caught
with a message that says which case and what is wrong."""

import torch

from mmcourse import exercises
from mmcourse.exercises.fusion import buggy_modality_attention


def _with_ones(h: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.ones(len(h), 1), h], dim=1)


def _low_rank(hs, factors, rank_weights, bias):
    product = torch.stack([torch.einsum("bd,rdo->bro", _with_ones(h), w) for h, w in zip(hs, factors)]).prod(0)
    return torch.einsum("r,bro->bo", rank_weights, product) + bias


def _fixed_attention(u, v):
    alpha = torch.softmax(u @ v, dim=-1)
    return (alpha.unsqueeze(-1) * u).sum(1), alpha


def test_solutions_pass(capsys):
    assert exercises.check("low_rank_fusion", _low_rank)
    ones = lambda h: torch.cat([torch.ones(len(h), 1, dtype=h.dtype), h], 1)  # noqa: E731
    assert exercises.check("tensor_fusion", lambda a, b: torch.einsum("bi,bj->bij", ones(a), ones(b)).flatten(1))
    assert exercises.check("late_fusion", lambda ls: torch.stack([x.log_softmax(1) for x in ls]).mean(0))
    assert exercises.check("modality_attention_bug", _fixed_attention)
    assert capsys.readouterr().out.count("\N{CHECK MARK}") == 4


def test_low_rank_mistakes_are_explained(capsys):
    def without_ones(hs, factors, rank_weights, bias):
        product = torch.stack([torch.einsum("bd,rdo->bro", h, w[:, 1:]) for h, w in zip(hs, factors)]).prod(0)
        return torch.einsum("r,bro->bo", rank_weights, product) + bias

    def summed(hs, factors, rank_weights, bias):  # adds the projections instead of multiplying them
        total = sum(torch.einsum("bd,rdo->bro", _with_ones(h), w) for h, w in zip(hs, factors))
        return torch.einsum("r,bro->bo", rank_weights, total) + bias

    assert not exercises.check("low_rank_fusion", without_ones)
    assert "case 1 of 4 (two modalities, 4 samples, rank 3): the result has wrong values" in capsys.readouterr().out
    assert not exercises.check("low_rank_fusion", summed)
    assert "wrong values" in capsys.readouterr().out
    two_only = lambda hs, f, r, b: _low_rank(hs[:2], f[:2], r, b)  # noqa: E731  forgets the third modality
    assert not exercises.check("low_rank_fusion", two_only)
    assert "case 4 of 4 (three modalities" in capsys.readouterr().out


def test_tensor_and_late_fusion_mistakes_are_explained(capsys):
    assert not exercises.check("tensor_fusion", lambda a, b: torch.einsum("bi,bj->bij", a, b).flatten(1))
    assert "has shape (2, 6), expected (2, 12)" in capsys.readouterr().out
    assert not exercises.check("late_fusion", lambda ls: torch.stack(ls).mean(0))
    assert "wrong values" in capsys.readouterr().out


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
