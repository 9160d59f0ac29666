"""Lesson 01's widgets driven from Python: moving a control changes the numbers the view shows, as it
should, and only evaluates (no training)."""

import math

import pytest
import torch

from mmcourse.experiments import fusion as ex
from mmcourse.views.fusion import FusionRobustnessView, ModalityWeightsView

METHODS = ("image only", "audio only", "early", "attention")


@pytest.fixture(scope="module")
def trained():
    data = ex.av_data(seed=0, copies=3)
    results = ex.train_av_methods(data, methods=METHODS, epochs=2)
    return data, results, ex.RobustnessGrid(data)


def _no_training(models):
    """Snapshot of every parameter, to check that callbacks leave the models alone."""
    return {m: [p.detach().clone() for p in model.parameters()] for m, model in models.items()}


def test_robustness_view_follows_the_sliders(trained):
    _, results, grid = trained
    view = FusionRobustnessView(results.models, grid)
    before = _no_training(results.models)
    start = dict(view.shown["accuracy"])
    assert view.shown["image_noise"] == 0.3 and view.shown["audio_snr_db"] == 0.0 and list(start) == list(METHODS)
    assert start == {m: grid.accuracy(model, m, 0.3, 0.0) for m, model in results.models.items()}

    view.image_noise.value = 3.0  # more image noise: the image model suffers, the audio model cannot notice
    noisy = view.shown["accuracy"]
    assert view.shown["image_noise"] == 3.0
    assert noisy["image only"] < start["image only"] - 0.2
    assert noisy["audio only"] == start["audio only"]

    view.image_noise.value = 0.3
    view.audio_snr.value = -20.0  # and the other way round
    drowned = view.shown["accuracy"]
    assert drowned["audio only"] < start["audio only"] - 0.2
    assert drowned["image only"] == start["image only"]
    assert all(torch.equal(a, b) for m in before for a, b in zip(before[m], results.models[m].parameters()))


def test_robustness_view_takes_modalities_away(trained):
    _, results, grid = trained
    view = FusionRobustnessView(results.models, grid)
    start = dict(view.shown["accuracy"])
    view.image_missing.value = True
    shown = view.shown["accuracy"]
    assert view.shown["image_noise"] is None and math.isnan(shown["image only"])
    assert shown["audio only"] == start["audio only"] and not math.isnan(shown["early"])
    assert shown["early"] == grid.accuracy(results.models["early"], "early", None, 0.0)
    view.audio_missing.value = True  # nothing left: every model that needs an input is n/a ...
    view.image_missing.value = False  # ... until the image comes back
    assert view.shown["audio_snr_db"] is None and math.isnan(view.shown["accuracy"]["audio only"])
    assert view.shown["accuracy"]["image only"] == start["image only"]


def test_robustness_view_needs_models(trained):
    with pytest.raises(ValueError, match="models"):
        FusionRobustnessView({}, trained[2])


def test_weights_view_shows_the_models_weights_for_the_chosen_sample(trained):
    data, results, _ = trained
    model, test = results.models["attention"], data.clean_test
    view = ModalityWeightsView(model, test["image"], test["waveform"], test["label"])
    assert view.shown["index"] == 0 and view.shown["label"] == int(test["label"][0])
    view.index.value = 7
    image, _, spectrogram = view.sample()
    with torch.no_grad():
        scores, weights = model.eval()(image, spectrogram)  # a Prediction
    assert view.shown["label"] == int(test["label"][7]) and view.shown["prediction"] == int(scores.argmax(1))
    assert view.shown["weights"] == pytest.approx(weights[0].tolist())
    assert sum(view.shown["weights"]) == pytest.approx(1.0)
    again = dict(view.shown)
    view.audio_snr.value = 0.0
    view.audio_snr.value = 20.0
    assert view.shown == again  # the same sample and levels give the same noise, so the same numbers


def test_weights_view_moves_weight_away_from_a_drowned_image(trained):
    data, results, _ = trained
    test = data.clean_test
    view = ModalityWeightsView(results.models["attention"], test["image"], test["waveform"], test["label"])

    def mean_image_weight(noise):
        view.image_noise.value = noise
        total = 0.0
        for i in range(20):
            view.index.value = i
            total += view.shown["weights"][0]
        return total / 20

    assert mean_image_weight(3.0) < mean_image_weight(0.0)


def test_weights_view_checks_its_data(trained):
    data, results, _ = trained
    test = data.clean_test
    with pytest.raises(ValueError, match="same number"):
        ModalityWeightsView(results.models["attention"], test["image"][:3], test["waveform"][:4], test["label"][:3])


def test_low_rank_picture_sums_to_the_tensor_fusion_weight():
    import matplotlib.pyplot as plt

    from mmcourse.fusion import LowRankFusion
    from mmcourse.views.fusion import low_rank_weight

    torch.manual_seed(0)
    lmf = LowRankFusion([5, 4], 3, rank=3)
    fig, axes = plt.subplots(1, 4)
    low_rank_weight(axes, lmf, output=2)
    grids = [torch.as_tensor(ax.images[0].get_array().data) for ax in axes]
    full = lmf.to_tensor_fusion().linear.weight[2].detach().view(6, 5)  # (d_1 + 1) x (d_2 + 1) for output 2
    assert torch.allclose(grids[0], full, atol=1e-6)  # the first panel is the tensor-fusion weight grid
    assert torch.allclose(sum(grids[1:]), full, atol=1e-6)  # ... and the sum of the rank-one panels
    assert all(torch.linalg.matrix_rank(g) == 1 for g in grids[1:])
    with pytest.raises(ValueError, match="rank \\+ 1 = 4 axes"):
        low_rank_weight(axes[:3], lmf)
    with pytest.raises(ValueError, match="two modalities"):
        low_rank_weight(axes, LowRankFusion([2, 2, 2], 3, rank=3))
    plt.close(fig)
