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
# # Lesson 06: Meta-learning
#
# **What you will learn:** how to set up few-shot tasks honestly (the classes you test on are
# never seen in training); the two families of answers, metric-based (Prototypical Networks) and
# optimisation-based (MAML, written in a few lines with `torch.func`); why every learned method must
# be checked against the raw input and a plain classifier, and what that check finds here; and how a
# model can learn, across tasks, how much to trust each modality, and how much of that a closed-form
# rule already does. **Time:** about 45 minutes.
# **Runs on:** a laptop CPU in about half a minute; every model here trains in a second or two.
#
# You have learned the digits zero to five. Now someone shows you five handwritten sevens, each
# with a recording of a voice saying "seven", and asks you to recognise sevens from now on. You do
# not need thousands of examples. A model trained once on some classes cannot simply do the same:
# give it five examples of a new class and ordinary training overfits them. **Meta-learning** trains
# for exactly this situation. It trains on many small tasks, each with a few examples, so that the
# model gets good at learning a *new* task from a few examples: it learns to learn. Whether what it
# learned on the old classes *transfers* to new ones is something you measure, not assume. In this
# lesson, with six training classes, most of it does not, and you will see how to find that out.

# %%
import inspect

import torch
from torch.func import functional_call

import mmcourse
from mmcourse import exercises, verify
from mmcourse.data import DIGIT_NAMES
from mmcourse.diagnostics import normal_interval
from mmcourse.experiments import meta as experiments
from mmcourse.meta import SHAPE_CLASS_NAMES, EpisodeSampler
from mmcourse.views import meta as views

print("training on:", mmcourse.get_device())

# %% [markdown]
# ## 1. Episodes: tasks of N classes with K examples each
#
# A few-shot **task**, or *episode*, has $N$ classes (it is *$N$-way*) and two sets of examples:
# the **support set** $S$, with $K$ labelled examples of each class (*$K$-shot*), to learn from; and
# the **query set** $Q$, more examples of the same classes, to classify. What keeps this honest is
# the split: the classes form two disjoint pools, $\mathcal{C}_{train} \cap \mathcal{C}_{test} =
# \emptyset$, and the model is tested only on classes it never trained on, as in the benchmarks of
# Vinyals et al. (2016), [*Matching Networks for One Shot Learning*](https://arxiv.org/abs/1606.04080).
# Their training rule, "test and train conditions must match" (*train as you test*), is about how to
# train: on episodes built like the test episodes, a new few-shot task in every minibatch. Meta-training
# draws episodes from $\mathcal{C}_{train}$ and minimises the loss on their queries after seeing their
# supports:
#
# $$\min_\theta \; \mathbb{E}_{(S, Q) \sim \mathcal{C}_{train}} \Big[ \sum_{(x, y) \in Q}
# \ell\big(f_\theta(x \mid S), y\big) \Big],$$
#
# where $f_\theta(x \mid S)$ is the model's prediction for a query $x$ after seeing the support set $S$,
# and $\ell$ the loss of one query (here the cross-entropy).
#
# Meta-testing draws episodes from $\mathcal{C}_{test}$ and reports the mean query accuracy with its
# 95% confidence interval over many episodes. Inside an episode the labels are $0, \dots, N-1$ in
# whatever order the classes were drawn, so a model cannot memorise "output 3 means seven".
#
# Here: AV-Digits with digits 0-5 for meta-training (from its training split) and digits 6-9 for
# meta-testing (from its validation and test splits: new classes, new handwriting *and* new voices).
# Both modalities have AV-Digits' default corruption (pixel noise, a 3x3 occluder, audio at 0 dB);
# the pictures show the digits clean. Loading takes a second or two.

# %%
data = experiments.meta_data(seed=0)
train_classes = sorted(set(data.train["label"].tolist()))
test_classes = sorted(set(data.test["label"].tolist()))
verify(not set(train_classes) & set(test_classes), "meta-train and meta-test classes are disjoint",
       meta_train=train_classes, meta_test=test_classes)
print(f"meta-train pool: {len(data.train['label'])} image-audio pairs, meta-test pool: {len(data.test['label'])}")

# %%
examples = {DIGIT_NAMES[d]: data.clean_train["image"][data.clean_train["label"] == d][0] for d in train_classes}
examples |= {DIGIT_NAMES[d]: data.clean_test["image"][data.clean_test["label"] == d][0] for d in test_classes}
views.class_split(examples, [DIGIT_NAMES[d] for d in train_classes], [DIGIT_NAMES[d] for d in test_classes])

# %% [markdown]
# An `EpisodeSampler` draws episodes from a pool of columns (here the clean images, waveforms and
# labels of the meta-test digits). Episode number $i$ is the same every time for the same seed, so
# you can come back to it. Here is a 4-way 3-shot meta-test episode:

# %%
sampler = EpisodeSampler(data.clean_test, data.clean_test["label"], test_classes, n_way=4, k_shot=3, n_query=5,
                         seed=0)
episode = sampler.sample(0)
print("support:", tuple(episode.support["image"].shape), "labels", episode.support_labels.tolist())
print("classes of this episode (label 0, 1, 2, 3):", [DIGIT_NAMES[c] for c in episode.classes])
views.episode(episode.support["image"], episode.support_labels, episode.query["image"], episode.query_labels,
              [DIGIT_NAMES[c] for c in episode.classes])

# %% [markdown]
# Classes need not be whole categories. In one-object Shapes scenes, a class can be an *attribute
# combination*, shape x colour x size: 24 classes. Holding out 8 combinations gives meta-test
# classes whose shapes, colours and sizes all occur in meta-training classes, but never combined this
# way. This lesson trains on the digits only; the Shapes pool shows that the split can follow any
# labels you define:

# %%
shapes, shapes_train, shapes_test = experiments.shapes_pool(seed=0)
print("meta-test combinations:", ", ".join(SHAPE_CLASS_NAMES[c] for c in shapes_test))
shape_episode = EpisodeSampler(shapes, shapes["label"], shapes_test, n_way=3, k_shot=2, n_query=3, seed=0).sample(0)
views.episode(shape_episode.support["image"], shape_episode.support_labels, shape_episode.query["image"],
              shape_episode.query_labels, [SHAPE_CLASS_NAMES[c] for c in shape_episode.classes])

# %% [markdown]
# ## 2. Baselines first
#
# Before anything clever, the two obvious approaches. The first needs no training at all: average each
# class's $K$ support examples *as they are*, pixels or spectrogram cells, into a class mean $c_n$, and
# give each query the class of the nearest mean (squared Euclidean distance). A learned method has
# learned something that transfers only if it beats this.
#
# The second trains an ordinary classifier on all the meta-train classes at once (encoder $f_\theta$,
# linear head, cross-entropy), then throws the head away and keeps the features. Chen et al. (2019),
# [*A Closer Look at Few-shot Classification*](https://arxiv.org/abs/1904.04232), showed that such a
# baseline is hard to beat. Their Baseline fits a new linear classifier on the support features of
# each episode; their **Baseline++** replaces the linear layer, in training and on each episode, by a
# cosine classifier (scores are cosine similarities between a feature and one weight vector per
# class), and it was competitive with the meta-learning methods of the time; with deeper backbones the
# differences between all the methods shrank. The simplest version needs no fitting at test time: the
# nearest class mean again, now on the features (Wang et al. 2019,
# [*SimpleShot*](https://arxiv.org/abs/1911.04623); their best results first centre the features and
# scale them to unit length, here you use their plain, unnormalised version). That is the second
# baseline here.
#
# Score the raw inputs, train one baseline per modality on digits 0-5 (about a second in all), and
# test both on the same 300 4-way 5-shot episodes of digits 6-9:

# %%
raw_accuracy = {m: experiments.few_shot_accuracy(data, {m: experiments.raw_inputs(data.test[m])})
                for m in experiments.MODALITIES}
baseline = {m: experiments.train_baseline(data, m)[0] for m in experiments.MODALITIES}
baseline_embeddings = {m: experiments.embed(baseline[m], data.test[m]) for m in experiments.MODALITIES}
baseline_accuracy = {m: experiments.few_shot_accuracy(data, {m: h}) for m, h in baseline_embeddings.items()}
for m in experiments.MODALITIES:
    print(f"{m}: raw input {normal_interval(raw_accuracy[m])}, baseline {normal_interval(baseline_accuracy[m])} "
          "(4-way 5-shot accuracy, chance 0.25)")

# %% [markdown]
# The numbers in brackets are the 95% confidence interval over episodes, mean $\pm 1.96\,
# \mathrm{sd} / \sqrt{E}$ over $E$ episodes, as few-shot papers report them. The audio is the stronger
# modality here, as raw input and as features. But compare the two numbers of each row: the
# classifier's features do worse on the new digits than the raw input they were computed from.
# Section 3 checks this.
#
# ## 3. Prototypical Networks
#
# Snell, Swersky and Zemel (2017), [*Prototypical Networks for Few-shot
# Learning*](https://arxiv.org/abs/1703.05175), do the same at test time, and *train* that way too.
# Each class's **prototype** is the mean embedding of its support examples, and a query's class
# probabilities are a softmax over minus its squared distances to the prototypes:
#
# $$c_n = \frac{1}{K} \sum_{(x_i, y_i) \in S,\; y_i = n} f_\theta(x_i), \qquad
# p(y = n \mid x) = \frac{\exp(-\lVert f_\theta(x) - c_n \rVert^2)}{\sum_{n'} \exp(-\lVert f_\theta(x) - c_{n'}
# \rVert^2)}.$$
#
# Meta-training minimises the cross-entropy of the queries, episode after episode, so the encoder
# learns an embedding in which class means are good classifiers. Expanding the square,
# $-\lVert f(x) - c_n \rVert^2 = 2 c_n^\top f(x) - \lVert c_n \rVert^2 - \lVert f(x) \rVert^2$, and the
# last term is the same for every class: a ProtoNet is a linear classifier whose weights are built
# from the support set.
#
# **Exercise 1.** Write the prototypes and the class probabilities they give. `support` holds the
# $(|S|, D)$ embeddings of the support set, with `support_labels` $(|S|,)$ in $0..N-1$, in *any*
# order; `query` is $(|Q|, D)$. Return the $(|Q|, N)$ log-probabilities $\log p(y = n \mid x)$: the
# logits, then `torch.log_softmax` over the classes. The check compares log-probabilities because
# logits that differ by a constant per query give the same probabilities: minus the squared distances
# and the expanded form above both pass.

# %%
def my_prototype_log_probabilities(support, support_labels, query, n_way):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("prototype_log_probabilities", my_prototype_log_probabilities)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# Prototype $n$ is `support[support_labels == n].mean(0)`; stack the $N$ of them into $(N, D)$. For
# the distances, broadcast: `query[:, None, :] - protos[None, :, :]` is $(|Q|, N, D)$; square, sum
# over the last dimension, negate, and finish with `torch.log_softmax(logits, dim=-1)`. Do not
# `reshape(n_way, k_shot, D)`: that assumes the support rows come class by class.
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_prototype_log_probabilities(support, support_labels, query, n_way):
    protos = torch.stack([support[support_labels == n].mean(0) for n in range(n_way)])  # (N, D)
    logits = -((query[:, None, :] - protos[None, :, :]) ** 2).sum(-1)  # (Q, N)
    return torch.log_softmax(logits, dim=-1)


exercises.check("prototype_log_probabilities", solution_prototype_log_probabilities, must_pass=True)

# %% [markdown]
# The package's `prototypes` and `prototypical_logits` do the same for a batch of episodes;
# `prototypical_logits` equals minus PyTorch's squared `cdist`:

# %%
from mmcourse.meta import prototypes, prototypical_logits  # imported after exercise 1, which writes them

q, p = torch.randn(6, 8, dtype=torch.float64), torch.randn(4, 8, dtype=torch.float64)
gap = (prototypical_logits(q, p) + torch.cdist(q, p) ** 2).abs().max().item()
verify(gap < 1e-10, "ProtoNet logits are minus the squared Euclidean distances", largest_difference=gap)

# %% [markdown]
# Now meta-train one ProtoNet per modality: 6-way 5-shot episodes of digits 0-5 with 10 queries per
# class, 4 episodes per step, with the same encoders as the baseline (about 2 seconds):

# %%
protonets = {m: experiments.train_protonet(data, m)[0] for m in experiments.MODALITIES}
embeddings = {m: experiments.embed(protonets[m].encoder, data.test[m]) for m in experiments.MODALITIES}
proto_accuracy = {m: experiments.few_shot_accuracy(data, {m: h}) for m, h in embeddings.items()}
for m in experiments.MODALITIES:
    print(f"{m}: ProtoNet {normal_interval(proto_accuracy[m])}, baseline minus ProtoNet "
          f"{normal_interval(baseline_accuracy[m] - proto_accuracy[m])}, raw input minus ProtoNet "
          f"{normal_interval(raw_accuracy[m] - proto_accuracy[m])}")

# %%
experiments.RAW_BEATS_LEARNED.check(experiments.raw_margin(raw_accuracy, [baseline_accuracy, proto_accuracy]))

# %% [markdown]
# All of them are tested on the same 300 episodes, so the differences are paired: their intervals
# tell you whether this run can separate two methods at all. Two findings, each of which you should
# look for before you believe a few-shot result:
#
# - **The plain classifier against the ProtoNet** depends on the modality. For the audio the plain
#   classifier came out ahead on every one of the ten seeds the course checks, but by too variable a
#   margin to claim; for the image, which one is ahead changes from seed to seed. That is Chen et
#   al.'s point: episodic training is not automatically better than a well-trained plain embedding.
# - **Both learned embeddings lose to the raw input**, for both modalities (checked above): what the
#   encoders learned about digits 0-5 makes digits 6-9 *harder* to tell apart than the pixels and
#   spectrogram cells themselves. With only six training classes, an encoder learns the features that
#   separate those six, squeezed into 32 numbers, and drops what separates the others. Snell et al.
#   meta-trained on far more classes (Omniglot: 1,200 characters, 4,800 with rotations;
#   miniImageNet: 64 classes). So an accuracy far above chance is no evidence that anything
#   transferred: the raw input was far above chance before any training.
#
# What could six classes teach that holds for new ones? Not features of the digits, but something
# about the *input* that is the same for every digit: how much to trust each part of it. Give the
# ProtoNet the smallest encoder there is, one weight per input cell, $f(x)_j = e^{v_j} x_j$
# (`InputWeighting`), so that the squared distance becomes $\sum_j e^{2 v_j} (x_j - c_j)^2$: a learned
# diagonal metric on the raw input. It starts at $v = 0$, which is exactly the raw input, and trains on
# the same episodes with the same loss as the ProtoNet above (about half a second for both
# modalities). To compare, a closed-form weighting with no episodes: each cell divided by its
# within-class standard deviation over digits 0-5.

# %%
weighting = {m: experiments.train_input_weighting(data, m)[0].encoder for m in experiments.MODALITIES}
weighting_accuracy = {m: experiments.few_shot_accuracy(data, {m: experiments.embed(weighting[m], data.test[m])})
                      for m in experiments.MODALITIES}
scaled_accuracy = {m: experiments.few_shot_accuracy(
    data, {m: experiments.raw_inputs(data.test[m]) * experiments.within_class_scale(data, m)})
    for m in experiments.MODALITIES}
for m in experiments.MODALITIES:
    print(f"{m}: learned weights {normal_interval(weighting_accuracy[m])}; minus the raw input: learned weights "
          f"{normal_interval(weighting_accuracy[m] - raw_accuracy[m])}, "
          f"closed-form scaling {normal_interval(scaled_accuracy[m] - raw_accuracy[m])}")
views.input_weights(weighting["audio"].weights)

# %%
experiments.WEIGHTING_BEATS_RAW_AUDIO.check((weighting_accuracy["audio"] - raw_accuracy["audio"]).mean().item())
experiments.WEIGHTING_MATCHES_RAW_IMAGE.check(abs((weighting_accuracy["image"] - raw_accuracy["image"]).mean().item()))

# %% [markdown]
# For the audio, the learned weights beat the raw spectrogram (checked above), and the closed-form
# scaling does not (it scored below the raw input on every seed the course checks). A common factor on
# every weight would move no query to another class mean, so the gain lies in how the cells are
# weighed against each other: the map shows which time-frequency cells the episodes taught it to count
# more (bright) or less (dark), the same for every digit, new ones included (in this run, the low mel
# bands count less while the word is spoken). For the image, the learned weights stay within 0.02 of
# the raw pixels (checked): with pixel noise everywhere and an occluder in a different place in every
# image, there is probably no pixel that is more or less trustworthy for every digit. What transfers
# from six classes is what does not depend on the class.
#
# Whatever method you try, run the raw input and the plain baseline next to it, on the same episodes.
#
# How does the audio ProtoNet's accuracy change with the number of classes $N$ and of shots $K$?
# Evaluating is cheap: the meta-test digits are embedded once, and each episode only picks rows and
# averages them (about a second for 3,600 episodes):

# %%
grid = experiments.accuracy_grid(data, {"audio": embeddings["audio"]})
views.accuracy_against_shots(grid, "audio ProtoNet on digits 6-9 (bars: 95% intervals; dotted: chance)")
print({f"{n}-way {k}-shot": round(v.estimate, 3) for (n, k), v in grid.items() if k in (1, 5)})

# %%
experiments.MORE_SHOTS_HELP.check(grid[(4, 5)].estimate - grid[(4, 1)].estimate, one_shot=grid[(4, 1)].estimate,
                                  five_shot=grid[(4, 5)].estimate)

# %% [markdown]
# Fewer classes make an easier task (chance is $1/N$), and more shots give better prototypes: the
# mean of $K$ noisy embeddings has $1/K$ of their variance.
#
# ## 4. MAML: learn an initialisation that adapts in one step
#
# Finn, Abbeel and Levine (2017), [*Model-Agnostic Meta-Learning for Fast Adaptation of Deep
# Networks*](https://arxiv.org/abs/1703.03400), take the other road: no distances, an ordinary
# classifier $f_\theta$ with $N$ outputs, and *gradient descent* as the learner. The **inner loop**
# adapts the parameters to an episode with a step on its support loss; the **outer loop** moves
# the initialisation $\theta$ so that this one step works well on the queries. For the tasks $j$ of a
# meta-batch, with support set $S_j$ and query set $Q_j$:
#
# $$\theta'_j = \theta - \alpha \nabla_\theta \mathcal{L}_{S_j}(\theta), \qquad
# \min_\theta \sum_{j} \mathcal{L}_{Q_j}(\theta'_j).$$
#
# The meta-gradient goes *through* the inner step:
# $\nabla_\theta \mathcal{L}_Q(\theta') = (I - \alpha \nabla^2_\theta \mathcal{L}_S(\theta))\,
# \nabla_{\theta'} \mathcal{L}_Q(\theta')$, with a Hessian. **First-order MAML** drops the Hessian
# term and uses $\nabla_{\theta'} \mathcal{L}_Q(\theta')$ alone; Nichol, Achiam and Schulman (2018),
# [*On First-Order Meta-Learning Algorithms*](https://arxiv.org/abs/1803.02999), show why that
# still works.
#
# With `torch.func` this is a few lines. `functional_call(model, params, x)` runs the model with
# the parameters you pass (a dict), `grad(f)` returns the gradient function of `f`, and the inner
# step is a dict comprehension.
#
# **Exercise 2.** Write one inner step: return the scores of `query_x` after one gradient step on the
# cross-entropy of the support set. `params` is a dict of tensors, as `dict(model.named_parameters())`.

# %%
def my_adapted_scores(model, params, support_x, support_y, query_x, inner_lr):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("maml_inner_step", my_adapted_scores)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# `from torch.func import functional_call, grad`. Define
# `loss(p) = torch.nn.functional.cross_entropy(functional_call(model, p, (support_x,)), support_y)`;
# `g = grad(loss)(params)`
# is a dict like `params`; the new parameters are `{k: params[k] - inner_lr * g[k] for k in params}`;
# run `functional_call` with them on `query_x`.
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_adapted_scores(model, params, support_x, support_y, query_x, inner_lr):
    from torch.func import functional_call, grad

    def loss(p):
        return torch.nn.functional.cross_entropy(functional_call(model, p, (support_x,)), support_y)

    g = grad(loss)(params)
    return functional_call(model, {k: params[k] - inner_lr * g[k] for k in params}, (query_x,))


exercises.check("maml_inner_step", solution_adapted_scores, must_pass=True)

# %% [markdown]
# The package's inner loop, `adapt`, is the same step repeated `inner_steps` times, with a switch for
# first-order MAML:

# %%
from mmcourse.meta import adapt  # imported after exercise 2, which writes its step

print(inspect.getsource(adapt))

# %% [markdown]
# `maml_loss` is the query loss after `adapt`, and `maml_meta_loss` runs a meta-batch of tasks
# through `torch.func.vmap`: one batched computation instead of a Python loop over tasks (the
# model must not keep BatchNorm running statistics, which would be updated inside a transform).
# The gradient of `grad(...)` is itself differentiable, so `.backward()` on the meta-loss gives
# the second-order meta-gradient; `first_order=True` detaches $g$.
#
# **Exercise 3 (find the bug).** The loop that most tutorials write computes the inner step with
# `torch.autograd.grad`. Here is one task's meta-gradient written that way: the gradient, with
# respect to the initial parameters $\theta$, of the query loss after one inner step. It runs, the
# shapes are right, and a meta-loss trained with it falls. The check compares it with the
# package's `maml_loss` differentiated by `torch.func.grad`, on three small tasks: which case
# passes, and why that one?

# %%
def buggy_meta_gradient(model, params, support_x, support_y, query_x, query_y, inner_lr):
    support_loss = torch.nn.functional.cross_entropy(functional_call(model, params, (support_x,)), support_y)
    g = torch.autograd.grad(support_loss, list(params.values()))
    adapted = {k: p - inner_lr * g_k for (k, p), g_k in zip(params.items(), g)}
    query_loss = torch.nn.functional.cross_entropy(functional_call(model, adapted, (query_x,)), query_y)
    return dict(zip(params, torch.autograd.grad(query_loss, list(params.values()))))


exercises.check("meta_gradient", buggy_meta_gradient)

# %% [markdown]
# Write a fixed `my_meta_gradient` with the same arguments, returning a dict of gradients like
# `params`. Compare the formula for the meta-gradient above with what this function can see of $g$.

# %%
def my_meta_gradient(model, params, support_x, support_y, query_x, query_y, inner_lr):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("meta_gradient", my_meta_gradient)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# `torch.autograd.grad` returns gradients that are cut from the graph unless you ask for
# `create_graph=True`. Without it, $\theta - \alpha g$ changes with $\theta$ as if $g$ were a
# constant, and the Hessian term of the meta-gradient is lost: first-order MAML by accident.
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_meta_gradient(model, params, support_x, support_y, query_x, query_y, inner_lr):
    support_loss = torch.nn.functional.cross_entropy(functional_call(model, params, (support_x,)), support_y)
    g = torch.autograd.grad(support_loss, list(params.values()), create_graph=True)  # keep g differentiable
    adapted = {k: p - inner_lr * g_k for (k, p), g_k in zip(params.items(), g)}
    query_loss = torch.nn.functional.cross_entropy(functional_call(model, adapted, (query_x,)), query_y)
    return dict(zip(params, torch.autograd.grad(query_loss, list(params.values()))))


exercises.check("meta_gradient", solution_meta_gradient, must_pass=True)

# %% [markdown]
# Before training, check `vmap` against the plain loop over tasks that most tutorials write (each
# task adapted with `torch.autograd.grad(..., create_graph=True)`), on a meta-batch of 16 audio
# tasks: same loss, same meta-gradient.

# %%
from mmcourse.meta import maml_meta_loss, maml_meta_loss_loop  # imported after exercise 3

settings = experiments.MAMLSettings()
tasks = experiments.meta_batch_tasks(experiments.maml_sampler(data, settings), range(16))
model = experiments.build_maml_model(settings.modality)
params = dict(model.named_parameters())
args = (torch.nn.functional.cross_entropy, settings.inner_lr)
losses = {"vmap": maml_meta_loss(model, params, *tasks, *args), "loop": maml_meta_loss_loop(model, params, *tasks, *args)}
grads = {name: torch.autograd.grad(loss, list(params.values())) for name, loss in losses.items()}
gap = max((a - b).abs().max().item() for a, b in zip(grads["vmap"], grads["loop"]))
verify(abs(losses["vmap"] - losses["loop"]).item() < 1e-5 and gap < 1e-5,
       "the vmapped meta-batch gives the per-task loop's loss and meta-gradient", largest_gradient_difference=gap)

# %% [markdown]
# `tests/test_meta.py` also checks the second-order meta-gradient against finite differences, and
# the first-order one against the query gradient at the adapted parameters.
#
# MAML's model is a small perceptron on the spectrogram average-pooled to 16 x 10. Meta-train it on
# 4-way 5-shot audio tasks of digits 0-5, one inner step with $\alpha = 0.2$, 150 outer steps of 8
# tasks, with second-order and with first-order meta-gradients (about 3 seconds in all). At
# meta-test time it adapts to each new support set with the one step it was trained for, and with 5
# steps. Two controls, on the same episodes: the same perceptron at its *untrained* initialisation
# (the very weights meta-training starts from), adapted the same way, which shows what meta-training
# added to the gradient steps; and the nearest class mean on the same pooled spectrogram, with no
# training at all.

# %%
print(experiments.MAMLSettings())
models, seconds = {}, {}
for name, first_order in (("second order", False), ("first order", True)):
    models[name], history = experiments.train_maml(data, experiments.MAMLSettings(first_order=first_order))
    seconds[name] = f"trained in {history.seconds:.1f} s"
models["untrained start"] = experiments.maml_start(data)
maml = experiments.maml_accuracies(data, models, steps=(1, 5))
for name in models:
    print(f"{name:>15}: after 1 step {normal_interval(maml[(name, 1)])}, after 5 steps "
          f"{normal_interval(maml[(name, 5)])} {seconds.get(name, '')}")
pooled = experiments.few_shot_accuracy(data, {"x": experiments.maml_inputs(data.test["audio"], "audio")})
print(f"nearest class mean on the pooled spectrogram, no training: {normal_interval(pooled)}")

# %%
for k in (1, 5):
    second = maml[("second order", k)]
    print(f"after {k} step(s), second order minus untrained start "
          f"{normal_interval(second - maml[('untrained start', k)])}, "
          f"minus first order {normal_interval(second - maml[('first order', k)])}")
experiments.MAML_BEATS_ITS_START.check((maml[("second order", 1)] - maml[("untrained start", 1)]).mean().item())
experiments.SECOND_ORDER_AHEAD.check((maml[("second order", 1)] - maml[("first order", 1)]).mean().item())
experiments.RAW_BEATS_MAML.check((pooled - maml[("second order", 5)]).mean().item())

# %% [markdown]
# What MAML learns is to adapt *fast*. After the one step it was trained for, its initialisation is
# far ahead of the untrained one (checked above). Give both five steps and the untrained network
# catches up: which one is ahead then changes from seed to seed (on two of the ten seeds the course
# checks, the untrained start is clearly ahead), so that difference is printed, not claimed. First
# order against second order is a clean comparison (same model, same episodes): after one step,
# dropping the Hessian term costs accuracy (checked); after five, second order was ahead on every
# seed checked, but by too variable a margin to claim. And neither comes near the nearest class mean
# on the same pooled input (checked): as with the ProtoNets, six training classes teach these
# networks less than the raw input already holds.
#
# The meta-test episodes are the ProtoNet's too, so those numbers are paired as well, but read the
# gap between MAML and the audio ProtoNet with care: it mixes method and architecture. MAML's model
# is a perceptron with 4 outputs on the spectrogram pooled to 16 x 10, trained for 150 outer steps;
# the ProtoNet's encoder is a perceptron on the full 32 x 40 spectrogram with 32-dimensional
# embeddings, trained on other episodes. To compare the methods alone, give both the same network and
# inputs. A first-order step skips differentiating through the inner gradient, so it costs less; on a
# network this small the difference in training time is small too.
#
# How much does `vmap` save? Time one second-order meta-step of 16 tasks both ways (one CPU thread,
# median of 7 runs). `benchmarks/maml_step.py` does the same at more sizes.

# %%
vmapped = experiments.time_meta_step(model, tasks, vmapped=True)
looped = experiments.time_meta_step(model, tasks, vmapped=False)
print(f"one meta-step of 16 tasks: vmap {1000 * vmapped:.1f} ms, Python loop {1000 * looped:.1f} ms, "
      f"{looped / vmapped:.1f} times faster with vmap")

# %% [markdown]
# Raghu et al. (2020), [*Rapid Learning or Feature Reuse?*](https://arxiv.org/abs/1909.09157), found
# that MAML's inner loop mostly changes the last layer: the features are reused. Their ANIL adapts
# only the head, which is close to what a ProtoNet does with its prototypes.
#
# ## 5. Few-shot with two modalities
#
# Each modality gives its own prototypes. `modality_logits` stacks each modality's prototype logits
# for $E$ episodes, $(E, M, |Q|, N)$, and `fuse_logits` takes a weighted sum over the modalities. The
# simplest fusion adds the two squared distances, which is a ProtoNet on the concatenated embedding
# $[f_1(x); f_2(x)]$ and the concatenated prototypes; `fuse_logits` with equal weights $\tfrac12$
# computes the same up to a factor 2:

# %%
from mmcourse.meta import fuse_logits, modality_logits

e = experiments.test_sampler(data, embeddings).sample_batch(range(3))
logits = modality_logits([e.support[m] for m in experiments.MODALITIES], e.support_labels,
                         [e.query[m] for m in experiments.MODALITIES], 4)  # (E, M, |Q|, N)
joined = {k: torch.cat([e.support["image"], e.support["audio"]], -1) if k == "s" else
          torch.cat([e.query["image"], e.query["audio"]], -1) for k in ("s", "q")}
concatenated = prototypical_logits(joined["q"], prototypes(joined["s"], e.support_labels, 4))
gap = (2 * fuse_logits(logits, torch.full((3, 2), 0.5)) - concatenated).abs().max().item()
verify(gap < 1e-3, "equal-weight fusion is a ProtoNet on concatenated embeddings", largest_difference=gap)

# %%
fused = experiments.few_shot_accuracy(data, embeddings)
for name, acc in {**proto_accuracy, "both": fused}.items():
    print(f"{name:>5}: 4-way 5-shot {normal_interval(acc)}")
better = max(experiments.MODALITIES, key=lambda m: proto_accuracy[m].mean())
print(f"both minus {better} alone (paired): {normal_interval(fused - proto_accuracy[better])}")

# %% [markdown]
# Which modality helps which digit? Accuracy on the queries of each meta-test digit:

# %%
per_class = experiments.per_class_accuracy(data, {"image": {"image": embeddings["image"]},
                                                  "audio": {"audio": embeddings["audio"]}, "both": embeddings})
views.per_class_bars(per_class)
gain = {d: per_class["both"][d] - per_class["audio"][d] for d in experiments.META_TEST_DIGITS}
print("gain of both over audio:", {DIGIT_NAMES[d]: round(v, 3) for d, v in gain.items()})

# %% [markdown]
# Read the bars digit by digit. Where the image alone is weaker than the audio, adding it can still
# raise the accuracy, because the two modalities make different errors; where the audio alone is
# already very good, the image has little to add. How much fusion adds overall at the default
# corruption: the paired interval above says how sure this run is. Fusion came out ahead of the audio
# alone on every one of the ten seeds the course checks (`mmcourse/experiments/meta.py` lists them),
# but by too variable a margin to claim.
#
# Explore: choose $K$, $N$ and the modality. Each change evaluates the trained ProtoNets on 200
# meta-test episodes (no training) and draws the first of them in 2-D, on its two principal
# directions.

# %%
views.FewShotView(data, embeddings)

# %% [markdown]
# ## 6. Meta-learned fusion: how much to trust each modality, per episode
#
# Equal weights are right only when both modalities are equally reliable. Suppose each episode comes
# from a different recording setup: in some the camera is noisy, in others the microphone. Within an
# episode the corruption is the same for all examples, and the support set shows it: a noisy
# modality scatters the examples of each class widely compared with the distances between its
# prototypes. So let a small network $g_\phi$ read that from the support set and output the episode's
# weights:
#
# $$s_m = \Big(\log \overline{\lVert c^{(m)}_n - c^{(m)}_{n'} \rVert^2},\; \log \overline{\lVert f_m(x_i) -
# c^{(m)}_{y_i} \rVert^2}\Big), \qquad w = \operatorname{softmax}\big(g_\phi(s_1, s_2)\big), \qquad
# \text{logits} = \sum_m w_m \big(-\lVert f_m(x) - c^{(m)}_n \rVert^2\big),$$
#
# where $c^{(m)}_n$ is class $n$'s prototype in modality $m$, the first bar a mean over pairs of
# classes $n \neq n'$ and the second a mean over the support examples $(x_i, y_i)$.
#
# The encoders stay fixed (the ProtoNets of section 3); only $g_\phi$ (a perceptron with 16 hidden
# units) is meta-trained, on 1,600 episodes of digits 0-5 in which one modality is corrupted, at a
# level drawn per episode (pixel noise 0.5, 1 or 2, against 0.3 by default; audio at -5, -10 or -20
# dB), then tested on 600 such episodes of digits 6-9.
#
# A network has to earn its place against the simplest rule that could do the job. Suppose that in
# each modality $m$, whose embeddings have $D_m$ dimensions, every class were a spherical Gaussian
# around its prototype, with variance $\sigma_m^2$ per dimension for every class, and that the
# modalities were independent given the class. Bayes' rule would then add the modalities' squared
# distances, each weighted by $1/\sigma_m^2$:
#
# $$\log p(y = n \mid x) = \text{const} - \sum_m \frac{\lVert f_m(x) - c^{(m)}_n \rVert^2}{2 \sigma_m^2},
# \qquad w^{\text{rule}}_m \propto \frac{D_m}{\overline{\lVert f_m(x_i) - c^{(m)}_{y_i} \rVert^2}}.$$
#
# The support set estimates $\sigma_m^2$ as the within-class spread (the second statistic above)
# divided by $D_m$, so this **inverse-spread rule** (`inverse_spread_weights`) needs no training at
# all. One variant of it shows what a sharper turn alone would do: the **squared rule**, $w_m \propto
# (w^{\text{rule}}_m)^2$, which is no longer Bayes' rule for these Gaussians and needs no training
# either. The experiment scores both next to equal weights and the learned weights, on the same
# episodes (about 2 seconds):

# %%
fusion = experiments.meta_fusion_experiment(data, {m: net.encoder for m, net in protonets.items()})
print("numbers in g:", sum(p.numel() for p in fusion.model.parameters()))
for name, acc in fusion.accuracy.items():
    print(f"{name:>20}: {normal_interval(acc)}")

# %% [markdown]
# The same, condition by condition: the mean image weight (learned, the rule's and the squared
# rule's), each modality's *prototype distance* (the mean squared distance between two of its
# prototypes; not the within-class spread the rule reads), and the accuracy of each method.

# %%
columns = {"w image": "image weight", "rule w": "rule image weight", "rule² w": "squared rule image weight",
           "dist i": "image prototype distance", "dist a": "audio prototype distance", "image": "image only",
           "audio": "audio only", "equal": "equal weights", "rule": "inverse-spread rule", "rule²": "squared rule",
           "learned": "meta-learned weights"}
print(f"{'episodes with':>16}" + "".join(f"{c:>8}" for c in columns))
for (m, level), row in experiments.by_condition(fusion).items():
    print(f"{f'noisy {m} {level:g}':>16}" + "".join(f"{row[c]:>8.2f}" for c in columns.values()))

# %%
views.weights_by_condition(fusion.conditions, fusion.weights, fusion.accuracy, fusion.rule_weights,
                           fusion.squared_rule_weights)

# %%
noisy_image = experiments.noisy_image_episodes(fusion)
for rows, episodes in ((noisy_image, "noisy-image"), (~noisy_image, "noisy-audio")):
    gains = experiments.paired_gains(fusion, rows)
    print(f"{episodes} episodes, learned weights minus: " + ", ".join(
        f"{name} {normal_interval(gains[name])}" for name in ("equal weights", "inverse-spread rule", "squared rule")))
for m, level in experiments.CONDITIONS:
    other = "audio only" if m == "image" else "image only"
    gain = experiments.paired_gains(fusion, experiments.condition_episodes(fusion, (m, level)))[other]
    print(f"noisy {m} {level:g}: learned weights minus {other} {normal_interval(gain)}")

# %%
q = experiments.fusion_quantities(fusion)
experiments.META_WEIGHTS_BEAT_EQUAL.check(q["over equal, noisy images"])
experiments.RULE_GETS_MOST_OF_THE_GAIN.check(q["rule share"])
experiments.SQUARED_RULE_MATCHES.check(q["squared rule gap"])
experiments.WEIGHTS_TURN_FROM_NOISY_IMAGE.check(q["noisy image weight"])
experiments.TURN_FURTHER_THAN_RULE.check(q["below rule"])
experiments.NO_GAIN_ON_NOISY_AUDIO.check(q["equal gap, noisy audio"])
experiments.FUSION_BEATS_BOTH_ON_NOISY_AUDIO.check(q["over single, audio -5 and -10 dB"])
experiments.DROWNED_AUDIO_AT_CHANCE.check(q["drowned audio off chance"])
experiments.DROWNED_AUDIO_STILL_WEIGHTED.check(q["drowned image weight"])

# %% [markdown]
# Read the table row by row, noisy images first. A noisy image scatters the image embeddings: the
# distances between its prototypes grow with the noise, and so does the image's say in the
# equal-weight sum, so that at pixel noise 1 and 2 equal weights fall far below the audio alone.
# Weights read off the support set repair most of this. In noisy-image episodes the learned weights
# beat equal weights, and at pixel noise 1 and 2 they turn away from the image, further than the
# rule does (all checked above). But most of that gain needs no meta-learning: the inverse-spread
# rule, with no training, gets most of it, and the squared rule comes within 0.02 of the learned
# weights in these episodes (checked). What the network added to the rule is a sharper turn, and one
# fixed exponent on the rule gives the same. (Over the ten seeds the course checks, the learned
# weights were ahead of the plain rule in noisy-image episodes on every seed, by too variable a
# margin to claim.)
#
# Are those weights right, though? At pixel noise 1 and 2 the image alone is close to chance, so the
# best fusion is no fusion: the audio alone. Neither the learned weights nor the rules ever give the
# image a weight of exactly zero, and the learned weights fall slightly short of the audio alone (the
# intervals above; at pixel noise 2 on every seed checked). At pixel noise 0.5 the image still carries
# a little, and fusion came out ahead of the audio alone on most seeds, by too little to claim.
#
# With noisy audio it is the other way round. At -5 and -10 dB both modalities carry something, and
# the learned weights beat each modality alone (checked); but equal weights do as well: in
# noisy-audio episodes the learned weights stay within 0.025 of them (checked). Drowned audio is
# where every weighting falls short. Its embeddings huddle together: its prototypes draw close (the
# audio prototype distance shrinks), and so do the examples of each class. Equal weights then already
# lean away from it, since its small distances add little to the sum. The Gaussian rule reads the
# huddle the other way: a small within-class spread looks like a *reliable* modality, so on nine of
# the ten seeds checked the rule gives drowned audio more say than equal weights (an image weight
# below one half) and scores below them. At -20 dB the audio alone is at chance (checked), so the best
# weight for it would be zero; yet the learned image weight stays below 0.9 (checked), and the learned
# weights score below the image alone (the last interval above; below it on every seed checked, by
# too variable a margin to claim). Across tasks, on digits it never saw, the network learned what a
# sharper rule does; it did not learn to drop a drowned modality.


# %% [markdown]
# ## Summary
#
# - A few-shot **episode** has an $N$-way $K$-shot support set and a query set; meta-train and
#   meta-test classes are **disjoint**, and accuracy is reported with a 95% interval over episodes.
# - Run every learned method next to **the raw input** (nearest class mean, no training) and a **plain
#   baseline** (a classifier of the training classes, nearest class mean on its features; Chen et al.
#   2019), on the same episodes. Here, with six training classes, both learned embeddings transfer
#   worse than the raw input; what did transfer, for the audio, is one learned weight per input cell,
#   the same for every class.
# - **Prototypical Networks** classify by the squared distance to class-mean prototypes and train on
#   episodes; more shots give better prototypes.
# - **MAML** learns an initialisation from which the gradient step it was trained for goes far: after
#   that step it beats its own untrained start, and second order beats first order; given more steps,
#   the untrained start catches up. With `torch.func` (`functional_call`, `grad`, `vmap`) it is a few
#   lines, second-order by default, first-order by detaching the inner gradient (or forgetting
#   `create_graph=True`), and `vmap` runs a meta-batch as one batched computation instead of a loop
#   over tasks.
# - With two modalities at the default corruption, fused prototypes came out ahead of the audio alone
#   on every seed checked, by too variable a margin to claim. When the reliability of each modality
#   changes from task to task, weights read off each support set beat equal weights in noisy-image
#   episodes and do no better in noisy-audio ones. Most of that gain needs no learning: the
#   **inverse-spread rule** (Bayes' rule for spherical Gaussian classes) gets most of it, and the
#   same rule squared matches the **meta-learned weights**. None of them learns to drop a drowned
#   modality, and the rule even trusts it more than equal weights do: always compare a learned rule
#   with the closed-form one, condition by condition.
#
# **Try it:** meta-train the ProtoNets 4-way instead of 6-way (`experiments.train_protonet(data, m,
# n_way=4)`) and compare; give MAML's untrained start 20 test steps
# (`experiments.maml_accuracy(models["untrained start"], data, steps=20)`); or set
# `MAMLSettings(inner_steps=3)` and see what MAML gains and what it costs.
#
# **Further reading.** Vinyals et al. (2016), [*Matching Networks for One Shot
# Learning*](https://arxiv.org/abs/1606.04080). Snell, Swersky and Zemel (2017), [*Prototypical
# Networks for Few-shot Learning*](https://arxiv.org/abs/1703.05175). Finn, Abbeel and Levine (2017),
# [*Model-Agnostic Meta-Learning*](https://arxiv.org/abs/1703.03400). Nichol, Achiam and Schulman
# (2018), [*On First-Order Meta-Learning Algorithms*](https://arxiv.org/abs/1803.02999). Chen et al.
# (2019), [*A Closer Look at Few-shot Classification*](https://arxiv.org/abs/1904.04232). Raghu,
# Raghu, Bengio and Vinyals (2020), [*Rapid Learning or Feature Reuse? Towards Understanding the
# Effectiveness of MAML*](https://arxiv.org/abs/1909.09157). Antoniou, Edwards and Storkey (2019),
# [*How to train your MAML*](https://arxiv.org/abs/1810.09502), on making MAML train reliably.
