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
# **What you will learn:** how to map one embedding space onto another with an orthogonal matrix;
# the closed form when you have pairs (Procrustes) and how few pairs it needs; how to learn the map
# with *no pairs at all* by fooling a discriminator (MUSE), then refine it, and what the adversarial
# stage adds over refining the identity, and when; an unsupervised criterion that follows a training
# run without labels, and where it cannot decide; why a few "hub" points spoil nearest-neighbour
# retrieval and how CSLS fixes it; and what happens when you try all this across modalities, where
# the unsupervised map does no better than a random rotation. **Time:** about 45 minutes. **Runs
# on:** a laptop CPU in well under a minute (each adversarial training takes a second or two); a GPU
# is used when there is one.
#
# Train word vectors on English text and, separately, on Spanish text. The two spaces are built
# from different words by different runs, so their coordinates mean nothing to each other. Yet
# "cat" sits near "dog" in both, and "gato" near "perro": the two clouds have roughly the *same
# shape*, turned differently. If you could find the turn, you could translate without a
# dictionary. The same hope drives cross-modal work: an image encoder and an audio encoder,
# trained apart, might arrange digits alike, and a map between them would let a spoken "seven"
# retrieve pictures of sevens. Here is the idea in two dimensions: the same items, coloured by
# cluster, in two spaces that differ by a rotation.

# %%
import math

import torch

import mmcourse
from mmcourse import exercises, verify
from mmcourse.alignment import (
    Discriminator,
    clustered_points,
    hubness,
    k_occurrence,
    mean_cosine_criterion,
    precision_at_1,
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
# A Generative Adversarial Network can learn such a map without pairs: a *generator* maps space A
# into space B, a *discriminator* tries to tell mapped points from real ones, and when it can no
# longer tell, the map has put A's cloud on top of B's. Conneau et al. (2018),
# [*Word Translation Without Parallel Data*](https://arxiv.org/abs/1710.04087) (MUSE), made this
# work for word vectors with three choices: the map is **orthogonal** (it may turn and mirror the
# cloud, never stretch or squash it), the discriminator is **regularised** (smoothed labels, dropout
# on its input), and the adversarial map is only a **start**, finished by a closed form that needs no
# gradient at all. This lesson tests each choice against a simpler alternative, and finds that the
# adversarial stage itself matters only in a narrow range of cases.
#
# ## 1. The theory
#
# **Notation.** Source points $x_i \in \mathbb{R}^d$ are the rows of $X$ ($n_s \times d$), target
# points $y_j$ the rows of $Y$ ($n_t \times d$; in this lesson $y$ is a target point, not a label);
# both are centred and scaled to unit length, so a dot product is a cosine. A map is a $d \times d$
# matrix $W$ applied on the right: $x_i W$. It is orthogonal when $W^\top W = I$: lengths and angles
# survive.
#
# **With pairs: Procrustes.** Given $n$ pairs (row $i$ of $X$ goes with row $i$ of $Y$), the best
# orthogonal map solves
#
# $$W^\star = \arg\min_{W^\top W = I} \|XW - Y\|_F^2 = U V^\top, \qquad X^\top Y = U \Sigma V^\top .$$
#
# Expanding the norm leaves $-2\,\mathrm{tr}(W^\top X^\top Y)$ as the only term that depends on $W$;
# with the SVD, $\mathrm{tr}(W^\top U \Sigma V^\top) = \mathrm{tr}(\Sigma\, V^\top W^\top U)$, which
# is largest when $V^\top W^\top U = I$ (Schönemann 1966, [*A generalized solution of the orthogonal
# Procrustes problem*](https://doi.org/10.1007/BF02289451)). Mikolov, Le and Sutskever (2013),
# [*Exploiting Similarities among Languages for Machine
# Translation*](https://arxiv.org/abs/1309.4168), learned linear maps between word spaces from a few
# thousand dictionary pairs, with no constraint on $W$; Xing, Wang, Liu and Lin (2015), [*Normalized
# Word Embedding and Orthogonal Transform for Bilingual Word
# Translation*](https://aclanthology.org/N15-1104/), made the map orthogonal, which turns the
# problem into this one.
#
# **Without pairs: adversarial training.** A discriminator $D$ outputs the probability that a point
# is a mapped source point. It learns, on random source rows $x$ and random target rows $y$ (drawn
# independently: there are no pairs), to minimise a binary cross-entropy whose targets are smoothed
# by $\epsilon = 0.1$ (0.9 for mapped points, 0.1 for target points, instead of 1 and 0):
#
# $$\mathcal{L}_D = -\,\mathbb{E}_x\big[(1 - \epsilon)\log D(xW) + \epsilon \log\big(1 - D(xW)\big)\big]
#   - \mathbb{E}_y\big[\epsilon \log D(y) + (1 - \epsilon)\log\big(1 - D(y)\big)\big],$$
#
# while the map learns to make it say the opposite, with the targets swapped:
# $\mathcal{L}_W = -\,\mathbb{E}_x\big[\epsilon \log D(xW) + (1 - \epsilon)\log\big(1 - D(xW)\big)\big]$
# (the swapped target term has no $W$ in it, so it is left out). MUSE's recipe:
# $W$ starts at the identity, without bias; $D$ has dropout 0.1 on its input and two hidden layers
# with LeakyReLU(0.2); it trains five steps per step of $W$ (MUSE's code's default); and after every
# step of $W$,
#
# $$W \leftarrow (1 + \beta)\, W - \beta\, (W W^\top) W,$$
#
# which turns every singular value $s$ of $W$ into $(1 + \beta)s - \beta s^3$: values above 1
# shrink, values below 1 grow, and 1 stays (Cissé et al. 2017, [*Parseval
# Networks*](https://arxiv.org/abs/1704.08847)). That holds inside a basin, $0 < s <
# \sqrt{(1 + \beta) / \beta}$ (about 10 for $\beta = 0.01$); beyond it the step turns $s$ negative,
# flipping that direction, and for larger $s$ blows it up. A map that starts at the identity and
# moves by small steps stays far inside.
#
# **Refinement.** Map the source, take every pair $(i, j)$ where $y_j$ is $x_iW$'s best match *and*
# $x_iW$ is $y_j$'s best match (mutual nearest neighbours), solve Procrustes on those pairs, and
# repeat. If the start is roughly right, each round's pairs are better than the last.
#
# **Reading off pairs: CSLS.** Plain nearest neighbours suffer from *hubs*, targets that are the
# nearest neighbour of very many queries. Cross-domain similarity local scaling subtracts each
# point's average similarity to its $k = 10$ nearest neighbours in the other space:
#
# $$\mathrm{CSLS}(xW, y) = 2\cos(xW, y) - r_T(xW) - r_S(y).$$
#
# **Knowing without labels.** MUSE chooses among maps (the epochs of a run) by a mean cosine: it
# translates each of the 10,000 most frequent source words to its CSLS nearest target word and
# averages the cosines of these translations. This lesson uses a mutual-pair variant: the mean
# cosine over the pairs $(x_iW, y_j)$ that are *each other's* CSLS nearest neighbours, over all
# points (ours have no word frequencies). MUSE's counts every source word's translation, agreed or
# not; ours counts only the pairs both directions agree on. Either is near 1 when the map lays the
# clouds exactly on top of each other, and needs no labels, so you can compute it on any pair of
# spaces. We call ours *the criterion*.
#
# ## 2. Procrustes with pairs
#
# The synthetic spaces of this lesson: 1,500 items with structure at several scales, clusters of
# clusters of different sizes and shapes (`clustered_points`), in $d = 16$ dimensions. The
# *source* sees each item with a little noise; the *target* sees it with other noise, turned by a
# random rotation $R$ that turns each of its 8 planes by at most 86 degrees. Row $i$ of both is the
# same item, which only the evaluation may use.

# %%
spaces = experiments.synthetic_spaces(seed=0)
print("source:", tuple(spaces.source.shape), "| target:", tuple(spaces.target.shape))
print("angles of the planted rotation (degrees):", [round(math.degrees(a)) for a in rotation_angles(spaces.rotation)])

# %% [markdown]
# With every pair known, Procrustes is one SVD. Write it yourself first.
#
# ### Exercise 1: Procrustes from the SVD
#
# Write `my_procrustes(source, target)`: `source` and `target` are `(n, d)`, row $i$ of each a
# pair; return the orthogonal `(d, d)` matrix $W$ minimising $\|\text{source}\, W - \text{target}\|_F$.

# %%
def my_procrustes(source, target):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("procrustes", my_procrustes)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# `u, s, vh = torch.linalg.svd(source.T @ target)` gives $U$, $\Sigma$ and $V^\top$. The answer
# is `u @ vh`; the singular values are not needed. Note the order: `source.T @ target`, not the
# other way round (that would give $W^\top$).
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_procrustes(source, target):
    u, _, vh = torch.linalg.svd(source.T @ target)
    return u @ vh


exercises.check("procrustes", solution_procrustes, must_pass=True)

# %% [markdown]
# From here on the lesson uses the package's `procrustes`. Compare it with SciPy's
# `orthogonal_procrustes` (the same convention: it minimises $\|XW - Y\|_F$), and see how close it
# comes to $R$ (the noise keeps it from being exact):

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
# How many pairs are enough? Without noise, $d = 16$ pairs in general position pin $R$ down
# exactly: $X^\top Y = X^\top X R$, and $X^\top X$ is invertible. With fewer, some directions are
# free. With noise, every extra pair averages the noise down. The curves average five random sets of
# pairs (noise is the standard deviation added to each coordinate, where unit vectors in 16
# dimensions have coordinates of about $1/\sqrt{16} = 0.25$):

# %%
recovery = experiments.procrustes_recovery(seed=0)
views.procrustes_curves(recovery)
print("error with 16 noiseless pairs:", round(recovery["error"][0.0][recovery["pairs"].index(16)], 6),
      "| with 12:", round(recovery["error"][0.0][recovery["pairs"].index(12)], 3))
verify(recovery["error"][0.0][recovery["pairs"].index(16)] < 1e-6, "16 noiseless pairs recover the planted rotation exactly",
       relative_error=recovery["error"][0.0][recovery["pairs"].index(16)])

# %% [markdown]
# ## 3. Without pairs, adversarially
#
# Now forget the pairs. The discriminator for 16-dimensional points is small; it sees a batch as
# `(runs, B, d)` because the package can train several maps at once (section 4 uses that):

# %%
print(Discriminator(dim=16, hidden=32))

# %% [markdown]
# ### Exercise 2: find the bug
#
# This orthogonalisation step was copied from a tutorial. It passes the author's test: an
# orthogonal matrix stays where it is. Yet start from a map that is only *nearly* orthogonal, as
# every map is during training, and repeat the step:

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
# Find the bug and fix it in `my_orthogonalize`; the check runs it on matrices that are not
# orthogonal.

# %%
def my_orthogonalize(w, beta=0.001):
    # YOUR CODE HERE: a fixed copy of tutorial_orthogonalize
    raise NotImplementedError


exercises.check("orthogonalize", my_orthogonalize)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# Try it on a matrix that is not symmetric, such as the shear `torch.tensor([[1.0, 0.5], [0.0, 1.0]])`.
# The step must keep $W$'s singular *vectors* and move only its singular values: with
# $W = U S V^\top$, $W W^\top W = U S^3 V^\top$. What is $W^\top W W$?
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_orthogonalize(w, beta=0.001):
    return (1 + beta) * w - beta * w @ w.T @ w  # W W^T W = U S^3 V^T: only the singular values move


exercises.check("orthogonalize", solution_orthogonalize, must_pass=True)
fixed = repeat(solution_orthogonalize, nearly)
verify(torch.allclose(torch.linalg.svdvals(fixed), torch.ones(4), atol=1e-4),
       "2,000 fixed steps turn the nearly orthogonal W into an orthogonal one",
       singular_values=[round(v, 4) for v in torch.linalg.svdvals(fixed).tolist()])

# %% [markdown]
# The package's `orthogonalize` at work on a matrix that stretches one axis and squashes another:
# each step moves every singular value towards 1 (here with a large $\beta = 0.1$, to see it in a
# few steps).

# %%
from mmcourse.alignment import orthogonalize

w = torch.diag(torch.tensor([1.5, 1.0, 0.6]))
for step in range(4):
    print(f"after {step * 10:>2} steps, singular values:", [round(v, 3) for v in torch.linalg.svdvals(w).tolist()])
    for _ in range(10):
        w = orthogonalize(w, beta=0.1)

# %% [markdown]
# `experiments.unsupervised_alignment` runs the recipe: 300 steps of adversarial training from
# $W = I$ (five discriminator steps per map step, SGD with learning rate 0.1 for both), then 5 rounds
# of refinement. MUSE's code trains far longer: 5 epochs of a million samples in batches of 32,
# about 156,000 map steps, with $\beta = 0.001$; over our 300 steps the stronger $\beta = 0.01$ keeps
# $W$ from drifting far from orthogonal, though not on it (section 4 prints its singular values).
#
# A recipe needs a baseline. Refinement on its own needs only a starting map, and the simplest start
# is the identity, with no training at all. So the run compares five maps: the identity; the identity
# refined; the adversarial map; the adversarial map refined; and Procrustes on all 1,500 true pairs,
# the least-squares fit of the true pairs. It does so on two pairs of spaces that differ only in the
# planted rotation: the one above (largest angle 86 degrees), and the same rotation turned twice as
# far (172 degrees: one plane almost upside down). Every 30 steps the history stores $W$, the
# discriminator's accuracy, the criterion and, because here we know the truth, precision@1 (the
# fraction of source points whose CSLS nearest target is their own partner). In the same batched
# computation a third map trains without the orthogonalisation step, for section 4. A few seconds:

# %%
unsupervised = experiments.unsupervised_alignment(seed=0, progress=True)
history = unsupervised["result"].history
print("discriminator accuracy (recipe, 86 degrees):", {s: round(float(a[0]), 2) for s, a in
                                                       zip(history.step[::2], history.discriminator_accuracy[::2])})
turns = {turn: f"largest angle {math.degrees(angle):.0f} degrees" for turn, angle in experiments.TURNS.items()}
print(f"{'':<22}" + "".join(f"{label:>28}" for label in turns.values()))
print(f"{'map':<22}" + f"{'precision@1':>16}{'criterion':>12}" * len(turns))
for name in experiments.STARTS:
    print(f"{name:<22}" + "".join(f"{unsupervised['precision'][t][name]:>16.3f}{unsupervised['criterion'][t][name]:>12.4f}"
                                  for t in turns))
print(f"{'chance':<22}{unsupervised['chance']:>16.4f}  (one partner among 1,500 targets)")

# %% [markdown]
# Read the 86-degree columns first. The identity, before any training, already has a few percent of
# the partners right: the rotation turns some planes only a little. The adversarial map finds far
# more, and refinement from it finds nearly every partner without having seen a single pair, landing
# on the all-pairs map itself (the checks below print how far apart the two maps are). But look at
# the second row: refinement straight from the identity finds just as many. Here the adversarial
# stage adds nothing to the result. Refinement needs only a start whose mutual nearest neighbours
# contain enough right pairs for the first Procrustes step to turn the map the right way; each
# round's pairs are then better than the last, and a few percent of right partners is enough.
#
# The 172-degree columns are where the adversarial stage has a job. The identity has almost no
# partner right, and refinement from it goes nowhere. Adversarial training moves the map step by
# step from the identity towards one that overlaps the two clouds; if it gets close enough to find a
# few percent of the partners, refinement finishes the work (compare its two rows). It is a local
# search too: on seeds 0-9 at 172 degrees, refinement from the adversarial map found nearly every
# partner on 2 seeds and half of them on a third; on the other seven the adversarial map found about
# 1% of the partners or fewer, and refinement failed as well. So the adversarial stage is what lets
# the recipe start far from the answer, but a plane turned almost upside down is usually beyond its
# reach.
#
# Along the 86-degree run, over the recorded steps, the criterion rose as precision@1 did,
# without labels: the last check compares the order of the steps by each. Here precision@1 rises
# almost steadily, so the step number orders the steps just as well (printed beside it): this run
# shows that the criterion agrees with precision@1 within a run, not that it would pick a better
# step than the last. MUSE uses it to choose among epochs; testing that needs a run whose precision
# falls somewhere, which this one does not have. Section 5 reads off the translations one by one,
# with CSLS.

# %%
mild, large = unsupervised["precision"]["mild"], unsupervised["precision"]["large"]
experiments.ADVERSARIAL_BEATS_ITS_START.check(mild["adversarial"] - mild["identity"], adversarial=mild["adversarial"],
                                              identity=mild["identity"])
experiments.REFINEMENT_RECOVERS.check(mild["adversarial, refined"], with_all_pairs=mild["all pairs"])
experiments.REFINEMENT_MATCHES_PROCRUSTES.check(experiments.map_distance(unsupervised["maps"]["mild"]["adversarial, refined"],
                                                                         unsupervised["maps"]["mild"]["all pairs"]))
experiments.IDENTITY_REFINED_SUFFICES.check(abs(mild["identity, refined"] - mild["adversarial, refined"]))
experiments.IDENTITY_TOO_FAR.check(large["identity, refined"])
step_order = experiments.rank_correlation(history.step, [float(p[0]) for p in history.precision])
print(f"rank correlation with precision@1 over {len(history.step)} steps: criterion "
      f"{experiments.training_rank(unsupervised):.3f}, step number {step_order:.3f}")
experiments.CRITERION_TRACKS_TRAINING.check(experiments.training_rank(unsupervised))

# %% [markdown]
# ### See it: replay the training
#
# Move the slider through the training steps of the 86-degree run. Left: both spaces on the target's
# first two principal axes (the same axes throughout): the target in grey, the mapped source
# $xW_t$ in colour, one colour per top-level cluster. Middle: precision@1 (which needs labels) and
# the criterion (which does not) with a marker at the chosen step. Right: the discriminator's
# accuracy on the first 300 rows of each space (rows that training also draws from); 0.5 means it
# can no longer tell the spaces apart.

# %%
views.AdversarialReplay(spaces.source, spaces.target, spaces.cluster, history)

# %% [markdown]
# The coloured clusters slide onto the grey ones and the criterion climbs with precision@1. Read
# the discriminator's accuracy in the log above too: while the clouds are far apart it has easy
# differences to exploit, and the map's job is to remove them. The criterion is what you would
# watch in practice, since precision@1 needs the very dictionary you do not have.
#
# ## 4. Where it breaks
#
# ### When the spaces are not rotated copies
#
# Real spaces are never exact rotations of each other. Bend the target with a smooth non-linear
# warp, $z \mapsto z + \gamma \tanh(z M_1) M_2$, where $M_1$ and $M_2$ are random $d \times d$
# matrices (entries of variance $1/d$) and $\gamma$ sets the strength, and run the recipe on each
# (five runs at once, one batched computation, 100 steps each, a few seconds):

# %%
isometry = experiments.non_isometry(seed=0)
print(f"{'':>9}{'precision@1':>24}{'criterion':>24}")
print(f"{'warp':>9}{'refined':>12}{'all pairs':>12}{'refined':>12}{'all pairs':>12}")
for i, warp in enumerate(isometry["warps"]):
    print(f"{warp:>9.1f}{isometry['precision'][i]:>12.3f}{isometry['ceiling'][i]:>12.3f}"
          f"{isometry['criterion'][i]:>12.4f}{isometry['ceiling_criterion'][i]:>12.4f}")

# %% [markdown]
# Move the slider: the mapped source (colours) still lands on the target (grey), but point by
# point it fits less and less.

# %%
views.NonIsometryView(isometry)

# %% [markdown]
# From warp 1 on, precision@1 falls at every step of the warp, and the all-pairs map's falls with it
# (the check tests every step of both). At every warp the refined map finds about as many partners
# as the all-pairs map (checked: within 0.1). So what breaks is the data, not the unsupervised
# recipe: once the target is bent, no orthogonal map, however it was found, puts every point on its
# partner. Below warp 1 precision@1 falls too, by 0.007 to 0.063 from warp 0 to 0.5 on seeds 0-9, too
# little and too variable to check step by step.
#
# Now the criterion columns. The criterion moves far less than precision@1, and its level depends
# on the spaces, so a value near 1 does not by itself promise right partners. Refinement solves
# Procrustes on exactly the mutual pairs that the criterion averages over, so it raises the
# criterion whether or not those pairs are right. At warps 1.5 and 2 the criterion rated the refined
# map above the all-pairs map on every seed we ran, by little (0.0002 to 0.008), although the
# all-pairs map found more partners on most of them; at warps 0 and 0.5 the two are practically
# equal. (The all-pairs map is the least-squares fit of the true pairs, not the map that finds the
# most partners: at warp 2 the refined map found more on three seeds of ten.) So the criterion can
# follow one run, but it cannot referee between a refined map and a map made another way; compare
# refined maps with refined maps (section 6 does).

# %%
steps = experiments.warp_steps(isometry)
experiments.PRECISION_FALLS_WITH_WARP.check(min(steps["refined"] + steps["all pairs"]),
                                            refined=", ".join(f"{d:.3f}" for d in steps["refined"]),
                                            all_pairs=", ".join(f"{d:.3f}" for d in steps["all pairs"]))
experiments.REFINED_NEAR_CEILING.check(experiments.ceiling_gap(isometry))

# %% [markdown]
# ### Without orthogonalisation
#
# An unconstrained map could fool the discriminator by distorting the source cloud instead of
# turning it. Section 3 trained a map alongside the recipe, identical but without the
# orthogonalisation step ($\beta = 0$). Compare the singular values of the two adversarial maps
# (all 1 for an orthogonal map) and what each finds before and after refinement:

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
# Without the step, the map stretches some directions and squashes others (checked: by more than a
# quarter each way): it distorts the cloud to fool the discriminator instead of turning it. The
# recipe's map (the first line) stays nearer orthogonal, though not on it: each step of
# $\beta = 0.01$ pulls the singular values only part of the way back after every gradient step,
# which is why MUSE's long run can afford a gentler $\beta$. The distorted map also found fewer
# partners on every seed we ran (seeds 0-9), by 0.015 to 0.23, amounts too variable to claim.
# Refinement replaces whatever it
# gets by an orthogonal map, and here it removes the difference entirely: both refined maps find the
# same partners (checked). On these spaces orthogonalisation improves the adversarial map, not the
# final result.
#
# ### A stronger discriminator
#
# A common piece of GAN advice is to keep the discriminator from winning, and MUSE regularises its
# own: smoothed targets and dropout on its input, practices from GAN training (Salimans et al. 2016,
# [*Improved Techniques for Training GANs*](https://arxiv.org/abs/1606.03498), smooth the real
# targets so that the discriminator does not grow overconfident; MUSE smooths both sides). Does a
# stronger discriminator hurt the map?
# Train the recipe once more on the 86-degree spaces with 10 discriminator steps per map step instead
# of 5, everything else equal (about a second):

# %%
stronger = experiments.stronger_discriminator(seed=0)
print(f"precision@1 of the adversarial map: {experiments.DISCRIMINATOR_STEPS} discriminator steps {mild['adversarial']:.3f}, "
      f"{stronger['discriminator_steps']} steps {stronger['precision']:.3f}")
print("discriminator accuracy (10 steps):", {s: round(float(a[0]), 2) for s, a in
                                             zip(stronger["result"].history.step[::2],
                                                 stronger["result"].history.discriminator_accuracy[::2])})
experiments.STRONGER_DISCRIMINATOR_HELPS.check(stronger["precision"] - mild["adversarial"])

# %% [markdown]
# Here the stronger discriminator gives the better map. The map learns only what the discriminator's
# gradient tells it, and a discriminator that has learned more tells it more. Nor does a confident
# discriminator starve the map of gradient here: for each mapped point the map's loss is the binary
# cross-entropy with the swapped target $\epsilon = 0.1$, whose derivative with respect to the
# discriminator's logit $l$ is $\sigma(l) - 0.1$, largest when the discriminator is surest that the
# point is a mapped one. **Try it:** `mmcourse.alignment.adversarial_alignment(spaces.source,
# spaces.target, truth=spaces.truth, smoothing=0.0, dropout=0.0)`, then the same with
# `discriminator_steps=10` as well, and compare precision@1 and the discriminator's accuracy. On
# seeds 0-9, removing smoothing and dropout raised the adversarial map's precision@1 on every seed
# (by 0.14 to 0.30); all three changes together raised it further on nine seeds, while on the tenth
# the discriminator became nearly perfect (accuracy 0.998) and the map found almost nothing (0.04).
# None of it changed the final result: refinement found nearly every partner from each of these
# maps, as it does from the identity at 86 degrees.
#
# ### A symmetric space aligns to a reflection
#
# Distribution matching can only find what makes the clouds overlap. If the source is symmetric,
# say every point has a mirror twin across some hyperplane (a reflection $H$), then the true map
# $R$ and the wrong map $HR$ put exactly the same cloud on the target, and no criterion without
# labels can choose:

# %%
mirror = experiments.mirror_symmetric(seed=0)
print("criterion:", {k: round(v, 6) for k, v in mirror["criterion"].items()},
      "| precision@1:", {k: round(v, 3) for k, v in mirror["precision"].items()})
verify(abs(mirror["criterion"]["true"] - mirror["criterion"]["mirrored"]) < 1e-5
       and mirror["precision"]["mirrored"] < 0.01,
       "the mirrored map scores the same criterion as the true one, yet finds no partner", **mirror["criterion"])

# %% [markdown]
# Real spaces are rarely exactly symmetric, but approximate symmetries (a few similar clusters, a
# cloud that looks the same turned by 180 degrees in some plane) fill the adversarial landscape
# with such traps, and adversarial training is a *local* search from the identity: section 3 saw it
# fail at 172 degrees on most seeds. **Try it:** build `experiments.synthetic_spaces(seed,
# max_angle=2.5)` (143 degrees) for a few seeds, run `mmcourse.alignment.adversarial_alignment` on
# each and refine with `mmcourse.alignment.refine`, from the adversarial map and from
# `torch.eye(16)`: how often does each start find the partners?
#
# ## 5. Hubness and CSLS
#
# In high dimensions, a few points are the nearest neighbour of very many others (Radovanović,
# Nanopoulos and Ivanović 2010, [*Hubs in Space*](https://jmlr.org/papers/v11/radovanovic10a.html)).
# Count, for each target, how many source points have it among their 10 nearest neighbours: its
# *k-occurrence* $N_{10}$. Without hubs every target would get about 10; a long right tail, measured
# by the skewness of $N_{10}$, means hubs. Take the warped spaces (warp 1.0), align them with the
# best orthogonal map, and retrieve with plain cosine and with CSLS:

# %%
hubs = experiments.hubness_and_csls(seed=0)
for name in ("cosine", "csls"):
    h = hubs[name]["hubness"]
    print(f"{name:>6}: precision@1 {hubs[name]['precision']:.3f} | skewness of N_10 {h.skewness:.2f}, "
          f"largest N_10 {h.largest}, targets never retrieved {h.never:.1%}")
views.occurrence_histograms(hubs)

# %% [markdown]
# Both numbers come from `k_occurrence` and `hubness`. Here they are for the cosine scores, with
# the skewness written out, $\mathbb{E}[(N_{10} - \mu)^3] / \sigma^3$ (the tests check `hubness`
# against `scipy.stats.skew`):

# %%
warped = experiments.synthetic_spaces(seed=0, warp_strength=experiments.HUB_WARP)
cosine = torch.nn.functional.normalize(warped.source @ procrustes(warped.source, warped.target), dim=1) @ warped.target.T
occurrence = k_occurrence(cosine, k=10).double()
print("N_10 of the first ten targets:", occurrence[:10].int().tolist(), "| mean:", occurrence.mean().item())
centred = occurrence - occurrence.mean()
skewness = (centred.pow(3).mean() / centred.pow(2).mean().pow(1.5)).item()
verify(abs(hubness(cosine, k=10).skewness - skewness) < 1e-9, "hubness() gives the skewness of N_10",
       skewness=skewness)

# %%
experiments.CSLS_RAISES_PRECISION.check(hubs["csls"]["precision"] - hubs["cosine"]["precision"])
experiments.CSLS_LOWERS_HUBNESS.check(hubs["cosine"]["hubness"].skewness - hubs["csls"]["hubness"].skewness)

# %% [markdown]
# A hub is a target close to everything; CSLS charges it for that popularity ($r_S(y)$ is large)
# and gives targets in sparse regions a bonus, so queries spread over more targets and more of
# them find their own partner.
#
# ### Exercise 3: CSLS scores
#
# Write `my_csls(mapped_source, target, k)`: `mapped_source` is `(n_s, d)`, `target` `(n_t, d)`;
# return the `(n_s, n_t)` matrix $2\cos(x, y) - r_T(x) - r_S(y)$, where $r_T(x)$ is the mean cosine
# of $x$ to its `k` most similar targets and $r_S(y)$ the mean cosine of $y$ to its `k` most similar
# mapped source points.

# %%
def my_csls(mapped_source, target, k):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("csls_scores", my_csls)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# Normalise the rows first (`torch.nn.functional.normalize(a, dim=1)`); then `cos = a @ b.T`.
# `cos.topk(k, dim=1).values.mean(1)` is $r_T$ for every row, and `dim=0` gives $r_S$ for every
# column. Broadcast them: `r_t[:, None]` and `r_s[None, :]`.
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_csls(mapped_source, target, k):
    a = torch.nn.functional.normalize(mapped_source, dim=1)
    b = torch.nn.functional.normalize(target, dim=1)
    cos = a @ b.T
    return 2 * cos - cos.topk(k, dim=1).values.mean(1)[:, None] - cos.topk(k, dim=0).values.mean(0)[None, :]


exercises.check("csls_scores", solution_csls, must_pass=True)

# %% [markdown]
# With the package's `csls_scores`, reading off the translations of section 3's refined map is one
# line each: map, score with CSLS, take the best target.

# %%
from mmcourse.alignment import csls_scores

mapped = spaces.source @ unsupervised["maps"]["mild"]["adversarial, refined"]
scores = csls_scores(mapped, spaces.target)
print("first five source points translate to targets", scores.argmax(1)[:5].tolist())
print(f"precision@1 {precision_at_1(scores, spaces.truth):.3f} | criterion {mean_cosine_criterion(mapped, spaces.target):.4f}")

# %% [markdown]
# ## 6. Across modalities
#
# Now the real question: do two modalities, learned apart, share a shape? Take AV-Digits (images
# of handwritten digits, spoken digits from voices unseen in training). Train an image classifier
# on images and their digit labels only, and an audio classifier on sounds and their digit labels
# only; their encoders' 32-dimensional outputs are the two spaces. No image ever meets a sound, but
# note that both spaces were shaped by the **digit labels of their own modality**. About three
# seconds:

# %%
from mmcourse.data import load_av_digits

av = load_av_digits(seed=0)
encoders = experiments.train_unimodal_encoders(seed=0, data=av, progress=True)
print("test accuracy of each classifier:", {k: round(v, 3) for k, v in encoders["accuracy"].items()})

# %% [markdown]
# Map the spoken digits into the image space three ways: (a) Procrustes on every training pair,
# (b) Procrustes on ten pairs, one per digit (the results average ten random choices of the ten
# pairs, since a single choice can be lucky or unlucky), (c) the unsupervised recipe with no pairs
# at all; and, as a baseline that knows nothing, (d) orthogonal maps drawn at random (ten of them,
# averaged). Then let each spoken test digit retrieve test images, ranked by cosine, and count a hit
# when an image shows the spoken digit: Recall@1, @5 and @20 with their exact chance levels, and how
# many different digits a query's top five images show (the mean over queries), on the same test
# split as lesson 02. Linear CCA from lesson 02 (all pairs, no labels) sits next to them:

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

# %%
all_pairs, ten = cross["all pairs"]["retrieval"], cross["10 pairs"]["retrieval"]
experiments.ALL_PAIRS_RETRIEVE.check(all_pairs.recall_at_1 / all_pairs.chance_at_1, recall1=all_pairs.recall_at_1,
                                     chance1=all_pairs.chance_at_1)
experiments.TEN_PAIRS_RETRIEVE.check(ten.recall_at_5 - ten.chance_at_5, recall5=ten.recall_at_5, chance5=ten.chance_at_5)
(rotation20, chance20), (unsupervised20, _) = (cross[name]["recall_at"][20] for name in (experiments.RANDOM, "no pairs"))
experiments.RANDOM_ROTATION_BELOW_CHANCE.check(rotation20 - chance20, recall20=rotation20, chance20=chance20)
experiments.NO_PAIRS_BELOW_CHANCE.check(unsupervised20 - chance20, recall20=unsupervised20, chance20=chance20)
experiments.RANDOM_ROTATION_CONFIDENT.check(cross["random_distinct"] - cross[experiments.RANDOM]["distinct"],
                                            random_ranking=cross["random_distinct"], random_rotation=cross[experiments.RANDOM]["distinct"])

# %% [markdown]
# With pairs, an orthogonal map between two separately trained encoders retrieves the right digit
# far above chance. Ten pairs, one per digit, already retrieve above chance, though less well: they
# pin down at most ten of the map's 32 dimensions. Without pairs, the recipe that recovered the
# synthetic rotation lands among the random rotations: at Recall@20 both fall far below chance,
# below ranking the images at random. How can a map do worse than no information at all? Look at
# the "top-5 digits" column. A random ranking spreads its five picks over about four different
# digits, so one of them is often the spoken digit: that is chance Recall@5, and over twenty picks
# a random ranking shows the spoken digit about nine times in ten. A rotation, any rotation, keeps
# the image space's clusters: a spoken digit lands somewhere in that space, and its nearest images
# come from one region, showing only two or three digits (checked for the random rotations: at
# least one digit fewer than a random ranking). When the map sends the query to the right region,
# as it often does with pairs, retrieval beats chance; when the map knows nothing, the region is
# right only by luck, and twenty neighbours from one or two wrong digits miss far more often than
# twenty random images. So falling below chance at Recall@20 is what any rotation of these
# clustered spaces does when it does not know the pairs, and the unsupervised map does it too.
#
# It does no better than the random rotations at the top of the ranking either: on seeds 0-9 its
# Recall@1 minus theirs ranged from -0.11 to +0.06, and its Recall@5 minus theirs from -0.26 to
# +0.15, above on some seeds and below on most, while ten pairs were 0.16 to 0.27 above the random
# rotations at Recall@1 on every seed. These differences vary too much from seed to seed for the
# course to claim a bound. Against chance, the unsupervised map was below it at Recall@5 on every
# seed we ran, but by as little as 0.01 on one, and at Recall@1 on seven seeds of ten; the checks
# test Recall@20. This is the row of unsupervised alignment in the course's running comparison
# (lesson 07), and the reason it sits at or below chance there. The three rows of (a) to (c) join that
# comparison as printed above; their "labels" column says "training", since each encoder learned
# its space as a classifier of its own modality's digits (lesson 02's CCA used labels only to choose
# its ridge). They are kept for lesson 07:

# %%
rows = experiments.comparison_rows(cross)
print(comparison.table(rows))
comparison.keep("alignment", seed=0, entries=rows)

# %% [markdown]
# Why does the recipe fail here? Look at the criterion column: even the best orthogonal map (all
# pairs) leaves the mutual neighbours far apart. Far compared with what? Not with the synthetic
# rotated copies of section 3: those were other spaces, and the criterion's level depends on the
# spaces (section 4). The fair baseline is two encoders of the *same* modality, trained the same way
# on the same data from another random start, aligned the way audio and image are. An audio-image
# pair shares only its digit: the sound and the picture are different inputs. So pair rows the same
# way: split the training rows into two halves, pair each row of the first half with a row of the
# second half that shows the same digit, fit Procrustes on those pairs from the first encoder (first
# half) to its twin (second half), and compute the criterion half against half; audio to image is
# measured the same way, on the same pairs of rows. (Pairing each row with itself would compare one
# input embedded twice, a far easier match.) Train the second pair of encoders (about three
# seconds):

# %%
second = experiments.train_unimodal_encoders(seed=0, data=av, train_seed=experiments.SECOND_SEED, progress=True)
controls = experiments.same_modality_controls(encoders, second, seed=0)
for name in ("image", "audio"):
    print(f"{name} -> {name} (another seed), digit pairs across halves: criterion {controls[name]['criterion']:.3f}")
print(f"audio -> image, the same pairs of rows: criterion {controls['audio -> image']['criterion']:.3f}")
experiments.SPACES_NOT_ISOMETRIC.check(experiments.isometry_gap(controls))

# %% [markdown]
# Two image encoders overlap more closely than image and audio do, and so do two audio encoders,
# though paired fairly the gap is a few hundredths of the criterion, not more. The heatmaps above
# show where the difference lies. Each is the cosine similarity between the ten digits' average
# embeddings, a picture of the space's shape that no rotation can change. If the spaces were
# rotated copies, the two matrices would be equal. Each classifier was trained only to separate
# its ten digits, and which digits end up near each other follows from its own modality: a "one"
# that looks like a "seven" to the image model has nothing to do with "one" sounding like "nine" to
# the audio model. The correlation between two such matrices' off-diagonal entries, for image
# against audio and for each encoder against its twin:

# %%
print(f"digit geometries, image vs audio: {cross['geometry_correlation']:.2f}")
for name in ("image", "audio"):
    print(f"digit geometries, {name} vs {name} (another seed): {controls[name]['geometry_correlation']:.2f}")
experiments.GEOMETRIES_DIFFER.check(cross["geometry_correlation"])
experiments.SAME_MODALITY_GEOMETRIES_AGREE.check(min(controls[m]["geometry_correlation"] for m in ("image", "audio")))

# %% [markdown]
# The arrangement is no accident of one training run: a second image encoder, from another random
# start, arranges the digits much as the first does, and so does a second audio encoder. It is the
# modalities that differ, and with them the shape that unsupervised alignment relies on: there is
# no turn of the audio space that puts each digit on its image digit, so nothing guides the recipe
# towards the right map.
#
# Nor can the criterion warn you. In the table the unsupervised map scores a higher criterion than
# the map from all pairs, but that comparison is the unfair one of section 4: refinement raises the
# criterion of whatever it refines, and the all-pairs map was not refined. Refine it too, and three
# of the ten random rotations:

# %%
before, after = cross["unrefined_criterion"], cross["refined_criterion"]
for name, label in (("all pairs", "all pairs"), (experiments.RANDOM, f"{experiments.REFINED_ROTATIONS} random rotations")):
    print(f"{label:<20} criterion {before[name]:.3f}, refined {after[name]:.3f}")
print(f"{'no pairs':<20} criterion {cross['no pairs']['criterion']:.3f} (refined already)")
experiments.REFINEMENT_INFLATES_CRITERION.check(experiments.refinement_lift(cross))
experiments.CRITERION_CANNOT_TELL.check(abs(cross["no pairs"]["criterion"] - after["all pairs"]),
                                        no_pairs=cross["no pairs"]["criterion"], all_pairs_refined=after["all pairs"])

# %% [markdown]
# Refinement lifts even a random rotation's criterion most of the way (checked: by more than 0.3),
# and refined against refined the unsupervised map lands within 0.03 of the all-pairs map (checked;
# above it on some seeds, below on others). The criterion cannot tell a map that retrieves like a
# random rotation from one fitted on every pair. With no shared shape, many maps overlap the clouds
# about equally well; the recipe finds one of them, and refinement polishes its own pairs.
#
# That is the lesson of Søgaard, Ruder and Vulić (2018), [*On the Limitations of Unsupervised
# Bilingual Dictionary Induction*](https://arxiv.org/abs/1805.03620), for distant languages, and it
# holds with more force between modalities: unsupervised alignment needs spaces that really share
# their geometry, and a handful of pairs is worth more than any amount of adversarial training
# when they do not.
#
# ## 7. Image to text, with an adversarial term
#
# Adversaries also appear *with* pairs. Adversarial cross-modal retrieval (ACMR: Wang, Yang, Xu,
# Hanjalic and Shen 2017, [*Adversarial Cross-Modal
# Retrieval*](https://doi.org/10.1145/3123266.3123326)) projects images and texts into a common
# space, trained with a triplet loss and a label-classification loss, while a modality classifier,
# the adversary, tries to tell which modality a projected point came from. Here is the simplest
# form of that idea: map image features to text features by regression, and add an adversarial
# term so that mapped images look like real text embeddings. Regression predicts the *average*
# caption for an image, which is smoother than any real caption; the hope is that the adversarial
# term sharpens predictions and reduces hubs. On Shapes: image features are the mean colour of each
# 4x4 block (192 numbers), text features are bag-of-words counts of the caption; the same linear
# map and optimiser, 300 steps, with adversarial weight 0 (plain regression), 0.1 and 1 (a few
# seconds in all):

# %%
captions = experiments.image_to_caption(seed=0)
print("chance:", {k: round(v, 4) for k, v in captions["chance"].items()})
for weight in captions["weights"]:
    print(f"adversarial weight {weight:>3}: Recall@1, 5, 10 = {[round(v, 3) for v in captions[weight]['recall'].values()]}, "
          f"skewness of N_10 = {captions[weight]['hubness'].skewness:.2f}")
views.caption_results(captions)

# %%
gain = experiments.caption_gains(captions)
experiments.ADVERSARIAL_TERM_NO_HELP.check(max(gain.values()), change_at_weight_0_1=gain[0.1], change_at_weight_1=gain[1.0])
experiments.ADVERSARIAL_TERM_LOWERS.check(sum(gain.values()) / len(gain))

# %% [markdown]
# The adversarial term does not help here: neither weight raises Recall@5 (the first check prints
# both changes), and on average over the two weights it lowers it (the second). On seeds 0-9 it
# lowered Recall@5 at both weights on every seed, by 0.022 to 0.069 at weight 0.1 and by 0.059 to
# 0.158 at weight 1: more than batch order alone moves plain regression (a standard deviation of
# 0.004 to 0.013 over five batch orders), though too variable from seed to seed to claim weight by
# weight. The hoped-for drop in hubs went the other way: the skewness of $N_{10}$ rose at weight 0.1
# on all ten seeds (by 0.10 to 1.23) and at weight 1 on nine. With a linear map and bag-of-words
# targets there is little to sharpen, and the discriminator's "look like a caption" competes with
# "be this image's caption". ACMR itself is a
# different design (deep projections of both modalities, triplet and label losses, a modality
# classifier as the adversary); what this section tested is only the simplest form of its idea,
# and the lesson is to measure before you add a loss.

# %% [markdown]
# ## Summary
#
# - An orthogonal map turns one embedding space onto another without distorting it. With pairs it
#   has a closed form, Procrustes: $W = UV^\top$ from the SVD of $X^\top Y$; $d$ noiseless pairs
#   determine it, noisy ones average out.
# - Without pairs, MUSE learns $W$ by fooling a discriminator: identity start, orthogonalisation
#   after every step, a regularised discriminator (input dropout, label smoothing), then Procrustes
#   refinement on mutual nearest neighbours. On spaces that are rotated copies it recovers the map a
#   full dictionary gives.
# - Refinement does most of the work. When the rotation is mild, refining the identity finds nearly
#   every partner just as well, and the adversarial stage adds nothing to the result; it matters when
#   the identity is too far for refinement, and there it is a local search that often fails too. A
#   stronger discriminator gave a better adversarial map, and the map trained without
#   orthogonalisation was distorted, but neither changed the refined result here.
# - The criterion, here the mean cosine of mutual CSLS neighbours (MUSE's averages one-way
#   translations), needs no labels. Within one training run it rose with precision@1; but its level
#   depends on the spaces, refinement inflates it (compare refined maps only with refined maps),
#   and high overlap is necessary, not sufficient: a symmetric space overlaps its mirror image
#   perfectly.
# - Hubs spoil nearest-neighbour retrieval; CSLS penalises them, lowering the skewness of the
#   k-occurrence and raising precision@1.
# - Across modalities, separately trained encoders did not share their geometry, while two encoders
#   of one modality did: Procrustes with pairs (even ten) retrieves above chance; unsupervised
#   alignment does no better than a random rotation, and like one falls below chance at Recall@20,
#   because any rotation of these clustered spaces sends a query to one region of the image space;
#   refined against refined, its criterion is level with the all-pairs map's and gives no warning.
#   Check the geometry before you trust an unsupervised map.
# - An adversarial term on top of regression is not a free gain: here it lowered Recall@5 on average
#   over the two weights and raised it at neither.
#
# **Further reading.**
# Artetxe, Labaka and Agirre (2018), [*A robust self-learning method for fully unsupervised
# cross-lingual mappings of word embeddings*](https://arxiv.org/abs/1805.06297) (VecMap): a
# non-adversarial start from similarity distributions, which are the same in both spaces whatever
# the rotation, then the same self-learning loop as refinement.
# Søgaard, Ruder and Vulić (2018), [*On the Limitations of Unsupervised Bilingual Dictionary
# Induction*](https://arxiv.org/abs/1805.03620): when the spaces are not isomorphic, unsupervised
# methods fail, and a measure of isomorphism predicts when.
# Dinu, Lazaridou and Baroni (2015), [*Improving zero-shot learning by mitigating the hubness
# problem*](https://arxiv.org/abs/1412.6568): hubs in cross-modal mapping.
# Lesson 05 learns one shared space for both modalities with a variational autoencoder; lesson 07
# learns it contrastively from pairs and shows the running comparison of speech-to-image retrieval.
