"""Lesson 07's claims hold on another seed than the lesson's (``claims_hold``); the helpers behind them."""

import math

import pytest
import torch
from claims_hold import claim_tests

from mmcourse.data import VOCAB
from mmcourse.data.shapes import COLOURS, RGB, SHAPES
from mmcourse.experiments import contrastive as ex
from mmcourse.metrics import ndcg_at_k

measured, test_every_claim_is_measured, test_claim_holds = claim_tests(ex, seeds=(1,))


def _objects(*scenes):
    """Scenes as (N, 3, 4) attributes (shape, colour, size, position), -1 in empty slots."""
    out = torch.full((len(scenes), 3, 4), -1)
    for i, scene in enumerate(scenes):
        for k, obj in enumerate(scene):
            out[i, k] = torch.tensor(obj)
    return out


def test_relevance_counts_whole_objects():
    a, b, c = (0, 1, 0, 4), (2, 3, 1, 0), (1, 0, 1, 8)
    scenes = _objects([a, b], [b, a], [a], [c, (0, 1, 0, 5)], [a, b, c])
    relevance = ex.contained(scenes, scenes)
    assert relevance[0].tolist() == [2, 2, 1, 0, 2]  # caption 0 names a and b: scene 3 has a moved a, no match
    assert relevance[2].tolist() == [1, 1, 1, 0, 1]
    same = ex.same_description(scenes, scenes)
    assert same[0].tolist() == [True, True, False, False, False]  # object order does not matter, extras do
    assert ex.attribute_matches(_objects([a]), scenes)[0].tolist() == [4, 4, 4, 3, 4]


def test_captions_and_word_counts():
    caption = ex.caption_of("large", "red", "triangle", "top left")
    assert caption == "a large red triangle at the top left"
    ids = ex.encode_captions([caption, "a small blue circle at the center"])
    assert ids.shape == (2, 26) and VOCAB.decode(ids[0]) == caption
    counts = ex.word_counts(ids)
    assert counts[0, VOCAB.stoi["red"]] == 1 and counts[0, VOCAB.stoi["the"]] == 1 and counts[0, VOCAB.pad_id] == 0
    assert counts.sum(1).tolist() == [8, 7]


def test_one_object_scenes_and_prompts():
    scenes = ex.one_object_scenes(per_cell=1, seed=0)
    assert scenes["image"].shape == (12 * 18, 3, 32, 32)
    assert torch.bincount(scenes["label"]).tolist() == [18] * 12
    for i in (0, 100, 215):  # the object's pixels have its class's colour
        colour, _ = ex.CLASSES[int(scenes["label"][i])]
        pixels = scenes["image"][i].flatten(1).T
        assert (pixels - torch.tensor(RGB[colour])).abs().amax(1).min() < 1e-6
    prompts = ex.class_prompts()
    assert prompts.shape == (12, 18, 26)
    assert VOCAB.decode(prompts[ex.CLASSES.index(("red", "triangle")), 0]) == "a small red triangle at the top left"
    assert [ex.CLASSES[i] for i in ex.UNSEEN] == list(ex.HOLDOUT)
    assert len(ex.CLASSES) == len(COLOURS) * len(SHAPES) and sorted(ex.SEEN + ex.UNSEEN) == list(range(12))


def test_class_of_scene_and_the_seen_classifier():
    columns = {"object_shape": torch.tensor([[2, -1, -1], [0, 1, -1]]), "object_colour": torch.tensor([[0, -1, -1],
                                                                                                      [3, 1, -1]])}
    assert [ex.CLASSES[i] for i in ex.class_of_scene(columns)] == [("red", "triangle"), ("yellow", "circle")]
    classifier = ex.SeenClassifier(torch.nn.Linear(3 * 32 * 32, len(ex.SEEN)).requires_grad_(False))
    scores = classifier(torch.rand(4, 3 * 32 * 32))
    assert scores.shape == (4, 12) and torch.isinf(scores[:, ex.UNSEEN]).all()
    assert not torch.isin(scores.argmax(1), torch.tensor(ex.UNSEEN)).any()


def test_the_running_comparison_row_is_the_lessons_dual_encoder():
    """The row lesson 07 prints: its dual encoder, no labels, each query's hit kept for paired comparisons; the
    same numbers when computed again, whatever the global generator holds."""
    (entry,) = ex.speech_to_image_retrieval(seed=1)
    assert (entry.method, entry.lesson, entry.pairs, entry.labels) == ("contrastive dual encoder", "07", "all", "none")
    assert len(entry.hits) == 360 and sum(entry.hits) / 360 == pytest.approx(entry.retrieval.recall_at_1)
    assert entry.retrieval.recall_at_1 > 2 * entry.retrieval.chance_at_1
    torch.rand(1000)  # as the lesson's earlier cells draw
    assert ex.speech_to_image_retrieval(seed=1) == [entry]


def test_linear_cca_baseline_and_retrieval_metrics():
    g = torch.Generator().manual_seed(0)
    n = 200
    train = {"image": torch.rand(n, 3, 32, 32, generator=g), "caption_ids": torch.randint(1, len(VOCAB), (n, 26),
                                                                                          generator=g)}
    cca = ex.fit_linear_cca(train, n_components=4)
    image, caption = ex.embed(cca, train)
    assert image.shape == caption.shape == (n, 4)
    assert torch.allclose(image.norm(dim=1), torch.ones(n), atol=1e-5)
    objects = _objects(*[[(i % 3, i // 3 % 4, i // 12 % 2, i // 24)] for i in range(n)])  # all different
    perfect = ex.two_way_retrieval(torch.eye(n), torch.eye(n), objects)
    assert perfect["caption -> image"]["R@1"] == 1.0 and perfect["image -> caption"]["NDCG@10"] > 0.99
    assert perfect["chance"]["caption -> image"]["R@1"] < 0.1
    assert "chance" in ex.table({"perfect": perfect})


def test_hard_negative_share_against_a_direct_computation_and_its_bound():
    g = torch.Generator().manual_seed(0)
    cosines = torch.nn.functional.normalize(torch.randn(12, 6, generator=g), dim=1)
    cosines = cosines @ torch.nn.functional.normalize(torch.randn(12, 6, generator=g), dim=1).T
    share = ex.hard_negative_share(cosines, 0.1, k=3)
    for i in range(12):  # row i: softmax over the row, the 3 most similar of the 11 others
        weight = [math.exp(float(cosines[i, j]) / 0.1) for j in range(12)]
        negatives = sorted((j for j in range(12) if j != i), key=lambda j: -float(cosines[i, j]))
        expected = sum(weight[j] for j in negatives[:3]) / sum(weight[j] for j in negatives)
        assert share[i].item() == pytest.approx(expected, rel=1e-5)
    assert (ex.hard_negative_share(cosines, 1.0, k=3) <= ex.hard_negative_bound(12, 3, 1.0) + 1e-6).all()
    assert ex.hard_negative_share(cosines, 0.01, k=3).mean() > ex.hard_negative_share(cosines, 1.0, k=3).mean()
    extreme = -torch.ones(8, 8)  # every row: its 2 hardest negatives at cosine 1, the other 5 at -1
    for i in range(8):
        extreme[i, (i + 1) % 8] = extreme[i, (i + 2) % 8] = 1.0
    assert ex.hard_negative_share(extreme, 1.0, k=2) == pytest.approx(torch.full((8,), ex.hard_negative_bound(8, 2)))
    assert ex.hard_negative_bound(128) == pytest.approx(5 * math.e**2 / (5 * math.e**2 + 122))
    with pytest.raises(ValueError, match="similarities"):
        ex.hard_negative_share(torch.zeros(4, 5), 1.0, k=1)
    with pytest.raises(ValueError, match="k"):
        ex.hard_negative_share(torch.zeros(4, 4), 1.0, k=3)


def test_binding_scenes_swap_the_colours_of_two_seen_combinations():
    scenes = ex.binding_scenes(n=40, seed=1)
    assert scenes["image"].shape == (40, 3, 32, 32) and scenes["caption_ids"].shape == scenes["swapped_ids"].shape
    assert torch.equal(ex.word_counts(scenes["swapped_ids"]), ex.word_counts(scenes["caption_ids"]))
    seen = set(ex.CLASSES) - set(ex.HOLDOUT)
    for i in range(40):
        own, swapped = VOCAB.decode(scenes["caption_ids"][i]).split(), VOCAB.decode(scenes["swapped_ids"][i]).split()
        colours = [w for w in own if w in COLOURS]
        shapes = [w for w in own if w in SHAPES]
        assert len(colours) == len(shapes) == 2 and colours[0] != colours[1] and shapes[0] != shapes[1]
        assert [w for w in swapped if w in COLOURS] == colours[::-1]  # only the colours moved
        assert [w for w in swapped if w not in COLOURS] == [w for w in own if w not in COLOURS]
        assert {(colours[0], shapes[0]), (colours[1], shapes[1]), (colours[1], shapes[0]),
                (colours[0], shapes[1])} <= seen
        for colour in colours:  # both colours are drawn in the scene
            pixels = scenes["image"][i].flatten(1).T
            assert (pixels - torch.tensor(RGB[colour])).abs().amax(1).min() < 1e-6
    assert torch.equal(ex.binding_scenes(n=40, seed=1)["image"], scenes["image"])  # the same scenes for a seed


def test_object_classes():
    columns = {"object_shape": torch.tensor([[2, -1, -1], [0, 1, -1]]),
               "object_colour": torch.tensor([[0, -1, -1], [3, 1, -1]])}
    classes = ex.object_classes(columns)
    assert classes.tolist() == [[ex.CLASSES.index(("red", "triangle")), -1, -1],
                                [ex.CLASSES.index(("yellow", "circle")), ex.CLASSES.index(("green", "square")), -1]]


def test_caption_hits_are_recall_query_by_query():
    objects = _objects(*[[(i % 3, i // 3 % 4, i // 12 % 2, i // 24)] for i in range(40)])  # all different
    emb = torch.eye(40)
    assert ex.caption_hits(emb, emb, objects).tolist() == [1.0] * 40
    assert ex.caption_hits(emb, emb.roll(1, dims=0), objects).tolist() == [0.0] * 40
    assert ex.caption_hits(emb, emb.roll(1, dims=0), objects, k=40).tolist() == [1.0] * 40


def test_zero_shot_scores_each_method_among_9_and_among_12():
    torch.manual_seed(0)
    model = ex.build_model().eval()
    classifier = ex.SeenClassifier(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 9)).eval())
    result = ex.zero_shot(model, classifier, seed=0)
    assert set(result.accuracy) == {(m, p) for m in ex.ZERO_SHOT_METHODS for p in ex.ZERO_SHOT_PARTS}
    assert result.chance == {"seen, among 9": 1 / 9, "seen, among 12": 1 / 12, "unseen, among 12": 1 / 12}
    label = result.scenes["label"]
    seen = ~torch.isin(label, torch.tensor(ex.UNSEEN))
    supervised = result.accuracy
    assert supervised[("supervised", "unseen, among 12")] == pytest.approx(0.0)  # it never names an unseen class
    assert supervised[("supervised", "seen, among 9")] == pytest.approx(supervised[("supervised", "seen, among 12")])
    with torch.no_grad():  # the best prompt among the 9 seen classes, by hand
        from mmcourse.contrastive import zero_shot_classifier

        scores = zero_shot_classifier(model, ex.class_prompts(), "max")(result.scenes["image"])
    by_hand = torch.tensor(ex.SEEN)[scores[:, ex.SEEN].argmax(1)]
    assert result.accuracy[("prompts, best", "seen, among 9")] == pytest.approx(
        (by_hand[seen] == label[seen]).float().mean().item())
    assert result.accuracy[("prompts, best", "seen, among 12")] == pytest.approx(
        (scores.argmax(1)[seen] == label[seen]).float().mean().item())


def test_zero_shot_scores_colour_and_shape_apart():
    torch.manual_seed(0)
    model = ex.build_model().eval()
    classifier = ex.SeenClassifier(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 9)).eval())
    result = ex.zero_shot(model, classifier, seed=0)
    label = result.scenes["label"]
    unseen = torch.isin(label, torch.tensor(ex.UNSEEN))
    for method in ("prompts, mean", "prompts, best"):  # by the classes' names, not by index arithmetic
        names = [(ex.CLASSES[int(p)], ex.CLASSES[int(t)]) for p, t in zip(result.predictions[method][unseen],
                                                                          label[unseen])]
        colour = sum(p[0] == t[0] for p, t in names) / len(names)
        shape = sum(p[1] == t[1] for p, t in names) / len(names)
        assert result.attributes[(method, "colour")] == pytest.approx(colour)
        assert result.attributes[(method, "shape")] == pytest.approx(shape)
        both = result.accuracy[(method, "unseen, among 12")]
        assert both <= min(colour, shape) + 1e-9  # a right class has the right colour and the right shape
    assert ex.COLOUR_ONLY == pytest.approx(1 / len(SHAPES))
    assert "colour right" in result.attribute_table()


def test_tune_linear_cca_chooses_on_held_out_training_pairs_only():
    data = ex.load_scenes(seed=0, n_train=700, n_test=50)
    tuned = ex.tune_linear_cca(data["train"], n_validation=200, components=(2, 6), ridges=(1e-3, 1.0))
    assert set(tuned.validation) == {(2, 1e-3), (2, 1.0), (6, 1e-3), (6, 1.0)}
    assert (tuned.n_components, tuned.reg) == max(tuned.validation, key=tuned.validation.get)
    # the validation score of a setting, by hand: fitted on the first 500 pairs, scored on the last 200
    fitted = {k: v[:500] for k, v in data["train"].items()}
    held = {k: v[500:] for k, v in data["train"].items()}
    image, caption = ex.embed(ex.fit_linear_cca(fitted, 6, 1.0), held)
    objects = ex.objects_of(held)
    assert tuned.validation[(6, 1.0)] == pytest.approx(
        ndcg_at_k(caption @ image.T, ex.contained(objects, objects), 10))
    # the model returned is refitted on every training pair with the chosen settings
    refit = ex.fit_linear_cca(data["train"], tuned.n_components, tuned.reg)
    assert torch.allclose(tuned.model.cca.x_weights_, refit.cca.x_weights_)
    assert "chosen:" in str(tuned)
    with pytest.raises(ValueError, match="n_validation"):
        ex.tune_linear_cca(data["train"], n_validation=695)


def test_ndcg_by_objects_splits_the_captions():
    objects = _objects(*[[(i % 3, i // 3 % 4, i // 12 % 2, i // 24)][: 1] + [(2, 3, 1, 8)] * (i % 2)
                         for i in range(40)])
    emb = torch.eye(40)
    perfect = ex.ndcg_by_objects(emb, emb, objects)
    assert set(perfect) == {1, 2} and perfect[1] == pytest.approx(1.0)
    shuffled = ex.ndcg_by_objects(emb, emb.roll(1, dims=0), objects)
    scores, relevance = emb.roll(1, dims=0) @ emb.T, ex.contained(objects, objects)
    two = torch.arange(40) % 2 == 1
    assert shuffled[2] == pytest.approx(ndcg_at_k(scores[two], relevance[two], 10))


def test_temperature_drift_against_a_hand_computed_run():
    model = ex.build_model()
    s = [math.log(1 / 0.07) + 0.003 * i for i in range(11)]
    s[4] = s[3] - 0.001  # one step down
    model.logit_scales_ = s
    drift = ex.temperature_drift(model, lr=0.003)
    assert drift.steps == 10 and drift.lr_steps == pytest.approx(0.03)
    assert drift.start == pytest.approx(0.07) and drift.end == pytest.approx(0.07 * math.exp(-0.03))
    assert drift.change == pytest.approx(0.03) and drift.rising == pytest.approx(0.9)
    assert drift.reachable == pytest.approx(0.07 * math.exp(-0.03))
    assert "lr x steps" in str(drift)
    with pytest.raises(ValueError, match="model"):
        ex.temperature_drift(ex.build_model())


def test_random_push_shares_at_a_small_temperature():
    shares = ex.random_push_shares(0.05, b=64, seed=3)
    assert shares.shape == (64,) and torch.equal(shares, ex.random_push_shares(0.05, b=64, seed=3))
    assert (ex.random_push_shares(1.0, b=64) <= ex.hard_negative_bound(64) + 1e-6).all()
    assert ex.random_push_shares(0.05, b=64).mean() > ex.random_push_shares(1.0, b=64).mean()


def test_load_scenes_shares_its_tensors_in_new_dicts():
    first = ex.load_scenes(seed=0, n_train=300, n_test=50)
    second = ex.load_scenes(seed=0, n_train=300, n_test=50)
    assert first is not second and first["train"] is not second["train"]  # a key added to one stays there
    assert second["train"]["image"] is first["train"]["image"]  # drawn once
    assert not torch.equal(ex.load_scenes(seed=1, n_train=300, n_test=50)["train"]["image"], first["train"]["image"])


def test_embed_and_own_pair_first_take_a_build_without_encode_image():
    class Build(torch.nn.Module):  # the build's forward: unit embeddings and s, no encode_image
        def forward(self, image, text):
            emb = torch.nn.functional.normalize(image.flatten(1)[:, :4], dim=1)
            return emb, emb.roll(int(text[0, 0]), dims=0), torch.tensor(0.0)

    columns = {"image": torch.randn(6, 3, 2, 2), "caption_ids": torch.zeros(6, 3, dtype=torch.long)}
    image, text = ex.embed(Build(), columns)
    assert torch.equal(image, text) and ex.own_pair_first(Build(), columns) == 6
    columns["caption_ids"][0, 0] = 1  # every caption now matches the next scene's embedding
    assert ex.own_pair_first(Build(), columns) == 0


def test_train_build_trains_a_class_with_a_step_and_says_what_it_needs():
    g = torch.Generator().manual_seed(1)
    train = {"image": torch.rand(128, 3, 32, 32, generator=g),
             "caption_ids": torch.randint(1, 27, (128, 26), generator=g)}
    calls = []

    def step(model, batch, optimizer):
        calls.append(len(batch["image"]))
        return ex.clip_step(model, batch, optimizer)

    model, losses = ex.train_build(ex.DualEncoder, step, train, seed=0, steps=3)  # one batch a pass: 3 passes
    assert calls == [128] * 3 and len(losses) == 3 and not model.training
    assert all(isinstance(loss, float) for loss in losses) and losses[-1] < losses[0]
    with pytest.raises(ValueError, match="steps"):
        ex.train_build(ex.DualEncoder, step, train, steps=0)


def test_the_temperature_experiment_compares_with_tau_one_on_held_out_training_pairs():
    with pytest.raises(ValueError, match="temperature: expected a number from 0.01 to 1000"):
        ex.temperature_trial(0.001)
    assert ex.check_temperature(1) == 1.0 and isinstance(ex.check_temperature(1), float)
    trial = ex.temperature_trial(ex.SHORT_RUN_TEMPERATURE, seed=0)
    gain, ours, plain = (trial[k] for k in ("your tau minus tau = 1", "Recall@1 at your tau", "Recall@1 at tau = 1"))
    assert gain == pytest.approx(ours - plain)
    assert ex.held_out_recall(1.0, 0) == plain  # kept: not trained again
    assert ex.TEMPERATURE_FOUND.holds(gain)
    assert ex.temperature_trial(1.0, seed=0)["your tau minus tau = 1"] == 0.0
