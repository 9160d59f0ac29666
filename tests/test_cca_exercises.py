"""Lesson 02's exercises: the worked solutions pass, and typical mistakes are explained."""

import torch

from mmcourse.exercises import check


def _whitening(cov):
    lam, q = torch.linalg.eigh(cov)
    return q @ torch.diag(lam.rsqrt()) @ q.T


def _correlations(x, y, centre=True):
    if centre:
        x, y = x - x.mean(0), y - y.mean(0)
    n = len(x)
    return torch.linalg.svdvals(_whitening(x.T @ x / (n - 1)) @ (x.T @ y / (n - 1)) @ _whitening(y.T @ y / (n - 1)))


def test_whitening_exercise(capsys):
    assert check("whitening_matrix", _whitening)
    # a whitening matrix, but not the symmetric one
    assert not check("whitening_matrix", lambda c: torch.linalg.inv(torch.linalg.cholesky(c)))
    # the element-wise square root trap
    assert not check("whitening_matrix", lambda c: torch.linalg.inv(c).sqrt())
    out = capsys.readouterr().out
    assert "case 2 of 3 (correlated 2x2)" in out and "wrong values" in out


def test_canonical_correlations_exercise(capsys):
    assert check("canonical_correlations", _correlations)
    assert not check("canonical_correlations", lambda x, y: _correlations(x, y, centre=False))
    assert "case 1 of 3 (x (300, 4), y (300, 3), means far from 0)" in capsys.readouterr().out
    assert not check("canonical_correlations", lambda x, y: _correlations(x, y)[:1])


def test_recall_exercise(capsys):
    assert check("recall_at_k", lambda s, r, k: r.gather(1, s.topk(k, dim=1).indices).any(1).float().mean().item())
    # averaging hits over the k items instead of asking for at least one
    assert not check("recall_at_k", lambda s, r, k: r.gather(1, s.topk(k, dim=1).indices).float().mean().item())
    assert "case 2 of 3" in capsys.readouterr().out
