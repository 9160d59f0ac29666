"""mmcourse.alignment against independent references: SciPy's Procrustes and skewness, direct loops,
closed forms, and a planted rotation recovered without pairs."""

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch
import torch.nn.functional as F

from mmcourse.alignment import (
    Discriminator,
    ParallelLinear,
    adversarial_alignment,
    clustered_points,
    cosine_scores,
    csls_scores,
    hubness,
    k_occurrence,
    mean_cosine_criterion,
    mutual_nearest_neighbours,
    nearest_neighbours,
    normalize_embeddings,
    orthogonalize,
    precision_at_1,
    procrustes,
    random_rotation,
    refine,
    regression_map,
    rotation_angles,
)


def _randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --- Procrustes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, d, seed", [(50, 5, 0), (8, 8, 1), (200, 16, 2), (3, 6, 3)])
def test_procrustes_equals_scipy(n, d, seed):
    source, target = _randn(n, d, seed=seed), _randn(n, d, seed=seed + 100)
    ours = procrustes(source, target)
    theirs, _ = scipy.linalg.orthogonal_procrustes(source.numpy(), target.numpy())
    assert torch.allclose(ours.T @ ours, torch.eye(d, dtype=ours.dtype), atol=1e-10)
    if n >= d:  # otherwise the minimiser is not unique and the two may pick different completions
        np.testing.assert_allclose(ours.numpy(), theirs, atol=1e-8)
    # whatever the completion, both reach the same minimum
    assert (source @ ours - target).norm().item() == pytest.approx(np.linalg.norm(source.numpy() @ theirs
                                                                                  - target.numpy()), rel=1e-9)


def test_procrustes_recovers_a_planted_rotation_and_a_reflection_exactly():
    source = _randn(40, 6)
    rotation = random_rotation(6, generator=torch.Generator().manual_seed(4)).double()
    assert torch.allclose(procrustes(source, source @ rotation), rotation, atol=1e-10)
    mirror = torch.diag(torch.tensor([1.0, -1.0, 1.0, 1.0, 1.0, 1.0], dtype=torch.float64))
    w = procrustes(source, source @ mirror)
    assert torch.allclose(w, mirror, atol=1e-10) and torch.linalg.det(w) == pytest.approx(-1.0)


def test_procrustes_rejects_bad_input():
    x = _randn(10, 4)
    with pytest.raises(ValueError, match="target: expected 10 rows"):
        procrustes(x, _randn(9, 4))
    with pytest.raises(ValueError, match=r"target: expected shape \(n, 4\)"):
        procrustes(x, _randn(10, 5))
    nan = x.clone()
    nan[3, 1] = float("nan")
    with pytest.raises(ValueError, match="source: contains NaN"):
        procrustes(nan, x)
    with pytest.raises(ValueError, match="source: expected a floating-point tensor"):
        procrustes(x.numpy(), x)


# --- Orthogonalisation ---------------------------------------------------------------------------


def test_orthogonalize_moves_only_the_singular_values():
    w = _randn(5, 5, seed=5)
    u, s, vh = torch.linalg.svd(w)
    beta = 0.05
    expected = u @ torch.diag((1 + beta) * s - beta * s**3) @ vh
    assert torch.allclose(orthogonalize(w, beta), expected, atol=1e-10)


def test_orthogonalize_converges_to_an_orthogonal_matrix():
    w = random_rotation(8, generator=torch.Generator().manual_seed(6)).double() + 0.3 * _randn(8, 8, seed=7)
    for _ in range(500):
        w = orthogonalize(w, beta=0.05)
    assert torch.allclose(w.T @ w, torch.eye(8, dtype=w.dtype), atol=1e-8)


def test_orthogonalize_reaches_1_only_inside_its_basin():
    """Singular values in (0, sqrt((1 + beta) / beta)) go to 1 with the singular vectors kept (the polar
    factor U V^T); just beyond, that direction is flipped; far beyond, the values blow up."""
    beta = 0.1
    bound = math.sqrt((1 + beta) / beta)  # 3.32
    u, _ = torch.linalg.qr(_randn(3, 3, seed=20))
    v, _ = torch.linalg.qr(_randn(3, 3, seed=21))

    def repeat(values, steps=300):
        w = u @ torch.diag(torch.tensor(values, dtype=torch.float64)) @ v.T
        for _ in range(steps):
            w = orthogonalize(w, beta)
        return w

    inside = repeat([0.05, 1.7, 0.99 * bound])
    assert torch.allclose(inside, u @ v.T, atol=1e-8)
    flipped = repeat([0.5, 1.0, 1.1 * bound])  # f(s) < 0 for the third value: it ends at -1
    assert torch.allclose(flipped, u @ torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)) @ v.T,
                          atol=1e-8)
    grown = repeat([1.0, 1.0, 1.2 * math.sqrt((2 + beta) / beta)], steps=5)
    assert torch.linalg.svdvals(grown).max() > 1e6


def test_orthogonalize_per_matrix_beta_and_errors():
    w = torch.stack([_randn(3, 3, seed=8), _randn(3, 3, seed=9)])
    out = orthogonalize(w, torch.tensor([0.1, 0.0], dtype=w.dtype).reshape(2, 1, 1))
    assert torch.allclose(out[0], orthogonalize(w[0], 0.1)) and torch.equal(out[1], w[1])
    with pytest.raises(ValueError, match="beta"):
        orthogonalize(w[0], 0.7)
    with pytest.raises(ValueError, match="beta"):
        orthogonalize(w[0], -0.1)
    with pytest.raises(ValueError, match="w: expected a floating-point square matrix"):
        orthogonalize(_randn(3, 4), 0.1)


# --- CSLS, nearest neighbours, precision, criterion -----------------------------------------------


def test_csls_equals_a_direct_double_loop():
    mapped, target, k = _randn(5, 3, seed=10), _randn(7, 3, seed=11), 2

    def cos(a, b):
        return float(a @ b / (a.norm() * b.norm()))

    def r(point, others):
        return sum(sorted((cos(point, o) for o in others), reverse=True)[:k]) / k

    expected = torch.tensor([[2 * cos(x, y) - r(x, target) - r(y, mapped) for y in target] for x in mapped],
                            dtype=torch.float64)
    assert torch.allclose(csls_scores(mapped, target, k), expected, atol=1e-12)


def test_csls_rejects_bad_input():
    a, b = _randn(5, 3), _randn(7, 3)
    for k in (0, 6, 2.0):
        with pytest.raises(ValueError, match="k: expected an integer from 1 to 5"):
            csls_scores(a, b, k)
    with pytest.raises(ValueError, match=r"target: expected shape \(n, 3\)"):
        csls_scores(a, _randn(7, 4))
    bad = b.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="target: contains NaN"):
        csls_scores(a, bad)


def test_mutual_nearest_neighbours_on_a_hand_made_case():
    scores = torch.tensor([[0.9, 0.2, 0.1],   # source 0 -> target 0, and target 0's best is source 0: mutual
                           [0.8, 0.3, 0.0],   # source 1 -> target 0, but target 0 prefers source 0
                           [0.1, 0.2, 0.7],   # source 2 -> target 2, target 2's best is source 2: mutual
                           [0.0, 0.6, 0.5]])  # source 3 -> target 1, target 1's best is source 3: mutual
    assert nearest_neighbours(scores).tolist() == [0, 0, 2, 1]
    source, target = mutual_nearest_neighbours(scores)
    assert source.tolist() == [0, 2, 3] and target.tolist() == [0, 2, 1]


def test_precision_at_1_skips_unknown_partners_and_checks_truth():
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])
    assert precision_at_1(scores, torch.tensor([0, 0, -1])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="truth: no source row"):
        precision_at_1(scores, torch.tensor([-1, -1, -1]))
    with pytest.raises(ValueError, match="truth: expected an integer tensor of shape"):
        precision_at_1(scores, torch.tensor([0.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match="truth: expected target indices below"):
        precision_at_1(scores, torch.tensor([0, 2, 1]))


def test_criterion_is_one_for_a_perfect_map_and_lower_for_a_wrong_one():
    points = normalize_embeddings(_randn(300, 8, seed=12, dtype=torch.float32))
    rotation = random_rotation(8, generator=torch.Generator().manual_seed(13))
    target = points @ rotation
    assert mean_cosine_criterion(points @ rotation, target) == pytest.approx(1.0, abs=1e-5)
    assert mean_cosine_criterion(points, target) < 0.9


# --- Hubness ---------------------------------------------------------------------------------------


def test_k_occurrence_on_a_hand_made_case():
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.0], [0.7, 0.1, 0.9, 0.0], [0.95, 0.2, 0.3, 0.1]])
    assert k_occurrence(scores, k=2).tolist() == [3, 1, 2, 0]
    h = hubness(scores, k=2)
    assert h.largest == 3 and h.never == pytest.approx(0.25)
    with pytest.raises(ValueError, match="k: expected an integer from 1 to 4"):
        k_occurrence(scores, k=5)


@pytest.mark.parametrize("seed", [0, 1])
def test_hubness_skewness_equals_scipy(seed):
    scores = cosine_scores(_randn(200, 20, seed=seed), _randn(150, 20, seed=seed + 1))
    counts = k_occurrence(scores, 10)
    assert counts.sum().item() == 10 * 200
    assert hubness(scores, 10).skewness == pytest.approx(float(scipy.stats.skew(counts.double().numpy())), rel=1e-9)


# --- Synthetic spaces, refinement, the adversarial aligner ----------------------------------------


def test_random_rotation_is_a_rotation_with_the_requested_largest_angle():
    for angle in (None, 0.5, 3.0):
        q = random_rotation(10, angle, torch.Generator().manual_seed(14))
        assert torch.allclose(q.T @ q, torch.eye(10), atol=1e-5)
        assert torch.linalg.det(q).item() == pytest.approx(1.0, abs=1e-4)
        if angle is not None:
            assert rotation_angles(q).max().item() == pytest.approx(angle, abs=1e-4)
    with pytest.raises(ValueError, match="max_angle"):
        random_rotation(4, 4.0)


def test_clustered_points_shapes_and_determinism():
    a, top = clustered_points(500, 6, generator=torch.Generator().manual_seed(15))
    b, _ = clustered_points(500, 6, generator=torch.Generator().manual_seed(15))
    assert a.shape == (500, 6) and top.shape == (500,) and torch.equal(a, b)
    assert 1 < len(top.unique()) <= 6
    with pytest.raises(ValueError, match="branching, scales"):
        clustered_points(10, 3, branching=(2, 2), scales=(1.0,))


def _structured_spaces(seed: int, n: int = 1000, d: int = 16):
    z, cluster = clustered_points(n, d, generator=torch.Generator().manual_seed(seed))
    rotation = random_rotation(d, 1.5, torch.Generator().manual_seed(seed + 1))
    g = torch.Generator().manual_seed(seed + 2)
    source = normalize_embeddings(z + 0.1 * torch.randn(n, d, generator=g))
    target = normalize_embeddings((z + 0.1 * torch.randn(n, d, generator=g)) @ rotation)
    return source, target, torch.arange(n)


def test_refinement_recovers_the_map_from_a_rough_start():
    source, target, truth = _structured_spaces(16)
    best = procrustes(source, target)
    rough = random_rotation(16, 0.4, torch.Generator().manual_seed(17)) @ best
    start = precision_at_1(csls_scores(source @ rough, target), truth)
    refined = precision_at_1(csls_scores(source @ refine(source, target, rough), target), truth)
    assert start < 0.5 < 0.95 < refined


def test_refinement_stops_only_where_another_round_would_change_nothing():
    """refine() leaves the loop once a round's dictionary repeats the last one; the map is the one that every
    remaining round would have computed again (a plain loop of all the rounds, written out here)."""
    from mmcourse.alignment import mutual_nearest_neighbours

    source, target, _ = _structured_spaces(16, n=400)
    for start in (torch.eye(16), random_rotation(16, 0.4, torch.Generator().manual_seed(3))):
        w = start
        for _ in range(8):
            i, j = mutual_nearest_neighbours(csls_scores(source @ w, target))
            w = procrustes(source[i], target[j])
        assert torch.allclose(refine(source, target, start, iterations=8), w, atol=1e-6)


def test_criterion_from_given_scores_equals_the_criterion_computed_from_the_points():
    source, target, _ = _structured_spaces(20, n=300, d=8)
    scores = csls_scores(source, target)
    assert mean_cosine_criterion(source, target, scores=scores) == mean_cosine_criterion(source, target)
    with pytest.raises(ValueError, match=r"scores: expected the CSLS scores of shape \(300, 300\)"):
        mean_cosine_criterion(source, target, scores=scores[:10])


def test_aligner_recovers_a_planted_rotation_without_pairs():
    """Clusters of different sizes and shapes, a rotation and noise: adversarial training finds many
    partners (chance is 1/1000), and refinement all that the best orthogonal map finds."""
    source, target, truth = _structured_spaces(18)
    result = adversarial_alignment(source, target, truth=truth, steps=300, record_every=60, seed=0, progress=False)
    history = result.history
    assert len(history.step) == len(history.maps) == len(history.criterion) == len(history.precision) == 6
    assert history.step[0] == 0 and history.step[-1] == 300 and result.maps.shape == (1, 16, 16)
    adversarial = precision_at_1(csls_scores(source @ result.maps[0], target), truth)
    refined = precision_at_1(csls_scores(source @ refine(source, target, result.maps[0]), target), truth)
    ceiling = precision_at_1(csls_scores(source @ procrustes(source, target), target), truth)
    assert adversarial > 0.1 and refined > 0.95 * ceiling and ceiling > 0.9
    assert history.criterion[-1].item() > history.criterion[0].item()


def test_aligner_checks_its_input():
    source, target, truth = _structured_spaces(19, n=100, d=4)
    with pytest.raises(ValueError, match=r"target: expected shape \(n, 4\)"):
        adversarial_alignment(source, torch.randn(100, 5), steps=1, progress=False)
    with pytest.raises(ValueError, match="runs: expected 2"):
        adversarial_alignment(source, torch.stack([target, target]), runs=3, steps=1, progress=False)
    with pytest.raises(ValueError, match="truth: expected an integer tensor of shape"):
        adversarial_alignment(source, target, truth=truth[:50], steps=1, progress=False)
    with pytest.raises(ValueError, match="steps: expected an integer >= 1"):
        adversarial_alignment(source, target, steps=0, progress=False)
    nan = target.clone()
    nan[0, 0] = float("nan")
    with pytest.raises(ValueError, match="target: contains NaN"):
        adversarial_alignment(source, nan, steps=1, progress=False)


def test_parallel_linear_is_independent_linear_layers():
    layer = ParallelLinear(3, 4, 2)
    x = torch.randn(3, 5, 4)
    for r in range(3):
        assert torch.allclose(layer(x)[r], x[r] @ layer.weight[r] + layer.bias[r], atol=1e-6)
    assert Discriminator(4, hidden=8, runs=3)(x).shape == (3, 5)


def test_regression_map_fits_a_linear_relation():
    x = _randn(500, 6, seed=20, dtype=torch.float32)
    y = x @ _randn(6, 3, seed=21, dtype=torch.float32)
    fitted = regression_map(x, y, steps=600, lr=1e-2, progress=False)
    with torch.no_grad():
        assert F.mse_loss(fitted.map(x), y).item() < 0.01 * y.var().item()
    adversarial = regression_map(x, y, adversarial_weight=0.1, steps=20, progress=False)
    assert len(adversarial.train_loss) == 20
    with pytest.raises(ValueError, match="y: expected 500 rows"):
        regression_map(x, y[:10], progress=False)
    with pytest.raises(ValueError, match="adversarial_weight"):
        regression_map(x, y, adversarial_weight=-1.0, progress=False)


def test_rotation_angles_of_a_plane_rotation():
    c, s = math.cos(0.7), math.sin(0.7)
    w = torch.eye(4)
    w[:2, :2] = torch.tensor([[c, s], [-s, c]])
    assert rotation_angles(w).tolist() == pytest.approx([0.7, 0.0], abs=1e-6)
