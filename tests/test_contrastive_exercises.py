"""Lesson 07's exercises: the worked solutions pass, and typical mistakes are caught and explained."""

import torch
import torch.nn.functional as F

from mmcourse.exercises import check


def _clip(image, text, s, normalise=True, both=True):
    if normalise:
        image, text = F.normalize(image, dim=1), F.normalize(text, dim=1)
    logits = s.exp() * image @ text.T
    targets = torch.arange(len(logits))
    row = F.cross_entropy(logits, targets)
    return (row + F.cross_entropy(logits.T, targets)) / 2 if both else row


def _ndcg(scores, relevance, k, gain=lambda r: r):
    discount = 1 / torch.log2(torch.arange(2, k + 2).float())
    dcg = (gain(relevance[scores.argsort(descending=True)[:k]]) * discount).sum()
    ideal = (gain(relevance.sort(descending=True).values[:k]) * discount).sum()
    return (dcg / ideal).item() if ideal > 0 else 0.0


def test_clip_loss_exercise(capsys):
    assert check("clip_loss", _clip)
    assert not check("clip_loss", lambda i, t, s: _clip(i, t, s, normalise=False))
    assert "case 2 of 4" in capsys.readouterr().out  # case 1 has unit vectors: normalising changes nothing there
    assert not check("clip_loss", lambda i, t, s: _clip(i, t, s, both=False))  # one direction only
    assert "case 2 of 4" in capsys.readouterr().out
    assert not check("clip_loss", lambda i, t, s: _clip(i, t, s.log()))  # the scale itself, not its exponential
    assert "case 1 of 4" in capsys.readouterr().out
    assert not check("clip_loss", lambda i, t, s: 2 * _clip(i, t, s))  # the sum of the two directions
    assert "case 1 of 4" in capsys.readouterr().out


def test_clip_loss_gradients_exercise(capsys):
    import math

    from mmcourse.exercises.contrastive import check_loss_gradients, loss_gradients

    assert check("clip_loss_gradients", loss_gradients(_clip))
    assert check_loss_gradients(_clip) and not check_loss_gradients(lambda i, t, s: _clip(i.detach(), t, s))
    capsys.readouterr()

    def scale_as_a_number(image, text, s):  # the right values, but no gradient reaches s
        return _clip(image, text, torch.tensor(math.log(math.exp(float(s.detach())))))

    assert check("clip_loss", scale_as_a_number)  # the values alone cannot tell
    capsys.readouterr()
    assert not check("clip_loss_gradients", loss_gradients(scale_as_a_number))
    assert "no gradient with respect to logit_scale" in capsys.readouterr().out
    assert not check("clip_loss_gradients", loss_gradients(lambda i, t, s: _clip(i.detach(), t.detach(), s)))
    assert "image_emb and text_emb" in capsys.readouterr().out
    assert not check("clip_loss_gradients", loss_gradients(lambda i, t, s: _clip(i, t, s).item()))
    assert "no gradient at all" in capsys.readouterr().out
    assert not check("clip_loss_gradients", loss_gradients(lambda i, t, s: _clip(i, t, s, normalise=False)))
    # on unit vectors (case 1) the values agree, but normalising removes the gradient along each vector
    assert "case 1 of 4" in capsys.readouterr().out


def test_ndcg_exercise(capsys):
    assert check("ndcg_one_query", _ndcg)
    assert not check("ndcg_one_query", lambda s, r, k: _ndcg(s, r, k, gain=lambda x: 2**x - 1))  # another gain
    assert "case 1 of 5" in capsys.readouterr().out
    assert not check("ndcg_one_query", lambda s, r, k: _ndcg(-s, r, k))  # ranked lowest first
    # forgetting the convention for a query with nothing relevant: 0 / 0
    assert not check("ndcg_one_query", lambda s, r, k: (lambda d, i: (d / i).item())(
        *(torch.tensor(1.0) * 0, torch.tensor(0.0))) if r.sum() == 0 else _ndcg(s, r, k))
    assert "case 5 of 5" in capsys.readouterr().out


def test_reordered_captions_exercise(capsys):
    def fixed(image, text, order, s):
        return _clip(image, text[order.argsort()], s)

    def buggy(image, text, order, s):  # the lesson's: the permutation applied again instead of its inverse
        return _clip(image, text[order], s)

    def targets_ignore_order(image, text, order, s):
        return _clip(image, text, s)

    assert check("reordered_captions_loss", fixed, must_pass=True)
    assert "The bug:" in capsys.readouterr().out  # the solution cell explains
    assert not check("reordered_captions_loss", buggy)
    out = capsys.readouterr().out
    assert "case 3 of 4 (three captions in a cycle)" in out and "The bug:" not in out  # a swap is its own inverse
    assert not check("reordered_captions_loss", targets_ignore_order)
    assert "case 2 of 4 (two captions swapped)" in capsys.readouterr().out
    assert not check("reordered_captions_loss", lambda i, t, o, s: (  # the same targets in both directions
        F.cross_entropy(s.exp() * F.normalize(i, dim=1) @ F.normalize(t, dim=1).T, o)
        + F.cross_entropy((s.exp() * F.normalize(i, dim=1) @ F.normalize(t, dim=1).T).T, o)) / 2)
    assert "case 3 of 4" in capsys.readouterr().out


def test_the_package_loss_is_rejected_in_both_loss_exercises(capsys):
    from mmcourse.contrastive import clip_loss

    assert not check("clip_loss", clip_loss)
    assert "your function calls `mmcourse.contrastive.clip_loss`" in capsys.readouterr().out
    assert not check("reordered_captions_loss", lambda i, t, o, s: clip_loss(i, t[o.argsort()], s))
    assert "your function calls `mmcourse.contrastive.clip_loss`" in capsys.readouterr().out


def test_the_similarity_helper_is_rejected_too(capsys):
    from mmcourse.contrastive import similarity
    from mmcourse.exercises.contrastive import loss_gradients

    def with_helper(image, text, s):  # half of the exercise done by the package
        logits = s.exp() * similarity(image, text)
        targets = torch.arange(len(logits))
        return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2

    for name, fn in (("clip_loss", with_helper), ("clip_loss_gradients", loss_gradients(with_helper)),
                     ("reordered_captions_loss", lambda i, t, o, s: with_helper(i, t[o.argsort()], s))):
        assert not check(name, fn)
        assert "your function calls `mmcourse.contrastive.similarity`" in capsys.readouterr().out


def test_the_lesson_imports_each_reference_after_its_exercises_and_no_solution_calls_one():
    """Lesson 07 imports clip_loss, similarity and ndcg_at_k only after the exercises that ask for them (the
    find-the-bug exercise comes later and forbids the first two itself), and the worked solutions call none."""
    import re
    from pathlib import Path

    import jupytext

    notebook = jupytext.read(Path(__file__).parents[1] / "lessons" / "07_contrastive.py")
    sources = [cell.source for cell in notebook.cells if cell.cell_type == "code"]

    def first(pattern: str) -> int:
        return next(i for i, source in enumerate(sources) if re.search(pattern, source))

    def last(text: str) -> int:
        return max(i for i, source in enumerate(sources) if text in source)

    loss_import = first(r"from mmcourse\.contrastive import .*\bclip_loss\b.*\bsimilarity\b")
    assert last("check_loss_gradients(") < loss_import
    assert not any(re.search(r"\bsimilarity\b|\bclip_loss\b", s) for s in sources[:first(r'check\("clip_loss"')])
    assert last('exercises.check("ndcg_one_query"') < first(r"from mmcourse\.metrics import ndcg_at_k")
    solutions = [cell.source for cell in notebook.cells if "solution" in cell.metadata.get("tags", [])]
    assert len(solutions) == 3
    assert not any(re.search(r"\b(clip_loss|similarity|ndcg_at_k)\(", source) for source in solutions)
