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


# --- The build's training and the shuffled-pairs experiment -------------------------------------------------------


class _WrittenOut(torch.nn.Module):
    """A learner's layer: MultiHeadAttention's parameter names, its own forward."""

    def __init__(self, embed_dim, num_heads, kdim=None, vdim=None):
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = torch.nn.Linear(embed_dim, embed_dim)
        self.k_proj = torch.nn.Linear(kdim or embed_dim, embed_dim)
        self.v_proj = torch.nn.Linear(vdim or embed_dim, embed_dim)
        self.out_proj = torch.nn.Linear(embed_dim, embed_dim)

    def forward(self, query, key, value, key_padding_mask=None):
        b, t, d = query.shape
        h = self.num_heads
        q, k, v = (x.reshape(b, x.shape[1], h, d // h).transpose(1, 2)
                   for x in (self.q_proj(query), self.k_proj(key), self.v_proj(value)))
        weights = torch.softmax(q @ k.transpose(-2, -1) / (d // h) ** 0.5, dim=-1)
        return self.out_proj((weights @ v).transpose(1, 2).reshape(b, t, d)), weights


def test_with_layer_starts_a_written_out_layer_from_the_package_weights():
    ours, theirs = experiments.with_layer(_WrittenOut, seed=3).eval(), experiments.with_layer(
        experiments.MultiHeadAttention, seed=3).eval()
    assert isinstance(ours.cross.attn, _WrittenOut)
    image, tokens = torch.rand(2, 3, 32, 32), torch.randint(2, len(VOCAB), (2, 6))
    with torch.no_grad():
        a, b = ours(image, tokens), theirs(image, tokens)
    assert torch.allclose(a.scores, b.scores, atol=1e-5) and torch.allclose(a.text_to_image, b.text_to_image, atol=1e-6)


def test_train_with_layer_trains_a_written_out_layer_as_the_package_and_caches_the_run():
    def my_step(model, batch, optimizer):  # a learner's step, returning a Python float
        loss = torch.nn.functional.cross_entropy(model(batch["image"], batch["question_ids"]).scores,
                                                 batch["answer_id"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    package = experiments.train_with_layer(steps=4, seed=0)
    mine = experiments.train_with_layer(_WrittenOut, my_step, seed=0, steps=4)
    assert len(mine.losses) == 4 and mine.losses == pytest.approx(package.losses, abs=1e-4)
    assert mine.majority_accuracy == package.majority_accuracy and 0 <= mine.accuracy <= 1
    assert next(mine.model.parameters()).device.type == "cpu" and not mine.model.training
    assert experiments.train_with_layer(steps=4, seed=0) is package  # deterministic, so cached


@pytest.mark.parametrize("kwargs, message", [
    ({"layer": "MultiHeadAttention"}, "layer: expected an nn.Module class"),
    ({"layer": torch.nn.Linear}, "layer: expected MultiHeadAttention's parameters"),
    ({"step": None}, "step: expected a function step"),
    ({"steps": 0}, "steps: expected an integer >= 1"),
])
def test_train_with_layer_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        experiments.train_with_layer(**kwargs)


def _keep_pairs(test, generator):
    return dict(test)


def _shuffle_everything(test, generator):  # new row order, the same pairs
    order = torch.randperm(len(test["image"]), generator=generator)
    return {name: column[order] for name, column in test.items()}


def _shuffle_questions(test, generator):  # each answer stays with its image: tests the question, not the image
    order = torch.randperm(len(test["image"]), generator=generator)
    return {**test, "question_ids": test["question_ids"][order]}


def _shuffle_questions_and_answers(test, generator):  # the images stay; each question keeps its answer: right too
    order = torch.randperm(len(test["image"]), generator=generator)
    return {**test, "question_ids": test["question_ids"][order], "answer_id": test["answer_id"][order]}


def _shuffle_images(test, generator):  # the worked solution, written out
    order = torch.randperm(len(test["image"]), generator=generator)
    return {**test, "image": test["image"][order]}


@pytest.mark.parametrize("control", [_shuffle_images, _shuffle_questions_and_answers])
def test_the_shuffled_pairs_control_falls_to_the_majority_level(control, capsys):
    from mmcourse.exercises import check

    assert check("shuffled_pairs", control, must_pass=True, seed=0)
    assert "shuffled_pairs: your run (seed 0) meets every outcome" in capsys.readouterr().out
    measured = experiments.shuffled_pairs(control, seed=0)
    assert measured["accuracy on the real pairs"] - measured["accuracy on the shuffled pairs"] > 0.3
    if control is _shuffle_images:  # the same pairs as the reference attempt's, so the same run
        assert measured == experiments.shuffled_pairs(experiments.shuffle_images, seed=0)


def test_the_package_control_is_not_an_answer(capsys):
    from mmcourse.exercises import check

    assert not check("shuffled_pairs", experiments.shuffle_images, seed=0)
    assert "the package's own answer to this experiment" in capsys.readouterr().out


@pytest.mark.parametrize("control", [_keep_pairs, _shuffle_everything, _shuffle_questions])
def test_controls_that_leave_the_image_with_its_answer_miss_the_outcome(control, capsys):
    from mmcourse.exercises import check

    assert not check("shuffled_pairs", control, seed=0)
    out = capsys.readouterr().out
    assert "shuffled_pairs: your run (seed 0) misses an outcome" in out
    assert "accuracy on shuffled pairs minus the majority answer's (absolute) = " in out and "(needed <= 0.08" in out


@pytest.mark.parametrize("control, message", [
    (lambda test, g: {**test, "answer_id": test["answer_id"][torch.randperm(len(test["answer_id"]), generator=g)]},
     "control: every question still sees its own image and only the answers moved"),
    (lambda test, g: {"image": test["image"]}, "control: expected a dict with the columns"),
    (lambda test, g: {**test, "image": test["image"][:10]}, "control: column 'image' expected a torch.float32 tensor"),
    (lambda test, g: {**test, "answer_id": torch.zeros_like(test["answer_id"])},
     "control: answer_id expected the test answers, rearranged"),
])
def test_a_control_that_is_not_a_shuffle_of_pairs_is_rejected(control, message, capsys):
    from mmcourse.exercises import check

    assert not check("shuffled_pairs", control, seed=0)
    assert f"your attempt was rejected: {message}" in capsys.readouterr().out


def test_the_control_gets_copies(capsys):
    from mmcourse.exercises import check

    def in_place(test, generator):
        test["image"].zero_()  # a learner's in-place change must not reach the cached test split
        return _shuffle_images(test, generator)

    check("shuffled_pairs", in_place, seed=0)
    _, test = experiments._colour_tensors(0)
    assert test["image"].abs().sum() > 0
