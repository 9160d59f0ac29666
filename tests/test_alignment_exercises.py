"""Lesson 04's exercises: the worked solutions pass, and typical mistakes are caught and explained."""

import torch
import torch.nn.functional as F

from mmcourse.exercises import check


def _procrustes(source, target):
    u, _, vh = torch.linalg.svd(source.T @ target)
    return u @ vh


def _csls(a, b, k, factor=2.0):
    cos = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T
    return factor * cos - cos.topk(k, dim=1).values.mean(1)[:, None] - cos.topk(k, dim=0).values.mean(0)[None, :]


def test_procrustes_exercise(capsys):
    assert check("procrustes", _procrustes)
    # the SVD of target^T source gives the transpose of the answer
    assert not check("procrustes", lambda s, t: _procrustes(t, s))
    assert "case 1 of 4 (5 points in 2-D turned by a quarter turn)" in capsys.readouterr().out
    # forcing a rotation (determinant +1) fails on the mirrored case
    assert not check("procrustes", lambda s, t: _procrustes(s, t) * torch.linalg.det(_procrustes(s, t)))
    assert "mirrored" in capsys.readouterr().out


def test_csls_exercise(capsys):
    assert check("csls_scores", _csls)
    assert not check("csls_scores", lambda a, b, k: _csls(a, b, k, factor=1.0))
    assert "case 1 of 4 (3 source and 4 target points in 2-D, k=1)" in capsys.readouterr().out
    # forgetting to normalise the rows: dot products are not cosines
    assert not check("csls_scores", lambda a, b, k: 2 * (a @ b.T) - (a @ b.T).topk(k, 1).values.mean(1)[:, None]
                     - (a @ b.T).topk(k, 0).values.mean(0)[None, :])
    assert "wrong values" in capsys.readouterr().out


def test_orthogonalize_find_the_bug(capsys):
    def fixed(w, beta=0.001):
        return (1 + beta) * w - beta * w @ w.T @ w

    def tutorial(w, beta=0.001):
        return (1 + beta) * w - beta * w.T @ w @ w

    assert check("orthogonalize", fixed, must_pass=True)
    assert "The bug: the tutorial computes w.T @ w @ w" in capsys.readouterr().out  # the solution cell explains
    assert not check("orthogonalize", tutorial)
    out = capsys.readouterr().out
    assert "case 3 of 4 (a shear" in out and "W^T W W" not in out  # the failing case does not name the fix


def test_scipys_procrustes_is_rejected_and_scipys_svd_is_not(capsys):
    import scipy.linalg

    def with_scipy(source, target):
        return torch.from_numpy(scipy.linalg.orthogonal_procrustes(source.numpy(), target.numpy())[0])

    assert not check("procrustes", with_scipy)
    assert "your function calls `scipy.linalg.orthogonal_procrustes" in capsys.readouterr().out

    def by_hand_with_scipys_svd(source, target):  # the SVD is the learner's to call, from any library
        u, _, vh = scipy.linalg.svd((source.T @ target).numpy())
        return torch.from_numpy(u @ vh)

    assert check("procrustes", by_hand_with_scipys_svd)


def test_the_packages_private_csls_is_rejected(capsys):
    from mmcourse.alignment import _csls_batched

    assert not check("csls_scores", lambda a, b, k: _csls_batched(F.normalize(a, dim=1) @ F.normalize(b, dim=1).T, k))
    assert "your function calls `mmcourse.alignment._csls_batched`" in capsys.readouterr().out


def test_the_lesson_imports_each_reference_after_its_exercise_and_no_solution_calls_one():
    """Lesson 04 imports procrustes and SciPy (whose orthogonal_procrustes the check rejects), orthogonalize and
    csls_scores only after the exercises that ask for them; the worked solutions call none of them."""
    import re

    from lesson_cells import LessonCode

    lesson = LessonCode("04_alignment")
    for imported, exercise in (("import procrustes", "procrustes"), ("import scipy", "procrustes"),
                               ("import orthogonalize", "orthogonalize"), ("import csls_scores", "csls_scores")):
        assert lesson.last(f'exercises.check("{exercise}"') < lesson.first(imported), imported
    solutions = lesson.solutions
    assert len(solutions) == 3
    calls = re.compile(r"\b(procrustes|orthogonal_procrustes|orthogonalize|csls_scores|_csls_batched)\(")
    assert not any(calls.search(source) for source in solutions)
