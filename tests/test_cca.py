"""mmcourse.cca: closed-form CCA against independent references, cca_loss's values and gradients, DeepCCA."""

import numpy as np
import pytest
import torch
from scipy.linalg import fractional_matrix_power

from mmcourse.cca import CCA, DeepCCA, cca_loss, inverse_sqrt, whitening
from mmcourse.data import make_two_views
from mmcourse.encoders import MLPEncoder


@pytest.fixture(scope="module")
def views():
    return make_two_views(n=3000, dim_x=10, dim_y=8, correlations=(0.9, 0.7, 0.4), n_test=1000, seed=0)


def _qr_correlations(x, y):
    """Independent closed form: singular values of Qx^T Qy from QR of the centred views."""
    qx, _ = torch.linalg.qr(x - x.mean(0))
    qy, _ = torch.linalg.qr(y - y.mean(0))
    return torch.linalg.svdvals(qx.T @ qy)


def _column_correlations(u, v):
    return torch.stack([torch.corrcoef(torch.stack([u[:, i], v[:, i]]))[0, 1] for i in range(u.shape[1])])


def test_fit_returns_self_with_documented_attributes(views):
    cca = CCA(n_components=3)
    assert cca.fit(views.x, views.y) is cca
    assert cca.x_mean_.shape == (10,) and cca.y_mean_.shape == (8,)
    assert cca.x_weights_.shape == (10, 3) and cca.y_weights_.shape == (8, 3)
    assert cca.canonical_correlations_.shape == (3,)
    assert (cca.canonical_correlations_.diff() <= 0).all()
    assert repr(cca) == "CCA(n_components=3, reg=0.0)"


def test_training_projections_have_exactly_the_canonical_correlations_and_are_uncorrelated(views):
    cca = CCA(n_components=3).fit(views.x, views.y)
    u, v = cca.transform(views.x, views.y)
    corr = torch.corrcoef(torch.cat([u, v], 1).T)
    expected = torch.eye(6, dtype=torch.float64)
    expected[:3, 3:] = expected[3:, :3] = torch.diag(cca.canonical_correlations_)
    assert torch.allclose(corr, expected, atol=1e-10)
    # unit variance of the projections (the normalisation of the weights)
    assert torch.allclose(u.var(0), torch.ones(3, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(cca.correlations(views.x, views.y), cca.canonical_correlations_, atol=1e-10)


def test_matches_the_qr_closed_form_and_the_true_correlations(views):
    cca = CCA(n_components=8).fit(views.x, views.y)
    assert torch.allclose(cca.canonical_correlations_, _qr_correlations(views.x, views.y), atol=1e-10)
    assert torch.allclose(cca.canonical_correlations_[:3], views.correlations, atol=0.03)


def test_agrees_with_scikit_learn_within_1e_3(views):
    from sklearn.cross_decomposition import CCA as SklearnCCA

    x, y = views.x.numpy(), views.y.numpy()
    ours = CCA(n_components=3).fit(x, y)
    u, v = (torch.from_numpy(a) for a in SklearnCCA(n_components=3, max_iter=1000).fit(x, y).transform(x, y))
    assert torch.allclose(ours.correlations(x, y), _column_correlations(u, v), atol=1e-3)
    # and on held-out data, with each method's own projections
    xt, yt = views.x_test.numpy(), views.y_test.numpy()
    sk = SklearnCCA(n_components=3, max_iter=1000).fit(x, y)
    ut, vt = (torch.from_numpy(a) for a in sk.transform(xt, yt))
    assert torch.allclose(ours.correlations(xt, yt), _column_correlations(ut, vt), atol=1e-3)


def _eigh_closed_form(x, y, k, reg=0.0):
    """The closed form as ``CCA.fit`` computed it before it whitened with a Cholesky factor: the
    symmetric C^(-1/2) from an eigendecomposition. Returns the correlations (k,) and weights."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    n = len(x)
    kx = inverse_sqrt(xc.T @ xc / (n - 1) + reg * torch.eye(x.shape[1], dtype=x.dtype))
    ky = inverse_sqrt(yc.T @ yc / (n - 1) + reg * torch.eye(y.shape[1], dtype=y.dtype))
    u, s, vh = torch.linalg.svd(kx @ (xc.T @ yc / (n - 1)) @ ky)
    return s[:k], kx @ u[:, :k], ky @ vh[:k].T


@pytest.mark.parametrize("n, p, q, k", [(2000, 64, 32, 8), (500, 10, 8, 3), (1000, 40, 40, 3), (300, 5, 12, 4)])
def test_fit_matches_the_eigendecomposition_closed_form_and_scikit_learn(n, p, q, k):
    from sklearn.cross_decomposition import CCA as SklearnCCA

    data = make_two_views(n=n, dim_x=p, dim_y=q, correlations=(0.9, 0.7, 0.4), seed=n + p)
    cca = CCA(n_components=k).fit(data.x, data.y)
    expected, wx, wy = _eigh_closed_form(data.x, data.y, k)
    assert torch.allclose(cca.canonical_correlations_, expected, atol=1e-10)
    # the same directions: equal weights up to the sign of each pair (weak pairs are nearly tied, so
    # only the three planted ones are compared)
    sign = torch.sign((cca.x_weights_[:, :3] * wx[:, :3]).sum(0))
    assert torch.allclose(cca.x_weights_[:, :3], wx[:, :3] * sign, atol=1e-6)
    assert torch.allclose(cca.y_weights_[:, :3], wy[:, :3] * sign, atol=1e-6)
    x, y = data.x.numpy(), data.y.numpy()
    u, v = (torch.from_numpy(a) for a in SklearnCCA(n_components=3, max_iter=1000).fit(x, y).transform(x, y))
    assert torch.allclose(cca.correlations(x, y)[:3], _column_correlations(u, v), atol=1e-3)


def test_fit_with_a_ridge_matches_the_eigendecomposition_closed_form(views):
    ridge = CCA(n_components=3, reg=2.0).fit(views.x, views.y)
    expected, wx, _ = _eigh_closed_form(views.x, views.y, 3, reg=2.0)
    assert torch.allclose(ridge.canonical_correlations_, expected, atol=1e-10)
    assert torch.allclose(ridge.x_weights_.abs(), wx.abs(), atol=1e-8)


def test_whitening_whitens_and_falls_back_on_singular_covariances():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(100, 5, generator=g, dtype=torch.float64) @ torch.randn(5, 5, generator=g, dtype=torch.float64)
    c = a.T @ a / 99
    k = whitening(c)
    assert torch.allclose(k @ c @ k.T, torch.eye(5, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(k, torch.tril(k))  # the inverse Cholesky factor, lower triangular
    for degenerate in (torch.cat([a, a[:, :1]], 1), torch.cat([a, torch.full((100, 1), 3.0, dtype=a.dtype)], 1)):
        d = degenerate - degenerate.mean(0)
        singular = d.T @ d / 99  # a duplicated or a constant feature: rank 5 of 6
        assert torch.allclose(whitening(singular), inverse_sqrt(singular))


@pytest.mark.parametrize("extra", ["constant", "duplicate"])
def test_fit_ignores_a_feature_that_adds_nothing(views, extra):
    """A constant or duplicated feature (clean digits have constant border pixels) makes the covariance
    singular; plain CCA still finds the same correlations, with finite weights."""
    column = torch.full((len(views.x), 1), 2.0, dtype=views.x.dtype) if extra == "constant" else views.x[:, :1]
    cca = CCA(n_components=3).fit(torch.cat([views.x, column], 1), views.y)
    assert torch.isfinite(cca.x_weights_).all()
    assert torch.allclose(cca.canonical_correlations_, CCA(3).fit(views.x, views.y).canonical_correlations_,
                          atol=1e-8)


def test_correlations_are_invariant_to_invertible_linear_maps_and_shifts(views):
    g = torch.Generator().manual_seed(1)
    a = torch.randn(10, 10, generator=g, dtype=torch.float64) + 3 * torch.eye(10, dtype=torch.float64)
    b = torch.randn(8, 8, generator=g, dtype=torch.float64) + 3 * torch.eye(8, dtype=torch.float64)
    before = CCA(n_components=3).fit(views.x, views.y)
    after = CCA(n_components=3).fit(views.x @ a + 5.0, views.y @ b - 2.0)
    assert torch.allclose(before.canonical_correlations_, after.canonical_correlations_, atol=1e-9)
    # the projections themselves are the same up to sign
    u1, _ = before.transform(views.x_test, views.y_test)
    u2, _ = after.transform(views.x_test @ a + 5.0, views.y_test @ b - 2.0)
    assert torch.allclose(u1.abs(), u2.abs(), atol=1e-7)


def test_numpy_and_torch_inputs_agree_and_signs_are_fixed(views):
    a = CCA(n_components=2).fit(views.x, views.y)
    b = CCA(n_components=2).fit(views.x.numpy(), views.y.float().numpy())
    assert torch.allclose(a.x_weights_, b.x_weights_, atol=1e-4)
    rows = a.x_weights_.abs().argmax(0)
    assert (a.x_weights_[rows, torch.arange(2)] > 0).all()
    u, v = a.fit_transform(views.x, views.y)
    assert u.shape == (3000, 2) and v.shape == (3000, 2)
    assert torch.equal(a.transform(views.x), u)


def test_ridge_matches_an_independent_matrix_power_and_shrinks(views):
    reg = 0.5
    x, y = views.x.numpy(), views.y.numpy()
    xc, yc = x - x.mean(0), y - y.mean(0)
    n = len(x)
    t = (fractional_matrix_power(xc.T @ xc / (n - 1) + reg * np.eye(10), -0.5) @ (xc.T @ yc / (n - 1))
         @ fractional_matrix_power(yc.T @ yc / (n - 1) + reg * np.eye(8), -0.5))
    expected = torch.from_numpy(np.linalg.svd(np.real(t), compute_uv=False)[:3])
    ridge = CCA(n_components=3, reg=reg).fit(views.x, views.y)
    assert torch.allclose(ridge.canonical_correlations_, expected, atol=1e-10)
    plain = CCA(n_components=3).fit(views.x, views.y)
    assert (ridge.canonical_correlations_ < plain.canonical_correlations_).all()
    # the objective value is below the correlation the ridge directions actually reach on training data
    assert (ridge.canonical_correlations_ <= ridge.correlations(views.x, views.y) + 1e-12).all()


def test_more_features_than_samples_give_correlations_of_one():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 16, generator=g, dtype=torch.float64), torch.randn(20, 16, generator=g, dtype=torch.float64)
    cca = CCA(n_components=5).fit(x, y)  # independent noise, but p + q > n
    assert torch.allclose(cca.canonical_correlations_, torch.ones(5, dtype=torch.float64), atol=1e-8)
    assert torch.isfinite(cca.x_weights_).all() and torch.isfinite(cca.y_weights_).all()


def test_inverse_sqrt_whitens_and_handles_singular_matrices():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(50, 4, generator=g, dtype=torch.float64)
    c = a.T @ a / 49
    w = inverse_sqrt(c)
    assert torch.allclose(w, w.T) and torch.allclose(w @ c @ w, torch.eye(4, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(w, torch.from_numpy(np.real(fractional_matrix_power(c.numpy(), -0.5))), atol=1e-10)
    singular = a[:, :1] @ a[:, :1].T  # rank 1, (50, 50)
    ws = inverse_sqrt(singular)
    assert torch.isfinite(ws).all()
    p = ws @ singular @ ws  # the projector onto the column space
    assert torch.allclose(p @ p, p, atol=1e-8) and abs(torch.trace(p).item() - 1) < 1e-8


@pytest.mark.parametrize(
    "x, y, kwargs, match",
    [
        (torch.randn(50, 4), torch.randn(49, 3), {}, "Y: expected 50 rows, like X, got 49"),
        (torch.randn(3, 4), torch.randn(3, 3), {"n_components": 3}, "X: expected at least 4 rows"),
        (torch.randn(50, 4), torch.randn(50, 3), {"n_components": 4}, r"n_components: .*min\(p, q\) = 3, got 4"),
        (torch.randn(50, 4), torch.randn(50, 3), {"n_components": 0}, "n_components"),
        (torch.randn(50, 4), torch.randn(50, 3), {"n_components": 1.5}, "n_components"),
        (torch.full((50, 4), float("nan")), torch.randn(50, 3), {}, "X: contains NaN"),
        (torch.randn(50, 4), torch.full((50, 3), float("inf")), {}, "Y: contains NaN or infinite"),
        (torch.randn(50), torch.randn(50, 3), {}, r"X: expected a matrix .* got shape \(50,\)"),
        (torch.randn(50, 4), torch.randn(50, 3), {"reg": -1.0}, "reg: expected a finite number >= 0, got -1.0"),
        (torch.randn(50, 4), torch.randn(50, 3), {"reg": float("nan")}, "reg"),
    ],
)
def test_bad_input_is_a_clear_error(x, y, kwargs, match):
    with pytest.raises(ValueError, match=match):
        CCA(**{"n_components": 2, **kwargs}).fit(x, y)


def test_transform_checks_its_input(views):
    with pytest.raises(RuntimeError, match="not fitted"):
        CCA(2).transform(views.x)
    cca = CCA(2).fit(views.x, views.y)
    with pytest.raises(ValueError, match="X: expected 10 features"):
        cca.transform(views.y)
    with pytest.raises(ValueError, match="Y: expected 8 features"):
        cca.transform(views.x, views.x)
    with pytest.raises(ValueError, match="Y: expected 1000 rows"):
        cca.transform(views.x_test, views.y)


# ---- cca_loss -------------------------------------------------------------------------------------


def test_cca_loss_is_minus_the_sum_of_ridge_canonical_correlations(views):
    h1, h2 = views.x[:500], views.y[:500]
    for k in (1, 2, 3, None):
        loss = cca_loss(h1, h2, k, eps=1e-4)
        ridge = CCA(k or 8, reg=1e-4).fit(h1, h2).canonical_correlations_.sum()
        assert torch.allclose(loss, -ridge, atol=1e-10)
        # the ridge's bias is small for unit-scale embeddings
        plain = _qr_correlations(h1, h2)[: k or 8].sum()
        assert 0 < (loss + plain).item() < 1e-3


def test_cca_loss_keeps_the_input_dtype_and_is_differentiable(views):
    h1 = views.x[:400].float().requires_grad_()
    h2 = views.y[:400].float().requires_grad_()
    loss = cca_loss(h1, h2, 2)
    assert loss.dtype == torch.float32 and loss.ndim == 0
    loss.backward()
    assert h1.grad.shape == h1.shape and torch.isfinite(h1.grad).all() and h1.grad.abs().sum() > 0


def test_cca_loss_passes_gradcheck_in_float64():
    g = torch.Generator().manual_seed(0)
    h1 = torch.randn(40, 3, generator=g, dtype=torch.float64, requires_grad=True)
    h2 = (h1.detach() @ torch.randn(3, 4, generator=g, dtype=torch.float64)
          + torch.randn(40, 4, generator=g, dtype=torch.float64)).requires_grad_()
    for k in (1, 2, 3):
        assert torch.autograd.gradcheck(lambda a, b, k=k: cca_loss(a, b, k, eps=1e-3), (h1, h2))


def _tied_views(n=200, rho=0.6):
    """Two views whose two canonical correlations are both exactly rho, with identity covariances."""
    g = torch.Generator().manual_seed(0)
    q = torch.randn(n, 4, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(q - q.mean(0))  # orthonormal, centred columns
    x = q[:, :2] * n**0.5
    y = (rho * q[:, :2] + (1 - rho**2) ** 0.5 * q[:, 2:]) * n**0.5
    return x, y


@pytest.mark.parametrize("case", ["identical", "independent", "tied", "constant feature", "duplicated feature"])
@pytest.mark.parametrize("k", [1, 2])
def test_cca_loss_has_finite_gradients_on_degenerate_batches(case, k):
    g = torch.Generator().manual_seed(0)
    if case == "identical":
        h1 = torch.randn(100, 3, generator=g, dtype=torch.float64)
        h2 = h1.clone()
    elif case == "independent":
        h1, h2 = torch.randn(100, 3, generator=g, dtype=torch.float64), torch.randn(100, 3, generator=g,
                                                                                    dtype=torch.float64)
    elif case == "tied":
        h1, h2 = _tied_views()
        assert torch.allclose(_qr_correlations(h1, h2), torch.tensor([0.6, 0.6], dtype=torch.float64))
    else:
        h1 = torch.randn(100, 3, generator=g, dtype=torch.float64)
        h2 = h1 @ torch.randn(3, 3, generator=g, dtype=torch.float64) + torch.randn(100, 3, generator=g,
                                                                                  dtype=torch.float64)
        if case == "constant feature":
            h1[:, 1] = 2.0  # no variance at all
        else:
            h1[:, 1] = h1[:, 0]  # singular covariance
    h1, h2 = h1.clone().requires_grad_(), h2.clone().requires_grad_()
    loss = cca_loss(h1, h2, k)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(h1.grad).all() and torch.isfinite(h2.grad).all()
    if case == "identical":
        assert abs(loss.item() + k) < 1e-3  # k correlations of (almost) 1
    if case == "tied":
        assert abs(loss.item() + 0.6 * k) < 1e-3


@pytest.mark.parametrize(
    "h1, h2, kwargs, match",
    [
        (torch.randn(10, 3), torch.randn(9, 3), {}, "h2: expected 10 rows"),
        (torch.randn(10), torch.randn(10, 3), {}, r"h1: expected shape \(B, d\)"),
        (torch.full((10, 3), float("nan")), torch.randn(10, 3), {}, "h1: contains NaN"),
        (torch.randn(10, 3), torch.randn(10, 2), {"n_components": 3}, "n_components"),
        (torch.randn(2, 3), torch.randn(2, 3), {"n_components": 2}, "h1: expected at least 3 rows"),
        (torch.randn(10, 3), torch.randn(10, 3), {"eps": 0.0}, "eps"),
    ],
)
def test_cca_loss_bad_input(h1, h2, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cca_loss(h1, h2, **kwargs)


# ---- DeepCCA --------------------------------------------------------------------------------------


def test_deep_cca_trains_and_projects():
    views = make_two_views(n=1000, dim_x=8, dim_y=8, correlations=(0.9, 0.7), nonlinear=True, n_test=300, seed=0,
                           dtype=torch.float32)
    torch.manual_seed(0)
    model = DeepCCA(MLPEncoder(8, 2, hidden=32), MLPEncoder(8, 2, hidden=32), n_components=2)
    with pytest.raises(RuntimeError, match="not fitted"):
        model.transform(views.x_test, views.y_test)
    history = model.fit(views.x, views.y, epochs=8, batch_size=250, lr=3e-3, progress=False, device="cpu")
    assert history.epoch == list(range(1, 9))
    assert history.train_loss[-1] < history.train_loss[0]
    u, v = model.transform(views.x_test, views.y_test)
    assert u.shape == (300, 2) and v.shape == (300, 2)
    assert torch.allclose(model.correlations(views.x_test, views.y_test), _column_correlations(u, v), atol=1e-10)
    h1, h2 = model(views.x[:5], views.y[:5])
    assert h1.shape == (5, 2) and h2.shape == (5, 2)


def test_deep_cca_bad_arguments():
    with pytest.raises(ValueError, match="n_components"):
        DeepCCA(MLPEncoder(4, 2), MLPEncoder(4, 2), n_components=0)
    model = DeepCCA(MLPEncoder(4, 2), MLPEncoder(4, 2), n_components=2)
    x, y = torch.randn(100, 4), torch.randn(100, 4)
    with pytest.raises(ValueError, match="batch_size: expected an integer from n_components \\+ 1 = 3"):
        model.fit(x, y, batch_size=2, progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(x, y, batch_size=101, progress=False)
    with pytest.raises(ValueError, match="y: expected 100 rows"):
        model.fit(x, y[:99], progress=False)
