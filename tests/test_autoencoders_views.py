"""The latent-space explorer driven from Python: moving a control changes what it decodes and draws,
and the pictures of lesson 05 draw without error."""

import pytest
import torch

from mmcourse.experiments import autoencoders as ex
from mmcourse.views.autoencoders import (
    LatentExplorer,
    caption_title,
    gaussian_product,
    generated_rows,
    product_and_mixture,
    three_ways,
)
from mmcourse.views.common import figure


@pytest.fixture(scope="module")
def explorer():
    data = ex.shapes_data(seed=2, n_train=30, n_test=15)
    torch.manual_seed(0)
    model = ex.build_model("MMVAE", data).eval()
    return LatentExplorer(model, data)


def test_the_explorer_decodes_the_point_of_the_sliders(explorer):
    latent = explorer.map
    explorer.x.value, explorer.y.value = 0.5, -0.3
    shown = explorer.shown
    x, y = shown["point"]
    assert (x, y) == (explorer.x.value, explorer.y.value) and abs(x - 0.5) < 1e-6 and abs(y + 0.3) < 1e-6
    nearest = shown["nearest"]
    codes, points = latent["codes"]["caption"], latent["points"]["caption"]
    assert nearest == int((points - torch.tensor([x, y])).pow(2).sum(1).argmin())
    code = torch.tensor(shown["code"])
    torch.testing.assert_close(latent["project"](code[None])[0], torch.tensor([x, y]), atol=1e-4, rtol=0)
    torch.testing.assert_close(code - codes[nearest], (torch.tensor([x, y]) - points[nearest]) @ latent["components"])
    with torch.no_grad():
        caption = explorer.model.decode(code[None])[1][0]
    assert shown["decoded"] == ex.describe(caption)


def test_the_explorer_interpolates_between_the_chosen_samples(explorer):
    explorer.given.value = "caption"
    explorer.a.value, explorer.b.value = 3, 7
    path = torch.tensor(explorer.shown["path"])
    codes = explorer.map["codes"]["caption"]
    assert explorer.shown["samples"] == (3, 7) and path.shape == (LatentExplorer.STEPS, ex.LATENT_DIM)
    torch.testing.assert_close(path[0], codes[3])
    torch.testing.assert_close(path[-1], codes[7])
    explorer.given.value = "image"
    torch.testing.assert_close(torch.tensor(explorer.shown["path"])[0], explorer.map["codes"]["image"][3])


def test_the_explorer_rejects_an_unknown_modality(explorer):
    with pytest.raises(ValueError, match="given"):
        LatentExplorer(explorer.model, explorer.data, given="audio")


def test_the_pictures_draw():
    with figure(9, 2, ncols=3) as axes:
        three_ways(axes)
    with figure(4, 2) as axes:
        gaussian_product(axes[0], [-1.0, 2.0], [1.0, 0.25], with_prior=True)
    product_and_mixture([-1.0, 2.0], [1.0, 0.25])
    assert caption_title(torch.tensor([1, 0, 2, 8])) == "large red\ntriangle\nbottom right"
    data = ex.shapes_data(seed=1, n_train=5, n_test=4)
    generated_rows(data, {"real": data.test["image"]}, ["a", "b", "c", "d"])
    generated_rows(data, {"real": data.test["caption"]}, ["a", "b", "c", "d"], modality="caption")


def test_coherence_bars_leave_out_a_direction_a_model_lacks(monkeypatch):
    import matplotlib.pyplot as plt

    from mmcourse.views.autoencoders import coherence_bars

    drawn = {}
    monkeypatch.setattr(plt, "show", lambda: drawn.update(axes=plt.gcf().axes))
    cell = ex.Coherence(0.5, 0.1, torch.ones(3, dtype=torch.bool))
    table = {"autoencoder": {"a -> b": cell, "b -> a": cell},
             "MVAE": {"a -> b": cell, "b -> a": cell, "prior -> both": ex.Coherence(0.3, 0.1, cell.hits)}}
    coherence_bars({"shapes": table})
    (ax,) = drawn["axes"]
    heights = sorted(round(bar.get_height(), 3) for bar in ax.patches)
    assert heights == [0.3] + [0.5] * 4  # five bars: the autoencoder has none for "prior -> both"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a -> b", "b -> a", "prior -> both"]
