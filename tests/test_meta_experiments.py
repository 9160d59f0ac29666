"""Lesson 06's claims hold on another seed than the lesson's (``claims_hold``); the helpers behind them."""

import math

import pytest
import torch
from claims_hold import claim_tests

from mmcourse.experiments import meta as ex
from mmcourse.meta import SHAPE_CLASS_NAMES, SupportStatistics

measured, test_every_claim_is_measured, test_claim_holds = claim_tests(ex, seeds=(1,))


@pytest.fixture(scope="module")
def data():
    return ex.meta_data(seed=2)


def test_the_pools_hold_disjoint_digits_with_both_modalities(data):
    assert set(data.train["label"].tolist()) == set(ex.META_TRAIN_DIGITS)
    assert set(data.test["label"].tolist()) == set(ex.META_TEST_DIGITS)
    assert data.train["image"].shape[1:] == (1, 8, 8) and data.test["audio"].shape[1:] == (1, 32, 40)
    assert torch.equal(data.test["label"], data.clean_test["label"]) and "waveform" in data.clean_test
    assert not torch.equal(data.test["image"], data.clean_test["image"])  # the default corruption


def test_the_shapes_pool_holds_out_attribute_combinations():
    pool, train, test = ex.shapes_pool(seed=3, scenes=240)
    assert len(test) == 8 and len(train) == 16 and not set(train) & set(test)
    assert set(pool["label"].tolist()) <= set(range(len(SHAPE_CLASS_NAMES)))
    assert pool["image"].shape == (240, 3, 32, 32)


def test_few_shot_accuracy_is_paired_and_fuses_by_averaging_logits(data):
    g = torch.Generator().manual_seed(0)
    rows = len(data.test["label"])
    separable = torch.nn.functional.one_hot(data.test["label"] - 6, 4).float() * 10 + torch.randn(rows, 4, generator=g)
    noise = torch.randn(rows, 4, generator=g)
    perfect = ex.few_shot_accuracy(data, {"image": separable}, episodes=20)
    assert perfect.shape == (20,) and perfect.min() == 1.0
    blind = ex.few_shot_accuracy(data, {"audio": noise}, episodes=200).mean().item()
    assert abs(blind - 0.25) < 0.05  # chance with embeddings that know nothing
    # the same episodes on every call; a near-silent second modality leaves the perfect one perfect
    again = ex.few_shot_accuracy(data, {"audio": noise}, episodes=200).mean().item()
    assert again == blind
    fused = ex.few_shot_accuracy(data, {"image": separable, "audio": 0.01 * noise}, episodes=20)
    assert fused.min() == 1.0
    grid = ex.accuracy_grid(data, {"image": separable}, ways=(2,), shots=(1, 3), episodes=10)
    assert set(grid) == {(2, 1), (2, 3)} and grid[(2, 3)].estimate == 1.0


def test_per_class_accuracy_names_each_meta_test_digit(data):
    h = torch.nn.functional.one_hot(data.test["label"] - 6, 4).float()
    out = ex.per_class_accuracy(data, {"perfect": {"image": h}}, episodes=10)
    assert out == {"perfect": {d: 1.0 for d in ex.META_TEST_DIGITS}}


def test_maml_inputs_and_a_short_run(data):
    assert ex.maml_inputs(torch.zeros(3, 5, 1, 32, 40), "audio").shape == (3, 5, 160)
    assert ex.maml_inputs(torch.zeros(7, 1, 8, 8), "image").shape == (7, 64)
    settings = ex.MAMLSettings(steps=3, meta_batch=2)
    model, history = ex.train_maml(data, settings)
    assert len(history.train_loss) == 1 and math.isfinite(history.train_loss[0])
    acc = ex.maml_accuracy(model, data, settings, episodes=5)
    assert acc.shape == (5,) and ((0 <= acc) & (acc <= 1)).all()
    tasks = ex.meta_batch_tasks(ex.maml_sampler(data, settings), range(4))
    assert tasks[0][0].shape == (4, 20, 160) and tasks[1][1].shape == (4, 40)
    assert ex.time_meta_step(model, tasks, vmapped=True, repeats=1) > 0


def test_corrupted_episodes_take_each_modality_at_its_episode_level():
    labels = torch.arange(4).repeat_interleave(6)

    def table(levels):  # embedding of row r at level l = (l, r): easy to read back
        rows = torch.arange(24.0)
        return torch.stack([torch.stack([torch.full((24,), float(lvl)), rows], 1) for lvl in range(levels)])

    image, audio = table(1 + len(ex.IMAGE_NOISES)), table(1 + len(ex.AUDIO_SNRS))
    pool = ex.CorruptedEmbeddings(image, audio, labels)
    sampler = ex.EpisodeSampler({"row": torch.arange(24)}, labels, range(4), 2, 2, 3, seed=0)
    conditions = torch.tensor([0, 5, 2])  # image 1.0, audio -20, image 3.0
    support, ys, query, yq = ex.corrupted_episodes(pool, sampler, [0, 1, 2], conditions)
    assert support[0].shape == (3, 4, 2) and query[1].shape == (3, 6, 2)
    assert support[0][:, :, 0].tolist() == [[1] * 4, [0] * 4, [3] * 4]  # image levels
    assert query[1][:, :, 0].tolist() == [[0] * 6, [3] * 6, [0] * 6]  # audio levels
    assert torch.equal(support[0][:, :, 1].long(), sampler.sample_batch([0, 1, 2]).support_rows)


def test_build_encoder_and_train_protonet_reject_unknown_modalities():
    with pytest.raises(ValueError, match="modality"):
        ex.build_encoder("video")
    with pytest.raises(ValueError, match="modality"):
        ex.train_protonet(None, "video")


def test_fusion_quantities_by_hand():
    # two episodes per condition: image 0.5, 1, 2, audio -5, -10, -20
    conditions = torch.arange(6).repeat_interleave(2)

    def per_condition(*values):
        return torch.tensor(values).repeat_interleave(2)

    weights = per_condition(0.45, 0.2, 0.05, 0.5, 0.6, 0.7)
    rule = per_condition(0.5, 0.3, 0.1, 0.5, 0.5, 0.45)
    accuracy = {"image only": per_condition(0.4, 0.3, 0.25, 0.5, 0.5, 0.6),
                "audio only": per_condition(0.7, 0.7, 0.7, 0.6, 0.4, 0.27),
                "equal weights": per_condition(0.72, 0.6, 0.45, 0.66, 0.55, 0.5),
                "inverse-spread rule": per_condition(0.72, 0.65, 0.6, 0.66, 0.55, 0.49),
                "squared rule": per_condition(0.71, 0.68, 0.7, 0.65, 0.54, 0.48),
                "meta-learned weights": per_condition(0.73, 0.68, 0.69, 0.65, 0.56, 0.55)}
    stats = SupportStatistics(torch.zeros(12, 2), torch.zeros(12, 2))
    result = ex.FusionResult(None, conditions, stats, torch.stack([weights, 1 - weights], 1),
                             torch.stack([rule, 1 - rule], 1), torch.stack([rule ** 2, 1 - rule ** 2], 1), accuracy,
                             None)
    q = ex.fusion_quantities(result)
    learned_gain = (0.01 + 0.08 + 0.24) / 3
    assert q["over equal, noisy images"] == pytest.approx(learned_gain, abs=1e-6)
    assert q["rule share"] == pytest.approx((0.05 + 0.15) / 3 / learned_gain, abs=1e-6)
    assert q["squared rule gap"] == pytest.approx(abs(0.02 + 0.0 - 0.01) / 3, abs=1e-6)
    assert q["noisy image weight"] == pytest.approx(0.2, abs=1e-6)  # pixel noise 1 and 2 only: 0.2 and 0.05
    assert q["below rule"] == pytest.approx(-0.05, abs=1e-6)  # the larger of -0.1 and -0.05
    assert q["equal gap, noisy audio"] == pytest.approx(abs(-0.01 + 0.01 + 0.05) / 3, abs=1e-6)
    assert q["over single, audio -5 and -10 dB"] == pytest.approx(0.05, abs=1e-6)  # -5: 0.15, 0.05; -10: 0.06, 0.16
    assert q["drowned audio off chance"] == pytest.approx(0.02, abs=1e-6)
    assert q["drowned image weight"] == pytest.approx(0.7, abs=1e-6)
    gains = ex.paired_gains(result, ex.condition_episodes(result, ("audio", -20.0)))
    torch.testing.assert_close(gains["image only"], torch.full((2,), -0.05))
    oracle = ex.paired_gains(result)["each episode's better single modality"]
    torch.testing.assert_close(oracle, per_condition(0.03, -0.02, -0.01, 0.05, 0.06, -0.05))
    assert set(ex.FUSION_CLAIMS.values()) <= set(q)
    assert ex.noisy_image_episodes(result).tolist() == [True] * 6 + [False] * 6


def test_raw_margin_is_the_smallest_gain_of_the_raw_input():
    raw = {"image": torch.tensor([0.6, 0.7]), "audio": torch.tensor([0.9, 0.8])}
    baseline = {"image": torch.tensor([0.5, 0.5]), "audio": torch.tensor([0.8, 0.8])}
    proto = {"image": torch.tensor([0.4, 0.4]), "audio": torch.tensor([0.9, 0.9])}
    assert ex.raw_margin(raw, [baseline]) == pytest.approx(0.05, abs=1e-6)
    assert ex.raw_margin(raw, [baseline, proto]) == pytest.approx(-0.05, abs=1e-6)  # the audio ProtoNet is ahead


def test_input_weighting_trains_from_the_raw_input_and_the_closed_form_scale(data):
    net, history = ex.train_input_weighting(data, "audio")
    assert len(history.train_loss) == 1 and net.encoder.weights.shape == (1, 32, 40)
    assert not torch.allclose(net.encoder.weights, torch.ones(1, 32, 40))  # it moved from the raw input
    h = ex.embed(net.encoder, data.test["audio"][:5])
    torch.testing.assert_close(h, ex.raw_inputs(data.test["audio"][:5]) * net.encoder.weights.detach().flatten())
    scale = ex.within_class_scale(data, "image")
    x, labels = ex.raw_inputs(data.train["image"]), data.train["label"]
    by_hand = torch.cat([x[labels == c] - x[labels == c].mean(0) for c in ex.META_TRAIN_DIGITS]).std(0)
    torch.testing.assert_close(scale, 1 / by_hand.clamp_min(1e-6))
    with pytest.raises(ValueError, match="modality"):
        ex.train_input_weighting(data, "video")


def test_maml_start_is_where_meta_training_starts(data):
    settings = ex.MAMLSettings(steps=1, meta_batch=2, lr=1e-9)  # one Adam step of 1e-9: where it started
    start = ex.maml_start(data, settings)
    trained, _ = ex.train_maml(data, settings)
    for (name, a), b in zip(start.named_parameters(), trained.parameters()):
        torch.testing.assert_close(a, b, msg=name)
    other = ex.maml_start(ex.meta_data(seed=4), settings)
    assert not torch.allclose(next(other.parameters()), next(start.parameters()))
    accuracy = ex.maml_accuracies(data, {"start": start}, steps=(0, 2))
    assert set(accuracy) == {("start", 0), ("start", 2)} and accuracy[("start", 2)].shape == (300,)
    # no step: the untrained network's own scores, the same for every support set
    x = ex.maml_inputs(data.test["audio"], "audio")
    batch = ex.test_sampler(data, {"x": x}).sample_batch(range(300))
    with torch.no_grad():
        scores = start(batch.query["x"].flatten(0, 1)).unflatten(0, batch.query_labels.shape)
    expected = (scores.argmax(-1) == batch.query_labels).float().mean(-1)
    torch.testing.assert_close(accuracy[("start", 0)], expected)


def test_the_fine_tuned_head_starts_from_zero_and_trains_each_episode_alone():
    g = torch.Generator().manual_seed(0)
    support, query = torch.randn(3, 6, 4, generator=g), torch.randn(3, 5, 4, generator=g)
    labels = torch.tensor([0, 0, 0, 0, 1, 2]).expand(3, 6)  # unequal counts: the bias gets a gradient too
    # one step of Adam from zero moves each weight by lr in the direction of minus its gradient's sign; at zero the
    # gradient of the mean cross-entropy is X^T (1/N - onehot) / |S| (and the bias's the same with X = 1)
    target = torch.nn.functional.one_hot(labels, 3).float() - 1 / 3  # (B, |S|, N)
    weight = 0.5 * torch.sign(support.transpose(1, 2) @ target)
    bias = 0.5 * torch.sign(target.sum(1, keepdim=True))
    one_step = ex.fine_tuned_head_scores(support, labels, query, 3, steps=1, lr=0.5)
    assert torch.allclose(one_step, query @ weight + bias, atol=1e-5)
    # B episodes at once give each episode's own head, as if trained alone
    together = ex.fine_tuned_head_scores(support, labels, query, 3)
    alone = torch.cat([ex.fine_tuned_head_scores(support[i:i + 1], labels[i:i + 1], query[i:i + 1], 3)
                       for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-4)
    with pytest.raises(ValueError, match="support, support_labels, query"):
        ex.fine_tuned_head_scores(support[0], labels[0], query[0], 3)


def test_fine_tuning_against_class_mean_compares_the_same_episodes_on_the_same_features(data):
    rows = len(data.test["label"])
    separable = torch.nn.functional.one_hot(data.test["label"] - 6, 4).float() * 10
    noise = torch.randn(rows, 4, generator=torch.Generator().manual_seed(1))
    out = ex.fine_tuning_against_class_mean(data, 3, {"ProtoNet": noise, "baseline": separable, "raw": separable},
                                            episodes=20)
    assert out["fitted head accuracy"] == 1.0 and out["class mean accuracy"] == 1.0 and out["gain"] == 0.0
    assert out["raw class mean accuracy"] == 1.0 and out["ProtoNet accuracy"] < 0.6
    noisy = ex.fine_tuning_against_class_mean(data, 3, {"baseline": noise}, episodes=20)
    assert noisy["gain"] == pytest.approx(noisy["fitted head accuracy"] - noisy["class mean accuracy"], abs=1e-6)
    assert "ProtoNet accuracy" not in noisy
    for shots in (0, ex.MAX_SHOTS + 1, 2.0, False):
        with pytest.raises(ValueError, match="k_shot: expected a whole number of shots per class from 1 to 40"):
            ex.fine_tuning_against_class_mean(data, shots, {"baseline": noise})
