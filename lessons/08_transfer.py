# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 08: Sharing and transferring knowledge
#
# **What you will learn:** how one encoder with a head per task learns several tasks at once
# (multi-task learning), how to weigh task losses on different scales, and how to compare a shared
# model fairly with one model per task; how a teacher that hears *and* sees can teach a student
# that only sees (cross-modal distillation), how controls show where the student's gain comes
# from, and how good the teacher must be; and, to close the course, which method of lessons 00-08
# to reach for when.
#
# **You will build:** the distillation loss and the training step of a student that learns from a
# frozen teacher, and train an image-only student with them from a teacher that sees and hears.
#
# **Prerequisites:** [lesson 01](01_fusion.ipynb) (early fusion, bootstrap intervals), [lesson
# 03](03_attention.ipynb) (the question-answering model whose words attend over image patches),
# the KL divergence ([lesson 05](05_autoencoders.ipynb)) and a softmax with a temperature
# ([lesson 07](07_contrastive.ipynb)).
#
# **Time:** about 34 minutes of reading and 24 minutes of exercises. **Runs on:** a laptop CPU in
# about half a minute (every model here trains in a second or a few); a GPU is used when there is
# one.
#
# Labels are the expensive part of machine learning. This lesson is about two ways to get more out
# of the labels you have. **Share**: four kinds of question about the same scenes all need the same
# skill, finding the object the question names; one encoder trained on all of them sees four times
# as many examples of that skill as an encoder trained on one kind. **Transfer**: a model that has
# a modality you will not have later (audio) can label data for a model that lacks it (images
# only). In the taxonomy of lesson 00 both are *transference*: knowledge moving between tasks, and
# between modalities. The two pictures below show the two set-ups.

# %%
import math

import torch

import mmcourse
from mmcourse import exercises, verify
from mmcourse.diagnostics import bootstrap_interval, paired_difference
from mmcourse.experiments import transfer as experiments
from mmcourse.transfer import (
    MultiTaskVQA,
    distillation_loss,
    distillation_train_step,
    shapes_task_answers,
    soft_targets,
)
from mmcourse.views import transfer as views
from mmcourse.views.common import figure, show_digit

print("training on:", mmcourse.get_device())

# %%
with figure(11, 2.6, ncols=2) as axes:
    views.multitask_diagram(axes[0])
    views.distillation_diagram(axes[1])

# %% [markdown]
# ## 1. One encoder, four kinds of question
#
# Shapes & captions scenes (lessons 00 and 03), each with one question of one of four types:
# *what colour is the triangle?* (4 answers), *what size is the circle?* (2), *where is the
# square?* (9 positions) and *is there a red triangle?* (yes or no). Building the scenes takes a
# second or two:

# %%
questions = experiments.question_data(seed=0)
for name, data in (("full", questions.full), ("little", questions.little), ("test", questions.test)):
    counts = torch.bincount(data["task"], minlength=len(experiments.TASKS)).tolist()
    print(f"{name:>6}: {dict(zip(experiments.TASKS, counts))}")
first = [int((questions.test["task"] == t).nonzero()[0]) for t in range(len(experiments.TASKS))]
views.question_examples(questions.test, first)

# %% [markdown]
# **Hard parameter sharing** (Caruana 1997, [*Multitask
# Learning*](https://doi.org/10.1023/A:1007379606734)), as in the left-hand picture above: one
# encoder $f$ shared by every task $t$, and a small head $g_t$ of its own per task. An image with
# its question, $x$, of task $t$ gets the answer scores $g_t(f(x))$, and training minimises a
# weighted sum of the tasks' losses,
#
# $$\mathcal{L} = \sum_{t} \lambda_t \, \mathcal{L}_t, \qquad
# \mathcal{L}_t = \frac{1}{|\mathcal{I}_t|} \sum_{i \in \mathcal{I}_t} \mathrm{CE}\big(g_t(f(x_i)), y_i\big),$$
#
# where $\mathcal{I}_t$ is the set of the batch's rows of task $t$. The encoder gets the gradients
# of every task; each head only those of its own rows. Caruana's reasons why this can help: the
# shared encoder sees more data for what the tasks have in common, and a feature that is easy to
# learn from one task (where is the triangle?) serves another that would learn it slowly on its
# own. Why it can hurt: the tasks compete for one encoder, and their losses live on different
# scales (section 2).
#
# `MultiTaskVQA` is lesson 03's model (the words of the question attend over the patches of the
# image) without its answer layer, plus one head (LayerNorm and a linear layer) per question type.
# Each row goes through its own type's head only, and its scores land in that type's columns of one
# score table over all 17 answers:

# %%
model = MultiTaskVQA(shapes_task_answers())
batch = {k: v[:64] for k, v in questions.full.items()}
out = model(batch["image"], batch["question_ids"], batch["task"])
print(model.task_heads)
print("scores:", tuple(out.scores.shape), "| shared features:", tuple(out.features.shape))

# %%
own = [set(answers) for answers in shapes_task_answers()]
picked = out.scores.argmax(1)
verify(all(int(a) in own[int(t)] for a, t in zip(picked, batch["task"])),
       "every row's best answer is one of its own type's answers", rows=len(picked))

# %% [markdown]
# ### Check yourself
#
# 1. A batch of 64 rows holds 10 size questions. Which parameters does the size task's loss send
#    gradients to?
#
# <details><summary>Answer</summary>
#
# To the size head and to the shared encoder, through those 10 rows only. The other heads never
# score a size question, so the size loss does not depend on them. The encoder collects the
# gradients of all four tasks, which is how one task's rows can teach another.
# </details>
#
# 2. The model above is untrained, yet the check found every row's best answer among its own
#    type's answers. Why?
#
# <details><summary>Answer</summary>
#
# Because of how the scores are laid out, not because of anything learned. A row's head fills only
# its own type's columns of the score table; every other column holds the smallest number the
# tensor's type can hold, so the largest score is always one of the row's own answers.
# </details>
#
# 3. Give one reason to expect the shared model to do better than four separate ones, and one to
#    expect it to do worse.
#
# <details><summary>Answer</summary>
#
# Better: the skill every type needs, finding the named object, is learned from all the questions
# rather than a quarter of them. Worse: one encoder's features must serve four heads that pull in
# different directions, and losses on different scales let one task dominate the gradient.
# </details>

# %% [markdown]
# ## 2. Losses on different scales
#
# Before training, a head that knows nothing spreads its probability over its $C_t$ answers, and
# its cross-entropy is about $\log C_t$: larger for the 9 positions than for yes or no. Summed with
# equal weights, the position task starts with the largest share of the loss:

# %%
loss = model.loss(out, batch["answer_id"], batch["task"])
for t, name in enumerate(experiments.TASKS):
    c = len(shapes_task_answers()[t])
    print(f"{name:>8}: loss {loss.per_task[t]:.2f}  log C = log {c} = {math.log(c):.2f}")

# %% [markdown]
# Kendall, Gal and Cipolla (2018), [*Multi-Task Learning Using Uncertainty to Weigh Losses for
# Scene Geometry and Semantics*](https://arxiv.org/abs/1705.07115), learn the weights instead. Each
# task gets a learned log-variance $s_t = \log \sigma_t^2$: for a classification task they divide
# its logits by $\sigma_t^2$ before the softmax, as a temperature does, so a large $s_t$ flattens
# the task's probabilities, the model saying it is unsure (the opposite sense to lesson 07's logit
# scale $s$, where a large $s$ sharpens). Their approximation of the negative log-likelihood gives
# the loss
#
# $$\mathcal{L} = \sum_{t} \Big( e^{-s_t} \mathcal{L}_t + \frac{s_t}{2} \Big).$$
#
# The weight $e^{-s_t}$ falls as the task's uncertainty grows; the term $s_t / 2$ stops every
# $\sigma_t$ from growing without bound, which would switch every task off. Setting the derivative
# to zero gives $e^{-s_t} = 1 / (2 \mathcal{L}_t)$: a task whose loss stays high gets a small
# weight. For the losses above, those weights would be:

# %%
print({name: round(1 / (2 * loss.per_task[t].item()), 2) for t, name in enumerate(experiments.TASKS)})

# %% [markdown]
# `MultiTaskVQA(..., uncertainty=True)` learns the $s_t$ with the rest of the model; the
# experiments below keep the plain sum, $\lambda_t = 1$.
#
# ### Find the bug: per-task losses
#
# This function computes $\mathcal{L}_t$, the mean cross-entropy of each task over its rows of a
# batch, as you will find it in many multi-task training loops. It trains fine for a while, then
# the logged loss turns to NaN. Run the check, find out why, and write a fixed `my_task_losses`
# with the same arguments (`num_tasks` is the number of tasks; return a tensor of shape
# `(num_tasks,)`).

# %%
def buggy_task_losses(scores, answers, task, num_tasks):
    return torch.stack([torch.nn.functional.cross_entropy(scores[task == t], answers[task == t])
                        for t in range(num_tasks)])


exercises.check("task_losses", buggy_task_losses)

# %% [markdown]
# The check stops at the first case that differs. Now write your fixed version:

# %%
def my_task_losses(scores, answers, task, num_tasks):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("task_losses", my_task_losses)

# %% [markdown]
# <details><summary><b>Hint 1: a nudge</b></summary>
#
# Read the description of the case that fails, and look at that batch one task at a time. For each
# task, ask which rows the function averages over, and what it returns for that task.
# </details>
# <details><summary><b>Hint 2: what helps</b></summary>
#
# `rows = task == t` selects a task's rows and `rows.any()` says whether there are any.
# `scores.new_zeros(())` is a zero of the scores' type and device, and `torch.stack` of one value
# per task keeps a result of shape `(num_tasks,)`.
# </details>
# <details><summary><b>Hint 3: the code</b></summary>
#
# ```python
# losses = []
# for t in range(num_tasks):
#     rows = task == t
#     losses.append(torch.nn.functional.cross_entropy(scores[rows], answers[rows]) if rows.any()
#                   else scores.new_zeros(()))
# return torch.stack(losses)
# ```
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_task_losses(scores, answers, task, num_tasks):
    losses = []
    for t in range(num_tasks):
        rows = task == t
        losses.append(torch.nn.functional.cross_entropy(scores[rows], answers[rows]) if rows.any()
                      else scores.new_zeros(()))
    return torch.stack(losses)


exercises.check("task_losses", solution_task_losses, must_pass=True)

# %% [markdown]
# ### Check yourself
#
# 1. Why did the buggy function train fine for a while before its loss turned to NaN?
#
# <details><summary>Answer</summary>
#
# Most batches hold rows of every task. When one batch misses a task, the cross-entropy over that
# task's rows is a mean over zero rows, 0 / 0 = NaN. With fixed weights only the logged loss is
# NaN (the empty mean depends on no score, so no parameter gets its gradient); with learned
# uncertainty weights the NaN reaches $s_t$, then the head, the encoder and every other head. A
# task without rows must add 0.
# </details>
#
# 2. Before training, which task has the largest loss, and roughly how large is it?
#
# <details><summary>Answer</summary>
#
# The position task: an untrained head spreads its probability about evenly over its 9 answers, and
# the cross-entropy of a uniform guess is $\log 9$, the largest of the printed $\log C_t$. With
# equal weights it starts with the largest share of the loss.
# </details>
#
# 3. With uncertainty weighting, does a task whose loss stays high get a large weight or a small
#    one, and what stops every weight from falling to zero?
#
# <details><summary>Answer</summary>
#
# A small one: at the optimum $e^{-s_t} = 1 / (2 \mathcal{L}_t)$. The term $s_t / 2$ grows as the
# weight falls, so switching a task off is not free.
# </details>

# %% [markdown]
# ## 3. Shared against separate, on the same budget
#
# One shared model trained on all four types, against four models of the same architecture, each
# trained on its own type's questions alone. Same recipe, same seed (so the same starting encoder),
# and the same budget: every model passes over its questions the same number of times, so every
# question is seen equally often. The four separate models together take a few more steps:

# %%
for name, rows, size, epochs in (("400 per type", questions.full, 64, experiments.FULL_EPOCHS),
                                 ("100 per type", questions.little, 32, experiments.LITTLE_EPOCHS)):
    steps = experiments.steps_per_pass(rows, size)
    print(f"{name}: {epochs} passes in batches of {size}: shared model {epochs * steps['shared']} steps, "
          f"the four separate models together {epochs * steps['separate']}")

# %% [markdown]
# Sharing saves parameters, too:

# %%
n_shared = sum(p.numel() for p in model.parameters())
n_separate = sum(sum(p.numel() for p in MultiTaskVQA([a]).parameters()) for a in shapes_task_answers())
verify(n_shared < 0.3 * n_separate, "the shared model has under 30% of the four separate models' parameters",
       shared=n_shared, separate=n_separate)

# %% [markdown]
# First with 400 questions of each type, 8 passes (about 8 seconds for the five models):

# %%
full = experiments.compare_sharing(questions.full, questions.test, epochs=experiments.FULL_EPOCHS, seed=0)
print(full.table())

# %% [markdown]
# Then with 100 questions of each type (about 3 seconds):

# %%
little = experiments.compare_sharing(questions.little, questions.test, epochs=experiments.LITTLE_EPOCHS, seed=0,
                                     batch_size=32)
print(little.table())

# %%
with figure(11, 3, ncols=2) as axes:
    for ax, (name, result) in zip(axes, (("400 questions per type", full), ("100 questions per type", little))):
        views.sharing_bars(ax, result.accuracy("shared"), result.accuracy("separate"),
                           {t: result.difference(t) for t in experiments.TASKS}, title=name)

# %% [markdown]
# Above each pair: the shared model's accuracy minus the separate model's, with a 95% bootstrap
# interval over the test questions (`diagnostics.paired_difference`: the same questions for both
# models, resampled together). An interval that contains 0 says that this test set cannot tell the
# two apart. Read each accuracy against the table's majority column first, the accuracy of always
# giving the type's most common training answer: a model that does no better has learned nothing
# about its type, and a difference between two such models says nothing about sharing.

# %%
for name, result in (("400 per type", full), ("100 per type", little)):
    helped = [t for t in experiments.TASKS if result.difference(t).low > 0]
    hurt = [t for t in experiments.TASKS if result.difference(t).high < 0]
    nothing = [f"{t} ({m})" for t in experiments.TASKS for m in ("shared", "separate")
               if result.over_majority(m, t).low <= 0]
    print(f"{name}: mean difference {result.mean_difference():+.3f}; helped: {', '.join(helped) or 'none'}; "
          f"hurt: {', '.join(hurt) or 'none'}; no better than the majority answer: {', '.join(nothing) or 'none'}")

# %% [markdown]
# **How sure can you be?** The intervals cover one source of chance: which questions happen to be
# in the test set. Training has its own: the starting weights and the order of the batches. Train
# the separate colour model again with seeds 1 and 2, on the same questions (about two seconds),
# and set the spread over the three seeds beside the width of its interval:

# %%
colour = experiments.TASKS.index("colour")
own_rows, own_test = experiments.only_task(questions.full, colour), experiments.only_task(questions.test, colour)
print("separate colour model, seed 0:", bootstrap_interval(full.separate["colour"]), "(95% interval, test questions)")
for seed in (1, 2):
    again = experiments.train_multitask(own_rows, [colour], epochs=experiments.FULL_EPOCHS, seed=seed)
    print(f"the same model, seed {seed}:        {experiments.correct_answers(again, own_test).mean().item():.3f}")

# %% [markdown]
# Whenever retraining moves an accuracy by as much as the interval is wide, a single run cannot
# carry a finding. **So does sharing help?** Over ten seeds (see the lab guide), with 400 questions
# per type the shared model was ahead on average on every seed, the position questions gaining
# most, but on the worst seed by almost nothing: far from the margin of a claim. Take the direction
# as a hint. Pick a type to see both data regimes side by side:

# %%
views.MultiTaskView({"400 per type": full, "100 per type": little})

# %% [markdown]
# ### Check yourself
#
# 1. What keeps the comparison fair, and why do the four separate models take more steps in all
#    than the shared one (192 against 156 with 100 questions per type)?
#
# <details><summary>Answer</summary>
#
# The same architecture, recipe and seed, and the same number of passes over each model's own
# questions, so every question is seen equally often. Each pass of each separate model ends with a
# smaller batch, so four models take more steps than one over the same questions.
# </details>
#
# 2. In your run, the shared model's interval for some type lies above 0. Why is that not enough
#    to claim that sharing helps that type?
#
# <details><summary>Answer</summary>
#
# The interval covers only which questions are in the test set. Retraining with another seed moves
# an accuracy too, as the colour model at seeds 1 and 2 showed; a claim must hold over training
# seeds with a margin, and this comparison did not.
# </details>
#
# 3. A type's shared and separate models are both no better than the majority answer. What does
#    the difference between them tell you about sharing?
#
# <details><summary>Answer</summary>
#
# Nothing: neither model has learned anything about the type, so their difference is noise around
# the majority answer, whatever its interval says.
# </details>

# %% [markdown]
# ## 4. Distillation across modalities
#
# Now the other kind of transfer. You will deploy a camera-only digit reader, but while you collect
# data you can also record sound: every training image comes with a spoken digit. You can afford
# to label only 10 pairs of each digit. The images are those of lessons 00-01 (pixel noise 0.3 and
# a hidden square), the recordings clean (a signal-to-noise ratio, SNR, of 30 dB). Loading takes
# a second or two:

# %%
dist = experiments.distillation_data(seed=0)
print(f"labelled pairs: {len(dist.labelled['label'])} ({torch.bincount(dist.labelled['label']).tolist()} per digit), "
      f"unlabelled pairs: {len(dist.unlabelled['label'])}, held-out pairs (validation and test splits): "
      f"{len(dist.test['label'])}")
print(f"image noise: {experiments.IMAGE_NOISE}, audio: {experiments.AUDIO_SNR_DB:g} dB")
with figure(9, 1.4, ncols=8) as axes:
    for i, ax in enumerate(axes):
        show_digit(ax, dist.unlabelled["image"][i], "unlabelled images" if i == 0 else "")

# %% [markdown]
# A teacher that has heard a "seven" is sure it is a 7, but its logits also say that the image
# looks a little like a 1. Divided by a temperature $\tau$ before the softmax, the same logits make
# that second guess visible:

# %%
v = torch.tensor([[0.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 7.0, 0.0, 0.0]])  # a teacher's logits over the 10 digits
for tau in (1.0, 4.0):
    print(f"tau = {tau:g}: probabilities", [round(p, 2) for p in soft_targets(v, tau)[0].tolist()])

# %% [markdown]
# **Knowledge distillation** (Hinton, Vinyals and Dean 2015, [*Distilling the Knowledge in a
# Neural Network*](https://arxiv.org/abs/1503.02531)) trains a *student* to match a *teacher*'s
# softened probabilities as well as the labels. With the teacher's logits $v$ and the student's
# logits $u$,
#
# $$p_\tau = \mathrm{softmax}(v / \tau), \qquad q_\tau = \mathrm{softmax}(u / \tau),$$
#
# $$\mathcal{L}_{KD} = \alpha \, \tau^2 \, \frac{1}{B}\sum_{i=1}^{B} \mathrm{KL}\big(p_\tau^{(i)} \,\|\, q_\tau^{(i)}\big)
# + (1 - \alpha) \, \mathrm{CE}(u, y),$$
#
# where $\alpha$ mixes the soft term and the hard one, and $\mathrm{CE}(u, y)$ is the cross-entropy
# with the labels averaged over the batch, like the KL term. What the flattened $p_\tau$ shows, what else
# the teacher thinks an input could be, is Hinton's "dark knowledge". The factor $\tau^2$ is there
# because the soft term's gradient with respect to $u$ is $(q_\tau - p_\tau) / \tau$, and
# $q_\tau - p_\tau$ itself shrinks like $1 / \tau$; multiplying by $\tau^2$ keeps the gradient's
# scale, so $\alpha$ means the same at every temperature.
#
# **Across modalities** (Gupta, Hoffman and Malik 2016, [*Cross Modal Distillation for
# Supervision Transfer*](https://arxiv.org/abs/1507.00448)) the teacher and the student see
# different modalities of the same unlabelled pairs; Gupta et al. match the teacher's
# intermediate features, you match its soft labels. Here the teacher hears and sees, the student
# only sees. For the unlabelled pairs the cross-entropy part uses the teacher's most likely digit
# as the label (a *pseudo-label*): the student never sees their true labels.

# %% [markdown]
# See the $\tau^2$ factor at work: the size of the soft term's gradient for the same logits at
# several temperatures, with the factor and without it (with the package's loss; you write your
# own in section 5):

# %%
g = torch.Generator().manual_seed(0)
u, v, y = 3 * torch.randn(64, 10, generator=g), 3 * torch.randn(64, 10, generator=g), torch.randint(0, 10, (64,))
norms = {}
for tau in (1.0, 2.0, 4.0, 8.0):
    ut = u.clone().requires_grad_()
    (grad,) = torch.autograd.grad(distillation_loss(ut, v, y, temperature=tau, alpha=1.0), ut)
    norms[tau] = (grad.norm().item(), grad.norm().item() / tau**2)  # with tau^2, and without it
    print(f"tau = {tau:g}: gradient norm {norms[tau][0]:.4f} with tau^2, {norms[tau][1]:.5f} without")

# %%
with_factor = [a for a, _ in norms.values()]
verify(max(with_factor) / min(with_factor) < 2 and norms[1.0][1] / norms[8.0][1] > 30,
       "with tau^2 the gradient keeps its scale; without, it shrinks many times from tau = 1 to tau = 8",
       spread_with=max(with_factor) / min(with_factor), shrink_without=norms[1.0][1] / norms[8.0][1])

# %% [markdown]
# ### Check yourself
#
# 1. In the worked example above, what happened to the probability of the 1 when $\tau$ went from
#    1 to 4, and what can a student learn from it?
#
# <details><summary>Answer</summary>
#
# It rose, and the 7's fell: dividing the logits by $\tau$ shrinks their differences, so the
# probabilities flatten towards uniform. The raised 1 tells the student that this 7 looks a little
# like a 1, something a hard label cannot say.
# </details>
#
# 2. Why the factor $\tau^2$, and what would go wrong without it?
#
# <details><summary>Answer</summary>
#
# The soft term's gradient shrinks like $1 / \tau^2$. Without the factor a high temperature would
# quietly turn the soft term off, and $\alpha$ would mean something different at every $\tau$; the
# check above verified both.
# </details>
#
# 3. Predict: with $\alpha = 0$, does the temperature change the student?
#
# <details><summary>Answer</summary>
#
# No. With $\alpha = 0$ the loss is the cross-entropy with the labels alone, and $\tau$ appears only
# in the soft term; section 6 trains that student once and uses it for every $\tau$.
# </details>

# %% [markdown]
# ## 5. Build it yourself: a distillation step from a frozen teacher
#
# Write the loss, then one training step of the student with the teacher in it. The teacher is
# *frozen*: trained already, it only gives targets. Eval mode switches off any dropout in it (a
# teacher trained with lesson 01's modality dropout would otherwise hide a modality from itself at
# random), and `torch.no_grad()` around its forward pass computes no gradient for it.
#
# - `my_distillation_loss(student_logits, teacher_logits, labels, temperature, alpha)`:
#   $\mathcal{L}_{KD}$ above as a 0-dimensional tensor, with the KL divergence (0 when the student
#   matches the teacher), not Hinton's soft cross-entropy (larger by the teacher's entropy).
# - `my_distillation_step(student, teacher, batch, optimizer, temperature, alpha)`: `batch` holds
#   `"image"` $(B, 1, 8, 8)$, `"audio"` $(B, 1, 32, 40)$ and `"label"` $(B,)$; `student(image)`
#   gives logits $(B, 10)$, `teacher(image, audio).scores` the teacher's. Clear the student's gradients
#   before `backward`: the student may come with some. Return the loss.

# %%
def my_distillation_loss(student_logits, teacher_logits, labels, temperature, alpha):
    # YOUR CODE HERE
    raise NotImplementedError


def my_distillation_step(student, teacher, batch, optimizer, temperature, alpha):
    # YOUR CODE HERE: the frozen teacher's logits, the student's, your loss, one optimiser step
    raise NotImplementedError


exercises.check("distillation_loss", my_distillation_loss)
exercises.check("distillation_step", my_distillation_step)

# %% [markdown]
# <details><summary><b>Hint 1: a nudge</b></summary>
#
# Build the loss from its two terms. The soft one compares two distributions softened by the same
# temperature, the teacher's as the target, and is scaled by the square of the temperature; the
# hard one is the ordinary classification loss on the student's own logits. In the step, the
# teacher only gives targets: switch off what could make it random and what records gradients,
# then take one step of the student as in any training loop, forgetting the old gradients first.
# </details>
# <details><summary><b>Hint 2: what helps</b></summary>
#
# `torch.nn.functional.kl_div(input, target, reduction="batchmean")` is the KL of `target` from
# `input`, averaged over the batch; it wants `input` as *log*-probabilities:
# `torch.log_softmax(student_logits / temperature, dim=1)` and
# `torch.softmax(teacher_logits / temperature, dim=1)`. The hard term is
# `torch.nn.functional.cross_entropy(student_logits, labels)`. For the teacher: `teacher.eval()`
# and `torch.no_grad()`; the rest is lesson 00's optimiser step.
# </details>
# <details><summary><b>Hint 3: the code</b></summary>
#
# ```python
# def my_distillation_loss(student_logits, teacher_logits, labels, temperature, alpha):
#     log_q = torch.log_softmax(student_logits / temperature, dim=1)
#     p = torch.softmax(teacher_logits / temperature, dim=1)
#     soft = torch.nn.functional.kl_div(log_q, p, reduction="batchmean") * temperature**2
#     return alpha * soft + (1 - alpha) * torch.nn.functional.cross_entropy(student_logits, labels)
#
#
# def my_distillation_step(student, teacher, batch, optimizer, temperature, alpha):
#     teacher.eval()
#     with torch.no_grad():
#         teacher_logits = teacher(batch["image"], batch["audio"]).scores
#     loss = my_distillation_loss(student(batch["image"]), teacher_logits, batch["label"], temperature, alpha)
#     optimizer.zero_grad()
#     loss.backward()
#     optimizer.step()
#     return loss
# ```
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_distillation_loss(student_logits, teacher_logits, labels, temperature, alpha):
    log_q = torch.log_softmax(student_logits / temperature, dim=1)
    p = torch.softmax(teacher_logits / temperature, dim=1)
    soft = torch.nn.functional.kl_div(log_q, p, reduction="batchmean") * temperature**2
    return alpha * soft + (1 - alpha) * torch.nn.functional.cross_entropy(student_logits, labels)


def solution_distillation_step(student, teacher, batch, optimizer, temperature, alpha):
    teacher.eval()
    with torch.no_grad():
        teacher_logits = teacher(batch["image"], batch["audio"]).scores
    student_logits = student(batch["image"])
    # the loss written out, so that this step stands alone (yours may call your my_distillation_loss)
    soft = torch.nn.functional.kl_div(torch.log_softmax(student_logits / temperature, dim=1),
                                      torch.softmax(teacher_logits / temperature, dim=1), reduction="batchmean")
    loss = alpha * temperature**2 * soft + (1 - alpha) * torch.nn.functional.cross_entropy(student_logits,
                                                                                          batch["label"])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


exercises.check("distillation_loss", solution_distillation_loss, must_pass=True)
exercises.check("distillation_step", solution_distillation_step, must_pass=True)

# %% [markdown]
# Now train with your step (until it passes its check, `yours_or` hands in the package's). First
# the teacher, lesson 01's early fusion, on the 100 labelled pairs; then a fresh image-only student
# (lesson 00's image classifier) on every training image for 8 passes, $\tau = 4$, $\alpha = 0.5$.
# About two seconds:

# %%
step = exercises.yours_or("distillation_step", my_distillation_step, distillation_train_step)
teacher = experiments.train_on_labels(experiments.teacher_model, dist.labelled, ["image", "audio"], seed=0)
student, losses = experiments.train_student(step, teacher, dist)
with figure(6, 2.2) as axes:
    axes[0].plot(losses)
    axes[0].set(xlabel="step", ylabel="loss", title="the student's distillation loss, tau = 4, alpha = 0.5")
print(f"held-out accuracy: the student {experiments.correct_digits(student, dist.test).mean():.3f}, the teacher "
      f"(sees and hears) {experiments.correct_digits(teacher, dist.test, ['image', 'audio']).mean():.3f}")

# %% [markdown]
# From here on the lesson uses the package's `distillation_loss` (through `distil` in
# `mmcourse/experiments/transfer.py`); it and `distillation_train_step` are in
# `mmcourse/transfer.py`, whose source you can now read. `distil` runs the frozen teacher once
# beforehand rather than at every step: the same logits, so the same student.

# %% [markdown]
# ### Check yourself
#
# 1. The teacher's parameters are not in the optimiser. Why still run it under `torch.no_grad()`?
#
# <details><summary>Answer</summary>
#
# Without it the backward pass goes on into the teacher: it computes and stores gradients that
# nothing uses, which costs time and memory (the check counts the teacher's parameters that got
# one). Detaching the teacher's logits would also stop it, but only after the graph was built.
# </details>
#
# 2. You forget `optimizer.zero_grad()`. Why is your first step still right, and what goes wrong
#    after it?
#
# <details><summary>Answer</summary>
#
# A fresh model has no gradients yet, so the first step is right. From the second step on,
# `backward` adds each batch's gradient to the ones already there, and each step moves the student
# along the sum of every gradient so far. The check's third case starts from stale gradients to
# catch it.
# </details>
#
# 3. The loss curve is still falling after 8 passes, well above 0. Why would more passes not bring
#    it to 0?
#
# <details><summary>Answer</summary>
#
# Each batch draws different images, and the hard term's pseudo-labels are partly wrong, so no
# student fits every batch; the soft term is 0 only where the student's softened probabilities
# equal the teacher's, which an image-only network cannot reach for pairs whose digit only the
# audio gives away.
# </details>

# %% [markdown]
# ## 6. Where the student's gain comes from
#
# ### Teacher, student, and the controls
#
# `distillation_experiment` takes the teacher of section 5 and trains the *image-only model* (the
# student's own network) on the 100 labelled pairs, then distils a fresh student on every training
# image for each $\tau$ and $\alpha$ of a small grid. A gain is only as real as its baseline, so the
# image-only model is the student trained *the same way* on the labels alone: the same network and
# Adam step, with at least as many steps as a student takes (printed below). Two controls use the
# students' recipe: a student *self-trained* on the image-only model's hard labels instead of the
# teacher's (the same extra images, no audio), and one trained on every training image with its
# true label. Every model is tested on the held-out pairs. About 6 seconds:

# %%
distillation = experiments.distillation_experiment(dist, teacher=teacher)
print(f"Adam step {experiments.STUDENT_LR:g} for the labels-only model and every student; steps:",
      experiments.training_steps(dist))
names = {"baseline": "labels alone", "teacher": "teacher (sees and hears)", "self-trained": "self-trained",
         "all labels": "all labels"}
for name, shown in names.items():
    print(f"{shown:>24}: {distillation.accuracy(name):.3f}")
print("distilled students (tau, alpha):", {k: round(a, 3) for k, a in distillation.grid().items()})

# %% [markdown]
# Why can the teacher help? It labels the unlabelled pairs, and it *hears* them:

# %%
right = distillation.labels_right()
print(f"digit named right on the unlabelled pairs: teacher {right['teacher']:.3f}, "
      f"image-only model {right['image only']:.3f}")

# %%
experiments.TEACHER_HEARS.check(right["teacher"] - right["image only"], **right)

# %% [markdown]
# ### Hard labels or soft ones?
#
# The student's loss has two parts: the hard labels (the 100 true ones, and the teacher's
# pseudo-labels for the rest) through the cross-entropy, and the teacher's softened probabilities
# through the KL term. Line the students up, all on the same images with the same recipe, each
# against the labels alone (a paired bootstrap interval over the held-out images):

# %%
hard, key = experiments.HARD, (experiments.DEFAULT_TEMPERATURE, experiments.DEFAULT_ALPHA)
alone = distillation.correct["baseline"]
ladder = {"self-trained (the image-only model's hard labels)": "self-trained",
          "the teacher's hard labels alone (alpha = 0)": hard,
          "distilled (hard and soft labels, tau = 4, alpha = 0.5)": key,
          "all labels (every image, its true label)": "all labels"}
print(f"{'labels alone':>55}: {distillation.accuracy('baseline'):.3f}")
for name, k in ladder.items():
    print(f"{name:>55}: {distillation.accuracy(k):.3f}; minus labels alone "
          f"{paired_difference(distillation.correct[k], alone)}")

# %% [markdown]
# Two comparisons split the gain. Self-training and the teacher's hard labels use the same images
# and the same recipe; only whose labels differ, so their difference is what the audio adds. The
# distilled student and the student of the hard labels alone differ only in the soft term:

# %%
from_audio = paired_difference(distillation.correct[hard], distillation.correct["self-trained"])
soft = paired_difference(distillation.correct[key], distillation.correct[hard])
print("the teacher's hard labels minus self-training: ", from_audio)
print("distilled minus the teacher's hard labels alone:", soft)
self_gain, hard_gain, distilled_gain = (paired_difference(distillation.correct[k], alone)
                                        for k in ("self-trained", hard, key))

# %%
experiments.GAIN_FROM_AUDIO.check(from_audio.estimate, interval=from_audio)
experiments.SELF_TRAINING_ADDS_NOTHING.check(abs(self_gain.estimate), interval=self_gain)
experiments.TEACHER_LABELS_HELP.check(hard_gain.estimate, interval=hard_gain)
experiments.DISTILLATION_HELPS.check(distilled_gain.estimate, interval=distilled_gain)

# %% [markdown]
# Read the ladder. With every true label (its last row) the extra images help most. With the
# image-only model's own labels (its first row) they add nothing measurable: the student learns the
# model's own mistakes back. The teacher hears the digit, so its labels are right far more often,
# and its student gains most of what the true labels give. The soft labels add nothing measurable
# here: over ten seeds the distilled student minus the student of the hard labels alone (the second
# interval) fell on both sides of zero. Hinton et al.'s teachers were large networks trained on
# every label; this one learned from 100 pairs.
#
# Where does the student gain? Per digit, the held-out gain of the student of the teacher's hard
# labels next to how much more often the teacher than the image-only model got the unlabelled
# pairs of that digit right:

# %%
digits = experiments.per_digit(distillation)
views.per_digit_gains(digits["student gain"], digits["teacher advantage"])
print("correlation across digits:", round(torch.corrcoef(torch.stack(list(digits.values())))[0, 1].item(), 2))

# %% [markdown]
# A positive correlation says that the student gains most on the digits whose unlabelled images the
# teacher labelled better than images alone could. With ten digits and under a hundred held-out
# images each, expect a rough relation, not a line.
#
# ### Experiment: how good must the teacher be?
#
# Drown the teacher's audio in noise and train it again on the same 100 labelled pairs; the images,
# the labels, the image-only model and the student's recipe stay the same, and the student learns
# the noisy teacher's hard labels. At 30 dB the teacher named the digit of the unlabelled pairs far
# more often than the image-only model (printed above). Predict first: at the cleanest audio where
# the teacher no longer helps, how often does it name the digit right, next to the image-only
# model? Write a fraction in place of `None`:

# %%
experiments.keep_teacher_that_hears(distillation)  # the check compares with this run's teacher and student
print(f"image-only model: {right['image only']:.3f} of the unlabelled pairs right; the teacher at 30 dB: "
      f"{right['teacher']:.3f}")
exercises.predict("noisy_teacher", None)  # your guess: a fraction between 0 and 1

# %% [markdown]
# Then find audio noisy enough that the teacher stops helping, as clean as you can: `my_noisy_teacher`
# returns its SNR in dB, from -30 to 30. The check trains the teacher and its student at your SNR
# (about 2 seconds) and wants the teacher to name the digit of fewer unlabelled pairs than the
# image-only model; its second outcome, a student short of the 30 dB teacher's, is only a sanity
# check. It judges "stops helping", not "the cleanest": that part is yours, so try a few settings.

# %%
def my_noisy_teacher():
    # YOUR CODE HERE: return the audio's SNR in dB
    raise NotImplementedError


exercises.check("noisy_teacher", my_noisy_teacher)

# %% [markdown]
# <details><summary><b>Hint 1: a nudge</b></summary>
#
# Start from the lesson's thirty decibels and go down ten at a time. At each setting compare how
# often the teacher and the image-only model name the digit: the student can only learn what its
# labels get right, and without the teacher it would have the image-only model's.
# </details>
# <details><summary><b>Hint 2: what helps</b></summary>
#
# The check prints both labelling accuracies and the student's gain over the labels alone at your
# setting. `experiments.drowned_teacher_experiment(distillation, audio_snr_db=0)` runs one setting
# by itself: its `.labels_right()` and `.accuracy(experiments.HARD)`.
# </details>
# <details><summary><b>Hint 3: the code</b></summary>
#
# ```python
# def my_noisy_teacher():
#     return -10.0
# ```
#
# At -10 dB the teacher is worse than the image-only model on every seed, at 0 dB better on every
# seed; at about -5 dB it depends on the seed.
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_noisy_teacher():
    return -10.0


exercises.check("noisy_teacher", solution_noisy_teacher, must_pass=True)

# %% [markdown]
# ### What the temperature does
#
# First, the experiment. Over ten seeds (the lab guide has the numbers) the student's gain hardly
# moved from 30 dB down to 10 dB, although the teacher named fewer pairs right; it was about gone at
# -5 dB, where the teacher labelled no better than the image-only model. So the teacher need not be
# good, only a better labeller than the student's own network. Drowned further, it labels far worse
# than the image-only model: fitted on 100 pairs, the early-fusion teacher learns their noise by
# heart. Lesson 01's fused models (section 6) learned from corrupted copies to lean on the working
# sensor; nothing teaches this one to.
#
# Now the temperature: the teacher's soft labels for three unlabelled images that the image-only
# model gets wrong, at three temperatures (the true digit's bar is dark), and the mean entropy over
# all the unlabelled pairs, which measures how far the bars flatten towards uniform:

# %%
n = len(dist.labelled["label"])
wrong = (distillation.baseline_logits[n:].argmax(1) != dist.unlabelled["label"]).nonzero().flatten()[:3]
views.soft_labels_at_temperatures(dist.unlabelled["image"][wrong], distillation.teacher_logits[n:][wrong],
                                  dist.unlabelled["label"][wrong], experiments.TEMPERATURES)

# %%
unlabelled_logits = distillation.teacher_logits[n:]
for tau in experiments.TEMPERATURES:
    p = soft_targets(unlabelled_logits, tau)
    entropy = -(p * p.clamp_min(1e-12).log()).sum(1).mean().item()
    row = {a: round(distillation.accuracy((tau, a)), 3) for a in experiments.ALPHAS}
    print(f"tau = {tau:g}: mean entropy {entropy:.2f} nats (uniform: {math.log(10):.2f}); student accuracy by alpha {row}")

# %% [markdown]
# Move the sliders: the soft labels of these images at each temperature, and the test accuracy of
# the student distilled with that $\tau$ and $\alpha$ (all trained above; nothing trains when you
# move a slider). $\alpha = 0$ is the student of the hard labels alone, the same at every $\tau$.
# The sliders open at the lesson's setting, $\tau = 4$, $\alpha = 0.5$.

# %%
views.DistillationView(dist.unlabelled["image"][wrong], distillation.teacher_logits[n:][wrong],
                       dist.unlabelled["label"][wrong], distillation.grid(), distillation.accuracy("baseline"),
                       distillation.accuracy("teacher"), start=key)

# %% [markdown]
# Read each $\tau$ line across $\alpha$, and set each cell beside its $\alpha = 0$ entry. This
# teacher's small probabilities are partly noise, and a high $\tau$ makes that noise as loud as the
# rest; with $\alpha = 0.5$ the pseudo-labels keep the student anchored, with $\alpha = 1$ nothing
# does. The course states no claim about the temperature: the best cell changes from seed to seed.

# %% [markdown]
# ### Check yourself
#
# 1. The distilled student beats the labels alone. Is that the audio, or only more images? Which
#    two rows of the ladder tell?
#
# <details><summary>Answer</summary>
#
# Self-training and the student of the teacher's hard labels: the same images and recipe, only the
# labels' source differs. Self-training adds nothing measurable and the teacher's labels do better
# (both checked above), so the gain comes from the audio, through labels that are right more often.
# </details>
#
# 2. Why must the labels-only model be trained with the students' step and at least as many steps?
#
# <details><summary>Answer</summary>
#
# A baseline trained less well would make any student look good: the gain would measure the
# weaker training, not the teacher. The lesson prints the step and the numbers of steps so that you
# can see that the baseline had at least as many.
# </details>
#
# 3. Hinton et al. raise $\tau$ to hear a teacher's small probabilities. Why might that not help
#    here?
#
# <details><summary>Answer</summary>
#
# This teacher learned from 100 pairs, so its small probabilities are partly noise rather than a
# well-trained model's knowledge of which digits look alike. A high $\tau$ makes that noise as loud
# as the rest.
# </details>

# %% [markdown]
# ## 7. The course in one page
#
# Liang, Zadeh and Morency (2022), [*Foundations and Trends in Multimodal Machine Learning:
# Principles, Challenges, and Open Questions*](https://arxiv.org/abs/2209.03430), organise the
# field into six challenges (lesson 00). Here is where each lesson of the course sits on that map:
#
# | challenge | the question | methods, and the lesson that teaches them |
# |---|---|---|
# | **Representation** | how to encode and combine modalities | fusion (01); CCA and Deep CCA (02); bimodal autoencoders, MVAE and MMVAE (05); contrastive dual encoders (07) |
# | **Alignment** | which elements of one modality match which of another | CCA retrieval (02); cross-modal attention and grounding (03); Procrustes, adversarial alignment and CSLS (04); contrastive retrieval (07) |
# | **Reasoning** | how to compose evidence in several steps | none yet: lesson 03's questions take one step, which is grounding |
# | **Generation** | how to produce one modality from another | cross-modal generation with MVAE and MMVAE (05) |
# | **Transference** | how to move knowledge between modalities and tasks | Prototypical Networks, MAML, meta-learned fusion (06); zero-shot recognition (07); multi-task learning and cross-modal distillation (08) |
# | **Quantification** | how to measure what each modality contributes, and how sure you can be | robustness to missing modalities (01); deletion curves (03); hubness (04); coherence of generated samples (05); intervals over episodes (06); bootstrap intervals and controls (every lesson) |
#
# And the same course as a decision table, from the problem you have to the method to try first:
#
# | you have | try | lesson |
# |---|---|---|
# | two modalities at training and test time, to predict one label | fusion; late fusion or modality dropout if a modality may be missing | 01 |
# | paired data, and you want a shared space to compare or retrieve across modalities | CCA (linear, fast, closed form); Deep CCA; a contrastive dual encoder when pairs are many | 02, 07 |
# | two embedding spaces and few or no pairs between them | Procrustes on a few pairs; without pairs, Procrustes refinement from the identity, or from an adversarial start when the identity is too far; only when the two spaces share their geometry | 04 |
# | questions about *parts* of an input (which object, which word) | cross-modal attention, checked with grounding and deletion curves | 03 |
# | to generate or fill in a missing modality | a multimodal VAE (product or mixture of experts) | 05 |
# | new classes with a handful of examples | Prototypical Networks, MAML | 06 |
# | classes with no examples at all, but a description in words | zero-shot recognition with a contrastive model | 07 |
# | several related tasks with few labels each | one shared encoder with a head per task; measure accuracy on the same budget, over several seeds | 08 |
# | labels or a modality at training time that will be missing when you deploy | distillation from a teacher that has them | 08 |
# | any claim about what a model uses or where it looks | a control: unimodal baselines, shuffled pairs, ablations, deletion curves, bootstrap intervals | 01-08 |
#
# **The running comparison, once more.** Lesson 07's table of speech-to-image retrieval makes three
# points. *Pairs are the signal*: every method given the training pairs retrieved above chance, and
# without pairs the unsupervised map did no better than a random rotation. *Help must be counted*:
# its "labels" column says where labels helped. *One run is not a ranking*: a lead must hold over
# ten seeds before the course ranks two methods.

# %% [markdown]
# ### Check yourself
#
# 1. You train on photos with spoken descriptions, but your app will get photos only. Which row of
#    the decision table applies, and which baseline and control would back a gain?
#
# <details><summary>Answer</summary>
#
# Distillation from a teacher that has the missing modality (this lesson). Compare the student with
# the same network trained the same way on the labels alone, and with a student self-trained on an
# image-only model's labels, so that you know the gain comes from the audio and not from more images.
# </details>
#
# 2. On the map of challenges, where does this lesson's distillation sit, and where does lesson
#    03's grounding?
#
# <details><summary>Answer</summary>
#
# Distillation is transference: knowledge moves from one modality's model to another's. Grounding
# a word in image patches is alignment: it asks which element of one modality matches which of the
# other.
# </details>

# %% [markdown]
# ## Summary
#
# - **Multi-task learning** shares one encoder between tasks and gives each task a head; the loss
#   is a weighted sum of the tasks' losses, with fixed weights or weights learned from each task's
#   uncertainty. It needs far fewer parameters than one model per task; whether it is also more
#   accurate you must measure on the same budget, task by task and over several training seeds.
# - Per-task losses need care: different numbers of classes put them on different scales, and a
#   task without rows in a batch must add nothing, not NaN.
# - **Distillation** trains a student on a teacher's softened probabilities and hard labels; the
#   factor $\tau^2$ keeps the soft term's gradient on the same scale at every temperature.
# - **Across modalities**, a teacher with a modality the student lacks labels unlabelled pairs far
#   better than an image-only model, and its student beats the same network trained the same way on
#   the labels alone. The controls say why: the gain comes with the teacher's hard labels, and it
#   lasts as long as the teacher labels better than the student's own network would.
#
# **Try it:** train `experiments.train_multitask(questions.full, uncertainty=True)` and read the
# learned weights `torch.exp(-model.log_vars)`: which task gets the largest, and why? Or distil with
# more labels, `experiments.distillation_data(seed=0, labels_per_class=30)`: does the teacher still
# help?
#
# **Papers**
#
# - Ruder (2017), [*An Overview of Multi-Task Learning in Deep Neural
#   Networks*](https://arxiv.org/abs/1706.05098): hard and soft parameter sharing.
# - Kendall, Gal and Cipolla (2018), [*Multi-Task Learning Using Uncertainty to Weigh Losses for
#   Scene Geometry and Semantics*](https://arxiv.org/abs/1705.07115): the learned weights of section 2.
# - Standley et al. (2020), [*Which Tasks Should Be Learned Together in Multi-task
#   Learning?*](https://arxiv.org/abs/1905.07553), and Yu et al. (2020), [*Gradient Surgery for
#   Multi-Task Learning*](https://arxiv.org/abs/2001.06782): which tasks help each other, and how to
#   remove conflicting gradients.
# - Hinton, Vinyals and Dean (2015), [*Distilling the Knowledge in a Neural
#   Network*](https://arxiv.org/abs/1503.02531), and Furlanello et al. (2018), [*Born-Again Neural
#   Networks*](https://arxiv.org/abs/1805.04770): a student can beat its teacher.
# - Gupta, Hoffman and Malik (2016), [*Cross Modal Distillation for Supervision
#   Transfer*](https://arxiv.org/abs/1507.00448), and Aytar, Vondrick and Torralba (2016),
#   [*SoundNet*](https://arxiv.org/abs/1610.09001): cross-modal distillation at scale.
#
# **Next:** this is the course's last lesson for now. Its parts came from earlier lessons: the
# question model from lesson 03, the teacher's early fusion from lesson 01, the image classifier
# and the data from lesson 00, the intervals and controls from lesson 01 onwards; transference
# began with few-shot learning (06) and zero-shot recognition (07). A lesson on generation
# (captions from images) is planned; until it comes, the Generation row of the map points to
# lesson 05.
