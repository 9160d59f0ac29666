"""Lesson 07's claims hold on another seed than the lesson's (``claims_hold``); the helpers behind them."""

import torch
from claims_hold import claim_tests

from mmcourse.data import VOCAB
from mmcourse.data.shapes import COLOURS, RGB, SHAPES
from mmcourse.experiments import contrastive as ex
from mmcourse.metrics import ComparisonEntry

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


def test_the_comparison_skips_what_does_not_exist_yet():
    assert ex.comparison_entries("no_such_topic") == []
    assert ex.comparison_entries("fusion") == []  # exists, without speech_to_image_retrieval
    assert ex.running_comparison(seed=0, topics=("no_such_topic", "fusion")) == []
    labels = torch.arange(6) % 3
    entry = ComparisonEntry("x", "07", "all", False, ex.class_retrieval(torch.eye(6), torch.eye(6), labels, labels))
    text = ex.comparison_table([entry])
    assert "pairs" in text and "1.000" in text


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
