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
# # Lesson 05: Autoencoders: one code for several modalities
#
# **What you will learn:** how a bimodal autoencoder learns one code from two modalities, and why it is
# trained with one modality taken away; what a variational autoencoder (VAE) optimises, and the
# reparameterisation trick; how to combine what each modality says about the code, as a product of
# experts (MVAE) or a mixture of experts (MMVAE); how to *measure* whether a generated modality is
# right; and how an "alignment" term can train well while aligning nothing.
#
# **Prerequisites:** the data sets and the course's claims ([lesson 00](00_welcome.ipynb)); encoders
# per modality and modality dropout ([lesson 01](01_fusion.ipynb)); CCA ([lesson 02](02_cca.ipynb));
# the [normal distribution](https://en.wikipedia.org/wiki/Normal_distribution) and the [KL
# divergence](https://en.wikipedia.org/wiki/Kullback%E2%80%93Leibler_divergence).
#
# **You will build:** MVAE's loss (the product of experts with the prior, a reparameterised sample, the
# reconstructions and the KL of each set of modalities) and its training step, then train it on Shapes.
#
# **Time:** about 30 minutes of reading and 30 minutes of exercises. **Runs on:** a laptop CPU in about
# half a minute (every model trains in a second or two); a GPU is used when there is one.
#
# A caption says "a large red triangle at the top left"; a picture shows one. Both should map to the
# same point of one *shared* latent space, a code $z$ from which either can be rebuilt. With it you can
# go from words to pictures, or from a spoken "seven" to a handwritten 7, and still encode a sample
# with one modality missing. Three ways to get the code from two encoders:

# %%
import math

import torch
from torch import nn

import mmcourse
from mmcourse import exercises, verify
from mmcourse.autoencoders import mixture_of_experts_sample, reparameterize
from mmcourse.data import COLOURS, DIGIT_NAMES, SHAPES
from mmcourse.diagnostics import paired_difference
from mmcourse.experiments import autoencoders as experiments
from mmcourse.experiments import comparison
from mmcourse.views import autoencoders as views
from mmcourse.views.common import figure

print("training on:", mmcourse.get_device())

# %%
with figure(12, 2.2, ncols=3) as axes:
    views.three_ways(axes)

# %% [markdown]
# **Notation** (lesson 00's table). Modalities $m = 1, \dots, M$ ($M = 2$), a sample's inputs
# $x^{(m)}$, the code $z \in \mathbb{R}^d$ ($d = 16$); an encoder (parameters $\phi$) gives a
# Gaussian $q_\phi(z \mid x)$, a decoder (parameters $\theta$) the likelihood $p_\theta(x \mid z)$;
# the prior is $p(z) = \mathcal{N}(0, I)$; modality $m$'s encoder alone gives its *expert*
# $q_m(z \mid x^{(m)})$.

# %% [markdown]
# ## 1. Two data sets, and referees
#
# **Shapes & captions** with one object per scene, averaged over 2 x 2 pixels to 16 x 16 (shape and
# colour stay readable). The caption is four tokens, its size, colour, shape and position words: the
# rest of the template ("a ... at the ...") carries nothing. Red triangles are **held out**: no
# training scene has one, in any size or place. **AV-Digits** with its default noise, as in lesson
# 02: an 8 x 8 digit and a spoken digit, its log-mel spectrogram averaged to 16 x 10 numbers. Loading
# both takes a few seconds.

# %%
shapes = experiments.shapes_data(seed=0)
av = experiments.av_data(seed=0)
for data in (shapes, av):
    print(f"{data.name}: train {len(data.train['label'])}, test {len(data.test['label'])}, "
          + ", ".join(f"{m} {tuple(data.train[m].shape[1:])}" for m in data.modalities))
caption = shapes.train["caption"]  # (n, 4) tokens: size, colour, shape, position
red_triangles = ((caption[:, experiments.COLOUR] == COLOURS.index("red"))
                 & (caption[:, experiments.SHAPE] == SHAPES.index("triangle")))
print("red triangles in training:", red_triangles.sum().item())

# %%
views.show_pairs(shapes, av)

# %% [markdown]
# Generated samples must be *judged*, not admired. So first you train **referees**: classifiers of real
# data that read what a sample shows. A small network reads a scene's shape and colour; a caption's tokens
# say them exactly. For AV-Digits, one perceptron reads the digit in an image, another in a spectrogram.
# Their accuracy on the real test split says how far to trust them (a second or two):

# %%
shapes_run = experiments.with_referees(shapes)
av_run = experiments.with_referees(av)
print("scene referee (shape and colour both right):", round(shapes_run.referees.accuracy["image"], 3))
print("digit referees:", {m: round(a, 3) for m, a in av_run.referees.accuracy.items()})

# %% [markdown]
# ### Check yourself
#
# 1. Why train referees instead of looking at the generated samples?
#
# <details><summary>Answer</summary>
#
# A referee reads every test sample the same way and turns "does it show the right thing?" into a
# number that you can compare between models and with chance. Eyes judge a handful of samples, are
# swayed by how clean they look, and cannot read a spectrogram at all.
# </details>
#
# 2. A referee's accuracy on the real test split is below 1. Can a model's generated samples be read
#    correctly more often than that?
#
# <details><summary>Answer</summary>
#
# Yes. A generated scene can be cleaner than a real one (a perfect silhouette, no noise), and then
# the referee reads it correctly more often. The accuracy on real data says roughly how far to trust
# the referee, not how well a model can score.
# </details>

# %% [markdown]
# ## 2. A bimodal autoencoder
#
# Ngiam et al. (2011), [*Multimodal Deep Learning*](https://people.csail.mit.edu/khosla/papers/icml2011_ngiam.pdf),
# encode each modality, $h^{(m)} = f_m(x^{(m)})$, map the concatenation to one code
# $z = W [h^{(1)}; h^{(2)}] + b$, and decode *both* modalities from $z$, minimising the two
# reconstruction errors. A missing modality enters as zeros. Trained only on complete pairs, the code
# never has to work from one input alone. Their trick (lesson 01's modality dropout is the same idea):
# zero one modality in some training samples and still ask for both; `BimodalAutoencoder` does it in half
# of them. Train it on AV-Digits with the trick and without (about a second each):

# %%
experiments.train_models(av_run, ["autoencoder"])
zeroing = experiments.zeroing_experiment(av_run)
for label, result in zeroing.items():
    print(f"{label:>16}:", {d: f"{c.coherence:.3f} (chance {c.chance:.3f})" for d, c in result.items()})

# %% [markdown]
# Each number is a **coherence**: one modality was generated from the other *alone*, and it is
# coherent when the referee reads in it the input's digit. Chance is the same measure against another
# sample's digit (shuffled pairs). Here are test digits generated from the audio alone:

# %%
test, columns = av.test, list(range(8))
views.generated_rows(av, {"real image": test["image"][columns],
                          **{f"{label}, from audio": av_run.models[m].generate(None, test["audio"][columns])[0]
                             for label, m in (("zeroing", "autoencoder"), ("no zeroing", "autoencoder, no zeroing"))}},
                     [f"said: {DIGIT_NAMES[int(y)]}" for y in test["label"][columns]])

# %% [markdown]
# With zeroing minus without, compared test pair by test pair (both models generated from the same
# ones), with a bootstrap interval:

# %%
for direction in ("image -> audio", "audio -> image"):
    with_, without = (zeroing[k][direction] for k in ("with zeroing", "without zeroing"))
    print(f"{direction}: with zeroing minus without",
          paired_difference(with_.hits.float(), without.hits.float()))
with_, without = (zeroing[k]["image -> audio"] for k in ("with zeroing", "without zeroing"))
gain, over_chance = with_.coherence - without.coherence, without.coherence - without.chance

# %%
experiments.ZEROING_HELPS.check(gain, with_zeroing=with_.coherence, without_zeroing=without.coherence)
experiments.IMAGE_ALONE_WITHOUT_ZEROING.check(over_chance, without_zeroing=without.coherence, chance=without.chance)

# %% [markdown]
# Zeroing makes the image alone call up the right spoken digit more often; without it, still well above
# chance. A likely reason (untested): the spectrograms are standardised, so zeroed audio is the mean
# spectrogram, not silence, and without zeroing no training code was computed with it.
#
# Audio -> image is not claimed: its sign changes with the seed (down on seeds 0 and 7 of ten). Its
# interval covers other test pairs with these two models, not another training run.

# %% [markdown]
# ### Check yourself
#
# 1. Trained only on complete pairs, why can the code fail when one input is missing?
#
# <details><summary>Answer</summary>
#
# No training code was ever computed from one input alone, so nothing asked that input to carry the
# content: the code can lean on the easier modality. A missing input then enters as zeros, a value the
# encoder never saw in its place during training.
# </details>
#
# 2. Why does the section compare the two models sample by sample (a paired difference) instead of
#    putting an interval on each model's coherence and comparing those?
#
# <details><summary>Answer</summary>
#
# Both models generated from the same test samples, and a sample that is hard for one is often hard
# for the other. Resampling the pairs jointly lets that shared difficulty cancel, so the interval of
# the difference is narrower than two separate intervals would suggest.
# </details>

# %% [markdown]
# ## 3. From autoencoder to VAE
#
# An autoencoder's codes come with no distribution: nothing says which $z$ are likely, so there is
# nothing to draw a new code from. A variational autoencoder (Kingma and Welling 2014,
# [*Auto-Encoding Variational Bayes*](https://arxiv.org/abs/1312.6114)) makes $z$ random: the encoder
# answers an input with a Gaussian $q$ over codes, and training scores that answer.
#
# Start with one number. The prior is $p(z) = \mathcal{N}(0, 1)$ and the decoder says that $x$ is $z$
# plus noise, $p(x \mid z) = \mathcal{N}(z, 1)$. You observe $x = 2$: which codes could have made it?
# Score three answers $q$ with two terms: how well codes drawn from $q$ rebuild $x$ (the expected
# log-likelihood), and how far $q$ strays from the prior (the KL divergence).

# %%
x = 2.0
log_px = -0.5 * math.log(2 * math.pi * 2) - x**2 / (2 * 2)  # z and the decoder's noise add up: p(x) = N(0, 2)
answers = {"the prior N(0, 1)": (0.0, 1.0), "sure of z = 2: N(2, 0.01)": (2.0, 0.01),
           "the posterior N(1, 0.5)": (1.0, 0.5)}  # q = N(mean, variance)
elbo = {}
for name, (mean, variance) in answers.items():
    # E_q[log p(x | z)], with E_q[(x - z)^2] = (x - mean)^2 + variance
    reconstruction = -0.5 * math.log(2 * math.pi) - 0.5 * ((x - mean) ** 2 + variance)
    kl = 0.5 * (variance + mean**2 - 1 - math.log(variance))
    elbo[name] = reconstruction - kl
    print(f"q = {name:<26} reconstruction {reconstruction:6.3f}   KL {kl:5.3f}   score {elbo[name]:6.3f}")
print(f"log p(x) = {log_px:.3f}")
verify(max(elbo.values()) <= log_px + 1e-12 and abs(elbo["the posterior N(1, 0.5)"] - log_px) < 1e-12,
       "no answer scores above log p(x); the posterior scores exactly log p(x)", log_px=log_px)

# %% [markdown]
# The sure answer rebuilds $x$ best but pays the most KL; the prior pays no KL but rebuilds badly. The
# true posterior $p(z \mid x) = \mathcal{N}(1, \tfrac12)$ (precisions add, $1 + 1 = 2$; the mean is
# $x/2 = 1$) scores best, exactly $\log p(x)$. That score is the **evidence lower bound** (ELBO). In
# general, with an encoder $q_\phi$ and a decoder $p_\theta$,
#
# $$\log p_\theta(x) \;\ge\; \mathrm{ELBO}(x) = \mathbb{E}_{q_\phi(z \mid x)}\big[\log p_\theta(x \mid z)\big]
#   - \mathrm{KL}\big(q_\phi(z \mid x) \,\|\, p(z)\big),$$
#
# and the gap is $\mathrm{KL}\big(q_\phi(z \mid x) \,\|\, p_\theta(z \mid x)\big)$, zero only at the
# posterior. Training maximises the ELBO over $\phi$ and $\theta$. The KL term keeps $q$ close to the
# prior, so that codes drawn from $\mathcal{N}(0, I)$ decode to something sensible. For
# $q = \mathcal{N}(\mu, \operatorname{diag}\sigma^2)$ the KL has a closed form, summed over the
# code's $d$ dimensions:
#
# $$\mathrm{KL} = \tfrac12 \sum_{j=1}^{d} \left(\sigma_j^2 + \mu_j^2 - 1 - \log \sigma_j^2\right).$$
#
# **The reparameterisation trick.** The expectation needs samples of $z$, and a sample drawn by
# `torch.normal(mu, std)` carries no gradient to $\mu$ and $\sigma$, silently: backpropagation gives
# them zeros (the cell below shows it). Write the sample instead as $z = \mu + \sigma \odot \varepsilon$
# with $\varepsilon \sim \mathcal{N}(0, I)$ drawn outside the network: then $\partial z / \partial \mu = 1$
# and $\partial z / \partial \log \sigma^2 = \tfrac12 \sigma \varepsilon$, and backpropagation reaches the
# encoder.

# %%
mu, std = torch.zeros(3, requires_grad=True), torch.ones(3, requires_grad=True)
torch.normal(mu, std).sum().backward()
print("torch.normal's gradients: mu", mu.grad.tolist(), "std", std.grad.tolist())
mu = torch.zeros(3, 4, requires_grad=True)
logvar = torch.zeros(3, 4, requires_grad=True)
z = reparameterize(mu, logvar)
z.sum().backward()
verify(bool((mu.grad == 1).all()) and torch.allclose(logvar.grad, 0.5 * z.detach()),
       "gradients reach mu (all 1) and logvar (sigma * eps / 2, here z / 2)", mean_abs_logvar_grad=logvar.grad.abs().mean())

# %% [markdown]
# ### Exercise: the reparameterised sample and its KL
#
# Write `my_sample_and_kl(mu, logvar, eps)`: all three `(B, d)`; return the tuple `(z, kl)` with
# $z = \mu + \sigma \odot \varepsilon$ `(B, d)` and $\mathrm{KL}\big(\mathcal{N}(\mu,
# \operatorname{diag}\sigma^2) \,\|\, \mathcal{N}(0, I)\big)$ (the closed form above, one value per
# sample), `(B,)`.

# %%
def my_sample_and_kl(mu, logvar, eps):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("sample_and_kl", my_sample_and_kl)

# %% [markdown]
# <details><summary><b>Hint 1: a nudge</b></summary>
#
# The encoder gives the log of the variance, not the standard deviation: work out which of the two
# scales the noise, and which one the KL needs. The KL is one number per sample, so add up over the
# code's dimensions only, never over the batch.
# </details>
# <details><summary><b>Hint 2: what helps</b></summary>
#
# $\sigma = e^{\log \sigma^2 / 2}$ is `(0.5 * logvar).exp()`, while `logvar.exp()` is the variance
# $\sigma^2$. `.sum(-1)` adds over the last dimension, the code's.
# </details>
# <details><summary><b>Hint 3: the code</b></summary>
#
# ```python
# z = mu + (0.5 * logvar).exp() * eps
# kl = 0.5 * (logvar.exp() + mu.pow(2) - 1 - logvar).sum(-1)
# return z, kl
# ```
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_sample_and_kl(mu, logvar, eps):
    z = mu + (0.5 * logvar).exp() * eps
    kl = 0.5 * (logvar.exp() + mu.pow(2) - 1 - logvar).sum(-1)
    return z, kl


exercises.check("sample_and_kl", solution_sample_and_kl, must_pass=True)

# %% [markdown]
# ### Find the bug: a VAE loss
#
# The negative ELBO of a batch with a Gaussian likelihood of standard deviation `scale` is, per
# sample, $\sum_{\text{pixels}} (x - \hat x)^2 / (2\,\mathrm{scale}^2)$ (dropping a constant) plus the
# KL, and then the mean over the batch. The function below, as found in many VAE tutorials, computes
# something else. The check runs it on three cases and stops at the first that fails: which one, and
# why does the first one pass?

# %%
def buggy_negative_elbo(x, x_mean, mu, logvar, scale=1.0):
    """Minus the ELBO of a batch: x, x_mean (B, ...) data and decoded means; mu, logvar (B, d)."""
    reconstruction = torch.nn.functional.mse_loss(x_mean, x) / (2 * scale**2)
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return reconstruction + kl


exercises.check("negative_elbo", buggy_negative_elbo)

# %% [markdown]
# Copy the function into `my_negative_elbo` below and fix it.

# %%
def my_negative_elbo(x, x_mean, mu, logvar, scale=1.0):
    # YOUR CODE HERE: a fixed copy of buggy_negative_elbo
    raise NotImplementedError


exercises.check("negative_elbo", my_negative_elbo)

# %% [markdown]
# <details><summary><b>Hint 1: a nudge</b></summary>
#
# Read the description of the first case that fails, and what it adds to the case before it. Then
# follow each of the two terms: how does it turn many numbers (pixels, dimensions, samples) into one?
# The check stops at the first failing case, so after one fix a later case may fail next.
# </details>
# <details><summary><b>Hint 2: what helps</b></summary>
#
# `torch.nn.functional.mse_loss` returns the mean over every element it is given; `torch.sum` with no
# `dim` adds every element. `.flatten(1).sum(1)` adds each sample's pixels, `.sum(-1)` each sample's
# code dimensions, and `.mean()` then averages over the batch.
# </details>
# <details><summary><b>Hint 3: the code</b></summary>
#
# ```python
# reconstruction = (x - x_mean).pow(2).flatten(1).sum(1) / (2 * scale**2)  # (B,)
# kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)  # (B,)
# return (reconstruction + kl).mean()
# ```
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_negative_elbo(x, x_mean, mu, logvar, scale=1.0):
    reconstruction = (x - x_mean).pow(2).flatten(1).sum(1) / (2 * scale**2)  # (B,)
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)  # (B,)
    return (reconstruction + kl).mean()


exercises.check("negative_elbo", solution_negative_elbo, must_pass=True)

# %% [markdown]
# The package's `kl_to_standard_normal` is the same closed form as in both exercises. Check it against
# `torch.distributions`:

# %%
from torch.distributions import Normal, kl_divergence  # noqa: E402  (imported after the exercises: the checks reject them)

from mmcourse.autoencoders import kl_to_standard_normal  # noqa: E402

mu, logvar = torch.randn(5, 16, dtype=torch.float64), torch.randn(5, 16, dtype=torch.float64)
ours = kl_to_standard_normal(mu, logvar)
theirs = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)
verify((ours - theirs).abs().max() < 1e-10, "our KL equals torch.distributions'",
       largest_difference=(ours - theirs).abs().max())

# %% [markdown]
# ### Check yourself
#
# 1. In the worked example, the answer "sure of z = 2" rebuilds $x$ best. Why does it score below the
#    posterior, and what would happen if training had no KL term?
#
# <details><summary>Answer</summary>
#
# It pays far more KL than it gains in reconstruction (and no answer can score above $\log p(x)$). Without
# the KL nothing keeps the codes near the prior: the encoder makes them narrow and puts them anywhere, and
# codes drawn from $\mathcal{N}(0, I)$ decode to nothing sensible: the plain autoencoder again.
# </details>
#
# 2. You write `z = torch.normal(mu, std)` in a VAE. Does it train, and would you notice?
#
# <details><summary>Answer</summary>
#
# It runs, and the loss can still fall as the decoder learns. But the reconstruction sends no gradient to
# the encoder (the cell printed zeros); only the KL reaches $\mu$ and $\log\sigma^2$, pulling every
# posterior towards the prior, and the code forgets the input.
# </details>
#
# 3. In the find-the-bug, why did case 1 pass, and which term wins in a real batch of many pixels and
#    many samples?
#
# <details><summary>Answer</summary>
#
# With one sample, one pixel and one dimension every mean is also a sum. In a real batch the
# reconstruction counts as many times too little as there are pixels, the KL $B$ times too much. The KL
# wins: every posterior is pushed onto the prior (*posterior collapse*), and the decoder draws blurry
# averages.
# </details>

# %% [markdown]
# ## 4. Two ways to combine experts: product (MVAE) and mixture (MMVAE)
#
# With two modalities you need $q(z \mid x^{(1)}, x^{(2)})$, and $q(z \mid x^{(m)})$ when one is
# missing, without a separate encoder for every subset of the modalities. Both models below give each
# modality its own expert $q_m(z \mid x^{(m)})$ and combine the experts: one multiplies them, the other
# averages them.
#
# ### Product of experts: MVAE
#
# First a picture: two experts and their product (left), one expert and the prior as a second expert
# (right). Then the left panel's product by hand.

# %%
with figure(10, 2.6, ncols=2) as axes:
    views.gaussian_product(axes[0], [-1.0, 2.0], [1.0, 0.25], title="two experts and their product")
    views.gaussian_product(axes[1], [2.0], [0.25], with_prior=True, title="one expert and the prior expert")

# %%
mu_1, var_1, mu_2, var_2 = -1.0, 1.0, 2.0, 0.25  # the left panel's experts
precision = 1 / var_1 + 1 / var_2  # precisions add up
mean = (mu_1 / var_1 + mu_2 / var_2) / precision  # each mean weighted by its precision
print(f"precisions {1 / var_1:g} + {1 / var_2:g} = {precision:g}: product mean {mean:.2f}, variance {1 / precision:.2f}")

# %% [markdown]
# The product is narrower than either expert, and its mean leans towards the surer one. Wu and
# Goodman (2018), [*Multimodal Generative Models for Scalable Weakly-Supervised
# Learning*](https://arxiv.org/abs/1802.05335), multiply the experts, with the prior as one more:
#
# $$q(z \mid x^{(1)}, \dots, x^{(M)}) \;\propto\; p(z) \prod_m q_m(z \mid x^{(m)}).$$
#
# For Gaussian experts $\mathcal{N}(\mu_i, \operatorname{diag}\sigma_i^2)$, $i$ running over the
# prior and the modalities' experts, the product is $\mathcal{N}(\bar\mu, \operatorname{diag}\bar\sigma^2)$
# with, in every dimension,
#
# $$\bar\mu = \bar\sigma^2 \sum_i \frac{\mu_i}{\sigma_i^2}, \qquad \frac{1}{\bar\sigma^2} = \sum_i \frac{1}{\sigma_i^2}.$$
#
# A missing modality is simply left out of the product. The prior expert adds precision 1 in every
# dimension, so it pulls the mean towards 0 and narrows the product, the more the vaguer the other
# experts: one expert $\mathcal{N}(\mu_1, \sigma_1^2)$ times the prior is
# $\mathcal{N}\big(\mu_1 / (1 + \sigma_1^2),\ \sigma_1^2 / (1 + \sigma_1^2)\big)$ (the right panel).
#
# <details><summary>More: why the prior is one of the experts</summary>
#
# For modalities that are independent given $z$, Bayes' rule gives
# $p(z \mid x^{(1)}, \dots, x^{(M)}) \propto \prod_m p(z \mid x^{(m)}) \,/\, p(z)^{M-1}$: a *quotient*
# of Gaussians, whose precisions are differences, Gaussian only while they stay positive, which nothing
# guarantees for learned experts. Wu and Goodman write each unimodal posterior as the network's expert
# times the prior, $p(z \mid x^{(m)}) \propto q_m(z \mid x^{(m)})\, p(z)$; then $M - 1$ of the priors
# cancel the quotient, and one remains as an expert of the product. (It is not what makes the product
# proper: one Gaussian expert alone already is.)
# </details>

# %% [markdown]
# MVAE trains on the ELBO of the joint posterior **plus** the ELBO of each modality alone
# (reconstructing only itself), so that every expert learns to stand on its own; the loss is minus
# their sum:
#
# $$\mathcal{L}_{\mathrm{MVAE}} = -\big[\mathrm{ELBO}(x^{(1)}, x^{(2)}) + \mathrm{ELBO}(x^{(1)}) + \mathrm{ELBO}(x^{(2)})\big],
#   \qquad \mathrm{ELBO}(x_S) = \mathbb{E}_{q(z \mid x_S)}\Big[\sum_{m \in S} \lambda_m \log p_\theta(x^{(m)} \mid z)\Big]
#   - \mathrm{KL}\big(q(z \mid x_S) \,\|\, p(z)\big),$$
#
# where $q(z \mid x_S)$ is the product of the prior and the experts of the set $S$, and $\lambda_m$ weighs
# each likelihood: a scene's 768 numbers add up to hundreds of nats, a caption's four tokens to a few, so
# $\lambda = 1$ for the scene and 10 for each token.
#
# <details><summary>More: is a weighted ELBO still a bound?</summary>
#
# A weighted ELBO stays below $\log p$ where $\lambda_m \log p \le \log p$: true here, since a token's
# log-probability is at most 0 and the scene's weight is 1, but not for a Gaussian density in general
# (its log can be positive).
# </details>
#
# You will write this loss in section 5.

# %% [markdown]
# ### Mixture of experts: MMVAE
#
# Now average the same two experts. The mixture's KL to the prior has no closed form: estimate it from
# codes drawn from each expert in turn (a *stratum* each), and set it against the experts' average KL.

# %%
two = Normal(torch.tensor([-1.0, 2.0]), torch.tensor([1.0, 0.5]))  # the experts N(-1, 1) and N(2, 0.25), as above
views.product_and_mixture(two.mean.tolist(), two.variance.tolist())

# %%
mean = two.mean.mean()
variance = two.variance.mean() + (two.mean - mean).pow(2).mean()  # average variance + spread of the means
print(f"mixture: mean {mean:.2f}, variance {variance:.2f}")
g = torch.Generator().manual_seed(0)
z = two.mean + two.stddev * torch.randn(100_000, 2, generator=g)  # column i: a stratum drawn from expert i
log_mixture = two.log_prob(z.unsqueeze(-1)).logsumexp(-1) - math.log(2)  # the mixture's density at each z
kl_mixture = (log_mixture - Normal(0.0, 1.0).log_prob(z)).mean()  # both strata weighted 1/2
kl_average = kl_divergence(two, Normal(0.0, 1.0)).mean()
print(f"KL to the prior: the mixture's {kl_mixture:.3f} (sampled), the experts' average {kl_average:.3f}")

# %% [markdown]
# A mixture *covers* every expert: wherever one expert puts mass, so does the mixture (at least $1/M$
# of it). Its variance is the experts' average variance plus the spread of their means. And its KL came
# out below the experts' average KL, as it always does: KL is convex in its first argument.
#
# Shi, Siddharth, Paige and Torr (2019), [*Variational Mixture-of-Experts Autoencoders for Multi-Modal
# Deep Generative Models*](https://arxiv.org/abs/1911.03393), take the mixture
# $q(z \mid x^{(1)}, \dots, x^{(M)}) = \frac1M \sum_m q_m(z \mid x^{(m)})$ as the posterior. Its
# expected log-likelihood is estimated by **stratified sampling**: draw $z$ from *each* expert, decode
# *every* modality from it, weight each stratum by $1/M$. Its KL is replaced by the experts' average, which is larger:
#
# $$\mathrm{KL}\Big(\tfrac1M \textstyle\sum_m q_m \,\Big\|\, p\Big) \;\le\; \frac1M \sum_m \mathrm{KL}(q_m \,\|\, p).$$
#
# So MMVAE minimises the loss
#
# $$\mathcal{L}_{\mathrm{MMVAE}} = -\frac{1}{M} \sum_{m=1}^{M} \Big(\mathbb{E}_{z \sim q_m}\Big[\sum_{m'}
#   \lambda_{m'} \log p_\theta(x^{(m')} \mid z)\Big] - \mathrm{KL}(q_m \,\|\, p)\Big), \qquad
#   -\mathcal{L}_{\mathrm{MMVAE}} \;\le\; \mathrm{ELBO}_{\text{mixture}} \;\le\; \log p_\theta(x^{(1)}, \dots, x^{(M)}),$$
#
# with MVAE's weights $\lambda_{m'}$ ($m'$ runs over every modality). Each unimodal posterior must, on
# its own, explain *all* the modalities: the code from the caption must say enough to draw the scene.
#
# <details><summary>More: the bound the authors train on</summary>
#
# In the authors' code, iffsid/mmvae, this objective is `m_elbo_naive`. Their experiments train on
# tighter *importance-weighted* bounds: the IWAE bound of Burda, Grosse and Salakhutdinov (2016),
# [*Importance Weighted Autoencoders*](https://arxiv.org/abs/1509.00519), draws several codes, weights
# each by $p(x, z) / q(z \mid x)$ and takes the log of the weights' mean, which approaches $\log p(x)$
# as the number of codes grows. `MMVAE(k=...)` implements it with the plain IWAE gradient; their runs
# used a lower-variance gradient estimator (DReG) with 30 or 50 codes, and Laplace distributions for
# the prior, the posteriors and the likelihoods, with the prior's scale learned.
# </details>
#
# Train the two MMVAEs (about five seconds) and sample a batch of three test pairs:

# %%
experiments.train_models(shapes_run, ["MMVAE"])
experiments.train_models(av_run, ["MMVAE"])
with torch.no_grad():
    experts, _ = shapes_run.models["MMVAE"].experts(shapes.test["image"][:3], shapes.test["caption"][:3])
    strata = mixture_of_experts_sample(*experts, k=2)
print("experts:", tuple(experts.mu.shape), "| samples:", tuple(strata.z.shape), "(expert, k, B, d)")
print("weight of each stratum, sample 0:", strata.weight[:, 0].tolist())

# %% [markdown]
# ### Check yourself
#
# 1. One expert is sure (a small variance), the other vague. Predict where the product lies and what
#    the mixture looks like.
#
# <details><summary>Answer</summary>
#
# The product lies close to the sure expert's mean and is narrower still: precisions add, and the sure
# expert's dominates. The mixture covers both: with means apart it has two bumps, and it is wide.
# </details>
#
# 2. What does MMVAE ask of the code from the caption alone that MVAE does not?
#
# <details><summary>Answer</summary>
#
# MMVAE decodes every modality from the caption's stratum, so a code drawn from the caption expert
# alone must draw the scene too. MVAE asks the caption's expert, in the caption's own ELBO, only to
# rebuild the caption; in the joint posterior the image's expert does the rest.
# </details>

# %% [markdown]
# ## 5. Build it yourself: the MVAE's loss
#
# Write MVAE's loss of section 4 on the package's coders, one per modality: `coder.encode(x)` gives its
# expert `(mu, logvar)`, each `(B, d)`, and `coder.log_likelihood(x, coder.decode(z))` is
# $\lambda_m \log p_\theta(x^{(m)} \mid z)$, one number per sample. Three parts:
#
# - `posterior(experts)`: the product of the prior $\mathcal{N}(0, I)$ and the experts given;
# - `loss(*xs)`: for each set of modalities, its posterior, a reparameterised $z$, the log-likelihood of each
#   modality *of that set*, and the KL times `self.beta`; minus the sum of the ELBOs, averaged over the batch;
# - `my_mvae_step(model, batch, optimizer)`: one training step, returning the loss as a number.
#
# The check loads the package's `MVAE` weights into your class and compares the losses on four batches, then
# the parameters after one and two steps. Both losses draw the same noise: the check fixes torch's
# generator, so draw `eps` where the scaffold says.

# %%
class MyMVAE(nn.Module):
    """MVAE (Wu and Goodman 2018) with the package's parameters: one coder per modality."""

    def __init__(self, coders, beta=1.0, unimodal=True):
        super().__init__()
        self.coders, self.beta, self.unimodal = nn.ModuleList(coders), beta, unimodal

    def posterior(self, experts):
        """The product of the prior N(0, I) and the experts, a list of (mu, logvar), each (B, d): (mu, logvar)."""
        # YOUR CODE HERE
        raise NotImplementedError

    def loss(self, *xs):
        """Minus the sum of the ELBOs of the sets of modalities below, averaged over the batch: a number."""
        experts = [coder.encode(x) for coder, x in zip(self.coders, xs)]  # (mu, logvar) of each modality
        subsets = [[0, 1], [0], [1]] if self.unimodal else [[0, 1]]  # both modalities, then each alone
        # YOUR CODE HERE: for each subset, in this order, first eps = torch.randn_like(experts[0].mu), then
        # its posterior, z and the KL, and the log-likelihood of each modality of the subset
        raise NotImplementedError


def my_mvae_step(model, batch, optimizer):
    """One training step on batch (one tensor per modality); returns the loss, a number."""
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("mvae_loss", MyMVAE)
exercises.check("mvae_step", my_mvae_step)

# %% [markdown]
# <details><summary><b>Hint 1: a nudge</b></summary>
#
# The prior is one more expert, with mean 0 and precision 1: it adds 1 to the summed precisions and nothing
# to the precision-weighted means. In the loss every set of modalities gets its own posterior, its own sample
# and its own KL, and rebuilds only its own modalities. Add the ELBOs per sample, then average over the batch
# and take minus that. The step is the usual four moves: forget the old gradients, compute the loss,
# backpropagate, step.
# </details>
# <details><summary><b>Hint 2: what helps</b></summary>
#
# A precision is `(-logvar).exp()`, and the product's log-variance is `-precision.log()`. Your
# `my_sample_and_kl(mu, logvar, eps)` of section 3 gives z and the KL. One modality's term is
# `self.coders[m].log_likelihood(xs[m], self.coders[m].decode(z))`, shape `(B,)`. The step:
# `optimizer.zero_grad()`, `model.loss(*batch)`, `.backward()`, `optimizer.step()`, `.item()`.
# </details>
# <details><summary><b>Hint 3: the code</b></summary>
#
# ```python
# def posterior(self, experts):
#     precision = 1 + sum((-logvar).exp() for _, logvar in experts)  # the prior adds precision 1
#     mu = sum(mu * (-logvar).exp() for mu, logvar in experts) / precision  # and mean 0
#     return mu, -precision.log()
#
# # in loss, after subsets = ...:
#     elbo = 0
#     for subset in subsets:
#         eps = torch.randn_like(experts[0].mu)
#         mu, logvar = self.posterior([experts[m] for m in subset])
#         z = mu + (0.5 * logvar).exp() * eps
#         kl = 0.5 * (logvar.exp() + mu.pow(2) - 1 - logvar).sum(-1)  # (B,)
#         likelihood = sum(self.coders[m].log_likelihood(xs[m], self.coders[m].decode(z)) for m in subset)
#         elbo = elbo + likelihood - self.beta * kl
#     return -elbo.mean()
#
# def my_mvae_step(model, batch, optimizer):
#     optimizer.zero_grad()
#     loss = model.loss(*batch)
#     loss.backward()
#     optimizer.step()
#     return loss.item()
# ```
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
class SolutionMVAE(nn.Module):
    """MVAE (Wu and Goodman 2018) with the package's parameters: one coder per modality."""

    def __init__(self, coders, beta=1.0, unimodal=True):
        super().__init__()
        self.coders, self.beta, self.unimodal = nn.ModuleList(coders), beta, unimodal

    def posterior(self, experts):
        precision = 1 + sum((-logvar).exp() for _, logvar in experts)  # the prior N(0, I) adds precision 1
        mu = sum(mu * (-logvar).exp() for mu, logvar in experts) / precision  # and mean 0
        return mu, -precision.log()

    def loss(self, *xs):
        experts = [coder.encode(x) for coder, x in zip(self.coders, xs)]
        subsets = [[0, 1], [0], [1]] if self.unimodal else [[0, 1]]
        elbo = 0
        for subset in subsets:
            eps = torch.randn_like(experts[0].mu)
            mu, logvar = self.posterior([experts[m] for m in subset])
            z = mu + (0.5 * logvar).exp() * eps
            kl = 0.5 * (logvar.exp() + mu.pow(2) - 1 - logvar).sum(-1)  # (B,)
            likelihood = sum(self.coders[m].log_likelihood(xs[m], self.coders[m].decode(z)) for m in subset)
            elbo = elbo + likelihood - self.beta * kl
        return -elbo.mean()


def solution_mvae_step(model, batch, optimizer):
    optimizer.zero_grad()
    loss = model.loss(*batch)
    loss.backward()
    optimizer.step()
    return loss.item()


exercises.check("mvae_loss", SolutionMVAE, must_pass=True)
exercises.check("mvae_step", solution_mvae_step, must_pass=True)

# %% [markdown]
# Train your MVAE on Shapes for four epochs (about a second; the package's stands in until your checks
# pass), and let section 1's referee read the scenes it draws from captions alone:

# %%
from mmcourse.autoencoders import MVAE  # noqa: E402  (imported after the build it answers)

Model = exercises.yours_or("mvae_loss", MyMVAE, MVAE)
step = exercises.yours_or("mvae_step", my_mvae_step, experiments.mvae_step)
built, history = experiments.train_built(Model, step, shapes, epochs=4)
views.training_curves({f"{Model.__name__} on Shapes, {len(history.epoch)} epochs": history})
drawn = experiments.cross_modal_coherence(experiments.as_package_mvae(built, shapes), shapes, shapes_run.referees)
scenes = drawn["caption -> image"]
print(f"caption -> image coherence {scenes.coherence:.3f} (chance {scenes.chance:.3f}), {history.seconds:.1f} s")

# %% [markdown]
# From here on the lesson uses the package's `MVAE` (`mmcourse/autoencoders.py`): its `loss` is yours, and it
# also takes a missing modality (`None`). Its `product_of_experts` takes any number of experts; check it
# against the closed form and section 4's right panel:

# %%
from mmcourse.autoencoders import product_of_experts  # noqa: E402  (imported after the build it answers)

g = torch.Generator().manual_seed(0)
mu_e, logvar_e = torch.randn(3, 5, 16, generator=g), torch.randn(3, 5, 16, generator=g)  # 3 experts, B = 5, d = 16
product = product_of_experts(mu_e, logvar_e)
precisions = (-logvar_e).exp()
closed_mu, closed_var = (precisions * mu_e).sum(0) / precisions.sum(0), 1 / precisions.sum(0)
verify(torch.allclose(product.mu, closed_mu, atol=1e-5) and torch.allclose(product.logvar.exp(), closed_var),
       "product_of_experts is the precision-weighted closed form", largest_difference=(product.mu - closed_mu).abs().max())
mu_1, var_1 = torch.tensor([[2.0]]), torch.tensor([[0.25]])  # the right panel's expert N(2, 0.25)
one = product_of_experts(torch.stack([torch.zeros(1, 1), mu_1]), torch.stack([torch.zeros(1, 1), var_1.log()]))
verify(torch.allclose(one.mu, mu_1 / (1 + var_1)) and torch.allclose(one.logvar.exp(), var_1 / (1 + var_1)),
       "with the prior expert, N(mu, sigma^2) becomes N(mu / (1 + sigma^2), sigma^2 / (1 + sigma^2))",
       mean=one.mu, variance=one.logvar.exp())


# %% [markdown]
# The package's MVAE on Shapes and AV-Digits, 20 epochs each (about five seconds), and both VAEs' training
# curves:

# %%
experiments.train_models(shapes_run, ["MVAE"], progress=True)
experiments.train_models(av_run, ["MVAE"], progress=True)
views.training_curves({f"{run.data.name}: {m}": run.histories[m] for run in (shapes_run, av_run)
                       for m in ("MVAE", "MMVAE")})

# %% [markdown]
# ### Experiment: the KL weight
#
# Your loss weighs the KL by `beta`. Choose a $\beta$ for AV-Digits' MVAE that draws **sharper digits from
# speech** than $\beta = 1$ and lets **the image alone call up the right spoken digit more often**. The check
# trains MVAE with your $\beta$ (a second) and compares it on the test split with the $\beta = 1$ model above:
# the sharpness of the digits decoded from spoken digits (the mean absolute difference between neighbouring
# pixels; blur lowers it), as a ratio, and section 2's image -> audio coherence. Predict the ratio first:

# %%
exercises.predict("kl_weight", None)  # your guess: how much sharper than beta = 1, a ratio such as 1.05

# %%
def my_kl_weight():
    # YOUR CODE HERE: return the KL weight beta to try, from 0 to 10
    raise NotImplementedError


exercises.check("kl_weight", my_kl_weight)

# %% [markdown]
# <details><summary><b>Hint 1: a nudge</b></summary>
#
# The KL pulls every posterior towards the prior, so the more it weighs, the wider the posteriors, and a
# decoder trained on codes drawn from wide posteriors learns to draw averages. Which way should the weight
# move from 1? Try a few values that way and watch both numbers.
# </details>
# <details><summary><b>Hint 2: what helps</b></summary>
#
# `beta` multiplies the KL in the loss (your `self.beta * kl`). `experiments.kl_weight_run(beta)` returns
# every number the check measures, the posterior widths too, so you can compare several values.
# </details>
# <details><summary><b>Hint 3: the code</b></summary>
#
# ```python
# def my_kl_weight():
#     return 0.3  # a third of the default weight
# ```
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_kl_weight():
    return 0.3  # a third of the default weight: narrower posteriors, sharper digits


exercises.check("kl_weight", solution_kl_weight, must_pass=True)

# %% [markdown]
# ### Check yourself
#
# 1. Why does the check of your loss fix torch's random generator, and why must `eps` be drawn where the
#    scaffold says?
#
# <details><summary>Answer</summary>
#
# Two correct losses agree only on the same noise. With the generator fixed, the package's loss and yours
# draw the same numbers in the same order, one `(B, d)` draw per set of modalities; drawn elsewhere, your
# noise differs, and so does your loss.
# </details>
#
# 2. A smaller $\beta$ drew sharper digits. What does it give up?
#
# <details><summary>Answer</summary>
#
# The KL keeps each posterior near $\mathcal{N}(0, I)$, so that codes drawn from the prior decode to
# something sensible; with less weight the posteriors narrow (the check printed their widths) and drift.
# And for $\beta < 1$ the objective is no longer a lower bound on $\log p(x)$.
# </details>

# %% [markdown]
# ## 6. Measure generation, don't eyeball it
#
# For every model and direction, generate one modality from the other alone and let the referee read
# it: a scene from a caption is coherent when the referee reads the caption's shape *and* colour, a
# caption from a scene when its tokens name them. The VAEs decode a code *sampled* from the posterior,
# the autoencoder its one code. **Joint coherence**, for the VAEs: decode codes drawn from the prior
# into both modalities and ask whether the two referees agree. The cell first trains the autoencoder on
# Shapes too (about a second).

# %%
experiments.train_models(shapes_run, ["autoencoder"])
tables = {"shapes": experiments.coherence_table(shapes_run), "av": experiments.coherence_table(av_run)}
for name, table in tables.items():
    for model, row in table.items():
        print(f"{name:>6} {model:>11}:", "  ".join(f"{d} {c.coherence:.2f} ({c.chance:.2f})" for d, c in row.items()))

# %%
views.coherence_bars(tables, "coherence (bars) and chance (black ticks)")

# %% [markdown]
# Look at the samples behind those numbers: test captions (top) and the scenes each model draws from
# the caption alone.

# %%
columns = list(range(7))
captions = shapes.test["caption"][columns]
views.generated_rows(shapes, {"real scene": shapes.test["image"][columns],
                              **{m: shapes_run.models[m].generate(None, captions)[0] for m in experiments.MODELS}},
                     [views.caption_title(c) for c in captions])
caption_to_image = {m: t["caption -> image"] for m, t in tables["shapes"].items()}
speech_to_image = {m: t["audio -> image"] for m, t in tables["av"].items()}
worst_caption = min(c.coherence / c.chance for c in caption_to_image.values())
worst_speech = min(c.coherence - c.chance for c in speech_to_image.values())

# %%
experiments.CAPTION_TO_IMAGE.check(worst_caption, **{m: c.coherence for m, c in caption_to_image.items()})
experiments.SPEECH_TO_IMAGE.check(worst_speech, **{m: c.coherence for m, c in speech_to_image.items()})

# %% [markdown]
# The autoencoder has no joint coherence: nothing puts its codes where $\mathcal{N}(0, I)$ draws them.
#
# ### Where the code lies, and how wide it is: MVAE against MMVAE
#
# A coherence from sampled codes mixes where the posterior puts a caption's code with how far a sample
# strays from it. Separate them: decode the posterior *mean*, and ten sampled codes per caption, and
# measure the posterior's width (the code's standard deviation). Compare the models caption by caption:

# %%
codes = {m: experiments.mean_and_sampled(shapes_run.models[m], shapes, shapes_run.referees, "caption")
         for m in experiments.GENERATIVE}
width = {m: experiments.posterior_width(shapes_run.models[m], shapes, "caption") for m in experiments.GENERATIVE}
for m, c in codes.items():
    print(f"{m:>5}: caption -> image from the mean {c.from_mean.float().mean():.3f}, sampled {c.sampled.mean():.3f}"
          f" | width of the code from the caption {width[m]:.3f}")
for label in ("from_mean", "sampled"):
    print(f"MMVAE minus MVAE, {label.replace('_', ' ')}:",
          paired_difference(getattr(codes["MMVAE"], label).float(), getattr(codes["MVAE"], label).float()))
cost = {m: c.from_mean.float().mean().item() - c.sampled.mean().item() for m, c in codes.items()}
wider, costlier = width["MVAE"] / width["MMVAE"], cost["MVAE"] - cost["MMVAE"]

# %%
experiments.CAPTION_CODE_WIDER.check(wider, **width)
experiments.SAMPLING_COSTS_MVAE_MORE.check(costlier, **cost)

# %% [markdown]
# MVAE's code from the caption alone is wider than MMVAE's, and sampling costs MVAE more: a sample from
# a wide posterior strays into other scenes' codes. A likely reason (untested): MVAE's caption expert
# is trained to explain only four coarse tokens, while MMVAE's must draw the scene from its own samples.
#
# Which model does better is not claimed: from the mean it changes with the seed; sampled, MMVAE led on
# all ten seeds, but by too little.
#
# ### Inference with a modality missing
#
# A linear probe ([linear discriminant analysis](https://scikit-learn.org/stable/modules/lda_qda.html))
# learns to read the digit from codes of both modalities, then reads codes from both and from each alone:

# %%
for m in experiments.MODELS:
    print(f"{m:>11}:", {case: round(a, 3) for case, a in experiments.latent_probe(av_run.models[m], av).items()})

# %% [markdown]
# No model is asked to put a one-modality code where the code from both lies. These rows move with the
# seed; none is claimed.
#
# ### Drawing what was never seen
#
# No training scene held a red triangle. Ask each model for "a red triangle" in every size and place
# and let the referee read the scenes (*zero-shot*, as in lesson 07). All three models share two parts
# built for it: the caption encoder adds one learned embedding per token, so "red" and "triangle" each
# bring what they meant in other scenes, and the scene decoder draws shape and colour apart. The referee
# never saw a red triangle either (the cell prints how it reads real ones). Chance is 1/12, one (shape,
# colour) combination of 3 x 4.

# %%
heldout = {m: experiments.heldout_coherence(shapes_run.models[m], shapes, shapes_run.referees)
           for m in experiments.MODELS}
print({m: round(c.coherence, 3) for m, c in heldout.items()}, "| chance:", round(heldout["MVAE"].chance, 3))
print("over chance:", {m: round(c.coherence / c.chance, 2) for m, c in heldout.items()})
count, accuracy = experiments.referee_on_heldout(shapes, shapes_run.referees)
print(f"referee on the test split's {count} real red triangles: {accuracy:.3f}")
captions = experiments.heldout_captions(1)[::3]
views.generated_rows(shapes, {m: shapes_run.models[m].generate(None, captions)[0] for m in experiments.MODELS},
                     [views.caption_title(c) for c in captions])
mmvae, auto = heldout["MMVAE"], heldout["autoencoder"]

# %%
experiments.HELDOUT.check(mmvae.coherence / mmvae.chance, coherence=mmvae.coherence, chance=mmvae.chance)
experiments.HELDOUT_AUTOENCODER.check(auto.coherence / auto.chance, coherence=auto.coherence, chance=auto.chance)

# %% [markdown]
# MMVAE and the deterministic autoencoder both draw red triangles more than twice as often as chance:
# drawing an unseen combination takes no VAE objective. MVAE's number is not claimed: its
# samples from a wide caption posterior can stray.
#
# ### The running comparison: retrieval in the latent space
#
# Lesson 02 retrieved test images with spoken queries in CCA's shared space. Do the same in each
# model's latent space: the code of each spoken digit (audio alone) ranks the test images by the cosine
# similarity of their codes (image alone).

# %%
retrieval = {m: experiments.mvae_retrieval(av_run.models[m], av) for m in experiments.MODELS}
cca = experiments.cca_retrieval(av)  # lesson 02's linear CCA on the same data
print(f"{'linear CCA (02)':>16}: Recall@1 {cca['recall1']:.3f}, Recall@5 {cca['recall5']:.3f}")
for m, r in retrieval.items():
    print(f"{m + ' latent':>16}: Recall@1 {r.recall_at_1:.3f}, Recall@5 {r.recall_at_5:.3f}")
print(f"{'chance':>16}: Recall@1 {cca['chance1']:.3f}, Recall@5 {cca['chance5']:.3f}")
mvae = retrieval["MVAE"]

# %%
experiments.RETRIEVAL.check(mvae.recall_at_5 - mvae.chance_at_5, recall_at_5=mvae.recall_at_5, chance=mvae.chance_at_5)

# %% [markdown]
# A generative model's latent space must also hold what the two modalities do not share (the handwriting,
# the voice), which CCA can leave out; lesson 07 trains a space *for* retrieval. The MVAE's row joins the
# course's running comparison (no labels), kept for lesson 07:

# %%
rows = experiments.comparison_rows(av_run.models["MVAE"], av)
print(comparison.table(rows))
comparison.keep("autoencoders", seed=0, entries=rows)

# %% [markdown]
# ### See it: the latent space
#
# The test scenes' codes from their captions, on the latent space's two principal components (marker:
# shape, colour: colour). Move the point with two sliders: it is decoded live into a scene and a
# caption. The sample sliders pick two test captions whose codes are interpolated and decoded; set "in"
# to `image only` to go from scenes to captions. Where do the red triangles' codes fall?

# %%
explorer = views.LatentExplorer(shapes_run.models["MMVAE"], shapes)
explorer

# %% [markdown]
# ### Check yourself
#
# 1. What does "chance" measure in the coherence table, and what is it for the held-out red triangles?
#
# <details><summary>Answer</summary>
#
# In the table, the same coherence against another sample's condition (shuffled pairs): how often the
# referee's reading would match by accident. For the red triangles shuffling changes nothing (every
# caption names the same combination), so chance is 1/12, one (shape, colour) combination of 3 x 4.
# </details>
#
# 2. Why compare the two VAEs from the posterior mean as well as from sampled codes?
#
# <details><summary>Answer</summary>
#
# A sampled code mixes where the posterior puts the code with how wide the posterior is. MVAE's code
# from the caption is wider, so sampling costs it more (both claimed); the mean takes most of the width
# out and asks only where the code lies, although MVAE's prior expert still pulls a wide expert's mean
# towards 0.
# </details>

# %% [markdown]
# ## 7. A pitfall: an "alignment" term that aligns nothing
#
# Tutorials on cross-modal autoencoders often train one autoencoder per modality and add a term that
# pulls the two codes of a pair together, as in the correspondence autoencoder of Feng, Wang and Li
# (2014), [*Cross-modal Retrieval with Correspondence Autoencoder*](https://doi.org/10.1145/2647868.2654902).
# Here the term is the squared distance between the two codes after standardising each dimension over
# the batch (`standardized_distance`). Its mean over the batch is $\frac{2(B-1)}{B} \sum_j (1 - \rho_j)$,
# where $\rho_j$ is the correlation across the batch between dimension $j$ of the image code and of the
# audio code: so it makes the codes *correlate*, as CCA does, and shrinking the codes cannot meet it.
# One typo turns it into a constant:

# %%
print(experiments.buggy_alignment.__doc__)
z_image, z_audio = torch.randn(6, 16), torch.randn(6, 16)
print("buggy term on unrelated codes:", experiments.buggy_alignment(z_image, z_audio).tolist())

# %% [markdown]
# Train both versions on AV-Digits (about a second each), and look at their losses and their terms.
# The **shuffled-pairs control** (`mmcourse.diagnostics.shuffled_pairs`) pairs every image with another
# sample's audio: a term that measures alignment must be larger on strangers than on true pairs, and
# the codes of true pairs must be closer than those of strangers.

# %%
pitfall = experiments.alignment_pitfall(av)
for name, r in pitfall.items():
    print(f"{name:>7} term: loss {r['history'].train_loss[0]:.0f} -> {r['history'].train_loss[-1]:.0f} | "
          f"term on real pairs {r['term']:.3f}, on shuffled pairs {r['term_shuffled']:.3f} | "
          f"code distance paired {r['paired']:.1f}, shuffled {r['shuffled']:.1f} | "
          f"retrieval Recall@1 {r['retrieval'].recall_at_1:.3f} (chance {r['retrieval'].chance_at_1:.3f})")
views.alignment_pitfall(pitfall)
buggy, correct = pitfall["buggy"], pitfall["correct"]
verify(buggy["term"] == 0 and buggy["term_shuffled"] == 0, "the buggy term is 0 on real and on shuffled pairs alike")

# %%
experiments.ALIGNMENT_CONSTANT.check(abs(buggy["ratio"] - 1), ratio=buggy["ratio"], paired=buggy["paired"],
                                     shuffled=buggy["shuffled"])
experiments.ALIGNMENT_WORKS.check(correct["ratio"], paired=correct["paired"], shuffled=correct["shuffled"])

# %% [markdown]
# Both losses fell, and the buggy term even reports a perfect alignment of 0. But a term that does not
# change when you shuffle the pairs cannot know anything about the pairs. The loss could not tell the
# two models apart; the shuffled-pairs control could, without labels (so could retrieval, with labels).

# %% [markdown]
# ### Check yourself
#
# 1. Both losses fell. Why is a falling loss no evidence that the alignment term works?
#
# <details><summary>Answer</summary>
#
# The loss adds the two reconstructions to the term, and the reconstructions improve whatever the term
# does. The buggy term was 0 from the start, so the whole fall came from the reconstructions.
# </details>
#
# 2. Why can a term that has the same value on shuffled pairs know nothing about the pairs?
#
# <details><summary>Answer</summary>
#
# Whatever it measures, it measures the same whether the image and the audio belong together or not,
# so its gradient cannot push the codes of a true pair together rather than a stranger's.
# </details>

# %% [markdown]
# ## Summary
#
# - A **bimodal autoencoder** learns one code from both modalities; zeroing one modality at random in
#   training makes the image alone call up the right spoken digit more often (image -> audio; the
#   other direction changes sign with the seed and is not claimed).
# - A **VAE** maximises the ELBO, reconstruction minus the KL to the prior, a lower bound on
#   $\log p(x)$; the reparameterisation $z = \mu + \sigma \odot \varepsilon$ lets gradients reach the
#   encoder.
# - **MVAE** multiplies the experts with the prior expert (precisions add); a missing modality is left
#   out. You wrote its loss; a KL weight below 1 drew sharper digits from speech. **MMVAE** averages the
#   experts and samples each stratum, so each unimodal code must explain every modality.
# - **Measure** generation with referees against chance, from sampled codes *and* from the posterior
#   mean. Here MVAE's code from a caption is wider than MMVAE's, and the deterministic
#   autoencoder draws held-out combinations too: that takes no VAE.
# - A term that does not change under **shuffled pairs** knows nothing about the pairs, however well
#   the loss falls.
#
# **Try it:** train MVAE on the joint ELBO alone, `experiments.train_model("MVAE", shapes, unimodal=False)`,
# and compare its image -> caption coherence with section 6's table.
#
# **Papers**
#
# - Ngiam et al. (2011), [*Multimodal Deep Learning*](https://people.csail.mit.edu/khosla/papers/icml2011_ngiam.pdf).
# - Kingma and Welling (2014), [*Auto-Encoding Variational Bayes*](https://arxiv.org/abs/1312.6114).
# - Wu and Goodman (2018), [*Multimodal Generative Models for Scalable Weakly-Supervised Learning*
#   (MVAE)](https://arxiv.org/abs/1802.05335).
# - Shi, Siddharth, Paige and Torr (2019), [*Variational Mixture-of-Experts Autoencoders for Multi-Modal
#   Deep Generative Models* (MMVAE)](https://arxiv.org/abs/1911.03393).
#
# <details><summary>More: three papers for going further</summary>
#
# - Suzuki, Nakayama and Matsuo (2017), [*Joint Multimodal Learning with Deep Generative Models*
#   (JMVAE)](https://arxiv.org/abs/1611.01891): a joint encoder, with unimodal encoders pulled towards it.
# - Sutter, Daunhawer and Vogt (2021), [*Generalized Multimodal ELBO* (MoPoE)](https://arxiv.org/abs/2105.02470):
#   a mixture of products over every subset of the modalities.
# - Daunhawer, Sutter, Chin-Cheong, Palumbo and Vogt (2022), [*On the Limitations of Multimodal
#   VAEs*](https://arxiv.org/abs/2110.04121): models trained on subsets of the modalities (MMVAE, MoPoE,
#   and MVAE with its unimodal ELBOs, as here) have their multimodal ELBO capped by that sub-sampling,
#   and so generate worse samples than unimodal VAEs; on harder data none of the models they test gets
#   both coherence and sample quality.
# </details>
#
# **Next:** [lesson 06](06_meta.ipynb) learns from a few examples of new classes (meta-learning). The
# MVAE's latent space returns in [lesson 07](07_contrastive.ipynb)'s running comparison, and [lesson
# 08](08_transfer.ipynb) places MVAE and MMVAE on the course's map of multimodal challenges.
