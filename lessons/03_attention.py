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
# **What you will learn:** attention as a soft lookup; scaled dot-product and multi-head attention
# with masks, checked against PyTorch's; cross-modal attention, where the words of a question look at
# the patches of an image; a control that tells whether the answers come from the image; how to
# *measure* whether a word looks at its own object; co-attention in both directions; and how to test
# whether attention shows what an answer needs.
#
# **You will build:** the multi-head attention layer through which a question's words look at an
# image's patches, and the training step of the model around it, then train both on Shapes questions.
#
# **Prerequisites:** the Shapes data and the course's tools ([lesson 00](00_welcome.ipynb)); the
# softmax ([d2l.ai](https://d2l.ai/chapter_linear-classification/softmax-regression.html)); matrix
# products and reshaping tensors
# ([PyTorch tutorials](https://pytorch.org/tutorials/beginner/basics/tensorqs_tutorial.html)).
# The fusion of whole-modality vectors in [lesson 01](01_fusion.ipynb) helps with the motivation.
#
# **Time:** about 28 minutes of reading and 30 minutes of exercises. **Runs on:** a laptop CPU in
# under a minute; a GPU is used when there is one.
#
# Look at the scenes below and answer the questions. To say what colour the triangle is, you find
# the triangle first, then read its colour. A model must do the same. Fusing a whole-image vector
# with a whole-question vector (lesson 01) hides *which* pixels a word is about. **Attention** makes
# that choice explicit: every word gets weights over the image's regions, and the weights say where
# it looks. We drew the scenes ourselves, so we know where it *should* look, and you can check.

# %%
import math

import torch
import torch.nn.functional as F
from torch import nn

import mmcourse
from mmcourse import exercises, verify
from mmcourse.attention import AttentionVQA, MultiHeadAttention
from mmcourse.data import ANSWERS, VOCAB
from mmcourse.data.shapes import RGB
from mmcourse.experiments import attention as experiments
from mmcourse.metrics import patch_masks
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
# compared with every key $k_j$ by a dot product; a softmax turns the scores into weights $\alpha_j$
# that are positive and sum to one; the answer is the weighted average of the values $v_j$. If the
# query matches one key much better than the others, the lookup is nearly exact; if it matches
# several, you get a blend.
#
# Here are three objects whose keys describe their shape in two numbers and whose values are their
# colours (RGB). The query asks "which one is the circle?":

# %%
keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])  # circle, square, triangle
values = torch.tensor([RGB["red"], RGB["green"], RGB["blue"]])  # one colour per object
query = torch.tensor([[3.0, 0.0]])  # "the circle"
scores = query @ keys.T / math.sqrt(2)  # one score per key, divided by sqrt(d_k), d_k = 2
weights = torch.softmax(scores, dim=-1)
answer = weights @ values
print("scores: ", [round(s, 3) for s in scores[0].tolist()])
print("exp(scores):", [round(e, 2) for e in scores.exp()[0].tolist()],
      "| their sum:", round(scores.exp().sum().item(), 2))
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
# With many queries at once, stack them as the rows of a matrix $Q$, and the keys and values as the
# rows of $K$ and $V$. This is *scaled dot-product attention* (Vaswani et al. 2017, [*Attention Is
# All You Need*](https://arxiv.org/abs/1706.03762)):
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V.$$
#
# $Q$ holds $T_q$ queries and $K$ holds $T_k$ keys, all of size $d_k$; $V$ holds a value of size
# $d_v$ for each key. The softmax runs over each row, so row $i$ holds query $i$'s weights
# $\alpha_{ij}$ over the keys. Above, $T_q = 1$, $T_k = 3$, $d_k = 2$ and $d_v = 3$ (a colour).
#
# **Why divide by $\sqrt{d_k}$?** If the entries of $q$ and $k$ are independent with mean 0 and
# variance 1, their dot product has variance $d_k$. With $d_k = 64$ the scores spread over about
# $\pm 8$, and the softmax puts nearly all the weight on one key, where its gradient is close to
# zero. Dividing by $\sqrt{d_k}$ brings the spread back to about 1:

# %%
g = torch.Generator().manual_seed(0)
q, k = torch.randn(10_000, 64, generator=g), torch.randn(10_000, 64, generator=g)
raw = (q * k).sum(-1)
print(f"std of q.k with d_k=64: {raw.std():.2f}; after dividing by sqrt(64): {(raw / 8).std():.2f}")

# %% [markdown]
# The package's `scaled_dot_product_attention` computes this equation (you will write it yourself in
# section 4). On the three objects it gives the hand computation:

# %%
from mmcourse.attention import scaled_dot_product_attention

out, w = scaled_dot_product_attention(query, keys, values)
verify(torch.allclose(out, answer) and torch.allclose(w, weights), "the function gives the hand computation",
       weight_on_circle=w[0, 0], answer_red=out[0, 0])

# %% [markdown]
# ### Check yourself
#
# 1. Predict: if the query were $[6, 0]$ instead of $[3, 0]$, would the weight on the circle grow or
#    shrink, and what would happen to the answer's colour? Try it in the first cell of this section.
#
# <details><summary>Answer</summary>
#
# Every score doubles, so the gaps between them double too, and the softmax sharpens: the circle's
# weight grows, the triangle's and the square's shrink, and the answer moves towards pure red. A
# longer query makes the lookup more exact; a shorter one blends more.
# </details>
#
# 2. With $d_k = 64$ and random entries of variance 1, what goes wrong if you leave out the division
#    by $\sqrt{d_k}$?
#
# <details><summary>Answer</summary>
#
# The scores have a standard deviation of about 8 (printed above), so the softmax puts nearly all
# the weight on one key. There its gradient is close to zero and training barely moves the queries
# and keys. Divided by $\sqrt{d_k}$, the scores spread over about $\pm 1$.
# </details>

# %% [markdown]
# ## 2. Masks and multiple heads
#
# ### Masks
#
# Often a query must not look at some keys: padding at the end of a short sentence, or future words
# in a language model. A boolean mask is `True` where a query *may* attend (as in PyTorch's
# `F.scaled_dot_product_attention`). Masked attention must give the masked keys weight exactly 0
# while each query's allowed weights still sum to 1, and a query that may attend to *nothing* must
# get all-zero weights and a zero output. `torch.nn.MultiheadAttention`, when it returns the weights
# (its default), gives NaN there:

# %%
mha = torch.nn.MultiheadAttention(2, num_heads=1, batch_first=True)
with torch.no_grad():
    mha_out, _ = mha(query[None], keys[None], keys[None], key_padding_mask=torch.ones(1, 3, dtype=torch.bool))
print("torch.nn.MultiheadAttention with every key padded:", mha_out.flatten().tolist())

# %% [markdown]
# ### Find the bug: masked attention
#
# Here is masked attention as tutorial code often has it: it runs, with the right shapes. Run the
# check to see which case it fails, find the bug, and write a fixed
# `my_masked_attention(q, k, v, mask)` below it: `mask` is `True` where a query may attend,
# broadcastable to `(..., T_q, T_k)`; a query that may attend to nothing gets zeros, not NaN.

# %%
def buggy_masked_attention(q, k, v, mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    weights = torch.softmax(scores, dim=-1)
    weights = weights.masked_fill(~mask, 0.0)  # hide the keys a query may not see
    return weights @ v, weights


exercises.check("masked_attention", buggy_masked_attention)

# %%
def my_masked_attention(q, k, v, mask):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("masked_attention", my_masked_attention)

# %% [markdown]
# <details><summary><b>Hint 1: a nudge</b></summary>
#
# Run the buggy function on the query and keys of section 1 with the third key masked, and add up
# the weights it gives. Compare with what a softmax promises about a row of weights. Then make sure
# your fix also survives the last case of the check: a query with no allowed key at all.
# </details>
# <details><summary><b>Hint 2: what helps</b></summary>
#
# `buggy_masked_attention(query, keys, values, torch.tensor([[True, True, False]]))[1].sum(-1)` shows
# the sum. `scores.masked_fill(~mask, value)` replaces the scores a query may not see. With
# `value = float("-inf")` a row with no allowed key is all `-inf`, and its softmax is NaN;
# `torch.finfo(scores.dtype).min`, the most negative finite number, avoids that, and multiplying
# the softmax by `mask` turns such a row into zeros.
# </details>
# <details><summary><b>Hint 3: the code</b></summary>
#
# ```python
# scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
# scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
# weights = torch.softmax(scores, dim=-1) * mask
# return weights @ v, weights
# ```
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_masked_attention(q, k, v, mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)  # before the softmax
    weights = torch.softmax(scores, dim=-1) * mask  # a row with no allowed key: zeros, not NaN
    return weights @ v, weights


exercises.check("masked_attention", solution_masked_attention, must_pass=True)

# %% [markdown]
# The package's `scaled_dot_product_attention` takes the same mask. Query 2 below may look at
# nothing and gets zeros, as in `F.scaled_dot_product_attention` from torch 2.5 on:

# %%
mask = torch.tensor([[True, False, True], [False, False, False]])  # query 2 may look at nothing
out, w = scaled_dot_product_attention(torch.cat([query, query]), keys, values, mask)
print("weights with the mask:\n", w.round(decimals=3))
theirs_out = F.scaled_dot_product_attention(torch.cat([query, query]), keys, values, attn_mask=mask)
verify(torch.allclose(out, theirs_out), "a query with no allowed key gets zeros, as in F.scaled_dot_product_attention",
       torch_version=torch.__version__)

# %% [markdown]
# ### Multi-head attention
#
# One softmax gives one blend. To look for several things at once, attention runs in several
# *heads*, each with its own learned projections of the queries, keys and values. Here are $T = 3$
# tokens whose $d = 8$ features are cut into $H = 4$ heads of $d/H = 2$: every head attends with its
# own $T \times T$ weights, and a last linear map $W^O$ mixes the merged heads.

# %%
views.multi_head_picture(num_heads=4, length=3, dim=8)

# %% [markdown]
# As an equation, with maps acting on rows as `nn.Linear` does ($X W^\top$):
#
# $$\mathrm{MultiHead}(Q, K, V) = \mathrm{concat}(\mathrm{head}_1, \dots, \mathrm{head}_H)\, W^{O\top},
# \qquad \mathrm{head}_h = \mathrm{Attention}(Q W_h^{Q\top}, K W_h^{K\top}, V W_h^{V\top}).$$
#
# In code, one $d \times d$ projection serves all heads, cut into $H$ blocks: $W_h^Q$ is the $h$-th
# block of $d/H$ rows of $W^Q$, and so for $K$ and $V$. The cut turns $(B, T, d)$ into
# $(B, H, T, d/H)$, attention runs on the last two dimensions, and the merge turns the result back
# into $(B, T, d)$. The package's `split_heads` cuts each token's features first, a reshape to
# `(B, T, H, d/H)`, and only then moves the heads in front of the tokens (a transpose);
# `merge_heads` undoes both. On a small tensor you can read which features land in which head:

# %%
from mmcourse.attention import merge_heads, split_heads

x = torch.arange(2 * 3 * 8.0).reshape(2, 3, 8)  # B=2, T=3, d=8
heads = split_heads(x, num_heads=4)
print("split:", tuple(x.shape), "->", tuple(heads.shape), "| head 1 of token 0:", heads[0, 1, 0].tolist())
print("merged back equals x:", torch.equal(merge_heads(heads), x))

# %% [markdown]
# ### Ours equals PyTorch's
#
# `MultiHeadAttention.from_torch` copies a `torch.nn.MultiheadAttention` whose keys and values
# differ in size from the queries (another modality), with padded keys: both must give the same
# outputs and per-head weights.

# %%
torch.manual_seed(0)
theirs = torch.nn.MultiheadAttention(16, 4, kdim=6, vdim=10, batch_first=True).eval()
ours = MultiHeadAttention.from_torch(theirs)
q_in, k_in, v_in = torch.randn(3, 5, 16), torch.randn(3, 7, 6), torch.randn(3, 7, 10)
padding = torch.arange(7) >= torch.tensor([[7], [4], [2]])  # True = padding; real lengths 7, 4, 2
expected, expected_w = theirs(q_in, k_in, v_in, key_padding_mask=padding, average_attn_weights=False)
out, w = ours(q_in, k_in, v_in, key_padding_mask=padding)
mask = torch.rand(2, 4, 5, 7) < 0.7
mask[..., 0] = True
q_, k_, v_ = torch.randn(2, 4, 5, 8), torch.randn(2, 4, 7, 8), torch.randn(2, 4, 7, 3)
sdpa_gap = (scaled_dot_product_attention(q_, k_, v_, mask)[0]
            - F.scaled_dot_product_attention(q_, k_, v_, attn_mask=mask)).abs().max()
verify((out - expected).abs().max() < 1e-5 and (w - expected_w).abs().max() < 1e-6 and sdpa_gap < 1e-5,
       "ours equals PyTorch's (outputs and per-head weights)", mha_gap=(out - expected).abs().max(),
       weights_gap=(w - expected_w).abs().max(), sdpa_gap=sdpa_gap)

# %% [markdown]
# ### Check yourself
#
# 1. Why must a mask act on the scores, before the softmax, and not on the weights after it?
#
# <details><summary>Answer</summary>
#
# The softmax shares the weight among all the keys it sees. Zeroing the masked weights afterwards
# leaves the allowed ones summing to less than one, so the output shrinks towards zero by an amount
# that depends on the hidden keys: the very keys it should ignore. Masking the scores gives the
# hidden keys weight exactly 0, and the allowed ones still sum to 1. Nothing crashes and the shapes
# are right, which is why the bug survives in tutorial code.
# </details>
#
# 2. A query may attend to no key at all. Which is better, zero weights or NaN, and what goes wrong
#    downstream with NaN?
#
# <details><summary>Answer</summary>
#
# Zeros. NaN spreads: any sum, loss or gradient that touches it becomes NaN, so a single fully
# padded row spoils the loss of the whole batch, and after one update every parameter. With zeros, a
# block's residual connection simply keeps that token's own vector (plus the output bias).
# </details>
#
# 3. With $d = 8$ and $H = 4$, which features of token 0 does head 1 hold? What would a single
#    reshape of `(B, T, d)` straight to `(B, H, T, d/H)` put into head 0?
#
# <details><summary>Answer</summary>
#
# Features 2 and 3 (printed above). A single reshape reads the numbers in
# memory order, so head 0 would get token 0's features 0 to 5, laid out as three "tokens" of two
# features: the heads would hold pieces of whole tokens instead of one slice of every token.
# </details>

# %% [markdown]
# ## 3. Words that look at image patches
#
# The questions are all "what colour is the *shape* ?": the question alone says nothing about the
# colour (every shape comes in every colour), so a model must look.
#
# **The image as a sequence.** Cut the 32x32 scene into an 8x8 grid of 4x4-pixel patches, as a
# Vision Transformer does (Dosovitskiy et al. 2021, [*An Image is Worth 16x16
# Words*](https://arxiv.org/abs/2010.11929)). Patch $j$ becomes an embedding $z_j$ of 32 numbers: a
# linear map of its mean colour, plus learned *templates* matched against its silhouette (the
# pixels that differ from the background) in a 12x12 window, so that it can tell a circle's edge
# from a square's, plus an embedding of its position (`mmcourse.encoders.PatchEncoder`):

# %%
model = AttentionVQA(len(VOCAB), len(ANSWERS), dim=32, num_heads=2)
image = shapes["test"][0]["image"]
views.scene_and_silhouette(image, model.image.silhouette(image[None])[0, 0])
print("patch embeddings:", tuple(model.image(image[None]).shape), "| question words:",
      tuple(model.text(shapes["test"]["question_ids"][:1])[0].shape))

# %% [markdown]
# **Cross-modal attention.** The words of the question are the queries; the patches are the keys
# and values. Tsai et al. (2019), [*Multimodal Transformer for Unaligned Multimodal Language
# Sequences*](https://arxiv.org/abs/1906.00295) (MulT), build a block around this: LayerNorm
# *before* attention (pre-LN), a residual connection that adds the attention's output to the words,
# then a feed-forward layer with its own LayerNorm and residual:

# %%
views.cross_modal_block_picture()

# %% [markdown]
# With the $T$ words' embeddings as the rows of $Z_\mathrm{text}$ and the $P = 64$ patches' as the
# rows of $Z_\mathrm{image}$, one block computes
#
# $$U = Z_\mathrm{text} + \mathrm{MultiHead}(\mathrm{LN}(Z_\mathrm{text}), \mathrm{LN}(Z_\mathrm{image}),
# \mathrm{LN}(Z_\mathrm{image})), \qquad Z_\mathrm{text}' = U + \mathrm{FF}(\mathrm{LN}(U)).$$
#
# The model (`AttentionVQA`) then averages the words, each weighted by a learned score, and a linear
# layer scores every answer. The word "triangle" can find the triangle only through its attention
# weights, which you will inspect.

# %%
print(model.cross)
print("parameters:", sum(p.numel() for p in model.parameters()), "| answers to choose from:", len(ANSWERS))

# %% [markdown]
# ### Check yourself
#
# 1. A question of $T$ words looks at the $P = 64$ patches with $H = 2$ heads. What shape are the
#    attention weights, and over which dimension does each row sum to one?
#
# <details><summary>Answer</summary>
#
# $(B, 2, T, 64)$: every head gives every word a distribution over the 64 patches, so each row sums
# to one over the patches, the last dimension.
# </details>
#
# 2. Why can the answer depend on the image only through the words' attention weights?
#
# <details><summary>Answer</summary>
#
# The head reads only the pooled words. The patches reach a word only as the attention's output, an
# average of the patches' values weighted by that word's weights; the residual adds the word's own
# vector, which knows nothing of the scene. So all the model knows about the image passed through
# those weights.
# </details>

# %% [markdown]
# ## 4. Build it yourself: words that attend over patches
#
# Inside the block, `model.cross.attn` is a `MultiHeadAttention`: the words are its queries, the
# patches its keys and values. Write it as `MyCrossAttention`, with the package's parameter names
# (its weights load into yours), in four steps:
#
# 1. project the words into queries and the patches into keys and values (`q_proj`, `k_proj`, `v_proj`);
# 2. cut each into $H$ heads, from `(B, L, d)` to `(B, H, L, d/H)`, as section 2 showed;
# 3. in every head, the scores $QK^\top / \sqrt{d/H}$, a softmax over the patches, and the weighted sum
#    of the values;
# 4. merge the heads back into `(B, T, d)` and apply `out_proj`.
#
# Return the output and the weights `(B, H, T, P)`. Then write `my_vqa_step(model, batch, optimizer)`,
# one training step of the whole model: the mean cross-entropy of `model(image, question_ids).scores`
# against `answer_id`, then clear the old gradients, backpropagate and update; return the loss. Use
# plain torch: the check rejects the package's attention functions.

# %%
class MyCrossAttention(nn.Module):
    def __init__(self, embed_dim, num_heads, kdim=None, vdim=None):
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(kdim or embed_dim, embed_dim)
        self.v_proj = nn.Linear(vdim or embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)

    def forward(self, query, key, value, key_padding_mask=None):
        # query (B, T, d): the words; key (B, P, kdim) and value (B, P, vdim): the patches (none is padding)
        # returns out (B, T, d) and weights (B, H, T, P)
        # YOUR CODE HERE
        raise NotImplementedError


def my_vqa_step(model, batch, optimizer):
    # batch: "image" (B, 3, 32, 32), "question_ids" (B, T), "answer_id" (B,); returns the loss
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("cross_attention", MyCrossAttention)
exercises.check("vqa_step", my_vqa_step)

# %% [markdown]
# <details><summary><b>Hint 1: a nudge</b></summary>
#
# Write the shape of every tensor beside its line. Each head does the lookup of section 1 on its own
# slice of the features, so its scale comes from the size of that slice, not from the whole vector;
# the heads go back side by side before the last projection. The training step is the body of a
# training loop: a loss on the batch, then the optimiser's three moves, in the order that leaves no
# old gradient behind.
# </details>
# <details><summary><b>Hint 2: what helps</b></summary>
#
# `self.q_proj(query)` is `(B, T, d)`; `.reshape(B, T, H, d // H).transpose(1, 2)` cuts it into heads
# (the keys and values likewise, with `P` rows). `q @ k.transpose(-2, -1) / math.sqrt(d // H)` gives
# the scores `(B, H, T, P)`, `torch.softmax(scores, dim=-1)` normalises over the patches, `weights @ v`
# averages, and `.transpose(1, 2).reshape(B, T, d)` merges. In the step, `F.cross_entropy` averages
# over the batch; then `optimizer.zero_grad()`, `loss.backward()`, `optimizer.step()`.
# </details>
# <details><summary><b>Hint 3: the code</b></summary>
#
# ```python
# def forward(self, query, key, value, key_padding_mask=None):
#     b, t, d = query.shape
#     h = self.num_heads
#
#     def heads(x):  # (B, L, d) -> (B, H, L, d/H)
#         return x.reshape(b, x.shape[1], h, d // h).transpose(1, 2)
#
#     q, k, v = heads(self.q_proj(query)), heads(self.k_proj(key)), heads(self.v_proj(value))
#     weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // h), dim=-1)  # (B, H, T, P)
#     out = (weights @ v).transpose(1, 2).reshape(b, t, d)
#     return self.out_proj(out), weights
#
# def my_vqa_step(model, batch, optimizer):
#     scores = model(batch["image"], batch["question_ids"]).scores
#     loss = F.cross_entropy(scores, batch["answer_id"])
#     optimizer.zero_grad()
#     loss.backward()
#     optimizer.step()
#     return loss.detach()
# ```
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
class SolutionCrossAttention(nn.Module):
    def __init__(self, embed_dim, num_heads, kdim=None, vdim=None):
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(kdim or embed_dim, embed_dim)
        self.v_proj = nn.Linear(vdim or embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)

    def forward(self, query, key, value, key_padding_mask=None):
        b, t, d = query.shape
        h = self.num_heads

        def heads(x):  # (B, L, d) -> (B, H, L, d/H): cut each token's features, then heads before tokens
            return x.reshape(b, x.shape[1], h, d // h).transpose(1, 2)

        q, k, v = heads(self.q_proj(query)), heads(self.k_proj(key)), heads(self.v_proj(value))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // h)  # (B, H, T, P), scaled by a head's size
        weights = torch.softmax(scores, dim=-1)  # over the patches
        out = (weights @ v).transpose(1, 2).reshape(b, t, d)  # the heads side by side again
        return self.out_proj(out), weights


def solution_vqa_step(model, batch, optimizer):
    scores = model(batch["image"], batch["question_ids"]).scores
    loss = F.cross_entropy(scores, batch["answer_id"])  # the mean over the batch
    optimizer.zero_grad()  # before backward: no gradient left from an earlier batch
    loss.backward()
    optimizer.step()
    return loss.detach()


exercises.check("cross_attention", SolutionCrossAttention, must_pass=True)
exercises.check("vqa_step", solution_vqa_step, must_pass=True)

# %% [markdown]
# Now train the model with your layer and your step for 300 batches of 32 questions (two or three
# seconds). Until both checks pass, the package's stand in for them.

# %%
Layer = exercises.yours_or("cross_attention", MyCrossAttention, MultiHeadAttention)
step = exercises.yours_or("vqa_step", my_vqa_step, experiments.vqa_step)
brief = experiments.train_with_layer(Layer, step, seed=0)
views.loss_curve(brief.losses, title=f"AttentionVQA with {Layer.__name__}, trained by {step.__name__}")
print(f"after {len(brief.losses)} steps ({brief.seconds:.1f} s): test accuracy {brief.accuracy:.3f}; "
      f"the most common answer alone: {brief.majority_accuracy:.3f}")

# %% [markdown]
# From here on the lesson uses the package's `MultiHeadAttention`, in `mmcourse/attention.py`: your
# forward, plus masks and checks of its inputs.
#
# ### Experiment: does the answer come from the image?
#
# An accuracy far above the most common answer suggests that the model reads the image. The
# **shuffled-pairs control** tests it: give each question another scene's image and score the
# answers against the question's own answer. The accuracy falls, but how far? Write your guess in
# place of `None` first:

# %%
exercises.predict("shuffled_pairs", None)  # your guess: the accuracy on shuffled pairs, from 0 to 1

# %% [markdown]
# Now write the control: `my_shuffled_pairs(test, generator)` gets the test split's `image`,
# `question_ids` and `answer_id` and returns them rearranged into new pairs. The check runs a model
# trained as above (with the package's layer) on your pairs, scored against your `answer_id`.

# %%
def my_shuffled_pairs(test, generator):
    # test: {"image": (N, 3, 32, 32), "question_ids": (N, T), "answer_id": (N,)}; draw with generator
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("shuffled_pairs", my_shuffled_pairs)

# %% [markdown]
# <details><summary><b>Hint 1: a nudge</b></summary>
#
# Decide what must stay together. The claim is about the image, so a question keeps its own answer
# and loses its own image. Moving every column in the same way changes nothing the model sees, and
# an answer that travels with its image tests something else.
# </details>
# <details><summary><b>Hint 2: what helps</b></summary>
#
# `torch.randperm(n, generator=generator)` is a random order of `n` rows, `test["image"][order]`
# rearranges the images, and `{**test, "image": ...}` copies the dict with one column replaced.
# </details>
# <details><summary><b>Hint 3: the code</b></summary>
#
# ```python
# order = torch.randperm(len(test["image"]), generator=generator)
# return {**test, "image": test["image"][order]}
# ```
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_shuffled_pairs(test, generator):
    order = torch.randperm(len(test["image"]), generator=generator)
    return {**test, "image": test["image"][order]}  # each question and its answer, another scene's image


exercises.check("shuffled_pairs", solution_shuffled_pairs, must_pass=True)

# %% [markdown]
# ### Check yourself
#
# 1. Your layer divides the scores by $\sqrt{d/H}$, not by $\sqrt{d}$. Why a head's size, and which
#    case of the check tells the two apart?
#
# <details><summary>Answer</summary>
#
# A head's dot product sums $d/H$ products, so its variance is $d/H$: that is the $d_k$ of section 1.
# With $\sqrt{d}$ the scores shrink by $\sqrt{H}$ and the softmax flattens. Case 1 has one head, where
# the two are equal; case 2, with two heads, fails.
# </details>
#
# 2. On shuffled pairs the accuracy fell to about the most common answer's, not to zero. Why? And
#    why would a control that moves the questions and leaves each answer with its image stay far
#    higher?
#
# <details><summary>Answer</summary>
#
# The model answers with a colour from the image it sees, which is the question's own answer when
# the two scenes' objects share a colour: about one time in four with four colours, near the most
# common answer's share. A control's level is rarely zero: measure it. With the answer left with its
# image, the image alone still answers every scene with one object (try it): that control asks
# whether the model reads the *question*.
# </details>

# %% [markdown]
# ## 5. What the model answers, and where its words look
#
# Now train the model, with the package's layer, for ten passes over the 3,000 training scenes (a
# few seconds on a laptop CPU), and compare it with three baselines that see less:
#
# - **text only**: a GRU over the question alone (as in lesson 01);
# - **majority**: the most common answer in the training set;
# - **image only, at best**: someone who sees the scene perfectly but not the question. The question
#   asks about one of the scene's objects at random, so the best guess is the colour most objects
#   share (`experiments.image_only_answers`): always right with one object, and unbeatable on
#   average by any image-only model.

# %%
result = experiments.answer_colour_questions(shapes, seed=0, progress=True)
print(f"attention model: {result.accuracy:.3f} | text only: {result.text_only_accuracy:.3f} | "
      f"majority answer ({result.majority_answer}): {result.majority_accuracy:.3f}")
print(f"image only, at best: {result.image_only_accuracy:.3f} | test scenes with one object: {result.one_object:.3f}")
print(f"attention minus image only, with a 95% bootstrap interval over the test questions: {result.over_image_only}")

# %%
experiments.TEXT_ONLY_IS_MAJORITY.check(abs(result.text_only_accuracy - result.majority_accuracy))
experiments.ATTENTION_ANSWERS.check(result.accuracy - max(result.text_only_accuracy, result.majority_accuracy))
experiments.ATTENTION_BEATS_IMAGE_ONLY.check(result.accuracy - result.image_only_accuracy)

# %% [markdown]
# The image alone answers every scene with one object (the share printed above) and many others:
# the gain that needs the question, finding *the triangle*, is the one over the image-only ceiling.
#
# ### Does "triangle" look at the triangle?
#
# The data set says which object each word names (`question_object`; -1 for words like "what").
# **Grounding accuracy** counts how often a word's most-attended patch touches the object it names.
# Its **chance level** is the same count for a random patch: the fraction of the 64 patches that
# touch the object, averaged over the same words. The weights are averaged over the two heads.

# %%
print(f"grounding accuracy: {result.grounding.accuracy:.3f} (chance {result.grounding.chance:.3f}, "
      f"{result.grounding.accuracy / result.grounding.chance:.1f} times chance)")
for h, g_h in enumerate(result.head_grounding):
    print(f"  head {h} alone: {g_h.accuracy:.3f}")

# %%
experiments.GROUNDS_SHAPE_WORD.check(result.grounding.accuracy / result.grounding.chance)

# %% [markdown]
# Nobody told the model where the objects are: it learned to look from the answers alone. Here is
# the shape word's attention in the first test questions (named object outlined in white,
# most-attended patch boxed):

# %%
views.attention_examples(result.test, result.weights, result.scores, range(5))

# %% [markdown]
# ### Exercise: grounding accuracy
#
# Write `my_grounding(weights, masks, token_to_object)` returning the pair `(accuracy, chance)`
# above as two Python floats. `weights` is `(B, T, P)`: each word's attention over $P = g \times g$
# patches, numbered row by row. `masks` is a boolean `(B, objects, height, width)` tensor of pixel
# masks, and `token_to_object` is `(B, T)`: the object each word names, or -1. Only words that
# name an object count. You may use `patch_masks(masks, g)`: which patches each object touches,
# `(B, objects, P)`.

# %%
def my_grounding(weights, masks, token_to_object):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("grounding_accuracy", my_grounding)

# %% [markdown]
# <details><summary><b>Hint 1: a nudge</b></summary>
#
# Work word by word, and keep only the words that name an object. For each of them you need two
# things: which patches touch its object, and which patch it attends to most. The accuracy asks
# whether that one patch is among the touching ones; the chance level asks what share of all the
# patches touch the object. Average both over the words you kept.
# </details>
# <details><summary><b>Hint 2: what helps</b></summary>
#
# `rows, cols = (token_to_object >= 0).nonzero(as_tuple=True)` lists the words that count.
# `patch_masks(masks, g)` with `g = math.isqrt(P)`, indexed by `rows` and `token_to_object[rows, cols]`,
# has one row per counted word and one column per patch: the patches that touch its named object.
# `weights[rows, cols].argmax(-1)` is each word's top patch, and `.float().mean().item()` turns
# booleans into a Python float.
# </details>
# <details><summary><b>Hint 3: the code</b></summary>
#
# ```python
# rows, cols = (token_to_object >= 0).nonzero(as_tuple=True)
# inside = patch_masks(masks, math.isqrt(weights.shape[-1]))[rows, token_to_object[rows, cols]]
# top = weights[rows, cols].argmax(-1)
# hits = inside[torch.arange(len(top)), top]
# return hits.float().mean().item(), inside.float().mean().item()
# ```
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
from mmcourse.metrics import grounding_accuracy  # the package's equal, which computed result.grounding


def solution_grounding(weights, masks, token_to_object):
    rows, cols = (token_to_object >= 0).nonzero(as_tuple=True)
    inside = patch_masks(masks, math.isqrt(weights.shape[-1]))[rows, token_to_object[rows, cols]]
    top = weights[rows, cols].argmax(-1)
    hits = inside[torch.arange(len(top)), top]
    return hits.float().mean().item(), inside.float().mean().item()


exercises.check("grounding_accuracy", solution_grounding, must_pass=True)
worked = solution_grounding(result.weights.mean(1), result.test["masks"], result.test["question_object"])
package = grounding_accuracy(result.weights.mean(1), result.test["masks"], result.test["question_object"])
with exercises.folded():
    verify(max(abs(a - b) for a, b in zip(worked, package)) < 1e-9, "the worked solution gives the grounding numbers above")

# %% [markdown]
# ### Its own object, or any object?
#
# Beating a random patch is a low bar: objects stand out from the plain background, so a map that
# looks at *any* object beats it too, and is always right on a scene with one object. So take the
# scenes with two or three objects, and compare with an **any-object baseline**: a word-blind map
# whose top patch is drawn uniformly among the patches that touch any object. It lands on the named
# object as often as that object's share of those patches.

# %%
several = experiments.grounding_with_several_objects(result)
print(f"{several.words} questions about scenes with 2 or 3 objects: top patch on its object {several.named:.3f}, "
      f"on another object only {several.other_object:.3f}, on no object {several.background:.3f}")
print(f"any-object baseline: {several.any_object_baseline:.3f} | random patch: {several.chance:.3f}")
views.where_words_look(several)

# %%
experiments.GROUNDS_ITS_OBJECT.check(several.named - several.any_object_baseline)

# %% [markdown]
# The shape word finds *its* object, the one the answer is about, not just any object.
#
# ### Explore the attention
#
# Pick a test question, a word and a head: the left panel outlines the object the word names, the
# right one shows its weights over the patches. Try the shape word in both heads, then "what" or "?",
# which name nothing: where do they look?

# %%
explorer = views.AttentionExplorer(result.weights[:200], {k: v[:200] for k, v in result.test.items()},
                                   predictions=result.scores[:200].argmax(1))
explorer

# %% [markdown]
# ### Check yourself
#
# 1. Text only sits at the majority level, and the image alone answers every scene with one object.
#    Which of the model's right answers actually needed the question?
#
# <details><summary>Answer</summary>
#
# Those on scenes with two or three objects where the named shape's colour is not the image-only
# guess (the colour most objects share): there only finding *that* shape decides. The gain over
# "image only, at best", printed with its interval, measures this part, net of the answers that the
# image alone gets right and the model gets wrong.
# </details>
#
# 2. Grounding accuracy is several times chance. Why is that not yet evidence that the word finds the
#    object it names?
#
# <details><summary>Answer</summary>
#
# A map that looks at any object beats a random patch too, and is always right with one object. The
# fair bar is the any-object baseline on scenes with two or three objects.
# </details>

# %% [markdown]
# ## 6. Co-attention: both directions
#
# So far only the words looked at the image. MulT runs cross-modal attention *in both directions*
# (co-attention goes back to Lu et al. 2016, [*Hierarchical Question-Image
# Co-Attention*](https://arxiv.org/abs/1606.00061)). With `both_directions=True`, `AttentionVQA`
# concatenates two summaries: the question's (the words after looking at the patches, pooled) and
# the image's (the patches after looking at the words, averaged).
#
# The two-direction model starts from the one trained above (its encoders and its words-over-patches
# block), adds the other block and a new head, and trains for a few seconds. Then replace one summary
# at a time by its average over the test set (*mean ablation*), and measure the accuracy left. This
# removes a whole *branch*: the image's summary carries the patches themselves (through the
# residual) as well as what they read from the words.

# %%
co = experiments.co_attention(shapes, start=result.model, seed=0, progress=True)
print(f"both directions: {co.accuracy:.3f} | without the image's summary: {co.without_image_summary:.3f} | "
      f"without the question's summary: {co.without_question_summary:.3f} | majority: {result.majority_accuracy:.3f}")
print(f"text->image grounding: {co.grounding.accuracy:.3f} (chance {co.grounding.chance:.3f})")

# %%
experiments.CO_ATTENTION_ANSWERS.check(co.accuracy - result.text_only_accuracy)
experiments.CO_ATTENTION_GROUNDS.check(co.grounding.accuracy / co.grounding.chance)
experiments.QUESTION_BRANCH_CARRIES.check(co.accuracy - co.without_question_summary)
experiments.WITHOUT_QUESTION_BRANCH_MAJORITY.check(co.without_question_summary - result.majority_accuracy)
experiments.IMAGE_BRANCH_IDLE.check(co.accuracy - co.without_image_summary)

# %% [markdown]
# The answers come from the question's branch; the image's branch, present and trained, adds
# almost nothing. It joined a model that already answered well (try `start=None`, `epochs=12` and a
# few seeds to train both from scratch), and the ablation says only that the head ignores it. Look
# at the patches' attention itself: if patches used the question to recognise themselves as "the
# triangle", those on the named object would give the shape word more weight than empty patches do:

# %%
print("most-attended word of patches on the named object:", co.top_word_counts)
print(f"mean weight on the shape word: patches on the object {co.shape_word_inside:.3f}, "
      f"empty patches {co.shape_word_outside:.3f}")

# %% [markdown]
# Every question is the same five words around one shape word, so a patch has little to read;
# captions describing several objects would give it more. Which direction matters depends on the
# task and the training: measure before you interpret.

# %% [markdown]
# ### Check yourself
#
# 1. Removing the image's summary costs almost nothing. Does that prove that the patches-over-words
#    attention is useless?
#
# <details><summary>Answer</summary>
#
# No. The ablation removes a whole branch and shows only that this head, trained on top of a model
# that already answered from the question, does not read it. It says nothing about what the
# attention inside the branch computes, nor about a model trained from scratch or a task whose
# questions give the patches more to read.
# </details>
#
# 2. Why replace a summary by its average over the test set rather than by zeros?
#
# <details><summary>Answer</summary>
#
# The head never saw zeros there in training, so its output could change because the input is
# unusual, not because information is missing. The average keeps the input where the head knows it
# while carrying nothing about the particular sample.
# </details>

# %% [markdown]
# ## 7. Pitfall: attention is not explanation
#
# It is tempting to read a heatmap as *the reason* for an answer. Jain and Wallace (2019),
# [*Attention is not Explanation*](https://arxiv.org/abs/1902.10186), showed for text classifiers
# that attention often disagrees with other measures of what matters; Wiegreffe and Pinter (2019),
# [*Attention is not not Explanation*](https://arxiv.org/abs/1908.04626), answered that it depends on
# how you test it. You can test it here.
#
# First, right answers with diffuse attention: the correctly answered question whose shape word
# spreads its weights the most, and the share of questions answered right with less than half of
# that word's attention on its object:

# %%
case = experiments.diffuse_but_right(result)
i = case["index"]
views.attention_case(result.test, result.weights, result.scores, i, title=f"max weight {case['max_weight']:.2f}")
print(f"entropy {case['entropy']:.2f} nats (uniform over 64 patches: {case['uniform_entropy']:.2f}); "
      f"attention mass on the object: {case['mass_on_object']:.2f}")

# %%
experiments.RIGHT_BUT_ELSEWHERE.check(case["right_but_mostly_elsewhere"], questions=len(result.scores))

# %% [markdown]
# The heatmap shows where the weight *is*, not what the answer *needs*. To measure what it needs,
# intervene: a **deletion curve** (Samek et al. 2017, [*Evaluating the visualization of what a deep
# neural network has learned*](https://arxiv.org/abs/1509.06321)) deletes patches one by one,
# painting them with the background colour, and follows the test accuracy. If the attention order
# puts first what the answer needs, its curve falls sooner than a random order's, and the area under
# it is smaller. Hooker et al. (2019), [*A Benchmark for Interpretability Methods in Deep Neural
# Networks*](https://arxiv.org/abs/1806.10758), stress the controls: orders that know less and more
# (`mmcourse.diagnostics.saliency_order`, `random_order`):
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
first = {name: curve[1].item() for name, curve in deletion.curves.items()}  # accuracy after one deletion

# %%
experiments.DELETION_ATTENTION_BEATS_RANDOM.check(deletion.areas["random"] - deletion.areas["attention"])
experiments.TOP_PATCH_BEATS_OBJECT_PATCH.check(first["random within the object"] - first["attention"])
experiments.OBJECT_ORDER_BEATS_ATTENTION.check(deletion.areas["attention"] - deletion.areas["random within the object"])

# %% [markdown]
# The peak of the heatmap matters: deleting that one patch changes more answers than deleting a
# random patch of the object, and the attention curve falls far below the random one. But then the
# order that simply knows the object removes the answer sooner, down to the majority level (the
# dashed line). Attention finds *a* decisive patch, not everything the answer uses.

# %% [markdown]
# ### Check yourself
#
# 1. How can an answer be right with most of the attention elsewhere?
#
# <details><summary>Answer</summary>
#
# Empty patches all carry almost the same value, so weight spread over the background adds a
# near-constant that the classifier learns to ignore. A small share of weight on the object is
# enough to bring its colour into the output.
# </details>
#
# 2. The heatmap's peak matters more than a random patch of the object, yet a random order within
#    the object removes the answer sooner. How can both be true?
#
# <details><summary>Answer</summary>
#
# The first deletion removes the most-attended patch, which often carries the colour, so it changes
# more answers than one random patch of the object. After the peak, the attention order moves into
# the background where much of its weight lies, while the order within the object keeps deleting
# the object, whose other patches still carry the colour.
# </details>

# %% [markdown]
# ## Summary
#
# - Attention is a soft lookup: $\mathrm{softmax}(QK^\top / \sqrt{d_k})\,V$ averages the values with
#   weights $\alpha$ from query-key similarity. Masks forbid keys *before* the softmax; multi-head
#   attention splits the features into $H$ heads that attend separately. Ours equals PyTorch's.
# - In cross-modal attention the queries come from one modality, the keys and values from another;
#   you wrote the layer and its training step. Words attending to patches beat the text alone and
#   the best image-only answer, fall to the majority level on shuffled pairs, and the shape word
#   learns from answers alone to look at *its* object, more often than any-object attention.
# - Co-attention runs both directions, but a branch can be present and unused: ablate to find out,
#   and say what the ablation removes.
# - Attention shows where a model looks, not everything it needs: deletion curves with controls
#   measure that.
#
# **Papers**
#
# - Bahdanau, Cho and Bengio (2015), [*Neural Machine Translation by Jointly Learning to Align and
#   Translate*](https://arxiv.org/abs/1409.0473): where attention began.
# - Xu et al. (2015), [*Show, Attend and Tell*](https://arxiv.org/abs/1502.03044): attention over
#   image regions for captioning.
# - Lu et al. (2019), [*ViLBERT*](https://arxiv.org/abs/1908.02265): co-attention layers for vision
#   and language.
# - Hessel and Lee (2020), [*Does my multimodal model learn cross-modal
#   interactions?*](https://arxiv.org/abs/2010.06572): baselines and controls for multimodal models.
#
# **Next:** [lesson 04](04_alignment.ipynb) aligns two embedding spaces with no pairs at all. This
# lesson's attention model returns in lesson 08 as the encoder shared by four kinds of Shapes
# questions; lesson 07 trains image and text encoders to agree with no attention between them.
