"""Lesson 04's exercises: the worked solutions pass, and typical mistakes are caught and explained."""

import torch
import torch.nn.functional as F

from mmcourse.exercises import check


def _procrustes(source, target):
    u, _, vh = torch.linalg.svd(source.T @ target)
    return u @ vh


def _csls(a, b, k, factor=2.0):
    cos = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T
    return factor * cos - cos.topk(k, dim=1).values.mean(1)[:, None] - cos.topk(k, dim=0).values.mean(0)[None, :]


def test_procrustes_exercise(capsys):
    assert check("procrustes", _procrustes)
    # the SVD of target^T source gives the transpose of the answer
    assert not check("procrustes", lambda s, t: _procrustes(t, s))
    assert "case 1 of 4 (5 points in 2-D turned by a quarter turn)" in capsys.readouterr().out
    # forcing a rotation (determinant +1) fails on the mirrored case
    assert not check("procrustes", lambda s, t: _procrustes(s, t) * torch.linalg.det(_procrustes(s, t)))
    assert "mirrored" in capsys.readouterr().out


def test_csls_exercise(capsys):
    assert check("csls_scores", _csls)
    assert not check("csls_scores", lambda a, b, k: _csls(a, b, k, factor=1.0))
    assert "case 1 of 4 (3 source and 4 target points in 2-D, k=1)" in capsys.readouterr().out
    # forgetting to normalise the rows: dot products are not cosines
    assert not check("csls_scores", lambda a, b, k: 2 * (a @ b.T) - (a @ b.T).topk(k, 1).values.mean(1)[:, None]
                     - (a @ b.T).topk(k, 0).values.mean(0)[None, :])
    assert "wrong values" in capsys.readouterr().out


def test_orthogonalize_find_the_bug(capsys):
    def fixed(w, beta=0.001):
        return (1 + beta) * w - beta * w @ w.T @ w

    def tutorial(w, beta=0.001):
        return (1 + beta) * w - beta * w.T @ w @ w

    assert check("orthogonalize", fixed)
    assert not check("orthogonalize", tutorial)
    out = capsys.readouterr().out
    assert "case 3 of 4 (a shear" in out and "W W^T W and W^T W W differ" in out
