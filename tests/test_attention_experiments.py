"""Lesson 03's experiments: the helpers on hand-made cases, and the claims on another seed than the
lesson's (``claims_hold``)."""

from types import SimpleNamespace

import pytest
import torch
from claims_hold import claim_tests

from mmcourse.attention import AttentionVQA
from mmcourse.data import ANSWERS, BACKGROUND, VOCAB, as_tensors, load_shapes
from mmcourse.experiments import attention as experiments

measured, test_every_claim_is_measured, test_claim_holds = claim_tests(experiments, seeds=(2,))


def test_image_only_answers_pick_the_colour_most_objects_share():
    red, green, blue, yellow = (ANSWERS.index(c) for c in ("red", "green", "blue", "yellow"))
    colours = torch.tensor([
        [2, -1, -1],  # one blue object: always right
        [1, 3, 1],  # two green, one yellow: green
        [3, 0, -1],  # a tie: the first colour in COLOURS (red) wins
        [3, 3, 2],
    ])
    assert experiments.image_only_answers(colours).tolist() == [blue, green, red, yellow]
    with pytest.raises(ValueError, match="object_colour: expected integer colour indices"):
        experiments.image_only_answers(torch.tensor([[0, -1], [-1, -1]]))


def _two_objects():
    """One 4x4 image in 2x2 patches of 2x2 pixels (P = 4): object 0 covers patch 0, object 1 patches 2 and 3."""
    masks = torch.zeros(1, 3, 4, 4, dtype=torch.bool)
    masks[0, 0, 0:2, 0:2] = True
    masks[0, 1, 2:4, 0:4] = True
    return masks


def test_object_grounding_splits_top_patches_and_gives_the_any_object_baseline():
    masks = _two_objects()
    # Four words: the first two name object 0, the last two object 1. Top patches: 0 (its object),
    # 2 (the other object), 1 (no object), 3 (its object).
    weights = torch.tensor([[[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1], [0.1, 0.7, 0.1, 0.1],
                             [0.1, 0.1, 0.1, 0.7]]])
    refers = torch.tensor([[0, 0, 1, 1]])
    result = experiments.object_grounding(weights, masks, refers)
    assert result.words == 4
    assert result.named == pytest.approx(2 / 4)
    assert result.other_object == pytest.approx(1 / 4) and result.background == pytest.approx(1 / 4)
    # 3 patches touch some object: object 0 holds 1 of them, object 1 holds 2.
    assert result.any_object_baseline == pytest.approx((1 / 3 + 1 / 3 + 2 / 3 + 2 / 3) / 4)
    assert result.chance == pytest.approx((1 / 4 + 1 / 4 + 2 / 4 + 2 / 4) / 4)


def test_object_grounding_of_a_word_blind_map_matches_its_baseline_on_average():
    """A map whose top patch is a random object patch, whatever the word, scores the any-object baseline."""
    masks = _two_objects().expand(600, 3, 4, 4)
    g = torch.Generator().manual_seed(0)
    object_patches = torch.tensor([0, 2, 3])
    top = object_patches[torch.randint(3, (600, 2), generator=g)]  # (600, 2): two words per image
    weights = torch.nn.functional.one_hot(top, 4).float()
    refers = torch.tensor([0, 1]).expand(600, 2)
    result = experiments.object_grounding(weights, masks, refers)
    assert result.background == 0 and result.named + result.other_object == pytest.approx(1)
    assert result.named == pytest.approx(result.any_object_baseline, abs=0.04)


@pytest.fixture(scope="module")
def small_run():
    """An untrained model on 40 test scenes, dressed as ``answer_colour_questions``'s result."""
    shapes = load_shapes(n_train=1, n_validation=1, n_test=40, question_types=["colour"], seed=5)
    test = as_tensors(shapes["test"], experiments.COLUMNS)
    torch.manual_seed(0)
    model = AttentionVQA(len(VOCAB), len(ANSWERS), dim=8, num_heads=2).eval()
    scores, weights, _ = experiments.run_model(model, test)
    return SimpleNamespace(model=model, test=test, scores=scores, weights=weights)


def test_deletion_curves_start_together_and_areas_are_the_questions_mean(small_run):
    steps = (0, 1, 2, 4, 8)
    deletion = experiments.deletion_curves(small_run, steps=steps, seed=1)
    intact = (small_run.scores.argmax(1) == small_run.test["answer_id"]).float().mean().item()
    assert deletion.steps == list(steps) and set(deletion.curves) == set(experiments.ORDERS)
    for name in experiments.ORDERS:
        assert deletion.curves[name].shape == (len(steps),)
        assert deletion.curves[name][0].item() == pytest.approx(intact)  # nothing deleted yet
        assert deletion.per_question[name].shape == (40,)
        assert deletion.per_question[name].mean().item() == pytest.approx(deletion.areas[name])
    difference = deletion.per_question["attention"] - deletion.per_question["random within the object"]
    assert deletion.attention_vs_object.estimate == pytest.approx(difference.mean().item())


def test_deleting_every_patch_leaves_a_blank_scene(small_run, monkeypatch):
    """With all 64 patches deleted, every order shows the model the same background-coloured images."""
    seen = []
    model = small_run.model

    def spy(images, tokens):
        seen.append(images)
        return AttentionVQA.forward(model, images, tokens)

    monkeypatch.setattr(model, "forward", spy)
    experiments.deletion_curves(small_run, steps=(0, 64), seed=1)
    blank = torch.tensor(BACKGROUND)[None, :, None, None].expand(40, 3, 32, 32)
    assert len(seen) == 6 and all(torch.equal(seen[i], blank) for i in (1, 3, 5))
    assert torch.equal(seen[0], small_run.test["image"])


def test_diffuse_but_right_counts_a_fraction_of_all_questions(small_run):
    run = SimpleNamespace(**vars(small_run))
    word = (run.test["question_object"] >= 0).float().argmax(1)
    inside = experiments.object_patches(run)  # (40, 64)
    weights = torch.full_like(run.weights, 1 / 64)
    rows = torch.arange(40)
    focused = rows < 10  # the first ten questions put all their weight on their object
    weights[rows[focused], :, word[focused]] = inside[focused, None].float() / inside[focused].sum(1)[:, None, None]
    run.weights = weights
    run.scores = torch.nn.functional.one_hot(run.test["answer_id"], len(ANSWERS)).float()  # all right
    case = experiments.diffuse_but_right(run)
    mass_uniform = inside.float().mean(1)  # a uniform map's mass on the object
    expected = (mass_uniform[~focused] < 0.5).float().sum().item() / 40
    assert case["right_but_mostly_elsewhere"] == pytest.approx(expected)
    assert not focused[case["index"]] and case["entropy"] == pytest.approx(case["uniform_entropy"])


def test_two_directions_from_copies_the_trained_parts():
    torch.manual_seed(0)
    start = AttentionVQA(len(VOCAB), len(ANSWERS), dim=32, num_heads=2).eval()
    model = experiments.two_directions_from(start).eval()
    assert model.both_directions and model.head[1].in_features == 64
    words, patches = torch.randn(2, 6, 32), torch.randn(2, 64, 32)
    with torch.no_grad():
        assert torch.equal(model.cross.text_to_image[0](words, patches)[0], start.cross(words, patches)[0])
        image, tokens = torch.rand(2, 3, 32, 32), torch.randint(2, len(VOCAB), (2, 6))
        assert torch.equal(model.image(image), start.image(image))
        assert torch.equal(model.text(tokens)[0], start.text(tokens)[0])
        model.image.colour.weight.add_(1.0)  # copies, not shared parameters
    assert not torch.equal(model.image.colour.weight, start.image.colour.weight)
    with pytest.raises(ValueError, match="start: expected a one-direction AttentionVQA"):
        experiments.two_directions_from(model)
