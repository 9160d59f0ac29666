"""CCAExplorer driven from Python: the ridge slider and component selector change what it shows."""

import pytest

from mmcourse.cca import CCA
from mmcourse.experiments.cca import many_features
from mmcourse.views.cca import CCAExplorer


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
