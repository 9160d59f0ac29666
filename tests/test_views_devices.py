"""Issue 31: the views of lessons 01, 03, 04 and 05 draw tensors that live on an accelerator (a learner with a
GPU passes a model's output straight to a view). Each public drawing function and widget that takes tensors is
called once with tensors on the fake accelerator (tests/fake_accelerator.py) and must draw."""

from __future__ import annotations

import fake_accelerator as fake
import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REASON = fake.unsupported()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"fake accelerator: {REASON}")


@pytest.fixture(scope="module")
def dev() -> torch.device:
    fake.install()
    return fake.device()


@pytest.fixture
def shown(monkeypatch):
    """The figures the views show (``plt.show`` records them); all figures are closed afterwards."""
    figures = []
    monkeypatch.setattr(plt, "show", lambda: figures.append(plt.gcf()))
    yield figures
    plt.close("all")


def _on(value, dev):
    """``value`` with every tensor in it moved to ``dev`` (dicts and lists followed)."""
    if isinstance(value, torch.Tensor):
        return value.to(dev)
    if isinstance(value, dict):
        return {k: _on(v, dev) for k, v in value.items()}
    if isinstance(value, list):
        return [_on(v, dev) for v in value]
    return value


def _drew(figures) -> bool:
    return bool(figures) and all(fig.axes for fig in figures)


# ----------------------------------------------------------------------------- lesson 01: fusion
def test_fusion_pictures_draw_device_tensors(dev, shown):
    from mmcourse.fusion import LowRankFusion
    from mmcourse.views import fusion as views

    fig, axes = plt.subplots(1, 5)
    views.tensor_fusion_grid(axes[0], torch.randn(3).to(dev), torch.randn(4).to(dev))
    torch.manual_seed(0)
    fusion = LowRankFusion([3, 4], 5, rank=3).to(dev)
    views.low_rank_weight(axes[1:], fusion)
    fig2, ax = plt.subplots()
    views.modality_weights(ax, torch.tensor([0.3, 0.7]).to(dev))
    assert all(a.images for a in axes) and len(ax.patches) == 2
    levels = type("Grid", (), {"image_noises": [0.0, 1.0], "audio_snrs": [10.0, 0.0]})()
    weights = {k: torch.tensor([[0.4, 0.6], [0.5, 0.5]]).to(dev) for k in ("image_noise", "audio_snr_db")}
    views.attention_weight_curves(weights, levels)
    g = torch.Generator().manual_seed(0)
    train = {"image": torch.rand(2, 1, 8, 8, generator=g), "audio": torch.rand(2, 1, 32, 40, generator=g),
             "image_noise": torch.tensor([0.0, 1.0]), "audio_snr_db": torch.tensor([20.0, 0.0])}
    views.sensor_failure_examples(_on(train, dev), {"clean": 0, "noisy": 1})
    pairs = {"image": torch.rand(2, 3, 32, 32, generator=g), "label": torch.tensor([0, 1])}
    views.caption_pairs(_on(pairs, dev), [0, 1])
    assert len(shown) == 3 and _drew(shown)


@pytest.fixture(scope="module")
def av_trained():
    from mmcourse.experiments import fusion as ex

    data = ex.av_data(seed=0, copies=1)
    results = ex.train_av_methods(data, methods=("attention",), epochs=1)
    return data, results


def test_modality_weights_view_runs_a_model_on_the_device(dev, av_trained, shown):
    from mmcourse.views.fusion import ModalityWeightsView

    data, results = av_trained
    model = results.models["attention"]
    test = data.clean_test
    n = 3
    cpu_view = ModalityWeightsView(model, test["image"][:n], test["waveform"][:n], test["label"][:n])
    expected = cpu_view.shown
    for inputs_on in ("cpu", dev):  # the model on the device, its inputs on the CPU or on the device
        model.to(dev)
        try:
            view = ModalityWeightsView(model, *(_on(test[k][:n], inputs_on) for k in ("image", "waveform", "label")))
        finally:
            model.cpu()
        assert view.shown["prediction"] == expected["prediction"]
        assert view.shown["weights"] == pytest.approx(expected["weights"], abs=1e-5)
    assert _drew(shown)


# ----------------------------------------------------------------------------- lesson 03: attention
@pytest.fixture(scope="module")
def questions():
    from mmcourse.data import as_tensors, load_shapes

    shapes = load_shapes(n_train=3, n_validation=1, n_test=1, question_types=["colour", "exists"], seed=3)
    data = as_tensors(shapes["train"], ["image", "masks", "question_ids", "question_object", "answer_id"])
    g = torch.Generator().manual_seed(0)
    weights = torch.softmax(3 * torch.randn(3, 2, data["question_ids"].shape[1], 64, generator=g), dim=-1)
    return data, weights, torch.randn(3, 5, generator=g)


def test_attention_pictures_draw_device_tensors(dev, questions, shown):
    from mmcourse.experiments.attention import Deletion
    from mmcourse.views import attention as views

    data, weights, scores = questions
    test, weights, scores = _on(data, dev), weights.to(dev), scores.to(dev)
    fig, ax = plt.subplots()
    views.show_attention(ax, test["image"][0], weights[0, 0, 0], test["masks"][0], 0, title="device")
    assert len(ax.images) == 2
    views.soft_lookup(torch.tensor([0.2, 0.8]).to(dev), torch.eye(3)[:2].to(dev), ["red", "green"])
    views.scene_and_silhouette(test["image"][0], (test["image"][0].sum(0) > 0.5).float())
    views.named_word(test["question_object"][0])
    views.attention_examples(test, weights, scores, [0, 1])
    views.attention_case(test, weights, scores, 0, "device")
    curves = {"attention": torch.tensor([0.9, 0.5, 0.4]).to(dev)}
    views.deletion_plot(Deletion([0, 1, 2], curves, {"attention": torch.tensor(0.575).to(dev)}, {}, None))
    assert len(shown) == 5 and _drew(shown)


def test_attention_explorer_takes_device_tensors(dev, questions, shown):
    from mmcourse.views.attention import AttentionExplorer

    data, weights, _ = questions
    cpu = AttentionExplorer(weights, data, predictions=torch.zeros(3, dtype=torch.long))
    view = AttentionExplorer(weights.to(dev), _on(data, dev), predictions=torch.zeros(3, dtype=torch.long).to(dev))
    assert view.shown == cpu.shown
    view.head.value = 1
    assert view.shown["head"] == 1 and _drew(shown)


# ----------------------------------------------------------------------------- lesson 04: alignment
def test_alignment_pictures_draw_device_tensors(dev, shown):
    from mmcourse.alignment import Hubness
    from mmcourse.views import alignment as views

    g = torch.Generator().manual_seed(0)
    points, cluster = torch.randn(30, 2, generator=g), torch.randint(0, 3, (30,), generator=g)
    views.two_spaces(points.to(dev), (points @ torch.tensor([[0.0, 1.0], [-1.0, 0.0]])).to(dev), cluster.to(dev))
    mean, axes2d = views.principal_axes(torch.randn(30, 4, generator=g).to(dev))
    assert axes2d.shape == (4, 2)
    errors = {0.0: torch.tensor([0.5, 0.1]).to(dev), 0.1: torch.tensor([0.6, 0.2]).to(dev)}
    views.procrustes_curves({"pairs": [4, 8], "noises": [0.0, 0.1], "error": errors, "dim": 4})
    views.singular_values({"run": {"singular_values": torch.tensor([1.2, 1.0, 0.8]).to(dev)}}, ["run"])
    hub = Hubness(1.5, 4, 0.25)
    views.occurrence_histograms({n: {"occurrence": torch.tensor([0, 1, 4, 2]).to(dev), "hubness": hub}
                                 for n in ("cosine", "csls")})
    recall = {1: (torch.tensor(0.5).to(dev), 0.1), 5: (torch.tensor(0.9).to(dev), 0.5)}
    views.cross_modal_results({"a": {"recall_at": recall},
                               "geometry": {s: torch.eye(10).to(dev) for s in ("image", "audio")}}, ["a"])
    views.caption_results({"weights": [0.0], 0.0: {"recall": {k: torch.tensor(0.3).to(dev) for k in (1, 5, 10)}},
                           "chance": {1: 0.01, 5: 0.05, 10: 0.1}})
    assert len(shown) == 6 and _drew(shown)


def test_alignment_widgets_take_device_tensors(dev, shown):
    from mmcourse.alignment import AdversarialHistory, random_rotation
    from mmcourse.experiments.alignment import Spaces
    from mmcourse.views.alignment import AdversarialReplay, NonIsometryView

    g = torch.Generator().manual_seed(0)
    source = torch.nn.functional.normalize(torch.randn(50, 4, generator=g), dim=1)
    target, cluster = source @ random_rotation(4, generator=g), torch.randint(0, 3, (50,), generator=g)
    history = AdversarialHistory()
    for t in (0.0, 1.0):
        history.step.append(int(10 * t))
        history.maps.append(torch.eye(4)[None].to(dev))
        history.precision.append(torch.tensor([0.1 + t]).to(dev))
        history.criterion.append(torch.tensor([0.8]).to(dev))
        history.discriminator_accuracy.append(torch.tensor([0.9 - t / 3]).to(dev))
    replay = AdversarialReplay(source.to(dev), target.to(dev), cluster.to(dev), history, points=40)
    replay.slider.value = 10
    assert replay.shown["step"] == 10 and replay.shown["precision"] == pytest.approx(1.1)
    spaces = Spaces(source.to(dev), target.to(dev), torch.eye(4).to(dev), torch.arange(50).to(dev), cluster.to(dev))
    result = {"warps": [0.0, 0.5], "spaces": [spaces, spaces], "maps": [torch.eye(4).to(dev)] * 2,
              "precision": [torch.tensor(0.9).to(dev), torch.tensor(0.5).to(dev)],
              "criterion": [torch.tensor(0.8).to(dev)] * 2, "ceiling": [torch.tensor(1.0).to(dev)] * 2}
    view = NonIsometryView(result, points=40)
    view.slider.value = 0.5
    assert view.shown["warp"] == 0.5 and _drew(shown)


# ----------------------------------------------------------------------------- lesson 05: autoencoders
def test_autoencoder_pictures_draw_device_tensors(dev, shown):
    from mmcourse.experiments.autoencoders import Coherence
    from mmcourse.views import autoencoders as views

    fig, axes = plt.subplots(1, 2)
    views.gaussian_product(axes[0], torch.tensor([1.0, 2.0]).to(dev), torch.tensor([1.0, 0.5]).to(dev))
    views.gaussian_mixture(axes[1], torch.tensor([1.0, 2.0]).to(dev), torch.tensor([1.0, 0.5]).to(dev))
    assert len(axes[0].lines) == 3 and len(axes[1].lines) == 3
    history = type("History", (), {"epoch": [1, 2], "train_loss": [2.0, 1.0]})  # numbers, as fit records them
    views.training_curves({"model": history})
    cell = Coherence(0.7, 0.2, torch.ones(3, dtype=torch.bool).to(dev))
    views.coherence_bars({"shapes": {"MVAE": {"image -> caption": cell}}})
    views.alignment_pitfall({"a": {"history": history, "paired": 0.1, "shuffled": 0.9}})
    assert len(shown) == 3 and _drew(shown)


@pytest.fixture(scope="module")
def shapes_model():
    from mmcourse.experiments import autoencoders as ex

    data = ex.shapes_data(seed=2, n_train=30, n_test=15)
    torch.manual_seed(0)
    return data, ex.build_model("MMVAE", data).eval()


def test_generated_rows_and_pairs_draw_device_tensors(dev, shapes_model, shown):
    from mmcourse.views import autoencoders as views

    data, _ = shapes_model
    test = _on(data.test, dev)
    views.generated_rows(data, {"real": test["image"][:2]}, ["a", "b"])
    views.generated_rows(data, {"real": test["caption"][:2]}, ["a", "b"], modality="caption")
    assert views.caption_title(test["caption"][0]) == views.caption_title(data.test["caption"][0])
    assert len(shown) == 2 and _drew(shown)


def test_latent_explorer_runs_a_model_on_the_device(dev, shapes_model, shown):
    import dataclasses

    from mmcourse.views.autoencoders import LatentExplorer

    data, model = shapes_model
    expected = LatentExplorer(model, data).shown
    for on in ("cpu", dev):  # the model on the device, the data on the CPU or on the device
        moved = dataclasses.replace(data, train=_on(data.train, on), test=_on(data.test, on))
        model.to(dev)
        try:
            view = LatentExplorer(model, moved)
        finally:
            model.cpu()
        assert view.shown["nearest"] == expected["nearest"] and view.shown["decoded"] == expected["decoded"]
        assert view.shown["code"] == pytest.approx(expected["code"], abs=1e-5)
    assert _drew(shown)
