"""CCAExplorer driven from Python: the ridge slider and component selector change what it shows."""

import pytest

from mmcourse.cca import CCA
from mmcourse.experiments.cca import many_features
from mmcourse.views.cca import CCAExplorer, deep_cca_architecture, retrieval_comparison


@pytest.fixture(scope="module")
def setup():
    views = many_features(seed=0, n_test=500)
    return views, CCAExplorer(views.x, views.y, views.x_test, views.y_test, n_components=3)


def test_explorer_starts_at_plain_cca_and_follows_the_ridge(setup):
    views, explorer = setup
    assert explorer.shown["reg"] == 0.0 and explorer.shown["component"] == 1
    assert min(explorer.shown["train"]) > 0.999  # p + q > n: plain CCA overfits
    explorer.reg.value = 0.3
    expected = CCA(3, reg=0.3).fit(views.x, views.y)
    assert explorer.shown["reg"] == 0.3
    assert explorer.shown["train"] == pytest.approx(expected.correlations(views.x, views.y).tolist())
    assert explorer.shown["held_out"] == pytest.approx(expected.correlations(views.x_test, views.y_test).tolist())
    assert explorer.shown["held_out"][0] > 0.6 > max(explorer.held_out[0])


def test_explorer_component_selector(setup):
    _, explorer = setup
    explorer.reg.value = 1.0
    explorer.component.value = 2  # the third pair
    assert explorer.shown["component"] == 3
    assert explorer.shown["pair"] == (explorer.shown["train"][2], explorer.shown["held_out"][2])


def test_explorer_checks_its_ridges(setup):
    views, _ = setup
    with pytest.raises(ValueError, match="regs"):
        CCAExplorer(views.x, views.y, views.x_test, views.y_test, regs=(1.0, 0.1))
    with pytest.raises(ValueError, match="regs"):
        CCAExplorer(views.x, views.y, views.x_test, views.y_test, regs=())


@pytest.fixture
def shown_figures(monkeypatch):
    """The figures the views show (``plt.show`` records the current figure instead of drawing it)."""
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "show", lambda: figures.append(plt.gcf()))
    return figures


def test_deep_cca_architecture_shows_two_networks_and_the_objective(shown_figures):
    deep_cca_architecture()
    (fig,) = shown_figures
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "$f_1$" in texts and "$f_2$" in texts and r"\tilde C_{xy}" in texts
    assert len(fig.axes[0].patches) == 7  # 2 x (input, network, output) and the objective


def test_retrieval_comparison_draws_each_method_and_chance(shown_figures):
    retrieval_comparison({"linear CCA": (0.48, 0.76), "Deep CCA": (0.45, 0.74)}, (0.1, 0.41))
    (fig,) = shown_figures
    for ax, expected, chance in zip(fig.axes, ((0.48, 0.45), (0.76, 0.74)), (0.1, 0.41)):
        assert [bar.get_height() for bar in ax.patches] == pytest.approx(expected)
        assert ax.lines[0].get_ydata()[0] == pytest.approx(chance)
