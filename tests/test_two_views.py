"""make_two_views: the population canonical correlations are the ones asked for."""

import numpy as np
import pytest
import torch

from mmcourse.data import make_two_views


def _canonical_correlations(x, y):
    """Independent closed form: singular values of Qx^T Qy from QR of the centred views."""
    qx, _ = torch.linalg.qr(x - x.mean(0))
    qy, _ = torch.linalg.qr(y - y.mean(0))
    return torch.linalg.svdvals(qx.T @ qy)


def test_linear_views_have_the_requested_canonical_correlations():
    views = make_two_views(n=50_000, dim_x=10, dim_y=8, correlations=(0.5, 0.9, 0.7), seed=0)
    assert views.x.shape == (50_000, 10) and views.y.shape == (50_000, 8)
    assert torch.equal(views.correlations, torch.tensor([0.9, 0.7, 0.5], dtype=torch.float64))
    rho = _canonical_correlations(views.x, views.y)
    assert torch.allclose(rho[:3], views.correlations, atol=0.01)
    assert (rho[3:] < 0.03).all()


def test_sklearn_cca_agrees_on_the_first_correlation():
    from sklearn.cross_decomposition import CCA

    views = make_two_views(n=5000, correlations=(0.8,), seed=1)
    u, v = CCA(n_components=1).fit_transform(views.x.numpy(), views.y.numpy())
    assert abs(torch.corrcoef(torch.from_numpy(np.stack([u[:, 0], v[:, 0]])))[0, 1].item() - 0.8) < 0.02


def test_nonlinear_views_hide_the_correlation_from_linear_cca_but_not_from_nonlinear_maps():
    from mmcourse.data.two_views import _embed_mean, _embed_std, _mixing

    k, dim = 2, 10
    views = make_two_views(n=20_000, dim_x=dim, dim_y=dim, correlations=(0.9, 0.7), nonlinear=True, seed=0)
    rho = _canonical_correlations(views.x, views.y)
    assert rho[0] < 0.8  # linear CCA sees much less than 0.9

    # Undo the mixing (same generator sequence as the function), then read the latent back from
    # the angles of the (sin, cos) pairs, u = 2 (angle(2.5u) - angle(2u)): a non-linear map that recovers rho.
    g = torch.Generator().manual_seed(0)
    mix_x, mix_y = _mixing(dim, g, torch.float64), _mixing(dim, g, torch.float64)

    def angle(view, mix):
        f = (view @ torch.linalg.inv(mix))[:, : 4 * k] * _embed_std(k, torch.float64) + _embed_mean(k, torch.float64)
        slow, fast = torch.atan2(f[:, :k], f[:, k : 2 * k]), torch.atan2(f[:, 2 * k : 3 * k], f[:, 3 * k :])
        return 2 * (torch.remainder(fast - slow + torch.pi, 2 * torch.pi) - torch.pi)

    a, b = angle(views.x, mix_x), angle(views.y, mix_y)
    recovered = torch.stack([torch.corrcoef(torch.stack([a[:, i], b[:, i]]))[0, 1] for i in range(k)])
    assert (recovered > views.correlations - 0.01).all() and (recovered < views.correlations + 0.02).all(), recovered
    assert recovered[0] > rho[0] + 0.1


def test_held_out_set_and_determinism():
    a = make_two_views(n=100, n_test=40, seed=5)
    b = make_two_views(n=100, n_test=40, seed=5)
    assert a.x_test.shape == (40, 10) and a.y_test.shape == (40, 8)
    assert torch.equal(a.x, b.x) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x, make_two_views(n=100, seed=6).x)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"correlations": (1.0,)}, "correlations"),
        ({"correlations": ()}, "correlations"),
        ({"n": 1}, "n:"),
        ({"dim_x": 2, "correlations": (0.5, 0.4, 0.3)}, "dim_x"),
        ({"dim_x": 12, "dim_y": 8, "correlations": (0.5, 0.4, 0.3), "nonlinear": True}, "dim_y"),
        ({"n_test": -1}, "n_test"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_two_views(**kwargs)
