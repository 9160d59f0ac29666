"""Exercises of lesson 04: Procrustes from the SVD, CSLS scores, the build (one step of the adversarial game, with a
buggy orthogonalisation to fix) and the experiment (how many pairs the adversarial map is worth)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..experiments import alignment as experiments
from . import Case, register, register_experiment


def _rotation(d: int, seed: int) -> torch.Tensor:
    """A random rotation (orthogonal, determinant +1), float64."""
    q, r = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if torch.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _reference_procrustes(source, target):
    from ..alignment import procrustes

    return procrustes(source, target)


def _procrustes_cases() -> list[Case]:
    g = torch.Generator().manual_seed(7)
    quarter = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    square = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [2.0, 1.0]], dtype=torch.float64)
    x = torch.randn(50, 5, generator=g, dtype=torch.float64)
    mirror = torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64))
    y = torch.randn(30, 3, generator=g, dtype=torch.float64)
    return [
        Case("5 points in 2-D turned by a quarter turn", (square, square @ quarter)),
        Case("50 points in 5-D, a random rotation plus noise",
             (x, x @ _rotation(5, 1) + 0.1 * torch.randn(50, 5, generator=g, dtype=torch.float64))),
        Case("30 points in 3-D, mirrored: the answer is a reflection", (y, y @ mirror)),
        Case("source and target of different scales", (3.0 * x, 0.5 * x @ _rotation(5, 2))),
    ]


# SciPy's orthogonal_procrustes has the same convention and result.
register("procrustes", _reference_procrustes, _procrustes_cases, atol=1e-6, rtol=1e-5,
         forbid=("scipy.linalg.orthogonal_procrustes",))


def _reference_csls(mapped_source, target, k):
    from ..alignment import csls_scores

    return csls_scores(mapped_source, target, k)


def _csls_cases() -> list[Case]:
    g = torch.Generator().manual_seed(8)
    angles = torch.tensor([0.0, 0.3, 2.0])
    tiny_source = torch.stack([angles.cos(), angles.sin()], 1).double()
    tiny_target = torch.tensor([[1.0, 0.1], [0.2, 1.0], [-1.0, 0.0], [0.9, -0.2]], dtype=torch.float64)
    return [
        Case("3 source and 4 target points in 2-D, k=1", (tiny_source, tiny_target, 1)),
        Case("the same, k=2 (the mean over two neighbours)", (tiny_source, tiny_target, 2)),
        Case("rows of different lengths (cosine ignores length)", (3 * tiny_source, 0.5 * tiny_target, 2)),
        Case("20 source and 30 target points in 6-D, k=5",
             (torch.randn(20, 6, generator=g, dtype=torch.float64),
              torch.randn(30, 6, generator=g, dtype=torch.float64), 5)),
    ]


register("csls_scores", _reference_csls, _csls_cases, atol=1e-6, rtol=1e-5,
         forbid=("mmcourse.alignment._csls_batched",))


# --- The build: one step of MUSE's adversarial game ----------------------------------------------------------


def _step_case(description: str, seed: int, runs: int, batch: int, dim: int, hidden: int, dropout: float = 0.0,
               discriminator_steps: int = 1, steps: int = 1, beta: float = 0.0, start=None) -> Case:
    """A start (map, discriminator, their SGD optimisers) and ``steps`` steps' batches, in float64. Built here, not
    by the reference, so that building the package's discriminator is not mistaken for the learner's code."""
    from ..alignment import Discriminator
    from ..train import SGD

    with torch.random.fork_rng(devices=[]):  # the learner's global generator is left as it was
        torch.manual_seed(seed)
        discriminator = Discriminator(dim, hidden, runs, dropout).double()
    eye = torch.eye(dim, dtype=torch.float64).repeat(runs, 1, 1)
    w = nn.Parameter(eye if start is None else start)
    g = torch.Generator().manual_seed(seed)
    batches = [[(torch.randn(runs, batch, dim, generator=g, dtype=torch.float64),
                 0.5 + torch.randn(runs, batch, dim, generator=g, dtype=torch.float64))
                for _ in range(discriminator_steps + 1)] for _ in range(steps)]
    return Case(description, (w, discriminator, SGD([w], lr=0.1), SGD(discriminator.parameters(), lr=0.1), batches,
                              0.1, beta, seed))


def _step_cases() -> list[Case]:
    shear = torch.eye(3, dtype=torch.float64) + torch.tensor([[0.0, 0.5, 0.0], [0.0, 0.0, 0.3], [0.0, 0.0, 0.0]],
                                                             dtype=torch.float64)
    return [
        _step_case("one run, one discriminator step, beta = 0 (no orthogonalisation)", 1, 1, 6, 4, 8),
        _step_case("three discriminator steps, each from fresh gradients", 2, 1, 5, 3, 6, discriminator_steps=3),
        _step_case("two runs at once: each run's mean loss, summed over the runs", 3, 2, 4, 4, 5,
                   discriminator_steps=2),
        _step_case("input dropout 0.3, two steps in a row: dropout while the discriminator learns, none while it "
                   "judges the map", 4, 1, 8, 4, 8, dropout=0.3, discriminator_steps=2, steps=2),
        _step_case("the orthogonalisation: two maps far from orthogonal (a shear, not symmetric), beta = 0.1", 5, 2,
                   4, 3, 6, beta=0.1, start=torch.stack([shear, shear.T])),
    ]


def _run_steps(step, w, discriminator, map_optimizer, discriminator_optimizer, steps, smoothing, beta, seed) -> dict:
    """Run ``step`` on each step's batches from the case's start; the losses of the last step and the parameters
    after it. The global generator is seeded first, so that the learner's step and the package's draw the same
    dropout masks, and put back after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for batches in steps:
            losses = step(w, discriminator, map_optimizer, discriminator_optimizer, batches, smoothing, beta)
    if not isinstance(losses, (tuple, list)) or len(losses) != 2:
        raise ValueError(f"the step should return (discriminator loss, map loss), got {type(losses).__name__}")
    out = {"discriminator loss": float(torch.as_tensor(losses[0]).detach()),
           "map loss": float(torch.as_tensor(losses[1]).detach())}
    out.update({f"discriminator {name}": p.detach() for name, p in discriminator.state_dict().items()})
    out["w"] = w.detach()
    return out


def _reference_step(*args) -> dict:
    from ..alignment import adversarial_step

    return _run_steps(adversarial_step, *copy.deepcopy(args))  # the case's start stays as it was


def _drive_step(submission, *args) -> dict:
    return _run_steps(submission, *args)  # the check gave the learner's step its own copy of the start


STEP_EXPLANATION = (
    "The bug in the copied orthogonalisation: it computes w.mT @ w @ w where the step needs w @ w.mT @ w. With the "
    "SVD w = U S V^T, w w^T w = U S^3 V^T: the singular vectors stay put and each singular value s moves to "
    "(1 + beta) s - beta s^3, towards 1. w^T w w = V S^2 V^T U S V^T mixes the two sets of singular vectors, so each "
    "step also turns w, and repeated steps can diverge. The two agree when w^T w = w w^T, as for an orthogonal w (the "
    "tutorial author's test). Cases 1 to 4 leave the orthogonalisation out (beta = 0) to test the game alone; case 5 "
    "starts from a shear, neither orthogonal nor symmetric, where the two forms part.")

register("alignment_step", _reference_step, _step_cases, drive=_drive_step, atol=1e-9, rtol=1e-7,
         explanation=STEP_EXPLANATION, forbid=("mmcourse.alignment.orthogonalize",))


# --- The experiment: how many pairs the adversarial map is worth ---------------------------------------------


def _reference_pairs() -> int:
    return experiments.CHOSEN_PAIRS


register_experiment("pairs_worth", lambda attempt, seed: experiments.pairs_against_adversarial(attempt(), seed),
                    {"gain": experiments.PAIRS_OVERTAKE, "gain with half": experiments.HALF_THE_PAIRS_FALL_SHORT},
                    question="the number of pairs at which Procrustes overtakes the adversarial map",
                    predicted="overtakes at", reference=_reference_pairs)
