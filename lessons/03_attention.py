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
# # Lesson 03: Attention
#
# **What you will learn:** attention as a soft lookup, scaled dot-product and multi-head attention
# (checked against PyTorch's own), cross-modal attention where the words of a question look at the
# patches of an image, co-attention in both directions as in the Multimodal Transformer, how to
# *measure* whether attention looks at the right object, and why attention weights are not an
# explanation. **Time:** about 45 minutes. **Runs on:** a laptop CPU in under a minute (the two
# attention models train in a few seconds each); a GPU is used when there is one.
#
# Look at the scenes below and answer the questions. To say what colour the triangle is, you find
# the triangle first, then read its colour. A model has to do the same: the word "triangle" must
# pick out some pixels of the image among all the others. Fusing a whole-image vector with a
# whole-question vector (lesson 01) hides *which* pixels a word is about. **Attention** makes that
# choice explicit: every word gets a set of weights over the image's regions, and the weights say
# where it looks. Because we drew the scenes ourselves, we know where it *should* look, so you can
# check.

# %%
import math

import torch
import torch.nn.functional as F

import mmcourse
from mmcourse import exercises, verify
from mmcourse.attention import (
    AttentionVQA,
    MultiHeadAttention,
    merge_heads,
    scaled_dot_product_attention,
    split_heads,
)
from mmcourse.data import ANSWERS, VOCAB
from mmcourse.experiments import attention as experiments
from mmcourse.metrics import grounding_accuracy, patch_masks
from mmcourse.views import attention as views
from mmcourse.views.common import figure, show_scene

print("training on:", mmcourse.get_device())

# %%
shapes = experiments.load_colour_questions(seed=0)
with figure(10, 2.6, ncols=4, tight=False) as axes:
    for ax, row in zip(axes, shapes["test"].select(range(4))):
        show_scene(ax, row["image"], title=f"{row['question']}\n{row['answer']}")

# %% [markdown]
# ## 1. Attention is a soft lookup
#
# A Python dictionary maps a *key* to a *value*: ask for `"circle"` and you get exactly the value
# stored under `"circle"`. Attention does the same with vectors, softly. A *query* vector $q$ is
# compared with every key $k_j$ by a dot product; the scores become weights that are positive and
# sum to one (a softmax); the answer is the weighted average of the values $v_j$. If the query
# matches one key much better than the others, almost all the weight goes there and the lookup is
# nearly exact; if it matches several, you get a blend.
#
# Here are three objects whose keys describe their shape in two numbers and whose values are their
# colours (RGB). The query asks "which one is the circle?":

# %%
keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])  # circle, square, triangle
values = torch.tensor([[0.90, 0.15, 0.15], [0.15, 0.75, 0.20], [0.20, 0.35, 0.95]])  # red, green, blue
query = torch.tensor([[3.0, 0.0]])  # "the circle"
scores = query @ keys.T / math.sqrt(2)  # one score per key, divided by sqrt(d_k), d_k = 2
weights = torch.softmax(scores, dim=-1)
answer = weights @ values
print("scores: ", [round(s, 3) for s in scores[0].tolist()])
print("exp(scores):", [round(e, 2) for e in scores.exp()[0].tolist()], "| their sum:", round(scores.exp().sum().item(), 2))
print("weights:", [round(w, 3) for w in weights[0].tolist()])
print("answer (RGB):", [round(a, 3) for a in answer[0].tolist()])

# %% [markdown]
# By hand: the scores are $3 \cdot 1 / \sqrt 2 = 2.121$, $0$ and $3 \cdot 0.7 / \sqrt 2 = 1.485$.
# Their exponentials are $8.34$, $1$ and $4.41$, so the weights are $8.34 / 13.76 = 0.606$, $0.073$
# and $0.321$. The answer is mostly the circle's red, with a good part of the triangle's blue,
# because the triangle's key resembles the circle's:

# %%
views.soft_lookup(weights[0], values, ["circle", "square", "triangle"])

# %% [markdown]
# With many queries at once, stack them as the rows of a matrix $Q$ (and the keys and values as
# $K$ and $V$). This is *scaled dot-product attention* (Vaswani et al. 2017,
# [*Attention Is All You Need*](https://arxiv.org/abs/1706.03762)):
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V,
# \qquad Q \in \mathbb{R}^{L_q \times d_k},\; K \in \mathbb{R}^{L_k \times d_k},\; V \in \mathbb{R}^{L_k \times d_v},$$
#
# with the softmax taken over each row, so row $i$ of the weight matrix $A = \mathrm{softmax}(\cdot)$
# is query $i$'s distribution over the $L_k$ keys. `mmcourse.attention.scaled_dot_product_attention`
# computes exactly this and returns the weights too:

# %%
out, w = scaled_dot_product_attention(query, keys, values)
verify(torch.allclose(out, answer) and torch.allclose(w, weights), "the function gives the hand computation",
      weight_on_circle=w[0, 0], answer_red=out[0, 0])

# %% [markdown]
# **Why divide by $\sqrt{d_k}$?** If the entries of $q$ and $k$ are independent with mean 0 and
# variance 1, their dot product is a sum of $d_k$ such products and has variance $d_k$. With
# $d_k = 64$ the scores spread over about $\pm 8$, and a softmax of such scores puts nearly all
# the weight on one key, where its gradient is close to zero. Dividing by $\sqrt{d_k}$ brings the
# spread back to about 1:

# %%
g = torch.Generator().manual_seed(0)
q, k = torch.randn(10_000, 64, generator=g), torch.randn(10_000, 64, generator=g)
raw = (q * k).sum(-1)
print(f"std of q.k with d_k=64: {raw.std():.2f}; after dividing by sqrt(64): {(raw / 8).std():.2f}")

# %% [markdown]
# **Masks.** Often a query must not look at some keys: padding at the end of a short sentence, or
# future words in a language model. A boolean mask, `True` where a query *may* attend (the meaning
# `torch.nn.functional.scaled_dot_product_attention` uses), sets the other scores to $-\infty$
# before the softmax, so they get weight exactly 0 and the rest still sums to 1. A query that may
# attend to *nothing* gets all-zero weights and a zero output (PyTorch's function does the same;
# `torch.nn.MultiheadAttention` returns NaN there).

# %%
mask = torch.tensor([[True, False, True], [False, False, False]])  # query 2 may look at nothing
out, w = scaled_dot_product_attention(torch.cat([query, query]), keys, values, mask)
print("weights with the mask:\n", w.round(decimals=3))

# %% [markdown]
# **Multi-head attention.** One softmax gives one blend. To let a layer look for several things at
# once, project the queries, keys and values $H$ times with different learned matrices, attend in
# each of these *heads* separately, and concatenate:
#
# $$\mathrm{MultiHead}(Q, K, V) = [\mathrm{head}_1; \dots; \mathrm{head}_H]\, W^O, \qquad
# \mathrm{head}_h = \mathrm{Attention}(Q W^Q_h, K W^K_h, V W^V_h).$$
#
# In code, one big projection of size $E$ is cut into $H$ heads of size $E / H$: a reshape from
# $(B, L, E)$ to $(B, H, L, E/H)$, attention on the last two dimensions, and the reverse reshape.

# %%
x = torch.arange(2 * 3 * 8.0).reshape(2, 3, 8)  # B=2, L=3, E=8
heads = split_heads(x, num_heads=4)
print("split:", tuple(x.shape), "->", tuple(heads.shape), "| head 1 of token 0:", heads[0, 1, 0].tolist())
print("merged back equals x:", torch.equal(merge_heads(heads), x))

# %% [markdown]
# ## 2. Ours equals PyTorch's
#
# `MultiHeadAttention.from_torch` copies the weights of a `torch.nn.MultiheadAttention` (here with
# keys and values of other sizes than the queries, as they are when they come from another
# modality, and with padded keys). Both must give the same outputs and the same per-head weights.

# %%
torch.manual_seed(0)
theirs = torch.nn.MultiheadAttention(16, 4, kdim=6, vdim=10, batch_first=True).eval()
ours = MultiHeadAttention.from_torch(theirs)
query, key, value = torch.randn(3, 5, 16), torch.randn(3, 7, 6), torch.randn(3, 7, 10)
padding = torch.arange(7) >= torch.tensor([[7], [4], [2]])  # True = padding; real lengths 7, 4, 2
expected, expected_w = theirs(query, key, value, key_padding_mask=padding, average_attn_weights=False)
out, w = ours(query, key, value, key_padding_mask=padding)
mask = torch.rand(2, 4, 5, 7) < 0.7
mask[..., 0] = True
q_, k_, v_ = torch.randn(2, 4, 5, 8), torch.randn(2, 4, 7, 8), torch.randn(2, 4, 7, 3)
sdpa_gap = (scaled_dot_product_attention(q_, k_, v_, mask)[0] - F.scaled_dot_product_attention(q_, k_, v_, attn_mask=mask)).abs().max()
verify((out - expected).abs().max() < 1e-5 and (w - expected_w).abs().max() < 1e-6 and sdpa_gap < 1e-5,
       "ours equals PyTorch's (outputs and per-head weights)", mha_gap=(out - expected).abs().max(),
       weights_gap=(w - expected_w).abs().max(), sdpa_gap=sdpa_gap)

# %% [markdown]
# The test suite checks the same on many more shapes, masks and head counts
# (`tests/test_attention.py`).
#
# ## 3. Words that look at image patches
#
# Now the modalities meet. The questions are all "what colour is the *shape* ?": the question
# alone says nothing about the colour (every shape comes in every colour), so a model must look.
#
# **The image as a sequence.** Cut the 32x32 scene into an 8x8 grid of 4x4-pixel patches, as a
# Vision Transformer does (Dosovitskiy et al. 2021, [*An Image is Worth 16x16
# Words*](https://arxiv.org/abs/2010.11929)). Each patch becomes a vector $h_j \in \mathbb{R}^{32}$:
# a linear map of its mean colour, plus learned *templates* matched against its silhouette (which
# pixels differ from the background) in a 12x12 window around it, so that it can tell a circle's
# edge from a square's, plus a learned embedding of its position. `mmcourse.encoders.PatchEncoder`
# does this; the silhouette of a scene looks like this:

# %%
model = AttentionVQA(len(VOCAB), len(ANSWERS), dim=32, num_heads=2)
image = shapes["test"][0]["image"]
views.scene_and_silhouette(image, model.image.silhouette(image[None])[0, 0])
print("patch embeddings:", tuple(model.image(image[None]).shape), "| question words:",
      tuple(model.text(shapes["test"]["question_ids"][:1])[0].shape))

# %% [markdown]
# **Cross-modal attention.** The words of the question are the queries; the patches are the keys
# and values. Tsai et al. (2019), [*Multimodal Transformer for Unaligned Multimodal Language
# Sequences*](https://arxiv.org/abs/1906.00295) (MulT), build a cross-modal block around exactly
# this, with layer normalisation before attention, a residual connection and a feed-forward layer.
# For the word sequence $T$ (target) and the patch sequence $S$ (source):
#
# $$X = T + \mathrm{MultiHead}(\mathrm{LN}(T), \mathrm{LN}(S), \mathrm{LN}(S)), \qquad
# \mathrm{out} = X + \mathrm{FF}(\mathrm{LN}(X)).$$
#
# The model (`AttentionVQA`) then averages the words, weighted by a learned score of each word,
# and a linear layer scores every answer in `ANSWERS`. The word "triangle" can only find the
# triangle through its attention weights, and those weights are what you will inspect.

# %%
print(model.cross)
print("parameters:", sum(p.numel() for p in model.parameters()), "| answers to choose from:", len(ANSWERS))

# %% [markdown]
# Train it on the 3,000 training scenes (12 epochs, a few seconds on a laptop CPU), together
# with two baselines: a text-only model (a GRU over the question, as in lesson 01) and the most
# common answer.

# %%
result = experiments.answer_colour_questions(shapes, seed=0, progress=True)
print(f"attention model: {result.accuracy:.3f} | text only: {result.text_only_accuracy:.3f} | "
      f"majority answer ({result.majority_answer}): {result.majority_accuracy:.3f}")

# %%
experiments.TEXT_ONLY_IS_MAJORITY.check(abs(result.text_only_accuracy - result.majority_accuracy),
                                        text_only=result.text_only_accuracy, majority=result.majority_accuracy)
experiments.ATTENTION_ANSWERS.check(result.accuracy - max(result.text_only_accuracy, result.majority_accuracy),
                                    attention=result.accuracy)

# %% [markdown]
# ### Does "triangle" look at the triangle?
#
# The data set says, for every word, which object it names (`question_object`; -1 for words like
# "what"). **Grounding accuracy** counts how often a word's most-attended patch touches the object
# the word names (any of its pixels). Its **chance level** is the same count for a patch picked at
# random: the fraction of the 64 patches that touch the object, averaged over the same words. The
# weights are averaged over the two heads first.

# %%
print(f"grounding accuracy: {result.grounding.accuracy:.3f} (chance {result.grounding.chance:.3f}, "
      f"{result.grounding.accuracy / result.grounding.chance:.1f} times chance)")
for h, g_h in enumerate(result.head_grounding):
    print(f"  head {h} alone: {g_h.accuracy:.3f}")
experiments.GROUNDS_SHAPE_WORD.check(result.grounding.accuracy / result.grounding.chance,
                                     grounding=result.grounding.accuracy, chance=result.grounding.chance)

# %% [markdown]
# Nobody told the model where the objects are: it learned to look from the answers alone. Here are
# the first test questions, with the shape word's attention (average of heads); the named object is
# outlined in white and the most-attended patch boxed:

# %%
views.attention_examples(result.test, result.weights, result.scores, range(5))

# %% [markdown]
# ## 4. Explore the attention
#
# Pick a test question, one of its words and a head. The left panel shows the scene with the object
# the word names outlined in white; the right one the word's weights over the 64 patches. Try the
# shape word in both heads, then words like "what" or "?" that name nothing: where do they look?

# %%
explorer = views.AttentionExplorer(result.weights[:200], {k: v[:200] for k, v in result.test.items()},
                             predictions=result.scores[:200].argmax(1))
explorer

# %% [markdown]
# ## 5. Co-attention: both directions
#
# So far only the words looked at the image. MulT runs cross-modal attention *in both directions*:
# one block lets the words attend to the patches, another lets every patch attend to the words, and
# the prediction reads both. Co-attention in vision and language goes back to Lu et al. (2016),
# [*Hierarchical Question-Image Co-Attention for Visual Question
# Answering*](https://arxiv.org/abs/1606.00061), and ViLBERT (Lu et al. 2019,
# [arXiv:1908.02265](https://arxiv.org/abs/1908.02265)) stacks such co-attentional layers.
# `mmcourse.attention.CrossModalTransformer` holds the two directions; with `both_directions=True`,
# `AttentionVQA` concatenates the question's summary and the average patch.
#
# What does each direction learn? Train the two-direction model (about 10 seconds), then remove one
# direction at a time: replace its summary by its average over the test set, so that it carries no
# information about the sample (*mean ablation*), and measure the accuracy that is left.

# %%
co = experiments.co_attention(shapes, seed=0, progress=True)
print(f"both directions: {co.accuracy:.3f} | without image->text: {co.without_image_to_text:.3f} | "
      f"without text->image: {co.without_text_to_image:.3f} | majority: {result.majority_accuracy:.3f}")
print(f"text->image grounding: {co.grounding.accuracy:.3f} (chance {co.grounding.chance:.3f})")

# %%
experiments.CO_ATTENTION_ANSWERS.check(co.accuracy - result.text_only_accuracy, accuracy=co.accuracy)
experiments.CO_ATTENTION_GROUNDS.check(co.grounding.accuracy / co.grounding.chance, grounding=co.grounding.accuracy,
                                       chance=co.grounding.chance)
experiments.TEXT_TO_IMAGE_CARRIES.check(co.accuracy - co.without_text_to_image)
experiments.WITHOUT_TEXT_TO_IMAGE_MAJORITY.check(co.without_text_to_image - result.majority_accuracy)
experiments.IMAGE_TO_TEXT_IDLE.check(co.accuracy - co.without_image_to_text)

# %% [markdown]
# The image-to-text direction had little to learn here: every question is the same five words
# around one shape word, so a patch can learn nothing from the question that the word "triangle"
# cannot fetch by itself. Where do the patches look, then? For every patch on the named object,
# count its most-attended word. If patches used the question to recognise themselves as "the
# triangle", patches on the named object would give the shape word more weight than empty patches
# do; compare the two numbers:

# %%
print("most-attended word of patches on the named object:", co.top_word_counts)
print(f"mean weight on the shape word: patches on the object {co.shape_word_inside:.3f}, "
      f"empty patches {co.shape_word_outside:.3f}")

# %% [markdown]
# Both directions exist, both are trained, but one carries (almost) all of the answer. Which
# direction matters depends on the task: with questions that describe several objects, or with
# captions, patches would have more to read. Measure before you interpret.
#
# ## 6. Pitfall: attention is not explanation
#
# It is tempting to read the heatmaps as *the reason* for an answer. Jain and Wallace (2019),
# [*Attention is not Explanation*](https://arxiv.org/abs/1902.10186), showed for text classifiers
# that attention weights often disagree with other measures of what matters, and that quite
# different weights can give the same prediction; Wiegreffe and Pinter (2019), [*Attention is not
# not Explanation*](https://arxiv.org/abs/1908.04626), answered that it depends on what you call an
# explanation and how you test it. You can test it here.
#
# First, a right answer with diffuse attention: the correctly answered test question whose shape
# word spreads its weights the most.

# %%
case = experiments.diffuse_but_right(result)
i = case["index"]
views.attention_case(result.test, result.weights, result.scores, i, title=f"max weight {case['max_weight']:.2f}")
print(f"entropy {case['entropy']:.2f} nats (uniform over 64 patches: {case['uniform_entropy']:.2f}); "
      f"attention mass on the object: {case['mass_on_object']:.2f}")

# %%
experiments.RIGHT_BUT_ELSEWHERE.check(case["right_but_mostly_elsewhere"], questions=len(result.scores))

# %% [markdown]
# How can that be? Every empty patch carries (almost) the same value, so weight spread over the
# background adds a constant that the classifier learns to ignore; a small share of weight on the
# object is enough to carry its colour. The heatmap shows where the weight *is*, not what the
# answer *needs*.
#
# Second, an intervention. If the most-attended patch were the reason for the answer, hiding it
# (painting it with the background colour) should change the answer often. Compare with hiding the
# whole named object:

# %%
changed = experiments.occlusion(result)
print(f"answers that change when you hide the most-attended patch: {changed['top_patch']:.3f}; "
      f"the whole object: {changed['object']:.3f}")
experiments.OCCLUDE_PATCH_VS_OBJECT.check(changed["object"] - changed["top_patch"], top_patch=changed["top_patch"],
                                          object=changed["object"])

# %% [markdown]
# Objects span several patches, and each patch's template also sees its neighbours, so the answer
# survives the loss of the single patch the heatmap points at. Attention tells you where a model
# *looked*; to learn what it *used*, intervene: ablate, occlude, or compare with gradients.
#
# ## Exercises
#
# ### Exercise 1: scaled dot-product attention with a mask
#
# Write `my_attention(q, k, v, mask=None)` returning `(out, weights)` as in section 1: `q` is
# `(..., L_q, d_k)`, `k` is `(..., L_k, d_k)`, `v` is `(..., L_k, d_v)`, and `mask` (optional) is a
# boolean tensor broadcastable to `(..., L_q, L_k)`, `True` where a query may attend. A query that
# may attend to nothing must get zero weights and a zero output, not NaN.

# %%
def my_attention(q, k, v, mask=None):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("scaled_dot_product_attention", my_attention)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# `scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])`. With a mask, `scores.masked_fill(~mask,
# value)` hides the forbidden keys. If `value` is `float("-inf")`, a row with no allowed key becomes
# all `-inf` and its softmax is NaN; use the most negative finite number instead,
# `torch.finfo(scores.dtype).min`, and multiply the softmax by the mask so that such rows become zeros.
# </details>

# %% tags=["solution"] jupyter={"source_hidden": true}
def my_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is None:
        weights = torch.softmax(scores, dim=-1)
    else:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1) * mask
    return weights @ v, weights


exercises.check("scaled_dot_product_attention", my_attention, must_pass=True)

# %% [markdown]
# ### Exercise 2: splitting and merging heads
#
# Write `my_split_heads(x, num_heads)`, which turns `(B, L, E)` into `(B, H, L, E / H)` so that head
# `h` holds features `h * E/H` to `(h + 1) * E/H - 1` of every token, and `my_merge_heads(x)`, which
# undoes it: `(B, H, L, D)` to `(B, L, H * D)`.

# %%
def my_split_heads(x, num_heads):
    # YOUR CODE HERE
    raise NotImplementedError


def my_merge_heads(x):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("split_heads", my_split_heads)
exercises.check("merge_heads", my_merge_heads)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# Split: `x.reshape(B, L, H, E // H)` cuts each token's features into heads; then swap the token
# and head dimensions with `.transpose(1, 2)`. Merge: transpose back, then reshape to `(B, L, H * D)`
# (`reshape`, not `view`: the transposed tensor is not contiguous).
# </details>

# %% tags=["solution"] jupyter={"source_hidden": true}
def my_split_heads(x, num_heads):
    b, length, e = x.shape
    return x.reshape(b, length, num_heads, e // num_heads).transpose(1, 2)


def my_merge_heads(x):
    b, h, length, d = x.shape
    return x.transpose(1, 2).reshape(b, length, h * d)


exercises.check("split_heads", my_split_heads, must_pass=True)
exercises.check("merge_heads", my_merge_heads, must_pass=True)

# %% [markdown]
# ### Exercise 3: grounding accuracy
#
# Write `my_grounding(weights, masks, token_to_object)` returning the pair `(accuracy, chance)` of
# section 3 as two Python floats. `weights` is `(B, L, P)` (each word's attention over
# $P = g \times g$ patches, numbered row by row), `masks` is `(B, K, H, W)` boolean, and
# `token_to_object` is `(B, L)` with the object each word names, or -1. Only words that name an
# object count. You may use `patch_masks(masks, g)`, which says for each object which patches it
# touches: shape `(B, K, P)`.

# %%
def my_grounding(weights, masks, token_to_object):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("grounding_accuracy", my_grounding)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# `rows, cols = (token_to_object >= 0).nonzero(as_tuple=True)` lists the words that count. For
# them, `inside = patch_masks(masks, g)[rows, token_to_object[rows, cols]]` is `(N, P)`: which patches
# touch the named object. The accuracy is how often `inside` is True at `weights[rows, cols].argmax(-1)`;
# the chance level is the mean of `inside`. `g = math.isqrt(P)`.
# </details>

# %% tags=["solution"] jupyter={"source_hidden": true}
def my_grounding(weights, masks, token_to_object):
    rows, cols = (token_to_object >= 0).nonzero(as_tuple=True)
    inside = patch_masks(masks, math.isqrt(weights.shape[-1]))[rows, token_to_object[rows, cols]]
    top = weights[rows, cols].argmax(-1)
    hits = inside[torch.arange(len(top)), top]
    return hits.float().mean().item(), inside.float().mean().item()


exercises.check("grounding_accuracy", my_grounding, must_pass=True)
verify(my_grounding(result.weights.mean(1), result.test["masks"], result.test["question_object"])
       == tuple(grounding_accuracy(result.weights.mean(1), result.test["masks"], result.test["question_object"])),
       "the worked solution gives section 3's numbers")

# %% [markdown]
# ## Summary
#
# - Attention is a soft lookup: $\mathrm{softmax}(QK^\top / \sqrt{d_k})\,V$ averages the values
#   with weights from query-key similarity; masks forbid keys; multi-head attention runs several
#   lookups in parallel subspaces. Ours equals PyTorch's.
# - In cross-modal attention the queries come from one modality and the keys and values from
#   another. Words attending to image patches answer questions that the text alone cannot, and,
#   trained on answers only, learn to look at the object a word names: you measured it against
#   ground truth, several times above chance.
# - Co-attention runs both directions (MulT), but a direction can be present and useless: here the
#   answers came entirely from words looking at patches. Ablate to find out.
# - Attention weights show where a model looks, not what it needs: right answers with diffuse
#   weights, and a most-attended patch whose removal rarely matters.
#
# **Further reading.** Bahdanau, Cho and Bengio (2015), [*Neural Machine Translation by Jointly
# Learning to Align and Translate*](https://arxiv.org/abs/1409.0473), where attention began; Xu et
# al. (2015), [*Show, Attend and Tell*](https://arxiv.org/abs/1502.03044), attention over image
# regions for captioning; Anderson et al. (2018), [*Bottom-Up and Top-Down Attention for Image
# Captioning and Visual Question Answering*](https://arxiv.org/abs/1707.07998), attention over
# detected objects instead of a grid; Tsai et al. (2019) and Lu et al. (2019) above for cross-modal
# transformers. Lesson 07 trains image and text encoders to agree without any attention between
# them (CLIP).
