"""Lesson 06's widget driven from Python: moving a control changes the numbers the view shows, and only
evaluates (no training)."""

import pytest
import torch

from mmcourse.diagnostics import normal_interval
from mmcourse.experiments import meta as ex
from mmcourse.views.meta import FewShotView


@pytest.fixture(scope="module")
def setup():
    data = ex.meta_data(seed=3)
    torch.manual_seed(0)
    encoders = {m: ex.build_encoder(m) for m in ex.MODALITIES}  # untrained: the view only evaluates
    embeddings = {m: ex.embed(encoders[m], data.test[m]) for m in ex.MODALITIES}
    return data, encoders, embeddings


def test_the_view_follows_its_controls(setup):
    data, encoders, embeddings = setup
    before = {m: [p.detach().clone() for p in e.parameters()] for m, e in encoders.items()}
    view = FewShotView(data, embeddings, episodes=30)
    assert view.shown["n_way"] == 4 and view.shown["k_shot"] == 5 and view.shown["modality"] == "both"
    expected = normal_interval(ex.few_shot_accuracy(data, embeddings, 4, 5, episodes=30))
    assert view.shown["accuracy"] == pytest.approx(expected.estimate)
    assert view.shown["interval"] == pytest.approx((expected.low, expected.high))

    view.n_way.value = 2
    assert view.shown["chance"] == 0.5 and view.shown["n_way"] == 2
    view.modality.value = "audio"
    view.k_shot.value = 1
    audio = ex.few_shot_accuracy(data, {"audio": embeddings["audio"]}, 2, 1, episodes=30).mean().item()
    assert view.shown["accuracy"] == pytest.approx(audio) and view.shown["modality"] == "audio"
    assert all(torch.equal(a, b) for m in before for a, b in zip(before[m], encoders[m].parameters()))


def test_the_view_needs_both_modalities(setup):
    data, _, embeddings = setup
    with pytest.raises(ValueError, match="embeddings"):
        FewShotView(data, {"image": embeddings["image"]})
