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
# # Lesson 07: Contrastive learning: retrieval and zero-shot
#
# **What you will learn:** how a contrastive loss (CLIP's) learns one space for images and text from
# matching pairs alone; how to measure retrieval the way papers report it (Recall@K, and NDCG when
# relevance is graded) against exact chance levels; what the learned temperature does; how text
# prompts turn the model into a classifier of combinations it never saw; and where the contrastive
# model stands in the course's running comparison of speech-to-image retrieval. **Time:** about 45
# minutes. **Runs on:** a laptop CPU in about half a minute (each model trains in a few seconds); a
# GPU is used when there is one.
#
# ## 1. Why: the right pair against all the others
#
# Lesson 02 found a shared space for two modalities with CCA: directions along which paired samples
# *agree*. It never asked whether a sample agrees *more* with its own partner than with anybody
# else's, and that is exactly what retrieval needs: type a caption, and its image must come out on
# top of all the others.
#
# A contrastive model asks that question directly. Take a batch of B images and their B captions,
# embed each with its own encoder, and compare every caption with every image: a B x B matrix of
# similarities. The B matching pairs sit on its diagonal; the other $B^2 - B$ entries are
# non-matching pairs, for free. Training makes each diagonal entry win its row (the caption picks
# its image) and its column (the image picks its caption). Here is that matrix for 6 test pairs and
# a model that has not been trained yet: no diagonal to be seen.

# %%
import math

import torch
import torch.nn.functional as F

import mmcourse
from mmcourse import exercises, verify
from mmcourse.contrastive import LOGIT_SCALE_INIT, LOGIT_SCALE_MAX, clip_loss, similarity
from mmcourse.data import VOCAB
from mmcourse.experiments import contrastive as experiments
from mmcourse.metrics import ndcg_at_k
from mmcourse.views import contrastive as views

print("training on:", mmcourse.get_device())

# %%
data = experiments.load_scenes(seed=0)
train, test = data["train"], data["test"]
batch = slice(0, 6)
mmcourse.seed_everything(0)
untrained = experiments.build_model().eval()
with torch.no_grad():
    before = similarity(untrained.encode_text(test["caption_ids"][batch]), untrained.encode_image(test["image"][batch]))
views.similarity_matrix(test["image"][batch], before, "before training: caption i (row) against scene j (column)")
for i in range(6):
    print(f"caption {i}: {VOCAB.decode(test['caption_ids'][i])}")

# %% [markdown]
# ## The theory
#
# **Notation.** An image $x^{(1)}_i$ and its caption $x^{(2)}_i$ are encoded by $f_1$ and $f_2$, projected
# and normalised to unit length: $h^{(1)}_i, h^{(2)}_i \in \mathbb{R}^d$ with $\|h\| = 1$, so that
# $h^{(1)\top}_i h^{(2)}_j$ is a cosine similarity in $[-1, 1]$. With a temperature $\tau$ the logits
# of a batch are
#
# $$\ell_{ij} = \frac{h^{(1)\top}_i h^{(2)}_j}{\tau}, \qquad
#   \mathcal{L} = \frac{1}{2B}\sum_{i=1}^{B}\left[-\log\frac{e^{\ell_{ii}}}{\sum_{j} e^{\ell_{ij}}}
#   - \log\frac{e^{\ell_{ii}}}{\sum_{j} e^{\ell_{ji}}}\right].$$
#
# The first term is a cross-entropy over each *row* (image $i$ must pick caption $i$ among the B
# captions), the second over each *column* (caption $i$ must pick image $i$). This is the loss of CLIP
# (Radford et al. 2021, [*Learning Transferable Visual Models From Natural Language
# Supervision*](https://arxiv.org/abs/2103.00020)) and of ALIGN (Jia et al. 2021, [*Scaling Up Visual
# and Vision-Language Representation Learning With Noisy Text
# Supervision*](https://arxiv.org/abs/2102.05918)); a single direction of it is the InfoNCE loss of
# Oord, Li and Vinyals (2018), [*Representation Learning with Contrastive Predictive
# Coding*](https://arxiv.org/abs/1807.03748). Before them, DeViSE (Frome et al. 2013, [*DeViSE: A Deep
# Visual-Semantic Embedding Model*](https://papers.nips.cc/paper/5204-devise-a-deep-visual-semantic-embedding-model))
# embedded images next to the word vectors of their labels with a hinge ranking loss, and VSE++
# (Faghri et al. 2018, [*VSE++: Improving Visual-Semantic Embeddings with Hard
# Negatives*](https://arxiv.org/abs/1707.05612)) trained image-caption spaces with a hinge on the
# hardest negative of the batch.
#
# **The temperature.** CLIP learns it, as $\tau = 1/e^{s}$ with a trainable $s$ started at
# $\log(1/0.07)$ and clamped to at most $\log 100$ after every optimiser step, so that $\tau$ never
# falls below 0.01 (a sharper softmax made training unstable). Without a small $\tau$ the loss cannot
# even express confidence: cosine similarities lie in $[-1, 1]$, so with $\tau = 1$ the best a
# batch of 128 can do is a matching logit of 1 against 127 logits of $-1$:

# %%
b = 128
best_probability = math.exp(1) / (math.exp(1) + (b - 1) * math.exp(-1))
print(f"tau = 1, batch of {b}: the matching pair gets at most p = {best_probability:.3f}, "
      f"so the loss stays above {-math.log(best_probability):.2f}")
print(f"s starts at log(1/0.07) = {LOGIT_SCALE_INIT:.3f} and is clamped to log(100) = {LOGIT_SCALE_MAX:.3f}")

# %% [markdown]
# ## Build it
#
# `clip_loss(image_emb, text_emb, logit_scale)` normalises both embeddings, forms
# `exp(logit_scale) * image @ text.T` and averages the two cross-entropies against the diagonal. Check
# it against the formula written out row by row and column by column, with plain `log_softmax`:

# %%
g = torch.Generator().manual_seed(0)
image_emb, text_emb, s = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g), torch.tensor(2.0)
logits = s.exp() * F.normalize(image_emb, dim=1) @ F.normalize(text_emb, dim=1).T
by_hand = -(logits.log_softmax(dim=1).diagonal().mean() + logits.log_softmax(dim=0).diagonal().mean()) / 2
ours = clip_loss(image_emb, text_emb, s)
verify(torch.isclose(ours, by_hand, atol=1e-6), "clip_loss is the mean of the row and column cross-entropies",
       ours=ours, by_hand=by_hand)
verify(torch.isclose(ours, clip_loss(text_emb, image_emb, s), atol=1e-6),
       "swapping the modalities gives the same loss", swapped=clip_loss(text_emb, image_emb, s))

# %% [markdown]
# Two values you can predict. When the embeddings carry no information, every item of a row is
# about equally likely and each cross-entropy is about $\log B$ (exactly so as the logits shrink to 0;
# here $s = 0$, so the logits are the cosines, which are small between random vectors in 64
# dimensions). When every image points exactly at its own caption and the scale is large, the
# diagonal wins everything and the loss is close to 0:

# %%
for n in (10, 100, 1000):
    random_loss = clip_loss(torch.randn(n, 64, generator=g), torch.randn(n, 64, generator=g), 0.0)
    print(f"B = {n:>4}: random embeddings give {random_loss:.3f}, log B = {math.log(n):.3f}")
aligned = torch.randn(100, 64, generator=g)
aligned_loss = clip_loss(aligned, aligned, LOGIT_SCALE_MAX)
verify(abs(random_loss - math.log(1000)) < 0.1 and aligned_loss < 0.01,
       "about log B on random embeddings, about 0 on aligned ones with the largest scale",
       random_loss=random_loss, aligned_loss=aligned_loss)

# %% [markdown]
# ## 2. Contrastive retrieval on Shapes & captions
#
# The data: 3,000 training scenes with their captions and 500 test scenes, from Shapes & captions.
# The training split never shows a red triangle, a green square or a blue circle (section 3 needs
# that); the test split may. The model, a `DualEncoder`, has one encoder per modality, a linear
# projection of each into a shared space of 64 dimensions, unit length, and the trainable $s$:
#
# - the scene goes through `PatchSetEncoder`: lesson 03's patches (mean colour, silhouette, position),
#   the same small network on every patch, and a max over the patches;
# - the caption goes through `ConvTextEncoder`: word embeddings and one convolution over windows of 8
#   words, the length of one object's phrase ("a large red triangle at the top left"), and a max.
#
# Both keep a colour bound to its shape, wherever the object is in the scene or the caption. A GRU
# (lessons 01 and 03) would have to carry the first object's colour in its last state through up to
# 26 words; a window sees each object's phrase whole.

# %%
print("training scenes:", tuple(train["image"].shape), "| their captions (padded token ids):",
      tuple(train["caption_ids"].shape), "| test scenes:", tuple(test["image"].shape))
model = experiments.build_model()
print(model)
print(f"{sum(p.numel() for p in model.parameters()):,} parameters; temperature {model.temperature:.3f}")

# %% [markdown]
# `DualEncoder.fit` trains it with `mmcourse.train.fit` and a `step` that computes `clip_loss` on
# each batch of 128 pairs. `fit` has no hook after the optimiser step, so the step clamps $s$ at its
# start, which is the same as clamping after the previous step, and `fit` clamps once more at the
# end. It also records $s$ at every step. Six passes over the 3,000 pairs take about 4 seconds:

# %%
model, history = experiments.train_model(train, seed=0, progress=True)
print(history, f"| temperature now {model.temperature:.4f}")

# %%
with torch.no_grad():
    after = similarity(model.encode_text(test["caption_ids"][batch]), model.encode_image(test["image"][batch]))
views.similarity_matrix(test["image"][batch], after, "after training: the diagonal stands out")

# %% [markdown]
# ### Measuring retrieval
#
# **Recall@K**: rank all 500 test scenes for a caption by cosine similarity; the query succeeds when a
# scene the caption describes exactly (the same objects, none missing, none extra) is among the top K.
# The other direction ranks the 500 captions for a scene. Chance is the exact Recall@K of a random
# ranking (`metrics.chance_recall_at_k`).
#
# Recall ignores *how wrong* the other top scenes are. A scene with two of the caption's three
# objects is a better answer than an empty one. **NDCG@K** (normalised discounted cumulative gain,
# Järvelin and Kekäläinen 2002, [*Cumulated gain-based evaluation of IR
# techniques*](https://doi.org/10.1145/582415.582418)) scores graded relevance $r_i$ of the item at
# rank $i$:
#
# $$\mathrm{DCG@}K = \sum_{i=1}^{K} \frac{r_i}{\log_2(i + 1)}, \qquad
#   \mathrm{NDCG@}K = \frac{\mathrm{DCG@}K}{\mathrm{DCG@}K \text{ of the best possible ranking}} .$$
#
# Here the relevance of a scene to a caption is how many of the caption's objects it contains with
# all four attributes (shape, colour, size, position): 0 to 3. `ndcg_at_k` equals scikit-learn's
# `ndcg_score` (checked in the tests; you write it yourself in exercise 2).

# %%
objects = experiments.objects_of(test)
relevance = experiments.contained(objects, objects)
print("relevance of scenes 0-5 to captions 0-5:\n", relevance[batch, batch].int().numpy())
print("scenes with relevance 0 / 1 / 2 / 3 to caption 0:",
      [int((relevance[0] == r).sum()) for r in range(4)])

# %% [markdown]
# As a baseline without learned encoders, fit lesson 02's linear CCA between the scenes' pixels
# (averaged over 4 x 4 blocks: 192 numbers) and the captions' word counts, on the same training
# pairs, and retrieve in its shared space (16 canonical pairs) the same way:

# %%
linear_cca = experiments.fit_linear_cca(train)
print("canonical directions: pixels", tuple(linear_cca.cca.x_weights_.shape), "| words",
      tuple(linear_cca.cca.y_weights_.shape))
results = {"contrastive": experiments.two_way_retrieval(*experiments.embed(model, test), objects),
           "linear CCA": experiments.two_way_retrieval(*experiments.embed(linear_cca, test), objects)}
print(experiments.table(results))

# %%
c2i = "caption -> image"
learned, linear, chance = results["contrastive"][c2i], results["linear CCA"][c2i], results["contrastive"]["chance"][c2i]
experiments.RETRIEVES.check(learned["R@1"] - chance["R@1"], recall_at_1=learned["R@1"], chance=chance["R@1"])
experiments.BEATS_LINEAR_CCA.check(learned["NDCG@10"] - linear["NDCG@10"], contrastive=learned["NDCG@10"],
                                   linear_cca=linear["NDCG@10"])

# %% [markdown]
# Word counts cannot say which colour goes with which shape in a caption of several objects, so linear
# CCA has no way to bind them; the contrastive encoders can. Here are three captions and the five
# scenes the contrastive model ranks highest, with their similarity and relevance:

# %%
captions = [VOCAB.decode(ids) for ids in test["caption_ids"]]
with torch.no_grad():
    scores = model.encode_text(test["caption_ids"]) @ model.encode_image(test["image"]).T
views.retrieval_examples(captions, test["image"], scores, relevance, queries=[0, 1, 3])

# %% [markdown]
# NDCG@10 stays well below 1 for both models: the scenes ranked after the right one often share some
# attributes of the caption's objects, but whole objects (which is what counts here) less often. The
# loss never asked for more: it only asks the right scene to beat the others.
#
# ### What the temperature does
#
# The model learned its temperature. Starting from 0.07, it goes down, as CLIP's did (CLIP's reached
# the floor of 0.01 in its much longer training):

# %%
views.temperature_curve(model.logit_scales_)
print(f"temperature: {math.exp(-model.logit_scales_[0]):.4f} at the start, {model.temperature:.4f} at the end")
experiments.TEMPERATURE_FALLS.check(model.temperature, start=math.exp(-model.logit_scales_[0]))

# %% [markdown]
# Now train the same model with the temperature fixed at 1, so that the logits are the plain cosine
# similarities (about 4 seconds):

# %%
fixed, _ = experiments.train_model(train, seed=0, learn_temperature=False, temperature=experiments.FIXED_TEMPERATURE,
                                   progress=True)
results["contrastive, fixed T = 1"] = experiments.two_way_retrieval(*experiments.embed(fixed, test), objects)
print(experiments.table(results))

# %%
hot = results["contrastive, fixed T = 1"][c2i]
experiments.LEARNED_TEMPERATURE_HELPS.check(learned["R@1"] - hot["R@1"], learned=learned["R@1"], fixed=hot["R@1"])

# %% [markdown]
# With $\tau = 1$ the softmax is nearly flat, so every negative of the batch is pushed away about
# equally hard, the easy ones as much as the confusable ones. A small $\tau$ puts almost all of the
# push on the negatives that score close to the positive: the *hard* negatives, which are the ones
# that decide Recall@1.
#
# **Hard negatives and batch size.** Faghri et al. (2018) made that explicit: their VSE++ loss keeps
# only the hardest negative of each row and column, and it improved Recall@1 on COCO over summing
# all negatives. Either way, the negatives come from the batch, so the batch decides how hard they
# can be: a distinction that the negatives of a batch never test (two scenes that differ in one
# colour only) is never learned. Larger batches hold more such pairs; CLIP trained with batches of
# 32,768.
#
# ### See it: the retrieval browser
#
# Compose a one-object caption with the dropdowns and see the 8 test scenes the model ranks highest,
# with their similarity and whether they contain that object ("contains it": relevance 1), or else
# how many of its four attributes their closest object shares. Switch to linear CCA on the same
# scenes and captions. Try a red triangle: no training scene had one.

# %%
browser = views.RetrievalBrowser({"contrastive": model, "linear CCA": linear_cca}, test)
browser

# %% [markdown]
# ## 3. Zero-shot recognition of combinations never seen
#
# A model that matches images with captions can classify without a classifier: write one caption per
# class, embed them all, and give each image the class whose caption is most similar. CLIP
# recognised the classes of ImageNet this way without training on a single ImageNet label.
#
# The test: scenes of one object, in the 12 colour-shape classes, both sizes, at all 9 positions,
# twice each (432 scenes). Three of the classes, a red triangle, a green square and a blue circle,
# never appeared in any training scene or caption. Each class gets 18 prompts, its caption at every
# size and position ("a small red triangle at the top left" ...), and two ways to combine them:
# **mean**, CLIP's prompt ensembling (average the 18 unit embeddings), and **best**, where a class
# scores as its best prompt (the size and position of the best one then match the scene).
#
# For comparison, a **supervised** classifier: the same scene encoder and a linear layer, trained on
# the one-object training scenes with their labels (about a second).
# It has one output per *seen* class, so it cannot even name an unseen one.

# %%
prompts = experiments.class_prompts()
print("prompts:", tuple(prompts.shape), "(classes, prompts per class, words), e.g.",
      VOCAB.decode(prompts[experiments.CLASSES.index(("red", "triangle")), 0]))
print("one-object training scenes for the supervised classifier:", int((train["n_objects"] == 1).sum()))

# %%
supervised = experiments.train_supervised(train, seed=0)
zero_shot = experiments.zero_shot(model, supervised, seed=0)
print("test scenes:", len(zero_shot.scenes["label"]))
print(zero_shot.table())
views.zero_shot_bars(zero_shot)

# %%
accuracy = zero_shot.accuracy
verify(accuracy[("supervised", "unseen")] == 0.0, "the supervised classifier never names an unseen class",
       accuracy_unseen=accuracy[("supervised", "unseen")])
experiments.ZERO_SHOT_UNSEEN.check(accuracy[("prompts, best", "unseen")] - zero_shot.chance,
                                   accuracy_unseen=accuracy[("prompts, best", "unseen")], chance=zero_shot.chance)
experiments.SUPERVISED_BETTER_ON_SEEN.check(accuracy[("supervised", "seen")] - accuracy[("prompts, best", "seen")],
                                            supervised=accuracy[("supervised", "seen")],
                                            prompts=accuracy[("prompts, best", "seen")])

# %% [markdown]
# The text encoder had seen "red" and "triangle", but never together, and the image encoder had seen
# red things and triangles, never a red triangle; the shared space still puts the two together often.
# Which way of combining the prompts does better changes from seed to seed, so the lesson claims
# neither. On the seen classes the supervised classifier, trained on the labels themselves, does
# better: the contrastive model was never told that colour and shape are what matters. Some unseen
# scenes and the class the best prompt gives them:

# %%
views.unseen_examples(zero_shot)

# %% [markdown]
# ## 4. The course's running comparison
#
# Since lesson 02 the course has measured one task for every method that maps images and sounds into
# one space: on AV-Digits' test split (voices never heard in training), each spoken digit is a query,
# the test images are the gallery, and a retrieved image is a hit when it shows the spoken digit.
# Recall@1 and Recall@5 come with their exact chance levels (`metrics.class_retrieval`).
#
# The contrastive dual encoder for this task: `ImageEncoder` and `AudioEncoder` into 32 dimensions,
# CLIP's loss on the training pairs, no labels. Trained on the single noisy copy of the training pairs
# that `load_av_digits` gives, it learns that copy's noise by heart; so it trains on a few copies of
# the same pairs, each with fresh noise (about 4 seconds with the data):

# %%
ours = experiments.speech_to_image_retrieval(seed=0)
print(experiments.comparison_table(ours))
experiments.AV_RETRIEVES.check(ours[0].retrieval.recall_at_1 / ours[0].retrieval.chance_at_1,
                               recall_at_1=ours[0].retrieval.recall_at_1, chance=ours[0].retrieval.chance_at_1)

# %% [markdown]
# The other lessons' methods, each with the fast settings of its own experiments module (lessons
# 02, 04 and 05 each provide `speech_to_image_retrieval`; the line below lists what ran):

# %%
earlier = [entry for topic in ("cca", "alignment", "autoencoders")
           for entry in experiments.comparison_entries(topic, seed=0)]
entries = earlier + ours
print("lessons in the table:", sorted({e.lesson for e in entries}))
print(experiments.comparison_table(entries))
views.comparison_chart(entries)

# %% [markdown]
# Read the table with its "pairs" and "labels" columns: a method that uses the digit labels solves an
# easier problem than one that uses only the pairs, and a method that uses no pairs at all (the
# unsupervised alignment of lesson 04) the hardest. A method's row is comparable with another's only
# where both columns agree; the contrastive dual encoder uses all the pairs and no labels.
#
# ## Exercises
#
# ### 1. The symmetric contrastive loss
#
# Write `my_clip_loss(image_emb, text_emb, logit_scale)`: `image_emb` and `text_emb` are `(B, d)`,
# row i of each a matching pair; `logit_scale` is a 0-d tensor $s$. Return CLIP's loss as a 0-d tensor.

# %%
def my_clip_loss(image_emb, text_emb, logit_scale):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("clip_loss", my_clip_loss)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# `F.normalize(x, dim=1)` makes each row unit length. The logits are
# `logit_scale.exp() * image @ text.T`, shape `(B, B)`. The targets are `torch.arange(B)`: row i's
# right answer is column i. `F.cross_entropy(logits, targets)` covers the rows (image to text);
# `F.cross_entropy(logits.T, targets)` the columns. Average the two.
# </details>

# %% tags=["solution"] jupyter={"source_hidden": true}
def solution_clip_loss(image_emb, text_emb, logit_scale):
    logits = logit_scale.exp() * F.normalize(image_emb, dim=1) @ F.normalize(text_emb, dim=1).T
    targets = torch.arange(len(logits))
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


exercises.check("clip_loss", solution_clip_loss, must_pass=True)

# %% [markdown]
# ### 2. NDCG for one query, by hand
#
# Write `my_ndcg(scores, relevance, k)`: `scores` and `relevance` are `(G,)` tensors for one query's
# G gallery items. Rank the items by score (highest first), sum the relevance of the top `k` divided
# by $\log_2(\text{rank} + 1)$, and divide by the same sum for the items sorted by relevance. Return a
# Python `float`; when no item is relevant, return 0. (The cases have no tied scores.)

# %%
def my_ndcg(scores, relevance, k):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("ndcg_one_query", my_ndcg)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# `scores.argsort(descending=True)[:k]` gives the top k items. The discounts for ranks 1 to k are
# `1 / torch.log2(torch.arange(2, k + 2).float())`. The ideal DCG uses
# `relevance.sort(descending=True).values[:k]` with the same discounts.
# </details>

# %% tags=["solution"] jupyter={"source_hidden": true}
def solution_ndcg(scores, relevance, k):
    discount = 1 / torch.log2(torch.arange(2, k + 2).float())
    dcg = (relevance[scores.argsort(descending=True)[:k]] * discount).sum()
    ideal = (relevance.sort(descending=True).values[:k] * discount).sum()
    return (dcg / ideal).item() if ideal > 0 else 0.0


exercises.check("ndcg_one_query", solution_ndcg, must_pass=True)
print("the same with the package, on a (1, G) batch:",
      ndcg_at_k(torch.tensor([[0.9, 0.8, 0.7, 0.2, 0.1]]), torch.tensor([[3.0, 0.0, 1.0, 2.0, 0.0]]), 5))

# %% [markdown]
# ### 3. Find the bug
#
# A caption encoder built on a packed RNN needs its captions sorted by length, so a training script
# sorts each batch's captions and keeps `order`: `text_emb[j]` is the caption of image `order[j]`.
# Then it computes the loss like this. It runs, the loss is a number, and it goes down in training:

# %%
def buggy_reordered_loss(image_emb, text_emb, order, logit_scale):
    logits = logit_scale.exp() * F.normalize(image_emb, dim=1) @ F.normalize(text_emb, dim=1).T
    targets = torch.arange(len(logits))
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


exercises.check("reordered_captions_loss", buggy_reordered_loss)

# %% [markdown]
# Find what is wrong and write a fixed `my_reordered_loss(image_emb, text_emb, order, logit_scale)`.

# %%
def my_reordered_loss(image_emb, text_emb, order, logit_scale):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("reordered_captions_loss", my_reordered_loss)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# Where, in row i of `logits` (image i), is the caption of image i? It is at the column j with
# `order[j] == i`, that is `order.argsort()[i]`. Either use those targets (and `order` itself for the
# columns), or put the captions back in image order first: `text_emb[order.argsort()]`.
# </details>

# %% tags=["solution"] jupyter={"source_hidden": true}
def solution_reordered_loss(image_emb, text_emb, order, logit_scale):
    logits = logit_scale.exp() * F.normalize(image_emb, dim=1) @ F.normalize(text_emb, dim=1).T
    return (F.cross_entropy(logits, order.argsort()) + F.cross_entropy(logits.T, order)) / 2


exercises.check("reordered_captions_loss", solution_reordered_loss, must_pass=True)

# %% [markdown]
# ## Summary
#
# - A contrastive loss compares each pair with every other pair of its batch: CLIP's loss is the mean
#   of two cross-entropies over the B x B similarity matrix, rows and columns, with the matching pairs
#   on the diagonal. It is about $\log B$ when the embeddings mean nothing and 0 when every pair wins.
# - Normalise the embeddings and learn the temperature: with $\tau = 1$ the softmax cannot become
#   confident and retrieval suffers; CLIP starts at 0.07 and clamps $\tau$ at 0.01.
# - Report retrieval both ways with Recall@K and, when relevance is graded, NDCG@K, always next to the
#   exact chance level.
# - The negatives come from the batch: hard negatives (and larger batches, which contain more of
#   them) teach the fine distinctions.
# - Class prompts turn a matching model into a classifier of classes it never saw: here, colour-shape
#   combinations absent from training are recognised far above chance, which a supervised classifier
#   cannot do at all.
#
# **Further reading**
#
# - Frome et al. (2013), [*DeViSE: A Deep Visual-Semantic Embedding
#   Model*](https://papers.nips.cc/paper/5204-devise-a-deep-visual-semantic-embedding-model): images
#   embedded next to the word vectors of their labels, and zero-shot ImageNet classes.
# - Faghri, Fleet, Kiros and Fidler (2018), [*VSE++: Improving Visual-Semantic Embeddings with Hard
#   Negatives*](https://arxiv.org/abs/1707.05612): the max-of-hinges loss and Recall@K on COCO and Flickr30K.
# - Radford et al. (2021), [*Learning Transferable Visual Models From Natural Language
#   Supervision*](https://arxiv.org/abs/2103.00020) (CLIP): the loss of this lesson on 400 million
#   pairs, zero-shot transfer and prompt ensembling.
# - Jia et al. (2021), [*Scaling Up Visual and Vision-Language Representation Learning With Noisy Text
#   Supervision*](https://arxiv.org/abs/2102.05918) (ALIGN): the same idea on a billion noisy pairs.
# - Järvelin and Kekäläinen (2002), [*Cumulated gain-based evaluation of IR
#   techniques*](https://doi.org/10.1145/582415.582418): DCG and NDCG.
# - Lesson 08 shares and transfers knowledge between tasks and from a multimodal teacher to a
#   unimodal student.
