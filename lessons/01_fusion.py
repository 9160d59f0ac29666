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
# **What you will learn:** five ways to combine two modalities into one prediction (early, late,
# attention, tensor and low-rank fusion), how to compare them fairly, why modelling interactions
# cannot help when the modalities are independent given the label, what happens to each method
# when a modality gets noisy or disappears, how modality dropout and a learned "missing"
# embedding make a model hold up, and a task that no single modality can solve. **Time:** about
# 50 minutes. **Runs on:** a laptop CPU in 25 to 40 seconds (every model here trains in a
# second or two); a GPU is used when there is one.
#
# You hear a spoken digit in a noisy street and see a smudged handwritten digit. Each alone is
# unreliable; together they are not, because the noise in one has nothing to do with the noise in
# the other. That is **complementarity**. And when one channel fails completely (the microphone
# is off), a good multimodal model should still do as well as the remaining channel alone. That is
# **robustness**. *Fusion* is where both are won or lost: the step that turns the modalities'
# representations into one.
#
# Fusion methods differ in *where* they combine the modalities:

# %%
import copy

import torch

import mmcourse
from mmcourse import exercises, verify
from mmcourse.diagnostics import paired_difference
from mmcourse.experiments import fusion as experiments
from mmcourse.fusion import (
    AttentionFusion,
    EarlyFusion,
    LowRankFusion,
    ModalityDropout,
    TensorFusion,
    TuckerFusion,
    tensor_product,
)
from mmcourse.views import fusion as views
from mmcourse.views.common import figure, method_bars

print("training on:", mmcourse.get_device())

# %%
with figure(10, 1.8, ncols=3) as axes:
    views.fusion_diagram(axes)

# %% [markdown]
# **Notation.** Modalities $m = 1, \dots, M$ (here $M = 2$: image and audio); a sample's inputs
# $x^{(m)}$; encoders $f_m$; embeddings $h^{(m)} = f_m(x^{(m)}) \in \mathbb{R}^{d_m}$; the fused
# representation $z$; the label $y$; batch size $B$. Every fusion module in `mmcourse.fusion` takes
# the list $[h^{(1)}, \dots, h^{(M)}]$ as tensors of shape $(B, d_m)$ and returns $z$ of shape
# $(B, d_{out})$. Baltrusaitis, Ahuja and Morency (2019), [*Multimodal Machine Learning: A Survey
# and Taxonomy*](https://arxiv.org/abs/1705.09406), give the map of early, late and hybrid fusion
# this lesson follows.
#
# ## 1. The data: sensors that fail
#
# You use AV-Digits from lesson 00: handwritten 8x8 digits paired with spoken digits from voices
# that differ between training and test. To learn *which modality to trust*, a model must see
# samples where one modality is useless. So every clean training pair appears in 8 corrupted
# copies: in about a third of them the image "fails" (pixel noise of standard deviation 1.5 to 3),
# in another third the audio fails (-30 to -15 dB signal-to-noise ratio), and in the rest both are
# usable; every image also has a 3x3 occluder at a random place. The test set has AV-Digits'
# default corruption: pixel noise 0.3, the occluder and audio at 0 dB. There are only 360 test
# pairs, and an accuracy measured on one draw of their noise moves noticeably with the next draw,
# so each test pair is corrupted 8 times, independently: more test rows for free, no more
# training. Building everything takes about two seconds.

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
# ## 2. Five ways to fuse
#
# ### Early fusion: concatenate, then learn
#
# Stack the embeddings into one long vector and apply one linear map:
#
# $$z = W \begin{bmatrix} h^{(1)} \\ h^{(2)} \end{bmatrix} + b,
# \qquad W \in \mathbb{R}^{d_{out} \times (d_1 + d_2)}.$$
#
# Everything after the concatenation sees both modalities, but nothing in it knows which numbers
# came from which sensor. This one linear layer can only *add* evidence from the two modalities,
# $W_1 h^{(1)} + W_2 h^{(2)}$; it cannot multiply them. A network with a hidden layer after the
# concatenation can (section 8 needs exactly that).
#
# ### Late fusion: predict, then combine
#
# Each modality gets its own classifier $p_m(y \mid x^{(m)})$; the decision combines their
# log-probabilities and renormalises:
#
# $$\log p(y \mid x^{(1)}, \dots, x^{(M)}) = \sum_m w_m \log p_m(y \mid x^{(m)}) - \log Z, \qquad
# Z = \sum_{y'} \prod_m p_m(y' \mid x^{(m)})^{w_m},$$
#
# with $w_m = 1 / M$ or learned. Adding log-probabilities multiplies probabilities, so a confident
# modality outvotes an unsure one, and a modality that is sure a class is impossible vetoes it.
# `LateFusion` returns the sum without $\log Z$, which changes no argmax, and the softmax of the
# cross-entropy puts it back. Why this form? If the modalities are *conditionally independent*
# given the label, Bayes' rule gives
#
# $$p(y \mid x^{(1)}, \dots, x^{(M)}) = \frac{\prod_m p_m(y \mid x^{(m)})}{p(y)^{M-1}} \Big/ Z',$$
#
# which is late fusion with $w_m = 1$ and a correction for the prior $p(y)$; with balanced classes
# the prior is a constant and only the normaliser changes. Late fusion cannot learn interactions
# between the modalities, but each part works on its own, and a missing modality's term can simply
# be left out (section 4).
#
# **Exercise 1.** Write late fusion with equal weights: `logits` is a list of $(B, C)$ class scores,
# one per modality; return the average of their log-softmaxes, shape $(B, C)$.

# %%
def my_late_fusion(logits):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("late_fusion", my_late_fusion)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# `torch.log_softmax(x, dim=1)` turns scores into log-probabilities (subtracting the log of the
# sum of the exponentials, so adding a constant to every score changes nothing). Stack the $M$
# results with `torch.stack` and take `.mean(dim=0)`.
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_late_fusion(logits):
    return torch.stack([torch.log_softmax(x, dim=1) for x in logits]).mean(dim=0)


exercises.check("late_fusion", solution_late_fusion, must_pass=True)

# %% [markdown]
# ### Attention fusion: weigh each modality, per sample
#
# A noisy image should count less *for this sample*. Attention fusion projects each embedding into
# a shared space, $u^{(m)} = W_m h^{(m)} + b_m$, scores each projection on its own with a small
# network $s_m = v^\top \tanh(A u^{(m)} + c)$, and mixes with softmax weights over the modalities:
#
# $$\alpha = \operatorname{softmax}(s_1, \dots, s_M), \qquad z = \sum_m \alpha_m u^{(m)}.$$
#
# The weights $\alpha$ are computed for every sample, and you can read them: section 6 shows them
# move. Here the scores look at nothing but the modality itself: there is no *query*. The
# *multimodal attention* of Hori et al. (2017), [*Attention-Based Multimodal Fusion for Video
# Description*](https://arxiv.org/abs/1701.03126), also conditions the scores on the state of the
# decoder that writes the description, $s_m = v^\top \tanh(A u^{(m)} + C q + c)$, so the weights
# change with each word it writes; lesson 03 builds attention with queries. Every fusion module
# returns a `Fused(z, weights)` pair; `AttentionFusion`'s weights are $\alpha$:

# %%
attention = AttentionFusion(dims=[64, 64], out_dim=32)
z, alpha = attention([torch.randn(4, 64), torch.randn(4, 64)])  # a Fused(z, weights) pair
print("z:", tuple(z.shape), "| alpha:", tuple(alpha.shape), "| first row of alpha:", alpha[0].tolist())

# %% [markdown]
# The weights start equal, $1/M$ each (the scoring network's last layer starts at zero). Otherwise a random
# early preference for one modality would shrink the other's gradient, which is multiplied by its
# weight, before its encoder had learned anything.
#
# **Exercise 2 (find the bug).** The function below is modality attention as it appears in more
# than one tutorial: `u` holds the projected embeddings $(B, M, d)$, `v` is a scoring vector
# $(d,)$, and it returns $z$ $(B, d)$ and $\alpha$ $(B, M)$. It runs and the shapes are right,
# but its weights are wrong. The check runs it on three batches: which case fails first, and what
# do that sample's weights add up to?

# %%
def buggy_modality_attention(u, v):
    scores = u @ v  # (B, M): one score per sample and modality
    alpha = torch.softmax(scores, dim=0)
    return (alpha.unsqueeze(-1) * u).sum(1), alpha


exercises.check("modality_attention_bug", buggy_modality_attention)

# %% [markdown]
# Copy the function into `my_modality_attention` below and fix it.

# %%
def my_modality_attention(u, v):
    # YOUR CODE HERE: a fixed copy of buggy_modality_attention
    raise NotImplementedError


exercises.check("modality_attention_bug", my_modality_attention)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# Which dimension does the softmax normalise? With a batch of one sample, what does
# `torch.softmax(scores, dim=0)` return, whatever the scores? The weights of one sample must sum to
# 1 over its $M$ modalities and must not depend on the other samples in the batch.
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_modality_attention(u, v):
    alpha = torch.softmax(u @ v, dim=1)  # over the modalities of each sample, not over the batch
    return (alpha.unsqueeze(-1) * u).sum(1), alpha


exercises.check("modality_attention_bug", solution_modality_attention, must_pass=True)

# %% [markdown]
# With `dim=0` each weight says how this sample's modality scores compared with *the other samples'*:
# in a batch of one every weight is 1, and at test time a sample's prediction changes with its
# neighbours in the batch. The weights must be normalised over the modality axis, `dim=1` (or `-1`).
#
# ### Tensor fusion: every product of the two modalities
#
# One linear layer after a concatenation adds the modalities' evidence. Zadeh et al. (2017),
# [*Tensor Fusion Network for Multimodal Sentiment Analysis*](https://arxiv.org/abs/1707.07250),
# give the linear layer the products themselves: the outer product of the two embeddings, each
# extended by a constant 1. Here is that grid for two small embeddings, $d_1 = 5$ and $d_2 = 4$:

# %%
h1, h2 = torch.randn(5), torch.randn(4)
with figure(3.2, 3.2) as axes:
    views.tensor_fusion_grid(axes[0], h1, h2, "[1, h1] (rows) x [1, h2] (columns)")

# %% [markdown]
# The boxed row 0 is $[1, h^{(2)}]$, the boxed column 0 is $[1, h^{(1)}]$, and every other cell
# is a product $h^{(1)}_i h^{(2)}_j$. A linear map of the flattened grid gives
#
# $$z = W \operatorname{vec}\left(\begin{bmatrix} 1 \\ h^{(1)} \end{bmatrix} \otimes
# \begin{bmatrix} 1 \\ h^{(2)} \end{bmatrix}\right) + b,
# \qquad W \in \mathbb{R}^{d_{out} \times (d_1 + 1)(d_2 + 1)}.$$
#
# **Exercise 3.** Write the Tensor Fusion vector for two modalities: `h1` $(B, d_1)$ and `h2`
# $(B, d_2)$ in, $(B, (d_1 + 1)(d_2 + 1))$ out, the grid of each sample flattened row by row.

# %%
def my_tensor_fusion(h1, h2):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("tensor_fusion", my_tensor_fusion)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# Prepend the ones with `torch.cat([torch.ones(len(h1), 1), h1], dim=1)`. The outer product of
# every sample at once is a broadcast: `a[:, :, None] * b[:, None, :]` has shape
# $(B, d_1 + 1, d_2 + 1)$; then `.flatten(1)`.
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_tensor_fusion(h1, h2):
    a = torch.cat([torch.ones(len(h1), 1), h1], dim=1)
    b = torch.cat([torch.ones(len(h2), 1), h2], dim=1)
    return (a[:, :, None] * b[:, None, :]).flatten(1)


exercises.check("tensor_fusion", solution_tensor_fusion, must_pass=True)

# %% [markdown]
# **Why the 1 matters.** Without it the grid holds only products, and a linear map of products
# cannot express "the audio alone says seven". Worse, when one embedding is zero every product is
# zero, and the other modality vanishes with it. With the 1, the grid contains each embedding on
# its own, so Tensor Fusion contains early fusion: put early fusion's weights in row 0 and column 0,
# zeros elsewhere, and the two layers compute the same thing.

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
# The weight of tensor fusion is a tensor $\mathcal{W}$ of $(d_1 + 1)(d_2 + 1) d_{out}$ entries,
# and with three modalities it grows with the product of three sizes. Liu et al. (2018),
# [*Efficient Low-rank Multimodal Fusion with Modality-Specific
# Factors*](https://arxiv.org/abs/1806.00064), write it as a sum of $r$ outer products of
# per-modality factors $W_m^{(i)} \in \mathbb{R}^{(d_m + 1) \times d_{out}}$, a **CP decomposition**
# of the tensor (CANDECOMP/PARAFAC):
#
# $$\mathcal{W} = \sum_{i=1}^{r} \lambda_i \, W_1^{(i)} \otimes W_2^{(i)},
# \qquad z = \sum_{i=1}^{r} \lambda_i \left([1, h^{(1)}] W_1^{(i)}\right) \odot
# \left([1, h^{(2)}] W_2^{(i)}\right) + b.$$
#
# For one output $o$, the weight grid $\mathcal{W}_{:,:,o}$ (one weight per cell of the grid
# above) is a sum of $r$ rank-one grids $\lambda_i a_i b_i^\top$, where $a_i$ and $b_i$ are
# column $o$ of $W_1^{(i)}$ and $W_2^{(i)}$. Every row of a rank-one grid is a multiple of the
# same row $b_i$:

# %%
small_lmf = LowRankFusion([5, 4], 3, rank=3)
with figure(11, 2.4, ncols=4) as axes:
    views.low_rank_weight(axes, small_lmf, output=0)

# %% [markdown]
# The right-hand form of $z$ never builds the grid: each modality is projected on its own, and the
# projections are multiplied element by element. So low-rank fusion *is* tensor fusion, with a
# weight restricted to rank $r$; `LowRankFusion.to_tensor_fusion()` builds the full weight, and
# section 7 checks that both give the same outputs.
#
# **Exercise 4.** Write low-rank fusion's forward pass for any number of modalities with
# `torch.einsum`: `hs` is a list of $(B, d_m)$ tensors, `factors` a list of $(r, d_m + 1, d_{out})$
# tensors, `rank_weights` $(r,)$ and `bias` $(d_{out},)$; return $z$, shape $(B, d_{out})$.

# %%
def my_low_rank_fusion(hs, factors, rank_weights, bias):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("low_rank_fusion", my_low_rank_fusion)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# For each modality, prepend a column of ones and project with every rank at once:
# `torch.einsum("bd,rdo->bro", h1, w)` has shape $(B, r, d_{out})$. Multiply these projections
# across the modalities, element by element, then sum over the rank with the weights:
# `torch.einsum("r,bro->bo", rank_weights, product)`, and add the bias.
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_low_rank_fusion(hs, factors, rank_weights, bias):
    product = 1.0
    for h, w in zip(hs, factors):
        h1 = torch.cat([torch.ones(len(h), 1), h], dim=1)  # (B, d_m + 1)
        product = product * torch.einsum("bd,rdo->bro", h1, w)  # (B, r, d_out)
    return torch.einsum("r,bro->bo", rank_weights, product) + bias


exercises.check("low_rank_fusion", solution_low_rank_fusion, must_pass=True)

# %% [markdown]
# CP is one way to factorise a tensor. The other one in use is the **Tucker decomposition**:
# project each modality to a small space, $p_m = [1, h^{(m)}] U_m$ with $U_m \in
# \mathbb{R}^{(d_m + 1) \times t_m}$, and combine the projections with a small core tensor
# $\mathcal{G} \in \mathbb{R}^{t_1 \times t_2 \times d_{out}}$,
# $z_o = \sum_{a,b} \mathcal{G}_{abo}\, p_{1,a}\, p_{2,b} + b_o$. Where CP multiplies component $i$
# of one modality only with component $i$ of the other, the core lets every component meet every
# other. This is the fusion of MUTAN (Ben-younes, Cadene, Cord and Thome 2017, [*MUTAN: Multimodal
# Tucker Fusion for Visual Question Answering*](https://arxiv.org/abs/1705.06676)); a CP
# decomposition is a Tucker decomposition whose core is diagonal. `TuckerFusion` also turns into
# the `TensorFusion` it stands for:

# %%
tucker = TuckerFusion([5, 4], 3, ranks=2).double()
hs = [torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)]
difference = (tucker(hs).z - tucker.to_tensor_fusion()(hs).z).abs().max().item()
verify(difference < 1e-10, "Tucker fusion equals tensor fusion with the weight G x_1 U_1 x_2 U_2",
       largest_difference=difference)

# %% [markdown]
# ### Putting a model together, and what "missing" means
#
# `MultimodalClassifier(encoders, fusion, head)` runs each encoder, layer-normalises each
# embedding (so that no modality dominates just by the size of its numbers), fuses and classifies.
# Layer normalisation works on each vector over its *own* features: it subtracts their mean and
# divides by their standard deviation, so every normalised embedding has mean 0, variance 1 and
# norm $\sqrt{d}$. All of them lie on one sphere. Check it on the test set, with $d = 64$:

# %%
model = experiments.build_av_model("early")  # untrained: the sphere does not depend on training
with torch.no_grad():
    hs = model.embed(data.test["image"], data.test["audio"])
for name, h in zip(("image", "audio"), hs):
    norms = h.norm(dim=1)
    print(f"{name}: norms from {norms.min():.2f} to {norms.max():.2f} (sqrt(d) = {h.shape[1] ** 0.5:.0f}); "
          f"the mean embedding has norm {h.mean(0).norm():.2f}")

# %% [markdown]
# Passing `None` for a modality means it is missing. What should the fusion see? The zero vector
# (`missing="zero"`, the default) is the *centre* of that sphere: far from every embedding the
# model was trained on, and not even their average. A model that never saw it in training can do
# anything with it. The alternative, `missing="learned"`, is a trained vector per modality, kept on
# the sphere by the same normalisation, which the model learns to treat as "nothing here" while it
# trains with modalities dropped (section 5). Late fusion needs neither: it leaves the missing
# modality's term out (section 4).
#
# `build_av_model` builds the seven models you compare, all with the same encoders (a small CNN for
# images, a perceptron over the spectrogram) and the same head:

# %%
print(experiments.build_av_model("attention"))

# %% [markdown]
# ## 3. Train and compare
#
# Seven models, the same recipe: two passes over the 8 corrupted copies (about 270 steps of Adam),
# the same seed. First the two unimodal baselines (a second or two):

# %%
results = experiments.train_av_methods(data, methods=["image only", "audio only"])
print(results.table())

# %% [markdown]
# Then the five fusion models, added to the same results (7 to 10 seconds on a laptop CPU):

# %%
experiments.train_av_methods(data, methods=["early", "late", "attention", "tensor", "low-rank"], into=results)
print(results.table())

# %%
with figure(6, 2.8) as axes:
    method_bars(axes[0], results.accuracy, reference=0.1, title="test accuracy at the default noise (dashed: chance)")

# %% [markdown]
# The image-only model reads noisy, occluded digits; the audio-only model hears words from voices
# it never heard in training. They make mistakes, but mostly on *different* samples:

# %%
wrong = {m: ~results.correct[m] for m in ("image only", "audio only")}
print(f"image model wrong on {wrong['image only'].float().mean():.3f} of the test set, "
      f"audio model on {wrong['audio only'].float().mean():.3f}, "
      f"both on {(wrong['image only'] & wrong['audio only']).float().mean():.3f}")

# %% [markdown]
# So a model that hears and sees can do much better than either:

# %%
gains = experiments.fusion_gains(results.accuracy)
print("gain over the best single modality:", {m: round(g, 3) for m, g in gains.items()})
experiments.FUSION_BEATS_SINGLE.check(experiments.mean_fusion_gain(results.accuracy),
                                      smallest=min(gains.values()), largest=max(gains.values()))

# %% [markdown]
# ### Why tensor fusion cannot win here
#
# Tensor and low-rank fusion can model *interactions*: evidence that only means something in
# combination ("this image goes with that sound"). AV-Digits has none. Each image is paired with a
# clip of the same digit drawn independently, by a different writer and a different voice, so the
# two modalities are **conditionally independent given the label**. Then Bayes' rule above says
# that the product of the two unimodal posteriors, divided by the prior, is already the best
# possible combination: there is nothing for interactions to add. Try it without any fusion
# training: multiply the posteriors of the image-only and audio-only models you just trained.

# %%
product = experiments.product_of_posteriors(results.models, data.test)
best = max(experiments.fused_methods(results.accuracy), key=results.accuracy.get)
gap = paired_difference(results.correct[best], product, copies=data.test_copies)
print(f"product of posteriors: {product.float().mean():.3f}; best fusion model ({best}): "
      f"{results.accuracy[best]:.3f}; difference with 95% interval: {gap}")
experiments.NOTHING_TO_GAIN.check(gap.estimate, product=product.float().mean(), best_fusion=results.accuracy[best])

# %% [markdown]
# The interval comes from `mmcourse.diagnostics.paired_difference`: it resamples the 360 test
# pairs (each with its 8 noisy copies) and recomputes the difference on the same rows for both
# models, so it shows how much of the difference is luck of the test set. Section 8 builds a
# task where the answer lives *only* in the interaction.
#
# ## 4. Robustness: noisier and missing modalities
#
# Now you stress the trained models, without retraining: corrupt the test images more and more
# (with the audio at its default 0 dB), then drown the audio (with the images at their default
# noise). The corrupted test sets (2 copies of the test pairs at every level) are computed once,
# so evaluating is instant.

# %%
grid = experiments.RobustnessGrid(data)
curves = grid.curves(results.models)
views.robustness_curves(grid, curves)

# %%
fused = experiments.fused_methods(results.accuracy)
drowned = {m: experiments.drowned_accuracy(curves, m) for m in fused}
image_alone, audio_alone = curves["image_noise"]["image only"][-1], curves["audio_snr_db"]["audio only"][-1]
experiments.DROWNED_FUSED_HOLD.check(min(drowned.values()), most_affected=min(drowned, key=drowned.get))
experiments.DROWNED_ALONE_FALLS.check(max(image_alone, audio_alone), image_only=image_alone, audio_only=audio_alone)

# %% [markdown]
# The unimodal models (dashed) fall to chance as their modality drowns; every fused model falls
# only towards the *other* modality's level, because it learned from the failed copies to lean on
# whichever sensor still works. A *missing* modality is a different matter: the model never saw
# an empty input in training. Compare each fused model with the remaining modality's own model:

# %%
missing = {"image missing": ("audio only", curves["image missing"]),
           "audio missing": ("image only", curves["audio missing"])}
print(f"{'method':<10}" + "".join(f"{case:>15}" for case in missing))
for m in fused:
    print(f"{m:<10}" + "".join(f"{acc[m]:>15.3f}" for _, acc in missing.values()))
print(f"{'alone':<10}" + "".join(f"{acc[alone]:>15.3f}" for alone, acc in missing.values()))

# %%
shortfall = {m: experiments.missing_shortfall(curves, m) for m in fused}
print("shortfall against the remaining modality's own model:", {m: round(s, 3) for m, s in shortfall.items()})
experiments.MISSING_ADDITIVE_HOLD.check(max(shortfall[m] for m in experiments.ADDITIVE))
experiments.MISSING_LOW_RANK_FALLS.check(shortfall["low-rank"], tensor=shortfall["tensor"])

# %% [markdown]
# Late fusion got `None` for the missing modality and left its term out, renormalising the
# weights over the modality that is there (`Fused.weights` shows them). That is the same as
# asking the remaining modality's head alone. Feeding it the zero embedding instead would add the
# constant $\log p_m(y \mid h^{(m)} = 0)$, a fixed preference for some classes:

# %%
late = results.models["late"].eval()
with torch.no_grad():
    print("late fusion's weights without the image:", late(None, grid.audio[grid.audio0]).weights[0].tolist())
late_missing = experiments.late_fusion_missing(late, grid)
for way, accs in late_missing.items():
    print(f"{'term ' + way if way == 'dropped' else way + ' embedding':>15}:", {c: round(a, 3) for c, a in accs.items()})

# %% [markdown]
# Compare the two rows: how many decisions the constant changes depends on the run, so the lesson
# claims no difference between them. Dropping the term is still the principled choice: it is Bayes' combination of the modalities you
# have, with nothing made up for the one you lack.
#
# Why does low-rank fusion fall so far (the check above prints tensor fusion's shortfall next to
# it)? With $h^{(2)} = 0$ low-rank fusion's output is
# $\sum_i \lambda_i ([1, h^{(1)}] W_1^{(i)}) \odot W_2^{(i)}[0] + b$, where $W_2^{(i)}[0]$ is row 0
# of the audio factor (the row the constant 1 picks): the image's projections, each rescaled by a
# row that was only ever trained *together with* real audio embeddings on the sphere, never with
# the centre of it. Early fusion's zero simply removes the audio's additive share. Section 5 fixes
# low-rank fusion.
#
# Move the sliders yourself. Each change evaluates all seven models on the precomputed test sets
# (no training); tick a box to take a modality away.

# %%
views.FusionRobustnessView(results.models, grid)

# %% [markdown]
# ## 5. Modality dropout and a learned "missing" embedding
#
# If a model should cope with a missing modality, show it missing modalities while it trains.
# *Modality dropout* (Neverova, Wolf, Taylor and Nebout 2016, [*ModDrop: adaptive multi-modal
# gesture recognition*](https://arxiv.org/abs/1501.00102)) removes whole modalities at random
# during training. `ModalityDropout(p)` removes one modality, chosen at random, from a fraction
# $p$ of the samples, by putting the "missing" embedding in its place, exactly as a missing
# modality looks at test time. It does nothing in evaluation mode. Here are 8 samples of two
# modalities (1 = kept, 0 = dropped):

# %%
dropout = ModalityDropout(p=0.5)  # a new module is in training mode
torch.manual_seed(3)
kept = dropout([torch.ones(8, 4), torch.ones(8, 2)])
print("image:", kept[0][:, 0].int().tolist())
print("audio:", kept[1][:, 0].int().tolist())

# %% [markdown]
# Train low-rank fusion again, the same way but with `modality_dropout=0.5`, once with the zero
# vector for a dropped modality and once with a learned one (`missing="learned"`), and test the
# three versions with both modalities, without the image and without the audio (about 3 seconds):

# %%
moddrop = experiments.modality_dropout_experiment(data, "low-rank", p=0.5, baseline=results)
print(f"{'':>17}" + "".join(f"{case:>15}" for case in ("both", "image missing", "audio missing")))
for variant, accs in moddrop["accuracy"].items():
    print(f"{variant:>17}" + "".join(f"{a:>15.3f}" for a in accs.values()))
print(f"{'alone':>17}{'':>15}{results.accuracy['audio only']:>15.3f}{results.accuracy['image only']:>15.3f}")

# %%
shortfall, cost = experiments.dropout_shortfall_and_cost(moddrop, results.accuracy)
experiments.DROPOUT_HOLDS.check(shortfall)
experiments.DROPOUT_COST.check(cost)
correct = moddrop["correct"]
for case in ("both", "image missing", "audio missing"):
    print(f"learned minus zero, {case}:",
          paired_difference(correct["dropout, learned"][case], correct["dropout, zero"][case], copies=data.test_copies))

# %% [markdown]
# Dropout turns a model that collapses without a modality into one that stays close to the
# remaining modality's own model. The intervals compare the two "missing" embeddings on the same
# test rows: an interval that excludes zero is more than the luck of this test set. The learned
# vector sits where the model's inputs live, and it gets a meaning of its own instead of sharing
# row 0 of the factors with every real embedding. Still, it is not ahead in every case on every
# seed (`benchmarks/claims.py` runs ten), so the lesson claims only what held on all of them: with
# a learned vector, dropout makes the model hold up and costs little with both modalities.
#
# ## 6. Attention follows the clean modality
#
# The attention model computes a weight per modality for every sample. Average the weights over
# the test set while you corrupt one modality, then the other:

# %%
weights = experiments.mean_attention_weights(results.models["attention"], grid)
views.attention_weight_curves(weights, grid)

# %%
image_w, audio_w = weights["image_noise"][:, 0], weights["audio_snr_db"][:, 1]
experiments.ATTENTION_FOLLOWS.check(experiments.drowned_weight_ratio(weights), image_weight_clean=image_w[0],
                                    image_weight_drowned=image_w[-1], audio_weight_clean=audio_w[0],
                                    audio_weight_drowned=audio_w[-1])

# %% [markdown]
# A weight is what the model computes, not yet proof of what it *uses*. The control: with one
# modality drowned, pair every sample with another sample's input of one modality
# (`mmcourse.diagnostics.shuffled_pairs`, through `modality_controls`). A model that ignores the
# drowned modality barely notices when it is shuffled; a model that answers from the clean one
# falls to chance when that one is shuffled.

# %%
controls = experiments.drowned_controls(results.models["attention"], grid)
for case, values in controls.items():
    print(f"{case}:", {k: round(v, 3) for k, v in values.items() if k in ("all", "shuffled image", "shuffled audio")})
lost, left = experiments.shuffle_effects(controls)
experiments.DROWNED_IGNORED.check(lost)
experiments.CLEAN_NEEDED.check(left)

# %% [markdown]
# Nobody told the model which modality was noisy: it learned from the failed training copies that
# a noise-like embedding is not worth listening to. Look at single samples: pick one, corrupt each
# modality, listen, and watch the two weights (the view runs the model on that one sample).

# %%
test = data.clean_test
views.ModalityWeightsView(results.models["attention"], test["image"], test["waveform"], test["label"])

# %% [markdown]
# ## 7. Tensor fusion against low-rank fusion
#
# With $d_1 = d_2 = 64$, $d_{out} = 64$ and rank $r = 4$, tensor fusion has
# $d_{out}(d_1 + 1)(d_2 + 1) + d_{out}$ numbers to learn and low-rank fusion
# $r (d_1 + 1 + d_2 + 1) d_{out} + r + d_{out}$. Count them, time one training step of each fusion
# layer on a batch of 64 (one CPU thread, fastest of 20 runs), and compare their accuracy on the
# same test rows:

# %%
d, out, r = 64, 64, 4
formula = {"tensor": out * (d + 1) ** 2 + out, "low-rank": r * 2 * (d + 1) * out + r + out}
layers = {"tensor": TensorFusion([d, d], out), "low-rank": LowRankFusion([d, d], out, rank=r)}
ms = {m: 1000 * experiments.time_per_batch(layer, [d, d], repeats=20) for m, layer in layers.items()}
for m in layers:
    print(f"{m:>9}: {results.fusion_parameters[m]:>7,} parameters (formula {formula[m]:,}), "
          f"{ms[m]:.2f} ms per step, test accuracy {results.accuracy[m]:.3f}")

# %%
ratio = results.fusion_parameters["tensor"] / results.fusion_parameters["low-rank"]
verify(all(results.fusion_parameters[m] == formula[m] for m in formula) and ratio > 8,
       "the parameter counts are the formulas', and low-rank fusion has over 8 times fewer", parameter_ratio=ratio)
gap = paired_difference(results.correct["tensor"], results.correct["low-rank"], copies=data.test_copies)
print("tensor minus low-rank accuracy, with 95% interval:", gap)
experiments.LOW_RANK_MATCHES_TENSOR.check(abs(gap.estimate))

# %% [markdown]
# The time per step depends on your machine, but the work does not: the tensor layer multiplies a
# $4225$-long vector per sample by its weight, the low-rank layer two $65$-long ones by its factors.
#
# Now the equivalence. `to_tensor_fusion()` builds the full weight $\sum_i \lambda_i W_1^{(i)}
# \otimes W_2^{(i)}$ of the *trained* low-rank layer; swap it into a copy of the model and compare
# the two models on the test set:

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
# ## 8. When neither modality suffices alone
#
# So far each modality alone did reasonably well, and the two were independent given the label.
# Now a task where each alone is *useless*: Shapes & captions scenes, and the question "does this
# caption describe this image?" Every scene appears twice: once with its own caption (label 1) and
# once with another scene's caption (label 0), chosen so that it really describes something else.
# Every caption also appears exactly twice, once with each label. So a model that sees only the
# image, or only the caption, gives the same answer to both copies, and is right exactly half of
# the time, however long it trains.

# %%
from mmcourse.data import VOCAB, as_tensors, load_shapes

scenes = load_shapes(n_train=3, n_validation=1, n_test=1, seed=0)["train"]
pairs = experiments.caption_pairs(as_tensors(scenes, experiments.SCENE_COLUMNS))
views.caption_pairs(pairs, [0, 3, 1, 4, 2, 5])
for i in range(6):
    print(f"row {i} (label {int(pairs['label'][i])}): {VOCAB.decode(pairs['caption_ids'][i])}")

# %% [markdown]
# The model: the small CNN `SceneEncoder` for the image, a GRU (`TokenEncoder`) over the caption,
# concatenation fusion and a two-way head with a ReLU between: a small network *after* the
# concatenation, which can multiply what a single linear layer could only add. It must *compare*
# the two: "is the red shape in the caption the triangle in the picture?" The fused model trains
# for 3 passes over 3,000 pairs. The controls, an image-only and a caption-only model
# (`mmcourse.diagnostics.unimodal_baselines`), train for one pass over 256 pairs, since training
# cannot help them (about 4 seconds in all).

# %%
matching = experiments.caption_matching_experiment(seed=0)
print({kind: round(acc, 3) for kind, acc in matching.accuracy.items()})

# %%
acc = matching.accuracy
verify(acc["image only"] == 0.5 and acc["caption only"] == 0.5,
       "each modality alone is exactly at chance, as the construction guarantees",
       image_only=acc["image only"], caption_only=acc["caption only"])
experiments.CAPTION_MATCHING_NEEDS_BOTH.check(acc["both"])

# %% [markdown]
# Here fusion is not a bonus but the whole point: the answer lives only in the *relation* between
# the modalities, the interaction that AV-Digits lacked. The concatenation here is early fusion of
# whole-image and whole-caption vectors; lesson 03 lets each word look at the part of the image it
# names.
#
# ## Summary
#
# - **Early fusion** concatenates embeddings; **late fusion** adds log-probabilities of
#   per-modality classifiers (Bayes' rule when the modalities are independent given the label) and
#   drops a missing modality's term; **attention fusion** mixes modalities with per-sample weights
#   that you can read; **tensor fusion** adds every product of the two embeddings (the 1s keep the
#   unimodal terms); **low-rank fusion** is tensor fusion with a CP-factorised weight, far fewer
#   parameters and the same outputs as its tensor twin; **Tucker fusion** (MUTAN) factorises it
#   with a core tensor.
# - Fusion beats the best single modality when the modalities' errors differ (complementarity).
#   When the modalities are independent given the label, the product of the unimodal posteriors
#   is already the best combination, and modelling interactions cannot add anything.
# - Noise and absence are different: models trained with failing sensors handle noise, but a
#   *missing* modality needs to be seen in training: **modality dropout**, best with a learned
#   "missing" embedding that lies where real embeddings do, not at the zero vector.
# - A weight is not an explanation: back it with a control (shuffled pairs).
# - Some tasks need both modalities by construction; then fusion is the whole model.
#
# **Try it:** build the data without sensor failures, `experiments.av_data(seed=0, failure_rate=0.0)`,
# train the attention model on it and draw the weights of section 6 again. Or train
# `experiments.build_av_model("low-rank", rank=16)` with
# `mmcourse.fit(model, data.train, ["image", "audio"], epochs=2)` and compare it with tensor fusion.
#
# **Further reading.** Wang, Tran and Feiszli (2020), [*What Makes Training Multi-Modal
# Classification Networks Hard?*](https://arxiv.org/abs/1905.12681): why a multimodal network can
# end up worse than its best modality (one modality overfits faster and the joint model leans on
# it). Arevalo et al. (2017), [*Gated Multimodal Units for Information
# Fusion*](https://arxiv.org/abs/1702.01992): per-sample gates instead of softmax weights.
# Ben-younes et al. (2017), [*MUTAN*](https://arxiv.org/abs/1705.06676), and Kolda and Bader (2009),
# *Tensor Decompositions and Applications* (SIAM Review 51(3)), for CP and Tucker. Liang, Zadeh and
# Morency (2022), [*Foundations and Trends in Multimodal Machine
# Learning*](https://arxiv.org/abs/2209.03430), section on representation fusion.
