"""The quantification toolkit against hand-made cases with known answers."""

import math
from typing import NamedTuple

import fake_accelerator as fake
import pytest
import torch
from torch import nn

from mmcourse.diagnostics import (
    Interval,
    bootstrap_interval,
    delete_patches,
    deletion_auc,
    deletion_curve,
    mean_ablation,
    modality_controls,
    normal_interval,
    paired_difference,
    random_order,
    saliency_order,
    shuffled_pairs,
    unimodal_baselines,
)


# ----------------------------------------------------------------------------- bootstrap intervals
def test_bootstrap_of_a_constant_is_a_point():
    assert bootstrap_interval(torch.full((50,), 0.75)) == Interval(0.75, 0.75, 0.75)
    assert bootstrap_interval(torch.full((7,), 0.3)) == pytest.approx((0.3, 0.3, 0.3))


def test_bootstrap_of_accuracies_matches_the_normal_approximation():
    n, p = 2000, 0.8
    correct = torch.zeros(n)
    correct[: int(p * n)] = 1.0  # mean exactly p
    interval = bootstrap_interval(correct)
    assert interval.estimate == pytest.approx(p)
    assert interval.low < p < interval.high
    normal_width = 2 * 1.96 * math.sqrt(p * (1 - p) / n)
    assert interval.high - interval.low == pytest.approx(normal_width, rel=0.15)
    assert bootstrap_interval(correct.bool()) == interval  # bools count as 0/1
    scores = torch.rand(100, generator=torch.Generator().manual_seed(0))
    assert bootstrap_interval(scores, seed=3) == bootstrap_interval(scores, seed=3)
    assert bootstrap_interval(scores, seed=3) != bootstrap_interval(scores, seed=4)
    # a lower level gives a narrower interval around the same estimate
    narrow = bootstrap_interval(correct, level=0.5)
    assert interval.low < narrow.low < narrow.high < interval.high
    assert str(Interval(0.9123, 0.887, 0.9344)) == "0.912 [0.887, 0.934]"


def test_bootstrap_of_a_statistic_of_several_tensors():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, generator=g)
    y = 0.6 * x + 0.8 * torch.randn(500, generator=g)  # correlation 0.6

    def correlation(a, b):
        return torch.corrcoef(torch.stack([a, b]))[0, 1]

    interval = bootstrap_interval((x, y), correlation, n_boot=500)
    assert interval.estimate == pytest.approx(correlation(x, y).item())
    assert interval.low < 0.6 < interval.high
    assert 0.05 < interval.high - interval.low < 0.2  # about 2 * 1.96 * (1 - 0.36) / sqrt(500) = 0.11
    # rows stay paired: the ratio of two sums where y = 2 x on every row is exactly 2 on every resample
    positive = torch.rand(100, generator=g) + 0.1
    ratio = bootstrap_interval((2 * positive, positive), lambda a, b: a.sum() / b.sum(), n_boot=200)
    assert ratio == pytest.approx((2.0, 2.0, 2.0))


def test_paired_difference():
    g = torch.Generator().manual_seed(0)
    b = (torch.rand(300, generator=g) < 0.7).float()
    assert paired_difference(b, b) == Interval(0.0, 0.0, 0.0)
    scores = torch.rand(300, generator=g)
    assert paired_difference(scores + 0.25, scores) == pytest.approx((0.25, 0.25, 0.25))
    # a is right on 40 more of 1000 rows than b and never worse: the difference is a 0/1 mean of p = 0.04
    a = torch.zeros(1000)
    a[:40] = 1.0
    interval = paired_difference(a, torch.zeros(1000))
    assert interval.estimate == pytest.approx(0.04)
    width = 2 * 1.96 * math.sqrt(0.04 * 0.96 / 1000)
    assert interval.high - interval.low == pytest.approx(width, rel=0.15)
    assert interval.low > 0


# ----------------------------------------------------------------------------- modality controls
def test_mean_ablation():
    inputs = {"a": torch.tensor([[1.0, 2.0], [3.0, 6.0]]), "b": torch.tensor([5.0, 7.0])}
    out = mean_ablation(inputs, ["a"])
    assert torch.equal(out["a"], torch.tensor([[2.0, 4.0], [2.0, 4.0]]))
    assert out["b"] is inputs["b"]
    assert torch.equal(inputs["a"], torch.tensor([[1.0, 2.0], [3.0, 6.0]]))  # the original is untouched
    tokens = mean_ablation({"t": torch.tensor([[4, 1], [4, 2], [3, 2]])}, "t")["t"]
    assert torch.equal(tokens, torch.tensor([[4, 2]] * 3))  # integer columns: the most frequent value


def test_shuffled_pairs_is_a_derangement():
    x = torch.arange(20.0)[:, None] * torch.ones(1, 3)
    inputs = {"x": x, "y": torch.arange(20)}
    for seed in range(5):
        out = shuffled_pairs(inputs, "x", torch.Generator().manual_seed(seed))
        assert out["y"] is inputs["y"]
        assert not (out["x"] == x).all(dim=1).any()  # no row keeps its partner
        assert torch.equal(out["x"][:, 0].sort().values, x[:, 0])  # the same rows, permuted
    first = shuffled_pairs(inputs, "x", torch.Generator().manual_seed(1))["x"]
    assert torch.equal(first, shuffled_pairs(inputs, "x", torch.Generator().manual_seed(1))["x"])
    assert torch.equal(shuffled_pairs({"x": torch.tensor([1, 2])}, "x")["x"], torch.tensor([2, 1]))


def test_modality_controls_of_a_model_that_reads_one_input():
    inputs = {"a": torch.tensor([[1.0], [0.0], [0.0]]), "b": torch.tensor([[5.0], [-1.0], [2.0]])}
    labels = torch.tensor([1, 0, 0])

    def predict(d):  # class 1 when a > 0.5; b is ignored
        return torch.cat([0.5 - d["a"], d["a"] - 0.5], dim=1)

    results = modality_controls(predict, inputs, labels, generator=torch.Generator().manual_seed(0))
    assert results == pytest.approx({
        "all": 1.0,
        "without a": 2 / 3,  # a = 1/3 everywhere: class 0 for every row
        "without b": 1.0,
        "modality-blind": 2 / 3,
        "shuffled a": 1 / 3,  # both derangements of (1, 0, 0) leave exactly one 0 in place
        "shuffled b": 1.0,
    })
    assert list(modality_controls(predict, inputs, labels, names=["b"])) == [
        "all", "without b", "modality-blind", "shuffled b"]


def test_modality_controls_of_an_interaction_is_chance_when_either_is_shuffled():
    a, b = torch.tensor([0.0, 0.0, 1.0, 1.0]).repeat(100), torch.tensor([0.0, 1.0, 0.0, 1.0]).repeat(100)
    labels = (a != b).long()  # XOR: neither input alone says anything about the label

    def predict(d):
        product = (2 * d["a"] - 1) * (2 * d["b"] - 1)  # +1 when equal
        return torch.stack([product, -product], dim=1)

    results = modality_controls(predict, {"a": a, "b": b}, labels, generator=torch.Generator().manual_seed(0))
    assert results["all"] == 1.0
    assert results["without a"] == results["without b"] == results["modality-blind"] == 0.5
    assert results["shuffled a"] == pytest.approx(0.5, abs=0.08)
    assert results["shuffled b"] == pytest.approx(0.5, abs=0.08)
    assert modality_controls(predict, {"a": a, "b": b}, labels, metric=lambda s, y: len(y))["all"] == 400


class Output(NamedTuple):
    scores: torch.Tensor
    hidden: torch.Tensor


class LinearWithOutput(nn.Linear):
    def forward(self, x):
        return Output(super().forward(x), x)


def test_unimodal_baselines():
    g = torch.Generator().manual_seed(0)

    def split(n):
        a, b = torch.randn(n, 4, generator=g), torch.randn(n, 4, generator=g)
        return {"a": a, "b": b, "label": (a[:, 0] + a[:, 1] > 0).long()}  # only a says anything

    torch.manual_seed(0)
    results = unimodal_baselines(lambda name: nn.Linear(4, 2), split(400), split(400), ["a", "b"],
                                 epochs=15, lr=0.05, device="cpu")
    assert results["a"] > 0.9
    assert results["b"] == pytest.approx(0.5, abs=0.1)
    named = unimodal_baselines(lambda name: LinearWithOutput(4, 2), split(200), split(200), "a", epochs=15,
                               lr=0.05, device="cpu")
    assert list(named) == ["a"] and named["a"] > 0.9


# ----------------------------------------------------------------------------- deletion curves
def test_delete_patches_paints_exactly_the_chosen_patches():
    image = torch.arange(16.0).reshape(1, 1, 4, 4)
    out = delete_patches(image, torch.tensor([[False, True, True, False]]), 2, -1.0)
    expected = torch.tensor([[0.0, 1.0, -1, -1], [4, 5, -1, -1], [-1, -1, 10, 11], [-1, -1, 14, 15]])
    assert torch.equal(out[0, 0], expected)
    assert torch.equal(image, torch.arange(16.0).reshape(1, 1, 4, 4))  # a new tensor
    images = torch.zeros(2, 3, 4, 4)
    deleted = torch.tensor([[True, False, False, False], [False, False, False, True]])
    fill = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    for f in (fill, fill[:, :, None, None]):
        out = delete_patches(images, deleted, 2, f)
        assert torch.equal(out[0, :, :2, :2], fill[0, :, None, None].expand(3, 2, 2))
        assert torch.equal(out[1, :, 2:, 2:], fill[1, :, None, None].expand(3, 2, 2))
        assert out.sum() == 4 * (1 + 2 + 3) + 4 * (4 + 5 + 6)  # nothing else painted


def test_saliency_and_random_orders():
    saliency = torch.tensor([[0.1, 0.5, 0.1, 0.9], [1.0, 1.0, 1.0, 1.0]])
    assert torch.equal(saliency_order(saliency), torch.tensor([[3, 1, 0, 2], [0, 1, 2, 3]]))  # ties: stable
    first = torch.tensor([[False, True, False, True, False, False]] * 50)
    order = random_order(50, 6, torch.Generator().manual_seed(0), first=first)
    assert torch.equal(order.sort(dim=1).values, torch.arange(6).expand(50, 6))  # permutations
    assert torch.equal(order[:, :2].sort(dim=1).values, torch.tensor([[1, 3]] * 50))
    assert len({tuple(row) for row in order.tolist()}) > 10  # random, not one fixed order
    assert torch.equal(random_order(3, 5, torch.Generator().manual_seed(2)),
                       random_order(3, 5, torch.Generator().manual_seed(2)))


def _key_patch_task(n: int, grid: int = 2, seed: int = 0):
    """Images of ones with one key patch of twos, and a "model" that is right iff a 2 is left."""
    g = torch.Generator().manual_seed(seed)
    key = torch.randint(grid * grid, (n,), generator=g)
    key_mask = nn.functional.one_hot(key, grid * grid).bool()
    images = delete_patches(torch.ones(n, 1, 4, 4), key_mask, grid, 2.0)

    def predict(x):
        found = (x == 2).flatten(1).any(dim=1).float()
        return torch.stack([1 - found, found], dim=1)

    return images, key_mask, torch.ones(n, dtype=torch.long), predict


def test_deletion_curve_of_a_model_that_needs_one_patch():
    images, key_mask, labels, predict = _key_patch_task(400)
    saliency = saliency_order((images - 1).flatten(1).reshape(400, 2, 2, 2, 2).sum((2, 4)).flatten(1))
    curve = deletion_curve(predict, images, saliency, 2, labels, 0.0)
    assert torch.equal(curve, torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0]))
    g = torch.Generator().manual_seed(0)
    shuffled = deletion_curve(predict, images, random_order(400, 4, g), 2, labels, 0.0)
    assert shuffled.tolist() == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0], abs=0.08)  # P(key kept) = 1 - k/4
    assert deletion_auc(curve) == pytest.approx(0.125)
    assert deletion_auc(shuffled) == pytest.approx(0.5, abs=0.05)
    # random among two patches, one of them the key: kept with probability 1/2 after one deletion
    first = key_mask | nn.functional.one_hot((key_mask.long().argmax(1) + 1) % 4, 4).bool()
    within = deletion_curve(predict, images, random_order(400, 4, g, first), 2, labels, 0.0, steps=[0, 1, 2, 4])
    assert within.tolist() == pytest.approx([1.0, 0.5, 0.0, 0.0], abs=0.08)
    assert deletion_auc(within, [0, 1, 2, 4]) == pytest.approx(0.25 * 0.75 + 0.25 * 0.25, abs=0.03)


def test_deletion_auc_of_a_constant_curve():
    assert deletion_auc(torch.full((17,), 0.3)) == pytest.approx(0.3)
    assert deletion_auc(torch.tensor([0.6, 0.6, 0.6]), steps=[0, 1, 4]) == pytest.approx(0.6)
    assert deletion_auc(torch.tensor([1.0, 0.0]), steps=[0, 9]) == pytest.approx(0.5)


# ----------------------------------------------------------------------------- bad input
def _pair(n=4):
    return {"a": torch.randn(n, 2), "b": torch.randn(n)}


def _model(d):
    return torch.zeros(len(d["b"]), 2)


IMAGES, ORDER, LABELS = torch.zeros(2, 1, 4, 4), torch.arange(4).repeat(2, 1), torch.zeros(2, dtype=torch.long)
BAD_INPUT = [
    (lambda: bootstrap_interval(torch.tensor([])), "values"),
    (lambda: bootstrap_interval(torch.tensor([1.0, math.nan])), "values"),
    (lambda: bootstrap_interval((torch.ones(3), torch.ones(4)), lambda a, b: 0.0), "values"),
    (lambda: bootstrap_interval(torch.ones(3, 2)), "statistic"),
    (lambda: bootstrap_interval(torch.ones(3), n_boot=0), "n_boot"),
    (lambda: bootstrap_interval(torch.ones(3), level=1.0), "level"),
    (lambda: bootstrap_interval(torch.ones(3), level=0.0), "level"),
    (lambda: bootstrap_interval(torch.ones(3), lambda x: math.nan), "statistic"),
    (lambda: paired_difference(torch.ones(3), torch.ones(4)), "correct_b"),
    (lambda: paired_difference(torch.ones(0), torch.ones(0)), "correct_a"),
    (lambda: paired_difference(torch.ones(3, 2), torch.ones(3, 2)), "correct_a"),
    (lambda: mean_ablation(_pair(), ["c"]), "names"),
    (lambda: mean_ablation({"a": torch.ones(3), "b": torch.ones(4)}, ["a"]), "inputs"),
    (lambda: mean_ablation({"a": torch.ones(0)}, ["a"]), "inputs"),
    (lambda: mean_ablation({"a": torch.tensor([1.0, math.nan])}, ["a"]), "inputs"),
    (lambda: shuffled_pairs(_pair(), "c"), "name"),
    (lambda: shuffled_pairs(_pair(1), "a"), "inputs"),
    (lambda: modality_controls(_model, _pair(), torch.zeros(3, dtype=torch.long)), "labels"),
    (lambda: modality_controls(_model, _pair(), torch.zeros(4, dtype=torch.long), names=["a", "c"]), "names"),
    (lambda: unimodal_baselines(nn.Linear, _pair(), _pair(), ["c"]), "modalities"),
    (lambda: unimodal_baselines(nn.Linear, _pair(), _pair(), ["a"], target="y"), "target"),
    (lambda: delete_patches(torch.zeros(2, 4, 4), ORDER < 1, 2, 0.0), "images"),
    (lambda: delete_patches(torch.zeros(0, 1, 4, 4), torch.zeros(0, 4, dtype=torch.bool), 2, 0.0), "images"),
    (lambda: delete_patches(torch.zeros(2, 1, 4, 6), ORDER < 1, 4, 0.0), "grid"),
    (lambda: delete_patches(IMAGES, ORDER, 2, 0.0), "deleted"),
    (lambda: delete_patches(IMAGES, ORDER[:1] < 1, 2, 0.0), "deleted"),
    (lambda: delete_patches(IMAGES, ORDER < 1, 2, torch.zeros(2, 3)), "fill"),
    (lambda: delete_patches(IMAGES, ORDER < 1, 2, "white"), "fill"),
    (lambda: saliency_order(torch.ones(4)), "saliency"),
    (lambda: saliency_order(torch.tensor([[1.0, math.nan]])), "saliency"),
    (lambda: random_order(2, 4, first=torch.ones(2, 3, dtype=torch.bool)), "first"),
    (lambda: deletion_curve(lambda x: x, IMAGES, ORDER % 2, 2, LABELS, 0.0), "order"),
    (lambda: deletion_curve(lambda x: x, IMAGES, ORDER[:, :3], 2, LABELS, 0.0), "order"),
    (lambda: deletion_curve(lambda x: x, IMAGES, ORDER.tolist(), 2, LABELS, 0.0), "order"),
    (lambda: deletion_curve(lambda x: x, IMAGES, ORDER, 2, LABELS[:1], 0.0), "labels"),
    (lambda: deletion_curve(lambda x: x, IMAGES, ORDER, 2, LABELS, 0.0, steps=[0, 5]), "steps"),
    (lambda: deletion_curve(lambda x: x, IMAGES, ORDER, 3, LABELS, 0.0), "grid"),
    (lambda: deletion_auc(torch.ones(1)), "curve"),
    (lambda: deletion_auc(torch.tensor([1.0, math.nan])), "curve"),
    (lambda: deletion_auc(torch.ones(3), steps=[0, 1]), "steps"),
    (lambda: deletion_auc(torch.ones(3), steps=[1, 2, 3]), "steps"),
]


@pytest.mark.parametrize("call, argument", BAD_INPUT)
def test_bad_input_names_the_argument(call, argument):
    with pytest.raises(ValueError, match=f"^{argument}: "):
        call()


def test_paired_difference_over_copies_resamples_whole_samples():
    # 3 copies of 4 samples: a is right on every copy of samples 0 and 1, b on every copy of sample 0.
    a = torch.tensor([1.0, 1.0, 0.0, 0.0] * 3)
    b = torch.tensor([1.0, 0.0, 0.0, 0.0] * 3)
    interval = paired_difference(a, b, copies=3)
    assert interval.estimate == pytest.approx(0.25)
    # per sample the difference is 0 or 1, so the interval is that of 4 clustered values, much wider
    # than if the 12 rows were taken as independent
    rows = paired_difference(a, b)
    assert rows.estimate == pytest.approx(0.25) and interval.high - interval.low > rows.high - rows.low
    with pytest.raises(ValueError, match="copies"):
        paired_difference(a, b, copies=5)


def test_normal_interval_is_mean_plus_minus_z_sd_over_root_n():
    values = torch.tensor([0.6, 0.7, 0.8, 0.9])
    interval = normal_interval(values)
    half = 1.959964 * values.double().std().item() / 2
    assert interval.estimate == pytest.approx(0.75)
    assert (interval.low, interval.high) == pytest.approx((0.75 - half, 0.75 + half), abs=1e-6)
    assert normal_interval(values, level=0.5).high < interval.high
    with pytest.raises(ValueError, match="values"):
        normal_interval([0.5])
    with pytest.raises(ValueError, match="level"):
        normal_interval(values, level=1.5)


def test_deletion_curve_per_sample_and_its_areas():
    images = torch.zeros(2, 1, 4, 4)
    images[:, :, :2, :2] = 1.0  # patch 0 of a 2x2 grid is the one that matters

    def predict(x):  # right while patch 0 is intact
        intact = x[:, 0, :2, :2].mean((1, 2)) > 0.5
        return torch.stack([(~intact).float(), intact.float()], 1)

    labels = torch.ones(2, dtype=torch.long)
    order = torch.tensor([[0, 1, 2, 3], [3, 2, 1, 0]])  # sample 0 deletes patch 0 first, sample 1 last
    correct = deletion_curve(predict, images, order, 2, labels, 0.0, per_sample=True)
    assert correct.shape == (5, 2)
    assert correct[:, 0].tolist() == [1, 0, 0, 0, 0] and correct[:, 1].tolist() == [1, 1, 1, 1, 0]
    assert torch.equal(correct.mean(1), deletion_curve(predict, images, order, 2, labels, 0.0))
    areas = deletion_auc(correct)
    assert areas.shape == (2,) and areas.tolist() == pytest.approx([0.125, 0.875])


# ----------------------------------------------------------------------------- on a device (issue 31)
FAKE = fake.unsupported()
needs_fake = pytest.mark.skipif(FAKE is not None, reason=f"fake accelerator: {FAKE}")


@needs_fake
@pytest.mark.parametrize("float64", [True, False], ids=["float64", "no-float64-like-mps"])
def test_intervals_of_device_tensors_are_the_cpus(float64):
    """``torch.quantile`` met a CPU ``q`` with device values, and float64 fails on Apple's MPS (the fake
    device's MPS-like mode): the intervals are computed on the CPU, the same numbers on every device."""
    g = torch.Generator().manual_seed(0)
    values, a, b = torch.rand(40, generator=g), torch.rand(60, generator=g) > 0.4, torch.rand(60, generator=g) > 0.5

    def intervals(values, a, b):
        return (bootstrap_interval(values, n_boot=100), bootstrap_interval(a, n_boot=100, seed=1),
                bootstrap_interval((values,), lambda x: x.max(), n_boot=20),
                paired_difference(a, b, n_boot=100), paired_difference(a.float(), b, n_boot=100, copies=3),
                normal_interval(values))

    on_cpu = intervals(values, a, b)
    device = fake.device()
    with fake.settings(float64=float64):
        on_device = intervals(values.to(device), a.to(device), b.to(device))
        assert paired_difference(a.to(device), b, n_boot=100) == on_cpu[3]  # one on the CPU, one on the device
    assert on_device == on_cpu


@needs_fake
def test_deletion_curve_of_device_images_takes_a_cpu_order():
    """:func:`random_order` draws with a CPU generator; ``deletion_curve`` moves the order (and
    ``delete_patches`` a CPU mask or fill) to the images' device."""
    g = torch.Generator().manual_seed(0)
    images, fill = torch.rand(4, 3, 8, 8, generator=g), torch.rand(4, 3, generator=g)
    labels, order = torch.arange(4) % 3, random_order(4, 16, generator=g)

    def predict(x):
        return x.flatten(1)[:, :3]

    on_cpu = deletion_curve(predict, images, order, 4, labels, fill, per_sample=True)
    device = fake.device()
    on_device = deletion_curve(predict, images.to(device), order, 4, labels.to(device), fill, per_sample=True)
    assert on_device.device.type == "cpu" and torch.equal(on_device, on_cpu)
    deleted = order < 5
    painted = delete_patches(images.to(device), deleted, 4, fill)
    assert painted.device == device and torch.equal(painted.cpu(), delete_patches(images, deleted, 4, fill))
