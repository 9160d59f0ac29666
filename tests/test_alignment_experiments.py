"""Lesson 04's claims hold on a seed other than the lesson's (``claims_hold``); the helpers behind them."""

import pytest
import scipy.stats
import torch
from claims_hold import claim_tests

from mmcourse.alignment import random_rotation
from mmcourse.data import load_av_digits
from mmcourse.experiments import alignment as experiments
from mmcourse.metrics import ComparisonEntry, split_id

measured, test_every_claim_is_measured, test_claim_holds = claim_tests(experiments, seeds=(1,))


def test_rank_correlation_equals_scipy():
    a, b = [0.3, 0.9, 0.1, 0.5, 0.7], [1.0, 3.0, 2.0, 5.0, 4.0]
    assert experiments.rank_correlation(a, b) == pytest.approx(scipy.stats.spearmanr(a, b).statistic)


def test_synthetic_spaces_share_everything_but_the_warp():
    plain, bent = experiments.synthetic_spaces(3, n=300), experiments.synthetic_spaces(3, warp_strength=1.0, n=300)
    assert torch.equal(plain.source, bent.source) and torch.equal(plain.rotation, bent.rotation)
    assert not torch.allclose(plain.target, bent.target)
    assert torch.allclose(plain.target.norm(dim=1), torch.ones(300), atol=1e-5)


def test_ten_pairs_take_one_row_per_digit():
    labels = torch.arange(100) % 10
    pick = experiments.ten_pairs(labels, seed=4)
    assert sorted(labels[pick].tolist()) == list(range(10))


def test_centroid_geometry_ignores_rotations():
    g = torch.Generator().manual_seed(5)
    embeddings, labels = torch.randn(200, 12, generator=g), torch.arange(200) % 10
    turned = embeddings @ random_rotation(12, generator=g)
    assert torch.allclose(experiments.centroid_geometry(embeddings, labels),
                          experiments.centroid_geometry(turned, labels), atol=1e-5)


def test_bag_of_words_counts_words_without_padding():
    counts = experiments.bag_of_words(torch.tensor([[3, 4, 3, 0, 0], [5, 0, 0, 0, 0]]), vocabulary_size=6)
    assert counts.tolist() == [[0, 0, 0, 2, 1, 0], [0, 0, 0, 0, 0, 1]]


def test_speech_to_image_retrieval_gives_lesson_04s_rows_as_the_lesson_prints_them():
    """The rows lesson 07 computes when lesson 04 has not kept its own are the lesson's numbers: the same runs
    (data, encoders, settings, seed), even after other work has drawn from the global generator."""
    entries = experiments.speech_to_image_retrieval(seed=2)
    assert [e.pairs for e in entries] == ["all", "10", "none"]
    assert all(isinstance(e, ComparisonEntry) and e.lesson == "04" and e.labels == "training" for e in entries)
    torch.rand(1000)  # as a lesson's earlier cells would
    data = load_av_digits(seed=2)
    cross = experiments.cross_modal_alignment(seed=2, encoders=experiments.train_unimodal_encoders(seed=2, data=data))
    assert entries == experiments.comparison_rows(cross)
    queries = split_id(torch.tensor(data["test"]["label"]))  # the test split in its order, as the other rows have it
    for entry, name in zip(entries, experiments.ALIGNMENTS):
        assert entry.retrieval == cross[name]["retrieval"] and len(entry.hits) == len(data["test"])
        assert entry.split == queries
        assert sum(entry.hits) / len(entry.hits) == pytest.approx(entry.retrieval.recall_at_1)
    all_pairs, _, none = (e.retrieval for e in entries)
    assert all_pairs.recall_at_1 > 2 * all_pairs.chance_at_1 and none.recall_at_1 < 2 * none.chance_at_1
    rotations = cross["maps"][experiments.RANDOM]  # the baseline row: random orthogonal maps, averaged
    assert len(rotations) == experiments.RANDOM_ROTATIONS
    assert all(torch.allclose(w.T @ w, torch.eye(len(w)), atol=1e-5) for w in rotations)
    assert cross[experiments.RANDOM]["criterion"] < cross["refined_criterion"][experiments.RANDOM]


def test_rank_correlation_gives_ties_their_mean_rank_as_scipy_does():
    a, b = [0.1, 0.3, 0.3, 0.5, 0.9, 0.9], [1.0, 2.0, 4.0, 3.0, 6.0, 5.0]
    assert experiments.rank_correlation(a, b) == pytest.approx(scipy.stats.spearmanr(a, b).statistic)


def test_distinct_in_top_counts_the_labels_of_each_query_top_k():
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.7], [0.1, 0.2, 0.9, 0.8]])
    labels = torch.tensor([3, 3, 5, 4])
    # query 0: top 2 are items 0, 1 (label 3 twice); query 1: items 2, 3 (labels 5, 4)
    assert experiments.distinct_in_top(scores, labels, k=2) == pytest.approx(1.5)
    assert experiments.distinct_in_top(scores, labels, k=4) == pytest.approx(3.0)


def test_expected_distinct_equals_the_mean_over_every_random_top_k():
    import itertools

    labels = torch.tensor([0, 0, 0, 1, 1, 2, 3])
    k = 3
    draws = [len({int(labels[i]) for i in pick}) for pick in itertools.combinations(range(len(labels)), k)]
    assert experiments.expected_distinct(labels, k) == pytest.approx(sum(draws) / len(draws))


def test_geometry_correlation_is_pearson_over_the_off_diagonal():
    g = torch.Generator().manual_seed(6)
    a, b = torch.randn(10, 10, generator=g), torch.randn(10, 10, generator=g)
    off = ~torch.eye(10, dtype=torch.bool)
    assert experiments.geometry_correlation(a, b) == pytest.approx(scipy.stats.pearsonr(a[off], b[off]).statistic,
                                                                   abs=1e-6)
    assert experiments.geometry_correlation(a, 2 * a + 1) == pytest.approx(1.0, abs=1e-6)


def test_digit_pairs_join_rows_of_disjoint_halves_that_show_the_same_digit():
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 0, 1, 3, 3, 3])
    a, b = experiments.digit_pairs(labels, seed=4)
    assert len(a) == len(b) and torch.equal(labels[a], labels[b])
    assert not set(a.tolist()) & set(b.tolist())  # no row is paired with itself or sits in both halves
    assert len(set(a.tolist())) == len(a) and len(set(b.tolist())) == len(b)  # each row at most once
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(4))
    first, second = order[: len(labels) // 2], order[len(labels) // 2:]
    assert set(a.tolist()) <= set(first.tolist()) and set(b.tolist()) <= set(second.tolist())
    expected = sum(min(int((labels[first] == c).sum()), int((labels[second] == c).sum())) for c in labels.unique())
    assert len(a) == expected  # every digit pairs as many rows as its smaller half holds


def test_same_modality_controls_compare_half_against_half_on_the_same_pairs():
    """Each criterion is Procrustes on the digit pairs, then the criterion of the first half against the second;
    audio -> image uses the same rows; the digit geometry of a turned copy is the same (correlation 1)."""
    from mmcourse.alignment import mean_cosine_criterion, procrustes

    g = torch.Generator().manual_seed(7)
    labels = {"train": torch.arange(300) % 10, "test": torch.arange(100) % 10}
    embed = {m: {s: torch.randn(len(labels[s]), 8, generator=g) + labels[s][:, None] for s in labels}
             for m in ("image", "audio")}
    turn = random_rotation(8, generator=g)
    second = {m: {s: e @ turn for s, e in embed[m].items()} for m in embed}
    controls = experiments.same_modality_controls({"labels": labels, **embed}, second, seed=3)
    a, b = experiments.digit_pairs(labels["train"], seed=3)
    for name, (x, y) in {"image": (embed["image"], second["image"]), "audio": (embed["audio"], second["audio"]),
                         "audio -> image": (embed["audio"], embed["image"])}.items():
        x, y = experiments.centred_unit(x)["train"], experiments.centred_unit(y)["train"]
        w = procrustes(x[a], y[b])
        assert controls[name]["criterion"] == pytest.approx(mean_cosine_criterion(x[a.sort().values] @ w,
                                                                                  y[b.sort().values]), abs=1e-6)
    for m in ("image", "audio"):
        assert controls[m]["geometry_correlation"] == pytest.approx(1.0, abs=1e-5)
    assert experiments.isometry_gap(controls) == pytest.approx(
        min(controls["image"]["criterion"], controls["audio"]["criterion"]) - controls["audio -> image"]["criterion"])


def test_the_claim_helpers_read_the_right_numbers():
    isometry = {"warps": [0.0, 0.5, 1.0, 1.5, 2.0], "precision": [0.99, 0.95, 0.7, 0.5, 0.4],
                "ceiling": [0.99, 0.96, 0.75, 0.48, 0.41]}
    steps = experiments.warp_steps(isometry)
    assert steps["refined"] == pytest.approx([0.2, 0.1]) and steps["all pairs"] == pytest.approx([0.27, 0.07])
    assert experiments.ceiling_gap(isometry) == pytest.approx(0.05)
    w = torch.eye(3)
    assert experiments.map_distance(2 * w, w) == pytest.approx(1.0)
    effect = {"no orthogonalisation": {"singular_values": torch.tensor([1.4, 1.0, 0.5])}}
    assert experiments.distortion(effect) == pytest.approx(0.4)  # stretched by 0.4, squashed by 0.5: the smaller
    effect = {"no orthogonalisation": {"singular_values": torch.tensor([1.4, 1.2, 1.1])}}
    assert experiments.distortion(effect) < 0  # stretched only
    cross = {"refined_criterion": {experiments.RANDOM: 0.86}, "unrefined_criterion": {experiments.RANDOM: 0.45}}
    assert experiments.refinement_lift(cross) == pytest.approx(0.41)


def test_a_second_training_seed_trains_other_encoders_on_the_same_data():
    from mmcourse.data import load_av_digits

    data = load_av_digits(seed=3)
    first = experiments.train_unimodal_encoders(3, epochs=1, data=data)
    again = experiments.train_unimodal_encoders(3, epochs=1, data=data, train_seed=3)
    other = experiments.train_unimodal_encoders(3, epochs=1, data=data, train_seed=103)
    assert torch.allclose(first["image"]["train"], again["image"]["train"], atol=1e-6)
    assert torch.equal(first["labels"]["train"], other["labels"]["train"])
    assert not torch.allclose(first["audio"]["train"], other["audio"]["train"])


# --- The experiment exercise: how many pairs the adversarial map is worth ----------------------------------


def test_the_worked_answer_passes_and_a_prediction_is_shown_beside_the_measurement(capsys):
    from mmcourse.exercises import PREDICTIONS, check, predict

    predict("pairs_worth", 200)
    for seed in (0, 1):
        assert check("pairs_worth", lambda: experiments.CHOSEN_PAIRS, seed=seed)
    out = capsys.readouterr().out
    assert "meets every outcome" in out
    assert "you predicted the number of pairs at which Procrustes overtakes the adversarial map: 200; this run " \
           "(seed 1) measured" in out
    PREDICTIONS.pop("pairs_worth", None)


@pytest.mark.parametrize("pairs, missed", [
    (8, "precision@1 of Procrustes on the chosen number of random pairs (mean of 5 draws) minus that of the "
        "adversarial map (86 degrees) = -"),  # too few: the adversarial map is still ahead
    (16 * experiments.DIM, "precision@1 of Procrustes on half the chosen number of pairs (mean of 5 draws) minus "
                           "that of the adversarial map = 0.3"),  # far too many: half of them are plenty
])
def test_too_few_or_too_many_pairs_miss_an_outcome(pairs, missed, capsys):
    from mmcourse.exercises import check

    assert not check("pairs_worth", lambda: pairs)
    out = capsys.readouterr().out
    assert "misses an outcome" in out and f"\N{BALLOT X} {missed}" in out, out
    assert f"overtakes at = {experiments.HIDDEN}" in out and "overtakes at = 1" not in out, out  # no answer given


@pytest.mark.parametrize("pairs", [1, 1501, 20.0, True, "20"])
def test_a_number_of_pairs_out_of_range_is_rejected(pairs, capsys):
    from mmcourse.exercises import check

    assert not check("pairs_worth", lambda: pairs)
    assert "your attempt was rejected: pairs: expected a whole number of pairs from 2 to 1500, got" in \
        capsys.readouterr().out


def test_the_crossover_is_where_procrustes_first_does_better_and_is_shown_only_to_a_passing_attempt():
    """`overtakes at` is a number of pairs at which Procrustes beats the adversarial map while one pair fewer does
    not, between half the chosen number and the chosen number; a failing attempt is not told it (calling the
    experiment with any number must not give the answer away)."""
    measured = experiments.pairs_against_adversarial(experiments.CHOSEN_PAIRS, seed=0)
    crossover = int(measured["overtakes at"])
    assert experiments.CHOSEN_PAIRS // 2 < crossover <= experiments.CHOSEN_PAIRS
    spaces, adversarial = experiments.synthetic_spaces(0), experiments.adversarial_precision(0)
    assert experiments.procrustes_precision(spaces, crossover, seed=0) > adversarial
    assert experiments.procrustes_precision(spaces, crossover - 1, seed=0) <= adversarial
    for failing in (2, 600):
        assert experiments.pairs_against_adversarial(failing, seed=0)["overtakes at"] == experiments.HIDDEN


def test_the_identity_is_worth_fewer_pairs_than_the_adversarial_map():
    """The baseline the lesson prints beside the experiment: the untrained identity's worth in pairs is measured
    (the same search), and below the adversarial map's; each is a crossover of Procrustes' precision."""
    worth = experiments.pairs_worth(seed=0)
    spaces = experiments.synthetic_spaces(0)
    assert worth["identity"]["pairs"] < worth["adversarial"]["pairs"]
    assert worth["identity"]["precision"] < worth["adversarial"]["precision"]
    for name in ("identity", "adversarial"):
        m, p = worth[name]["pairs"], worth[name]["precision"]
        assert experiments.procrustes_precision(spaces, m, seed=0) > p >= \
            experiments.procrustes_precision(spaces, m - 1, seed=0)
    assert worth["adversarial"]["pairs"] == \
        experiments.pairs_against_adversarial(experiments.CHOSEN_PAIRS, seed=0)["overtakes at"]
    assert set(worth["procrustes"]) == set(experiments.WORTH_SHOWN)


def test_the_adversarial_map_of_the_experiment_is_the_one_the_build_trains():
    """The experiment's adversarial map is `adversarial_alignment` with its own step and the lesson's settings, as
    the build's training cell runs it (there with the learner's step)."""
    from mmcourse.alignment import adversarial_alignment

    spaces = experiments.synthetic_spaces(0)
    trained = adversarial_alignment(spaces.source, spaces.target, truth=spaces.truth, record_every=30,
                                    eval_rows=300, progress=False)
    assert experiments.csls_precision(spaces.source, spaces.target, trained.maps[0], spaces.truth) == \
        pytest.approx(experiments.adversarial_precision(0), abs=1e-6)
