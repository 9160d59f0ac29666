"""Lesson 05's claims hold on another seed than the lesson's (``claims_hold``); the helpers behind them."""

import pytest
import torch
from claims_hold import claim_tests

from mmcourse.autoencoders import MMVAE, MVAE, BimodalAutoencoder
from mmcourse.experiments import autoencoders as ex

measured, test_every_claim_is_measured, test_claim_holds = claim_tests(ex, seeds=(1,))


@pytest.fixture(scope="module")
def small_shapes():
    return ex.shapes_data(seed=3, n_train=40, n_test=12)


def test_shapes_data_holds_out_red_triangles_and_tokenises_captions(small_shapes):
    train, test = small_shapes.train, small_shapes.test
    assert train["image"].shape == (40, 3, 16, 16) and train["caption"].shape == (40, 4)
    red, triangle = ex.COLOURS.index("red"), ex.SHAPES.index("triangle")
    assert not ((train["caption"][:, ex.COLOUR] == red) & (train["caption"][:, ex.SHAPE] == triangle)).any()
    assert torch.equal(train["label"], train["caption"][:, ex.SHAPE] * 4 + train["caption"][:, ex.COLOUR])
    row = small_shapes.source["test"][0]
    assert ex.describe(test["caption"][0]) == row["caption"]  # the tokens say all the template says
    # the 16 x 16 image is the 32 x 32 one averaged over 2 x 2 pixels
    torch.testing.assert_close(test["image"][0], torch.nn.functional.avg_pool2d(row["image"][None], 2)[0])


def test_heldout_captions_cover_every_size_and_place():
    captions = ex.heldout_captions(samples=2)
    assert captions.shape == (2 * 2 * 9, 4)
    assert {ex.describe(c).split()[2:4] == ["red", "triangle"] for c in captions} == {True}
    assert len({tuple(c.tolist()) for c in captions}) == 18


def test_coherence_counts_rows_that_agree_and_chance_uses_shuffled_pairs():
    got = torch.tensor([[0, 1], [2, 3], [1, 1], [0, 0]])
    target = torch.tensor([[0, 1], [2, 0], [1, 1], [0, 0]])
    result = ex._coherent(got, target, seed=0)
    assert result.coherence == 0.75  # shape and colour must both agree
    digits = torch.arange(100) % 10
    result = ex._coherent(digits, digits, seed=0)
    assert result.coherence == 1.0 and result.chance < 0.25  # a derangement rarely keeps the digit


def test_read_takes_caption_tokens_as_they_are(small_shapes):
    referees = ex.Referees({"image": ex.SceneReferee(), "caption": None}, {})
    caption = small_shapes.test["caption"]
    assert torch.equal(ex.read(referees.models, "caption", caption), caption[:, [ex.SHAPE, ex.COLOUR]])
    assert ex.read(referees.models, "image", small_shapes.test["image"]).shape == (12, 2)


def test_build_model_makes_each_kind_and_rejects_others(small_shapes):
    assert isinstance(ex.build_model("autoencoder", small_shapes), BimodalAutoencoder)
    assert isinstance(ex.build_model("MVAE", small_shapes, unimodal=False), MVAE)
    assert isinstance(ex.build_model("MMVAE", small_shapes), MMVAE)
    with pytest.raises(ValueError, match="kind"):
        ex.build_model("GAN", small_shapes)


def test_latent_map_projects_a_point_back_to_itself(small_shapes):
    model = ex.build_model("MVAE", small_shapes).eval()
    latent = ex.latent_map(model, small_shapes)
    assert latent["components"].shape == (2, ex.LATENT_DIM) and set(latent["points"]) == {"image", "caption", "both"}
    torch.testing.assert_close(latent["components"] @ latent["components"].T, torch.eye(2), atol=1e-5, rtol=0)
    code = latent["mean"] + 1.5 * latent["components"][0] - 0.5 * latent["components"][1]
    torch.testing.assert_close(latent["project"](code[None]), torch.tensor([[1.5, -0.5]]), atol=1e-5, rtol=0)


def test_the_buggy_alignment_is_zero_whatever_the_codes():
    a, b = torch.randn(8, 4), torch.randn(8, 4)
    assert torch.equal(ex.buggy_alignment(a, b), torch.zeros(8))
    assert (ex.standardized_distance(a, b) > 0).all()


def test_cca_retrieval_is_lesson_02s_on_the_same_data():
    from mmcourse.experiments import cca

    av = ex.av_data(seed=2)
    ours, lesson_02 = ex.cca_retrieval(av), cca.av_digits_retrieval(seed=2, data=av.source)
    assert (ours["reg"], ours["recall1"], ours["recall5"]) == (lesson_02["reg"], lesson_02["recall1"],
                                                                lesson_02["recall5"])


def test_the_running_comparison_entry_is_the_lessons_mvae_latent_retrieval():
    """The row lesson 07 computes when lesson 05 has not kept its own is the lesson's number: the MVAE that the
    lesson trains (train_models on with_referees, after other models and other draws), retrieved the same way."""
    (entry,) = ex.speech_to_image_retrieval(seed=1)
    assert (entry.method, entry.lesson, entry.pairs, entry.labels) == ("MVAE latent", "05", "all", "none")
    data = ex.av_data(seed=1)
    run = ex.with_referees(data)
    torch.rand(1000)  # as the lesson's earlier cells draw
    ex.train_models(run, ["MVAE"])
    assert [entry] == ex.comparison_rows(run.models["MVAE"], data)
    assert entry.retrieval == ex.mvae_retrieval(run.models["MVAE"], data)
    r = entry.retrieval
    assert r.recall_at_5 > r.chance_at_5 and 0.09 < r.chance_at_1 < 0.12  # ten digits, about as many of each


@pytest.fixture(scope="module")
def small_run(small_shapes):
    """Untrained models and an untrained referee on a small Shapes split: enough to test the measurements."""
    torch.manual_seed(0)
    referees = ex.Referees({"image": ex.SceneReferee().eval(), "caption": None}, {})
    models = {kind: ex.build_model(kind, small_shapes).eval() for kind in ex.MODELS}
    return ex.Trained(small_shapes, referees, models, {})


def test_coherence_table_gives_joint_coherence_to_the_vaes_only(small_run):
    table = ex.coherence_table(small_run)
    assert set(table["autoencoder"]) == {"caption -> image", "image -> caption"}
    for kind in ex.GENERATIVE:
        assert set(table[kind]) == {"caption -> image", "image -> caption", "prior -> both"}
    means = ex.coherence_table(small_run, sample=False)
    assert all("prior -> both" not in row for row in means.values())


def test_mean_and_sampled_read_the_mean_code_and_several_draws(small_run, small_shapes):
    # the autoencoder's code is deterministic: every draw is its one code, so the two measures agree sample by sample
    auto = ex.mean_and_sampled(small_run.models["autoencoder"], small_shapes, small_run.referees, "caption", draws=3)
    assert auto.from_mean.dtype == torch.bool and auto.from_mean.shape == (12,)
    torch.testing.assert_close(auto.sampled, auto.from_mean.float())
    # a VAE: the mean code is cross_modal_coherence's with sample=False; a sampled fraction is a multiple of 1/draws
    mvae = small_run.models["MVAE"]
    codes = ex.mean_and_sampled(mvae, small_shapes, small_run.referees, "caption", draws=4)
    mean = ex.cross_modal_coherence(mvae, small_shapes, small_run.referees, sample=False)["caption -> image"]
    assert torch.equal(codes.from_mean, mean.hits)
    assert ((codes.sampled * 4).round() - codes.sampled * 4).abs().max() < 1e-6
    with pytest.raises(ValueError, match="given"):
        ex.mean_and_sampled(mvae, small_shapes, small_run.referees, "audio")
    with pytest.raises(ValueError, match="draws"):
        ex.mean_and_sampled(mvae, small_shapes, small_run.referees, "caption", draws=0)


def test_posterior_width_is_the_mean_standard_deviation_of_the_code(small_run, small_shapes):
    from mmcourse.autoencoders import product_of_experts

    mvae, mmvae = small_run.models["MVAE"], small_run.models["MMVAE"]
    caption = small_shapes.test["caption"]
    with torch.no_grad():
        expert = mvae.coders[1].encode(caption)
        prior = torch.zeros(1, *expert.mu.shape)
        product = product_of_experts(torch.cat([prior, expert.mu[None]]), torch.cat([prior, expert.logvar[None]]))
        alone = mmvae.coders[1].encode(caption)
    assert ex.posterior_width(mvae, small_shapes, "caption") == pytest.approx(product.logvar.exp().sqrt().mean().item())
    assert ex.posterior_width(mmvae, small_shapes, "caption") == pytest.approx(alone.logvar.exp().sqrt().mean().item())
    with pytest.raises(ValueError, match="given"):
        ex.posterior_width(mvae, small_shapes, "audio")


class _AlwaysReads(torch.nn.Module):
    """A stand-in scene referee that reads the same (shape, colour) in every image."""

    def __init__(self, shape: str, colour: str) -> None:
        super().__init__()
        self.scores = torch.zeros(len(ex.SHAPES) + len(ex.COLOURS))
        self.scores[ex.SHAPES.index(shape)] = self.scores[len(ex.SHAPES) + ex.COLOURS.index(colour)] = 1.0

    def forward(self, image):
        return ex.Reading(self.scores.expand(len(image), -1))


def test_referee_on_heldout_reads_only_the_test_splits_red_triangles():
    red, triangle, blue = ex.COLOURS.index("red"), ex.SHAPES.index("triangle"), ex.COLOURS.index("blue")
    caption = torch.tensor([[0, red, triangle, 0], [1, blue, triangle, 4], [2, red, triangle, 8], [0, red, 0, 3]])
    data = ex.Paired("shapes", ("image", "caption"), {}, {"image": torch.rand(4, 3, 16, 16), "caption": caption},
                     None, 0)
    right = ex.Referees({"image": _AlwaysReads("triangle", "red"), "caption": None}, {})
    wrong = ex.Referees({"image": _AlwaysReads("square", "red"), "caption": None}, {})
    assert ex.referee_on_heldout(data, right) == (2, 1.0)  # rows 0 and 2 only
    assert ex.referee_on_heldout(data, wrong) == (2, 0.0)


def test_sharpness_is_the_mean_step_between_neighbouring_pixels():
    flat, edge = torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    edge[..., :, 2:] = 1.0  # one vertical edge: 4 of the 12 steps across are 1, none of the steps down
    torch.testing.assert_close(ex.sharpness(torch.cat([flat, edge])), torch.tensor([0.0, (4 / 12 + 0) / 2]))
    blurred = torch.nn.functional.avg_pool2d(edge, 3, stride=1, padding=1, count_include_pad=False)
    assert ex.sharpness(blurred) < ex.sharpness(edge)


def test_train_built_trains_an_mvae_class_with_a_step_and_the_package_reads_it(small_shapes):
    from mmcourse.autoencoders import MVAE

    model, history = ex.train_built(MVAE, ex.mvae_step, small_shapes, epochs=3, batch_size=16)
    assert history.epoch == [1, 2, 3] and history.train_loss[-1] < history.train_loss[0]
    again, _ = ex.train_built(MVAE, ex.mvae_step, small_shapes, epochs=3, batch_size=16)
    torch.testing.assert_close(again.state_dict(), model.state_dict())  # seeded: the same run twice
    package = ex.as_package_mvae(model, small_shapes)
    caption = small_shapes.test["caption"]
    torch.testing.assert_close(package.embed(None, caption), model.embed(None, caption))
    with pytest.raises(ValueError, match="epochs"):
        ex.train_built(MVAE, ex.mvae_step, small_shapes, epochs=0)


def test_the_kl_weight_experiment_passes_the_worked_solution_and_fails_the_default_and_a_larger_weight(capsys):
    """The experiment exercise on the lesson's seed: the worked solution's beta meets both outcomes; the default
    beta = 1 and the opposite move (beta = 2) miss them; a beta out of range is rejected, naming the argument."""
    from mmcourse import exercises
    from mmcourse.exercises import ExerciseError

    assert exercises.check("kl_weight", lambda: ex.KL_WEIGHT_REFERENCE, must_pass=True, seed=0)
    for beta in (1.0, 2.0):
        assert not exercises.check("kl_weight", lambda beta=beta: beta, seed=0)
        out = capsys.readouterr().out
        assert "misses an outcome" in out and "\N{BALLOT X} sharpness of the digits drawn from speech" in out
        assert "\N{BALLOT X} image -> audio coherence" in out
    with pytest.raises(ExerciseError, match="your attempt was rejected: beta: expected a KL weight from 0 to 10, "
                                            "got -0.5"):
        exercises.check("kl_weight", lambda: -0.5, must_pass=True)
    with pytest.raises(ValueError, match="beta: expected a KL weight"):
        ex.kl_weight_run("small")
