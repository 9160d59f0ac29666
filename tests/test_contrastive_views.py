"""Lesson 07's views driven from Python: the retrieval browser follows its dropdowns and its model switch,
and only evaluates; the static views draw from what the experiments return."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from mmcourse.data.shapes import COLOURS, POSITIONS, SHAPES, SIZES  # noqa: E402
from mmcourse.experiments import contrastive as ex  # noqa: E402
from mmcourse.metrics import ComparisonEntry, Retrieval  # noqa: E402
from mmcourse.views import contrastive as views  # noqa: E402


@pytest.fixture(scope="module")
def scenes():
    data = ex.load_scenes(seed=3, n_train=300, n_test=120)
    torch.manual_seed(0)
    models = {"untrained": ex.build_model().eval(), "linear CCA": ex.fit_linear_cca(data["train"], n_components=8)}
    return data["test"], models


def _snapshot(model):
    return [p.detach().clone() for p in model.parameters()]


def test_browser_follows_the_dropdowns(scenes):
    test, models = scenes
    before = _snapshot(models["untrained"])
    browser = views.RetrievalBrowser(models, test, top=5)
    assert browser.shown["caption"] == "a large red triangle at the center" and browser.shown["model"] == "untrained"
    browser.colour.value, browser.position.value, browser.size.value = "blue", "top left", "small"
    caption = "a small blue triangle at the top left"
    assert browser.shown["caption"] == caption and len(browser.shown["top"]) == 5
    with torch.no_grad():
        model = models["untrained"]
        expected = (model.encode_text(ex.encode_captions([caption])) @ model.encode_image(test["image"]).T)[0]
    assert browser.shown["top"] == expected.topk(5).indices.tolist()
    assert browser.shown["scores"] == pytest.approx(expected.topk(5).values.tolist(), abs=1e-5)
    assert browser.shown["scores"] == sorted(browser.shown["scores"], reverse=True)
    assert all(new.equal(old) for new, old in zip(_snapshot(models["untrained"]), before))


def test_browser_relevance_and_model_switch(scenes):
    test, models = scenes
    browser = views.RetrievalBrowser(models, test, top=8)
    first = next(i for i in range(len(test["image"])) if test["object_shape"][i, 0] >= 0)
    browser.shape.value = SHAPES[int(test["object_shape"][first, 0])]
    browser.colour.value = COLOURS[int(test["object_colour"][first, 0])]
    browser.size.value = SIZES[int(test["object_size"][first, 0])]
    browser.position.value = POSITIONS[int(test["object_position"][first, 0])]
    browser.model.value = "linear CCA"
    assert browser.shown["model"] == "linear CCA"
    objects = ex.objects_of(test)
    query = browser.query()
    for g, r, a in zip(browser.shown["top"], browser.shown["relevance"], browser.shown["attributes"]):
        assert r == int(ex.contained(query, objects[g : g + 1])[0, 0]) and 0 <= a <= 4
        assert (r == 1) == (a == 4)
    scores = browser.shown["scores"]
    browser.model.value = "untrained"
    assert browser.shown["scores"] != scores


def test_browser_checks_its_arguments(scenes):
    test, models = scenes
    with pytest.raises(ValueError, match="models"):
        views.RetrievalBrowser({}, test)
    with pytest.raises(ValueError, match="top"):
        views.RetrievalBrowser(models, test, top=0)


def test_static_views_draw():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, 32, 32, generator=g)
    views.similarity_matrix(images, torch.rand(4, 4, generator=g) * 2 - 1, "a title")
    views.temperature_curve([2.66, 2.7, 2.9])
    views.loss_curve([4.9, 4.2, 3.1], batch_size=128, title="a build")
    views.temperature_curve({"started at 0.07": [2.66, 2.7, 2.9], "started at 1": [0.0, 0.004, 0.009]}, lr=3e-3)
    scores, relevance = torch.rand(3, 4, generator=g), torch.randint(0, 3, (3, 4), generator=g)
    views.retrieval_examples(["one", "two", "three"], images, scores, relevance, queries=[0, 2], top=3)
    retrieval = Retrieval(0.5, 0.8, 0.1, 0.4)
    views.comparison_chart([ComparisonEntry("linear CCA", "02", "all", "model selection", retrieval),
                            ComparisonEntry("contrastive dual encoder", "07", "all", "none", retrieval)])


def test_zero_shot_views_draw():
    scenes = ex.one_object_scenes(per_cell=1)
    labels = scenes["label"]
    predictions = {m: labels.clone() for m in ex.ZERO_SHOT_METHODS}
    accuracy = {(m, part): 1.0 for m in ex.ZERO_SHOT_METHODS for part in ex.ZERO_SHOT_PARTS}
    result = ex.ZeroShot(accuracy, {"seen, among 9": 1 / 9, "seen, among 12": 1 / 12, "unseen, among 12": 1 / 12},
                         predictions, scenes)
    views.zero_shot_bars(result)
    views.unseen_examples(result, count=4)
    assert "unseen, among 12" in result.table() and "0.111" in result.table()
    assert "prompts" not in result.attribute_table().split("\n", 1)[1].split("chance")[0]  # none measured here
