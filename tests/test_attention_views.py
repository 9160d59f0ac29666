"""The attention explorer, driven from Python: moving a control changes what it shows."""

import pytest
import torch

from mmcourse.data import ANSWERS, VOCAB, as_tensors, load_shapes
from mmcourse.metrics import patch_masks
from mmcourse.views import attention as views
from mmcourse.views.attention import AttentionExplorer


@pytest.fixture(scope="module")
def explorer():
    shapes = load_shapes(n_train=6, n_validation=1, n_test=1, question_types=["colour", "exists"], seed=3)
    data = as_tensors(shapes["train"], ["image", "masks", "question_ids", "question_object", "answer_id"])
    g = torch.Generator().manual_seed(0)
    weights = torch.softmax(3 * torch.randn(6, 2, 6, 64, generator=g), dim=-1)
    return AttentionExplorer(weights, data, predictions=torch.zeros(6, dtype=torch.long))


def _top(explorer, i, j, h):
    """(shown, expected) top patch and largest weight for sample i, word j, head h (-1: average)."""
    w = explorer.weights[i, :, j].mean(0) if h == -1 else explorer.weights[i, h, j]
    return (explorer.shown["top_patch"], explorer.shown["max_weight"]), (int(w.argmax()), pytest.approx(float(w.max())))


def test_explorer_starts_at_the_word_that_names_an_object(explorer):
    shown, data = explorer.shown, explorer.data
    assert shown["index"] == 0 and shown["head"] == -1
    named = (data["question_object"][0] >= 0).nonzero().flatten().tolist()
    assert shown["position"] == (named[0] if named else 0)
    assert shown["question"] == VOCAB.decode(data["question_ids"][0])
    assert shown["answer"] == ANSWERS[int(data["answer_id"][0])] and shown["predicted"] == ANSWERS[0]


def test_explorer_follows_sample_word_and_head(explorer):
    data = explorer.data
    explorer.index.value = 4
    assert explorer.shown["index"] == 4
    assert [j for _, j in explorer.word.options] == (data["question_ids"][4] != 0).nonzero().flatten().tolist()
    explorer.word.value = 1
    assert explorer.shown["position"] == 1 and explorer.shown["word"] == VOCAB.itos[int(data["question_ids"][4, 1])]
    shown, expected = _top(explorer, 4, 1, -1)
    assert shown == expected
    explorer.head.value = 1
    assert explorer.shown["head"] == 1
    shown, expected = _top(explorer, 4, 1, 1)
    assert shown == expected


def test_explorer_says_whether_the_top_patch_is_in_the_object():
    shapes = load_shapes(n_train=3, n_validation=1, n_test=1, question_types=["colour"], seed=1)
    data = as_tensors(shapes["train"], ["image", "masks", "question_ids", "question_object", "answer_id"])
    inside = patch_masks(data["masks"], 8)  # (3, K, 64)
    obj = data["question_object"][:, 4]  # colour questions name their object with word 4
    weights = torch.full((3, 1, 6, 64), 1 / 64)
    first_in = inside[torch.arange(3), obj].float().argmax(1)  # a patch inside each named object
    weights[torch.arange(3), 0, 4, first_in] = 0.5
    view = AttentionExplorer(weights, data)
    for i in range(3):
        view.index.value = i
        assert view.shown["word"] in ("circle", "square", "triangle") and view.shown["object"] == int(obj[i])
        assert view.shown["top_patch"] == int(first_in[i]) and view.shown["top_in_object"] is True
    view.word.value = 0  # "what" names nothing
    assert view.shown["object"] == -1 and view.shown["top_in_object"] is None


def test_explorer_checks_its_weights(explorer):
    with pytest.raises(ValueError, match=r"weights: expected shape \(6, H, L, P\)"):
        AttentionExplorer(explorer.weights[0], explorer.data)


@pytest.fixture
def shown_figures(monkeypatch):
    """The figures the views show (``plt.show`` records the current figure instead of drawing it)."""
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "show", lambda: figures.append(plt.gcf()))
    return figures


def _texts(ax):
    return [t.get_text() for t in ax.texts]


@pytest.mark.parametrize("num_heads, dim", [(4, 8), (2, 8), (3, 6)])
def test_multi_head_picture_draws_one_row_per_head(num_heads, dim, shown_figures):
    views.multi_head_picture(num_heads=num_heads, length=3, dim=dim)
    ax = shown_figures[0].axes[0]
    texts = _texts(ax)
    assert [t for t in texts if t.startswith("head ")] == [f"head {h}" for h in range(num_heads)]
    assert {"split", "merge", "$W^O$"} <= set(texts)
    assert len(ax.images) == num_heads  # one L x L weight map per head
    assert all(image.get_array().shape == (3, 3) for image in ax.images)
    cells = [p for p in ax.patches if p.get_width() == pytest.approx(0.3)]
    assert len(cells) == 5 * 3 * dim  # L x E cells each: Q, the heads, their outputs, merged, output


def test_multi_head_picture_checks_the_head_count():
    with pytest.raises(ValueError, match="num_heads: expected a divisor of dim=8, got 3"):
        views.draw_multi_head(None, num_heads=3, dim=8)


def test_cross_modal_block_picture_has_pre_ln_residuals_and_feed_forward(shown_figures):
    views.cross_modal_block_picture()
    texts = _texts(shown_figures[0].axes[0])
    assert texts.count("LayerNorm") == 3 and texts.count("residual") == 2 and texts.count("+") == 2
    assert "multi-head\nattention" in texts and "K, V" in texts and "Q" in texts
    assert any(t.startswith("feed-forward") for t in texts)


def test_deletion_plot_draws_each_order_with_its_area(shown_figures):
    from mmcourse.experiments.attention import Deletion

    curves = {"attention": torch.tensor([0.9, 0.5, 0.4]), "random": torch.tensor([0.9, 0.85, 0.8])}
    deletion = Deletion([0, 1, 2], curves, {"attention": 0.575, "random": 0.85}, {}, None)
    views.deletion_plot(deletion, reference=0.25)
    ax = shown_figures[0].axes[0]
    assert [line.get_ydata().tolist() for line in ax.lines[:2]] == [pytest.approx(c.tolist()) for c in curves.values()]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["attention (area 0.57)", "random (area 0.85)", "majority answer"]


def test_where_words_look_stacks_the_three_places_and_the_baselines(shown_figures):
    from mmcourse.experiments.attention import ObjectGrounding

    views.where_words_look(ObjectGrounding(0.8, 0.15, 0.05, 0.45, 0.1, 600))
    left, right = shown_figures[0].axes
    widths = [p.get_width() for p in left.patches]
    assert widths == pytest.approx([0.8, 0.15, 0.05])
    assert [p.get_height() for p in right.patches] == pytest.approx([0.8, 0.45, 0.1])
