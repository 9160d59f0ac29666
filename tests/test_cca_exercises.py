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


def _total_correlation(h1, h2, eps=1e-4, root=None):
    h1, h2 = h1 - h1.mean(0), h2 - h2.mean(0)
    n = len(h1)
    c11 = h1.T @ h1 / (n - 1) + eps * torch.eye(h1.shape[1], dtype=h1.dtype)
    c22 = h2.T @ h2 / (n - 1) + eps * torch.eye(h2.shape[1], dtype=h2.dtype)
    t = _whitening(c11) @ (h1.T @ h2 / (n - 1)) @ _whitening(c22)
    return root(t) if root else torch.linalg.svdvals(t).sum()


def _with_root(root):
    return lambda h1, h2: _total_correlation(h1, h2, root=root)


def test_total_correlation_exercise_catches_the_element_wise_square_root(capsys):
    assert check("total_correlation", _total_correlation)
    capsys.readouterr()
    # the bug: the trace of the element-wise square root of T^T T, right only when T^T T is diagonal
    assert not check("total_correlation", _with_root(lambda t: (t.T @ t).sqrt().trace()))
    out = capsys.readouterr().out
    assert "case 2 of 3 (mixed views" in out and "off its diagonal" in out and "wrong values" in out
    # another version found in the wild: sqrt(trace(T^T T)), the Frobenius norm of T
    assert not check("total_correlation", _with_root(lambda t: (t.T @ t).trace().sqrt()))
    assert "case 1 of 3 (axis-aligned" in capsys.readouterr().out
    # only the first correlation instead of all of them
    assert not check("total_correlation", _with_root(lambda t: torch.linalg.svdvals(t)[0]))


def test_the_element_wise_square_root_also_poisons_the_gradient():
    """What the lesson's hint says: a negative entry of T^T T has a NaN square root, which the trace
    never reads but the gradient does; the sum of singular values has a finite gradient."""
    from mmcourse.exercises import EXERCISES

    h1, h2 = EXERCISES["total_correlation"].cases()[1].args  # the mixed views
    for root, nan in ((lambda t: (t.T @ t).sqrt().trace(), True), (None, False)):
        a = h1.clone().requires_grad_()
        value = _total_correlation(a, h2, root=root)
        value.backward()
        assert torch.isfinite(value) and a.grad.isnan().any().item() is nan
