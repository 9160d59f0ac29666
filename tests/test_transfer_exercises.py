"""Lesson 08's exercises: the worked solutions pass, and the typical mistakes are caught and explained."""

import torch
import torch.nn.functional as F

from mmcourse.exercises import check


def _distillation(student, teacher, labels, temperature, alpha, t_squared=True, log_input=True):
    q = F.log_softmax(student / temperature, dim=1) if log_input else F.softmax(student / temperature, dim=1)
    soft = F.kl_div(q, F.softmax(teacher / temperature, dim=1), reduction="batchmean")
    return alpha * (temperature**2 if t_squared else 1) * soft + (1 - alpha) * F.cross_entropy(student, labels)


def test_distillation_exercise(capsys):
    assert check("distillation_loss", _distillation)
    assert not check("distillation_loss", lambda *a: _distillation(*a, t_squared=False))
    assert "case 4 of 5 (T = 4, alpha = 0.9: the soft term needs its factor T^2)" in capsys.readouterr().out
    # probabilities where F.kl_div wants log-probabilities: wrong from the first case
    assert not check("distillation_loss", lambda *a: _distillation(*a, log_input=False))
    assert "case 1 of 5" in capsys.readouterr().out
    # a sum over the batch instead of the mean
    assert not check("distillation_loss", lambda s, t, y, temp, a: _distillation(s, t, y, temp, a) * len(s))
    assert "case 2 of 5" in capsys.readouterr().out


def test_two_heads_exercise(capsys):
    def routed(h, task, w0, b0, w1, b1):
        return torch.where((task == 0)[:, None], h @ w0.T + b0, h @ w1.T + b1)

    assert check("two_heads", routed)
    assert not check("two_heads", lambda h, task, w0, b0, w1, b1: h @ (w0 + w1).T + b0 + b1)  # both heads on every row
    assert not check("two_heads", lambda h, task, w0, b0, w1, b1: routed(h, 1 - task, w0, b0, w1, b1))  # swapped
    out = capsys.readouterr().out
    assert "case 1 of 4 (rows of both tasks, in turn)" in out and "wrong values" in out


def test_task_losses_find_the_bug(capsys):
    def buggy(scores, answers, task, num_tasks):
        return torch.stack([F.cross_entropy(scores[task == t], answers[task == t]) for t in range(num_tasks)])

    def fixed(scores, answers, task, num_tasks):
        return torch.stack([F.cross_entropy(scores[task == t], answers[task == t]) if (task == t).any()
                            else scores.new_zeros(()) for t in range(num_tasks)])

    assert not check("task_losses", buggy)
    out = capsys.readouterr().out
    assert "case 3 of 4 (task 1 has no row in this batch)" in out and "NaN" in out
    assert check("task_losses", fixed)
    assert "The bug: F.cross_entropy over the rows of a task that has none" in capsys.readouterr().out
