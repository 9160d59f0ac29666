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
# # Lesson 02: Canonical correlation analysis
#
# **What you will learn:** how canonical correlation analysis (CCA) finds what two modalities have
# in common; how to compute it in closed form by whitening and one singular value decomposition;
# why it overfits when features are many and samples few, and how a ridge fixes that; how to
# retrieve images with spoken queries in the shared space; how Deep CCA learns non-linear views,
# and when it does not beat the linear method; and how to spot a square root taken in the wrong
# sense. **Time:** about 50 minutes. **Runs on:** any laptop CPU in well under a minute.
#
# A handwritten 7 and a spoken "seven" look nothing alike: 64 pixels on one side, a spectrogram
# on the other. Yet they carry the same meaning. If you had a direction in pixel space and a
# direction in spectrogram space along which the two move together, you could compare an image
# with a sound directly, in a space the two modalities *share*. CCA finds such pairs of directions
# from paired examples alone, with no labels: it is the classical answer to the **alignment** and
# **representation** challenges of lesson 00.

# %%
import torch

from mmcourse import exercises, verify
from mmcourse.cca import CCA, cca_loss, inverse_sqrt
from mmcourse.data import DIGIT_NAMES, load_av_digits, make_two_views
from mmcourse.diagnostics import paired_difference
from mmcourse.experiments import cca as experiments
from mmcourse.experiments import comparison
from mmcourse.views import cca as views

# %% [markdown]
# ## A picture first
#
# Take two views of 500 samples, each view in two dimensions, so that you can see them. The data
# comes from `make_two_views`: a shared hidden cause shows up in both views, mixed by a different
# random linear map in each. CCA finds one direction $w_x$ in the plane of view x and one
# direction $w_y$ in the plane of view y. Below, each sample has the same colour in both panels:
# its position along $w_x$. The colours line up along $w_y$ too, and the third panel shows the
# two projections $w_x^\top x$ and $w_y^\top y$ against each other.

# %%
small = make_two_views(n=500, dim_x=2, dim_y=2, correlations=(0.9, 0.2), seed=0)
cca = CCA(n_components=2).fit(small.x, small.y)
views.cca_picture(small, cca)

# %% [markdown]
# Compare that correlation with the best you can find between any *raw* coordinate of x and any
# raw coordinate of y:

# %%
raw = torch.corrcoef(torch.cat([small.x, small.y], 1).T)[:2, 2:].abs().max()
print(f"best raw correlation: {raw:.2f} | first canonical correlation: {cca.canonical_correlations_[0]:.2f}")

# %% [markdown]
# ## The theory
#
# Hotelling (1936), [*Relations between two sets of variates*](https://doi.org/10.1093/biomet/28.3-4.321),
# asked for the linear combination of one set of variables that is most correlated with a linear
# combination of another. Write the centred views as $x \in \mathbb{R}^p$ and $y \in \mathbb{R}^q$,
# their covariances $C_{xx}$, $C_{yy}$ and their cross-covariance $C_{xy}$. The correlation of the
# projections $w_x^\top x$ and $w_y^\top y$ is
#
# $$\rho(w_x, w_y) = \frac{w_x^\top C_{xy} w_y}{\sqrt{w_x^\top C_{xx} w_x}\,\sqrt{w_y^\top C_{yy} w_y}} .$$
#
# It does not change when you scale $w_x$ or $w_y$, so fix the scale by asking for unit variance,
# $w_x^\top C_{xx} w_x = w_y^\top C_{yy} w_y = 1$, and maximise $w_x^\top C_{xy} w_y$. Setting the
# gradient of the Lagrangian to zero gives a **generalised eigenproblem**:
#
# $$\begin{pmatrix} 0 & C_{xy} \\ C_{yx} & 0 \end{pmatrix} \begin{pmatrix} w_x \\ w_y \end{pmatrix}
#   = \rho \begin{pmatrix} C_{xx} & 0 \\ 0 & C_{yy} \end{pmatrix} \begin{pmatrix} w_x \\ w_y \end{pmatrix}.$$
#
# **Whitening** makes it an ordinary one. Substitute $a = C_{xx}^{1/2} w_x$ and $b = C_{yy}^{1/2} w_y$:
# the constraints become $\|a\| = \|b\| = 1$ and the objective becomes $a^\top T b$ with
#
# $$T = C_{xx}^{-1/2}\, C_{xy}\, C_{yy}^{-1/2} = U S V^\top .$$
#
# The unit vectors that maximise $a^\top T b$ are the top singular vectors of $T$, and the maximum is
# its top singular value. So the **canonical correlations are the singular values of $T$**, and the
# canonical directions are $w_x = C_{xx}^{-1/2} U$, $w_y = C_{yy}^{-1/2} V$. The next singular
# vectors give the next pairs; since singular vectors are orthogonal, the projections of different
# pairs are uncorrelated. In words: whiten each view (make its covariance the identity), then find
# the directions where the whitened views agree most.
#
# ## Build it
#
# Here is the whole method on the 2-D data, with the package's `inverse_sqrt` for $C^{-1/2}$
# (you write your own in the first exercise). It matches what `CCA.fit` learned:

# %%
x, y = small.x - small.x.mean(0), small.y - small.y.mean(0)
n = len(x)
cxx, cyy, cxy = x.T @ x / (n - 1), y.T @ y / (n - 1), x.T @ y / (n - 1)
T = inverse_sqrt(cxx) @ cxy @ inverse_sqrt(cyy)
print("singular values of T:      ", torch.linalg.svdvals(T))
print("CCA.canonical_correlations_:", cca.canonical_correlations_)

# %% [markdown]
# `mmcourse.cca.CCA` follows scikit-learn's estimator API: `fit(X, Y)` returns the estimator, what it
# learned ends in an underscore (`x_weights_`, `y_weights_`, `canonical_correlations_`, `x_mean_`),
# and `transform` projects new data. Open `mmcourse/cca.py` (or run `CCA??`) to read it: about
# twenty lines of `fit`. One difference from the cell above: `fit` whitens with the inverse of a
# Cholesky factor, $K = L^{-1}$ where $C = L L^\top$, instead of $C^{-1/2}$. Any matrix with
# $K C K^\top = I$ whitens, and the SVD undoes the rotation between two of them, so the directions
# come out the same, and a Cholesky factor is cheaper to compute than an eigendecomposition.
#
# ## Does it find the correlations we planted?
#
# Now a harder case: x in 10 dimensions, y in 8, three planted canonical correlations 0.9, 0.7
# and 0.4 hidden under random mixing, 2,000 training samples and 2,000 more held out. An estimate
# of a correlation $\rho$ from $n$ samples has a standard error of about $(1 - \rho^2)/\sqrt{n}$.
# The claim allows four of them for each of the six estimates: a correct estimator misses that
# in fewer than one run of 2,000, so a miss would mean a wrong method, not bad luck.

# %%
recovered = experiments.recover_correlations(seed=0)
for name in ("true", "train", "held_out", "standard_error"):
    print(f"{name:>15}:", [round(r, 3) for r in recovered[name].tolist()])

# %%
experiments.RECOVERS_PLANTED.check(recovered["worst"])

# %% [markdown]
# The projections of the training data have exactly these correlations, pair by pair, and different
# pairs are uncorrelated. Look at the correlation matrix of the six projections (three of x, then
# three of y):

# %%
planted = make_two_views(n=2000, dim_x=10, dim_y=8, correlations=(0.9, 0.7, 0.4), seed=0)
cca = CCA(n_components=3).fit(planted.x, planted.y)
u, v = cca.transform(planted.x, planted.y)
corr = torch.corrcoef(torch.cat([u, v], 1).T)
print(corr.numpy().round(3))
expected = torch.eye(6, dtype=corr.dtype)
expected[:3, 3:] = expected[3:, :3] = torch.diag(cca.canonical_correlations_)
verify((corr - expected).abs().max() < 1e-8,
      "pair i correlates exactly canonical_correlations_[i]; all other pairs of projections are uncorrelated",
      largest_deviation=(corr - expected).abs().max())

# %% [markdown]
# ## Against scikit-learn
#
# scikit-learn's `CCA` solves the same problem differently: NIPALS, an iterative algorithm that finds
# one pair at a time by alternating regressions, then removes it from the data ("deflation") and
# starts again. Its weights have a different scale and possibly a different sign, so compare what
# must agree: the correlations of the projected data. The timings are medians of nine fits of each,
# taken in turn and restricted to one thread, so that the machine's other work affects both alike.
# They depend on your machine (`benchmarks/cca_fit.py` times more sizes).

# %%
versus = experiments.against_sklearn(seed=0)
print("ours:   ", [round(r, 6) for r in versus["ours"].tolist()])
print("sklearn:", [round(r, 6) for r in versus["sklearn"].tolist()])
print(f"fit time: ours {1000 * versus['seconds_ours']:.1f} ms | scikit-learn {1000 * versus['seconds_sklearn']:.1f} ms "
      f"| ratio {versus['speedup']:.1f}x")

# %%
verify(versus["difference"] < 1e-3, "our CCA and scikit-learn's find the same canonical correlations",
       largest_difference=versus["difference"])

# %% [markdown]
# ## Overfitting, and the ridge that cures it
#
# CCA looks for *any* pair of directions that agree on the training set. With many features and few
# samples it always finds some, even in pure noise: once $p + q$ exceeds the number of samples, the
# spans of the two views' columns must intersect, and the training correlation is exactly 1.
#
# The cure is a ridge. Add $\lambda I$ to each covariance, $C_{xx} + \lambda I$ and $C_{yy} + \lambda I$
# (the *canonical ridge* of Vinod (1976), [*Canonical ridge and econometrics of joint
# production*](https://doi.org/10.1016/0304-4076(76)90010-5)). A large $\lambda$ stops trusting the
# noisy covariances and favours directions in which the data varies a lot; as $\lambda \to \infty$
# CCA turns into partial least squares, which maximises covariance instead of correlation. This
# helps when the signal lives in high-variance directions, as it does in most real measurements.
#
# The data below has 100 training samples with 60 features per view: three correlated causes spread
# over all features, plus independent noise on each feature.

# %%
wide = experiments.many_features(seed=0)
print("x:", tuple(wide.x.shape), "y:", tuple(wide.y.shape), "held out:", tuple(wide.x_test.shape))
over = experiments.overfitting(seed=0, reg=0.3)
for name in ("plain_train", "plain_held_out", "ridge_train", "ridge_held_out"):
    print(f"{name:>15}:", [round(r, 3) for r in over[name].tolist()])

# %%
verify(over["plain_train"].min() > 0.999, "with 120 features and 100 samples, every training correlation is 1",
       smallest_train=over["plain_train"].min())
experiments.PLAIN_HELD_OUT_NEAR_ZERO.check(over["plain_held_out"].abs().max())
experiments.RIDGE_RESTORES.check(over["ridge_held_out"][0], plain=over["plain_held_out"][0])
experiments.RIDGE_GAIN.check(over["ridge_held_out"][0] - over["plain_held_out"][0])

# %% [markdown]
# The third pair, the weakest (0.4), stays lost at this sample size: a ridge cannot create
# information that 100 samples do not hold.
#
# ### See it
#
# Move the ridge and pick a component. Left: training against held-out correlation of every pair.
# Middle: the chosen pair's two correlations as the ridge grows (the gap between them is the
# overfitting). Right: the held-out scatter of the chosen pair. Where is the held-out correlation
# highest? What happens to the training correlation there?

# %%
explorer = views.CCAExplorer(wide.x, wide.y, wide.x_test, wide.y_test, n_components=3)
explorer

# %% [markdown]
# ## CCA between images and sounds
#
# Back to AV-Digits. View x is the 64 pixels of the noisy digit image; view y is the log-mel
# spectrogram of the spoken digit, averaged over blocks of 2 mel bands by 4 frames to 160 numbers.
# Each feature is standardised with the training split's mean and standard deviation, so that one
# ridge suits both views. No labels are used to fit: CCA only knows which image was paired with
# which sound.

# %%
av = load_av_digits(seed=0)
image, audio, labels = experiments.av_digits_views(av["train"])
print("pixels:", tuple(image.shape), "| spectrogram features:", tuple(audio.shape))

# %% [markdown]
# The experiment keeps 9 canonical pairs (ten digits can be told apart in 9 dimensions), picks the
# ridge with the best retrieval on the validation split, and projects the test split (unseen
# voices) into the shared space:

# %%
av_result = experiments.av_digits_retrieval(seed=0, data=av)
print("validation Recall@1 per ridge:", {r: round(v, 3) for r, v in av_result["validation_recall1"].items()})
print("chosen ridge:", av_result["reg"])
print("held-out canonical correlations:", [round(r, 2) for r in av_result["correlations"].tolist()])

# %% [markdown]
# The first two canonical components of the test images and of the test sounds, coloured by digit.
# Labels were never shown to CCA, yet digits gather in both views, in the same places:

# %%
views.shared_space(av_result["image_scores"], av_result["audio_scores"], av_result["labels"], DIGIT_NAMES)

# %% [markdown]
# ### Retrieval in the shared space
#
# Now use a sound as a query: project it, and rank all test images by the cosine similarity of their
# projections. A query succeeds at K when one of the K top-ranked images shows the digit that was
# spoken. **Recall@K** is the fraction of queries that succeed. For comparison, chance is the Recall@K
# of a random ranking, computed exactly from the labels. Here is one query, with the digit and the
# cosine similarity of its five best images:

# %%
scores = experiments.retrieval_scores(av_result["audio_scores"], av_result["image_scores"])
query = 0
top = scores[query].topk(5).indices
views.retrieval_row(av["test"][query]["audio"], av["test"]["image"][top], scores[query, top], av_result["labels"][top],
                    DIGIT_NAMES, f"query: {DIGIT_NAMES[av_result['labels'][query]]}")

# %%
print(f"Recall@1 = {av_result['recall1']:.3f} (chance {av_result['chance1']:.3f}) | "
      f"Recall@5 = {av_result['recall5']:.3f} (chance {av_result['chance5']:.3f})")
experiments.RETRIEVAL_RECALL1.check(av_result["recall1"] / av_result["chance1"], recall1=av_result["recall1"],
                                    chance1=av_result["chance1"])
experiments.RETRIEVAL_RECALL5.check(av_result["recall5"] - av_result["chance5"], recall5=av_result["recall5"],
                                    chance5=av_result["chance5"])

# %% [markdown]
# **Try it.** How much does the noise cost? Load clean data,
# `clean = load_av_digits(image_noise=0, occlusion=0, audio_snr_db=float("inf"))`, and run
# `experiments.av_digits_retrieval(data=clean)`. (Clean digits have border pixels that are 0 in
# every image; the standardisation leaves such features at 0 instead of dividing by a zero
# standard deviation.)

# %% [markdown]
# ## Deep CCA
#
# Linear CCA only finds *linear* directions. When a view encodes the shared cause non-linearly, it
# misses much of it. Andrew, Arora, Bilmes and Livescu (2013), [*Deep Canonical Correlation
# Analysis*](https://proceedings.mlr.press/v28/andrew13.html), put a network in front of each view,
# $h^{(1)} = f_1(x)$ and $h^{(2)} = f_2(y)$, and train both to maximise the total canonical
# correlation of their outputs:
#
# $$\mathcal{L} = -\sum_{i=1}^{k} \sigma_i\!\left(T\right), \qquad
#   T = (C_{11} + \epsilon I)^{-1/2}\, C_{12}\, (C_{22} + \epsilon I)^{-1/2},$$
#
# where $C_{11}$ and $C_{22}$ are the covariances of $h^{(1)}$ and $h^{(2)}$ and $C_{12}$ their
# cross-covariance, all measured on a minibatch of $B$ pairs, and $\epsilon$ is a small ridge. After
# training, a linear CCA on the networks' outputs gives the final projections. No labels enter:
# only which x was paired with which y.

# %%
views.deep_cca_architecture()

# %% [markdown]
# `cca_loss` computes $\mathcal{L}$ so that its gradient never turns into NaN: whitening uses a
# Cholesky factor instead of an eigendecomposition (whose gradient divides by differences of
# eigenvalues, which vanish when eigenvalues tie), the gradient of a sum of singular values is
# finite even when correlations tie or vanish, and the ridge keeps the covariances invertible.
# The ridge costs a little: it lowers each correlation by a relative amount of about $\epsilon$
# divided by the variance of the projection. Here it is exactly the ridge CCA from before:

# %%
h1, h2 = planted.x[:500].float(), planted.y[:500].float()
print("cca_loss:", cca_loss(h1, h2, n_components=3, eps=1e-4).item())
print("-(sum of ridge CCA correlations):", -CCA(3, reg=1e-4).fit(h1, h2).canonical_correlations_.sum().item())

# %% [markdown]
# **The batch-size caveat.** The loss is a CCA *on one minibatch*, and CCA overfits small samples, as
# you saw. On a batch barely larger than the embedding size, even independent noise looks strongly
# correlated, and the networks would learn to chase that noise. Here is the total of the top two
# correlations between *independent* 8-dimensional embeddings, for three batch sizes (the truth
# is 0):

# %%
bias = experiments.batch_size_bias(seed=0)
print({batch: round(total, 3) for batch, total in bias.items()})
experiments.SMALL_BATCH_LOOKS_CORRELATED.check(bias[12])
experiments.LARGE_BATCH_NEAR_ZERO.check(bias[1000])

# %% [markdown]
# So Deep CCA trains with large batches (here 500 pairs for 2-dimensional embeddings).
#
# The data: `make_two_views(nonlinear=True)` hides each of two shared causes $u$ inside the features
# $(\sin 2u, \cos 2u, \sin 2.5u, \cos 2.5u)$, mixed into 10 dimensions per view. The causes of x and
# y correlate 0.9 and 0.7. No linear function of those features follows $u$ closely, but a
# non-linear one can.
#
# How much can *any* functions of the two views reach? More than 0.9 + 0.7: for a Gaussian pair with
# correlation $\rho$, a non-linear function of each side, $a^2 - 1$ and $b^2 - 1$, correlates
# $\rho^2$, and in general the Hermite polynomials of degree $m$ correlate $\rho^m$ and are the best
# possible pairs (Lancaster (1958), [*The structure of bivariate
# distributions*](https://doi.org/10.1214/aoms/1177706532)). Check the square:

# %%
g = torch.Generator().manual_seed(0)
a = torch.randn(100_000, generator=g)
b = 0.9 * a + (1 - 0.9**2) ** 0.5 * torch.randn(100_000, generator=g)
print(f"corr(a, b) = {torch.corrcoef(torch.stack([a, b]))[0, 1]:.3f}, "
      f"corr(a^2 - 1, b^2 - 1) = {torch.corrcoef(torch.stack([a**2 - 1, b**2 - 1]))[0, 1]:.3f}")
print("best total of two pairs for causes correlated 0.9 and 0.7:", experiments.best_nonlinear_total((0.9, 0.7), 2))

# %% [markdown]
# So the best two pairs of functions correlate 0.9 and 0.81 (the square of the first cause beats the
# second cause's 0.7), a total of 1.71: the ceiling for any method here.
#
# Each view gets a small perceptron (`MLPEncoder`, two hidden layers of 64 units) with 2 outputs,
# trained on 10,000 pairs. Training takes a few seconds:

# %%
deep = experiments.deep_vs_linear(seed=0, progress=True)
print(deep["history"])
print("correlations of the causes:", [round(r, 3) for r in deep["true"].tolist()],
      f"| best possible total: {deep['best_possible']:.3f}")
print("held out, linear CCA:", [round(r, 3) for r in deep["linear"].tolist()], f"total {deep['linear_total']:.3f}")
print("held out, Deep CCA:  ", [round(r, 3) for r in deep["deep"].tolist()], f"total {deep['deep_total']:.3f}")

# %%
nonlinear = deep["views"]
u, v = CCA(1).fit(nonlinear.x, nonlinear.y).transform(nonlinear.x_test, nonlinear.y_test)
u_deep, v_deep = deep["model"].transform(nonlinear.x_test, nonlinear.y_test)
views.deep_cca_results(deep["history"], (u[:, 0], v[:, 0]), (u_deep[:, 0], v_deep[:, 0]))

# %%
experiments.DEEP_BEATS_LINEAR.check(deep["deep_total"] - deep["linear_total"], deep_total=deep["deep_total"],
                                    linear_total=deep["linear_total"])
experiments.DEEP_WITHIN_CEILING.check(deep["deep_total"] - deep["best_possible"], best_possible=deep["best_possible"])

# %% [markdown]
# ## Deep CCA on images and sounds
#
# Does the non-linear method also give a better shared space for AV-Digits? Train Deep CCA on the
# same standardised pixels and pooled spectrograms as linear CCA: one hidden layer of 64 units per
# view and 9 outputs, batches of half the training split (about 540 pairs, far more than 9). With
# only about a thousand training pairs the networks overfit the correlation quickly, so the ridge
# $\epsilon$ of the loss is large here (10), as the ridge linear CCA picked on the validation split
# was large. Training takes about two seconds:

# %%
deep_av = experiments.deep_cca_retrieval(seed=0, data=av, progress=True)
print(deep_av["history"])
print(f"total correlation: {-deep_av['history'].train_loss[-1]:.2f} on training batches (with the ridge) | "
      f"{deep_av['correlations'].sum():.2f} on the test pairs")
experiments.DEEP_OVERFITS_FEW_PAIRS.check(experiments.deep_overfitting(deep_av))

# %% [markdown]
# Both methods answer the same spoken queries with the same test images, so compare them query by
# query: the bootstrap interval of the difference in Recall@1 resamples the queries jointly
# (`mmcourse.diagnostics.paired_difference`).

# %%
for name, result in (("linear CCA", av_result), ("Deep CCA", deep_av)):
    print(f"{name:>10}: Recall@1 = {result['recall1']:.3f} | Recall@5 = {result['recall5']:.3f}")
print(f"    chance: Recall@1 = {av_result['chance1']:.3f} | Recall@5 = {av_result['chance5']:.3f}")
gap = paired_difference(deep_av["hits1"].double(), av_result["hits1"].double())
print(f"Deep CCA minus linear CCA, Recall@1: {gap.estimate:+.3f} (95% interval {gap.low:+.3f} to {gap.high:+.3f})")
views.retrieval_comparison({name: (r["recall1"], r["recall5"]) for name, r in
                            (("linear CCA", av_result), ("Deep CCA", deep_av))},
                           (av_result["chance1"], av_result["chance5"]))

# %%
experiments.DEEP_RETRIEVAL_RECALL5.check(deep_av["recall5"] - deep_av["chance5"], recall5=deep_av["recall5"],
                                         chance5=deep_av["chance5"])
experiments.DEEP_NO_CLEAR_GAIN.check(deep_av["recall1"] - av_result["recall1"], deep=deep_av["recall1"],
                                     linear=av_result["recall1"])

# %% [markdown]
# Deep CCA retrieves clearly above chance, but it does not clearly beat the linear method here. Its
# advantage on the non-linear two views came from 10,000 pairs and causes hidden behind sines; here
# a thousand noisy pairs are all it has, and it overfits them, as the total correlations above
# show. A network earns its keep when the data is plentiful and the relation
# non-linear; measure before you assume it.
#
# These two rows open the course's **running comparison**: speech-to-image retrieval on the
# AV-Digits test split, Recall@1 and @5 at the digit level, with their chance levels. Lessons 04, 05
# and 07 add their methods, and lesson 07 shows the whole table. The "labels" column says what the
# digit labels did in each method's run: neither method here trained on them, but in linear CCA's
# run they chose the ridge on the validation split ("model selection"). Deep CCA's ridge is a fixed
# setting, as every method's settings are, so its row says "none". The rows are kept for lesson 07,
# which shows them exactly as printed here:

# %%
rows = experiments.comparison_rows(av_result, deep_av)
print(comparison.table(rows))
comparison.keep("cca", seed=0, entries=rows)

# %% [markdown]
# ## Exercises
#
# ### 1. The whitening matrix
#
# Write `my_whitening(cov)`: given a symmetric positive definite covariance matrix `cov` of shape
# `(p, p)`, return its **symmetric** inverse square root $C^{-1/2}$, the one matrix $W$ with
# $W = W^\top$ and $W C W = I$. (Many matrices whiten $C$: any rotation of $W$ does too. The
# symmetric one is unique, so the check can compare values.)

# %%
def my_whitening(cov):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("whitening_matrix", my_whitening)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# `torch.linalg.eigh(cov)` returns eigenvalues `lam` and an orthogonal matrix `q` of eigenvectors
# with `cov = q @ torch.diag(lam) @ q.T`. Apply the function $t \mapsto t^{-1/2}$ to the eigenvalues
# only: `lam.rsqrt()`. Never take an element-wise square root of the matrix itself.
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_whitening(cov):
    lam, q = torch.linalg.eigh(cov)
    return q @ torch.diag(lam.rsqrt()) @ q.T


exercises.check("whitening_matrix", solution_whitening, must_pass=True)

# %% [markdown]
# ### 2. Canonical correlations from the SVD
#
# Write `my_canonical_correlations(x, y)`: `x` is `(n, p)`, `y` is `(n, q)`, rows paired. Return all
# `min(p, q)` canonical correlations, largest first, as a tensor. Use your `my_whitening` (or the
# package's `inverse_sqrt`, if exercise 1 is not done yet).

# %%
def my_canonical_correlations(x, y):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("canonical_correlations", my_canonical_correlations)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# Centre both views first (subtract the column means). Then $C_{xx} = x^\top x / (n - 1)$, and
# likewise $C_{yy}$ and $C_{xy}$. Form $T = C_{xx}^{-1/2} C_{xy} C_{yy}^{-1/2}$;
# `torch.linalg.svdvals(T)` returns its singular values, already sorted largest first.
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_canonical_correlations(x, y):
    x, y = x - x.mean(0), y - y.mean(0)
    n = len(x)
    t = solution_whitening(x.T @ x / (n - 1)) @ (x.T @ y / (n - 1)) @ solution_whitening(y.T @ y / (n - 1))
    return torch.linalg.svdvals(t)


exercises.check("canonical_correlations", solution_canonical_correlations, must_pass=True)

# %% [markdown]
# ### 3. Recall@K
#
# Write `my_recall_at_k(scores, relevant, k)`: `scores` is `(Q, G)`, the similarity of each of Q
# queries to each of G gallery items; `relevant` is a `(Q, G)` boolean tensor saying which items are
# right for each query. Return, as a Python `float`, the fraction of queries that have at least one
# relevant item among their `k` highest-scoring items.

# %%
def my_recall_at_k(scores, relevant, k):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("recall_at_k", my_recall_at_k)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# `scores.topk(k, dim=1).indices` gives each query's top `k` items, shape `(Q, k)`.
# `relevant.gather(1, indices)` reads whether each of them is relevant; `.any(dim=1)` says whether a
# query succeeded. Average as floats and return `.item()`.
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_recall_at_k(scores, relevant, k):
    top = scores.topk(k, dim=1).indices
    return relevant.gather(1, top).any(dim=1).float().mean().item()


exercises.check("recall_at_k", solution_recall_at_k, must_pass=True)

# %% [markdown]
# ### 4. Find the bug: a square root in the wrong sense
#
# Deep CCA papers also use the sum of *all* canonical correlations, the sum of the singular values
# of $T$ (its nuclear norm). Since the singular values of $T$ are the square roots of the
# eigenvalues of $T^\top T$, that sum is $\operatorname{tr}\big((T^\top T)^{1/2}\big)$, with a
# *matrix* square root. The function below, modelled on a widely copied Deep CCA implementation,
# whitens correctly but contains one bug. The check runs it on three pairs of batches: which
# case fails, and why does the first one pass?

# %%
def buggy_total_correlation(h1, h2, eps=1e-4):
    """Deep CCA's objective with every component: the sum of the canonical correlations of h1 (B, d1), h2 (B, d2)."""
    h1, h2 = h1 - h1.mean(0), h2 - h2.mean(0)
    n = len(h1)
    c11 = h1.T @ h1 / (n - 1) + eps * torch.eye(h1.shape[1], dtype=h1.dtype)
    c22 = h2.T @ h2 / (n - 1) + eps * torch.eye(h2.shape[1], dtype=h2.dtype)
    t = inverse_sqrt(c11) @ (h1.T @ h2 / (n - 1)) @ inverse_sqrt(c22)
    return torch.trace(torch.sqrt(t.T @ t))


exercises.check("total_correlation", buggy_total_correlation)

# %% [markdown]
# Copy the function into `my_total_correlation` below and fix it.

# %%
def my_total_correlation(h1, h2, eps=1e-4):
    # YOUR CODE HERE: a fixed copy of buggy_total_correlation
    raise NotImplementedError


exercises.check("total_correlation", my_total_correlation)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# `torch.sqrt` takes the square root of every *entry*. On the diagonal of $T^\top T$ that gives
# the length of each column of $T$, and the trace sums those lengths: the right answer only when
# the columns of $T$ are orthogonal, as in the first case, where every covariance is diagonal.
# You need the sum of the singular values of $T$ instead: `torch.linalg.svdvals(t).sum()`.
# There is a second reason to fix it: where an entry of $T^\top T$ is negative, its element-wise
# square root is NaN. The trace never reads it, but the gradient does, and training stops with
# NaN weights.
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_total_correlation(h1, h2, eps=1e-4):
    h1, h2 = h1 - h1.mean(0), h2 - h2.mean(0)
    n = len(h1)
    c11 = h1.T @ h1 / (n - 1) + eps * torch.eye(h1.shape[1], dtype=h1.dtype)
    c22 = h2.T @ h2 / (n - 1) + eps * torch.eye(h2.shape[1], dtype=h2.dtype)
    t = inverse_sqrt(c11) @ (h1.T @ h2 / (n - 1)) @ inverse_sqrt(c22)
    return torch.linalg.svdvals(t).sum()  # the trace of the matrix square root of T^T T


exercises.check("total_correlation", solution_total_correlation, must_pass=True)

# %% [markdown]
# ## Summary
#
# - CCA finds pairs of directions $w_x$, $w_y$ whose projections are maximally correlated. Whiten each
#   view, take the SVD of $T = C_{xx}^{-1/2} C_{xy} C_{yy}^{-1/2}$: the singular values are the
#   canonical correlations, $w_x = C_{xx}^{-1/2} U$ and $w_y = C_{yy}^{-1/2} V$.
# - The closed form agrees with scikit-learn's iterative CCA; compare the fit times printed above.
# - With many features and few samples, training correlations reach 1 and mean nothing; always
#   measure on held-out data. A ridge on the covariances restores generalisation.
# - In the shared space you can compare modalities directly: spoken digits retrieve images of the
#   same digit, with no labels used to build the space.
# - Deep CCA learns non-linear views by maximising the total canonical correlation of two networks'
#   outputs; it needs a numerically careful loss and batches much larger than the embedding size.
#   It shines when the relation is non-linear and pairs are plentiful; on a thousand noisy
#   AV-Digits pairs it brings no clear gain over linear CCA.
# - A square root of a covariance means a *matrix* square root (through an eigendecomposition or
#   the singular values), never `torch.sqrt` of the entries.
#
# **Further reading**
#
# - Hardoon, Szedmak and Shawe-Taylor (2004), [*Canonical correlation analysis: an overview with
#   application to learning methods*](https://doi.org/10.1162/0899766042321814): regularised and
#   kernel CCA, with image-text retrieval.
# - Rasiwasia et al. (2010), [*A new approach to cross-modal multimedia
#   retrieval*](https://doi.org/10.1145/1873951.1873987): CCA as the shared space for retrieving
#   text with images and images with text.
# - Wang, Arora, Livescu and Bilmes (2016), [*On deep multi-view representation learning: objectives
#   and optimization*](https://arxiv.org/abs/1602.01024): Deep CCA against autoencoders, stochastic
#   training of Deep CCA, and deep canonically correlated autoencoders (DCCAE).
# - Lesson 04 aligns two embedding spaces *without* paired examples; lesson 07 learns a shared
#   space contrastively, as CLIP does.
