"""Shapes & captions: schema, determinism, ground truth against pixels and text, held-out combinations,
colours that colour-blind learners can tell apart."""

import itertools

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict

from mmcourse.data import ANSWERS, COLOURS, POSITIONS, SHAPES, SIZES, VOCAB, load_shapes
from mmcourse.data.shapes import BACKGROUND, CAPTION_LENGTH, QUESTION_LENGTH, RGB, simulate_colour_vision


@pytest.fixture(scope="module")
def shapes():
    return load_shapes(n_train=300, n_validation=100, n_test=300, holdout=[("red", "triangle")], seed=0)


def test_columns_shapes_and_types(shapes):
    assert isinstance(shapes, DatasetDict) and [len(s) for s in shapes.values()] == [300, 100, 300]
    b = shapes["train"][:4]
    assert b["image"].shape == (4, 3, 32, 32) and b["image"].dtype == torch.float32
    assert b["masks"].shape == (4, 3, 32, 32) and b["masks"].dtype == torch.bool
    assert b["caption_ids"].shape == (4, CAPTION_LENGTH) and b["caption_ids"].dtype == torch.int64
    assert b["caption_object"].shape == (4, CAPTION_LENGTH)
    assert b["question_ids"].shape == (4, QUESTION_LENGTH) and b["question_object"].shape == (4, QUESTION_LENGTH)
    assert shapes["train"].features["answer_id"].names == ANSWERS
    assert all(isinstance(c, str) for c in b["caption"])


def test_deterministic_for_a_seed():
    a, b, c = (load_shapes(n_train=20, n_validation=5, n_test=5, seed=s) for s in (3, 3, 4))
    assert torch.equal(a["train"]["image"][:], b["train"]["image"][:])
    assert a["train"]["caption"][:] == b["train"]["caption"][:]
    assert not torch.equal(a["train"]["image"][:], c["train"]["image"][:])


def test_masks_match_rendered_pixels(shapes):
    for row in shapes["train"]:
        n = int(row["n_objects"])
        assert 1 <= n <= 3
        masks, image = row["masks"], row["image"]
        assert not masks[n:].any(), "unused slots have empty masks"
        assert not (masks[:n].sum(0) > 1).any(), "objects do not overlap"
        for k in range(n):
            assert masks[k].sum() >= 9, "every object is visible"
            colour = torch.tensor(RGB[COLOURS[row["object_colour"][k]]])
            assert torch.allclose(image[:, masks[k]], colour[:, None])
        background = ~masks.any(0)
        assert torch.allclose(image[:, background], torch.tensor(BACKGROUND)[:, None])


def test_masks_lie_in_the_stated_grid_cell(shapes):
    edges = [0, 11, 21, 32]
    for row in shapes["test"].select(range(100)):
        for k in range(int(row["n_objects"])):
            r, c = divmod(int(row["object_position"][k]), 3)
            ys, xs = row["masks"][k].nonzero(as_tuple=True)
            assert edges[r] <= ys.min() and ys.max() < edges[r + 1]
            assert edges[c] <= xs.min() and xs.max() < edges[c + 1]


def test_caption_tokens_name_their_objects(shapes):
    """Every token mapped to object k is one of k's size, colour, shape or position words, and
    every object is named by its shape."""
    for row in shapes["train"].select(range(200)):
        words = row["caption"].split()
        assert VOCAB.decode(row["caption_ids"]) == row["caption"]
        for k in range(int(row["n_objects"])):
            allowed = {SIZES[row["object_size"][k]], COLOURS[row["object_colour"][k]], SHAPES[row["object_shape"][k]],
                       *POSITIONS[row["object_position"][k]].split()}
            named = {w for w, o in zip(words, row["caption_object"].tolist()) if o == k}
            assert named == allowed
        for w, o in zip(words, row["caption_object"].tolist()):
            if w in ("a", "and", "at", "the"):
                assert o == -1


def test_questions_and_answers_are_true_of_the_scene(shapes):
    for row in shapes["test"]:
        words = row["question"].split()
        n = int(row["n_objects"])
        objects = [(COLOURS[row["object_colour"][k]], SHAPES[row["object_shape"][k]], SIZES[row["object_size"][k]],
                    POSITIONS[row["object_position"][k]]) for k in range(n)]
        assert ANSWERS[int(row["answer_id"])] == row["answer"]
        assert VOCAB.decode(row["question_ids"]) == row["question"]
        referred = {o for o in row["question_object"].tolist() if o >= 0}
        if row["question_type"] == "exists":
            present = (words[3], words[4]) in {(c, s) for c, s, _, _ in objects}
            assert row["answer"] == ("yes" if present else "no")
            assert bool(referred) == present
            continue
        (target,) = referred
        assert objects[target][1] in words  # the question names the target's shape
        expected = {"colour": objects[target][0], "size": objects[target][2], "position": objects[target][3]}
        assert row["answer"] == expected[row["question_type"]]


def test_held_out_combinations_never_in_train(shapes):
    red, triangle = COLOURS.index("red"), SHAPES.index("triangle")
    def count(split):
        s = shapes[split]
        return int(((s["object_colour"][:] == red) & (s["object_shape"][:] == triangle)).sum())
    assert count("train") == 0
    assert count("test") > 20
    assert not any("red triangle" in q for q in shapes["train"]["question"])
    assert not any("red triangle" in c for c in shapes["train"]["caption"])
    # Without the hold-out, red triangles do appear in training.
    full = load_shapes(n_train=300, n_validation=5, n_test=5, seed=0)["train"]
    assert int(((full["object_colour"][:] == red) & (full["object_shape"][:] == triangle)).sum()) > 20


def test_question_types_can_be_chosen():
    ds = load_shapes(n_train=50, n_validation=5, n_test=5, question_types=["colour"], seed=0)
    assert set(ds["train"]["question_type"]) == {"colour"}
    assert set(ds["train"]["answer"]) <= set(COLOURS)


def test_vocab_round_trip_and_padding():
    ids = VOCAB.encode("what colour is the triangle ?", length=8)
    assert ids[-2:] == [0, 0] and VOCAB.decode(ids) == "what colour is the triangle ?"
    assert VOCAB.encode("purple")[0] == VOCAB.unk_id
    with pytest.raises(ValueError, match="length"):
        VOCAB.encode("a b c", length=2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_train": 0}, "n_train"),
        ({"max_objects": 4}, "max_objects"),
        ({"holdout": [("purple", "triangle")]}, "holdout"),
        ({"holdout": [(c, "circle") for c in COLOURS]}, "holdout"),
        ({"question_types": ["why"]}, "question_types"),
        ({"noise": -0.1}, "noise"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_shapes(**kwargs)


def test_learner_dataset_checked(shapes):
    assert len(load_shapes(source=shapes)["train"]) == 300
    bad = Dataset.from_dict({"image": [[[[0.0] * 32] * 32] * 3] * 3, "caption_ids": [[1, 2]] * 3,
                             "question_ids": [[1] * QUESTION_LENGTH] * 3, "answer_id": [0] * 3})
    with pytest.raises(ValueError, match="caption_ids"):
        load_shapes(source=bad)


MIN_COLOUR_DISTANCE = 0.45  # sRGB distance; the palette before the change had 0.22 (red-green, deuteranopia)


@pytest.mark.parametrize("condition", ["normal", "protanopia", "deuteranopia", "tritanopia"])
def test_scene_colours_stay_apart_for_colour_blind_learners(condition):
    """Every pair of scene colours, and each colour against the background, stays clearly apart as seen
    with each colour vision deficiency (Machado et al. 2009)."""
    seen = {name: simulate_colour_vision(rgb, condition) for name, rgb in RGB.items()}
    background = simulate_colour_vision(BACKGROUND, condition)
    for a, b in itertools.combinations(seen, 2):
        assert np.linalg.norm(seen[a] - seen[b]) >= MIN_COLOUR_DISTANCE, (condition, a, b)
    for name, colour in seen.items():
        assert np.linalg.norm(colour - background) >= MIN_COLOUR_DISTANCE, (condition, name)


def test_colour_vision_simulation_matches_known_values():
    # Greys are unchanged by every condition (the matrices' rows sum to 1), and pure red under
    # protanopia loses most of its brightness (the long-wavelength cones are missing).
    for condition in ("protanopia", "deuteranopia", "tritanopia"):
        assert np.allclose(simulate_colour_vision([0.5, 0.5, 0.5], condition), 0.5, atol=2e-3)
    red = simulate_colour_vision([1.0, 0.0, 0.0], "protanopia")
    assert red.sum() < 1.0 and abs(red[0] - red[1]) < 0.15  # dark, and red and green channels close
    old_red, old_green = (0.90, 0.15, 0.15), (0.15, 0.75, 0.20)  # the palette this replaced
    gap = np.linalg.norm(simulate_colour_vision(old_red, "deuteranopia") - simulate_colour_vision(old_green,
                                                                                                "deuteranopia"))
    assert gap == pytest.approx(0.22, abs=0.01)  # the number that motivated the change
    with pytest.raises(ValueError, match="condition"):
        simulate_colour_vision([1, 0, 0], "achromatopsia")
    with pytest.raises(ValueError, match="rgb"):
        simulate_colour_vision([1, 0], "normal")
