"""Lesson 08's exercises: the worked solutions pass, and the typical mistakes are caught and explained."""

import pytest
import torch
import torch.nn.functional as F

from mmcourse.data import VOCAB
from mmcourse.exercises import check
from mmcourse.experiments.transfer import image_model, teacher_model
from mmcourse.transfer import (
    MultiTaskVQA,
    distillation_loss,
    distillation_train_step,
    shapes_task_answers,
    uncertainty_weighted_loss,
    weighted_task_loss,
)


def _distillation(student, teacher, labels, temperature, alpha, t_squared=True, log_input=True):
    q = F.log_softmax(student / temperature, dim=1) if log_input else F.softmax(student / temperature, dim=1)
    soft = F.kl_div(q, F.softmax(teacher / temperature, dim=1), reduction="batchmean")
    return alpha * (temperature**2 if t_squared else 1) * soft + (1 - alpha) * F.cross_entropy(student, labels)


def _soft_cross_entropy(student, teacher, labels, temperature, alpha):
    """Hinton et al.'s form of the soft term: the cross-entropy with the soft targets, KL + the teacher's entropy."""
    p = F.softmax(teacher / temperature, dim=1)
    soft = -(p * F.log_softmax(student / temperature, dim=1)).sum(1).mean()
    return alpha * temperature**2 * soft + (1 - alpha) * F.cross_entropy(student, labels)


def test_distillation_exercise(capsys):
    assert check("distillation_loss", _distillation)
    assert not check("distillation_loss", lambda *a: _distillation(*a, t_squared=False))
    assert "case 4 of 5 (tau = 4, alpha = 0.9: the soft term needs its factor tau^2)" in capsys.readouterr().out
    # probabilities where F.kl_div wants log-probabilities: wrong from the first case
    assert not check("distillation_loss", lambda *a: _distillation(*a, log_input=False))
    assert "case 1 of 5" in capsys.readouterr().out
    # a sum over the batch instead of the mean
    assert not check("distillation_loss", lambda s, t, y, temp, a: _distillation(s, t, y, temp, a) * len(s))
    assert "case 2 of 5" in capsys.readouterr().out
    # Hinton et al.'s soft cross-entropy: the teacher's entropy above the KL, caught where the KL is 0
    assert not check("distillation_loss", _soft_cross_entropy)
    out = capsys.readouterr().out
    assert "case 1 of 5" in out and "cross-entropy with soft targets is not" in out
    # the KL the other way round, KL(q || p)
    assert not check("distillation_loss", lambda s, t, y, temp, a: a * temp**2 * F.kl_div(
        F.log_softmax(t / temp, dim=1), F.softmax(s / temp, dim=1), reduction="batchmean")
        + (1 - a) * F.cross_entropy(s, y))
    # alpha on the wrong term, and the labels' cross-entropy on softened logits
    assert not check("distillation_loss", lambda s, t, y, temp, a: _distillation(s, t, y, temp, 1 - a))
    assert not check("distillation_loss", lambda s, t, y, temp, a: _distillation(s, t, y, temp, a)
                     - (1 - a) * (F.cross_entropy(s, y) - F.cross_entropy(s / temp, y)))


def test_soft_cross_entropy_has_the_kls_gradient_but_not_its_value():
    """What the lesson says where the check rejects Hinton et al.'s form: same gradient, value larger by H(p)."""
    g = torch.Generator().manual_seed(3)
    z = 3 * torch.randn(6, 5, generator=g, dtype=torch.float64)
    v = 3 * torch.randn(6, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (6,), generator=g)
    grads, values = [], []
    for loss in (_distillation, _soft_cross_entropy):
        zz = z.clone().requires_grad_()
        value = loss(zz, v, y, 2.0, 1.0)
        values.append(value.item())
        grads.append(torch.autograd.grad(value, zz)[0])
    p = F.softmax(v / 2.0, dim=1)
    entropy = -(p * p.log()).sum(1).mean().item()
    assert torch.allclose(grads[0], grads[1], atol=1e-12)
    assert values[1] - values[0] == pytest.approx(4.0 * entropy, rel=1e-9)  # tau^2 H(p_tau)


def test_task_losses_find_the_bug(capsys):
    def buggy(scores, answers, task, num_tasks):
        return torch.stack([F.cross_entropy(scores[task == t], answers[task == t]) for t in range(num_tasks)])

    def fixed(scores, answers, task, num_tasks):
        return torch.stack([F.cross_entropy(scores[task == t], answers[task == t]) if (task == t).any()
                            else scores.new_zeros(()) for t in range(num_tasks)])

    assert not check("task_losses", buggy)
    out = capsys.readouterr().out
    assert "case 3 of 4 (task 1 has no row in this batch)" in out and "NaN" in out
    assert check("task_losses", fixed, must_pass=True)
    assert "The bug: F.cross_entropy over the rows of a task that has none" in capsys.readouterr().out


def _questions(task: list[int], seed: int):
    """Random images and questions for the given task ids, each row answered with one of its own task's answers."""
    g = torch.Generator().manual_seed(seed)
    answers = torch.tensor([shapes_task_answers()[t][0] for t in task])
    return (torch.rand(len(task), 3, 32, 32, generator=g), torch.randint(2, len(VOCAB), (len(task), 6), generator=g),
            torch.tensor(task), answers)


@pytest.mark.parametrize("uncertainty", [False, True])
def test_where_the_nan_of_a_task_without_rows_goes(uncertainty):
    """The find-the-bug explanation, measured on the real model: with fixed task weights the NaN stays in the
    loss (the empty mean's gradient is empty); with learned uncertainty weights it reaches s_t at once, and task
    t's head and the shared encoder at the next step."""
    torch.manual_seed(0)
    model = MultiTaskVQA(shapes_task_answers(), uncertainty=uncertainty)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step, rows in enumerate(([0, 2, 3, 0, 2, 3], [0, 1, 2, 3, 0, 1])):  # task 1 missing, then every task
        image, tokens, task, answers = _questions(rows, seed=step)
        scores = model(image, tokens, task).scores
        per_task = torch.stack([F.cross_entropy(scores[task == t], answers[task == t]) for t in range(4)])  # the bug
        if uncertainty:
            total = uncertainty_weighted_loss(per_task, model.log_vars, torch.bincount(task, minlength=4) > 0)
        else:
            total = weighted_task_loss(per_task, model.task_weights)
        optimiser.zero_grad()
        total.backward()
        nan_grads = {name for name, p in model.named_parameters() if p.grad is not None and p.grad.isnan().any()}
        if step == 0:
            assert per_task.isnan().tolist() == [False, True, False, False] and total.isnan()
            assert nan_grads == ({"log_vars"} if uncertainty else set())
            if uncertainty:
                assert model.log_vars.grad.isnan().tolist() == [False, True, False, False]  # s_1 only
        elif uncertainty:
            assert total.isnan()
            assert {"log_vars", "encoder.text.embed.weight", "encoder.cross.attn.q_proj.weight",
                    "task_heads.1.1.weight"} <= nan_grads
        else:
            assert not total.isnan() and not nan_grads
        optimiser.step()
    if not uncertainty:  # trained on, every parameter finite
        assert all(torch.isfinite(p).all() for p in model.parameters())


def _loss(u, v, y, tau, alpha):
    return alpha * tau**2 * F.kl_div(F.log_softmax(u / tau, dim=1), F.softmax(v / tau, dim=1), reduction="batchmean") \
        + (1 - alpha) * F.cross_entropy(u, y)


def _step(student, teacher, batch, optimizer, temperature, alpha, *, eval_mode=True, no_grad=True, zero_grad=True,
          take_step=True, loss=_loss):
    """A learner's distillation step, right by default; each flag off is one of the usual mistakes."""
    if eval_mode:
        teacher.eval()
    with torch.no_grad() if no_grad else torch.enable_grad():
        teacher_logits = teacher(batch["image"], batch["audio"]).scores
    value = loss(student(batch["image"]), teacher_logits, batch["label"], temperature, alpha)
    if zero_grad:
        optimizer.zero_grad()
    value.backward()
    if take_step:
        optimizer.step()
    return value


def test_distillation_step_build(capsys):
    assert check("distillation_step", _step, must_pass=True)
    capsys.readouterr()

    def wrong(**mistake):
        return lambda *args: _step(*args, **mistake)

    expected = {
        # a teacher trained with modality dropout and left in training mode hides a modality from itself
        "eval_mode": "case 4 of 5 (a teacher trained with modality dropout, left in training mode): the result['loss']",
        # the backward pass goes on into the teacher
        "no_grad": "case 1 of 5 (8 pairs, tau = 4, alpha = 0.5): the result[\"the number of the teacher's parameters "
                   "that got a gradient\"] is 14, expected 0",
        # stale gradients from an earlier step are added to the new ones
        "zero_grad": "case 3 of 5 (the student's parameters come with gradients left by an earlier step): the "
                     "result[\"student's 0.net.0.weight after the step\"] has wrong values",
        "take_step": "case 1 of 5 (8 pairs, tau = 4, alpha = 0.5): the result[\"student's",
    }
    for flag, message in expected.items():
        assert not check("distillation_step", wrong(**{flag: False}))
        out = capsys.readouterr().out
        assert message in out, (flag, out)
    # a loss without its factor tau^2 is caught by the step too, in its value
    def without_tau_squared(u, v, y, tau, a):
        soft = F.kl_div(F.log_softmax(u / tau, dim=1), F.softmax(v / tau, dim=1), reduction="batchmean")
        return a * soft + (1 - a) * F.cross_entropy(u, y)

    assert not check("distillation_step", wrong(loss=without_tau_squared))
    assert "case 1 of 5 (8 pairs, tau = 4, alpha = 0.5): the result['loss'] is" in capsys.readouterr().out

    # a reversed KL(q || p) inside the step: the cases' teacher has a trained teacher's spread of logits, so the soft
    # term weighs in the loss and the mistake shows in its value
    def reversed_kl(u, v, y, tau, a):
        soft = F.kl_div(F.log_softmax(v / tau, dim=1), F.softmax(u / tau, dim=1), reduction="batchmean")
        return a * tau**2 * soft + (1 - a) * F.cross_entropy(u, y)

    assert not check("distillation_step", wrong(loss=reversed_kl))
    assert "case 1 of 5 (8 pairs, tau = 4, alpha = 0.5): the result['loss'] is" in capsys.readouterr().out

    # zero_grad(set_to_none=False), as torch.optim accepts it, fills the old gradients with zeros: right too
    def zeros_not_none(student, teacher, batch, optimizer, temperature, alpha):
        optimizer.zero_grad(set_to_none=False)
        return _step(student, teacher, batch, optimizer, temperature, alpha, zero_grad=False)

    assert check("distillation_step", zeros_not_none)
    assert "all 5 cases match" in capsys.readouterr().out


def test_distillation_step_must_be_built(capsys):
    """The package's step (directly or wrapped) and the package's loss inside a step of one's own are rejected;
    an unfinished stub is "not done yet"; a step that returns nothing is told to return the loss."""
    assert not check("distillation_step", distillation_train_step)
    assert "your function calls `mmcourse.transfer.distillation_train_step`" in capsys.readouterr().out
    assert not check("distillation_step", lambda *args: distillation_train_step(*args))
    assert "your function calls `mmcourse.transfer.distillation_train_step`" in capsys.readouterr().out
    assert not check("distillation_step", lambda *args: _step(*args, loss=distillation_loss))
    assert "your function calls `mmcourse.transfer.distillation_loss`" in capsys.readouterr().out

    def stub(student, teacher, batch, optimizer, temperature, alpha):
        raise NotImplementedError

    assert not check("distillation_step", stub)
    assert "not done yet" in capsys.readouterr().out

    def silent(*args):
        _step(*args)

    assert not check("distillation_step", silent)
    assert "the step should return the loss" in capsys.readouterr().out


def test_the_packages_step_is_one_step_of_torchs_sgd_on_hinton_s_loss():
    """distillation_train_step against torch's own pieces: the KL of the softened distributions times tau^2 mixed
    with the cross-entropy, torch.optim.SGD, a frozen teacher (eval mode, no gradient, unchanged)."""
    torch.manual_seed(0)
    student, teacher = image_model(), teacher_model()
    teacher.train()
    g = torch.Generator().manual_seed(1)
    batch = {"image": torch.rand(6, 1, 8, 8, generator=g), "audio": torch.randn(6, 1, 32, 40, generator=g),
             "label": torch.randint(0, 10, (6,), generator=g)}
    mine = image_model()
    mine.load_state_dict(student.state_dict())
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    loss = distillation_train_step(student, teacher, batch, torch.optim.SGD(student.parameters(), lr=0.1), 3.0, 0.25)
    assert not teacher.training and all(p.grad is None for p in teacher.parameters())
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())

    u, v = mine(batch["image"]), teacher(batch["image"], batch["audio"]).scores.detach()
    p = torch.softmax(v / 3.0, dim=1)
    kl = (p * (p.log() - torch.log_softmax(u / 3.0, dim=1))).sum(1).mean()
    expected = 0.25 * 9.0 * kl + 0.75 * F.cross_entropy(u, batch["label"])
    expected.backward()
    torch.optim.SGD(mine.parameters(), lr=0.1).step()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5) and not loss.requires_grad
    for a, b in zip(student.parameters(), mine.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="alpha"):
        distillation_train_step(student, teacher, batch, torch.optim.SGD(student.parameters(), lr=0.1), 3.0, 1.5)
