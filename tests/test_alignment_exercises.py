"""Lesson 04's exercises: the worked solutions pass, and typical mistakes are caught and explained. The build (one
step of the adversarial game, with the tutorial's orthogonalisation to fix) is checked against the package's
``adversarial_step``; here against a step written out with ``torch.optim.SGD`` too."""

import copy

import pytest
import torch
import torch.nn.functional as F

from mmcourse.alignment import Discriminator, adversarial_alignment, adversarial_step, orthogonalize
from mmcourse.exercises import ExerciseError, check
from mmcourse.experiments import alignment as experiments
from mmcourse.train import SGD


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
    """Lesson 04 imports procrustes and SciPy (whose orthogonal_procrustes the check rejects), csls_scores,
    adversarial_step and orthogonalize only after the exercises that ask for them; the worked solutions call none."""
    import re

    from lesson_cells import LessonCode

    lesson = LessonCode("04_alignment")
    for imported, exercise in (("import procrustes", "procrustes"), ("import scipy", "procrustes"),
                               ("import orthogonalize", "alignment_step"), ("adversarial_step", "alignment_step"),
                               ("import csls_scores", "csls_scores")):
        assert lesson.last(f'exercises.check("{exercise}"') < lesson.first(imported), imported
    solutions = lesson.solutions
    assert len(solutions) == 4
    calls = re.compile(r"\b(procrustes|orthogonal_procrustes|orthogonalize|csls_scores|_csls_batched|"
                       r"adversarial_step)\(")
    assert not any(calls.search(source) for source in solutions)


# --- The build: one step of the adversarial game ---------------------------------------------------------


def _step(mistake: str = ""):
    """A hand-written step, right or with one of the mistakes learners make."""

    def step(w, discriminator, map_optimizer, discriminator_optimizer, batches, smoothing=0.1, beta=0.01):
        *discriminator_batches, (x, y) = batches
        r, b = x.shape[:2]
        labels = torch.cat([torch.full_like(x[..., 0], 1 - smoothing), torch.full_like(y[..., 0], smoothing)], dim=1)
        runs = 1 if mistake == "mean over the runs" else r
        for x_d, y_d in discriminator_batches:
            points = torch.cat([x_d @ w.detach(), y_d], dim=1)
            discriminator_loss = F.binary_cross_entropy_with_logits(discriminator(points), labels) * runs
            if mistake != "no zero_grad":
                discriminator_optimizer.zero_grad()
            discriminator_loss.backward()
            discriminator_optimizer.step()
        if mistake != "dropout on the map's step":
            discriminator.eval()
        if mistake == "mapped points only":  # the mean over the B mapped points, not over all 2B
            map_loss = F.binary_cross_entropy_with_logits(discriminator(x @ w), 1 - labels[:, :b]) * runs
        else:
            targets = labels if mistake == "targets not swapped" else 1 - labels
            map_loss = F.binary_cross_entropy_with_logits(discriminator(torch.cat([x @ w, y], dim=1)), targets) * runs
        if mistake != "dropout left off":
            discriminator.train()
        map_optimizer.zero_grad()
        map_loss.backward()
        map_optimizer.step()
        with torch.no_grad():
            if mistake == "the tutorial's orthogonalisation":
                w.copy_((1 + beta) * w - beta * w.mT @ w @ w)
            elif mistake != "no orthogonalisation":
                w.copy_((1 + beta) * w - beta * w @ w.mT @ w)
        return discriminator_loss.detach(), map_loss.detach()

    return step


def test_a_hand_written_step_matches_the_package_and_the_solution_explains_the_bug(capsys):
    assert check("alignment_step", _step(), must_pass=True)
    out = capsys.readouterr().out
    assert "all 5 cases match" in out and "The bug in the copied orthogonalisation: it computes w.mT @ w @ w" in out
    assert check("alignment_step", _step())  # a learner's passing step is sent to the solution cell
    out = capsys.readouterr().out
    assert "Open the solution cell below" in out and "w.mT @ w @ w" not in out


@pytest.mark.parametrize("mistake, message", [
    ("no zero_grad", "case 2 of 5 (three discriminator steps, each from fresh gradients): the result['discriminator "
                     "loss']"),
    ("targets not swapped", "case 1 of 5 (one run, one discriminator step, beta = 0 (no orthogonalisation)): the "
                            "result['map loss']"),
    ("mapped points only", "case 1 of 5 (one run, one discriminator step, beta = 0 (no orthogonalisation)): the "
                           "result['map loss'] is"),
    ("mean over the runs", "case 3 of 5 (two runs at once: each run's mean loss, summed over the runs): the "
                           "result['discriminator loss']"),
    ("dropout on the map's step", "case 4 of 5 (input dropout 0.3, two steps in a row"),
    ("dropout left off", "case 4 of 5 (input dropout 0.3, two steps in a row"),
    ("the tutorial's orthogonalisation", "case 5 of 5 (the orthogonalisation: two maps far from orthogonal (a shear, "
                                         "not symmetric), beta = 0.1): the result['w'] has wrong values"),
    ("no orthogonalisation", "case 5 of 5 (the orthogonalisation"),
])
def test_the_common_mistakes_of_an_adversarial_step_are_caught(mistake, message, capsys):
    assert not check("alignment_step", _step(mistake))
    out = capsys.readouterr().out
    assert message in out, out
    assert "The bug in the copied orthogonalisation" not in out  # only the solution cell explains it


def test_the_tutorial_bug_passes_every_case_but_the_shear(capsys):
    assert not check("alignment_step", _step("the tutorial's orthogonalisation"))
    out = capsys.readouterr().out
    assert "passed before it: case 1" in out and "case 4 (input dropout 0.3" in out


def test_the_packages_step_and_orthogonalize_are_rejected(capsys):
    for lazy in (adversarial_step, lambda *args: adversarial_step(*args)):
        assert not check("alignment_step", lazy)
        assert "your function calls `mmcourse.alignment.adversarial_step`" in capsys.readouterr().out

    def with_orthogonalize(w, discriminator, map_optimizer, discriminator_optimizer, batches, smoothing=0.1,
                           beta=0.01):
        losses = _step("no orthogonalisation")(w, discriminator, map_optimizer, discriminator_optimizer, batches,
                                               smoothing, beta)
        with torch.no_grad():
            w.copy_(orthogonalize(w, beta))
        return losses

    assert not check("alignment_step", with_orthogonalize)
    assert "your function calls `mmcourse.alignment.orthogonalize`" in capsys.readouterr().out


def test_the_scaffold_is_not_done_yet_and_a_step_without_losses_is_told_so(capsys):
    def stub(w, discriminator, map_optimizer, discriminator_optimizer, batches, smoothing=0.1, beta=0.01):
        raise NotImplementedError

    assert not check("alignment_step", stub)
    assert "not done yet" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not done yet"):
        check("alignment_step", stub, must_pass=True)

    def silent(*args):
        _step()(*args)

    assert not check("alignment_step", silent)
    assert "raised ValueError: the step should return (discriminator loss, map loss), got NoneType" in \
        capsys.readouterr().out


def test_the_check_leaves_the_learners_generator_as_it_was():
    state = torch.get_rng_state()
    check("alignment_step", _step())
    assert torch.equal(torch.get_rng_state(), state)


def test_adversarial_alignment_trains_a_learners_step_as_it_trains_its_own():
    """The hand-written step inside the package's loop gives the package's maps: the loop's `step` argument is
    what lesson 04's build trains with."""
    spaces = experiments.synthetic_spaces(0, n=300)
    kwargs = {"truth": spaces.truth, "runs": 2, "steps": 30, "record_every": 10, "seed": 4, "progress": False}
    ours = adversarial_alignment(spaces.source, spaces.target, **kwargs)
    theirs = adversarial_alignment(spaces.source, spaces.target, step=_step(), **kwargs)
    assert torch.allclose(ours.maps, theirs.maps, atol=1e-5)
    assert [float(p[0]) for p in ours.history.precision] == pytest.approx(
        [float(p[0]) for p in theirs.history.precision], abs=0.01)


def test_adversarial_step_equals_a_step_written_with_torch_optim():
    """An independent reference: the hand-written step with torch.optim.SGD, from a map that is not orthogonal."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    discriminator = Discriminator(4, 8, runs=2, dropout=0.0).double()
    start = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1) + 0.1 * torch.randn(2, 4, 4, generator=g,
                                                                                  dtype=torch.float64)
    batches = [(torch.randn(2, 5, 4, generator=g, dtype=torch.float64),
                torch.randn(2, 5, 4, generator=g, dtype=torch.float64)) for _ in range(3)]
    out = {}
    for name, step, optimizer in (("package", adversarial_step, SGD), ("torch", _step(), torch.optim.SGD)):
        d = copy.deepcopy(discriminator)
        w = torch.nn.Parameter(start.clone())
        losses = step(w, d, optimizer([w], lr=0.1), optimizer(list(d.parameters()), lr=0.1), batches, 0.1, 0.05)
        out[name] = (w.detach(), [p.detach() for p in d.parameters()], [float(v) for v in losses])
    assert torch.allclose(out["package"][0], out["torch"][0], atol=1e-12)
    assert all(torch.allclose(a, b, atol=1e-12) for a, b in zip(out["package"][1], out["torch"][1]))
    assert out["package"][2] == pytest.approx(out["torch"][2], abs=1e-12)


def test_bad_arguments_to_the_step_and_the_loop_name_the_argument():
    spaces = experiments.synthetic_spaces(0, n=50)
    with pytest.raises(ValueError, match="step: expected a training step like adversarial_step, got NoneType"):
        adversarial_alignment(spaces.source, spaces.target, steps=1, step=None, progress=False)
    d = Discriminator(16, 8)
    w = torch.nn.Parameter(torch.eye(16))
    with pytest.raises(ValueError, match=r"w: expected a parameter \(K, d, d\)"):
        adversarial_step(w, d, SGD([w], 0.1), SGD(d.parameters(), 0.1), [(spaces.source[None], spaces.target[None])])
    w = torch.nn.Parameter(torch.eye(16)[None])
    with pytest.raises(ValueError, match=r"batches: expected x and y of shape \(K=1, B, d=16\)"):
        adversarial_step(w, d, SGD([w], 0.1), SGD(d.parameters(), 0.1), [(spaces.source, spaces.target)])
