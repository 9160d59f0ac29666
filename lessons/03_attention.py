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
# patches of an image, co-attention in both directions as in the Multimodal Transformer, baselines
# that match the question, how to *measure* whether a word looks at its own object, and how to test
# whether attention points at what the answer needs (deletion curves). **Time:** about 45 minutes.
# **Runs on:** a laptop CPU in under a minute (the two attention models train in a few seconds
# each); a GPU is used when there is one.
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
from mmcourse.data.shapes import RGB
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
# colours (RGB, the scene colours of the Shapes data). The query asks "which one is the circle?":

# %%
keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])  # circle, square, triangle
values = torch.tensor([RGB["red"], RGB["green"], RGB["blue"]])  # one colour per object
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
views.soft_lookup(weights[0], values, ["circle\n(red)", "square\n(green)", "triangle\n(blue)"])

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
# attend to *nothing* gets all-zero weights and a zero output. `F.scaled_dot_product_attention`
# does the same from torch 2.5 on (the version this course requires); `torch.nn.MultiheadAttention`,
# which computes the weights itself when it returns them (its default), gives NaN there: see the next cell.

# %%
mask = torch.tensor([[True, False, True], [False, False, False]])  # query 2 may look at nothing
out, w = scaled_dot_product_attention(torch.cat([query, query]), keys, values, mask)
print("weights with the mask:\n", w.round(decimals=3))
theirs_out = F.scaled_dot_product_attention(torch.cat([query, query]), keys, values, attn_mask=mask)
verify(torch.allclose(out, theirs_out), "a query with no allowed key gets zeros, as in F.scaled_dot_product_attention",
       torch_version=torch.__version__)

# %%
mha = torch.nn.MultiheadAttention(2, num_heads=1, batch_first=True)
with torch.no_grad():
    mha_out, _ = mha(query[None], keys[None], keys[None], key_padding_mask=torch.ones(1, 3, dtype=torch.bool))
print("torch.nn.MultiheadAttention with every key padded:", mha_out.flatten().tolist())

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
# Here are $L = 3$ tokens with $E = 8$ features split into $H = 4$ heads of 2 features each: every
# head attends with its own $L \times L$ weights, and $W^O$ mixes the merged heads.

# %%
views.multi_head_picture(num_heads=4, length=3, dim=8)

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
# this: layer normalisation *before* attention (pre-LN), a residual connection that adds the
# attention's output to the words, then a feed-forward layer with its own LayerNorm and residual:

# %%
views.cross_modal_block_picture()

# %% [markdown]
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
# Train it on the 3,000 training scenes (a few seconds on a laptop CPU; the bar shows the epochs).
# Then compare it with three baselines, each of which sees less:
#
# - **text only**: a GRU over the question alone (as in lesson 01);
# - **majority**: the most common answer in the training set, whatever the scene and question;
# - **image only, at best**: someone who sees the scene perfectly but not the question. The question
#   asks about one of the scene's objects at random, so the best guess is the colour most objects
#   share (`experiments.image_only_answers`). With one object this is always right. No image-only
#   model can beat it on average.

# %%
result = experiments.answer_colour_questions(shapes, seed=0, progress=True)
print(f"attention model: {result.accuracy:.3f} | text only: {result.text_only_accuracy:.3f} | "
      f"majority answer ({result.majority_answer}): {result.majority_accuracy:.3f}")
print(f"image only, at best: {result.image_only_accuracy:.3f} | test scenes with one object: {result.one_object:.3f}")
print(f"attention minus image only, with a 95% bootstrap interval over the test questions: {result.over_image_only}")

# %%
experiments.TEXT_ONLY_IS_MAJORITY.check(abs(result.text_only_accuracy - result.majority_accuracy),
                                        text_only=result.text_only_accuracy, majority=result.majority_accuracy)
experiments.ATTENTION_ANSWERS.check(result.accuracy - max(result.text_only_accuracy, result.majority_accuracy),
                                    attention=result.accuracy)
experiments.ATTENTION_BEATS_IMAGE_ONLY.check(result.accuracy - result.image_only_accuracy,
                                             image_only=result.image_only_accuracy)

# %% [markdown]
# The gain over the question alone is large, but most of it is available without reading the
# question at all: the image alone answers every scene with one object (about a third of the test
# set, as printed above) and many others. The gain that needs the question, finding *the
# triangle*, is the one over the image-only ceiling: it comes from the scenes with two or three
# objects.
#
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
# ### Its own object, or any object?
#
# Beating a random patch is a low bar: objects stand out from the plain background, and a map that
# looks at *some* object, whichever the question names, beats it too. On a scene with one object
# such a map is always right, so look at the scenes with two or three objects, and compare with an
# **any-object baseline**: a word-blind map whose top patch is a random patch among those that touch
# any object. It lands on the named object as often as that object's share of the object patches.
# Split the shape word's top patch into "on its object", "on another object only" and "on no object":

# %%
several = experiments.grounding_with_several_objects(result)
print(f"{several.words} questions about scenes with 2 or 3 objects: top patch on its object {several.named:.3f}, "
      f"on another object only {several.other_object:.3f}, on no object {several.background:.3f}")
print(f"any-object baseline: {several.any_object_baseline:.3f} | random patch: {several.chance:.3f}")
views.where_words_look(several)
experiments.GROUNDS_ITS_OBJECT.check(several.named - several.any_object_baseline, grounding=several.named,
                                     any_object=several.any_object_baseline)

# %% [markdown]
# The shape word does not just find objects: it finds *its* object, the one the answer is about.
#
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
# `AttentionVQA` concatenates two summaries: the question's (the words after looking at the
# patches, pooled) and the image's (the patches after looking at the words, averaged).
#
# Build it on top of the model you trained: the two-direction model copies its encoders and its
# words-over-patches block, adds the patches-over-words block and a new head over both summaries,
# and trains all of it for a few more epochs (a few seconds). Then ask what each summary adds: remove
# one at a time, replacing it by its average over the test set so that it carries no information
# about the sample (*mean ablation*), and measure the accuracy that is left. Mind what this removes:
# a whole *branch*. The image's summary reaches the head through the image-to-text block, residual
# included, so removing it removes the patches themselves as well as what they read from the words;
# it does not isolate one attention direction.

# %%
co = experiments.co_attention(shapes, start=result.model, seed=0, progress=True)
print(f"both directions: {co.accuracy:.3f} | without the image's summary: {co.without_image_summary:.3f} | "
      f"without the question's summary: {co.without_question_summary:.3f} | majority: {result.majority_accuracy:.3f}")
print(f"text->image grounding: {co.grounding.accuracy:.3f} (chance {co.grounding.chance:.3f})")

# %%
experiments.CO_ATTENTION_ANSWERS.check(co.accuracy - result.text_only_accuracy, accuracy=co.accuracy)
experiments.CO_ATTENTION_GROUNDS.check(co.grounding.accuracy / co.grounding.chance, grounding=co.grounding.accuracy,
                                       chance=co.grounding.chance)
experiments.QUESTION_BRANCH_CARRIES.check(co.accuracy - co.without_question_summary)
experiments.WITHOUT_QUESTION_BRANCH_MAJORITY.check(co.without_question_summary - result.majority_accuracy)
experiments.IMAGE_BRANCH_IDLE.check(co.accuracy - co.without_image_summary)

# %% [markdown]
# The head reads its answers from the question's branch; the image's branch, present and trained,
# adds almost nothing, although the patches alone could have given the image-only answers. That is
# what *this* model uses, and how it was trained matters: the branch joined a model that already
# answered well. (Try `start=None`, `epochs=12` and a few seeds: which branch do the answers come
# from when both directions learn from scratch?) And it says that the head ignores the branch, not
# yet what the patches' attention does. Look at the attention
# itself: for every patch on the named object, count its most-attended word. If patches used the
# question to recognise themselves as "the triangle", patches on the named object would give the
# shape word more weight than empty patches do; compare the two numbers:

# %%
print("most-attended word of patches on the named object:", co.top_word_counts)
print(f"mean weight on the shape word: patches on the object {co.shape_word_inside:.3f}, "
      f"empty patches {co.shape_word_outside:.3f}")

# %% [markdown]
# Every question here is the same five words around one shape word, so a patch has little to learn
# from the question that the word "triangle" cannot fetch by itself. With questions that describe
# several objects, or with captions, patches would have more to read. Both directions exist and both
# are trained, but which one matters depends on the task and on the training: measure before you
# interpret.
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
# First, right answers with diffuse attention. Here is the correctly answered test question whose
# shape word spreads its weights the most, and the share of all test questions that are answered
# right with less than half of the shape word's attention on its object:

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
# Second, an intervention that measures what the answer needs: a **deletion curve** (Samek et al.
# 2017, [*Evaluating the visualization of what a deep neural network has
# learned*](https://arxiv.org/abs/1509.06321)). Delete patches one by one, painting them with the
# background colour, and follow the test accuracy. If the attention order puts first what the answer
# needs, its curve falls sooner than a random order's, and the area under it is smaller. Hooker et
# al. (2019), [*A Benchmark for Interpretability Methods in Deep Neural
# Networks*](https://arxiv.org/abs/1806.10758), stress the control: compare with orders that know
# less and more. Here there are three orders (`mmcourse.diagnostics.saliency_order`, `random_order`):
#
# - **attention**: the shape word's weights, most-attended patch first;
# - **random**: any patch, in a random order;
# - **random within the object**: the patches that touch the named object first, in a random order,
#   then the rest. It knows where the object is, but not which of its patches matter.

# %%
deletion = experiments.deletion_curves(result, seed=0)
views.deletion_plot(deletion, reference=result.majority_accuracy)
print("areas under the curves (first 16 deletions):", {k: round(v, 3) for k, v in deletion.areas.items()})
print(f"area of attention order minus area of random order within the object: {deletion.attention_vs_object}")

# %%
experiments.DELETION_ATTENTION_BEATS_RANDOM.check(deletion.areas["random"] - deletion.areas["attention"],
                                                  attention=deletion.areas["attention"], random=deletion.areas["random"])
first = {name: curve[1].item() for name, curve in deletion.curves.items()}  # accuracy after one deletion
experiments.TOP_PATCH_BEATS_OBJECT_PATCH.check(first["random within the object"] - first["attention"],
                                               attention=first["attention"], within_object=first["random within the object"])
experiments.OBJECT_ORDER_BEATS_ATTENTION.check(deletion.areas["attention"] - deletion.areas["random within the object"],
                                               interval=str(deletion.attention_vs_object))

# %% [markdown]
# Both findings are true at once. The peak of the heatmap matters: deleting that one patch changes
# more answers than deleting a random patch of the object, and the attention curve falls far below
# the random one. But after its peak the attention order wanders into the background, where much of
# its weight lies, while the order that simply knows the object keeps removing it, until the
# accuracy is down to the majority answer's (the dashed line). Attention finds *a* decisive patch;
# it is not a map of everything the answer uses. Objects span several patches, and each patch's
# templates also see its neighbours, so the rest of the object still carries the colour. Attention
# tells you where a model *looked*; to learn what it *used*, intervene, and compare with controls.
#
# ## Exercises
#
# ### Exercise 1: scaled dot-product attention
#
# Write `my_attention(q, k, v)` returning `(out, weights)` as in section 1: `q` is `(..., L_q, d_k)`,
# `k` is `(..., L_k, d_k)` and `v` is `(..., L_k, d_v)`, with the same leading dimensions; `weights`
# is `(..., L_q, L_k)`, each row a softmax over the keys, and `out` is `(..., L_q, d_v)`.

# %%
def my_attention(q, k, v):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("scaled_dot_product_attention", my_attention)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# `k.transpose(-2, -1)` swaps the last two dimensions whatever the leading ones, so
# `q @ k.transpose(-2, -1)` is `(..., L_q, L_k)`. Divide by `math.sqrt(q.shape[-1])`, take
# `torch.softmax(..., dim=-1)` (over the keys), and multiply by `v`.
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_attention(q, k, v):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., L_q, L_k)
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


exercises.check("scaled_dot_product_attention", solution_attention, must_pass=True)

# %% [markdown]
# ### Exercise 2: find the bug
#
# Masks are where tutorial code on attention most often goes wrong. This function runs, returns the
# right shapes, and gives the right answer when nothing is masked. Run the check to see where it
# fails:

# %%
def buggy_masked_attention(q, k, v, mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    weights = torch.softmax(scores, dim=-1)
    weights = weights.masked_fill(~mask, 0.0)  # hide the keys a query may not see
    return weights @ v, weights


exercises.check("masked_attention", buggy_masked_attention)

# %% [markdown]
# Print the weights' sums for section 1's query with its third key masked,
# `buggy_masked_attention(torch.tensor([[3.0, 0.0]]), keys, values, torch.tensor([[True, True, False]]))[1].sum(-1)`,
# and compare with section 1. Then write a fixed `my_masked_attention(q, k, v, mask)` (`mask` is
# `True` where a query may attend, broadcastable to `(..., L_q, L_k)`); a query that may attend to
# nothing must get zero weights and a zero output, not NaN.

# %%
def my_masked_attention(q, k, v, mask):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("masked_attention", my_masked_attention)

# %% [markdown]
# <details><summary><b>Hint</b></summary>
#
# Mask the *scores*, before the softmax: `scores.masked_fill(~mask, value)`. If `value` is
# `float("-inf")`, a row with no allowed key becomes all `-inf` and its softmax is NaN; use the most
# negative finite number instead, `torch.finfo(scores.dtype).min`, and multiply the softmax by the
# mask so that such rows become zeros.
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_masked_attention(q, k, v, mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)  # before the softmax
    weights = torch.softmax(scores, dim=-1) * mask  # a row with no allowed key: zeros, not NaN
    return weights @ v, weights


exercises.check("masked_attention", solution_masked_attention, must_pass=True)

# %% [markdown]
# ### Exercise 3: splitting and merging heads
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

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_split_heads(x, num_heads):
    b, length, e = x.shape
    return x.reshape(b, length, num_heads, e // num_heads).transpose(1, 2)


def solution_merge_heads(x):
    b, h, length, d = x.shape
    return x.transpose(1, 2).reshape(b, length, h * d)


exercises.check("split_heads", solution_split_heads, must_pass=True)
exercises.check("merge_heads", solution_merge_heads, must_pass=True)

# %% [markdown]
# ### Exercise 4: grounding accuracy
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

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_grounding(weights, masks, token_to_object):
    rows, cols = (token_to_object >= 0).nonzero(as_tuple=True)
    inside = patch_masks(masks, math.isqrt(weights.shape[-1]))[rows, token_to_object[rows, cols]]
    top = weights[rows, cols].argmax(-1)
    hits = inside[torch.arange(len(top)), top]
    return hits.float().mean().item(), inside.float().mean().item()


exercises.check("grounding_accuracy", solution_grounding, must_pass=True)
verify(solution_grounding(result.weights.mean(1), result.test["masks"], result.test["question_object"])
       == tuple(grounding_accuracy(result.weights.mean(1), result.test["masks"], result.test["question_object"])),
       "the worked solution gives section 3's numbers")

# %% [markdown]
# ## Summary
#
# - Attention is a soft lookup: $\mathrm{softmax}(QK^\top / \sqrt{d_k})\,V$ averages the values
#   with weights from query-key similarity; masks forbid keys *before* the softmax; multi-head
#   attention splits the features into heads that attend separately and merges them. Ours equals
#   PyTorch's.
# - In cross-modal attention the queries come from one modality and the keys and values from
#   another. Words attending to image patches answer questions that the text alone cannot, and
#   better than the best image-only answer. Trained on answers only, the shape word learns to look
#   at *its* object: you measured it against ground truth, above a random patch and above a map
#   that looks at any object.
# - Co-attention runs both directions (MulT), but a branch can be present and unused: here the
#   answers came from the question's branch. Ablate to find out, and say what the ablation removes.
# - Attention weights show where a model looks, not everything it needs: right answers with most of
#   the weight elsewhere; a heatmap peak that matters, followed by an order that loses to simply
#   knowing the object. Deletion curves with random controls measure this.
#
# **Further reading.** Bahdanau, Cho and Bengio (2015), [*Neural Machine Translation by Jointly
# Learning to Align and Translate*](https://arxiv.org/abs/1409.0473), where attention began; Xu et
# al. (2015), [*Show, Attend and Tell*](https://arxiv.org/abs/1502.03044), attention over image
# regions for captioning; Anderson et al. (2018), [*Bottom-Up and Top-Down Attention for Image
# Captioning and Visual Question Answering*](https://arxiv.org/abs/1707.07998), attention over
# detected objects instead of a grid; Tsai et al. (2019) and Lu et al. (2019) above for cross-modal
# transformers; Hessel and Lee (2020), [*Does my multimodal model learn cross-modal interactions?
# It's harder to tell than you might think!*](https://arxiv.org/abs/2010.06572), on baselines and
# controls for multimodal models. Lesson 07 trains image and text encoders to agree without any
# attention between them (CLIP).
