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
# # Lesson 00: Welcome and toolkit
#
# **What you will learn:** how this course works, the three data sets every lesson uses, and the
# tools you will call again and again: `verify` and `Claim`, exercise checks, the training loop and widgets.
#
# **You will build:** the training loop that every lesson uses, checked against the package's `fit`, and a
# control that tells learning from leaking.
#
# **Prerequisites:** Python, and a first contact with PyTorch tensors and a training loop (the
# [PyTorch basics tutorial](https://pytorch.org/tutorials/beginner/basics/intro.html), or chapters 2 and 3 of
# [Dive into Deep Learning](https://d2l.ai/chapter_preliminaries/index.html)).
#
# **Time:** about 25 minutes of reading and 30 minutes of exercises. **Runs on:** any laptop CPU in well under a
# minute; a GPU is used when there is one, but nothing needs it.
#
# Multimodal machine learning builds models that learn from several *modalities* at once: images,
# sounds, text. A spoken "seven" and a handwritten 7 carry the same meaning through two channels
# with different noise; a caption says which object in a picture is red. The lessons teach you the
# methods that combine, align and translate between such channels, one method per lesson, each
# implemented in the small package `mmcourse` that you can open and read.

# %% [markdown]
# ## 1. How the course works
#
# Every lesson is one notebook. Run it top to bottom (**Run > Run All Cells**), then go back and
# read it section by section, doing the exercises where they come. Each lesson opens with what you will
# learn, what you should know first and how long it takes, and closes with a summary, papers and what comes
# next; every numbered section ends with a few questions to check yourself. Four things recur:
#
# - **Checked statements.** When the text states an identity ("our attention equals PyTorch's"),
#   a cell computes both sides and calls `verify(condition, message, **numbers)`: you see a check
#   mark with the numbers, and if it were ever false the cell would stop with an error, because
#   then the code is wrong. When the text claims a *result of training* ("fusion beats the best
#   single modality"), a cell checks it with a `Claim`: the statement, the quantity that tests it
#   and a threshold. Training results vary a little with the seed and the hardware, so the course
#   only claims what holds on ten seeds with a clear margin; if a claim ever fails in your run, you
#   see a ✗ with the numbers and the notebook goes on. The course's test suite runs every notebook
#   in a strict mode where a false claim is an error, so a lesson cannot quietly stop telling the
#   truth. A result that does not clear that bar is not claimed: the lesson reports it once, with its
#   interval, and says it is too small to call.
# - **Exercises**, right after the idea they practise. You fill in a function; a check runs it against the
#   package's reference implementation on several inputs and tells you what is wrong (shape, values, which
#   case). Calling the package's own implementation does not count: the check rejects it. In each lesson's
#   **Build it yourself** section you write the core of its method and train it; in its **experiment** you
#   predict a result, run it, and a check judges the measured outcome.
# - **Hints and solutions.** Hints come in three folds (click to open): a nudge in words, then the
#   functions that help, then the code. Open one at a time. Worked solutions are code cells whose source
#   is hidden and whose result is folded, so Run All gives nothing away: click the three dots to reveal one
#   when you are done or stuck. The explanation of a find-the-bug exercise is printed only by its solution; a
#   self-check question that discusses the bug comes after it and says so.
# - **Widgets.** Sliders and menus let you move a knob and watch a result change.

# %%
import torch
import torch.nn.functional as F
from IPython.display import Audio, display
from torch import nn

import mmcourse
from mmcourse import Claim, exercises, verify
from mmcourse.data import (
    DEFAULT_IMAGE_NOISE,
    DEFAULT_OCCLUSION,
    DIGIT_NAMES,
    VOCAB,
    corrupt_images,
    load_av_digits,
    load_shapes,
    make_two_views,
)
from mmcourse.encoders import ImageEncoder
from mmcourse.experiments import welcome as experiments
from mmcourse.train import Adam
from mmcourse.views.common import figure, show_digit, show_scene, show_spectrogram
from mmcourse.views.welcome import SampleBrowser, clean_and_corrupted

device = mmcourse.get_device()
print(f"torch {torch.__version__}, training on: {device}")

# %% [markdown]
# `get_device()` picks CUDA, then Apple's MPS, then the CPU. To choose yourself, set the environment
# variable `MMCOURSE_DEVICE` (for example `MMCOURSE_DEVICE=cpu`) before starting JupyterLab.
#
# Here is an identity that holds, a claim that holds, and what a claim that fails looks like in
# your notebook (under the test suite it would raise `ClaimError` instead):

# %%
verify(2 + 2 == 4, "arithmetic still works", two=2, four=4)
coin = Claim("a fair coin lands heads about half of the time", "share of heads in 10,000 flips", ">=", 0.45)
heads = torch.randint(0, 2, (10_000,), generator=torch.Generator().manual_seed(0)).float().mean()
coin.check(heads)
if not mmcourse.claims.strict():  # in the test suite's strict mode this one would stop the notebook
    Claim("a fair coin always lands heads", "share of heads in 10,000 flips", ">=", 0.99).check(heads)

# %% [markdown]
# ### Notation
#
# Every lesson writes its maths with one notation. Come back to this table when a symbol is unclear:
#
# | symbol | means | where |
# |---|---|---|
# | $x$, $y$ | one example of the first and the second modality (a column vector) | 02, 04, 07 |
# | $y$ | a class label, one of $C$ classes (where no second modality is written $y$) | 01, 06, 08 |
# | $x^{(m)}$ | the input of modality $m$, where there are more than two | 01, 05 |
# | $X$, $Y$ | a data matrix: one example per **row**, $n \times d$ | 02, 04 |
# | $n$ | the number of examples (in 06 alone, $n$ numbers an episode's classes, $0, \dots, N - 1$) | all |
# | $B$ | the batch size (examples, or tasks in a meta-batch) | all |
# | $d$, $d_x$, $d_y$ | a dimension (of an embedding, of each view) | all |
# | $M$ | the number of modalities | 01, 05 |
# | $C$ | the number of classes | 01, 06, 08 |
# | $W$ | a linear map acting **on the left** of a column vector, $Wx$; with examples in rows, $XW^\top$ (as `nn.Linear` and `x @ W.T` in code) | 01, 02, 04 |
# | $w_x$, $w_y$ | one projection direction in each view | 02 |
# | $C_{xx}$, $C_{yy}$, $C_{xy}$ | covariance and cross-covariance blocks (of whatever the two views are: inputs, or a network's outputs) | 02 |
# | $\tilde C_{xy}$ | the whitened cross-covariance $C_{xx}^{-1/2} C_{xy} C_{yy}^{-1/2}$, whose singular values are the canonical correlations | 02 |
# | $Q$, $K$, $V$ | queries, keys and values; $Q$ means queries only (a query set in 06, retrieval queries in 02 and 07) | 03, 06 |
# | $T$ | the number of time steps or tokens of a sequence, and nothing else | 03 |
# | $H$ | the number of attention heads | 03 |
# | $P$ | the number of image patches | 03 |
# | $\tau$ | the temperature of a softmax, wherever one is divided by it | 07, 08 |
# | $\sigma$, $\sigma^2$ | a standard deviation, a variance; a precision is written $1/\sigma^2$ | 04, 05 |
# | $\sigma(\cdot)$ | the logistic sigmoid, when applied to something | 04 |
# | $\mu$ | a mean | 04, 05 |
# | $\epsilon$ | label smoothing (a small share of the target moved to the other class) | 04 |
# | $\varepsilon$ | standard Gaussian noise, as in the reparameterisation trick | 05 |
# | $h$, $h^{(m)}$ | an encoder's output (of modality $m$), before it is fused or compared | 01, 02, 08 |
# | $z$ | a latent code, or an embedding that is compared or fused | 01, 03, 05, 07 |
# | $\theta$, $\phi$ | parameters (a model's; an encoder's $\phi$ beside a decoder's $\theta$) | 05, 06 |
# | $\alpha$ | a weight between 0 and 1 that mixes things (an attention weight, a modality's weight, the distillation mix) | 01, 03, 06, 08 |
# | $\eta$ | a step size (a learning rate), with a subscript where there are two | 04, 06 |
# | $\beta$ | the orthogonalisation step of lesson 04 (MUSE's name) | 04 |
# | $\lambda$ | the weight of a penalty or of one term of a loss (a ridge, a modality's likelihood, a task's loss) | 02, 04, 05, 08 |
# | $\omega_i$ | the weight of the $i$-th rank-one term of a low-rank (CP) decomposition | 01 |
# | $N$, $k$ | an episode's classes and shots: an $N$-way $k$-shot task | 06 |
# | $N_k(y)$ | how often target $y$ is among the $k$ nearest neighbours of the mapped sources (its $k$-occurrence) | 04 |
# | $\mathcal{T}$ | a task | 06 |
# | $\mathcal{L}$ | a loss | all |
# | $\mathcal{N}(\mu, \sigma^2)$ | a Gaussian | 05 |

# %% [markdown]
# ### Check yourself
#
# 1. A cell prints ✗ under a claim in your run. Is the code wrong? What should you do?
#
# <details><summary>Answer</summary>
#
# Not necessarily. A claim is a result of training. Your machine's hardware and library versions change the
# last digits of the arithmetic, and after training that acts like another seed: the course checks each claim
# on seeds 0-9 with a margin, so a clear miss with the lesson's own settings is unusual and worth reporting,
# but it does not mean the code is wrong. A failing `verify` would: it states an
# identity, and it stops the notebook.
# </details>
#
# 2. Why does the coin claim use a threshold of 0.45 rather than 0.5?
#
# <details><summary>Answer</summary>
#
# The share of heads in 10,000 fair flips is 0.5 give or take about 0.005 (one standard deviation,
# $\sqrt{0.25 / 10000}$). Asking for at least 0.5 would fail on about half of all seeds; 0.45 is ten
# standard deviations away, so the claim holds on any seed, and still rules out a coin that lands heads
# only 40% of the time.
# </details>

# %% [markdown]
# ## 2. AV-Digits (image + audio) and the training loop
#
# Each sample pairs a handwritten digit (scikit-learn's 8x8 digits, from the UCI repository) with
# a spoken digit. The speech was synthesised with [espeak-ng](https://github.com/espeak-ng/espeak-ng)
# in 96 *voices*: combinations of an accent (English ones, and other languages reading English
# words), a voice timbre, a speed and a pitch. Train, validation and test use **different voices**,
# so a model must recognise the word, not the speaker. Both modalities are noisy on purpose: the
# images get pixel noise and a square occluder, the audio gets white noise at 0 dB signal-to-noise
# ratio. The spoken words were synthesised once and ship with the package (3 MB); the pairing, the splits and the
# noise are made on your machine in about a second; nothing is downloaded.

# %%
av = load_av_digits(seed=0)
av

# %% [markdown]
# At 8x8 pixels the corruption is strong, so look at it before you use it. The top row shows eight
# training digits as scikit-learn ships them; the bottom row shows the same digits with AV-Digits'
# default corruption: Gaussian pixel noise of standard deviation 0.3 and a 3x3 square erased at a
# random place (`corrupt_images`, the function the loader applies).

# %%
clean = load_av_digits(image_noise=0.0, occlusion=0, audio_snr_db=float("inf"), seed=0)
digits, labels = clean["train"]["image"][:8], clean["train"]["label"][:8]
corrupted = corrupt_images(digits, DEFAULT_IMAGE_NOISE, DEFAULT_OCCLUSION, torch.Generator().manual_seed(0))
clean_and_corrupted(digits, corrupted, labels, DIGIT_NAMES)

# %% [markdown]
# Listen to a clip, then look at its *log-mel spectrogram*: time on the x axis, frequency bands on
# the mel scale (spaced like human pitch perception) on the y axis, brightness for energy. The
# spectrogram, not the raw waveform, is what the audio models see. Try another index.

# %%
row = av["train"][3]
print("label:", DIGIT_NAMES[int(row["label"])], "| voice:", row["voice"])
display(Audio(row["waveform"].numpy(), rate=8000))
with figure(4, 2.5) as axes:
    show_spectrogram(axes[0], row["audio"], "log-mel spectrogram")

# %% [markdown]
# The noise knobs are arguments of the loader: `clean` above was loaded with
# `load_av_digits(image_noise=0.0, occlusion=0, audio_snr_db=float("inf"))`. Here are one sample's
# image and sound, clean and with the default noise (0 dB: the noise is as loud as the word):

# %%
with figure(6, 2.2, ncols=4) as axes:
    for k, (name, ds) in enumerate([("clean", clean), ("default noise", av)]):
        show_digit(axes[2 * k], ds["train"][3]["image"], f"{name}: image")
        show_spectrogram(axes[2 * k + 1], ds["train"][3]["audio"], f"{name}: audio")

# %% [markdown]
# The claim in the text, that no test voice is heard in training, is checked on the data itself:

# %%
voices = {split: set(av[split]["voice"]) for split in av}
shared = voices["train"] & voices["test"]
verify(not shared, "train and test voices are disjoint",
      train_voices=len(voices["train"]), test_voices=len(voices["test"]), shared=len(shared))

# %% [markdown]
# ### The training loop
#
# `mmcourse.fit(model, data, inputs, target)` trains with Adam, shows a progress bar and returns a
# history; `mmcourse.evaluate` measures loss and accuracy. Every lesson trains through this one
# loop; for objectives other than classification, `fit` takes a `step(model, batch) -> loss`.
# Here a small image encoder (`nn.Sequential(ImageEncoder(64), nn.Linear(64, 10))`) learns the
# noisy digits in about a second:

# %%
image_model, history, image_result = experiments.train_image_model(av, seed=0)
print(history, "| test:", image_result)

# %%
experiments.IMAGE_MODEL_BEATS_CHANCE.check(image_result["accuracy"], chance=0.1)
experiments.IMAGE_MODEL_IMPERFECT.check(image_result["accuracy"])

# %% [markdown]
# Lesson 01 asks how much better a model gets when it also hears the digit.
#
# ### Exercise: accuracy
#
# `evaluate` reported an accuracy above. Write it yourself: `my_accuracy(scores, labels)`, where `scores` is
# a `(B, C)` tensor of class scores and `labels` a `(B,)` tensor of true classes. Return the fraction of rows
# whose highest score is at the true label, as a Python `float`. The check below runs it on three cases and
# tells you what differs.

# %%
def my_accuracy(scores, labels):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("accuracy", my_accuracy)

# %% [markdown]
# <details><summary><b>Hint 1: a nudge</b></summary>
#
# A row is right when the class with the highest score is the true one. Find each row's predicted class,
# compare, and average the rights and wrongs as numbers.
# </details>
# <details><summary><b>Hint 2: what helps</b></summary>
#
# `Tensor.argmax(dim=...)` gives each row's predicted class; `==` compares two tensors element by element;
# `.float().mean()` averages booleans; `.item()` turns a one-element tensor into a Python number.
# </details>
# <details><summary><b>Hint 3: the code</b></summary>
#
# `(scores.argmax(dim=1) == labels).float().mean().item()`
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_accuracy(scores, labels):
    return (scores.argmax(dim=1) == labels).float().mean().item()


exercises.check("accuracy", solution_accuracy, must_pass=True)

# %% [markdown]
# ### Check yourself
#
# 1. Why are the test voices never heard in training?
#
# <details><summary>Answer</summary>
#
# So that an audio model must recognise the word, not the speaker. On voices it heard in training it could
# also lean on the voice itself, and its test accuracy would overstate how well it works for a new speaker.
# The lesson verifies that no test voice occurs in training.
# </details>
#
# 2. The lesson claims that the image model is far *from perfect*. Why would a course on fusion want that?
#
# <details><summary>Answer</summary>
#
# The corruption (pixel noise and a 3x3 occluder on 8x8 digits) is there to make each modality alone
# imperfect, so that combining image and sound has something to add. If the image alone were nearly perfect,
# lesson 01 could not show fusion helping.
# </details>

# %% [markdown]
# ## 3. Build it yourself: the training loop
#
# Every lesson has a section like this one: you write the core of the method in a scaffold, a check compares
# it with the package's version on the same weights and data and says what differs, and the next cell trains
# *your* code. After that the lesson uses the package's version, which you can then read as your own.
#
# Here you write `fit`'s loop. The scaffold keeps `fit`'s choices, so that the two must agree to within
# rounding: Adam (`mmcourse.train.Adam`, the same arithmetic as `torch.optim.Adam`), a fresh shuffle of the rows
# each epoch from a generator seeded with `seed`, batches of `batch_size` rows (the last may be smaller), and
# cross-entropy as the loss. Fill in one training step, and keep the epoch's loss as `fit` reports it: the
# mean over *rows*, so that a smaller last batch counts less.

# %%
def my_train(model, images, labels, epochs=3, batch_size=64, lr=1e-3, seed=0):
    """Train the classifier `model` on images (N, 1, 8, 8) and labels (N,); return each epoch's mean loss."""
    optimizer = Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)  # the same shuffles as fit(..., seed=seed)
    n = len(labels)
    epoch_losses = []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n, generator=generator)
        total = 0.0  # the sum over rows of each row's loss
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            # YOUR CODE HERE: the batch's loss, then one step of the optimiser; add the batch's share to total
            raise NotImplementedError
        epoch_losses.append(total / n)
    return epoch_losses


exercises.check("training_loop", my_train)

# %% [markdown]
# <details><summary><b>Hint 1: a nudge</b></summary>
#
# The rows of the batch are images and labels at the positions in idx. Score them with the model and measure
# the loss. Then the three moves of every training step: forget the gradients of the last step, compute the
# new ones, update the weights. The loss is a mean over the batch's rows; to average over the epoch's rows,
# weigh it by the number of rows in the batch.
# </details>
# <details><summary><b>Hint 2: what helps</b></summary>
#
# `F.cross_entropy(scores, targets)` (a mean over rows); `optimizer.zero_grad()`, `loss.backward()`,
# `optimizer.step()`; `loss.item()` reads the number; `len(idx)` is the batch's size.
# </details>
# <details><summary><b>Hint 3: the code</b></summary>
#
# `loss = F.cross_entropy(model(images[idx]), labels[idx])`, then `optimizer.zero_grad()`, `loss.backward()`,
# `optimizer.step()` and `total += loss.item() * len(idx)`.
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_train(model, images, labels, epochs=3, batch_size=64, lr=1e-3, seed=0):
    optimizer = Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    n = len(labels)
    epoch_losses = []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            loss = F.cross_entropy(model(images[idx]), labels[idx])
            optimizer.zero_grad()  # without it, each step would add the old gradients to the new
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)  # the batch's mean loss, weighed by its rows
        epoch_losses.append(total / n)
    return epoch_losses


exercises.check("training_loop", solution_train, must_pass=True)

# %% [markdown]
# Now train the image model of section 2 with your loop for three epochs (about a second). Until your loop
# passes its check, `yours_or` hands the package's loop in its place, so the cell runs either way:

# %%
train = exercises.yours_or("training_loop", my_train, experiments.train_with_fit)
mmcourse.seed_everything(0)
model = nn.Sequential(ImageEncoder(out_dim=64), nn.Linear(64, 10))
images, labels = av["train"]["image"][:], av["train"]["label"][:]  # (N, 1, 8, 8) and (N,) tensors
losses = train(model, images, labels, epochs=3)
print("mean training loss per epoch:", [round(loss, 3) for loss in losses])
print("test:", mmcourse.evaluate(model, av["test"]))

# %% [markdown]
# From here on every lesson trains through `fit` (`mmcourse/train.py`), which is this loop with a progress
# bar, validation after each epoch and any loss as a `step(model, batch)`.
#
# ### Experiment: is it learning the digits?
#
# Section 2's model reached a test accuracy of about 0.7: it learned something, but not *what*. A classic
# control, a permutation test (Ojala and Garriga 2010), trains the same model on the labels shuffled against
# their images: whatever it fits then cannot carry over to new images, so its test accuracy should fall to
# chance. If it did not, something would leak the answer (a test image also in training, a label hidden in
# the input). Every lesson has one experiment like
# this: you predict, you run, and a check judges what your run *measured*, against a bar that a correct
# attempt clears on ten seeds.
#
# First predict the test accuracy of the model trained on shuffled labels, and record it:

# %%
exercises.predict("shuffled_labels", None)  # your guess in place of None: a test accuracy between 0 and 1

# %% [markdown]
# Then write the control: `my_shuffled_labels(labels, generator)` returns the training labels `(N,)` with
# their pairing to the images broken: the same labels, each digit as often as before, in another order. The
# check trains the image model on them for ten epochs (about a second), measures its accuracy on the true
# test labels, and also under the best renaming of its classes (so that a consistent renaming such as
# "every 1 becomes a 3", which keeps the pairing, does not pass for a shuffle).

# %%
def my_shuffled_labels(labels, generator):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("shuffled_labels", my_shuffled_labels)

# %% [markdown]
# <details><summary><b>Hint 1: a nudge</b></summary>
#
# Keep every label, so that each digit is as common as before, but put them in a random order drawn with the
# generator you are given.
# </details>
# <details><summary><b>Hint 2: what helps</b></summary>
#
# `torch.randperm(n, generator=generator)` is a random order of `0..n-1`; indexing `labels[order]` reorders.
# </details>
# <details><summary><b>Hint 3: the code</b></summary>
#
# `return labels[torch.randperm(len(labels), generator=generator)]`
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_shuffled_labels(labels, generator):
    return labels[torch.randperm(len(labels), generator=generator)]


exercises.check("shuffled_labels", solution_shuffled_labels, must_pass=True)

# %% [markdown]
# ### Check yourself
#
# 1. Your loop forgot `optimizer.zero_grad()`. Would it still train, and would the check notice?
#
# <details><summary>Answer</summary>
#
# It would often still lower the loss, because each step then follows the sum of all gradients so far, a
# clumsy kind of momentum. The first step is still right (there are no old gradients yet), but from the second
# step on the weights differ from `fit`'s, and the check reports wrong weights: a bug that trains is still a
# bug.
# </details>
#
# 2. About one training label in ten stays in place after a random shuffle. Does that spoil the control?
#
# <details><summary>Answer</summary>
#
# No. With ten balanced digits, a random label matches by chance one time in ten, whatever the image: the
# matches carry no information about which image shows which digit. The check prints this fraction as
# "unchanged"; a control that left every label in place would show 1.
# </details>

# %% [markdown]
# ## 4. Shapes & captions (image + text)
#
# Small scenes of one to three shapes, each with a caption and a question. Because we draw them
# ourselves, we know the truth down to the pixel: which pixels belong to each object, and which
# words of the caption name it. That lets lesson 03 *measure* whether an attention map looks at the
# right object.

# %%
shapes = load_shapes(seed=0, holdout=[("red", "triangle")])
with figure(10, 2.4, ncols=5, tight=False) as axes:
    for ax, row in zip(axes, shapes["train"].select(range(5))):
        show_scene(ax, row["image"], row["masks"], title=f"{row['question']}\n{row['answer']}")

# %% [markdown]
# Text becomes integer ids from a fixed vocabulary of 27 words; `caption_object` says, for every
# token, which object it refers to (-1 for words like "a" or "the"):

# %%
row = shapes["train"][0]
print(row["caption"])
for token, obj in list(zip(row["caption_ids"].tolist(), row["caption_object"].tolist()))[:9]:
    print(f"  {VOCAB.itos[token]:>8} (id {token:2d}) -> object {obj}")

# %% [markdown]
# The ground truth is consistent with the pixels: inside each object's mask, every pixel has that
# object's colour. And the held-out combination "red triangle" never occurs in training scenes,
# only in validation and test, ready for the zero-shot experiments of lesson 07.

# %%
from mmcourse.data import COLOURS, SHAPES
from mmcourse.data.shapes import RGB

inside_ok = all(
    torch.allclose(r["image"][:, r["masks"][k]], torch.tensor(RGB[COLOURS[r["object_colour"][k]]])[:, None])
    for r in shapes["train"].select(range(200)) for k in range(int(r["n_objects"]))
)
red, triangle = COLOURS.index("red"), SHAPES.index("triangle")
def count_red_triangles(split):
    colour, shape = shapes[split]["object_colour"][:], shapes[split]["object_shape"][:]
    return int(((colour == red) & (shape == triangle)).sum())
verify(inside_ok and count_red_triangles("train") == 0 < count_red_triangles("test"),
      "masks match the pixels, and red triangles appear only outside training",
      train=count_red_triangles("train"), test=count_red_triangles("test"))

# %% [markdown]
# ### Find the bug: the last word of a caption
#
# Every lesson has one exercise with a bug of the kind found in multimodal tutorial code on the web:
# the code runs, the shapes look right, and the numbers are wrong. Here is the first. A caption
# model embeds its words into `x` of shape `(B, L, E)` (B captions of L words) and summarises each
# caption by the state of a GRU after its last word. The GRU was built as `nn.GRU(E, H)`, and this
# function returns a `(B, H)` tensor as promised:

# %%
def buggy_last_hidden(x, gru):
    outputs, _ = gru(x)
    return outputs[:, -1]


x, gru = torch.randn(4, 6, 5), torch.nn.GRU(5, 3)
print("shape:", tuple(buggy_last_hidden(x, gru).shape))
exercises.check("last_hidden", buggy_last_hidden)

# %% [markdown]
# The check compares it with the right answer on four cases and stops at the first that differs.
# Write a fixed `my_last_hidden(x, gru)` for the same `gru`.

# %%
def my_last_hidden(x, gru):
    # YOUR CODE HERE
    raise NotImplementedError


exercises.check("last_hidden", my_last_hidden)

# %% [markdown]
# <details><summary><b>Hint 1: a nudge</b></summary>
#
# Look at how the GRU is called, and at what the function returns. Is it really the state after each caption's
# last word? The GRU's documentation says what it expects.
# </details>
# <details><summary><b>Hint 2: what helps</b></summary>
#
# The documentation of `torch.nn.GRU`: the shapes of its input and output, and its `batch_first` argument.
# `Tensor.transpose(0, 1)` swaps the first two dimensions.
# </details>
# <details><summary><b>Hint 3: the code</b></summary>
#
# By default a GRU expects `(L, B, E)`, time first: `outputs, _ = gru(x.transpose(0, 1))` gives `(L, B, H)`,
# and the last time step is `outputs[-1]`.
# </details>

# %% tags=["solution"] jupyter={"outputs_hidden": true, "source_hidden": true}
def solution_last_hidden(x, gru):
    outputs, _ = gru(x.transpose(0, 1))  # (L, B, H): time first, as nn.GRU expects by default
    return outputs[-1]


exercises.check("last_hidden", solution_last_hidden, must_pass=True)

# %% [markdown]
# ### Check yourself
#
# 1. Why can lesson 03 *measure* whether an attention map looks at the right object, when most data sets
#    cannot?
#
# <details><summary>Answer</summary>
#
# Because the scenes are drawn by the course: every object's pixel mask and every word's object
# (`caption_object`) are known exactly. With photographs one would need people to draw boxes or masks.
# </details>
#
# 2. Try the find-the-bug exercise first. Then: the buggy function returned a `(B, H)` tensor as promised.
#    What test would have caught it on the first day?
#
# <details><summary>Answer</summary>
#
# The GRU read the captions as time steps and the word positions as the batch. So row $b$ of
# `outputs[:, -1]` is the state after reading the *last word* of captions 0 to $b$, one after the other: it
# ignores every other word and mixes captions. A test that changes an early word of a caption and checks that
# the caption's summary changes would have caught it (the buggy function reads only last words), as would a
# comparison with a loop over the captions one by one.
# </details>

# %% [markdown]
# ## 5. Two views with known correlations
#
# For canonical correlation analysis (lesson 02) we need data where we know the right answer.
# `make_two_views` draws two views, x in R^10 and y in R^8, from a shared latent, so that the best
# linear projections of the two views correlate with exactly the correlations you ask for (in the population;
# a sample's estimates come close).

# %%
two_views = make_two_views(n=2000, correlations=(0.9, 0.5), seed=0)
print("x:", tuple(two_views.x.shape), "y:", tuple(two_views.y.shape), "true canonical correlations:", two_views.correlations.tolist())
raw = torch.corrcoef(torch.cat([two_views.x, two_views.y], 1).T)[:10, 10:].abs().max()
print(f"largest correlation between any raw x and y coordinate: {raw:.2f}")

# %% [markdown]
# No single pair of raw coordinates reveals the 0.9: it is spread over all of them by a random
# mixing. Finding it is CCA's job.
#
# ### Browse the data
#
# Pick a data set, a split and a sample. AV-Digits samples come with a player.

# %%
browser = SampleBrowser({"AV-Digits": av, "Shapes & captions": shapes})
browser

# %% [markdown]
# ### Check yourself
#
# 1. The largest correlation between a raw coordinate of x and one of y is printed above. Why is it well
#    below 0.9, although the two views share a direction with correlation 0.9?
#
# <details><summary>Answer</summary>
#
# The shared latent is mixed into all coordinates of each view by a random map, with other, independent
# latents. Each raw coordinate holds only part of the shared direction, diluted by the rest; only a
# weighted combination of all coordinates, the one CCA finds, recovers the full 0.9.
# </details>
#
# 2. Why generate data with known correlations at all, when real paired data exists?
#
# <details><summary>Answer</summary>
#
# With the true answer known, a method can be checked: lesson 02 claims, on ten seeds, that CCA recovers the planted
# correlations within a few standard errors. On real data one can only compare methods with each other.
# </details>

# %% [markdown]
# ## 6. The map of the course
#
# Liang, Zadeh and Morency (2022), [*Foundations and Trends in Multimodal Machine Learning:
# Principles, Challenges, and Open Questions*](https://arxiv.org/abs/2209.03430), organise the field
# into six core challenges. Each lesson works on one or more of them:
#
# | challenge | the question | lessons |
# |---|---|---|
# | **Representation** | how to encode and combine modalities into one representation | 01 Fusion, 02 CCA, 05 Autoencoders, 07 Contrastive learning |
# | **Alignment** | which elements of one modality correspond to which of another | 02 CCA (retrieval), 03 Attention (grounding), 04 Alignment without pairs, 07 Contrastive learning (retrieval) |
# | **Reasoning** | how to compose evidence across modalities in several steps | none yet: lesson 03's questions take one step (find the named object, read one attribute), which is grounding, an alignment problem; lesson 08 answers four kinds of such question with one encoder |
# | **Generation** | how to produce one modality from another | 05 Autoencoders (cross-modal generation) |
# | **Transference** | how to move knowledge between modalities and tasks | 06 Meta-learning, 07 Contrastive learning (zero-shot), 08 Sharing and transferring knowledge (shared encoders, distillation) |
# | **Quantification** | how to measure what each modality contributes, and how robust a model is | 01 Fusion (robustness, missing modalities), 03 Attention (is attention explanation?), 08 Sharing and transferring knowledge (what training randomness does) |

# %% [markdown]
# ### Check yourself
#
# 1. Where on the map would you put "does the word *triangle* look at the triangle?", and where "the model
#    still works when the microphone is off"?
#
# <details><summary>Answer</summary>
#
# The first is alignment (which word corresponds to which region: lesson 03's grounding). The second is
# quantification, of robustness to a missing modality (lesson 01).
# </details>
#
# 2. Why does no lesson claim to teach reasoning?
#
# <details><summary>Answer</summary>
#
# Reasoning composes evidence over several steps. The course's questions take one step (find the named
# object, read one attribute), which is grounding, an alignment problem; calling that reasoning would claim
# more than the lessons show.
# </details>

# %% [markdown]
# ## Summary
#
# - Lessons run top to bottom on a CPU; identities are checked with `verify`, results of training
#   with a `Claim` that holds on ten seeds; a result too small to claim is reported once, with its interval.
# - `load_av_digits`, `load_shapes` and `make_two_views` give you offline data with known truth.
# - `fit` / `evaluate` train and measure; you wrote `fit`'s loop yourself, and `exercises.check` gives feedback
#   on your code.
# - A control tells learning from leaking: on labels shuffled against their images, the same model falls to
#   chance.
# - One notation for the whole course: the table in section 1.
#
# **Papers**
#
# - Baltrusaitis, Ahuja and Morency (2019), [*Multimodal Machine Learning: A Survey and
#   Taxonomy*](https://arxiv.org/abs/1705.09406), the earlier taxonomy the one above extends.
# - Liang, Zadeh and Morency (2022), [*Foundations and Trends in Multimodal Machine
#   Learning*](https://arxiv.org/abs/2209.03430), the map above.
# - Ojala and Garriga (2010), [*Permutation tests for studying classifier
#   performance*](https://www.jmlr.org/papers/v11/ojala10a.html), the shuffled-labels control as a test.
# - Zhang, Bengio, Hardt, Recht and Vinyals (2017), [*Understanding deep learning requires rethinking
#   generalization*](https://arxiv.org/abs/1611.03530): large networks reach zero training error on random
#   labels, at chance on the test set. The small model here fits only about a quarter of its shuffled labels in
#   ten epochs.
#
# **Next:** [lesson 01](01_fusion.ipynb) combines the image and the sound of AV-Digits (fusion), and asks what
# each modality contributes and what happens when one is missing.
