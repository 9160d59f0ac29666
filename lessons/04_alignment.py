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
# # Lesson 04: Alignment without pairs
#
# **What you will learn:** how to turn one embedding space onto another with an orthogonal map, from
# pairs in closed form (Procrustes) and without pairs by fooling a discriminator (MUSE); how CSLS
# keeps "hub" points from spoiling retrieval; what each part of the recipe adds; and why, between
# modalities trained apart, the map found without pairs does no better than a random rotation.
#
# **You will build:** one training step of the adversarial game (the discriminator's update, the
# map's update, the orthogonalisation) and train it for a second.
#
# **Prerequisites:** the [singular value decomposition](https://en.wikipedia.org/wiki/Singular_value_decomposition)
# and the AV-Digits retrieval of [lesson 02](02_cca.ipynb); a GAN in outline
# ([d2l.ai, generative adversarial networks](https://d2l.ai/chapter_generative-adversarial-networks/gan.html)).
#
# **Time:** about 30 minutes of reading and 30 minutes of exercises. **Runs on:** a laptop CPU in
# well under a minute; a GPU is used when there is one.
#
# Word vectors trained on English and, separately, on Spanish have coordinates that mean nothing to
# each other, yet "cat" sits near "dog" in both, and "gato" near "perro": the two clouds have roughly
# the *same shape*, turned differently. Find the turn and you can translate without a dictionary.
# Likewise an image and an audio encoder, trained apart, might arrange the digits alike. In two
# dimensions:

# %%
import math

import torch
import torch.nn.functional as F

import mmcourse
from mmcourse import exercises, verify
from mmcourse.alignment import (
    Discriminator,
    clustered_points,
    hubness,
    k_occurrence,
    mutual_nearest_neighbours,
    random_rotation,
    rotation_angles,
)
from mmcourse.experiments import alignment as experiments
from mmcourse.experiments import comparison
from mmcourse.views import alignment as views

print("training on:", mmcourse.get_device())

# %%
points, cluster = clustered_points(400, 2, branching=(5,), scales=(3.0,), spread=0.6,
                                   generator=torch.Generator().manual_seed(0))
turn = random_rotation(2, generator=torch.Generator().manual_seed(1))
views.two_spaces(points, points @ turn, cluster, ("space A (say, English)", "space B (say, Spanish)"))

# %% [markdown]
# A generative adversarial network can learn such a turn without pairs: a *generator* maps space A
# into space B, a *discriminator* tries to tell mapped points from real ones, and when it no longer
# can, the clouds overlap. MUSE (Conneau et al. 2018) made this work for word vectors with three
# choices: the map is **orthogonal** (it may turn and mirror the cloud, never stretch it), the
# discriminator is **regularised**, and the adversarial map is only a **start**, finished by a closed
# form. This lesson tests each choice.
#
# **Notation.** A source point $x$ and a target point $y$ (not a label here) are column vectors in
# $\mathbb{R}^d$, centred and scaled to unit length, so a dot product is a cosine. A map $W$ acts on
# the left, $Wx$; it is orthogonal when $W^\top W = I$. In code, rows are examples: the source is $X$
# ($n \times d$), the mapped source $XW^\top$, and the package stores `w` $= W^\top$, so that
# `source @ w` maps every row (as SciPy does).

# %% [markdown]
# ## 1. With pairs: Procrustes
#
# Suppose you know each source point's partner. Three points in 2-D, turned by a quarter turn, with
# a little noise: which turn fits them best? Try every whole degree.

# %%
def rotation_by(degrees):  # the 2-D rotation W by this angle, acting on a column vector
    a = math.radians(degrees)
    return torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


x = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # three source points, one per row
y = x @ rotation_by(90).T + 0.1 * torch.randn(3, 2, generator=torch.Generator().manual_seed(0))  # rows: (W x_i)^T
errors = torch.stack([(x @ rotation_by(a).T - y).pow(2).sum() for a in range(360)])
print("squared error at 0, 45, 90, 135, 180 degrees:", [round(errors[a].item(), 2) for a in (0, 45, 90, 135, 180)])
print("best turn:", errors.argmin().item(), "degrees")

# %% [markdown]
# The error falls smoothly to one minimum near 90 degrees (the noise moves it a little). In $d$
# dimensions there is no single angle to scan, but the minimum has a closed form (Schönemann 1966).
# With the pairs in the rows of $X$ and $Y$,
#
# $$W^\star = \arg\min_{W^\top W = I} \sum_i \|Wx_i - y_i\|^2 = \arg\min_{W^\top W = I} \|XW^\top - Y\|_F^2
#   = UV^\top, \qquad Y^\top X = U S V^\top .$$
#
# Why: an orthogonal $W$ keeps $\|XW^\top\|_F = \|X\|_F$, so the only term that depends on $W$ is
# $-2\,\mathrm{tr}(W^\top Y^\top X) = -2\,\mathrm{tr}(S\, V^\top W^\top U)$, lowest when
# $V^\top W^\top U = I$ (Xing et al. 2015 brought this orthogonal map to word translation).
#
# The lesson's synthetic spaces: 1,500 items, clusters of clusters, in $d = 16$ dimensions. The
# source sees each item with a little noise; the target sees it with other noise, turned by a random
# rotation $R$ whose 8 planes turn by at most 86 degrees: $y_i \approx R x_i$ (in code
# `spaces.rotation` is $R^\top$). Row $i$ of both is the same item, which only the evaluation may use.

# %%
spaces = experiments.synthetic_spaces(seed=0)
print("source:", tuple(spaces.source.shape), "| target:", tuple(spaces.target.shape))
print("angles of the planted rotation (degrees):", [round(math.degrees(a)) for a in rotation_angles(spaces.rotation)])

# %% [markdown]
# ### Exercise: Procrustes from the SVD
#
# Write `my_procrustes(source, target)`: `source` and `target` are `(n, d)`, row $i$ of each a pair.
# Return, in the package's convention, the `(d, d)` matrix `w` $= W^{\star\top}$, so that
# `source @ w` is as close to `target` as an orthogonal map allows.

# %%
def my_procrustes(source, target):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("procrustes", my_procrustes)

# %% [markdown]
# <details><summary><b>Hint 1: a nudge</b></summary>
#
# Build the small d by d matrix that sums, over the pairs, each pair's target point times its source
# point, as an outer product, and decompose it. Its singular values are not needed, only the two sets
# of singular vectors. Then mind the side: the package wants the transpose of the map in the equation.
# </details>
# <details><summary><b>Hint 2: what helps</b></summary>
#
# `torch.linalg.svd(a)` returns `u, s, vh` with `a = u @ torch.diag(s) @ vh`, so `u` is $U$ and
# `vh` is already $V^\top$. The matrix to decompose is $Y^\top X$, that is `target.T @ source`.
# </details>
# <details><summary><b>Hint 3: the code</b></summary>
#
# ```python
# u, _, vh = torch.linalg.svd(target.T @ source)  # Y^T X = U S V^T
# return (u @ vh).T  # W = U V^T; the package returns w = W^T
# ```
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_procrustes(source, target):
    u, _, vh = torch.linalg.svd(target.T @ source)  # Y^T X = U S V^T
    return (u @ vh).T  # W = U V^T; the package returns w = W^T, so that source @ w maps the rows


exercises.check("procrustes", solution_procrustes, must_pass=True)

# %% [markdown]
# From here on the lesson uses the package's `procrustes`. It agrees with SciPy's
# `orthogonal_procrustes`, which also returns $W^\top$, and comes close to $R$ (the noise keeps it from
# exact):

# %%
import scipy.linalg

from mmcourse.alignment import procrustes

w = procrustes(spaces.source, spaces.target)
w_scipy, _ = scipy.linalg.orthogonal_procrustes(spaces.source.double().numpy(), spaces.target.double().numpy())
difference = (w.double() - torch.from_numpy(w_scipy)).abs().max().item()
print(f"largest difference from SciPy: {difference:.1e} | ||W - R|| / ||R||: "
      f"{(w - spaces.rotation).norm() / spaces.rotation.norm():.3f}")
verify(difference < 1e-4 and (w.T @ w - torch.eye(16)).abs().max() < 1e-5,
       "our Procrustes is orthogonal and equals SciPy's", largest_difference=difference)

# %% [markdown]
# How many pairs are enough? Without noise, $d = 16$ pairs pin $R$ down (the first question below says
# why); with noise, every extra pair averages the noise down. The curves average five random sets of
# pairs (noise is the standard deviation added to each coordinate; unit vectors in 16 dimensions have
# coordinates of about 0.25):

# %%
recovery = experiments.procrustes_recovery(seed=0)
views.procrustes_curves(recovery)
print("error with 16 noiseless pairs:", round(recovery["error"][0.0][recovery["pairs"].index(16)], 6),
      "| with 12:", round(recovery["error"][0.0][recovery["pairs"].index(12)], 3))
verify(recovery["error"][0.0][recovery["pairs"].index(16)] < 1e-6, "16 noiseless pairs recover the planted rotation exactly",
       relative_error=recovery["error"][0.0][recovery["pairs"].index(16)])

# %% [markdown]
# ### Check yourself
#
# 1. Why do 12 noiseless pairs give a wrong map in 16 dimensions, while 16 give the exact one?
#
# <details><summary>Answer</summary>
#
# Twelve points span at most 12 directions; on the other 4 any orthogonal completion fits equally
# well, and the SVD picks one that need not be $R$ (the printed error is far from 0). Sixteen points
# in general position leave no direction free: $Y^\top X = R\, X^\top X$ with $X^\top X$ invertible,
# so $R = Y^\top X (X^\top X)^{-1}$.
# </details>
#
# 2. A student who knows the Kabsch algorithm flips a sign so that $\det W = +1$. When does that give
#    a worse answer?
#
# <details><summary>Answer</summary>
#
# When the best orthogonal map is a reflection, for example when the target is the source mirrored
# (the exercise's third case): Procrustes allows reflections, and forcing a rotation leaves a larger
# error.
# </details>

# %% [markdown]
# ## 2. Reading off pairs: hubs and CSLS
#
# With a map in hand, the translation of a source point is its nearest target. Take spaces that are
# not exact rotated copies (the target is bent by a smooth warp, which section 6 varies), map the
# source with the best orthogonal map, and count for each target how many mapped source points have it
# among their 10 nearest targets: its *k-occurrence* $N_{10}$ (a count, not lesson 06's $N$). On
# average it is 10.

# %%
warped = experiments.synthetic_spaces(seed=0, warp_strength=experiments.HUB_WARP)
mapped = warped.source @ procrustes(warped.source, warped.target)  # row i is (W x_i)^T
cosine = torch.nn.functional.normalize(mapped, dim=1) @ warped.target.T  # (n_s, n_t); targets have unit length
occurrence = k_occurrence(cosine, k=10)
print("N_10 of the first ten targets:", occurrence[:10].tolist(), "| mean:", occurrence.double().mean().item())
print("largest N_10:", occurrence.max().item(), "| targets in nobody's top ten:", (occurrence == 0).sum().item(),
      "of", len(occurrence))

# %% [markdown]
# A few targets sit in the top ten of very many queries, and some in nobody's. These *hubs* come with
# high dimensions (Radovanović et al. 2010): a point near the middle of the cloud is close to
# everything, and of the many queries it captures, all but one miss. Hubness is measured by the
# skewness of $N_{10}$, $\mathbb{E}[(N_{10} - \mu)^3] / \sigma^3$: a long right tail makes it large.

# %%
centred = occurrence.double() - occurrence.double().mean()
skewness = (centred.pow(3).mean() / centred.pow(2).mean().pow(1.5)).item()
print(f"skewness of N_10: {skewness:.2f}")
verify(abs(hubness(cosine, k=10).skewness - skewness) < 1e-9, "hubness() gives the skewness of N_10",
       skewness=skewness)

# %% [markdown]
# Cross-domain similarity local scaling (CSLS, from MUSE) charges each point for its popularity. Let
# $r_Y(Wx)$ be the mean cosine of the mapped point $Wx$ to its $k = 10$ nearest targets, and $r_X(y)$
# the mean cosine of the target $y$ to its $k$ nearest mapped source points:
#
# $$\mathrm{CSLS}(Wx, y) = 2\cos(Wx, y) - r_Y(Wx) - r_X(y).$$
#
# A hub has a large $r_X(y)$ and loses score for every query; a target in a sparse region gains.
# Plain cosine against CSLS on these spaces, by **precision@1**: the fraction of source points whose
# best-scoring target is their own partner.

# %%
hubs = experiments.hubness_and_csls(seed=0)
for name in ("cosine", "csls"):
    h = hubs[name]["hubness"]
    print(f"{name:>6}: precision@1 {hubs[name]['precision']:.3f} | skewness of N_10 {h.skewness:.2f}, "
          f"largest N_10 {h.largest}, targets never retrieved {h.never:.1%}")
views.occurrence_histograms(hubs)

# %%
experiments.CSLS_RAISES_PRECISION.check(hubs["csls"]["precision"] - hubs["cosine"]["precision"])
experiments.CSLS_LOWERS_HUBNESS.check(hubs["cosine"]["hubness"].skewness - hubs["csls"]["hubness"].skewness)

# %% [markdown]
# ### Exercise: CSLS scores
#
# Write `my_csls(mapped_source, target, k)`: `mapped_source` is `(n_s, d)` (rows already mapped),
# `target` `(n_t, d)`; return the `(n_s, n_t)` matrix of CSLS scores above, whatever the lengths of
# the rows.

# %%
def my_csls(mapped_source, target, k):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("csls_scores", my_csls)

# %% [markdown]
# <details><summary><b>Hint 1: a nudge</b></summary>
#
# First make every score a cosine, so that the lengths of the rows stop mattering. In the matrix of
# cosines each row holds one query's neighbourhood and each column one target's: average the k
# largest values of each, and subtract both from twice the cosine.
# </details>
# <details><summary><b>Hint 2: what helps</b></summary>
#
# `torch.nn.functional.normalize(a, dim=1)` scales each row to unit length; `a @ b.T` is then the
# matrix of cosines. `cos.topk(k, dim=1).values` holds each row's k largest entries (`dim=0`: each
# column's). Broadcast a vector over rows or columns with `[:, None]` and `[None, :]`.
# </details>
# <details><summary><b>Hint 3: the code</b></summary>
#
# ```python
# cos = torch.nn.functional.normalize(mapped_source, dim=1) @ torch.nn.functional.normalize(target, dim=1).T
# r_y = cos.topk(k, dim=1).values.mean(1)  # (n_s,): each query's k nearest targets
# r_x = cos.topk(k, dim=0).values.mean(0)  # (n_t,): each target's k nearest queries
# return 2 * cos - r_y[:, None] - r_x[None, :]
# ```
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_csls(mapped_source, target, k):
    a = torch.nn.functional.normalize(mapped_source, dim=1)
    b = torch.nn.functional.normalize(target, dim=1)
    cos = a @ b.T
    return 2 * cos - cos.topk(k, dim=1).values.mean(1)[:, None] - cos.topk(k, dim=0).values.mean(0)[None, :]


exercises.check("csls_scores", solution_csls, must_pass=True)

# %% [markdown]
# ### Check yourself
#
# 1. For one query $Wx$, the term $r_Y(Wx)$ is the same for every target. Then why is it in the formula?
#
# <details><summary>Answer</summary>
#
# It shifts a query's whole row, so it cannot change which target the query picks. It matters down a
# column, where one target compares queries, as the mutual pairs of refinement (section 5) do.
# </details>
#
# 2. Predict: does CSLS only reorder the queries among the hubs, or does it also give the targets that
#    nobody retrieved a chance? Check your answer in the printed lines.
#
# <details><summary>Answer</summary>
#
# Both. A target in a sparse region has a small $r_X(y)$, so CSLS raises its score for every query
# and some queries now put it in their top ten: in your run the share of targets never retrieved
# falls from the cosine line to the CSLS line, as does the largest $N_{10}$.
# </details>

# %% [markdown]
# ## 3. Without pairs: the adversarial game
#
# Now forget the pairs. No point knows its partner, but the clouds differ in where their mass lies:
# a discriminator learns to find such differences, and the map learns to remove them.
#
# The discriminator gives a logit $l$ and $D(v) = \sigma(l)$, the probability that the point $v$ is a
# mapped source point. A batch holds $B$ source points $x_i$ and $B$ target points $y_j$, drawn
# independently (there are no pairs). The discriminator minimises the mean binary cross-entropy over
# these $2B$ points, with targets smoothed by $\epsilon = 0.1$, the default of MUSE's code (0.9 for
# mapped points, 0.1 for target points, instead of 1 and 0):
#
# $$\mathcal{L}_D = -\frac{1}{2B}\Big[\sum_i \big((1 - \epsilon)\log D(Wx_i) + \epsilon \log\big(1 - D(Wx_i)\big)\big)
#   + \sum_j \big(\epsilon \log D(y_j) + (1 - \epsilon)\log\big(1 - D(y_j)\big)\big)\Big].$$
#
# The map minimises the same mean on another batch with the targets swapped ($\epsilon$ for mapped
# points, $1 - \epsilon$ for target points); only its mapped half depends on $W$. MUSE's recipe: $W$
# starts at the identity; $D$ has input dropout 0.1 and two hidden layers with LeakyReLU(0.2), takes
# five steps per step of $W$ and judges the map without dropout; both learn by SGD with learning rate
# $\eta = 0.1$. The package's discriminator takes batches `(runs, B, d)`:

# %%
print(Discriminator(dim=16, hidden=32))

# %% [markdown]
# ### Keeping the map orthogonal
#
# Gradient steps do not keep $W$ orthogonal, so after each one MUSE pulls it back (Cissé et al.
# 2017). A small number first: for a diagonal $W$, each axis of length $s$ becomes
# $(1 + \beta)s - \beta s^3$. With $\beta = 0.1$:

# %%
s = torch.tensor([1.5, 1.0, 0.6])  # the axis lengths of a diagonal W that stretches one axis and squashes another
for step in range(4):
    print(f"after {step} steps:", [round(v, 3) for v in s.tolist()])
    s = (1 + 0.1) * s - 0.1 * s**3

# %% [markdown]
# Lengths above 1 shrink, lengths below 1 grow, and 1 stays. For any $W$ the step is
#
# $$W \leftarrow (1 + \beta)\, W - \beta\, (W W^\top) W,$$
#
# which moves each singular value of $W$ the same way; it applies unchanged to the code's
# `w` $= W^\top$. A tutorial's version of this step passes its author's test: an orthogonal matrix
# stays where it is. Yet start from a map that is only *nearly* orthogonal, as every map is during
# training, and repeat the step:

# %%
def tutorial_orthogonalize(w, beta=0.001):
    return (1 + beta) * w - beta * w.T @ w @ w


def repeat(step, w, times=2000, beta=0.01):
    for _ in range(times):
        w = step(w, beta)
    return w


turn = random_rotation(4, generator=torch.Generator().manual_seed(2))
nearly = turn + 0.2 * torch.randn(4, 4, generator=torch.Generator().manual_seed(3))
print("an orthogonal W stays put:", torch.allclose(tutorial_orthogonalize(turn, 0.1), turn, atol=1e-6))
after = repeat(tutorial_orthogonalize, nearly)
print("a nearly orthogonal W, after 2,000 steps of beta = 0.01, is still finite:", bool(torch.isfinite(after).all()))

# %% [markdown]
# The tutorial's step has a bug; you will find it in the next section, where you write the whole step.

# %% [markdown]
# ### Check yourself
#
# 1. One step with $\beta = 0.01$ on $W = 2I$: what comes out?
#
# <details><summary>Answer</summary>
#
# Every singular value is 2 and becomes $1.01 \cdot 2 - 0.01 \cdot 8 = 1.94$, so $W = 1.94\,I$: a small
# move towards the orthogonal matrices.
# </details>
#
# 2. Does the step keep working for any singular value, however large?
#
# <details><summary>Answer</summary>
#
# No. $f(s) = (1 + \beta)s - \beta s^3$ moves $s$ towards 1 only for $0 < s < \sqrt{(1 + \beta)/\beta}$
# (about 10 for $\beta = 0.01$); beyond it $f(s) < 0$ (that direction flips), and for larger $s$ the
# values grow without bound. A map that starts at the identity and moves by small steps stays far
# inside.
# </details>

# %% [markdown]
# ## 4. Build it yourself: one step of the adversarial game
#
# The package's `adversarial_alignment` repeats one step 300 times; write that step. It trains $K$
# maps at once (runs): `w` is $(K, d, d)$, each batch $(K, B, d)$, and each loss a run's mean over its
# $2B$ points, summed over the runs, so that every map learns as if alone. You write the
# discriminator's update, the map's update (judged without dropout, then dropout back on) and the
# return, and fix the tutorial's orthogonalisation (`.mT` transposes the last two dimensions). The
# check compares your step with the package's `adversarial_step` from the same start on the same
# batches: the losses and every parameter after the step.

# %%
def my_alignment_step(w, discriminator, map_optimizer, discriminator_optimizer, batches, smoothing=0.1, beta=0.01):
    """w: (K, d, d), a parameter; batches: (x, y) pairs, each (K, B, d), one per discriminator step, then the map's."""
    *discriminator_batches, (x, y) = batches
    r = len(x)  # K runs; labels (K, 2B): 1 - smoothing for B mapped points, smoothing for B targets
    labels = torch.cat([torch.full_like(x[..., 0], 1 - smoothing), torch.full_like(y[..., 0], smoothing)], dim=1)
    for x_d, y_d in discriminator_batches:
        points = torch.cat([x_d @ w.detach(), y_d], dim=1)  # (R, 2B, d): B mapped points, then B targets
        # YOUR CODE HERE: the discriminator's loss on points, then one step of discriminator_optimizer
        raise NotImplementedError
    # YOUR CODE HERE: the map's loss on x @ w and y with the targets swapped, then one step of map_optimizer
    raise NotImplementedError
    with torch.no_grad():  # copied from the tutorial: find the bug
        w.copy_((1 + beta) * w - beta * w.mT @ w @ w)
    # YOUR CODE HERE: return (the last discriminator loss, the map's loss), detached
    raise NotImplementedError


exercises.check("alignment_step", my_alignment_step)

# %% [markdown]
# <details><summary><b>Hint 1: a nudge</b></summary>
#
# Each update is the four moves of any training step: a loss, zeroed gradients, backward, a step of
# its own optimiser. The map's loss scores points made like the discriminator's, from the last batch,
# against the opposite targets. For the copied line, read its second term against the equation of
# section 3, one factor at a time.
# </details>
# <details><summary><b>Hint 2: what helps</b></summary>
#
# `F.binary_cross_entropy_with_logits(logits, labels)` averages over all $K \times 2B$ entries: times
# `r` it sums the runs' means. `discriminator.eval()` and `discriminator.train()` switch dropout off and
# on. In the copied line, note which of the three factors carries `.mT`, and which one the equation
# transposes.
# </details>
# <details><summary><b>Hint 3: the code</b></summary>
#
# ```python
# # in the loop
# discriminator_loss = F.binary_cross_entropy_with_logits(discriminator(points), labels) * r
# discriminator_optimizer.zero_grad()
# discriminator_loss.backward()
# discriminator_optimizer.step()
# # the map's step
# discriminator.eval()
# map_loss = F.binary_cross_entropy_with_logits(discriminator(torch.cat([x @ w, y], dim=1)), 1 - labels) * r
# discriminator.train()
# map_optimizer.zero_grad()
# map_loss.backward()
# map_optimizer.step()
# # the fix: W W^T W reads w @ w.mT @ w for the stack of maps:
# w.copy_((1 + beta) * w - beta * w @ w.mT @ w)  # inside torch.no_grad(); then
# return discriminator_loss.detach(), map_loss.detach()
# ```
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_alignment_step(w, discriminator, map_optimizer, discriminator_optimizer, batches, smoothing=0.1,
                            beta=0.01):
    *discriminator_batches, (x, y) = batches
    r = len(x)
    labels = torch.cat([torch.full_like(x[..., 0], 1 - smoothing), torch.full_like(y[..., 0], smoothing)], dim=1)
    for x_d, y_d in discriminator_batches:
        points = torch.cat([x_d @ w.detach(), y_d], dim=1)
        discriminator_loss = F.binary_cross_entropy_with_logits(discriminator(points), labels) * r
        discriminator_optimizer.zero_grad()
        discriminator_loss.backward()
        discriminator_optimizer.step()
    discriminator.eval()  # no dropout while it judges the map
    map_loss = F.binary_cross_entropy_with_logits(discriminator(torch.cat([x @ w, y], dim=1)), 1 - labels) * r
    discriminator.train()
    map_optimizer.zero_grad()
    map_loss.backward()
    map_optimizer.step()
    with torch.no_grad():
        w.copy_((1 + beta) * w - beta * w @ w.mT @ w)  # W W^T W = U S^3 V^T: only the singular values move
    return discriminator_loss.detach(), map_loss.detach()


exercises.check("alignment_step", solution_alignment_step, must_pass=True)

# %% [markdown]
# Now train your step on section 1's spaces: 300 steps from $W = I$, recording precision@1 with CSLS
# (here we know the truth) and the discriminator's accuracy every 30 steps. A few seconds:

# %%
from mmcourse.alignment import adversarial_alignment, adversarial_step

step = exercises.yours_or("alignment_step", my_alignment_step, adversarial_step)
trained = adversarial_alignment(spaces.source, spaces.target, truth=spaces.truth, step=step, record_every=30,
                                eval_rows=300)
print("precision@1, every 30 steps:", [round(float(p[0]), 2) for p in trained.history.precision])
print("discriminator accuracy:     ", [round(float(a[0]), 2) for a in trained.history.discriminator_accuracy])
print(f"precision@1 of the map on all 1,500 points: "
      f"{experiments.csls_precision(spaces.source, spaces.target, trained.maps[0], spaces.truth):.3f}")

# %% [markdown]
# From here on the lesson uses the package's `adversarial_step` inside `adversarial_alignment`; read
# both in `mmcourse/alignment.py`. Its `orthogonalize`, repeated on the tutorial's nearly orthogonal $W$:

# %%
from mmcourse.alignment import orthogonalize

fixed = repeat(orthogonalize, nearly)
print("singular values before:", [round(v, 3) for v in torch.linalg.svdvals(nearly).tolist()])
verify(torch.allclose(torch.linalg.svdvals(fixed), torch.ones(4), atol=1e-4),
       "2,000 steps of the package's orthogonalize turn the nearly orthogonal W into an orthogonal one",
       singular_values=[round(v, 4) for v in torch.linalg.svdvals(fixed).tolist()])

# %% [markdown]
# `experiments.unsupervised_alignment` trains three maps at once: the recipe again (its discriminator
# starts from other draws, so its map differs a little from yours), the recipe on the rotation turned
# twice as far (172 degrees), and a map without orthogonalisation (section 6). A few seconds:
#
# <details><summary>More: MUSE's own settings</summary>
#
# MUSE's code trains far longer: 5 epochs of a million samples in batches of 32, about 156,000 map
# steps, with $\beta = 0.001$ and a decaying learning rate. Over our 300 steps the stronger
# $\beta = 0.01$ keeps $W$ from drifting far from orthogonal, though not on it (section 6 prints its
# singular values).
# </details>

# %%
unsupervised = experiments.unsupervised_alignment(seed=0, progress=True)
history = unsupervised["result"].history
mild, large = unsupervised["precision"]["mild"], unsupervised["precision"]["large"]
print(f"precision@1 at 86 degrees: the identity {mild['identity']:.3f}, the adversarial map {mild['adversarial']:.3f}"
      f" | chance {unsupervised['chance']:.4f} (one partner among 1,500 targets)")

# %%
experiments.ADVERSARIAL_BEATS_ITS_START.check(mild["adversarial"] - mild["identity"])

# %% [markdown]
# The untrained identity already finds a few percent: some planes turn only a little.
#
# ### Experiment: how many pairs is the adversarial map worth?
#
# With how many random true pairs does Procrustes find more partners than the map you trained? Predict
# first: write your number in place of `None`.

# %%
exercises.predict("pairs_worth", None)  # your guess: a number of pairs, from 2 to 1500

# %% [markdown]
# Then find it. The check fits Procrustes on your number of random pairs and on half as many (five
# draws each) against the package's adversarial map, which your passing step reproduces. Your number
# passes when Procrustes finds more partners with it and fewer with half; only then is the crossover
# printed. A try takes a few seconds.

# %%
def my_pairs():
    # YOUR CODE HERE: return your number of pairs
    raise NotImplementedError


exercises.check("pairs_worth", my_pairs)

# %% [markdown]
# <details><summary><b>Hint 1: a nudge</b></summary>
#
# Start from any number. If Procrustes overtakes with your number and with half of it, go lower; if
# with neither, go higher. Doubling or halving finds the range in a few tries.
# </details>
# <details><summary><b>Hint 2: what helps</b></summary>
#
# The check prints `procrustes` (your number), `procrustes with half` and `adversarial`, and
# `overtakes at` once your number passes; `experiments.pairs_against_adversarial(pairs)` returns the
# same numbers.
# </details>
# <details><summary><b>Hint 3: the code</b></summary>
#
# ```python
# return 20  # Procrustes overtakes at 12 to 15 pairs: with 20 it finds more partners, with 10 fewer
# ```
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_pairs():
    return 20  # Procrustes overtakes at 12 to 15 pairs: 20 finds more, 10 fewer, on each of seeds 0-9


exercises.check("pairs_worth", solution_pairs, must_pass=True)

# %% [markdown]
# A baseline, the untrained identity:

# %%
worth = experiments.pairs_worth(seed=0)
print("precision@1 of Procrustes:", {m: round(p, 2) for m, p in worth["procrustes"].items()}, "(pairs: precision)")
for name in ("identity", "adversarial"):
    print(f"{name}: precision@1 {worth[name]['precision']:.3f}, worth {worth[name]['pairs']} pairs")

# %% [markdown]
# After 300 steps (still improving) the map is worth 12 to 15 noisy pairs on seeds 0-9, about $d$. But
# Procrustes jumps near $d$ pairs, where they pin the map down, so any map from 0.3 to 0.85 is worth
# 12 to 15: that threshold sets the number.

# %% [markdown]
# ### Check yourself
#
# 1. Why did the tutorial's step pass its author's test, and fail on a nearly orthogonal $W$?
#
# <details><summary>Answer</summary>
#
# It computes `w.mT @ w @ w` where the step needs `w @ w.mT @ w`. With $w = USV^\top$, $ww^\top w =
# US^3V^\top$ moves only the singular values; $w^\top w w$ also turns $w$, and repeated steps can
# diverge. The two agree when $w^\top w = ww^\top$, as for the author's orthogonal test matrix.
# </details>
#
# 2. In your run the discriminator's accuracy starts near 0.5, jumps by step 30, then settles lower.
#    What does each phase mean?
#
# <details><summary>Answer</summary>
#
# At step 0 the untrained discriminator guesses. It quickly learns the clouds' largest differences;
# as the map removes them, the accuracy settles around 0.6 to 0.75: the clouds can still be told
# apart.
# </details>

# %% [markdown]
# ## 5. Refinement, and judging a map without labels
#
# The adversarial map gets some partners right, not all. Procrustes would improve it if you knew which
# pairs were right. A guess: the *mutual* nearest neighbours, pairs $(x_i, y_j)$ where $y_j$ is
# $Wx_i$'s best CSLS match and $Wx_i$ is $y_j$'s. How many such pairs do three starts give, and how
# many are right (which only the evaluation can know)?

# %%
from mmcourse.alignment import csls_scores

turns = {turn: f"largest angle {math.degrees(angle):.0f} degrees" for turn, angle in experiments.TURNS.items()}
for turn, start in (("mild", "identity"), ("mild", "adversarial"), ("large", "identity")):
    pair, w = unsupervised["spaces"][turn], unsupervised["maps"][turn][start]
    i, j = mutual_nearest_neighbours(csls_scores(pair.source @ w, pair.target))
    cosines = torch.nn.functional.cosine_similarity(pair.source[i] @ w, pair.target[j], dim=1)
    print(f"{start:>11}, {turns[turn]}: {len(i):>4} mutual pairs, {(pair.truth[i] == j).float().mean():.0%} "
          f"of them right, their mean cosine {cosines.mean():.3f}")

# %% [markdown]
# **Refinement** solves Procrustes on the mutual pairs, maps again, takes the new mutual pairs, and
# repeats (5 rounds). If the first pairs point roughly the right way, each round's pairs are better
# than the last.
#
# The last column needs no labels: how close the pairs that a map agrees on lie. When the map lays
# the clouds exactly on top of each other, it is near 1. This is the lesson's **criterion**, with
# $\mathcal{M}$ the mutual CSLS pairs:
#
# $$c(W) = \frac{1}{|\mathcal{M}|} \sum_{(i, j) \in \mathcal{M}} \cos(Wx_i, y_j).$$
#
# <details><summary>More: MUSE's own criterion</summary>
#
# MUSE picks among the epochs of a run with a one-way version: each of the 10,000 most frequent source
# words goes to its CSLS nearest target, agreed or not.
# </details>
#
# Five maps, on both pairs of spaces: the identity and the adversarial map, each unrefined and
# refined, and Procrustes on all 1,500 true pairs.

# %%
print(f"{'':<22}" + "".join(f"{label:>28}" for label in turns.values()))
print(f"{'map':<22}" + f"{'precision@1':>16}{'criterion':>12}" * len(turns))
for name in experiments.STARTS:
    print(f"{name:<22}" + "".join(f"{unsupervised['precision'][t][name]:>16.3f}{unsupervised['criterion'][t][name]:>12.4f}"
                                  for t in turns))
distance = experiments.map_distance(unsupervised["maps"]["mild"]["adversarial, refined"],
                                    unsupervised["maps"]["mild"]["all pairs"])
print(f"refined adversarial map against the all-pairs map (86 degrees): ||difference|| / ||W|| = {distance:.4f}")

# %%
experiments.REFINEMENT_RECOVERS.check(mild["adversarial, refined"], with_all_pairs=mild["all pairs"])
experiments.REFINEMENT_MATCHES_PROCRUSTES.check(distance)
experiments.IDENTITY_REFINED_SUFFICES.check(abs(mild["identity, refined"] - mild["adversarial, refined"]))
experiments.IDENTITY_TOO_FAR.check(large["identity, refined"])

# %% [markdown]
# At 86 degrees, refinement from the adversarial map finds nearly every partner without a single
# pair, landing on the all-pairs map itself. But refinement from the identity finds just as many:
# few of its mutual pairs are right, yet Procrustes on them turns the map the right way.
#
# At 172 degrees (one plane almost upside down) the identity's mutual pairs are nearly all wrong, and
# refinement from it goes nowhere. The adversarial map came close enough here, but it too is a local
# search from the identity: on seeds 0-9, refinement from it found nearly every partner on only 2
# (half of them on a third).
#
# Does the criterion follow training? Over the recorded steps, rank them by the criterion and by
# precision@1, and by the step number for comparison:

# %%
step_order = experiments.rank_correlation(history.step, [float(p[0]) for p in history.precision])
ranking = experiments.training_rank(unsupervised)
print(f"rank correlation with precision@1 over {len(history.step)} steps: criterion {ranking:.3f}, "
      f"step number {step_order:.3f}")

# %%
experiments.CRITERION_TRACKS_TRAINING.check(ranking)

# %% [markdown]
# The criterion, which needs no labels, rose as precision@1 did; but so did the step number, so the run
# shows that it follows training, not that it would pick a better step than the last. Replay the training
# with the slider: left, both spaces on the target's first two principal axes (target grey, mapped
# source coloured by top-level cluster); middle, precision@1 and the criterion; right, the
# discriminator's accuracy (0.5: it can no longer tell).

# %%
views.AdversarialReplay(spaces.source, spaces.target, spaces.cluster, history)

# %% [markdown]
# ### Check yourself
#
# 1. At 86 degrees, refining the identity finds every partner the full recipe finds. What is the
#    adversarial stage for, then?
#
# <details><summary>Answer</summary>
#
# A start that refinement can finish. At 86 degrees the identity already is one; at 172 degrees it is
# not (checked), and there the adversarial stage brought the map close enough, though as a local
# search from the identity it often fails.
# </details>
#
# 2. Why build the dictionary from *mutual* nearest neighbours rather than from every source point's
#    nearest target?
#
# <details><summary>Answer</summary>
#
# A pair that both directions agree on is more often right: one-way pairs include every query that a
# hub or a wrong region captures, and Procrustes on many wrong pairs pulls the map towards them (in
# your run, compare the share of right mutual pairs with precision@1).
# </details>

# %% [markdown]
# ## 6. Where it breaks
#
# ### When the spaces are not rotated copies
#
# Real spaces are never exact rotations of each other. Bend the target with a smooth warp of each
# item $z$, $z \mapsto z + \gamma\, G_2 \tanh(G_1 z)$, where $G_1$ and $G_2$ are random $d \times d$
# matrices (entries of variance $1/d$) and $\gamma$ sets the strength, and run the recipe at each
# strength (five runs at once, 100 steps each, a few seconds):

# %%
isometry = experiments.non_isometry(seed=0)
steps = experiments.warp_steps(isometry)
print(f"{'':>9}{'precision@1':>24}{'criterion':>24}")
print(f"{'warp':>9}{'refined':>12}{'all pairs':>12}{'refined':>12}{'all pairs':>12}")
for i, warp in enumerate(isometry["warps"]):
    print(f"{warp:>9.1f}{isometry['precision'][i]:>12.3f}{isometry['ceiling'][i]:>12.3f}"
          f"{isometry['criterion'][i]:>12.4f}{isometry['ceiling_criterion'][i]:>12.4f}")

# %%
experiments.PRECISION_FALLS_WITH_WARP.check(min(steps["refined"] + steps["all pairs"]))
experiments.REFINED_NEAR_CEILING.check(experiments.ceiling_gap(isometry))

# %% [markdown]
# Move the slider: the mapped source (colours) still lands on the target (grey), but point by point
# it fits less and less.

# %%
views.NonIsometryView(isometry)

# %% [markdown]
# From warp 1 on, precision@1 falls at every step, the all-pairs map's too, and the refined map finds
# about as many partners as the all-pairs map (both checked). What breaks is the data, not the recipe:
# no orthogonal map puts every point of a bent target on its partner.
#
# The criterion moves far less than precision@1. At warps 1.5 and 2 it rates the refined map above
# the all-pairs map on every seed of 0-9 (by 0.0002 to 0.008), although the all-pairs map finds more
# partners on seven of them: refinement fits exactly the mutual pairs that the criterion averages,
# right or wrong. Compare refined maps only with refined maps.
#
# ### Without orthogonalisation
#
# Section 4 also trained a map without the orthogonalisation step ($\beta = 0$). The singular values
# of the two adversarial maps (all 1 for an orthogonal map), and what each finds before and after
# refinement:

# %%
failures = experiments.orthogonalisation_effect(unsupervised)
for name in experiments.FAILURE_RUNS:
    f = failures[name]
    print(f"{name:>20}: singular values {f['singular_values'].min():.2f} to {f['singular_values'].max():.2f}, "
          f"precision@1 {f['adversarial']:.3f}, after refinement {f['refined']:.3f}")
views.singular_values(failures, experiments.FAILURE_RUNS)

# %%
experiments.NO_ORTHOGONALISATION_DISTORTS.check(experiments.distortion(failures))
experiments.REFINEMENT_UNDOES_DISTORTION.check(abs(failures["recipe"]["refined"] - failures["no orthogonalisation"]["refined"]))

# %% [markdown]
# Without the step, the map distorts the cloud to fool the discriminator instead of turning it.
# Refinement replaces either map by an orthogonal one, and both refined maps find the same partners:
# the step improves the start, not the result.
#
# ### A stronger discriminator
#
# GAN advice says to keep the discriminator from winning, and MUSE regularises its own with smoothed
# targets and input dropout. Salimans et al. (2016) proposed one-sided smoothing, of the real targets
# only; MUSE smooths both (its paper reports $s = 0.2$, its code defaults to 0.1). Does a stronger
# discriminator hurt? Train with 10 discriminator steps per map step instead of 5 (a few seconds):

# %%
stronger = experiments.stronger_discriminator(seed=0)
print(f"precision@1 of the adversarial map: {experiments.DISCRIMINATOR_STEPS} discriminator steps {mild['adversarial']:.3f}, "
      f"{stronger['discriminator_steps']} steps {stronger['precision']:.3f}")
print("discriminator accuracy (10 steps):", {s: round(float(a[0]), 2) for s, a in
                                             zip(stronger["result"].history.step[::2],
                                                 stronger["result"].history.discriminator_accuracy[::2])})

# %%
experiments.STRONGER_DISCRIMINATOR_HELPS.check(stronger["precision"] - mild["adversarial"])

# %% [markdown]
# Here the stronger discriminator gives the better map: the map learns only what the discriminator's
# gradient tells it.
#
# <details><summary>More: try it without smoothing and dropout</summary>
#
# Run `mmcourse.alignment.adversarial_alignment(spaces.source, spaces.target, truth=spaces.truth,
# smoothing=0.0, dropout=0.0)`, with and without `discriminator_steps=10`, and compare precision@1 and
# the discriminator's accuracy. On seeds 0-9, removing smoothing and dropout raised the adversarial
# map's precision@1 on every seed (by 0.14 to 0.30); all three changes together raised it further on
# nine seeds, while on the tenth the discriminator became nearly perfect (accuracy 0.998) and the map
# found almost nothing (0.04). Refinement found nearly every partner from each of these maps, as it
# does from the identity at 86 degrees.
# </details>
#
# ### A symmetric space aligns to a reflection
#
# Distribution matching can only find what makes the clouds overlap. If every source point has a
# mirror twin across some hyperplane (a reflection $F$), the true map $R$ and the wrong map $RF$ put
# exactly the same cloud on the target, and no criterion without labels can choose:

# %%
mirror = experiments.mirror_symmetric(seed=0)
print("criterion:", {k: round(v, 6) for k, v in mirror["criterion"].items()},
      "| precision@1:", {k: round(v, 3) for k, v in mirror["precision"].items()})
verify(abs(mirror["criterion"]["true"] - mirror["criterion"]["mirrored"]) < 1e-5
       and mirror["precision"]["mirrored"] < 0.01,
       "the mirrored map scores the same criterion as the true one, yet finds no partner", **mirror["criterion"])

# %% [markdown]
# Real spaces are rarely exactly symmetric, but near-symmetries (a few similar clusters) set such
# traps for a local search from the identity.
#
# <details><summary>More: try it on a larger turn</summary>
#
# Build `experiments.synthetic_spaces(seed, max_angle=2.5)` (143 degrees) for a few seeds, run
# `mmcourse.alignment.adversarial_alignment`, and refine with `mmcourse.alignment.refine` from its map
# and from `torch.eye(16)`: how often does each start find the partners?
# </details>

# %% [markdown]
# ### Check yourself
#
# 1. GAN advice says not to let the discriminator win. Why did more discriminator steps give the map a
#    better start here? (Hint: the derivative of the map's loss with respect to the logit $l$.)
#
# <details><summary>Answer</summary>
#
# On a mapped point the map's loss has derivative $\sigma(l) - \epsilon$ with respect to the logit,
# largest when the discriminator is surest the point is mapped. A confident discriminator does not
# starve the map of gradient, and one that has learned more of the clouds' differences tells the map
# more about how to remove them.
# </details>
#
# 2. The mirrored map has the same criterion as the true one and finds no partner. Could any method
#    that sees only the two clouds tell them apart?
#
# <details><summary>Answer</summary>
#
# No. $F$ maps the source cloud onto itself, so the mirrored map sends it onto exactly the same
# points as the true map, and everything computed from the two clouds alone is the same for both.
# Only pairs, even a few, can tell them apart.
# </details>

# %% [markdown]
# ## 7. Across modalities
#
# Do two modalities, learned apart, share a shape? Take AV-Digits (handwritten digits, and spoken
# digits from voices unseen in training). Train an image classifier on images and
# their digit labels, and an audio classifier on sounds and theirs; their encoders' 32-dimensional
# outputs are the two spaces. No image ever meets a sound, but both spaces were shaped by the **digit
# labels of their own modality**. About three seconds:

# %%
from mmcourse.data import load_av_digits

av = load_av_digits(seed=0)
encoders = experiments.train_unimodal_encoders(seed=0, data=av, progress=True)
print("test accuracy of each classifier:", {k: round(v, 3) for k, v in encoders["accuracy"].items()})

# %% [markdown]
# Map the spoken digits into the image space with (a) Procrustes on every training pair, (b) Procrustes
# on ten pairs, one per digit (ten random choices, averaged), (c) the recipe with no pairs, and (d)
# orthogonal maps drawn at random (ten, averaged). Each
# spoken test digit retrieves test images by cosine; a hit is an image of the spoken digit. The table
# gives Recall@1, @5 and @20 with their exact chance levels, how many different digits a query's top
# five images show, and the criterion, beside linear CCA from lesson 02 on the same test split:

# %%
from mmcourse.experiments.cca import av_digits_retrieval

cross = experiments.cross_modal_alignment(seed=0, encoders=encoders)
cca = av_digits_retrieval(seed=0, data=av)
methods = (*experiments.ALIGNMENTS, experiments.RANDOM)
pairs = {"all pairs": "all", "10 pairs": "10", "no pairs": "none", experiments.RANDOM: "none"}
print(f"{'method':<24}{'pairs':>6}{'labels':>17}{'R@1':>7}{'R@5':>7}{'R@20':>7}{'top-5 digits':>14}{'criterion':>11}")
print(f"{'linear CCA (lesson 02)':<24}{'all':>6}{'model selection':>17}{cca['recall1']:>7.3f}{cca['recall5']:>7.3f}")
for name in methods:
    r, at = cross[name]["retrieval"], cross[name]["recall_at"]
    print(f"{name:<24}{pairs[name]:>6}{'training':>17}{r.recall_at_1:>7.3f}{r.recall_at_5:>7.3f}{at[20][0]:>7.3f}"
          f"{cross[name]['distinct']:>14.2f}{cross[name]['criterion']:>11.3f}")
chance = cross["all pairs"]["retrieval"]
print(f"{'chance (random ranking)':<47}{chance.chance_at_1:>7.3f}{chance.chance_at_5:>7.3f}"
      f"{cross['all pairs']['recall_at'][20][1]:>7.3f}{cross['random_distinct']:>14.2f}")

# %%
views.cross_modal_results(cross, methods)
all_pairs, ten = cross["all pairs"]["retrieval"], cross["10 pairs"]["retrieval"]
(rotation20, chance20), (unsupervised20, _) = (cross[name]["recall_at"][20] for name in (experiments.RANDOM, "no pairs"))

# %%
experiments.ALL_PAIRS_RETRIEVE.check(all_pairs.recall_at_1 / all_pairs.chance_at_1)
experiments.TEN_PAIRS_RETRIEVE.check(ten.recall_at_5 - ten.chance_at_5)
experiments.RANDOM_ROTATION_BELOW_CHANCE.check(rotation20 - chance20)
experiments.NO_PAIRS_BELOW_CHANCE.check(unsupervised20 - chance20)
experiments.RANDOM_ROTATION_CONFIDENT.check(cross["random_distinct"] - cross[experiments.RANDOM]["distinct"])

# %% [markdown]
# With all pairs, the map between two separately trained encoders retrieves far above chance, and
# ten pairs already beat chance. Without pairs, the recipe lands among the random rotations: at
# Recall@20 both fall far *below* chance (compare the printed "top-5 digits" with a random ranking's;
# the first question below says why).
#
# At the top of the ranking the unsupervised map does no better than the random rotations either: on
# seeds 0-9 its Recall@1 minus theirs ranged from -0.11 to +0.06, while ten pairs were 0.16 to 0.27
# above them. These are the lesson's rows of the course's running comparison (lesson 07); "labels"
# says "training", since each encoder learned by classifying its own modality's digits:

# %%
rows = experiments.comparison_rows(cross)
print(comparison.table(rows))
comparison.keep("alignment", seed=0, entries=rows)

# %% [markdown]
# Why does the recipe fail here? Compare with two encoders of the *same* modality from another random
# start, paired as audio and image are, by digit only (rows of one half of the training rows with rows
# of the other half), then Procrustes on those pairs. The heatmaps above
# compare the shapes directly: the cosines between the ten digits' mean embeddings, which no rotation
# changes. A second pair of encoders (three seconds):

# %%
second = experiments.train_unimodal_encoders(seed=0, data=av, train_seed=experiments.SECOND_SEED, progress=True)
controls = experiments.same_modality_controls(encoders, second, seed=0)
for name in ("image", "audio"):
    print(f"{name} -> {name} (another seed): criterion {controls[name]['criterion']:.3f}, "
          f"digit geometries correlate {controls[name]['geometry_correlation']:.2f}")
print(f"audio -> image: criterion {controls['audio -> image']['criterion']:.3f}, "
      f"digit geometries correlate {cross['geometry_correlation']:.2f}")

# %%
experiments.SPACES_NOT_ISOMETRIC.check(experiments.isometry_gap(controls))
experiments.GEOMETRIES_DIFFER.check(cross["geometry_correlation"])
experiments.SAME_MODALITY_GEOMETRIES_AGREE.check(min(controls[m]["geometry_correlation"] for m in ("image", "audio")))

# %% [markdown]
# Two encoders of one modality arrange the digits alike; image and audio do not, and overlap a little
# less: a "one" that looks like a "seven" has nothing to do with a "one" that sounds like a "nine".
# With no shared shape, nothing guides the recipe towards the right map.
#
# Nor can the criterion warn you. In the table the unsupervised map scores above the all-pairs map,
# the unfair comparison of section 6; refine the all-pairs map too, and three random rotations:

# %%
before, after = cross["unrefined_criterion"], cross["refined_criterion"]
for name, label in (("all pairs", "all pairs"), (experiments.RANDOM, f"{experiments.REFINED_ROTATIONS} random rotations")):
    print(f"{label:<20} criterion {before[name]:.3f}, refined {after[name]:.3f}")
print(f"{'no pairs':<20} criterion {cross['no pairs']['criterion']:.3f} (refined already)")

# %%
experiments.REFINEMENT_INFLATES_CRITERION.check(experiments.refinement_lift(cross))
experiments.CRITERION_CANNOT_TELL.check(abs(cross["no pairs"]["criterion"] - after["all pairs"]))

# %% [markdown]
# Refinement lifts even a random rotation's criterion most of the way, and refined against refined
# the unsupervised map lands level with the all-pairs map: the criterion cannot tell a map that
# retrieves like a random rotation from one fitted on every pair. As Søgaard et al. (2018) found for
# distant languages, unsupervised alignment needs spaces that share their geometry.
#
# ### Image to text, with an adversarial term
#
# Adversaries also appear *with* pairs (ACMR, Wang et al. 2017). The simplest form: map image
# features to text features by regression, plus an adversarial term of weight $\lambda$ so that mapped
# images look like real text embeddings; regression predicts the *average* caption, and the hope is
# that the adversary sharpens predictions and reduces hubs. On Shapes (image: the mean colour of each
# 4x4 block; text: the caption's word counts), $\lambda$ = 0 (plain regression), 0.1 and 1, a few
# seconds in all:

# %%
captions = experiments.image_to_caption(seed=0)
gain = experiments.caption_gains(captions)
print("chance:", {k: round(v, 4) for k, v in captions["chance"].items()})
for weight in captions["weights"]:
    print(f"adversarial weight {weight:>3}: Recall@1, 5, 10 = {[round(v, 3) for v in captions[weight]['recall'].values()]}, "
          f"skewness of N_10 = {captions[weight]['hubness'].skewness:.2f}")
views.caption_results(captions)

# %%
experiments.ADVERSARIAL_TERM_NO_HELP.check(max(gain.values()))
experiments.ADVERSARIAL_TERM_LOWERS.check(sum(gain.values()) / len(gain))

# %% [markdown]
# The adversarial term does not help: neither weight raises Recall@5, and on average it lowers it (on
# seeds 0-9, at both weights on every seed). ACMR itself is a richer design, but the lesson holds:
# measure before you add a loss.

# %% [markdown]
# ### Check yourself
#
# 1. A random rotation falls below chance at Recall@20. How can a map do worse than ranking the images
#    at random?
#
# <details><summary>Answer</summary>
#
# A rotation keeps the image space's clusters, so a query's nearest images come from one region and
# show two or three digits, against about four for a random ranking (checked). When the region is
# wrong, as it mostly is for a map that knows nothing, twenty images of wrong digits miss far more
# often than twenty random images.
# </details>
#
# 2. The adversarial term was meant to make predicted captions sharper and reduce hubs. Why might it
#    work against the regression instead?
#
# <details><summary>Answer</summary>
#
# The discriminator asks each prediction to look like *some* caption, the regression to be *this*
# image's caption; with a linear map and word-count targets the two goals compete. The skewness of
# $N_{10}$ even rose at weight 0.1 on every seed of 0-9: more hubs, not fewer.
# </details>

# %% [markdown]
# ## Summary
#
# - With pairs, Procrustes gives the best orthogonal map: $W = UV^\top$ from the SVD of $Y^\top X$
#   (in code `w` $= W^\top$). CSLS charges each target for its popularity, which reduces hubs.
# - Without pairs, MUSE's step trains a discriminator, lets the map fool it and pulls the map back
#   towards orthogonal; you wrote that step. After 300 steps its map was worth about $d$ noisy pairs,
#   where Procrustes' precision jumps.
# - Refinement, Procrustes on mutual CSLS neighbours, does most of the work: from a mild turn,
#   refining the identity does as well; from a large one, both starts mostly fail.
# - The criterion needs no labels, but refinement inflates it and a symmetric cloud fools it.
# - Image and audio encoders trained apart arrange the digits differently: ten pairs beat chance, the
#   map found without pairs does no better than a random rotation, and the criterion gives no warning.
# - An adversarial term added to image-to-caption regression lowered recall: measure before adding a loss.
#
# **Papers**
#
# - Schönemann (1966), [*A generalized solution of the orthogonal Procrustes problem*](https://doi.org/10.1007/BF02289451).
# - Mikolov, Le and Sutskever (2013), [*Exploiting Similarities among Languages for Machine Translation*](https://arxiv.org/abs/1309.4168).
# - Xing, Wang, Liu and Lin (2015), [*Normalized Word Embedding and Orthogonal Transform for Bilingual Word Translation*](https://aclanthology.org/N15-1104/).
# - Conneau, Lample, Ranzato, Denoyer and Jégou (2018), [*Word Translation Without Parallel Data*](https://arxiv.org/abs/1710.04087) (MUSE).
# - Cissé et al. (2017), [*Parseval Networks*](https://arxiv.org/abs/1704.08847).
# - Salimans et al. (2016), [*Improved Techniques for Training GANs*](https://arxiv.org/abs/1606.03498).
# - Radovanović, Nanopoulos and Ivanović (2010), [*Hubs in Space*](https://jmlr.org/papers/v11/radovanovic10a.html).
# - Dinu, Lazaridou and Baroni (2015), [*Improving zero-shot learning by mitigating the hubness problem*](https://arxiv.org/abs/1412.6568).
# - Søgaard, Ruder and Vulić (2018), [*On the Limitations of Unsupervised Bilingual Dictionary Induction*](https://arxiv.org/abs/1805.03620).
# - Artetxe, Labaka and Agirre (2018), [*A robust self-learning method for fully unsupervised cross-lingual mappings of word embeddings*](https://arxiv.org/abs/1805.06297) (VecMap).
# - Wang, Yang, Xu, Hanjalic and Shen (2017), [*Adversarial Cross-Modal Retrieval*](https://doi.org/10.1145/3123266.3123326).
#
# **Next:** [lesson 05](05_autoencoders.ipynb) learns one shared space for both modalities with a
# variational autoencoder, and [lesson 07](07_contrastive.ipynb) learns one contrastively from pairs;
# lesson 07's running comparison shows this lesson's three rows, and [lesson 08](08_transfer.ipynb)'s
# map of the course returns to Procrustes, CSLS and hubness.
