"""Experiments of lesson 05 (autoencoders): the training runs and measurements behind its claims.

Two data sets of paired modalities, as tensors: one-object Shapes scenes with their captions (the
caption as four attribute tokens: size, colour, shape, position), with red triangles held out of
training, and AV-Digits (8x8 digits with pooled log-mel spectrograms). Every model trains once with
:func:`mmcourse.train.fit`; generation is measured with *referees*, classifiers trained on real
data, as cross-modal coherence (Shi et al. 2019). The claims are :class:`~mmcourse.claims.Claim`
constants at the end; :func:`measure_claims` computes their quantities for any seed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..autoencoders import (
    MMVAE,
    MVAE,
    AlignedAutoencoders,
    BimodalAutoencoder,
    SceneCoder,
    TokenCoder,
    VectorCoder,
    standardized_distance,
    vae_step,
)
from ..claims import Claim
from ..data import BACKGROUND, COLOURS, POSITIONS, SHAPES, SIZES, as_tensors, load_av_digits, load_shapes
from ..device import get_device, seed_everything
from ..diagnostics import shuffled_pairs
from ..metrics import ComparisonEntry, Retrieval, class_retrieval, comparison_entry
from ..train import Adam, History, fit

HOLDOUT = (("red", "triangle"),)  # never seen in training, in any size or place
CAPTION_SLOTS = ("size", "colour", "shape", "position")
CAPTION_SIZES = (len(SIZES), len(COLOURS), len(SHAPES), len(POSITIONS))  # values of each caption token
SIZE, COLOUR, SHAPE, POSITION = range(4)  # the caption's token positions
LATENT_DIM = 16
MODELS = ("autoencoder", "MVAE", "MMVAE")
GENERATIVE = ("MVAE", "MMVAE")  # the models with a prior over their code, whose samples joint coherence judges
TRAINING = {"shapes": {"epochs": 20, "batch_size": 128, "lr": 3e-3},
            "av": {"epochs": 20, "batch_size": 128, "lr": 3e-3}}


# ----------------------------------------------------------------------------- the data
@dataclass
class Paired:
    """Two modalities of one data set as tensors: ``train`` and ``test`` dicts with a column per modality
    (in ``modalities`` order) and ``label`` (the class the views colour by); ``source`` is the loaded
    ``DatasetDict``."""

    name: str  # "shapes" or "av"
    modalities: tuple[str, str]
    train: dict
    test: dict
    source: object
    seed: int


def caption_tokens(columns: dict) -> torch.Tensor:
    """A one-object scene's caption as its four attribute tokens (size, colour, shape, position), from
    Shapes' ``object_*`` columns. Shape: columns of N scenes -> (N, 4) int64."""
    return torch.stack([columns[f"object_{slot}"][:, 0] for slot in CAPTION_SLOTS], dim=1)


def describe(tokens: torch.Tensor) -> str:
    """The caption of four attribute tokens (4,), in the words of Shapes' template."""
    size, colour, shape, position = (int(t) for t in tokens)
    return f"a {SIZES[size]} {COLOURS[colour]} {SHAPES[shape]} at the {POSITIONS[position]}"


def shapes_data(seed: int = 0, n_train: int = 2000, n_test: int = 500) -> Paired:
    """One-object Shapes scenes, averaged over 2 x 2 pixels to 16 x 16, and their captions as tokens.

    Red triangles (:data:`HOLDOUT`) never occur in training. ``label`` is shape * 4 + colour.
    Columns: ``image`` (N, 3, 16, 16), ``caption`` (N, 4), ``label`` (N,).
    """
    source = load_shapes(n_train=n_train, n_validation=1, n_test=n_test, max_objects=1, holdout=HOLDOUT, seed=seed)
    names = ["image"] + [f"object_{slot}" for slot in CAPTION_SLOTS]

    def split(name: str) -> dict:
        columns = as_tensors(source[name], names)
        caption = caption_tokens(columns)
        return {"image": F.avg_pool2d(columns["image"], 2), "caption": caption,
                "label": caption[:, SHAPE] * len(COLOURS) + caption[:, COLOUR]}

    return Paired("shapes", ("image", "caption"), split("train"), split("test"), source, seed)


def av_data(seed: int = 0) -> Paired:
    """AV-Digits at its default noise (lesson 02's data): 8x8 digits, and log-mel spectrograms averaged
    over blocks of 2 mel bands x 4 frames, standardised with the training split's statistics.

    Columns: ``image`` (N, 1, 8, 8), ``audio`` (N, 1, 16, 10), ``label`` (N,) the digit.
    """
    source = load_av_digits(seed=seed)
    parts = {s: as_tensors(source[s], ["image", "audio", "label"]) for s in ("train", "test")}
    pooled = {s: F.avg_pool2d(p["audio"], (2, 4)) for s, p in parts.items()}
    mean, std = pooled["train"].mean(0), pooled["train"].std(0).clamp_min(1e-6)
    train, test = ({"image": parts[s]["image"], "audio": (pooled[s] - mean) / std, "label": parts[s]["label"]}
                   for s in ("train", "test"))
    return Paired("av", ("image", "audio"), train, test, source, seed)


# ----------------------------------------------------------------------------- the models
def coders(data: Paired, latent_dim: int = LATENT_DIM) -> list:
    """Fresh coders of the two modalities of ``data``: a :class:`~mmcourse.autoencoders.SceneCoder` and a
    :class:`~mmcourse.autoencoders.TokenCoder` for Shapes, two
    :class:`~mmcourse.autoencoders.VectorCoder` for AV-Digits.

    The likelihood scalings balance the modalities: a caption's four tokens carry a few nats, a
    scene's 768 numbers hundreds, so each caption token counts ten times.
    """
    if data.name == "shapes":
        return [SceneCoder(16, latent_dim, hidden=128, scale=0.1),
                TokenCoder(CAPTION_SIZES, latent_dim, hidden=64, weight=10.0)]
    return [VectorCoder((1, 8, 8), latent_dim, hidden=128, scale=0.3),
            VectorCoder((1, 16, 10), latent_dim, hidden=128, scale=0.5)]


def build_model(kind: str, data: Paired, latent_dim: int = LATENT_DIM, **options) -> nn.Module:
    """A fresh model of ``kind`` ("autoencoder", "MVAE", "MMVAE", or "aligned") for ``data``; ``options``
    go to its constructor (``zero_rate``, ``unimodal``, ``alignment`` ...)."""
    parts = coders(data, latent_dim)
    makers = {"autoencoder": BimodalAutoencoder, "MVAE": MVAE, "MMVAE": MMVAE, "aligned": AlignedAutoencoders}
    if kind not in makers:
        raise ValueError(f"kind: expected one of {sorted(makers)}, got {kind!r}")
    return makers[kind](parts, **options)


def train_model(kind: str, data: Paired, progress: bool = False, **options) -> tuple[nn.Module, History]:
    """Build a model of ``kind`` for ``data`` and train it with ``fit`` on its loss (the ELBO for the VAEs);
    returns the model (on the CPU, in eval mode) and its history. ``options`` go to the model."""
    seed_everything(data.seed)
    model = build_model(kind, data, **options)
    history = fit(model, data.train, list(data.modalities), None, step=vae_step(data.modalities), seed=data.seed,
                  progress=progress, description=kind, **TRAINING[data.name])
    return model.cpu().eval(), history


# ----------------------------------------------------------------------------- referees: classifiers of real data
class Reading(NamedTuple):
    """What a referee reads in one modality: class scores."""

    scores: torch.Tensor  # (B, C)


class SceneReferee(nn.Module):
    """Reads the shape and the colour of a one-object scene (16 x 16): a classifier of real scenes, used
    to judge generated ones.

    Shape: the silhouette (which pixels differ from the background) in the 6 x 6 window of the scene's
    grid that holds most of it, scaled to a maximum of 1, through a perceptron. Colour: the direction
    of the silhouette-weighted mean difference from the background, through a linear layer. Both
    read a faint object (as a decoder unsure of the exact place draws it) like a solid one.
    Shape: ``image`` (B, 3, 16, 16) -> :class:`Reading` (scores (B, 3 + 4): shapes, then colours).
    """

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.shape_head = nn.Sequential(nn.Linear(36, hidden), nn.ReLU(), nn.Linear(hidden, len(SHAPES)))
        self.colour_head = nn.Linear(3, len(COLOURS))
        self.register_buffer("background", torch.tensor(BACKGROUND).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> Reading:
        silhouette = (image - self.background).abs().amax(1, keepdim=True)  # (B, 1, 16, 16)
        windows = F.unfold(silhouette, 6, stride=5)  # (B, 36, 9): the grid's 9 overlapping windows
        best = windows.sum(1).argmax(1)  # (B,) the window with the most of the object
        shape = windows[torch.arange(len(image)), :, best]  # (B, 36)
        shape = shape / shape.amax(1, keepdim=True).clamp_min(1e-6)  # the same for every colour
        weights = silhouette.flatten(1) / silhouette.flatten(1).sum(1, keepdim=True).clamp_min(1e-6)
        colour = ((image - self.background).flatten(2) * weights[:, None]).sum(2)  # (B, 3): away from the background
        colour = F.normalize(colour, dim=1)  # its direction: the same for a faint blob as for a solid object
        return Reading(torch.cat([self.shape_head(shape), self.colour_head(colour)], dim=1))


def _scene_step(model: nn.Module, batch: dict) -> torch.Tensor:
    scores = model(batch["image"]).scores
    caption = batch["caption"]
    return F.cross_entropy(scores[:, :3], caption[:, SHAPE]) + F.cross_entropy(scores[:, 3:], caption[:, COLOUR])


class Referees(NamedTuple):
    """Classifiers trained on real data, one per modality, with their accuracy on the real test split."""

    models: dict  # modality -> nn.Module, or None where the modality is read exactly (a caption's tokens)
    accuracy: dict  # modality -> accuracy on real test data (for scenes: shape and colour both right)


def train_referees(data: Paired) -> Referees:
    """Train the referees of ``data`` on its real training split (labels used here only).

    Shapes: a :class:`SceneReferee` for images; captions need none (their tokens say the shape and
    colour). AV-Digits: a perceptron per modality that reads the digit.
    """
    seed_everything(data.seed)
    if data.name == "shapes":
        referee = SceneReferee()
        fit(referee, data.train, ["image", "caption"], None, step=_scene_step, epochs=10, lr=1e-2, batch_size=64,
            seed=data.seed, progress=False)
        referee.cpu().eval()
        models = {"image": referee, "caption": None}
        test = data.test
        accuracy_ = {"image": _agreement(read(models, "image", test["image"]), attributes(test["caption"]))}
        return Referees(models, accuracy_)
    models = {}
    for name, size in (("image", 64), ("audio", 160)):
        models[name] = nn.Sequential(nn.Flatten(), nn.Linear(size, 128), nn.ReLU(), nn.Linear(128, 10))
        fit(models[name], data.train, [name], "label", epochs=10, lr=5e-3, batch_size=128, seed=data.seed,
            progress=False)
        models[name].cpu().eval()
    return Referees(models, {name: _agreement(read(models, name, data.test[name]), data.test["label"])
                             for name in models})


def attributes(caption: torch.Tensor) -> torch.Tensor:
    """What a Shapes referee compares: (shape, colour) of each caption (N, 4) -> (N, 2)."""
    return caption[:, [SHAPE, COLOUR]]


@torch.no_grad()
def read(models: dict, modality: str, x: torch.Tensor) -> torch.Tensor:
    """What the referee of ``modality`` reads in ``x``: the digit (N,), or a scene's or a caption's
    (shape, colour) (N, 2)."""
    model = models[modality]
    if model is None:  # caption tokens: read exactly
        return attributes(x)
    scores = model(x)
    scores = scores.scores if isinstance(scores, Reading) else scores
    if scores.shape[1] == len(SHAPES) + len(COLOURS):
        return torch.stack([scores[:, :3].argmax(1), scores[:, 3:].argmax(1)], dim=1)
    return scores.argmax(1)


def _agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fraction of rows where ``a`` and ``b`` agree everywhere (a digit, or shape and colour both)."""
    return _hits(a, b).float().mean().item()


class Coherence(NamedTuple):
    """One measure of generation: how often the referee reads what the condition says, and at chance."""

    coherence: float
    chance: float  # the same, with each output compared with another sample's condition (shuffled pairs)
    hits: torch.Tensor  # (N,) bool: which outputs were coherent (for paired comparisons of two models)


def _hits(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    same = a == b
    return same.all(1) if same.ndim == 2 else same


def _coherent(got: torch.Tensor, target: torch.Tensor, seed: int) -> Coherence:
    shuffled = shuffled_pairs({"got": got, "target": target}, "target", torch.Generator().manual_seed(seed))
    hits = _hits(got, target)
    return Coherence(hits.float().mean().item(), _agreement(got, shuffled["target"]), hits)


def cross_modal_coherence(model: nn.Module, data: Paired, referees: Referees, sample: bool = True) -> dict:
    """Generate each modality of the test split from the other alone, and let the referees read it.

    A generated output is coherent when its referee reads what the given modality says: for Shapes
    the caption's shape and colour (caption -> image) or the scene's (image -> caption, its true
    attributes), for AV-Digits the digit. Returns {"<given> -> <generated>": :class:`Coherence`}.
    """
    first, second = data.modalities
    test = data.test
    truth = attributes(test["caption"]) if data.name == "shapes" else test["label"]
    seed_everything(data.seed)
    out = {}
    for given, made in ((second, first), (first, second)):
        inputs = [test[given] if m == given else None for m in data.modalities]
        generated = model.generate(*inputs, sample=sample)[data.modalities.index(made)]
        out[f"{given} -> {made}"] = _coherent(read(referees.models, made, generated), truth, data.seed)
    return out


class MeanAndSampled(NamedTuple):
    """Cross-modal coherence of each test sample from the posterior mean, and from sampled codes."""

    from_mean: torch.Tensor  # (N,) bool: coherent when decoded from the posterior mean
    sampled: torch.Tensor  # (N,) the fraction of ``draws`` sampled codes that decode to a coherent output


def mean_and_sampled(model: nn.Module, data: Paired, referees: Referees, given: str, draws: int = 10) -> MeanAndSampled:
    """Generate the other modality of the test split from ``given`` alone, once from the posterior mean and
    ``draws`` times from codes sampled from the posterior, and let the referee read each output.

    The two separate where the posterior puts the code (the mean) from how far a sample strays from it
    (the width). Shape: N test samples -> :class:`MeanAndSampled` ((N,) bool, (N,) float).
    """
    if given not in data.modalities:
        raise ValueError(f"given: expected one of {data.modalities}, got {given!r}")
    if not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws: expected a positive number of samples per test sample, got {draws!r}")
    made = data.modalities[1 - data.modalities.index(given)]
    inputs = [data.test[m] if m == given else None for m in data.modalities]
    truth = attributes(data.test["caption"]) if data.name == "shapes" else data.test["label"]

    def hits(sample: bool) -> torch.Tensor:
        generated = model.generate(*inputs, sample=sample)[data.modalities.index(made)]
        return _hits(read(referees.models, made, generated), truth)

    seed_everything(data.seed)
    return MeanAndSampled(hits(False), torch.stack([hits(True) for _ in range(draws)]).float().mean(0))


@torch.no_grad()
def joint_coherence(model: nn.Module, data: Paired, referees: Referees, n: int = 500) -> Coherence:
    """Decode ``n`` codes drawn from the prior N(0, I) into both modalities; coherent when the two
    referees read the same (digit, or shape and colour)."""
    seed_everything(data.seed)
    outputs = model.decode(torch.randn(n, model.latent_dim))
    readings = [read(referees.models, m, x) for m, x in zip(data.modalities, outputs)]
    return _coherent(readings[0], readings[1], data.seed)


def heldout_captions(samples: int = 5) -> torch.Tensor:
    """Captions of every held-out (colour, shape) in every size and place, each ``samples`` times: (N, 4)."""
    rows = [(size, COLOURS.index(colour), SHAPES.index(shape), position) for colour, shape in HOLDOUT
            for size in range(len(SIZES)) for position in range(len(POSITIONS))]
    return torch.tensor(rows).repeat(samples, 1)


def heldout_coherence(model: nn.Module, data: Paired, referees: Referees, samples: int = 5) -> Coherence:
    """Caption -> image for combinations never seen in training (:data:`HOLDOUT`): how often the referee
    reads the caption's shape and colour in the scene generated from it. Chance: one (shape, colour)
    combination in 12."""
    captions = heldout_captions(samples)
    seed_everything(data.seed)
    images = model.generate(None, captions)[0]
    hits = _hits(read(referees.models, "image", images), attributes(captions))
    return Coherence(hits.float().mean().item(), 1 / (len(SHAPES) * len(COLOURS)), hits)


def referee_on_heldout(data: Paired, referees: Referees) -> tuple[int, float]:
    """The scene referee on the real scenes of the test split that hold a held-out combination (:data:`HOLDOUT`,
    absent from training, so from the referee's training too): how many there are, and the fraction of them
    whose shape and colour it reads right."""
    caption = data.test["caption"]
    held = torch.zeros(len(caption), dtype=torch.bool)
    for colour, shape in HOLDOUT:
        held |= (caption[:, COLOUR] == COLOURS.index(colour)) & (caption[:, SHAPE] == SHAPES.index(shape))
    if not held.any():
        return 0, float("nan")
    readings = read(referees.models, "image", data.test["image"][held])
    return int(held.sum()), _agreement(readings, attributes(caption[held]))


def latent_probe(model: nn.Module, data: Paired) -> dict:
    """How much the code degrades with a modality missing: a linear probe (linear discriminant analysis)
    that reads the label from codes of both modalities (training split) is tested on codes of both, and
    of each alone.

    Returns {"both": accuracy, "<modality> only": accuracy, ...} on the test split.
    """
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    first, second = data.modalities
    with torch.no_grad():
        train_codes = model.embed(data.train[first], data.train[second])
        probe = LinearDiscriminantAnalysis().fit(train_codes.double().numpy(), data.train["label"].numpy())
        cases = {"both": (data.test[first], data.test[second]), f"{first} only": (data.test[first], None),
                 f"{second} only": (None, data.test[second])}
        return {case: float(probe.score(model.embed(*xs).double().numpy(), data.test["label"].numpy()))
                for case, xs in cases.items()}


@torch.no_grad()
def latent_map(model: nn.Module, data: Paired) -> dict:
    """The test split's codes (posterior means) from each modality alone and from both, and a fixed 2-D
    map of the latent space: the first two principal components of the codes from both.

    Returns ``codes`` ({modality or "both": (N, D)}), ``mean`` (D,), ``components`` (2, D) orthonormal
    rows, ``project`` (a function (M, D) -> (M, 2)) and ``points`` ({...: (N, 2)}, the codes projected).
    A point (x, y) of the map is the code mean + x components[0] + y components[1].
    """
    first, second = data.modalities
    test = data.test
    codes = {first: model.embed(test[first], None), second: model.embed(None, test[second]),
             "both": model.embed(test[first], test[second])}
    mean = codes["both"].mean(0)
    components = torch.linalg.svd(codes["both"] - mean, full_matrices=False).Vh[:2]

    def project(z: torch.Tensor) -> torch.Tensor:
        return (z - mean) @ components.T

    return {"codes": codes, "mean": mean, "components": components, "project": project,
            "points": {k: project(c) for k, c in codes.items()}}


# ----------------------------------------------------------------------------- the lesson's runs
@dataclass
class Trained:
    """The models of one data set, trained once and reused by every section."""

    data: Paired
    referees: Referees
    models: dict  # name -> trained model
    histories: dict  # name -> History


_STARTED: dict[str, Trained] = {}  # the last run that with_referees started for each data set ("shapes", "av")


def with_referees(data: Paired) -> Trained:
    """Start the runs of one data set: train its referees (:func:`train_referees`), no model yet."""
    _STARTED[data.name] = Trained(data, train_referees(data), {}, {})
    return _STARTED[data.name]


def _av_run(seed: int) -> Trained:
    """AV-Digits of ``seed`` with its referees and its MVAE (beta = 1): the run that :func:`with_referees` last
    started for it (the lesson's, with the model it trained), or a new one. Both are the same, every step being
    seeded; reusing the lesson's saves the seconds of loading the data and training the referees again."""
    trained = _STARTED.get("av")
    if trained is None or trained.data.seed != seed:
        trained = with_referees(av_data(seed))
    if "MVAE" not in trained.models:
        train_models(trained, ["MVAE"])
    return trained


def train_models(trained: Trained, kinds=MODELS, progress: bool = False) -> Trained:
    """Train a model of each of ``kinds`` on ``trained.data`` and add it to ``trained`` (returned)."""
    for kind in kinds:
        trained.models[kind], trained.histories[kind] = train_model(kind, trained.data, progress)
    return trained


def zeroing_experiment(trained: Trained, progress: bool = False) -> dict:
    """The bimodal autoencoder without modality zeroing, next to the one in ``trained`` (with it).

    Returns {"with zeroing": coherence dict, "without zeroing": coherence dict} (see
    :func:`cross_modal_coherence`) and adds the model as ``"autoencoder, no zeroing"``.
    """
    name = "autoencoder, no zeroing"
    if name not in trained.models:
        trained.models[name], trained.histories[name] = train_model("autoencoder", trained.data, progress,
                                                                    zero_rate=0.0)
    return {label: cross_modal_coherence(trained.models[m], trained.data, trained.referees)
            for label, m in (("with zeroing", "autoencoder"), ("without zeroing", name))}


def coherence_table(trained: Trained, kinds=MODELS, sample: bool = True) -> dict:
    """Cross-modal coherence of each model (codes sampled from the posterior, or its mean with
    ``sample=False``), and the joint coherence of the models of :data:`GENERATIVE`:
    {model: {direction: Coherence, "prior -> both": Coherence}}.

    The autoencoder gets no joint coherence: nothing in its training puts its codes where N(0, I)
    draws them, so decoding draws from N(0, I) samples no model of the data.
    """
    table = {}
    for kind in kinds:
        model = trained.models[kind]
        table[kind] = cross_modal_coherence(model, trained.data, trained.referees, sample=sample)
        if kind in GENERATIVE and sample:
            table[kind]["prior -> both"] = joint_coherence(model, trained.data, trained.referees)
    return table


@torch.no_grad()
def posterior_width(model: nn.Module, data: Paired, given: str) -> float:
    """How wide a VAE's posterior is when only the modality ``given`` is: the standard deviation of the code,
    exp(logvar / 2), averaged over the D dimensions and the test split's samples. For MVAE this is the
    product of the prior and the one expert; for MMVAE the one expert (a mixture of one)."""
    if given not in data.modalities:
        raise ValueError(f"given: expected one of {data.modalities}, got {given!r}")
    inputs = [data.test[m] if m == given else None for m in data.modalities]
    return (0.5 * model(*inputs, sample=False).logvar).exp().mean().item()  # the mean code: the same in either mode


def mvae_retrieval(model: nn.Module, data: Paired) -> Retrieval:
    """Speech-to-image retrieval in a model's latent space on AV-Digits' test split: each spoken digit's
    code (audio alone) ranks the images by the cosine similarity of their codes (image alone)."""
    with torch.no_grad():
        queries, gallery = model.embed(None, data.test["audio"]), model.embed(data.test["image"], None)
    return class_retrieval(queries, gallery, data.test["label"], data.test["label"])


def cca_retrieval(data: Paired) -> dict:
    """Lesson 02's linear CCA retrieval (:func:`mmcourse.experiments.cca.av_digits_retrieval`: ridge chosen
    on the validation split) on the same AV-Digits data, its columns read once as tensors."""
    from .cca import av_digits_retrieval

    columns = {s: as_tensors(data.source[s], ["image", "audio", "label"]) for s in ("train", "validation", "test")}
    return av_digits_retrieval(data.seed, columns)


def comparison_rows(model: nn.Module, data: Paired) -> list[ComparisonEntry]:
    """This lesson's row of the course's running comparison (:mod:`mmcourse.experiments.comparison`): the lesson's
    AV-Digits MVAE, trained on all training pairs without labels; each spoken digit's code (audio alone) ranks
    the test images by the cosine of their codes (image alone), as :func:`mvae_retrieval` does."""
    with torch.no_grad():
        queries, gallery = model.embed(None, data.test["audio"]), model.embed(data.test["image"], None)
    return [comparison_entry("MVAE latent", "05", "all", "none", queries, gallery, data.test["label"],
                             data.test["label"])]


def speech_to_image_retrieval(seed: int = 0) -> list[ComparisonEntry]:
    """This lesson's row of the running comparison, computed as lesson 05 computes it (the same data, settings and
    seed: :func:`av_data`, the MVAE of :func:`train_model`, :func:`comparison_rows`). A few seconds on a CPU."""
    data = av_data(seed)
    model, _ = train_model("MVAE", data)
    return comparison_rows(model, data)


# ----------------------------------------------------------------------------- section 5: build it yourself
def mvae_step(model: nn.Module, batch: Sequence[torch.Tensor], optimizer) -> float:
    """One training step of a model of :mod:`mmcourse.autoencoders`: its loss on ``batch`` (one (B, ...) tensor
    per modality; for MVAE minus the joint and unimodal ELBOs), the gradient, one step of ``optimizer`` (an
    :class:`~mmcourse.train.Adam` or anything with ``zero_grad`` and ``step``). Returns the loss, a number."""
    optimizer.zero_grad()
    loss = model.loss(*batch)
    loss.backward()
    optimizer.step()
    return loss.item()


def train_built(kind, step, data: Paired, epochs: int = 4, batch_size: int = 128,
                lr: float = 3e-3) -> tuple[nn.Module, History]:
    """Build a model ``kind(coders)`` (an MVAE class: the package's :class:`~mmcourse.autoencoders.MVAE` or one
    written in the lesson with its constructor) on :func:`coders` for ``data``, and train it on the training split
    with ``step(model, batch, optimizer)`` (:func:`mvae_step`, or the learner's) on each shuffled minibatch, with
    :class:`~mmcourse.train.Adam`, as :func:`~mmcourse.train.fit` would.

    Returns the model (on the CPU, in eval mode) and its :class:`~mmcourse.train.History` (each epoch's mean loss).
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs: expected a positive number of epochs, got {epochs!r}")
    generator = seed_everything(data.seed)
    device = get_device()
    model = kind(coders(data)).to(device).train()
    columns = [data.train[m].to(device) for m in data.modalities]
    optimizer = Adam(model.parameters(), lr=lr)
    history, start = History(), time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(columns[0]), generator=generator).to(device)
        batches = [[c[idx] for c in columns] for idx in order.split(batch_size)]
        losses = [float(step(model, batch, optimizer)) * len(batch[0]) for batch in batches]
        history.epoch.append(epoch)
        history.train_loss.append(sum(losses) / len(order))
    history.seconds = time.perf_counter() - start
    return model.cpu().eval(), history


def as_package_mvae(model: nn.Module, data: Paired) -> MVAE:
    """The package's :class:`~mmcourse.autoencoders.MVAE` for ``data`` with the parameters of ``model``, an MVAE
    built in the lesson with the same parameter names (its ``state_dict`` loads), to measure it with the
    package's tools. In eval mode, on the CPU."""
    mvae = build_model("MVAE", data, beta=model.beta, unimodal=model.unimodal)
    mvae.load_state_dict(model.state_dict())
    return mvae.cpu().eval()


KL_WEIGHT_REFERENCE = 0.3  # the worked solution's KL weight (section 5's experiment)
KL_DRAWS = 10  # sampled codes per test image for the image -> audio coherence of the experiment


def sharpness(images: torch.Tensor) -> torch.Tensor:
    """How sharp each image is: the mean absolute difference between neighbouring pixels, across and down (its
    total variation per pixel pair). A blurred image has soft edges and scores lower.
    Shape: (N, C, H, W) -> (N,)."""
    across = (images[..., :, 1:] - images[..., :, :-1]).abs().flatten(1).mean(1)
    down = (images[..., 1:, :] - images[..., :-1, :]).abs().flatten(1).mean(1)
    return (across + down) / 2


def kl_weight_run(beta: float, seed: int = 0) -> dict[str, float]:
    """Section 5's experiment: AV-Digits' MVAE trained with the KL weight ``beta`` against the same model with
    beta = 1 (the lesson's, same data and seed), judged on the test split.

    Returns ``sharpness ratio``, the mean :func:`sharpness` of the digits drawn from speech alone (decoded from
    the posterior mean) at ``beta`` over at 1; ``coherence gain``, the image -> audio coherence at ``beta`` minus
    at 1 (the audio referee reads the image's digit in the spectrogram drawn from the image alone, over
    :data:`KL_DRAWS` sampled codes per image); the values behind them ("sharpness at beta = 1", "coherence at
    your beta", ...); and the posterior width from the audio alone (:func:`posterior_width`) at each. About a
    second, plus loading the data and training the referees and the beta = 1 model if the lesson has not.
    """
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta <= 10:
        raise ValueError(f"beta: expected a KL weight from 0 to 10, got {beta!r}")
    trained = _av_run(seed)
    data, referees = trained.data, trained.referees
    models = {"beta = 1": trained.models["MVAE"], "your beta": train_model("MVAE", data, beta=float(beta))[0]}
    values = {}
    for name, model in models.items():
        drawn = model.generate(None, data.test["audio"], sample=False)[0]
        values[f"sharpness at {name}"] = sharpness(drawn).mean().item()
        coherent = mean_and_sampled(model, data, referees, "image", KL_DRAWS).sampled  # (N,) fraction of draws
        values[f"coherence at {name}"] = coherent.mean().item()
        values[f"width at {name}"] = posterior_width(model, data, "audio")
    return {"sharpness ratio": values["sharpness at your beta"] / values["sharpness at beta = 1"],
            "coherence gain": values["coherence at your beta"] - values["coherence at beta = 1"], **values}


# ----------------------------------------------------------------------------- section 7: a constant "alignment"
def buggy_alignment(z_image: torch.Tensor, z_audio: torch.Tensor) -> torch.Tensor:
    """An "alignment" term as found in tutorial code: the distance between the image code and... itself."""
    return standardized_distance(z_image, z_image)  # the bug: z_image twice, so the term is always 0


def alignment_pitfall(data: Paired, weight: float = 5.0, progress: bool = False) -> dict:
    """Two :class:`~mmcourse.autoencoders.AlignedAutoencoders` on ``data``, with the buggy and the
    correct alignment term, and the shuffled-pairs control of each.

    For each ("buggy", "correct"): ``history``, ``model``, ``term`` (the trained model's alignment
    term on the real test pairs, mean) and ``term_shuffled`` (on shuffled pairs), ``paired`` and
    ``shuffled`` (mean :func:`~mmcourse.autoencoders.standardized_distance` between the image and the
    audio code of real and of shuffled test pairs, whatever the model's own term), their
    ``ratio`` = paired / shuffled (1: the pairing means nothing to the codes), and ``retrieval``
    (speech-to-image in the code space).
    """
    first, second = data.modalities
    results = {}
    for name, alignment in (("buggy", buggy_alignment), ("correct", standardized_distance)):
        model, history = train_model("aligned", data, progress, weight=weight, alignment=alignment)
        g = torch.Generator().manual_seed(data.seed)
        shuffled = shuffled_pairs({first: data.test[first], second: data.test[second]}, second, g)
        with torch.no_grad():
            codes = model.codes(data.test[first], data.test[second])
            codes_shuffled = model.codes(shuffled[first], shuffled[second])
            term = model.alignment_term(data.test[first], data.test[second]).mean().item()
            term_shuffled = model.alignment_term(shuffled[first], shuffled[second]).mean().item()
        paired, apart = standardized_distance(*codes), standardized_distance(*codes_shuffled)
        results[name] = {"model": model, "history": history, "term": term, "term_shuffled": term_shuffled,
                         "paired": paired.mean().item(), "shuffled": apart.mean().item(),
                         "ratio": paired.mean().item() / apart.mean().item(),
                         "closer": (paired < apart).float().mean().item(),
                         "retrieval": class_retrieval(codes[1], codes[0], data.test["label"], data.test["label"])}
    return results


# ----------------------------------------------------------------------------- the lesson's claims
ZEROING_HELPS = Claim("modality zeroing lets the image alone call up the right spoken digit more often",
                      "image -> audio coherence with zeroing minus without", ">=", 0.05)
IMAGE_ALONE_WITHOUT_ZEROING = Claim("without zeroing, the image alone still calls up the right spoken digit well "
                                    "above chance", "image -> audio coherence without zeroing minus chance",
                                    ">=", 0.1)
CAPTION_TO_IMAGE = Claim("every model draws scenes with the caption's shape and colour far more often than chance",
                         "smallest caption -> image coherence over its chance level (ratio)", ">=", 3.0)
SPEECH_TO_IMAGE = Claim("every model draws the spoken digit far more often than chance",
                        "smallest audio -> image coherence minus chance", ">=", 0.15)
CAPTION_CODE_WIDER = Claim("MVAE's code from the caption alone is wider than MMVAE's",
                           "MVAE's mean posterior standard deviation over MMVAE's, caption alone", ">=", 1.3)
SAMPLING_COSTS_MVAE_MORE = Claim("sampling the code instead of taking the posterior mean costs MVAE more "
                                 "caption -> image coherence than it costs MMVAE",
                                 "MVAE's coherence lost to sampling minus MMVAE's (10 draws per caption)", ">=", 0.03)
HELDOUT = Claim("MMVAE draws red triangles, never seen in training, from their captions more than twice as often "
                "as chance", "held-out caption -> image coherence of MMVAE over chance (1/12)", ">=", 2.0)
HELDOUT_AUTOENCODER = Claim("the deterministic bimodal autoencoder also draws red triangles from their captions more "
                            "than twice as often as chance", "held-out caption -> image coherence of the autoencoder "
                            "over chance (1/12)", ">=", 2.0)
ALIGNMENT_CONSTANT = Claim("with the buggy term, a sample's two codes are about as far apart as a stranger's "
                           "(within 12%, either way)", "|paired over shuffled distance - 1|, buggy term", "<=", 0.12)
ALIGNMENT_WORKS = Claim("with the correct term, a sample's two codes are clearly closer than a stranger's (at most "
                        "83% as far apart)", "paired over shuffled distance, correct term", "<=", 0.83)
KL_WEIGHT_SHARPER = Claim("a KL weight below 1 (0.3 in the worked solution) draws sharper digits from speech than "
                          "beta = 1", "sharpness of the digits drawn from speech, your beta over beta = 1", ">=", 1.01)
KL_WEIGHT_COHERENT = Claim("a KL weight below 1 (0.3 in the worked solution) lets the image alone call up the right "
                           "spoken digit more often than beta = 1",
                           "image -> audio coherence, your beta minus beta = 1", ">=", 0.02)
RETRIEVAL = Claim("in MVAE's latent space, spoken digits find images of their digit among the top five far "
                  "more often than by chance", "Recall@5 minus its chance level", ">=", 0.1)


def measure_claims(seed: int) -> dict[Claim, float]:
    """Run every experiment of lesson 05 for ``seed``; return the quantity each claim tests."""
    shapes = train_models(with_referees(shapes_data(seed)))
    av = train_models(with_referees(av_data(seed)))
    zeroing = zeroing_experiment(av)
    shapes_table, av_table = coherence_table(shapes), coherence_table(av)
    pitfall = alignment_pitfall(av.data)
    retrieval = mvae_retrieval(av.models["MVAE"], av.data)
    heldout = {m: heldout_coherence(shapes.models[m], shapes.data, shapes.referees) for m in ("MMVAE", "autoencoder")}
    costs = {}
    for kind in GENERATIVE:
        codes = mean_and_sampled(shapes.models[kind], shapes.data, shapes.referees, "caption")
        costs[kind] = codes.from_mean.float().mean().item() - codes.sampled.mean().item()
    without = zeroing["without zeroing"]["image -> audio"]
    kl_weight = kl_weight_run(KL_WEIGHT_REFERENCE, seed)  # reuses av's data, referees and MVAE
    return {
        ZEROING_HELPS: zeroing["with zeroing"]["image -> audio"].coherence - without.coherence,
        IMAGE_ALONE_WITHOUT_ZEROING: without.coherence - without.chance,
        CAPTION_TO_IMAGE: min(t["caption -> image"].coherence / t["caption -> image"].chance
                              for t in shapes_table.values()),
        SPEECH_TO_IMAGE: min(t["audio -> image"].coherence - t["audio -> image"].chance for t in av_table.values()),
        CAPTION_CODE_WIDER: posterior_width(shapes.models["MVAE"], shapes.data, "caption")
        / posterior_width(shapes.models["MMVAE"], shapes.data, "caption"),
        SAMPLING_COSTS_MVAE_MORE: costs["MVAE"] - costs["MMVAE"],
        HELDOUT: heldout["MMVAE"].coherence / heldout["MMVAE"].chance,
        HELDOUT_AUTOENCODER: heldout["autoencoder"].coherence / heldout["autoencoder"].chance,
        ALIGNMENT_CONSTANT: abs(pitfall["buggy"]["ratio"] - 1),
        ALIGNMENT_WORKS: pitfall["correct"]["ratio"],
        RETRIEVAL: retrieval.recall_at_5 - retrieval.chance_at_5,
        KL_WEIGHT_SHARPER: kl_weight["sharpness ratio"],
        KL_WEIGHT_COHERENT: kl_weight["coherence gain"],
    }

