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
# optimisation-based (MAML, written in a few lines with `torch.func`); why a plain classifier's
# features are a strong baseline; and how a model can learn, across tasks, how much to trust each
# modality, and how much of that a closed-form rule already does. **Time:** about 45 minutes.
# **Runs on:** a laptop CPU in about half a minute; every model here trains in a second or two.
#
# You have learned the digits zero to five. Now someone shows you five handwritten sevens, each
# with a recording of a voice saying "seven", and asks you to recognise sevens from now on. You do
# not need thousands of examples: what you learned about digits and voices *transfers*. A model
# trained once on many classes usually does not: give it five examples of a new class and ordinary
# training overfits them. **Meta-learning** trains for exactly this situation. It trains on many
# small tasks, each with a few examples, so that the model gets good at learning a *new* task from
# a few examples: it learns to learn.

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
# \ell\big(f_\theta(x \mid S), y\big) \Big].$$
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
# classes made of attributes the model has seen, combined in ways it has not:

# %%
shapes, shapes_train, shapes_test = experiments.shapes_pool(seed=0)
print("meta-test combinations:", ", ".join(SHAPE_CLASS_NAMES[c] for c in shapes_test))
shape_episode = EpisodeSampler(shapes, shapes["label"], shapes_test, n_way=3, k_shot=2, n_query=3, seed=0).sample(0)
views.episode(shape_episode.support["image"], shape_episode.support_labels, shape_episode.query["image"],
              shape_episode.query_labels, [SHAPE_CLASS_NAMES[c] for c in shape_episode.classes])

# %% [markdown]
# ## 2. A baseline first
#
# Before anything clever, the obvious approach. Train an ordinary classifier on all the meta-train
# classes at once (encoder $f_\theta$, linear head, cross-entropy), then throw the head away and keep
# the features. Chen et al. (2019), [*A Closer Look at Few-shot
# Classification*](https://arxiv.org/abs/1904.04232), showed that such a baseline is hard to beat.
# Their Baseline fits a new linear classifier on the support features of each episode; their
# **Baseline++** replaces the linear layer, in training and on each episode, by a cosine classifier
# (scores are cosine similarities between a feature and one weight vector per class), and it was
# competitive with the meta-learning methods of the time; with deeper backbones the differences
# between all the methods shrank. The simplest version needs no fitting at all: average each
# class's support embeddings into a class mean $c_n$ and give each query the class of the nearest
# mean (Wang et al. 2019, [*SimpleShot*](https://arxiv.org/abs/1911.04623)). That is the baseline here.
#
# Train one baseline per modality on digits 0-5 (about a second in all), then test on 300 4-way
# 5-shot episodes of digits 6-9:

# %%
baseline = {m: experiments.train_baseline(data, m)[0] for m in experiments.MODALITIES}
baseline_embeddings = {m: experiments.embed(baseline[m], data.test[m]) for m in experiments.MODALITIES}
baseline_accuracy = {m: experiments.few_shot_accuracy(data, {m: h}) for m, h in baseline_embeddings.items()}
for m, acc in baseline_accuracy.items():
    print(f"baseline, {m}: 4-way 5-shot accuracy {normal_interval(acc)} (chance 0.25)")

# %% [markdown]
# The numbers in brackets are the 95% confidence interval over episodes, mean $\pm 1.96\,
# \mathrm{sd} / \sqrt{E}$, as few-shot papers report them. The audio is the stronger modality here:
# an 8x8 digit with noise and an occluder is hard to read, a spoken digit from a new voice less so.
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
# **Exercise 1.** Write the prototypes and the class probabilities they give. `support` is $(S, D)$
# embeddings with `support_labels` $(S,)$ in $0..N-1$, in *any* order; `query` is $(Q, D)$. Return the
# $(Q, N)$ log-probabilities $\log p(y = n \mid x)$: the logits, then `torch.log_softmax` over the
# classes. The check compares log-probabilities because logits that differ by a constant per query
# give the same probabilities: minus the squared distances and the expanded form above both pass.

# %%
def my_prototype_log_probabilities(support, support_labels, query, n_way):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("prototype_log_probabilities", my_prototype_log_probabilities)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# Prototype $n$ is `support[support_labels == n].mean(0)`; stack the $N$ of them into $(N, D)$. For
# the distances, broadcast: `query[:, None, :] - protos[None, :, :]` is $(Q, N, D)$; square, sum
# over the last dimension, negate, and finish with `torch.log_softmax(logits, dim=-1)`. Do not
# `reshape(n_way, k_shot, D)`: that assumes the support rows come class by class.
# </details>

# %% tags=["solution"] jupyter={"source_hidden": true}
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
    difference = normal_interval(baseline_accuracy[m] - proto_accuracy[m])
    print(f"{m}: ProtoNet {normal_interval(proto_accuracy[m])}, baseline minus ProtoNet {difference}")

# %% [markdown]
# Both are tested on the same 300 episodes, so the difference is paired: its interval tells you
# whether this run can separate the two at all. Which one comes out ahead changes from seed to seed,
# so the lesson claims neither. That is Chen et al.'s point: a well-trained plain embedding is a
# strong competitor for episodic training, and with six training classes there is little for
# episodes to add. Whatever method you try, run the plain baseline next to it.
#
# How does accuracy change with the number of classes $N$ and of shots $K$? Evaluating is cheap:
# the meta-test digits are embedded once, and each episode only picks rows and averages them (about
# a second for 3,600 episodes):

# %%
grid = experiments.accuracy_grid(data, {"audio": embeddings["audio"]})
views.accuracy_against_shots(grid, "audio ProtoNet on digits 6-9 (bars: 95% intervals; dotted: chance)")
print({f"{n}-way {k}-shot": round(v.estimate, 3) for (n, k), v in grid.items() if k in (1, 5)})

# %%
experiments.PROTONET_BEATS_CHANCE.check(grid[(4, 5)].estimate, interval=str(grid[(4, 5)]))
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
# the initialisation $\theta$ so that this one step works well on the queries:
#
# $$\theta'_T = \theta - \alpha \nabla_\theta \mathcal{L}_{S_T}(\theta), \qquad
# \min_\theta \sum_{T} \mathcal{L}_{Q_T}(\theta'_T).$$
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

# %% tags=["solution"] jupyter={"source_hidden": true}
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

# %% tags=["solution"] jupyter={"source_hidden": true}
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
# meta-test time it takes 5 inner steps on each new support set:

# %%
print(experiments.MAMLSettings())
maml = {}
for first_order in (False, True):
    s = experiments.MAMLSettings(first_order=first_order)
    net, history = experiments.train_maml(data, s)
    maml["first order" if first_order else "second order"] = (experiments.maml_accuracy(net, data, s), history.seconds)
for name, (acc, seconds) in maml.items():
    print(f"MAML, {name}: 4-way 5-shot {normal_interval(acc)}, trained in {seconds:.1f} s")

# %%
experiments.MAML_BEATS_CHANCE.check(maml["second order"][0].mean().item(),
                                    first_order=maml["first order"][0].mean().item(),
                                    audio_protonet=proto_accuracy["audio"].mean().item())

# %% [markdown]
# The meta-test episodes are the ProtoNet's, so the numbers are paired, but read the gap between
# MAML and the audio ProtoNet with care: it mixes method and architecture. MAML's model is a
# perceptron with 4 outputs on the spectrogram pooled to 16 x 10, trained for 150 outer steps; the
# ProtoNet's encoder is a perceptron on the full 32 x 40 spectrogram with 32-dimensional embeddings,
# trained on other episodes. To compare the methods alone, give both the same network and inputs.
# First order against second order is a clean comparison (same model, same episodes). The gaps vary
# between seeds, so they are printed, not claimed; what the lesson checks is that MAML adapts, far
# above chance, to digits it never saw. A first-order step skips differentiating through the inner
# gradient, so it costs less; on a network this small the difference in training time is small too.
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
# Each modality gives its own prototypes. `modality_logits` stacks each modality's prototype logits,
# $(T, M, Q, N)$, and `fuse_logits` takes a weighted sum over the modalities. The simplest fusion adds
# the two squared distances, which is a ProtoNet on the concatenated embedding $[f_1(x); f_2(x)]$ and
# the concatenated prototypes; `fuse_logits` with equal weights $\tfrac12$ computes the same up to a
# factor 2:

# %%
from mmcourse.meta import fuse_logits, modality_logits

e = experiments.test_sampler(data, embeddings).sample_batch(range(3))
logits = modality_logits([e.support[m] for m in experiments.MODALITIES], e.support_labels,
                         [e.query[m] for m in experiments.MODALITIES], 4)  # (T, M, Q, N)
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
# corruption depends on the run (the paired interval above says how sure this one is); it changes
# from seed to seed and is too small to claim.
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
# modality spreads the examples of a class far apart for how far apart its prototypes are. So let a
# small network $g_\phi$ read that from the support set and output the episode's weights:
#
# $$s_m = \Big(\log \overline{\lVert c_n - c_{n'} \rVert^2},\; \log \overline{\lVert f_m(x_i) - c_{y_i}
# \rVert^2}\Big), \qquad w = \operatorname{softmax}\big(g_\phi(s_1, s_2)\big), \qquad
# \text{logits} = \sum_m w_m \big(-\lVert f_m(x) - c^{(m)}_n \rVert^2\big).$$
#
# The encoders stay fixed; only $g_\phi$ (a perceptron with 16 hidden units) is meta-trained, on
# 1,600 episodes of digits 0-5 in which one modality is corrupted, at a level drawn per episode (pixel
# noise 1, 2 or 3; audio at -5, -10 or -20 dB), then tested on 600 such episodes of digits 6-9.
#
# A network has to earn its place against the simplest rule that could do the job. Suppose that in
# each modality every class were a spherical Gaussian around its prototype, with variance
# $\sigma_m^2$ per dimension for every class, and that the modalities were independent given the
# class. Bayes' rule would then add the modalities' squared distances, each weighted by
# $1/\sigma_m^2$:
#
# $$\log p(y = n \mid x) = \text{const} - \sum_m \frac{\lVert f_m(x) - c^{(m)}_n \rVert^2}{2 \sigma_m^2},
# \qquad w^{\text{rule}}_m \propto \frac{D_m}{\overline{\lVert f_m(x_i) - c^{(m)}_{y_i} \rVert^2}}.$$
#
# The support set estimates $\sigma_m^2$ from the within-class spread (the second statistic above,
# over the $D_m$ dimensions), so this **inverse-spread rule** (`inverse_spread_weights`) needs no
# training at all. The experiment scores it next to equal weights and the learned weights, on the
# same episodes (about 2 seconds):

# %%
fusion = experiments.meta_fusion_experiment(data, {m: net.encoder for m, net in protonets.items()})
print("numbers in g:", sum(p.numel() for p in fusion.model.parameters()))
for name, acc in fusion.accuracy.items():
    print(f"{name:>20}: {normal_interval(acc)}")

# %% [markdown]
# The same, condition by condition: the mean image weight (learned, and the rule's), each modality's
# spread (the mean squared distance between its prototypes), and the accuracy of each method.

# %%
columns = {"w image": "image weight", "rule w": "rule image weight", "spread i": "image spread",
           "spread a": "audio spread", "image": "image only", "audio": "audio only", "equal": "equal weights",
           "rule": "inverse-spread rule", "learned": "meta-learned weights"}
print(f"{'episodes with':>16}" + "".join(f"{c:>9}" for c in columns))
for (m, level), row in experiments.by_condition(fusion).items():
    print(f"{f'noisy {m} {level:g}':>16}" + "".join(f"{row[c]:>9.2f}" for c in columns.values()))

# %%
views.weights_by_condition(fusion.conditions, fusion.weights, fusion.accuracy, fusion.rule_weights)

# %%
gains = experiments.paired_gains(fusion)
for name in ("equal weights", "inverse-spread rule", "each episode's better single modality"):
    print(f"learned weights minus {name}, paired over all episodes: {normal_interval(gains[name])}")
quantities = experiments.fusion_quantities(fusion)
for claim, name in experiments.FUSION_CLAIMS.items():
    claim.check(quantities[name])

# %% [markdown]
# Read the table row by row. A noisy image scatters the image embeddings: the squared distances
# between its prototypes (its *spread*) grow with the noise, and so does the image's say in the
# equal-weight sum, until at pixel noise 3 its spread outweighs the audio's. The learned weights turn away from a noisy image, further than the rule's at every noise
# level, and in those episodes they beat the rule. Yet most of the gain over equal weights needs no
# meta-learning: the rule, with no training, gets more than half of it. Over all episodes, the
# learned weights' edge over the rule is the second interval above; it is not robust over seeds 0-9,
# so the lesson claims only its noisy-image part.
#
# Drowned audio is where the learned weights fall short. Its embeddings huddle together, its spread
# shrinks, and its say in the sum shrinks with it, so equal weights already lean away from it. At
# -20 dB the audio alone is at chance, so the best weight for it would be zero; but the learned image
# weight stays below 0.9, and the fused accuracy is no better than the image alone. Across tasks, on
# digits it never saw, the network learned to distrust a scattered modality more than the Gaussian
# rule does; it did not learn to drop a drowned one.
#
# Which single modality is the comparison? The claim uses one modality for every episode (the better
# one over all episodes, the audio here). Against the better modality of *each* episode, picked by an
# oracle that looks at the query labels, the gain is the last interval above: much smaller, and not
# robust over seeds, so it is not claimed.


# %% [markdown]
# ## Summary
#
# - A few-shot **episode** has an $N$-way $K$-shot support set and a query set; meta-train and
#   meta-test classes are **disjoint**, and accuracy is reported with a 95% interval over episodes.
# - A **plain baseline** (a classifier of the training classes, nearest class mean on its features)
#   is a strong competitor for a ProtoNet: always run it (Chen et al. 2019).
# - **Prototypical Networks** classify by the squared distance to class-mean prototypes and train on
#   episodes; more shots give better prototypes.
# - **MAML** learns an initialisation that one gradient step adapts; with `torch.func`
#   (`functional_call`, `grad`, `vmap`) it is a few lines, second-order by default, first-order by
#   detaching the inner gradient (or forgetting `create_graph=True`), and `vmap` runs a meta-batch as
#   one batched computation instead of a loop over tasks.
# - With two modalities at the default corruption, what fused prototypes add is too small to claim.
#   When the reliability of each modality changes from task to task, weights read off each support
#   set beat equal weights, and most of that gain needs no learning: the **inverse-spread rule**
#   (Bayes' rule for spherical Gaussian classes) gets more than half of it. **Meta-learned fusion**
#   adds a sharper turn away from a noisy image, but does not learn to drop a drowned audio: always
#   compare a learned rule with the closed-form one.
#
# **Try it:** meta-train the ProtoNets 4-way instead of 6-way (`experiments.train_protonet(data, m,
# n_way=4)`) and compare; or set `MAMLSettings(inner_steps=3)` and see what MAML gains and what it
# costs.
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
