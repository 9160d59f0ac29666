"""Lesson 03's claims hold for three seeds, not only for the seed the lesson shows.

Each test asserts the same conditions as the lesson's `claim` cells (lessons/03_attention.py).
"""

import pytest

from mmcourse.data import load_shapes
from mmcourse.experiments import attention as experiments

SEEDS = [0, 1, 2]


@pytest.fixture(scope="module", params=SEEDS, ids=lambda s: f"seed{s}")
def shapes(request):
    seed = request.param
    return seed, load_shapes(n_train=3000, n_validation=200, n_test=1000, question_types=["colour"], seed=seed)


@pytest.fixture(scope="module")
def answered(shapes):
    seed, data = shapes
    return experiments.answer_colour_questions(data, seed=seed)


def test_attention_answers_colour_questions_and_grounds_the_shape_word(answered):
    r = answered
    # The question alone says nothing about the colour: text only is no better than the majority answer.
    assert abs(r.text_only_accuracy - r.majority_accuracy) <= 0.06
    assert r.accuracy >= r.text_only_accuracy + 0.3 and r.accuracy >= r.majority_accuracy + 0.3
    assert r.grounding.accuracy >= 3 * r.grounding.chance


def test_attention_is_not_explanation(answered):
    changed = experiments.occlusion(answered)
    assert changed["object"] >= changed["top_patch"] + 0.15
    case = experiments.diffuse_but_right(answered)
    assert case["right_but_mostly_elsewhere"] >= 10
    assert answered.scores[case["index"]].argmax() == answered.test["answer_id"][case["index"]]


def test_both_directions_answers_come_from_words_attending_to_patches(shapes, answered):
    seed, data = shapes
    co = experiments.co_attention(data, seed=seed)
    assert co.accuracy >= answered.text_only_accuracy + 0.3
    assert co.grounding.accuracy >= 3 * co.grounding.chance
    assert co.accuracy - co.without_text_to_image >= 0.3 and co.accuracy - co.without_image_to_text <= 0.1
    assert co.without_text_to_image <= answered.majority_accuracy + 0.06
