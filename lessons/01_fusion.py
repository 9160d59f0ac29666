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
# # Lesson 01: Fusion
#
# **What you will learn:** five ways to fuse two modalities (early, late, attention, tensor and
# low-rank fusion), why modelling interactions cannot help when the modalities are independent
# given the label, how each copes with a noisy or missing modality, how modality dropout helps,
# and a task that no single modality can solve.
#
# **You will build:** low-rank fusion as a PyTorch module, with the step that trains it, and train it
# on AV-Digits in a second or two.
#
# **Prerequisites:** [lesson 00](00_welcome.ipynb); softmax and
# cross-entropy ([d2l.ai, softmax regression](https://d2l.ai/chapter_linear-classification/softmax-regression.html));
# [Bayes' rule](https://en.wikipedia.org/wiki/Bayes%27_theorem); PyTorch
# [broadcasting](https://pytorch.org/docs/stable/notes/broadcasting.html) and
# [`torch.einsum`](https://pytorch.org/docs/stable/generated/torch.einsum.html).
#
# **Time:** about 21 minutes of reading and 24 minutes of exercises. **Runs on:** a laptop CPU in
# 25 to 40 seconds; a GPU when there is one.
#
# A digit spoken in a noisy street and the same digit smudged on paper are each unreliable;
# together they are not, because their noises are unrelated (**complementarity**). When one
# channel fails, a good model still does as well as the other alone (**robustness**). *Fusion*,
# which turns the modalities' representations into one, wins or loses both; its methods differ in
# *where* they combine them:

# %%
import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

import mmcourse
from mmcourse import exercises, verify
from mmcourse.diagnostics import paired_difference
from mmcourse.experiments import fusion as experiments
from mmcourse.fusion import (
    AttentionFusion,
    EarlyFusion,
    Fused,
    LowRankFusion,
    ModalityDropout,
    TensorFusion,
    TuckerFusion,
    average_log_probs,
    tensor_product,
)
from mmcourse.train import Adam
from mmcourse.views import fusion as views
from mmcourse.views.common import figure, method_bars

print("training on:", mmcourse.get_device())

# %%
with figure(10, 1.8, ncols=3) as axes:
    views.fusion_diagram(axes)

# %% [markdown]
# **Notation** (lesson 00's table): modalities $m = 1, \dots, M$ (here image and audio), inputs
# $x^{(m)}$, embeddings $h^{(m)} \in \mathbb{R}^{d_m}$, the fused representation $z$, the label $y$
# of $C$ classes, batch size $B$. A linear map acts on the
# left, $Wh$: in code, one example per row, `h @ W.T`, as in `nn.Linear`. $[a; b]$ stacks $a$ on
# $b$.

# %% [markdown]
# ## 1. The data, early and late fusion
#
# AV-Digits (lesson 00) pairs handwritten 8x8 digits with spoken digits (new voices at test time).
# To learn *which modality to trust*, a model must see samples where one is useless, so every
# training pair appears in 8 corrupted copies: in some the image fails (pixel noise of standard
# deviation 1.5 to 3), in others the audio (-30 to -15 dB signal-to-noise ratio); every image has a
# 3x3 occluder. The test set has the default corruption (pixel noise 0.3, the occluder, audio at
# 0 dB), 8 copies of each of its 360 pairs.

# %%
data = experiments.av_data(seed=0)
train = data.train
print(f"training rows: {len(train['label'])} (8 copies of {len(train['label']) // 8} pairs), "
      f"test rows: {len(data.test['label'])} ({data.test_copies} copies of {len(data.clean_test['label'])} pairs)")
image_failed = train["image_noise"] >= 1.5
audio_failed = train["audio_snr_db"] <= -15
print(f"image failed in {image_failed.float().mean():.2f} of the rows, "
      f"audio in {audio_failed.float().mean():.2f}")

# %%
examples = {"both usable": int((~image_failed & ~audio_failed).nonzero()[0]),
            "image failed": int(image_failed.nonzero()[0]), "audio failed": int(audio_failed.nonzero()[0])}
views.sensor_failure_examples(train, examples)

# %% [markdown]
# ### Early fusion: concatenate, then learn
#
# Stack the embeddings and apply one linear map, $W = [W_1 \;\, W_2]$:
#
# $$z = W [h^{(1)}; h^{(2)}] + b = W_1 h^{(1)} + W_2 h^{(2)} + b.$$
#
# This layer can only *add* the modalities' evidence, not multiply it; a hidden layer with a
# non-linearity after the concatenation can (section 7 needs that).
#
# ### Late fusion: predict, then combine
#
# Each modality gets its own classifier $p_m(y \mid x^{(m)})$; the decision adds their weighted
# log-probabilities ($Z$ renormalises):
#
# $$\log p(y \mid x^{(1)}, \dots, x^{(M)}) = \sum_m \alpha_m \log p_m(y \mid x^{(m)}) - \log Z,$$
#
# with $\alpha_m = 1/M$ or learned. Adding log-probabilities multiplies probabilities: a confident
# modality outvotes an unsure one, and one sure a class is impossible vetoes it. If the
# modalities are *conditionally independent* given the label, Bayes' rule gives
#
# $$p(y \mid x^{(1)}, \dots, x^{(M)}) \propto \frac{\prod_m p_m(y \mid x^{(m)})}{p(y)^{M-1}},$$
#
# late fusion with $\alpha_m = 1$ and a prior correction, constant for balanced classes. Late
# fusion cannot learn interactions, but a missing modality's term can simply be left out
# (section 6).
#
# In code, with equal weights and no $\log Z$ (it changes no argmax). The image is fairly sure of
# class 0; the audio hesitates between 1 and 2 but rules out 0:

# %%
image_scores, audio_scores = torch.tensor([[3.0, 2.0, 0.0]]), torch.tensor([[-4.0, 1.0, 1.0]])  # B = 1, C = 3
log_probs = torch.stack([torch.log_softmax(x, dim=1) for x in (image_scores, audio_scores)])  # (M, B, C)
fused = log_probs.mean(dim=0)  # (B, C)
for name, lp in (("image", log_probs[0]), ("audio", log_probs[1]), ("fused", fused)):
    print(f"{name}: p = {[round(v, 3) for v in torch.softmax(lp, dim=1)[0].tolist()]}")
verify(torch.allclose(fused, average_log_probs([image_scores, audio_scores])),
       "the mean of the log-softmaxes is the package's late fusion, average_log_probs")

# %% [markdown]
# The audio vetoes class 0, and the image breaks the audio's tie between 1 and 2.

# %% [markdown]
# ### Check yourself
#
# 1. Late fusion averages with weights $1/M$, but Bayes' rule gives weights 1. Do the two pick
#    different classes?
#
# <details><summary>Answer</summary>
#
# No. Scaling every log-probability by the same positive number changes the fused posterior's
# confidence, not which class has the largest sum; with balanced classes the prior term is the
# same for every class.
# </details>
#
# 2. Why can one linear layer after a concatenation not express "this image goes with that sound"?
#
# <details><summary>Answer</summary>
#
# It computes $W_1 h^{(1)} + W_2 h^{(2)} + b$: each modality adds its own share, whatever the
# other says. Depending on both at once needs their product, from a hidden layer with a
# non-linearity or tensor fusion (section 3).
# </details>

# %% [markdown]
# ## 2. Attention fusion: weigh each modality, per sample
#
# A noisy image should count less *for this sample*. Say one sample's clean image scores 2, its
# noisy audio 0, and each modality is projected to two numbers; a softmax turns scores into weights:

# %%
scores = torch.tensor([2.0, 0.0])  # this sample's scores: image, audio
alpha = scores.exp() / scores.exp().sum()  # the softmax: positive weights that sum to 1
u = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # the projected image and audio
print("weights:", [round(a, 2) for a in alpha.tolist()], "| fused:", [round(v, 2) for v in (alpha @ u).tolist()])

# %% [markdown]
# In general, attention fusion projects each embedding into a shared space,
# $u^{(m)} = W_m h^{(m)} + b_m$, scores each projection alone with a small network,
# $s_m = v^\top \tanh(A u^{(m)} + c)$, and mixes:
#
# $$\alpha = \operatorname{softmax}(s_1, \dots, s_M), \qquad z = \sum_m \alpha_m u^{(m)}.$$
#
# The scores see each modality alone, with no *query* (lesson 03 adds queries). Every fusion module
# maps the list of $(B, d_m)$ embeddings to a `Fused(z, weights)` pair; here the weights are
# $\alpha$:

# %%
attention = AttentionFusion(dims=[64, 64], out_dim=32)
z, alpha = attention([torch.randn(4, 64), torch.randn(4, 64)])  # a Fused(z, weights) pair
print("z:", tuple(z.shape), "| alpha:", tuple(alpha.shape), "| first row of alpha:", alpha[0].tolist())

# %% [markdown]
# The weights start equal because the scoring network's last layer starts at zero.
#
# ### Find the bug: modality attention
#
# Below is modality attention as often written: `u` holds the projected embeddings $(B, M, d)$,
# `v` is a scoring vector $(d,)$, and it returns $z$ $(B, d)$ and $\alpha$ $(B, M)$.
# It runs, with the right shapes, but it is wrong. Read which case of the check fails, then fix a
# copy in `my_modality_attention`.

# %%
def buggy_modality_attention(u, v):
    scores = u @ v  # (B, M): one score per sample and modality
    alpha = torch.softmax(scores, dim=0)
    return (alpha.unsqueeze(-1) * u).sum(1), alpha


exercises.check("modality_attention_bug", buggy_modality_attention)


# %%
def my_modality_attention(u, v):
    # YOUR CODE HERE: a fixed copy of buggy_modality_attention
    raise NotImplementedError


exercises.check("modality_attention_bug", my_modality_attention)

# %% [markdown]
# <details><summary><b>Hint 1: a nudge</b></summary>
#
# Look at the line that turns the scores into weights. Run the buggy function on a batch of a
# single sample and print the weights it returns.
# </details>
# <details><summary><b>Hint 2: what helps</b></summary>
#
# `torch.softmax(scores, dim=...)` normalises along one axis of the $(B, M)$ scores. Compare
# `alpha.sum(dim=0)` and `alpha.sum(dim=1)` for the buggy function: which one should be all ones?
# </details>
# <details><summary><b>Hint 3: the code</b></summary>
#
# `alpha = torch.softmax(u @ v, dim=1)`, and the rest of the function as it was.
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_modality_attention(u, v):
    alpha = torch.softmax(u @ v, dim=1)  # over the modalities of each sample, not over the batch
    return (alpha.unsqueeze(-1) * u).sum(1), alpha


exercises.check("modality_attention_bug", solution_modality_attention, must_pass=True)

# %% [markdown]
# ### Check yourself
#
# 1. (After the find-the-bug.) In the buggy version, what do a sample's weights add up to in a
#    batch of one, and what do the other samples in its batch do to its prediction?
#
# <details><summary>Answer</summary>
#
# The softmax ran over the batch (`dim=0`), comparing samples instead of modalities. In a batch of
# one every weight is 1, so they add up to $M$; in a larger batch a sample's weights, and its
# prediction, change with its neighbours.
# </details>
#
# 2. What could go wrong if `AttentionFusion` did not start with equal weights?
#
# <details><summary>Answer</summary>
#
# A modality's share of $z$, and so the gradient reaching its encoder, scales with its weight: a
# random early preference would starve the other encoder before it learned anything, and could
# then feed itself.
# </details>

# %% [markdown]
# ## 3. Tensor and low-rank fusion
#
# Zadeh et al. (2017), [*Tensor Fusion Network*](https://arxiv.org/abs/1707.07250), give a linear
# layer the products themselves: the outer product of the two embeddings, each extended by a
# constant 1. The grid for $d_1 = 5$, $d_2 = 4$:

# %%
h1, h2 = torch.randn(5), torch.randn(4)
with figure(3.2, 3.2) as axes:
    views.tensor_fusion_grid(axes[0], h1, h2, "[1, h1] (rows) x [1, h2] (columns)")

# %% [markdown]
# The boxed column 0 is $[1; h^{(1)}]$, the boxed row 0 is $[1; h^{(2)}]$, and every other cell
# is a product $h^{(1)}_i h^{(2)}_j$. A linear map of the flattened grid gives
#
# $$z = W \operatorname{vec}\big([1; h^{(1)}] \otimes [1; h^{(2)}]\big) + b,
# \qquad W \in \mathbb{R}^{d_{out} \times (d_1 + 1)(d_2 + 1)}.$$
#
# In code, for a batch: prepend the ones, then broadcasting forms every product of each sample:

# %%
hs = [torch.randn(2, 5), torch.randn(2, 4)]  # B = 2 samples, d_1 = 5, d_2 = 4
a, b = (torch.cat([torch.ones(len(h), 1), h], dim=1) for h in hs)  # [1; h]: (B, d_m + 1)
grid = a[:, :, None] * b[:, None, :]  # (B, 6, 1) times (B, 1, 5): (B, 6, 5)
verify(torch.equal(grid.flatten(1), tensor_product(hs)),
       "the flattened grid is tensor_product, the vector that TensorFusion's linear layer maps",
       grid_shape=tuple(grid.shape))

# %% [markdown]
# **Why the 1 matters.** Without it the grid holds only products, so a zero embedding erases the
# other modality. With it the grid also holds each embedding alone, so tensor fusion contains early
# fusion: early fusion's weights in row 0 and column 0, zeros elsewhere, compute the same thing.

# %%
early, tfn = EarlyFusion([3, 2], 4), TensorFusion([3, 2], 4)
weight = torch.zeros(4, 3 + 1, 2 + 1)  # one weight per cell of the grid, for each output
weight[:, 1:, 0] = early.linear.weight[:, :3]  # column 0 holds h1
weight[:, 0, 1:] = early.linear.weight[:, 3:]  # row 0 holds h2
with torch.no_grad():
    tfn.linear.weight.copy_(weight.flatten(1))
    tfn.linear.bias.copy_(early.linear.bias)
hs = [torch.randn(6, 3), torch.zeros(6, 2)]  # the second modality is all zeros
difference = (tfn(hs).z - early(hs).z).abs().max().item()
without_ones = (hs[0][:, :, None] * hs[1][:, None, :]).flatten(1)
verify(difference < 1e-6 and without_ones.abs().max() == 0 and tensor_product(hs).abs().max() > 0,
      "with the 1s, tensor fusion can compute early fusion exactly; without them a zero modality erases all",
      largest_difference=difference)

# %% [markdown]
# ### Low-rank fusion: the same, without building the grid
#
# Tensor fusion's weight has one number per cell of the grid and output, so it grows with the
# product of all the modalities' sizes. Liu et al. (2018), [*Low-rank Multimodal
# Fusion*](https://arxiv.org/abs/1806.00064), write it as a weighted sum of $r$ products of
# per-modality factors $W_m^{(i)} \in \mathbb{R}^{d_{out} \times (d_m + 1)}$, a **CP
# decomposition**:
#
# $$z = \sum_{i=1}^{r} \omega_i \big(W_1^{(i)} [1; h^{(1)}]\big)
# \odot \big(W_2^{(i)} [1; h^{(2)}]\big) + b.$$
#
# Each modality is projected on its own and the projections multiplied element by element, so the
# grid is never built. Yet for output $o$ its weights are a sum of $r$ rank-one grids
# $\omega_i a_i b_i^\top$, with $a_i$ and $b_i$ row $o$ of $W_1^{(i)}$ and $W_2^{(i)}$:

# %%
small_lmf = LowRankFusion([5, 4], 3, rank=3)
with figure(11, 2.4, ncols=4) as axes:
    views.low_rank_weight(axes, small_lmf, output=0)

# %% [markdown]
# So low-rank fusion *is* tensor fusion with a rank-$r$ weight, which `to_tensor_fusion()` builds.
# What that saves at section 5's sizes:

# %%
d, out, r = 64, 64, 4
layers = {"tensor": TensorFusion([d, d], out), "low-rank": LowRankFusion([d, d], out, rank=r)}
formula = {"tensor": out * (d + 1) ** 2 + out, "low-rank": r * 2 * (d + 1) * out + r + out}
counts = {m: experiments.count_parameters(layer) for m, layer in layers.items()}
for m in layers:
    print(f"{m:>9}: {counts[m]:>7,} parameters (formula {formula[m]:,})")
verify(counts == formula and counts["tensor"] > 8 * counts["low-rank"],
       "the parameter counts are the formulas', and low-rank fusion has over 8 times fewer",
       parameter_ratio=counts["tensor"] / counts["low-rank"])

# %% [markdown]
# <details><summary>More: Tucker fusion</summary>
#
# For one output $o$, CP multiplies entry $o$ of the image's projection $i$ only with entry $o$ of
# the audio's projection $i$: of all the products $p_{1,j} \, p_{2,k}$ of the two modalities'
# projections it uses those with $j = k$. The **Tucker decomposition** uses all of them: it projects
# each modality, $p_m = U_m [1; h^{(m)}]$ with $U_m \in \mathbb{R}^{t_m \times (d_m + 1)}$, and
# weighs every product with a small core tensor $\mathcal{G}$,
#
# $$z_o = \sum_{j, k} \mathcal{G}_{jko} \, p_{1,j} \, p_{2,k} + b_o,$$
#
# tensor fusion of small projections (CP is Tucker with a diagonal core), as in MUTAN (Ben-younes
# et al. 2017, [*MUTAN*](https://arxiv.org/abs/1705.06676)). `TuckerFusion` turns into the
# `TensorFusion` it stands for, as the next cell verifies.
# </details>

# %%
tucker = TuckerFusion([5, 4], 3, ranks=2).double()
hs = [torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)]
difference = (tucker(hs).z - tucker.to_tensor_fusion()(hs).z).abs().max().item()
verify(difference < 1e-10, "Tucker fusion equals tensor fusion with the full weight its core and factors build",
       largest_difference=difference)

# %% [markdown]
# ### Check yourself
#
# 1. Why does tensor fusion prepend a 1 to each embedding?
#
# <details><summary>Answer</summary>
#
# So that the grid also holds each embedding alone: it then contains early fusion, and a zero
# embedding no longer erases the other modality (both verified above).
# </details>
#
# 2. Is low-rank fusion an approximation of tensor fusion?
#
# <details><summary>Answer</summary>
#
# No: it is tensor fusion whose weight is, for each output, a sum of $r$ rank-one grids, and
# `to_tensor_fusion()` builds that weight exactly (section 5 verifies that the outputs agree).
# Whether the restriction costs accuracy, section 5 measures.
# </details>

# %% [markdown]
# ## 4. Build it yourself: low-rank fusion
#
# Write `LowRankFusion` yourself. Its `__init__` is given, with the package's names and shapes
# (one $(r, d_m + 1, d_{out})$ factor per modality, entry $i$ being $W_m^{(i)\top}$), so that the
# check can load the package's weights into your module. Write `forward` for any number of
# modalities: $(B, d_m)$ embeddings in, `Fused(z, None)` out. Then write one training step: the
# mean cross-entropy of the model's scores on a batch, its gradient, one optimiser step; return the
# loss.

# %%
class MyLowRankFusion(nn.Module):
    def __init__(self, dims, out_dim, rank=4):
        super().__init__()
        self.dims = list(dims)
        self.factors = nn.ParameterList(  # one (r, d_m + 1, d_out) factor per modality
            nn.Parameter(torch.randn(rank, d + 1, out_dim) / math.sqrt(d + 1)) for d in dims)
        self.rank_weights = nn.Parameter(torch.full((rank,), 1.0 / rank))  # omega: (r,)
        self.bias = nn.Parameter(torch.zeros(out_dim))  # b: (d_out,)

    def forward(self, hs):  # hs: M tensors (B, d_m) -> Fused(z (B, d_out), None)
        # YOUR CODE HERE
        raise NotImplementedError


def my_fusion_step(model, batch, optimizer):  # batch: {"image", "audio", "label"} -> the loss, a float
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("low_rank_fusion", MyLowRankFusion)
exercises.check("fusion_step", my_fusion_step)

# %% [markdown]
# <details><summary><b>Hint 1: a nudge</b></summary>
#
# In forward, treat every modality alike: extend it with a leading one, project it with all r of its
# factors at once, and multiply the projections of the modalities entry by entry (a loop keeps a
# running product). Then sum over the rank with the rank weights and add the bias. The step makes
# the usual moves: scores, loss, clear the old gradients, backward, step.
# </details>
# <details><summary><b>Hint 2: what helps</b></summary>
#
# `torch.cat([torch.ones(len(h), 1), h], dim=1)` prepends the ones;
# `torch.einsum("bd,rdo->bro", extended, w)` projects with every factor, $(B, r, d_{out})$;
# `torch.einsum("r,bro->bo", self.rank_weights, product)` sums over the rank; return `Fused(z, None)`.
# The step: `model(batch["image"], batch["audio"]).scores`, `F.cross_entropy(scores, batch["label"])`,
# `optimizer.zero_grad()`, `loss.backward()`, `optimizer.step()`, `loss.item()`.
# </details>
# <details><summary><b>Hint 3: the code</b></summary>
#
# ```python
# def forward(self, hs):
#     product = 1.0
#     for h, w in zip(hs, self.factors):
#         extended = torch.cat([torch.ones(len(h), 1), h], dim=1)
#         product = product * torch.einsum("bd,rdo->bro", extended, w)
#     return Fused(torch.einsum("r,bro->bo", self.rank_weights, product) + self.bias, None)
#
# def my_fusion_step(model, batch, optimizer):
#     loss = F.cross_entropy(model(batch["image"], batch["audio"]).scores, batch["label"])
#     optimizer.zero_grad()
#     loss.backward()
#     optimizer.step()
#     return loss.item()
# ```
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
class SolutionLowRankFusion(nn.Module):
    def __init__(self, dims, out_dim, rank=4):
        super().__init__()
        self.dims = list(dims)
        self.factors = nn.ParameterList(
            nn.Parameter(torch.randn(rank, d + 1, out_dim) / math.sqrt(d + 1)) for d in dims)
        self.rank_weights = nn.Parameter(torch.full((rank,), 1.0 / rank))
        self.bias = nn.Parameter(torch.zeros(out_dim))

    def forward(self, hs):
        product = 1.0
        for h, w in zip(hs, self.factors):
            extended = torch.cat([torch.ones(len(h), 1), h], dim=1)  # [1; h]: (B, d_m + 1)
            product = product * torch.einsum("bd,rdo->bro", extended, w)  # (B, r, d_out)
        return Fused(torch.einsum("r,bro->bo", self.rank_weights, product) + self.bias, None)


def solution_fusion_step(model, batch, optimizer):
    loss = F.cross_entropy(model(batch["image"], batch["audio"]).scores, batch["label"])
    optimizer.zero_grad()  # backward adds to the gradients: clear the last batch's first
    loss.backward()
    optimizer.step()
    return loss.item()


exercises.check("low_rank_fusion", SolutionLowRankFusion, must_pass=True)
exercises.check("fusion_step", solution_fusion_step, must_pass=True)

# %% [markdown]
# Train your module with your step inside the lesson's model (encoders, your fusion, a head), for
# one pass over the training copies with Adam (a second or two):

# %%
LowRank = exercises.yours_or("low_rank_fusion", MyLowRankFusion, LowRankFusion)
step = exercises.yours_or("fusion_step", my_fusion_step, experiments.train_step)
torch.manual_seed(0)
model = experiments.build_av_model("low-rank")
model.fusion = LowRank([64, 64], 64, rank=4)  # your fusion layer in place of the package's
optimizer = Adam(model.parameters(), lr=1e-3)
losses = [step(model, batch, optimizer) for batch in experiments.av_batches(train, seed=0)]
test_accuracy = experiments.accuracy_with(model, "low-rank", data.test["image"], data.test["audio"],
                                          data.test["label"])
with figure(6, 2.2) as axes:
    axes[0].plot(losses)
    axes[0].set(xlabel="step (batch of 64)", ylabel="training loss", title=f"test accuracy {test_accuracy:.3f}")

# %% [markdown]
# From here on the lesson uses the package's `LowRankFusion`, whose source you can now read in
# `mmcourse/fusion.py`.

# %% [markdown]
# ### Check yourself
#
# 1. `__init__` keeps the factors in an `nn.ParameterList`. What would a plain Python list break?
#
# <details><summary>Answer</summary>
#
# The factors would not be registered: `model.parameters()` would not list them, so the optimiser
# would never change them, `.to(device)` would not move them and `state_dict` would not save them.
# A widely used implementation has this bug.
# </details>
#
# 2. Why does the step clear the gradients before `backward`?
#
# <details><summary>Answer</summary>
#
# `backward` adds to each `.grad`: without clearing, the step follows the sum of this batch's
# gradient and every earlier one. The check's second case starts with gradients left from an earlier
# batch to catch it.
# </details>

# %% [markdown]
# ## 5. Train and compare
#
# `MultimodalClassifier(encoders, fusion, head)` runs each encoder, layer-normalises each embedding
# (its features get mean 0 and variance 1, so that no modality dominates by the size of its
# numbers), fuses and classifies. `build_av_model` builds the seven models you compare, all with
# the same encoders and head:

# %%
print(experiments.build_av_model("attention"))

# %% [markdown]
# Each trains for two passes over the 8 corrupted copies (about 270 steps of Adam) with the same
# seed: first the two unimodal baselines, then five fusion models:

# %%
results = experiments.train_av_methods(data, methods=["image only", "audio only"])  # a second or two
print(results.table())

# %%
# the five fusion models, added to the same results: 7 to 10 seconds on a laptop CPU
experiments.train_av_methods(data, methods=["early", "late", "attention", "tensor", "low-rank"], into=results)
print(results.table())

# %%
with figure(6, 2.8) as axes:
    method_bars(axes[0], results.accuracy, reference=0.1, title="test accuracy at the default noise (dashed: chance)")

# %% [markdown]
# The two unimodal models are wrong mostly on *different* samples:

# %%
wrong = {m: ~results.correct[m] for m in ("image only", "audio only")}
print(f"image model wrong on {wrong['image only'].float().mean():.3f} of the test set, "
      f"audio model on {wrong['audio only'].float().mean():.3f}, "
      f"both on {(wrong['image only'] & wrong['audio only']).float().mean():.3f}")
gains = experiments.fusion_gains(results.accuracy)
print("gain over the best single modality:", {m: round(g, 3) for m, g in gains.items()})
mean_gain, smallest_gain, largest_gain = experiments.mean_fusion_gain(results.accuracy), min(gains.values()), \
    max(gains.values())

# %%
experiments.FUSION_BEATS_SINGLE.check(mean_gain, smallest=smallest_gain, largest=largest_gain)

# %% [markdown]
# ### Why tensor fusion cannot win here
#
# Tensor and low-rank fusion can model *interactions*: evidence that means something only in
# combination. AV-Digits has none: each image is paired with an independently drawn clip of the
# same digit, so the modalities are conditionally independent given the label, and by Bayes'
# rule (section 1) the product of the two unimodal posteriors is already the best combination.
# Multiply them, with no fusion training:

# %%
product = experiments.product_of_posteriors(results.models, data.test)
product_accuracy = product.float().mean()
best = max(experiments.fused_methods(results.accuracy), key=results.accuracy.get)
gap = paired_difference(results.correct[best], product, copies=data.test_copies)
print(f"product of posteriors: {product_accuracy:.3f}; best fusion model ({best}): "
      f"{results.accuracy[best]:.3f}; difference with 95% interval: {gap}")

# %%
experiments.NOTHING_TO_GAIN.check(gap.estimate, product=product_accuracy, best_fusion=results.accuracy[best])

# %% [markdown]
# The interval (`paired_difference`) resamples the 360 test pairs with their copies, scoring both
# models on the same rows: what the luck of the test set alone could do.
#
# ### Tensor against low-rank fusion, trained
#
# Time a training step of each fusion layer on a batch of 64 (one CPU thread, fastest of 20 runs),
# and compare the trained models' accuracy:

# %%
ms = {m: 1000 * experiments.time_per_batch(layer, [d, d], repeats=20) for m, layer in layers.items()}
for m in layers:
    print(f"{m:>9}: {results.fusion_parameters[m]:>7,} parameters in the fusion layer, {ms[m]:.2f} ms per step, "
          f"test accuracy {results.accuracy[m]:.3f}")
low_rank_gap = paired_difference(results.correct["tensor"], results.correct["low-rank"], copies=data.test_copies)
print("tensor minus low-rank accuracy, with 95% interval:", low_rank_gap)
gap_size = abs(low_rank_gap.estimate)

# %%
experiments.LOW_RANK_MATCHES_TENSOR.check(gap_size)

# %% [markdown]
# Now swap the *trained* low-rank layer's full weight (`to_tensor_fusion()`) into a copy of the
# model and compare on the test set:

# %%
lmf_model = results.models["low-rank"].eval()
tfn_model = copy.deepcopy(lmf_model)
tfn_model.fusion = lmf_model.fusion.to_tensor_fusion()
with torch.no_grad():
    a = lmf_model(data.test["image"], data.test["audio"]).scores
    b = tfn_model(data.test["image"], data.test["audio"]).scores
difference = (a - b).abs().max().item()
verify(difference < 1e-4 and torch.equal(a.argmax(1), b.argmax(1)),
      "the trained low-rank model and its tensor-fusion twin give the same outputs",
      largest_difference=difference, tensor_twin_parameters=experiments.count_parameters(tfn_model.fusion))

# %% [markdown]
# ### Check yourself
#
# 1. Why can no fusion model, tensor fusion included, do much better than the product of the
#    unimodal posteriors? What would a data set need for tensor fusion to win?
#
# <details><summary>Answer</summary>
#
# The modalities are conditionally independent given the label, so the product of the posteriors
# is already the Bayes combination: a fusion model can only estimate each posterior a little better
# (the check bounds how much). Tensor fusion could win where evidence means something only in
# combination, as in section 7.
# </details>
#
# 2. Why do the fused models beat the better single modality by so much?
#
# <details><summary>Answer</summary>
#
# They are wrong mostly on different samples (both wrong on far fewer than either alone), so where
# one modality is unsure the other often knows.
# </details>

# %% [markdown]
# ## 6. Noisier and missing modalities
#
# Corrupt the test images more and more (the audio at its default), then drown the audio (the
# images at their default), 2 copies of the test pairs per level:

# %%
grid = experiments.RobustnessGrid(data)
curves = grid.curves(results.models)
views.robustness_curves(grid, curves)

# %%
fused = experiments.fused_methods(results.accuracy)
drowned = {m: experiments.drowned_accuracy(curves, m) for m in fused}
worst_drowned, most_affected = min(drowned.values()), min(drowned, key=drowned.get)
image_alone, audio_alone = curves["image_noise"]["image only"][-1], curves["audio_snr_db"]["audio only"][-1]
alone_drowned = max(image_alone, audio_alone)

# %%
experiments.DROWNED_FUSED_HOLD.check(worst_drowned, most_affected=most_affected)
experiments.DROWNED_ALONE_FALLS.check(alone_drowned, image_only=image_alone, audio_only=audio_alone)

# %% [markdown]
# The unimodal models (dashed) fall to chance as their modality drowns; every fused model falls
# only towards the *other* modality's level: the failed copies taught it to lean on whichever
# sensor still works.
#
# ### A missing modality
#
# A *missing* modality (passed as `None`) is different: no model saw one in training. With
# features of mean 0 and variance 1 (section 5), every normalised embedding has norm $\sqrt{d}$:
# all lie on one sphere:

# %%
model = experiments.build_av_model("early")  # untrained: the sphere does not depend on training
with torch.no_grad():
    hs = model.embed(data.test["image"], data.test["audio"])
for name, h in zip(("image", "audio"), hs):
    norms = h.norm(dim=1)
    print(f"{name}: norms from {norms.min():.2f} to {norms.max():.2f} (sqrt(d) = {h.shape[1] ** 0.5:.0f}); "
          f"the mean embedding has norm {h.mean(0).norm():.2f}")

# %% [markdown]
# The zero vector (`missing="zero"`, the default) is the *centre* of that sphere: far from every
# embedding the model was trained on, and not even their mean. The alternative, `missing="learned"`,
# is a trained vector kept on the sphere. Compare each fused model with the remaining modality's own
# model:

# %%
missing = {"image missing": ("audio only", curves["image missing"]),
           "audio missing": ("image only", curves["audio missing"])}
print(f"{'method':<10}" + "".join(f"{case:>15}" for case in missing))
for m in fused:
    print(f"{m:<10}" + "".join(f"{acc[m]:>15.3f}" for _, acc in missing.values()))
print(f"{'alone':<10}" + "".join(f"{acc[alone]:>15.3f}" for alone, acc in missing.values()))
shortfall = {m: experiments.missing_shortfall(curves, m) for m in fused}
print("shortfall against the remaining modality's own model:", {m: round(s, 3) for m, s in shortfall.items()})
additive_shortfall = max(shortfall[m] for m in experiments.ADDITIVE)

# %%
experiments.MISSING_ADDITIVE_HOLD.check(additive_shortfall)
experiments.MISSING_LOW_RANK_FALLS.check(shortfall["low-rank"], tensor=shortfall["tensor"])

# %% [markdown]
# Late fusion instead drops the missing term, asking the remaining head alone; the intervals
# compare that with feeding it the zero embedding:

# %%
late = results.models["late"].eval()
with torch.no_grad():
    print("late fusion's weights without the image:", late(None, grid.audio[grid.audio0]).weights[0].tolist())
late_missing = experiments.late_fusion_missing(late, grid)
for way, accs in late_missing.items():
    print(f"{'term ' + way if way == 'dropped' else way + ' embedding':>15}:", {c: round(a, 3) for c, a in accs.items()})
late_correct = experiments.late_fusion_missing_correct(late, grid)
for case in ("image missing", "audio missing"):
    print(f"dropped minus zero, {case}:",
          paired_difference(late_correct["dropped"][case], late_correct["zero"][case], copies=grid.copies))

# %% [markdown]
# The two differ on few decisions, in a direction that varies from run to run: too little to claim.
#
# <details><summary>More: why drop the term</summary>
#
# The zero embedding adds a constant $\log p_m(y \mid h^{(m)} = 0)$, a fixed preference for some
# classes. Dropping the term is the principled choice, Bayes' combination of the modalities you
# have.
# </details>
#
# Why does low-rank fusion fall so far? With $h^{(2)} = 0$ its output is
# $\sum_i \omega_i \big(W_1^{(i)} [1; h^{(1)}]\big) \odot \big(W_2^{(i)} [1; 0]\big) + b$, and
# $W_2^{(i)} [1; 0]$ is column 0 of $W_2^{(i)}$ (the one the constant 1 picks): the image's
# projections, rescaled by vectors only ever trained *with* real audio embeddings, never with the
# sphere's centre. Early fusion's zero simply removes the audio's additive share.
#
# Move the sliders, or tick a box to take a modality away:

# %%
views.FusionRobustnessView(results.models, grid)

# %% [markdown]
# ### Modality dropout: your experiment
#
# A model should meet missing modalities in training: *modality dropout* (Neverova et al. 2016,
# [*ModDrop*](https://arxiv.org/abs/1501.00102)). `ModalityDropout(p)` puts the "missing" embedding
# in place of one random modality in a fraction $p$ of the samples, as a missing modality looks at
# test time; in evaluation mode it does nothing. Eight samples (1 = kept, 0 = dropped):

# %%
dropout = ModalityDropout(p=0.5)  # a new module is in training mode
torch.manual_seed(3)
kept = dropout([torch.ones(8, 4), torch.ones(8, 2)])
print("image:", kept[0][:, 0].int().tolist())
print("audio:", kept[1][:, 0].int().tolist())

# %% [markdown]
# Choose how low-rank fusion trains: the rate $p$ (`modality_dropout`) and the missing embedding,
# `"zero"` or `"learned"`. The check trains it (about 2 seconds), tests it with both modalities and
# with each one missing, and judges it by two claims. First predict the accuracy with the audio
# missing (the table above has the image-only model's).

# %%
exercises.predict("modality_dropout", None)  # your guess: the accuracy with the audio missing, a number


# %%
def my_dropout_setting():
    # YOUR CODE HERE: return {"modality_dropout": p, "missing": "zero" or "learned"}
    raise NotImplementedError


exercises.check("modality_dropout", my_dropout_setting)

# %% [markdown]
# <details><summary><b>Hint 1: a nudge</b></summary>
#
# With no dropout the model never meets a missing modality in training; with every sample losing
# one, it never meets both together. And the zero vector lies where no real embedding does.
# </details>
# <details><summary><b>Hint 2: what helps</b></summary>
#
# Try `"modality_dropout"` between 0.25 and 0.75. `"missing": "learned"` trains a vector that
# `MultimodalClassifier.missing_embedding` keeps on the sphere of real embeddings. Run the check with
# a rate of 0 and of 1 as well, to see what each extreme costs.
# </details>
# <details><summary><b>Hint 3: the code</b></summary>
#
# ```python
# return {"modality_dropout": 0.5, "missing": "learned"}
# ```
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_dropout_setting():
    return {"modality_dropout": 0.5, "missing": "learned"}


exercises.check("modality_dropout", solution_dropout_setting, must_pass=True)

# %% [markdown]
# Dropout at a moderate rate turns a model that collapses without a modality into one that answers
# from the other, at little cost with both. Whether a learned vector beats the zero vector is not
# claimed.
#
# ### Attention follows the clean modality
#
# Average the attention model's weights over the test set while you corrupt one modality, then the
# other:

# %%
weights = experiments.mean_attention_weights(results.models["attention"], grid)
views.attention_weight_curves(weights, grid)
image_w, audio_w = weights["image_noise"][:, 0], weights["audio_snr_db"][:, 1]
weight_ratio = experiments.drowned_weight_ratio(weights)

# %%
experiments.ATTENTION_FOLLOWS.check(weight_ratio, image_weight_clean=image_w[0], image_weight_drowned=image_w[-1],
                                    audio_weight_clean=audio_w[0], audio_weight_drowned=audio_w[-1])

# %% [markdown]
# A weight is what the model computes, not yet proof of what it *uses*. The control: with one
# modality drowned, give every sample another sample's input of one modality (`shuffled_pairs` in
# `mmcourse.diagnostics`). Shuffling a modality the model ignores changes little; shuffling the one
# it answers from drops it to chance.

# %%
controls = experiments.drowned_controls(results.models["attention"], grid)
for case, values in controls.items():
    print(f"{case}:", {k: round(v, 3) for k, v in values.items() if k in ("all", "shuffled image", "shuffled audio")})
lost, left = experiments.shuffle_effects(controls)

# %%
experiments.DROWNED_IGNORED.check(lost)
experiments.CLEAN_NEEDED.check(left)

# %% [markdown]
# Pick a sample, corrupt each modality, listen, and watch the two weights:

# %%
test = data.clean_test
views.ModalityWeightsView(results.models["attention"], test["image"], test["waveform"], test["label"])

# %% [markdown]
# ### Check yourself
#
# 1. Why does low-rank fusion hold up when the audio is drowned in noise, but fall when it is
#    missing?
#
# <details><summary>Answer</summary>
#
# Drowned audio is still an embedding on the sphere, like the failed training copies the model
# learned to discount; missing audio is the sphere's centre, which it never saw.
# </details>
#
# 2. The weight of a drowned modality drops. Does that prove the model ignores it?
#
# <details><summary>Answer</summary>
#
# No: the shuffled-pairs control tests use. Shuffling the drowned modality cost almost nothing and
# shuffling the clean one left near-chance accuracy (both checked above).
# </details>

# %% [markdown]
# ## 7. When neither modality suffices alone
#
# Now a task where each modality alone is *useless*: Shapes & captions scenes and the question
# "does this caption describe this image?" Each scene appears with its own caption (label 1) and
# with another scene's, which describes something else (label 0); each caption also appears once
# with each label. A model that sees one modality gives both copies the same answer: right exactly
# half the time, however long it trains.

# %%
from mmcourse.data import VOCAB, as_tensors, load_shapes

scenes = load_shapes(n_train=3, n_validation=1, n_test=1, seed=0)["train"]
pairs = experiments.caption_pairs(as_tensors(scenes, experiments.SCENE_COLUMNS))
views.caption_pairs(pairs, [0, 3, 1, 4, 2, 5])
for i in range(6):
    print(f"row {i} (label {int(pairs['label'][i])}): {VOCAB.decode(pairs['caption_ids'][i])}")

# %% [markdown]
# The model: a small CNN for the image, a GRU over the caption, concatenation, and a head with a
# hidden ReLU layer, which can multiply what one linear layer could only add. It must *compare*:
# "is the red shape in the caption the triangle in the picture?" It trains for 3 passes over 3,000
# pairs, the unimodal controls for one pass over 256 (training cannot help them).

# %%
matching = experiments.caption_matching_experiment(seed=0)
acc = matching.accuracy
print({kind: round(a, 3) for kind, a in acc.items()})

# %% [markdown]
# The controls sit at 0.5 by construction, not training: the `verify` finds it with fresh, untrained
# one-modality models.

# %%
test = matching.test
n = len(test["label"]) // 2  # rows i and n + i: scene i's image with its own caption, then another's
image_model, caption_model = (experiments.build_caption_model(kind).eval() for kind in ("image only", "caption only"))
# Each image and each caption (rows i < n hold scene i's own) is scored once and its answer read off for both
# of its rows: two copies scored apart could round differently on a GPU.
with torch.no_grad():
    image_answer = image_model(test["image"][:n]).scores.argmax(1)
    caption_answer = caption_model(test["caption_ids"][:n]).scores.argmax(1)
image_alone = (image_answer.repeat(2) == test["label"]).float().mean().item()
caption_alone = (caption_answer[test["caption_of"]] == test["label"]).float().mean().item()
verify(torch.equal(test["image"], test["image"][:n].repeat(2, 1, 1, 1))
       and torch.equal(test["caption_ids"], test["caption_ids"][test["caption_of"]])
       and image_alone == 0.5 and caption_alone == 0.5,
       "each modality alone is exactly at chance, as the construction guarantees",
       image_only=image_alone, caption_only=caption_alone)

# %%
experiments.CAPTION_MATCHING_NEEDS_BOTH.check(acc["both"])

# %% [markdown]
# Here fusion is the whole model: the answer lives only in the *relation* between the modalities,
# the interaction that AV-Digits lacked.

# %% [markdown]
# ### Check yourself
#
# 1. Why does the lesson `verify` that each unimodal model is at exactly 0.5, rather than claim
#    it?
#
# <details><summary>Answer</summary>
#
# Chance follows from the construction, not from training, so it holds on any seed. A fact that
# must hold is verified; a result of training is claimed.
# </details>
#
# 2. Could late fusion, which adds a score of the image to a score of the caption, favour the
#    matching pairs?
#
# <details><summary>Answer</summary>
#
# Not when trained with cross-entropy: each scene and caption appears once with each label, so at
# constant scores predicting $1/2$ each score's gradient is $(\tfrac12 - 1) + (\tfrac12 - 0) = 0$;
# the loss is convex in the scores, so that constant is optimal and late fusion stays at 0.5. No
# sum can check *which* object is red; that needs an interaction.
# </details>

# %% [markdown]
# ## Summary
#
# - **Early fusion** concatenates; **late fusion** adds log-probabilities (Bayes' rule under
#   conditional independence); **attention fusion** weighs the modalities per sample; **tensor
#   fusion** adds every product (the 1s keep the unimodal terms); **low-rank fusion**, which you
#   built, factorises its weight.
# - Fusion beats the best single modality when their errors differ. With modalities independent
#   given the label, the product of the unimodal posteriors is already the best combination:
#   interactions add nothing.
# - Noise and absence differ: failing sensors in training teach a model to handle noise; a
#   *missing* modality needs **modality dropout**.
# - A weight is not an explanation: back it with a control.
# - Where the answer lies in the relation between the modalities, fusion is the whole model.
#
# <details><summary>More: try it</summary>
#
# Build the data without sensor failures, `experiments.av_data(seed=0, failure_rate=0.0)`, train the
# attention model on it and draw the weights of section 6 again. Or train
# `experiments.build_av_model("low-rank", rank=16)` with
# `mmcourse.fit(model, data.train, ["image", "audio"], epochs=2)` and compare it with tensor fusion.
# </details>
#
# **Papers**
#
# - Baltrusaitis, Ahuja and Morency (2019), [*Multimodal Machine Learning: A Survey and
#   Taxonomy*](https://arxiv.org/abs/1705.09406).
# - Zadeh et al. (2017), [*Tensor Fusion Network*](https://arxiv.org/abs/1707.07250); Liu et al.
#   (2018), [*Low-rank Multimodal Fusion*](https://arxiv.org/abs/1806.00064); Kolda and Bader
#   (2009), [*Tensor Decompositions and Applications*](https://doi.org/10.1137/07070111X), for CP
#   and Tucker.
# - Wang, Tran and Feiszli (2020), [*What Makes Training Multi-Modal Classification Networks
#   Hard?*](https://arxiv.org/abs/1905.12681): why a fused model can do worse than its best modality.
# - Hori et al. (2017), [*Attention-Based Multimodal Fusion for Video
#   Description*](https://arxiv.org/abs/1701.03126): modality weights that follow a decoder's state.
#
# **Next:** [lesson 02](02_cca.ipynb) (CCA) learns a shared space for two views instead of fusing
# them for one label. Attention with queries comes in lesson 03, a missing modality in lesson 05
# (the MVAE), a fused teacher of a unimodal student in lesson 08.
