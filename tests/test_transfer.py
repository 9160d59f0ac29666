"""mmcourse.transfer: the distillation loss against its formula and its gradient scale across temperatures,
the multi-task model's heads and losses, and bad input."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Categorical, kl_divergence

from mmcourse import fit
from mmcourse.data import ANSWERS, COLOURS, POSITIONS, VOCAB
from mmcourse.transfer import (
    MULTITASK_COLUMNS,
    MultiTaskOutput,
    MultiTaskVQA,
    distillation_loss,
    distillation_step,
    multitask_step,
    per_task_losses,
    shapes_task_answers,
    soft_targets,
    task_ids,
    uncertainty_weighted_loss,
    weighted_task_loss,
)

# ---------------------------------------------------------------------------------- distillation


def _logits(batch=6, classes=5, spread=3.0, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (spread * torch.randn(batch, classes, generator=g, dtype=dtype),
            spread * torch.randn(batch, classes, generator=g, dtype=dtype),
            torch.randint(0, classes, (batch,), generator=g))


@pytest.mark.parametrize("temperature, alpha", [(1.0, 0.5), (2.0, 0.9), (4.0, 1.0), (10.0, 0.3), (0.5, 0.7)])
def test_distillation_loss_is_its_formula(temperature, alpha):
    """alpha T^2 mean_b KL(p_T || q_T) + (1 - alpha) CE, with the KL from torch.distributions."""
    student, teacher, labels = _logits()
    p = Categorical(logits=teacher / temperature)  # the teacher's soft labels
    q = Categorical(logits=student / temperature)
    expected = alpha * temperature**2 * kl_divergence(p, q).mean() + (1 - alpha) * F.cross_entropy(student, labels)
    got = distillation_loss(student, teacher, labels, temperature, alpha)
    assert got.shape == () and torch.allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_alpha_zero_is_cross_entropy_and_alpha_one_the_soft_term_alone():
    student, teacher, labels = _logits()
    assert torch.equal(distillation_loss(student, teacher, labels, 3.0, 0.0), F.cross_entropy(student, labels))
    assert torch.equal(distillation_loss(student, teacher + 100, labels, 3.0, 0.0), F.cross_entropy(student, labels))
    soft = F.kl_div(F.log_softmax(student / 3, 1), F.softmax(teacher / 3, 1), reduction="batchmean") * 9
    assert torch.allclose(distillation_loss(student, teacher, labels, 3.0, 1.0), soft, rtol=1e-10)
    # a student that equals its teacher has nothing left to learn from it
    assert distillation_loss(teacher, teacher.clone(), labels, 2.0, 1.0).abs() < 1e-12


def _soft_gradient(temperature, scale_by_t2=True, seed=0):
    student, teacher, labels = _logits(batch=64, classes=10, seed=seed)
    student.requires_grad_()
    loss = distillation_loss(student, teacher, labels, temperature, 1.0)
    if not scale_by_t2:
        loss = loss / temperature**2
    (grad,) = torch.autograd.grad(loss, student)
    return grad


def test_the_t_squared_factor_keeps_the_soft_gradient_scale_across_temperatures():
    temperatures = [2.0, 4.0, 8.0, 16.0, 32.0]
    with_t2 = [_soft_gradient(t).norm().item() for t in temperatures]
    without = [_soft_gradient(t, scale_by_t2=False).norm().item() for t in temperatures]
    assert max(with_t2) / min(with_t2) < 2.0  # about constant ...
    assert without[0] / without[-1] > 100  # ... while without T^2 it falls like 1 / T^2 (16^2 = 256 here)
    assert 0.5 * 16**2 < without[0] / without[-1] < 2 * 16**2
    # Hinton et al.: at high T the gradient T (q_T - p_T) / B tends to (z - v) / (C B) for zero-mean logits
    student, teacher, _ = _logits(batch=64, classes=10)
    z, v = student - student.mean(1, keepdim=True), teacher - teacher.mean(1, keepdim=True)
    limit = (z - v) / (10 * 64)
    assert torch.allclose(_soft_gradient(1e4), limit, rtol=0, atol=1e-3 * limit.abs().max().item())


def test_the_teacher_gets_no_gradient():
    student, teacher, labels = _logits()
    student.requires_grad_()
    teacher.requires_grad_()
    distillation_loss(student, teacher, labels, 2.0, 0.5).backward()
    assert teacher.grad is None and student.grad.abs().sum() > 0


def test_soft_targets_flatten_with_the_temperature():
    logits = torch.tensor([[4.0, 1.0, 0.0, -2.0]])
    assert torch.allclose(soft_targets(logits, 1.0), torch.softmax(logits, 1))
    entropy = [Categorical(probs=soft_targets(logits, t)).entropy().item() for t in (0.5, 1, 2, 4, 8, 1000)]
    assert all(a < b for a, b in zip(entropy, entropy[1:]))
    assert entropy[-1] == pytest.approx(math.log(4), abs=1e-4)
    assert torch.equal(soft_targets(logits, 2.0).argmax(1), logits.argmax(1))


@pytest.mark.parametrize("kwargs, match", [
    ({"teacher_logits": torch.zeros(6, 4)}, "teacher_logits"),
    ({"teacher_logits": torch.zeros(5, 5)}, "teacher_logits"),
    ({"labels": torch.zeros(5, dtype=torch.long)}, "labels"),
    ({"labels": torch.zeros(6)}, "labels"),
    ({"temperature": 0.0}, "temperature"),
    ({"temperature": -1.0}, "temperature"),
    ({"temperature": True}, "temperature"),
    ({"alpha": 1.5}, "alpha"),
    ({"alpha": -0.1}, "alpha"),
])
def test_distillation_loss_rejects_bad_input(kwargs, match):
    student, teacher, labels = _logits(dtype=torch.float32)
    args = {"student_logits": student, "teacher_logits": teacher, "labels": labels, "temperature": 2.0,
            "alpha": 0.5, **kwargs}
    with pytest.raises(ValueError, match=match):
        distillation_loss(**args)
    with pytest.raises(ValueError, match="student_logits|teacher_logits"):
        distillation_loss(student[0], teacher[0], labels[:1])
    for bad in ({"temperature": 0}, {"alpha": 2}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            distillation_step(**{"temperature": 1.0, "alpha": 0.5, **bad})


def test_distillation_step_trains_a_student_towards_its_teacher_through_fit():
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    teacher = torch.nn.Linear(8, 4)
    with torch.no_grad():
        logits = teacher(x) * 3
    rows = {"x": x, "teacher_logits": logits, "label": logits.argmax(1)}
    student = torch.nn.Linear(8, 4)
    step = distillation_step(2.0, 1.0, inputs=["x"])
    before = step(student, rows).item()
    history = fit(student, rows, ["x", "teacher_logits"], "label", step=step, epochs=30, lr=1e-2, progress=False)
    assert step(student, rows).item() < 0.1 * before and len(history.train_loss) == 30
    assert torch.allclose(step(student, rows), distillation_loss(student(x), logits, rows["label"], 2.0, 1.0))


# ------------------------------------------------------------------------------------ multi-task


def _questions(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    task = torch.arange(n) % 4
    answers = torch.tensor([shapes_task_answers()[t][int(torch.randint(len(shapes_task_answers()[t]), (1,),
                                                                          generator=g))] for t in task.tolist()])
    tokens = torch.randint(2, len(VOCAB), (n, 6), generator=g)
    return {"image": torch.rand(n, 3, 32, 32, generator=g), "question_ids": tokens, "task": task,
            "answer_id": answers}


def test_shapes_task_answers_and_task_ids():
    answers = shapes_task_answers()
    assert [ANSWERS[i] for i in answers[0]] == COLOURS and [ANSWERS[i] for i in answers[2]] == POSITIONS
    assert [ANSWERS[i] for i in answers[1]] == ["small", "large"] and [ANSWERS[i] for i in answers[3]] == ["yes", "no"]
    assert sorted(i for a in answers for i in a) == list(range(len(ANSWERS)))  # every answer, once
    assert task_ids(["size", "colour", "exists"]).tolist() == [1, 0, 3]
    with pytest.raises(ValueError, match="question_types"):
        task_ids(["shape"])
    with pytest.raises(ValueError, match="question_types"):
        shapes_task_answers(["colour", "count"])


def test_each_head_sees_only_its_tasks_rows():
    torch.manual_seed(0)
    model = MultiTaskVQA(shapes_task_answers()).eval()
    batch = _questions(10)
    batch["task"] = torch.tensor([2, 0, 2, 3, 2, 1, 0, 2, 3, 3])
    seen = {}
    for t, head in enumerate(model.task_heads):
        head.register_forward_hook(lambda m, inputs, out, t=t: seen.__setitem__(t, inputs[0].detach().clone()))
    out = model(batch["image"], batch["question_ids"], batch["task"])
    assert isinstance(out, MultiTaskOutput)
    assert out.scores.shape == (10, len(ANSWERS)) and out.features.shape == (10, 32)
    lowest = torch.finfo(out.scores.dtype).min
    for t, answers in enumerate(shapes_task_answers()):
        rows = (batch["task"] == t).nonzero().flatten()
        assert torch.equal(seen[t], out.features[rows])  # exactly the task's rows, in order
        expected = model.task_heads[t](out.features[rows])
        assert torch.allclose(out.scores[rows][:, answers], expected)
        others = torch.ones(len(ANSWERS), dtype=torch.bool)
        others[answers] = False
        assert (out.scores[rows][:, others] == lowest).all()
        assert all(int(i) in answers for i in out.scores[rows].argmax(1))  # never another task's answer
    # a head without rows is not called at all
    seen.clear()
    model(batch["image"][:2], batch["question_ids"][:2], torch.tensor([0, 0]))
    assert list(seen) == [0]


def test_a_tasks_loss_reaches_its_own_head_only_and_the_shared_encoder():
    torch.manual_seed(1)
    model = MultiTaskVQA(shapes_task_answers())
    batch = _questions(8)
    out = model(batch["image"], batch["question_ids"], batch["task"])
    per_task, present = per_task_losses(out.scores, batch["answer_id"], batch["task"], 4)
    per_task[2].backward()
    for t, head in enumerate(model.task_heads):
        grads = [p.grad for p in head.parameters()]
        if t == 2:
            assert all(g is not None and g.abs().sum() > 0 for g in grads)
        else:
            assert all(g is None or g.abs().sum() == 0 for g in grads)
    assert model.encoder.image.colour.weight.grad.abs().sum() > 0


def test_per_task_losses_are_each_tasks_mean_and_zero_without_rows():
    g = torch.Generator().manual_seed(2)
    scores, answers = torch.randn(7, 5, generator=g), torch.randint(0, 5, (7,), generator=g)
    task = torch.tensor([0, 2, 2, 0, 0, 2, 2])
    losses, present = per_task_losses(scores, answers, task, 3)
    assert present.tolist() == [True, False, True]
    for t in (0, 2):
        rows = task == t
        assert torch.allclose(losses[t], F.cross_entropy(scores[rows], answers[rows]))
    assert losses[1] == 0 and not losses.isnan().any()
    with pytest.raises(ValueError, match="scores, answers, task"):
        per_task_losses(scores, answers[:3], task, 3)


def test_weighted_and_uncertainty_weighted_losses():
    losses = torch.tensor([0.5, 2.0, 1.0])
    assert weighted_task_loss(losses, torch.tensor([1.0, 0.5, 0.0])) == pytest.approx(1.5)
    s = torch.tensor([0.0, 1.0, -1.0])
    expected = sum(math.exp(-si) * li + si / 2 for si, li in zip(s.tolist(), losses.tolist()))
    assert uncertainty_weighted_loss(losses, s) == pytest.approx(expected)
    present = torch.tensor([True, False, True])
    assert uncertainty_weighted_loss(losses, s, present) == pytest.approx(expected - (math.exp(-1) * 2 + 0.5))
    # Kendall et al.: the learned s_t settles where exp(-s_t) = 1 / (2 L_t), so weight falls as the loss grows
    best = torch.log(2 * losses).requires_grad_()
    uncertainty_weighted_loss(losses, best).backward()
    assert best.grad.abs().max() < 1e-6
    with pytest.raises(ValueError, match="weights"):
        weighted_task_loss(losses, torch.ones(2))
    with pytest.raises(ValueError, match="log_vars"):
        uncertainty_weighted_loss(losses, torch.zeros(4))


# Three biases of lesson 03's encoder (AttentionVQA's too) only add the same constant to every score of a
# softmax, which changes nothing, so their gradient is zero in exact arithmetic: the word scorer's
# LayerNorm(dim) bias and Linear(dim, 1) bias (a softmax over the words), and the attention's key bias (a
# softmax over the patches, for each query). In floating point that gradient is rounding noise, exactly 0
# on one CPU and about 1e-9 on another (AVX2 vs AVX-512 kernels sum in another order).
SHIFT_INVARIANT = ["encoder.cross.attn.k_proj.bias", "encoder.word_weight.0.bias", "encoder.word_weight.1.bias"]


@pytest.mark.parametrize("uncertainty", [False, True])
def test_every_parameter_is_trained_through_fit(uncertainty):
    torch.manual_seed(3)
    model = MultiTaskVQA(shapes_task_answers(), uncertainty=uncertainty)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    assert ("log_vars" in before) == uncertainty
    batch = _questions(16)
    loss = model.loss(model(batch["image"], batch["question_ids"], batch["task"]), batch["answer_id"], batch["task"])
    loss.total.backward()
    # "no gradient" relative to the others: the real gradients here are 3e-3 to 2 at most, the rounding noise
    # on the shift-invariant biases 1e-10 to 1e-9 (or exactly 0), so 1e-6 of the largest sits between them
    largest = {name: 0.0 if p.grad is None else p.grad.abs().max().item() for name, p in model.named_parameters()}
    unused = sorted(name for name, g in largest.items() if g <= 1e-6 * max(largest.values()))
    assert unused == SHIFT_INVARIANT, {name: largest[name] for name in unused}
    if uncertainty:  # the log-variances get gradients: exp(-s) L + s / 2 has d/ds = 1/2 - L at s = 0
        assert torch.allclose(model.log_vars.grad, 0.5 - loss.per_task, atol=1e-6)
    model.zero_grad()
    history = fit(model, batch, MULTITASK_COLUMNS, None, step=multitask_step, epochs=2, batch_size=8,
                  progress=False)
    assert len(history.train_loss) == 2
    # every other parameter moved; the shift-invariant biases may or may not (Adam turns a gradient of rounding
    # noise into a step of up to lr, while a gradient that rounds to exactly 0 leaves them where they were)
    unchanged = [name for name, p in model.named_parameters() if torch.equal(p.detach().cpu(), before[name])]
    assert set(unchanged) <= set(SHIFT_INVARIANT), unchanged


def test_multitask_loss_with_fixed_weights():
    torch.manual_seed(4)
    model = MultiTaskVQA(shapes_task_answers(), task_weights=[1.0, 0.0, 2.0, 0.5])
    batch = _questions(12)
    out = model(batch["image"], batch["question_ids"], batch["task"])
    loss = model.loss(out, batch["answer_id"], batch["task"])
    per_task, _ = per_task_losses(out.scores, batch["answer_id"], batch["task"], 4)
    assert torch.allclose(loss.per_task, per_task) and loss.present.all()
    assert torch.allclose(loss.total, per_task @ torch.tensor([1.0, 0.0, 2.0, 0.5]))
    assert torch.allclose(multitask_step(model, batch), loss.total)


def test_multitask_model_rejects_bad_input():
    model = MultiTaskVQA([[0, 1], [2, 3, 4]])
    image, tokens = torch.rand(3, 3, 32, 32), torch.randint(2, 10, (3, 6))
    with pytest.raises(ValueError, match="task: expected ids in \\[0, 2\\)"):
        model(image, tokens, torch.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match="task: expected integer"):
        model(image, tokens, torch.zeros(3))
    with pytest.raises(ValueError, match="task: expected integer"):
        model(image, tokens, torch.zeros(2, dtype=torch.long))
    for bad in ([], [[0, 1], []], [[0, 99]]):
        with pytest.raises(ValueError, match="task_answers"):
            MultiTaskVQA(bad)
    with pytest.raises(ValueError, match="task_weights"):
        MultiTaskVQA([[0, 1], [2, 3]], task_weights=[1.0])
    with pytest.raises(ValueError, match="task_weights"):
        MultiTaskVQA([[0, 1], [2, 3]], task_weights=[1.0, -1.0])
