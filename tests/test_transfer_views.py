"""Lesson 08's views driven from Python: moving a control changes what they show, and nothing trains."""

import pytest
import torch

from mmcourse.experiments.transfer import SharingResult
from mmcourse.transfer import soft_targets
from mmcourse.views.transfer import DistillationView, MultiTaskView

TEMPERATURES, ALPHAS = (1.0, 2.0, 4.0), (0.0, 0.5, 1.0)


@pytest.fixture
def distillation_view():
    g = torch.Generator().manual_seed(0)
    grid = {(t, a): 0.4 + 0.01 * i + 0.1 * a for i, t in enumerate(TEMPERATURES) for a in ALPHAS}
    logits = 3 * torch.randn(3, 10, generator=g)
    return DistillationView(torch.rand(3, 1, 8, 8, generator=g), logits, torch.tensor([3, 1, 4]), grid,
                            baseline=0.42, teacher=0.8)


def test_distillation_view_reads_the_grid_and_softens_the_labels(distillation_view):
    view = distillation_view
    assert view.shown["temperature"] == 2.0 and view.shown["alpha"] == 0.5  # the middle tau and alpha
    assert view.shown["accuracy"] == pytest.approx(0.46) and view.shown["gain"] == pytest.approx(0.04)
    view.alpha.value = 1.0
    assert view.shown["accuracy"] == pytest.approx(0.51) and view.shown["gain"] == pytest.approx(0.09)
    view.temperature.value = 4.0
    view.alpha.value = 0.0
    assert view.shown["accuracy"] == pytest.approx(0.42) and view.shown["gain"] == pytest.approx(0.0)
    assert torch.allclose(torch.tensor(view.shown["soft_labels"]), soft_targets(view.logits, 4.0))
    hot = view.shown["soft_labels"]
    view.temperature.value = 1.0
    cold = view.shown["soft_labels"]
    assert all(max(c) > max(h) for c, h in zip(cold, hot))  # a lower temperature sharpens every row


def test_distillation_view_opens_where_it_is_told():
    grid = {(t, a): 0.4 + 0.01 * i + 0.1 * a for i, t in enumerate(TEMPERATURES) for a in ALPHAS}
    view = DistillationView(torch.rand(1, 1, 8, 8), torch.randn(1, 10), torch.tensor([0]), grid, 0.4, 0.8,
                            start=(4.0, 1.0))
    assert (view.shown["temperature"], view.shown["alpha"]) == (4.0, 1.0)
    assert view.shown["accuracy"] == pytest.approx(0.52)
    with pytest.raises(ValueError, match="start"):
        DistillationView(torch.rand(1, 1, 8, 8), torch.randn(1, 10), torch.tensor([0]), grid, 0.4, 0.8,
                         start=(8.0, 0.5))


def test_distillation_view_checks_its_input():
    grid = {(1.0, 0.5): 0.5, (2.0, 0.5): 0.5, (1.0, 1.0): 0.5}  # (2.0, 1.0) is missing
    with pytest.raises(ValueError, match="grid"):
        DistillationView(torch.rand(1, 1, 8, 8), torch.randn(1, 10), torch.tensor([0]), grid, 0.4, 0.8)
    full = {(1.0, 0.5): 0.5}
    with pytest.raises(ValueError, match="same number"):
        DistillationView(torch.rand(2, 1, 8, 8), torch.randn(1, 10), torch.tensor([0]), full, 0.4, 0.8)


def _result(shared, separate):
    return SharingResult({t: torch.tensor(v) for t, v in shared.items()},
                         {t: torch.tensor(v) for t, v in separate.items()})


def test_multitask_view_follows_the_task_selector():
    full = _result({"colour": [1.0, 1, 0, 1], "size": [1.0, 1, 1, 1]},
                   {"colour": [0.0, 1, 0, 1], "size": [1.0, 0, 1, 1]})
    little = _result({"colour": [0.0, 0, 0, 1], "size": [1.0, 0, 0, 0]},
                     {"colour": [0.0, 1, 0, 1], "size": [0.0, 0, 0, 1]})
    view = MultiTaskView({"full": full, "little": little})
    assert view.shown["task"] == "colour"
    assert view.shown["full"]["shared"] == 0.75 and view.shown["full"]["separate"] == 0.5
    assert view.shown["little"]["difference"][0] == pytest.approx(-0.25)
    view.task.value = "size"
    assert view.shown["task"] == "size" and view.shown["full"]["shared"] == 1.0
    low, high = view.shown["full"]["difference"][1:]
    assert low <= 0.25 <= high
    with pytest.raises(ValueError, match="results"):
        MultiTaskView({})
