"""Lesson 01's claims hold for seeds 0, 1 and 2: the experiment functions run with each seed and the
same conditions the lesson checks with `claim` are asserted here. Also the data helpers behind them."""

import math

import pytest
import torch

from mmcourse.data import load_shapes
from mmcourse.experiments import fusion as ex
from mmcourse.train import as_tensors

SEEDS = [0, 1, 2]


@pytest.fixture(scope="module", params=SEEDS, ids=lambda s: f"seed{s}")
def av(request):
    """Everything lesson 01 trains and measures on AV-Digits, for one seed."""
    data = ex.av_data(seed=request.param)
    results = ex.train_av_methods(data)
    grid = ex.RobustnessGrid(data)
    return {
        "data": data,
        "results": results,
        "grid": grid,
        "curves": grid.curves(results.models),
        "moddrop": ex.modality_dropout_experiment(data, methods=("low-rank",), p=0.5, baseline=results),
        "weights": ex.mean_attention_weights(results.models["attention"], grid),
    }


def _fused(results):
    return {m: a for m, a in results.accuracy.items() if not m.endswith("only")}


def test_every_fusion_beats_the_best_single_modality(av):
    accuracy = av["results"].accuracy
    best_single = max(accuracy["image only"], accuracy["audio only"])
    assert min(_fused(av["results"]).values()) > best_single, accuracy


def test_fused_models_survive_a_drowned_modality(av):
    curves = av["curves"]
    drowned = {m: min(curves["image_noise"][m][-1], curves["audio_snr_db"][m][-1]) for m in _fused(av["results"])}
    assert min(drowned.values()) >= 0.5, drowned
    assert curves["image_noise"]["image only"][-1] <= 0.2
    assert curves["audio_snr_db"]["audio only"][-1] <= 0.2


def test_missing_modality_early_late_hold_low_rank_collapses(av):
    curves = av["curves"]
    missing = {"image missing": "audio only", "audio missing": "image only"}
    loss = {m: max(curves[case][alone] - curves[case][m] for case, alone in missing.items())
            for m in _fused(av["results"])}
    assert loss["early"] <= 0.08 and loss["late"] <= 0.08 and loss["low-rank"] >= 0.2, loss


def test_modality_dropout_makes_low_rank_fusion_hold_up(av):
    lmf = av["moddrop"]["low-rank"]
    gain = {case: lmf["with"][case] - lmf["without"][case] for case in ("image missing", "audio missing")}
    cost = lmf["without"]["both"] - lmf["with"]["both"]
    assert min(gain.values()) >= 0.1 and cost <= 0.05, (gain, cost)
    # the baseline is the model of the comparison, not a new one
    assert lmf["models"]["without"] is av["results"].models["low-rank"]


def test_attention_weight_leaves_the_drowned_modality(av):
    weights = av["weights"]
    image_w, audio_w = weights["image_noise"][:, 0], weights["audio_snr_db"][:, 1]
    assert image_w[-1] < image_w[0] / 3 and audio_w[-1] < audio_w[0] / 3, (image_w, audio_w)
    assert torch.allclose(weights["image_noise"].sum(1), torch.ones(len(image_w)))


def test_low_rank_matches_tensor_with_fewer_parameters_and_is_its_twin(av):
    results, data = av["results"], av["data"]
    d, out, r = 64, 64, 4
    assert results.fusion_parameters["tensor"] == out * (d + 1) ** 2 + out
    assert results.fusion_parameters["low-rank"] == r * 2 * (d + 1) * out + r + out
    assert results.fusion_parameters["tensor"] / results.fusion_parameters["low-rank"] > 8
    assert abs(results.accuracy["tensor"] - results.accuracy["low-rank"]) <= 0.04, results.accuracy
    lmf = results.models["low-rank"].eval()
    fusion = lmf.fusion.to_tensor_fusion()
    with torch.no_grad():
        hs = lmf.embed(data.test["image"], data.test["audio"])
        a, b = lmf.fusion(hs), fusion(hs)
    assert (a - b).abs().max() < 1e-4


@pytest.mark.parametrize("seed", SEEDS)
def test_caption_matching_needs_both_modalities(seed):
    acc = ex.caption_matching_experiment(seed=seed).accuracy
    assert acc["image only"] == 0.5 and acc["caption only"] == 0.5 and acc["both"] >= 0.8, acc


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


def test_build_and_evaluate_helpers():
    with pytest.raises(ValueError, match="method"):
        ex.build_av_model("fancy")
    with pytest.raises(ValueError, match="kind"):
        ex.build_caption_model("audio")
    model = ex.build_av_model("image only")
    assert ex.inputs_of("image only") == ["image"] and ex.inputs_of("late") == ["image", "audio"]
    labels = torch.zeros(4, dtype=torch.long)
    assert math.isnan(ex.accuracy_with(model, "image only", None, torch.zeros(4, 1, 32, 40), labels))
    assert 0 <= ex.accuracy_with(model, "image only", torch.zeros(4, 1, 8, 8), None, labels) <= 1
    assert ex.count_parameters(torch.nn.Linear(3, 2)) == 8
    assert ex.time_per_batch(ex.EarlyFusion([3, 2], 4), [3, 2], repeats=3) > 0


def test_train_av_methods_adds_to_earlier_results():
    data = ex.av_data(seed=0, copies=1)
    results = ex.train_av_methods(data, ["image only"], epochs=1)
    again = ex.train_av_methods(data, ["audio only"], epochs=1, into=results)
    assert again is results and list(results.models) == ["image only", "audio only"]
    assert "audio only" in results.table() and 0 <= results.accuracy["audio only"] <= 1
