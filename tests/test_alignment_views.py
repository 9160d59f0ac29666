"""Lesson 04's widgets driven from Python: the training replay and the non-isometry slider show what
their control selects, without training anything."""

import pytest
import torch

from mmcourse.alignment import AdversarialHistory, random_rotation
from mmcourse.experiments.alignment import Spaces
from mmcourse.views.alignment import AdversarialReplay, NonIsometryView, principal_axes


def _history(source, target, steps=(0, 10, 20)):
    """A made-up history: the map moves from the identity to the true rotation."""
    history = AdversarialHistory()
    truth = torch.linalg.lstsq(source, target).solution
    for i, step in enumerate(steps):
        t = i / (len(steps) - 1)
        history.step.append(step)
        history.maps.append(((1 - t) * torch.eye(source.shape[1]) + t * truth)[None])
        history.precision.append(torch.tensor([0.1 + 0.4 * t]))
        history.criterion.append(torch.tensor([0.8 + 0.1 * t]))
        history.discriminator_accuracy.append(torch.tensor([0.9 - 0.3 * t]))
    return history


@pytest.fixture(scope="module")
def spaces():
    g = torch.Generator().manual_seed(0)
    source = torch.nn.functional.normalize(torch.randn(200, 4, generator=g), dim=1)
    rotation = random_rotation(4, generator=g)
    return source, source @ rotation, torch.randint(0, 3, (200,), generator=g)


def test_replay_follows_the_step_slider(spaces):
    source, target, cluster = spaces
    replay = AdversarialReplay(source, target, cluster, _history(source, target), points=150)
    assert replay.shown == {"step": 0, "precision": pytest.approx(0.1), "criterion": pytest.approx(0.8),
                            "discriminator_accuracy": pytest.approx(0.9), "offset": replay.shown["offset"]}
    start = replay.shown["offset"]
    replay.slider.value = 20
    assert replay.shown["step"] == 20 and replay.shown["precision"] == pytest.approx(0.5)
    assert replay.shown["discriminator_accuracy"] == pytest.approx(0.6)
    assert replay.shown["offset"] < 1e-4 < start  # at the true map, each mapped point sits on its partner


def test_replay_without_ground_truth_and_on_empty_history(spaces):
    source, target, cluster = spaces
    history = _history(source, target)
    history.precision = []
    replay = AdversarialReplay(source, target, cluster, history)
    replay.slider.value = 10
    assert replay.shown["precision"] is None and replay.shown["criterion"] == pytest.approx(0.85)
    with pytest.raises(ValueError, match="history: expected at least one recorded step"):
        AdversarialReplay(source, target, cluster, AdversarialHistory())


def test_non_isometry_view_follows_the_warp_slider(spaces):
    source, target, cluster = spaces
    result = {"warps": [0.0, 1.0], "maps": [torch.eye(4), torch.eye(4)],
              "spaces": [Spaces(source, target, torch.eye(4), torch.arange(200), cluster)] * 2,
              "precision": [0.9, 0.4], "criterion": [0.99, 0.97], "ceiling": [0.95, 0.5]}
    view = NonIsometryView(result, points=100)
    assert view.shown == {"warp": 0.0, "precision": 0.9, "criterion": 0.99, "ceiling": 0.95}
    view.slider.value = 1.0
    assert view.shown == {"warp": 1.0, "precision": 0.4, "criterion": 0.97, "ceiling": 0.5}


def test_principal_axes_are_orthonormal_and_ordered():
    g = torch.Generator().manual_seed(1)
    points = torch.randn(500, 3, generator=g) * torch.tensor([3.0, 1.0, 0.1])
    mean, axes = principal_axes(points)
    assert torch.allclose(axes.T @ axes, torch.eye(2), atol=1e-5)
    assert abs(axes[0, 0]) > 0.99 and abs(axes[1, 1]) > 0.99
