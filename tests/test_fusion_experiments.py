"""Lesson 01's claims hold on other seeds than the lesson's (``claims_hold``); the helpers behind them."""

import math

import pytest
import torch
from claims_hold import claim_tests

from mmcourse.data import as_tensors, load_shapes
from mmcourse.experiments import fusion as ex

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
