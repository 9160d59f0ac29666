"""Lesson 01's claims hold on other seeds than the lesson's (``claims_hold``); the helpers behind them."""

import copy
import math
import re

import pytest
import torch
from claims_hold import claim_tests

from mmcourse import exercises
from mmcourse.data import as_tensors, load_shapes
from mmcourse.experiments import fusion as ex
from mmcourse.fusion import Prediction
from mmcourse.metrics import accuracy

measured, test_every_claim_is_measured, test_claim_holds = claim_tests(ex, seeds=(1,))


# --- the helpers behind the experiments --------------------------------------------------------


def test_caption_pairs_put_every_image_and_caption_once_with_each_label():
    columns = as_tensors(load_shapes(n_train=300, n_validation=1, n_test=1, seed=4)["train"], ex.SCENE_COLUMNS)
    pairs = ex.caption_pairs(columns, torch.Generator().manual_seed(0))
    n = len(columns["image"])
    assert pairs["image"].shape == (2 * n, 3, 32, 32) and pairs["label"].tolist() == [1] * n + [0] * n
    assert torch.equal(pairs["image"][:n], pairs["image"][n:])
    assert sorted(pairs["caption_of"][n:].tolist()) == list(range(n))  # each caption once as a wrong one
    assert torch.equal(pairs["caption_ids"], columns["caption_ids"][pairs["caption_of"]])
    descriptions = ex.scene_descriptions(columns)
    for i in range(n):  # a wrong caption never describes the scene it is paired with
        assert descriptions[int(pairs["caption_of"][n + i])] != descriptions[i]
    # an image-only "model" that answers from the image alone gets exactly one of each pair right
    guess = pairs["image"].flatten(1).sum(1) > pairs["image"].flatten(1).sum(1).median()
    assert (guess.long() == pairs["label"]).float().mean() == 0.5


def test_scene_descriptions_ignore_object_order():
    columns = {k: torch.full((2, 3), -1) for k in ex.SCENE_COLUMNS[2:]}
    for k, values in zip(ex.SCENE_COLUMNS[2:], ([0, 1], [2, 3], [0, 1], [4, 8])):
        columns[k][0, :2] = torch.tensor(values)
        columns[k][1, :2] = torch.tensor(values[::-1])
    first, second = ex.scene_descriptions(columns)
    assert first == second and len(first) == 2


def test_sensor_failure_copies_fail_one_sensor_at_a_time():
    clean = {"image": torch.rand(200, 1, 8, 8), "waveform": 0.1 * torch.randn(200, 6400),
             "label": torch.arange(200) % 10}
    out = ex.sensor_failure_copies(clean, copies=3, generator=torch.Generator().manual_seed(0))
    assert out["image"].shape == (600, 1, 8, 8) and out["audio"].shape == (600, 1, 32, 40)
    assert torch.equal(out["label"], clean["label"].repeat(3))
    image_failed, audio_failed = out["image_noise"] >= 1.5, out["audio_snr_db"] <= -15
    assert not (image_failed & audio_failed).any()
    for failed in (image_failed, audio_failed):  # 1/3 each, within 4 standard deviations
        assert abs(failed.float().mean() - 1 / 3) < 4 * math.sqrt(2 / 9 / 600)
    with pytest.raises(ValueError, match="failure_rate"):
        ex.sensor_failure_copies(clean, failure_rate=0.6)


def _constant_model(method: str, answer: int) -> torch.nn.Module:
    """A model of ``method`` that predicts class ``answer`` for every input."""
    model = ex.build_av_model(method)
    with torch.no_grad():
        head = model.head[-1] if isinstance(model.head, torch.nn.Sequential) else None
        head.weight.zero_()
        head.bias.copy_(torch.nn.functional.one_hot(torch.tensor(answer), 10).float())
    return model


def test_build_and_evaluate_helpers():
    with pytest.raises(ValueError, match="method"):
        ex.build_av_model("fancy")
    with pytest.raises(ValueError, match="kind"):
        ex.build_caption_model("audio")
    assert ex.inputs_of("image only") == ["image"] and ex.inputs_of("late") == ["image", "audio"]
    assert ex.build_av_model("low-rank", missing="learned").missing == "learned"
    model, labels = _constant_model("image only", 3), torch.tensor([3, 3, 1, 0])
    assert math.isnan(ex.accuracy_with(model, "image only", None, torch.zeros(4, 1, 32, 40), labels))
    assert ex.correct_with(model, "image only", None, torch.zeros(4, 1, 32, 40), labels) is None
    assert ex.accuracy_with(model, "image only", torch.randn(4, 1, 8, 8), None, labels) == 0.5
    assert ex.correct_with(model, "image only", torch.randn(4, 1, 8, 8), None, labels).tolist() == [1, 1, 0, 0]
    assert ex.count_parameters(torch.nn.Linear(3, 2)) == 8


def test_av_data_corrupts_each_test_pair_several_times():
    data = ex.av_data(seed=3, copies=1, test_copies=3)
    n = len(data.clean_test["label"])
    assert data.test_copies == 3 and len(data.test["label"]) == 3 * n == len(data.test["audio"])
    assert torch.equal(data.test["label"], data.clean_test["label"].repeat(3))
    first, second = data.test["image"][:n], data.test["image"][n : 2 * n]
    assert not torch.allclose(first, second)  # independent noise ...
    assert (first - second).abs().mean() < 1.0  # ... on the same digits
    with pytest.raises(ValueError, match="test_copies"):
        ex.av_data(seed=3, copies=1, test_copies=0)


def test_fusion_gains_and_control_summaries_by_hand():
    acc = {"image only": 0.7, "audio only": 0.8, "early": 0.9, "late": 0.95}
    assert ex.fusion_gains(acc) == pytest.approx({"early": 0.1, "late": 0.15})
    assert ex.mean_fusion_gain(acc) == pytest.approx(0.125)
    controls = {"image drowned": {"all": 0.8, "shuffled image": 0.79, "shuffled audio": 0.1},
                "audio drowned": {"all": 0.7, "shuffled image": 0.12, "shuffled audio": 0.72}}
    assert ex.shuffle_effects(controls) == (pytest.approx(0.01), 0.12)
    curves = {"image missing": {"audio only": 0.8, "late": 0.7}, "audio missing": {"image only": 0.7, "late": 0.65}}
    assert ex.missing_shortfall(curves, "late") == pytest.approx(0.1)


class _Fixed(torch.nn.Module):
    """A stand-in unimodal model whose scores are given."""

    def __init__(self, scores: torch.Tensor) -> None:
        super().__init__()
        self.scores = scores

    def forward(self, x) -> Prediction:
        return Prediction(self.scores, None)


def test_product_of_posteriors_adds_the_log_probabilities():
    image = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # says 0, then weakly 1
    audio = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 3.0]])  # says 2 weakly, then 2 strongly
    models = {"image only": _Fixed(image), "audio only": _Fixed(audio)}
    test = {"image": torch.zeros(2, 1), "audio": torch.zeros(2, 1), "label": torch.tensor([0, 2])}
    # by hand: row 0: log p = (2, 0, 0) + (0, 0, 1) - const -> class 0; row 1: (0, 1, 0) + (0, 0, 3) -> class 2
    assert ex.product_of_posteriors(models, test).tolist() == [True, True]


def test_train_av_methods_adds_to_earlier_results():
    data = ex.av_data(seed=0, copies=1, test_copies=2)
    results = ex.train_av_methods(data, ["image only"], epochs=1)
    again = ex.train_av_methods(data, ["audio only"], epochs=1, into=results)
    assert again is results and list(results.models) == ["image only", "audio only"]
    correct = results.correct["audio only"]
    assert correct.dtype == torch.bool and correct.shape == data.test["label"].shape
    assert results.accuracy["audio only"] == correct.float().mean().item()
    assert "audio only" in results.table()
    named = ex.train_av_methods(data, ["audio only"], epochs=1, missing="learned", name="learned")
    assert list(named.models) == ["learned"]
    with pytest.raises(ValueError, match="name"):
        ex.train_av_methods(data, ["image only", "audio only"], name="x")
    with pytest.raises(ValueError, match="variants"):
        ex.modality_dropout_experiment(data, variants=("dropout, mean",))


def test_grid_curves_reuse_embeddings_and_agree_with_single_evaluations():
    data = ex.av_data(seed=2, copies=1, test_copies=1)
    results = ex.train_av_methods(data, ["image only", "late", "low-rank"], epochs=1)
    grid = ex.RobustnessGrid(data, image_noises=(0.3, 3.0), audio_snrs=(0.0, -20.0), copies=2)
    assert len(grid.labels) == 2 * len(data.clean_test["label"]) == len(grid.audio[0.0])
    curves = grid.curves(results.models)
    for m, model in results.models.items():
        assert curves["image_noise"][m] == [grid.accuracy(model, m, s, 0.0) for s in (0.3, 3.0)]
        assert curves["audio_snr_db"][m] == [grid.accuracy(model, m, 0.3, d) for d in (0.0, -20.0)]
        assert curves["audio missing"][m] == grid.accuracy(model, m, 0.3, None)
    assert math.isnan(curves["image missing"]["image only"])
    missing = ex.late_fusion_missing(results.models["late"], grid)
    assert missing["dropped"]["image missing"] == curves["image missing"]["late"]  # what LateFusion does with None
    assert missing["dropped"]["audio missing"] == curves["audio missing"]["late"]
    assert set(missing["zero"]) == {"image missing", "audio missing"}
    late = results.models["late"].eval()  # the zero way, computed here on its own
    with torch.no_grad():
        h_image, h_audio = late.embed(grid.images[grid.image0], grid.audio[grid.audio0])
        zero_image = accuracy(late.fusion([torch.zeros_like(h_image), h_audio]).z, grid.labels)
    assert missing["zero"]["image missing"] == zero_image
    correct = ex.late_fusion_missing_correct(results.models["late"], grid)
    for way in ("dropped", "zero"):  # the same rows as late_fusion_missing, one bool per grid row
        for case, acc in missing[way].items():
            assert correct[way][case].shape == grid.labels.shape
            assert correct[way][case].float().mean().item() == acc
    controls = ex.drowned_controls(results.models["low-rank"], grid)
    assert set(controls) == {"image drowned", "audio drowned"}
    assert controls["image drowned"]["all"] == grid.accuracy(results.models["low-rank"], "low-rank", 3.0, 0.0)


# --- the build's training step and the experiment exercise ------------------------------------------------------


def test_av_batches_cover_every_row_once_in_a_shuffled_order():
    train = {"image": torch.arange(10.0).view(10, 1, 1, 1), "audio": torch.zeros(10, 1, 32, 40),
             "label": torch.arange(10), "image_noise": torch.zeros(10)}
    batches = list(ex.av_batches(train, batch_size=4, seed=3))
    assert [len(b["label"]) for b in batches] == [4, 4, 2] and set(batches[0]) == {"image", "audio", "label"}
    labels = torch.cat([b["label"] for b in batches])
    assert sorted(labels.tolist()) == list(range(10)) and labels.tolist() != list(range(10))
    assert torch.equal(torch.cat([b["image"] for b in batches]).flatten().long(), labels)  # rows stay together
    again = torch.cat([b["label"] for b in ex.av_batches(train, batch_size=4, seed=3)])
    assert torch.equal(labels, again)


def test_train_step_is_one_step_of_fit():
    """fit on a data set of exactly one batch takes one step of train_step's: the same loss and weights."""
    from mmcourse.train import Adam, fit

    g = torch.Generator().manual_seed(0)
    batch = {"image": torch.randn(16, 1, 8, 8, generator=g), "audio": torch.randn(16, 1, 32, 40, generator=g),
             "label": torch.randint(0, 10, (16,), generator=g)}
    torch.manual_seed(0)
    model = ex.build_av_model("low-rank", dim=8)
    twin = copy.deepcopy(model)
    history = fit(twin, batch, ["image", "audio"], epochs=1, batch_size=16, lr=1e-3, seed=0, device="cpu",
                  progress=False)
    order = torch.randperm(16, generator=torch.Generator().manual_seed(0))  # fit's order of the rows (seed 0)
    loss = ex.train_step(model, {k: v[order] for k, v in batch.items()}, Adam(model.parameters(), lr=1e-3))
    assert isinstance(loss, float) and loss == pytest.approx(history.train_loss[0], rel=1e-6)
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        assert torch.allclose(p, q, atol=1e-7), name


def test_a_dropout_setting_out_of_range_is_rejected_by_name(capsys):
    for setting, message in [
        ({"modality_dropout": 1.5, "missing": "learned"},
         "modality_dropout: expected a probability between 0 and 1, got 1.5"),
        ({"modality_dropout": True, "missing": "learned"}, "modality_dropout: expected a probability"),
        ({"modality_dropout": 0.5, "missing": "mean"}, "missing: expected one of ('zero', 'learned'), got 'mean'"),
        ({"p": 0.5, "missing": "zero"}, "setting: expected a dict with the keys ['missing', 'modality_dropout']"),
        (0.5, "setting: expected a dict with the keys ['missing', 'modality_dropout'], got float"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            ex.dropout_setting_run(setting, seed=0)
        assert not exercises.check("modality_dropout", lambda s=setting: s)
        assert f"your attempt was rejected: {message}" in capsys.readouterr().out


def test_the_dropout_experiment_passes_a_good_setting_and_fails_the_extremes(capsys):
    """Seed 0 (seed 1 runs the same function through measure_claims): the worked solution's setting meets both
    outcomes; no dropout fails with a modality missing; dropping a modality from every sample never trains on
    both together, and fusion's gain is lost."""
    exercises.predict("modality_dropout", 0.6)
    assert exercises.check("modality_dropout", lambda: {"modality_dropout": 0.5, "missing": "learned"})
    out = capsys.readouterr().out
    assert "meets every outcome" in out and "you predicted the accuracy with the audio missing: 0.6; this run" in out
    assert not exercises.check("modality_dropout", lambda: {"modality_dropout": 0.0, "missing": "zero"})
    out = capsys.readouterr().out
    assert "\N{BALLOT X} accuracy with one modality missing (the worse case)" in out
    assert not exercises.check("modality_dropout", lambda: {"modality_dropout": 1.0, "missing": "learned"})
    out = capsys.readouterr().out
    assert "\N{BALLOT X} accuracy with both minus the higher accuracy with one missing" in out
    reference = exercises.EXERCISES["modality_dropout"].reference
    assert not exercises.check("modality_dropout", reference)  # the package's own answer, handed in
    assert "the package's own answer to this experiment" in capsys.readouterr().out
    assert reference() == {"modality_dropout": 0.5, "missing": "learned"}
    exercises.PREDICTIONS.pop("modality_dropout", None)


def test_the_dropout_run_reuses_the_lessons_data():
    data = ex.av_data(seed=5)
    assert ex._KEPT == {5: data}
    ex.av_data(seed=5, copies=1, test_copies=1)  # other settings are not kept
    assert ex._KEPT == {5: data}
