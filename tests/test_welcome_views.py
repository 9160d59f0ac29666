"""Widgets driven from Python: moving a control changes what the view shows."""

import pytest

from mmcourse.data import load_av_digits, load_shapes
from mmcourse.views.welcome import SampleBrowser


@pytest.fixture(scope="module")
def browser():
    return SampleBrowser({"AV-Digits": load_av_digits(), "Shapes & captions": load_shapes(n_train=50, n_validation=5,
                                                                                         n_test=20)})


def test_browser_follows_the_controls(browser):
    av = browser.datasets["AV-Digits"]
    assert browser.shown["data"] == "AV-Digits" and browser.shown["index"] == 0
    browser.index.value = 7
    assert browser.shown["index"] == 7
    assert browser.shown["label"] == av["train"].features["label"].int2str(int(av["train"][7]["label"]))
    assert browser.shown["voice"] == av["train"][7]["voice"]
    browser.split.value = "test"
    assert browser.shown["split"] == "test" and browser.index.max == len(av["test"]) - 1
    assert browser.shown["voice"] == av["test"][7]["voice"]


def test_browser_switches_data_set(browser):
    browser.dataset.value = "Shapes & captions"
    shapes = browser.datasets["Shapes & captions"]
    assert browser.shown["data"] == "Shapes & captions" and browser.shown["index"] == 0
    assert browser.index.max == len(shapes[browser.split.value]) - 1
    assert browser.shown["caption"] == shapes[browser.split.value][0]["caption"]
    browser.index.value = 3
    assert browser.shown["answer"] == shapes[browser.split.value][3]["answer"]


def test_browser_needs_data():
    with pytest.raises(ValueError, match="datasets"):
        SampleBrowser({})
