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
    # one episode per condition: image 1, 2, 3, audio -5, -10, -20
    conditions = torch.arange(6)
    weights = torch.tensor([0.3, 0.1, 0.05, 0.5, 0.6, 0.7])
    rule = torch.tensor([0.4, 0.2, 0.1, 0.5, 0.5, 0.5])
    accuracy = {"image only": torch.tensor([0.3, 0.3, 0.3, 0.5, 0.5, 0.6]),
                "audio only": torch.tensor([0.7, 0.7, 0.7, 0.6, 0.4, 0.27]),
                "equal weights": torch.full((6,), 0.5),
                "inverse-spread rule": torch.tensor([0.6, 0.6, 0.6, 0.6, 0.5, 0.5]),
                "meta-learned weights": torch.tensor([0.7, 0.7, 0.65, 0.6, 0.5, 0.55])}
    stats = SupportStatistics(torch.zeros(6, 2), torch.zeros(6, 2))
    result = ex.FusionResult(None, conditions, stats, torch.stack([weights, 1 - weights], 1),
                             torch.stack([rule, 1 - rule], 1), accuracy, None)
    q = ex.fusion_quantities(result)
    learned_gain = 0.7 + 0.7 + 0.65 + 0.6 + 0.5 + 0.55 - 6 * 0.5
    assert q["over equal"] == pytest.approx(learned_gain / 6)
    assert q["rule share"] == pytest.approx((3.4 - 3.0) / learned_gain)
    assert q["over single"] == pytest.approx(min(3.7 - 2.5, 3.7 - 3.37) / 6)
    assert q["noisy image weight"] == pytest.approx(0.3)
    assert q["below rule"] == pytest.approx(-0.05)  # the largest of -0.1, -0.1, -0.05
    assert q["over rule, noisy images"] == pytest.approx((0.1 + 0.1 + 0.05) / 3)
    assert q["drowned audio off chance"] == pytest.approx(0.02)
    assert q["drowned image weight"] == pytest.approx(0.7)
    assert q["drowned over image"] == pytest.approx(-0.05)
    oracle = ex.paired_gains(result)["each episode's better single modality"]
    torch.testing.assert_close(oracle, torch.tensor([0.0, 0.0, -0.05, 0.0, 0.0, -0.05]))
    assert set(ex.FUSION_CLAIMS.values()) <= set(q)
