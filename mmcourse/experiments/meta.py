"""Experiments of lesson 06 (meta-learning): the training runs and measurements behind its claims.

Each claim is a :class:`~mmcourse.claims.Claim` constant below, with its threshold; the lesson checks
it on its seed-0 run, :func:`measure_claims` computes every claimed quantity for any seed
(``tests/test_meta_experiments.py`` runs another seed, ``benchmarks/claims.py`` seeds 0-9).

Meta-training uses digits 0-5 of AV-Digits' training split; meta-testing uses digits 6-9 of its
validation and test splits: new classes, new handwriting and new voices.

What the lesson states from seeds 0-9 without claiming it (paired means over the same meta-test
episodes, the lesson's settings; measured with the functions below):

- baseline minus ProtoNet: audio +0.020 to +0.081 (positive on every seed, worst 0.9 sd above 0);
  image -0.042 to +0.046 (five seeds each way);
- raw input minus the learned embeddings: baseline 0.063-0.145 (audio) and 0.173-0.235 (image),
  ProtoNet 0.106-0.174 (audio) and 0.165-0.244 (image); a closed-form per-cell scaling
  (:func:`within_class_scale`) minus the raw input: audio -0.016 to -0.001, image -0.027 to -0.020;
- MAML, second order minus its untrained start after 5 test steps: -0.058 to +0.191 (significantly
  negative on two seeds); second minus first order after 5 steps: +0.010 to +0.161;
- the experiment exercise (:func:`fine_tuning_shots`), on the plain classifier's audio features, a linear head
  fitted to the support set minus the nearest class mean, 4-way: -0.068 to -0.028 at k = 1 (negative on every
  seed, 2.1 sd), -0.050 to +0.029 at k = 5, -0.015 to +0.073 at k = 10, +0.035 to +0.116 at k = 30 (1.6 sd above
  0), +0.049 to +0.122 at k = 40 (the worked solution, 2.2 sd); the fitted head minus the audio ProtoNet mixes in
  the encoders' gap (the class mean on the baseline's features already beats the ProtoNet by 0.04-0.10 at k = 1);
- both modalities minus the audio alone at the default corruption: +0.013 to +0.061 (positive on
  every seed, worst 0.8 sd above 0);
- section 6, predicted weights minus the inverse-spread rule in noisy-image episodes: +0.012 to
  +0.040 (worst 1.3 sd above 0); minus the audio alone at pixel noise 0.5: -0.011 to +0.033 (8 of 10
  positive), at 1: -0.026 to +0.007 (8 of 10 negative), at 2: -0.021 to -0.002 (every seed); minus
  the image alone at -20 dB: -0.061 to -0.006 (every seed, worst 0.3 sd below 0); at -20 dB the rule's
  image weight is 0.44-0.50 (below one half on 9 seeds) and the rule minus equal weights -0.020 to
  +0.003 (negative on 9 seeds).
"""

from __future__ import annotations

import functools
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..claims import Claim
from ..data import (
    DEFAULT_AUDIO_SNR_DB,
    DEFAULT_IMAGE_NOISE,
    DEFAULT_OCCLUSION,
    as_tensors,
    audio_features,
    clean_av_tensors,
    corrupt_av,
    corrupt_images,
    voiced_power,
)
from ..device import one_thread, seed_everything
from ..diagnostics import normal_interval
from ..encoders import AudioEncoder, ImageEncoder, MLPEncoder
from ..meta import (
    SHAPE_CLASS_NAMES,
    EpisodeSampler,
    InputWeighting,
    MetaFusion,
    ProtoNet,
    SupportStatistics,
    check_disjoint,
    episode_accuracy,
    fuse_logits,
    inverse_spread_weights,
    maml_meta_loss,
    maml_meta_loss_loop,
    maml_predict,
    modality_logits,
    protonet_loss,
    prototypes,
    prototypical_logits,
    shape_classes,
    support_statistics,
)
from ..train import Adam, fit

META_TRAIN_DIGITS = (0, 1, 2, 3, 4, 5)
META_TEST_DIGITS = (6, 7, 8, 9)
MODALITIES = ("image", "audio")
EMBED_DIM = 32
TEST_SEED_OFFSET = 1000  # meta-test episodes use seed + 1000: never the episodes of meta-training
# Section 6: each episode corrupts one modality at one of these levels (the other stays at the default).
IMAGE_NOISES = (0.5, 1.0, 2.0)  # pixel noise std (default 0.3)
AUDIO_SNRS = (-5.0, -10.0, -20.0)  # dB (default 0)
CONDITIONS = tuple(("image", level) for level in IMAGE_NOISES) + tuple(("audio", level) for level in AUDIO_SNRS)


# ------------------------------------------------------------------------------------------------ data
@dataclass
class MetaData:
    """AV-Digits split by classes: ``train`` (digits 0-5 of the training split) and ``test`` (digits 6-9
    of the validation and test splits), each {"image" (P, 1, 8, 8), "audio" (P, 1, 32, 40), "label" (P,)}
    at the default corruption; ``clean_train`` and ``clean_test`` hold image, waveform and label
    uncorrupted, to corrupt at other levels; ``seed``."""

    train: dict
    test: dict
    clean_train: dict
    clean_test: dict
    seed: int


def _rows_of(columns: dict, classes) -> dict:
    keep = torch.isin(columns["label"], torch.tensor(classes))
    return {k: v[keep] for k, v in columns.items()}


def meta_data(seed: int = 0) -> MetaData:
    """Load AV-Digits once and split it into a meta-train and a meta-test pool of disjoint digits."""
    check_disjoint(META_TRAIN_DIGITS, META_TEST_DIGITS)
    clean = clean_av_tensors(seed)
    columns = ["image", "waveform", "label"]
    train = _rows_of(clean["train"], META_TRAIN_DIGITS)
    held_out = [clean[s] for s in ("validation", "test")]
    test = _rows_of({k: torch.cat([h[k] for h in held_out]) for k in columns}, META_TEST_DIGITS)
    g = torch.Generator().manual_seed(seed)
    return MetaData(corrupt_av(train, generator=g), corrupt_av(test, generator=g), train, test, seed)


def shapes_pool(seed: int = 0, scenes: int = 480, meta_test_classes: int = 8) -> tuple[dict, list, list]:
    """One-object Shapes scenes whose classes are attribute combinations (:func:`~mmcourse.meta.shape_classes`),
    split at random into meta-train and meta-test combinations.

    Returns ({"image": (P, 3, 32, 32), "label": (P,)}, meta-train classes, meta-test classes).
    """
    from ..data import load_shapes

    scenes_ = load_shapes(n_train=scenes, n_validation=1, n_test=1, max_objects=1, seed=seed)["train"]
    columns = as_tensors(scenes_, ["image", "object_shape", "object_colour", "object_size"])
    labels = shape_classes(columns["object_shape"], columns["object_colour"], columns["object_size"])
    order = torch.randperm(len(SHAPE_CLASS_NAMES), generator=torch.Generator().manual_seed(seed)).tolist()
    meta_test, meta_train = sorted(order[:meta_test_classes]), sorted(order[meta_test_classes:])
    check_disjoint(meta_train, meta_test)
    return {"image": columns["image"], "label": labels}, meta_train, meta_test


# ------------------------------------------------------------------------------------ encoders, training
def build_encoder(modality: str, dim: int = EMBED_DIM) -> nn.Module:
    """A small encoder of :mod:`mmcourse.encoders` for ``modality`` ("image" or "audio")."""
    if modality == "image":
        return ImageEncoder(out_dim=dim, channels=8)
    if modality == "audio":
        return AudioEncoder(out_dim=dim, hidden=64)
    raise ValueError(f"modality: expected one of {MODALITIES}, got {modality!r}")


def episodes_as_data(count: int) -> dict:
    """A "data set" of episode numbers, so that :func:`mmcourse.train.fit` can loop over episodes
    (its ``step`` draws the episodes of each batch of numbers from a sampler)."""
    return {"episode": torch.arange(count)}


PROTONET_TRAINING = {"image": {"episodes": 300, "lr": 3e-3}, "audio": {"episodes": 200, "lr": 1e-3}}
INPUT_WEIGHTING_TRAINING = {"episodes": 200, "lr": 1e-2}  # the same for both modalities


def train_protonet(data: MetaData, modality: str, n_way: int = 6, k_shot: int = 5, n_query: int = 10,
                   episodes: int | None = None, meta_batch: int = 4, lr: float | None = None,
                   encoder: nn.Module | None = None, progress: bool = False):
    """Train a :class:`~mmcourse.meta.ProtoNet` episodically on the meta-train pool; return (net, History).

    Each step averages the query cross-entropy of ``meta_batch`` episodes (``n_way``-way, ``k_shot``-shot).
    ``encoder`` defaults to :func:`build_encoder`'s; ``episodes`` and ``lr`` default to
    :data:`PROTONET_TRAINING` (the audio encoder overfits the six training digits sooner, so it trains
    for fewer episodes).
    """
    if modality not in PROTONET_TRAINING:
        raise ValueError(f"modality: expected one of {MODALITIES}, got {modality!r}")
    episodes = PROTONET_TRAINING[modality]["episodes"] if episodes is None else episodes
    lr = PROTONET_TRAINING[modality]["lr"] if lr is None else lr
    seed_everything(data.seed)
    net = ProtoNet(build_encoder(modality) if encoder is None else encoder)
    sampler = EpisodeSampler({modality: data.train[modality]}, data.train["label"], META_TRAIN_DIGITS, n_way,
                             k_shot, n_query, seed=data.seed)

    def step(model: nn.Module, batch: dict) -> torch.Tensor:
        e = sampler.sample_batch(batch["episode"].cpu())
        device = next(model.parameters()).device
        e = e._replace(support={modality: e.support[modality].to(device)}, support_labels=e.support_labels.to(device),
                       query={modality: e.query[modality].to(device)}, query_labels=e.query_labels.to(device))
        return protonet_loss(model, e, modality)

    history = fit(net, episodes_as_data(episodes), ["episode"], None, step=step, batch_size=meta_batch, epochs=1,
                  lr=lr, seed=data.seed, progress=progress, description=f"ProtoNet ({modality})")
    return net.cpu().eval(), history


def train_input_weighting(data: MetaData, modality: str, progress: bool = False):
    """A ProtoNet whose encoder only weighs each input cell (:class:`~mmcourse.meta.InputWeighting`, starting
    at the raw input), trained like :func:`train_protonet` with :data:`INPUT_WEIGHTING_TRAINING`;
    return (net, History)."""
    if modality not in PROTONET_TRAINING:
        raise ValueError(f"modality: expected one of {MODALITIES}, got {modality!r}")
    return train_protonet(data, modality, encoder=InputWeighting(data.train[modality].shape[1:]),
                          progress=progress, **INPUT_WEIGHTING_TRAINING)


def raw_inputs(x: torch.Tensor) -> torch.Tensor:
    """The inputs themselves as "embeddings", for nearest class mean with no training. Shape: (P, ...) -> (P, d)."""
    return x.flatten(1)


def within_class_scale(data: MetaData, modality: str) -> torch.Tensor:
    """A closed-form weight per input cell, no episodes: 1 / (the cell's within-class standard deviation
    over the meta-train pool), so that every cell varies about as much within a digit.
    Shape: -> (d,), d the number of cells; multiply :func:`raw_inputs` by it."""
    x, labels = raw_inputs(data.train[modality]), data.train["label"]
    means = torch.stack([x[labels == c].mean(0) for c in META_TRAIN_DIGITS])  # (C, d)
    own = means[torch.searchsorted(torch.tensor(META_TRAIN_DIGITS), labels)]  # (P, d)
    return (x - own).std(0).clamp_min(1e-6).reciprocal()


def train_baseline(data: MetaData, modality: str, epochs: int = 10, progress: bool = False):
    """The baseline of Chen et al. (2019): an ordinary classifier of the meta-train classes (encoder and a
    linear head, cross-entropy), trained on all their rows at once; return (encoder, History). Its
    features then classify new classes by their nearest class mean (as a ProtoNet would)."""
    seed_everything(data.seed)
    encoder = build_encoder(modality)
    model = nn.Sequential(encoder, nn.Linear(EMBED_DIM, len(META_TRAIN_DIGITS)))
    history = fit(model, data.train, [modality], "label", epochs=epochs, seed=data.seed, progress=progress,
                  description=f"baseline ({modality})")
    return encoder.cpu().eval(), history


@torch.no_grad()
def embed(encoder: nn.Module, x: torch.Tensor, batch: int = 1024) -> torch.Tensor:
    """Embeddings of every row of ``x`` (evaluation mode, no gradients). Shape: (P, ...) -> (P, d)."""
    encoder.eval()
    return torch.cat([encoder(chunk) for chunk in x.split(batch)])


# ------------------------------------------------------------------------------------------ evaluation
def test_sampler(data: MetaData, columns: dict, n_way: int = 4, k_shot: int = 5, n_query: int = 15) -> EpisodeSampler:
    """Meta-test episodes over ``columns`` (rows of ``data.test``: raw inputs or embeddings), seed + 1000."""
    return EpisodeSampler(columns, data.test["label"], META_TEST_DIGITS, n_way, k_shot, n_query,
                          seed=data.seed + TEST_SEED_OFFSET)


def prototype_scores(embeddings: dict, episodes) -> torch.Tensor:
    """Prototype logits of a batch of episodes, averaged over the given modalities (equal-weight fusion).

    ``embeddings``: the modalities to use, {name: embeddings}; ``episodes``: an :class:`~mmcourse.meta.Episode`
    batch of B episodes whose columns include them. Shape: -> (B, |Q|, N).
    """
    logits = modality_logits([episodes.support[m] for m in embeddings], episodes.support_labels,
                             [episodes.query[m] for m in embeddings], episodes.classes.shape[-1])
    return logits.mean(-3)


EPISODE_CHUNK = 50  # episodes scored at once: all 300 on raw spectrograms took about 0.9 GB of the kernel's memory


def few_shot_accuracy(data: MetaData, embeddings: dict, n_way: int = 4, k_shot: int = 5, n_query: int = 15,
                      episodes: int = 300) -> torch.Tensor:
    """Accuracy of nearest-prototype classification on ``episodes`` meta-test episodes.

    ``embeddings``: {modality: (P, d) embeddings of ``data.test``}; with several modalities their logits
    are averaged (fused prototypes with equal weights). The same seed gives the same episodes, so two
    calls with the same sizes compare methods on the same tasks (paired). Returns (episodes,).
    """
    sampler = test_sampler(data, embeddings, n_way, k_shot, n_query)
    parts = []
    for start in range(0, episodes, EPISODE_CHUNK):  # in chunks: raw spectrograms make (B, |Q|, N, d) large
        batch = sampler.sample_batch(range(start, min(start + EPISODE_CHUNK, episodes)))
        parts.append(episode_accuracy(prototype_scores(embeddings, batch), batch.query_labels))
    return torch.cat(parts)


def accuracy_grid(data: MetaData, embeddings: dict, ways=(2, 3, 4), shots=(1, 2, 5, 10), episodes: int = 300) -> dict:
    """{(N, k): Interval} of :func:`few_shot_accuracy` for every N-way k-shot setting."""
    return {(n, k): normal_interval(few_shot_accuracy(data, embeddings, n, k, episodes=episodes))
            for n in ways for k in shots}


@torch.no_grad()
def per_class_accuracy(data: MetaData, embeddings: dict, k_shot: int = 5, episodes: int = 300) -> dict:
    """Accuracy on the queries of each meta-test digit, 4-way ``k_shot``-shot, for each set of modalities.

    ``embeddings``: {name: {modality: (P, d)}}, e.g. {"image": {...}, "audio": {...}, "both": {...}}.
    Returns {name: {digit: accuracy}}.
    """
    out = {}
    for name, columns in embeddings.items():
        batch = test_sampler(data, columns, 4, k_shot).sample_batch(range(episodes))
        right = prototype_scores(columns, batch).argmax(-1) == batch.query_labels  # (B, |Q|)
        digit = torch.gather(batch.classes, 1, batch.query_labels)  # (B, |Q|)
        out[name] = {d: right[digit == d].float().mean().item() for d in META_TEST_DIGITS}
    return out


# ----------------------------------------------------- the experiment exercise: when fine-tuning pulls ahead
FINE_TUNING = {"steps": 100, "lr": 0.1}  # each episode's new head: Adam from zero on its support set
MAX_SHOTS = 40  # on seeds 0-9 the smallest meta-test digit has 59 rows: k shots and 15 queries must fit
FINE_TUNING_SHOTS = 40  # the experiment exercise's worked solution (section 5)
FINE_TUNED_GAIN = "fitted head minus class mean at your k"  # the experiment exercise's outcomes judge these two
ONE_SHOT_GAIN = "fitted head minus class mean at one shot"


def fine_tuned_head_scores(support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor, n_way: int,
                           steps: int = FINE_TUNING["steps"], lr: float = FINE_TUNING["lr"]) -> torch.Tensor:
    """The fine-tuned baseline at meta-test time (Chen et al. 2019, "Baseline"): for each episode a new linear head,
    from zero, trained on the support embeddings (the encoder stays frozen) by ``steps`` steps of Adam on their
    cross-entropy; returns the queries' scores.

    Shape: ``support`` (B, |S|, d), ``support_labels`` (B, |S|), ``query`` (B, |Q|, d) -> (B, |Q|, N). The B heads
    train at once and independently: each gets the gradient of its own episode's mean loss.
    """
    if support.ndim != 3 or query.ndim != 3 or support_labels.shape != support.shape[:2] or \
            query.shape[0] != support.shape[0] or query.shape[-1] != support.shape[-1]:
        raise ValueError(f"support, support_labels, query: expected (B, |S|, d), (B, |S|), (B, |Q|, d), got "
                         f"{tuple(support.shape)}, {tuple(support_labels.shape)}, {tuple(query.shape)}")
    weight = torch.zeros(support.shape[0], support.shape[-1], n_way, requires_grad=True)
    bias = torch.zeros(support.shape[0], 1, n_way, requires_grad=True)
    optimizer = Adam([weight, bias], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            loss = F.cross_entropy((support @ weight + bias).flatten(0, 1), support_labels.flatten())
            optimizer.zero_grad()
            (loss * len(support)).backward()  # the mean over B episodes, times B: each head its episode's mean
            optimizer.step()
    return (query @ weight + bias).detach()


def _check_shots(k_shot) -> int:
    if isinstance(k_shot, bool) or not isinstance(k_shot, int) or not 1 <= k_shot <= MAX_SHOTS:
        raise ValueError(f"k_shot: expected a whole number of shots per class from 1 to {MAX_SHOTS} (the meta-test "
                         f"digits have at most {MAX_SHOTS} rows left once 15 queries are drawn), got {k_shot!r}")
    return k_shot


def shot_embeddings(data: MetaData) -> dict[str, torch.Tensor]:
    """The meta-test audio embedded by the lesson's audio ProtoNet (:func:`train_protonet`), by the encoder of its
    plain classifier (:func:`train_baseline`), and raw: {"ProtoNet": (P, d), "baseline": (P, d), "raw": (P, d')}."""
    return {"ProtoNet": embed(train_protonet(data, "audio")[0].encoder, data.test["audio"]),
            "baseline": embed(train_baseline(data, "audio")[0], data.test["audio"]),
            "raw": raw_inputs(data.test["audio"])}


def fine_tuning_against_class_mean(data: MetaData, k_shot: int, embeddings: dict[str, torch.Tensor] | None = None,
                                   episodes: int = 300) -> dict[str, float]:
    """A linear head fitted to each support set (:func:`fine_tuned_head_scores`) against the nearest class mean, both
    on the plain classifier's features, on the same 4-way ``k_shot``-shot meta-test episodes: only the classifier
    differs. ``embeddings``: :func:`shot_embeddings`' (computed when not given). Returns the paired gain (fitted head
    minus class mean) and, for context, the mean accuracies of both, of the audio ProtoNet and of the raw
    spectrogram's nearest class mean."""
    k_shot = _check_shots(k_shot)
    h = shot_embeddings(data) if embeddings is None else embeddings
    e = test_sampler(data, h, k_shot=k_shot).sample_batch(range(episodes))
    n_way = e.classes.shape[-1]

    def class_mean(name: str) -> torch.Tensor:
        return episode_accuracy(prototypical_logits(e.query[name], prototypes(e.support[name], e.support_labels,
                                                                               n_way)), e.query_labels)

    mean = class_mean("baseline")
    head = episode_accuracy(fine_tuned_head_scores(e.support["baseline"], e.support_labels, e.query["baseline"],
                                                   n_way), e.query_labels)
    out = {"gain": (head - mean).mean().item(), "fitted head accuracy": head.mean().item(),
           "class mean accuracy": mean.mean().item()}
    for name, label in (("ProtoNet", "ProtoNet accuracy"), ("raw", "raw class mean accuracy")):
        if name in h:
            out[label] = class_mean(name).mean().item()
    return out


@functools.lru_cache(maxsize=2)
def _shot_setup(seed: int) -> tuple[MetaData, dict[str, torch.Tensor]]:
    data = meta_data(seed)
    return data, shot_embeddings(data)


def fine_tuning_shots(attempt, seed: int) -> dict[str, float]:
    """The experiment exercise: run ``attempt()`` (a function returning a shot count k) and measure
    :func:`fine_tuning_against_class_mean` at that k and at one shot for ``seed``. The data and the encoders are
    made once per seed and kept, so trying another k costs a second or two."""
    k_shot = _check_shots(attempt())
    data, embeddings = _shot_setup(seed)
    yours, one = (fine_tuning_against_class_mean(data, k, embeddings) for k in (k_shot, 1))
    return {FINE_TUNED_GAIN: yours.pop("gain"), ONE_SHOT_GAIN: one["gain"], **{f"{k} at your k": v for k, v in
                                                                              yours.items()}}


# ------------------------------------------------------------------------------------------------- MAML
def maml_inputs(x: torch.Tensor, modality: str) -> torch.Tensor:
    """Flat inputs for MAML's perceptron: the 64 pixels, or the spectrogram average-pooled to 16 x 10.

    Shape: (..., 1, 8, 8) -> (..., 64); (..., 1, 32, 40) -> (..., 160).
    """
    if modality == "image":
        return x.flatten(-3)
    lead = x.shape[:-3]
    return F.avg_pool2d(x.reshape(-1, *x.shape[-3:]), (2, 4)).reshape(*lead, -1)


def build_maml_model(modality: str, n_way: int = 4, hidden: int = 64) -> MLPEncoder:
    """MAML's model: a perceptron from the flat inputs (:func:`maml_inputs`) to ``n_way`` class scores."""
    return MLPEncoder(64 if modality == "image" else 160, n_way, hidden=hidden, layers=2)


@dataclass
class MAMLSettings:
    """The knobs of MAML: episodes (``n_way``, ``k_shot``, ``n_query``), the inner loop (``inner_lr``,
    ``inner_steps``; ``test_steps`` at meta-test time), the outer loop (``meta_batch``, ``steps``, ``lr``)."""

    modality: str = "audio"
    n_way: int = 4
    k_shot: int = 5
    n_query: int = 10
    inner_lr: float = 0.2
    inner_steps: int = 1
    test_steps: int = 5
    meta_batch: int = 8
    steps: int = 150
    lr: float = 2e-3
    first_order: bool = False


def maml_sampler(data: MetaData, settings: MAMLSettings) -> EpisodeSampler:
    """Meta-train episodes of flat inputs (:func:`maml_inputs`) for MAML."""
    x = maml_inputs(data.train[settings.modality], settings.modality)
    return EpisodeSampler({"x": x}, data.train["label"], META_TRAIN_DIGITS, settings.n_way, settings.k_shot,
                          settings.n_query, seed=data.seed)


def meta_batch_tasks(sampler: EpisodeSampler, indices) -> tuple:
    """(support, query) pairs of a batch of episodes, as :func:`~mmcourse.meta.maml_meta_loss` takes them."""
    e = sampler.sample_batch(indices)
    return (e.support["x"], e.support_labels), (e.query["x"], e.query_labels)


def maml_start(data: MetaData, settings: MAMLSettings | None = None) -> MLPEncoder:
    """MAML's perceptron at the random initialisation that :func:`train_maml` starts from (the same seed),
    untrained: the control that tells what meta-training added to adaptation by gradient steps alone."""
    s = settings or MAMLSettings()
    seed_everything(data.seed)
    return build_maml_model(s.modality, s.n_way)


def train_maml(data: MetaData, settings: MAMLSettings | None = None, progress: bool = False):
    """Meta-train MAML's perceptron with :func:`~mmcourse.meta.maml_meta_loss` (vmapped); return (model, History)."""
    s = settings or MAMLSettings()
    model = maml_start(data, s)
    sampler = maml_sampler(data, s)

    def step(model: nn.Module, batch: dict) -> torch.Tensor:
        device = next(model.parameters()).device
        (xs, ys), (xq, yq) = meta_batch_tasks(sampler, batch["episode"].cpu())
        return maml_meta_loss(model, dict(model.named_parameters()), (xs.to(device), ys.to(device)),
                              (xq.to(device), yq.to(device)), F.cross_entropy, s.inner_lr, s.inner_steps,
                              s.first_order)

    history = fit(model, episodes_as_data(s.steps * s.meta_batch), ["episode"], None, step=step,
                  batch_size=s.meta_batch, epochs=1, lr=s.lr, seed=data.seed, progress=progress,
                  description="MAML (first order)" if s.first_order else "MAML (second order)")
    return model.cpu().eval(), history


def maml_accuracy(model: nn.Module, data: MetaData, settings: MAMLSettings | None = None, k_shot: int = 5,
                  episodes: int = 300, steps: int | None = None) -> torch.Tensor:
    """Accuracy of MAML on meta-test episodes: adapt to each support set (``steps`` steps, by default the
    settings' ``test_steps``), classify its queries. The episodes are those of :func:`few_shot_accuracy`
    with the same sizes. Returns (episodes,)."""
    s = settings or MAMLSettings()
    steps = s.test_steps if steps is None else steps
    x = maml_inputs(data.test[s.modality], s.modality)
    batch = test_sampler(data, {"x": x}, s.n_way, k_shot).sample_batch(range(episodes))
    with torch.no_grad():
        scores = maml_predict(model, dict(model.named_parameters()), (batch.support["x"], batch.support_labels),
                              batch.query["x"], F.cross_entropy, s.inner_lr, steps)
    return episode_accuracy(scores, batch.query_labels)


def time_meta_step(model: nn.Module, tasks: tuple, vmapped: bool, settings: MAMLSettings | None = None,
                   repeats: int = 7) -> float:
    """Median seconds of one meta-training step (meta-loss, backward) on ``tasks`` = (support, query), one
    CPU thread: with ``torch.func.vmap`` over the tasks, or a Python loop over them."""
    s = settings or MAMLSettings()
    loss_of = maml_meta_loss if vmapped else maml_meta_loss_loop
    params = {k: v.detach().clone().requires_grad_() for k, v in model.named_parameters()}
    times = []
    with one_thread():
        for _ in range(repeats + 1):  # the first run warms up
            start = time.perf_counter()
            loss = loss_of(model, params, *tasks, F.cross_entropy, s.inner_lr, s.inner_steps, s.first_order)
            torch.autograd.grad(loss, list(params.values()))
            times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


# ----------------------------------------------------------------------------------- meta-learned fusion
@dataclass
class CorruptedEmbeddings:
    """Embeddings of a pool under every corruption of :data:`CONDITIONS`.

    ``image[level]`` (L_i, P, d) and ``audio`` (L_a, P, d): level 0 is the default corruption, then
    :data:`IMAGE_NOISES` / :data:`AUDIO_SNRS`; ``labels`` (P,).
    """

    image: torch.Tensor
    audio: torch.Tensor
    labels: torch.Tensor

    def levels(self, condition: tuple) -> tuple[int, int]:
        """(image level, audio level) of a condition of :data:`CONDITIONS`."""
        modality, level = condition
        return ((1 + IMAGE_NOISES.index(level), 0) if modality == "image" else (0, 1 + AUDIO_SNRS.index(level)))


def corrupted_embeddings(encoders: dict, clean: dict, seed: int) -> CorruptedEmbeddings:
    """Corrupt a clean pool at the default level and at every level of :data:`CONDITIONS`; embed each."""
    g = torch.Generator().manual_seed(seed + 7)
    images = [corrupt_images(clean["image"], noise, DEFAULT_OCCLUSION, g)
              for noise in (DEFAULT_IMAGE_NOISE, *IMAGE_NOISES)]
    power = voiced_power(clean["waveform"])
    audio = [audio_features(clean["waveform"], snr, g, power)[1] for snr in (DEFAULT_AUDIO_SNR_DB, *AUDIO_SNRS)]
    return CorruptedEmbeddings(torch.stack([embed(encoders["image"], x) for x in images]),
                               torch.stack([embed(encoders["audio"], x) for x in audio]), clean["label"])


def episode_conditions(count: int, seed: int) -> torch.Tensor:
    """Which condition of :data:`CONDITIONS` each of ``count`` episodes gets (uniformly). Shape: (count,)."""
    return torch.randint(len(CONDITIONS), (count,), generator=torch.Generator().manual_seed(seed + 11))


def corrupted_episodes(pool: CorruptedEmbeddings, sampler: EpisodeSampler, indices, conditions: torch.Tensor):
    """Support and query embeddings of episodes ``indices``, each under its condition.

    Returns (support [image (B, |S|, d), audio (B, |S|, d)], support labels (B, |S|), query [...], query labels
    (B, |Q|)), for B = len(indices) episodes.
    """
    indices = torch.as_tensor(indices)
    e = sampler.sample_batch(indices)
    levels = torch.tensor([pool.levels(CONDITIONS[int(c)]) for c in conditions[indices]])  # (B, 2)
    tables = (pool.image, pool.audio)

    def take(rows: torch.Tensor) -> list[torch.Tensor]:
        return [table[levels[:, m, None], rows] for m, table in enumerate(tables)]  # (B, rows, d) each

    return take(e.support_rows), e.support_labels, take(e.query_rows), e.query_labels


@dataclass
class FusionResult:
    """Section 6: the trained :class:`~mmcourse.meta.MetaFusion`, and on the E meta-test episodes: each
    episode's ``conditions`` (E,) (indices into :data:`CONDITIONS`), its support ``statistics``
    (:class:`~mmcourse.meta.SupportStatistics`, two (E, 2) tensors), the predicted ``weights`` (E, 2),
    the closed-form rule's ``rule_weights`` (E, 2) (:func:`~mmcourse.meta.inverse_spread_weights`) and
    the squared rule's ``squared_rule_weights`` (E, 2) (the same with ``power=2``; column 0 the image,
    1 the audio) and ``accuracy`` {method: (E,)}; the training ``history``."""

    model: MetaFusion
    conditions: torch.Tensor
    statistics: SupportStatistics
    weights: torch.Tensor
    rule_weights: torch.Tensor
    squared_rule_weights: torch.Tensor
    accuracy: dict
    history: object


def meta_fusion_experiment(data: MetaData, encoders: dict, n_way: int = 4, k_shot: int = 5, n_query: int = 10,
                           episodes: int = 1600, meta_batch: int = 16, test_episodes: int = 600, lr: float = 1e-2,
                           progress: bool = False) -> FusionResult:
    """Train :class:`~mmcourse.meta.MetaFusion` on meta-train episodes of varied corruption (encoders fixed),
    then compare on meta-test episodes: image only, audio only, equal weights, the closed-form
    inverse-spread rule and its squared form (no training) and the predicted weights."""
    train_pool = corrupted_embeddings(encoders, data.clean_train, data.seed)
    test_pool = corrupted_embeddings(encoders, data.clean_test, data.seed + 1)
    seed_everything(data.seed)
    train_sampler = EpisodeSampler({"row": torch.arange(len(train_pool.labels))}, train_pool.labels,
                                   META_TRAIN_DIGITS, n_way, k_shot, n_query, seed=data.seed)
    train_conditions = episode_conditions(episodes, data.seed)
    model = MetaFusion(len(MODALITIES))

    def step(model: nn.Module, batch: dict) -> torch.Tensor:
        support, ys, query, yq = corrupted_episodes(train_pool, train_sampler, batch["episode"].cpu(), train_conditions)
        return F.cross_entropy(model(support, ys, query, n_way).scores.flatten(0, 1), yq.flatten())

    history = fit(model, episodes_as_data(episodes), ["episode"], None, step=step, batch_size=meta_batch, epochs=1,
                  lr=lr, seed=data.seed, progress=progress, description="meta-learned fusion", device="cpu")
    test = test_sampler(data, {"row": torch.arange(len(test_pool.labels))}, n_way, k_shot, n_query)
    conditions = episode_conditions(test_episodes, data.seed + TEST_SEED_OFFSET)
    support, ys, query, yq = corrupted_episodes(test_pool, test, range(test_episodes), conditions)
    with torch.no_grad():
        fused = model.eval()(support, ys, query, n_way)
        logits = modality_logits(support, ys, query, n_way)  # (E, 2, Q, N)
        rule = inverse_spread_weights(support, ys, n_way)
        squared = inverse_spread_weights(support, ys, n_way, power=2.0)
    accuracy = {"image only": episode_accuracy(logits[:, 0], yq), "audio only": episode_accuracy(logits[:, 1], yq),
                "equal weights": episode_accuracy(logits.mean(1), yq),
                "inverse-spread rule": episode_accuracy(fuse_logits(logits, rule), yq),
                "squared rule": episode_accuracy(fuse_logits(logits, squared), yq),
                "meta-learned weights": episode_accuracy(fused.scores, yq)}
    return FusionResult(model, conditions, support_statistics(support, ys, n_way), fused.weights, rule, squared,
                        accuracy, history)


def by_condition(result: FusionResult) -> dict:
    """Means over the meta-test episodes of each condition: {condition: {"image weight", "rule image weight",
    "squared rule image weight", "image prototype distance", "audio prototype distance", method: accuracy
    ...}}. A modality's prototype distance is the mean squared distance between two of an episode's
    prototypes (``exp`` of :attr:`~mmcourse.meta.SupportStatistics.log_between`)."""
    out = {}
    between = result.statistics.log_between.exp()  # (E, 2)
    for i, c in enumerate(CONDITIONS):
        rows = result.conditions == i
        out[c] = {"image weight": result.weights[rows, 0].mean().item(),
                  "rule image weight": result.rule_weights[rows, 0].mean().item(),
                  "squared rule image weight": result.squared_rule_weights[rows, 0].mean().item(),
                  "image prototype distance": between[rows, 0].mean().item(),
                  "audio prototype distance": between[rows, 1].mean().item(),
                  **{k: v[rows].mean().item() for k, v in result.accuracy.items()}}
    return out


def noisy_image_episodes(result: FusionResult) -> torch.Tensor:
    """(E,) bool: the meta-test episodes whose image is the corrupted modality."""
    return torch.tensor([m == "image" for m, _ in CONDITIONS])[result.conditions]


def paired_gains(result: FusionResult, rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per-episode accuracy of the predicted weights minus each other method of ``result.accuracy`` ("image
    only", "audio only", "equal weights", "inverse-spread rule", "squared rule"), and minus "each episode's
    better single modality" (the larger of the two single accuracies of that episode: an oracle, since it
    looks at the query labels). ``rows`` (E,) bool keeps some episodes. Returns {name: (E',)}."""
    a = result.accuracy
    keep = torch.ones_like(result.conditions, dtype=torch.bool) if rows is None else rows
    learned = a["meta-learned weights"][keep]
    gains = {k: learned - v[keep] for k, v in a.items() if k != "meta-learned weights"}
    gains["each episode's better single modality"] = learned - torch.maximum(a["image only"], a["audio only"])[keep]
    return gains


def condition_episodes(result: FusionResult, condition: tuple) -> torch.Tensor:
    """(E,) bool: the meta-test episodes of one condition of :data:`CONDITIONS`, e.g. ("audio", -20.0)."""
    return result.conditions == CONDITIONS.index(condition)


STRONG_IMAGE_NOISES = tuple(level for level in IMAGE_NOISES if level >= 1.0)  # the image alone near chance


def fusion_quantities(result: FusionResult) -> dict[str, float]:
    """The numbers behind section 6's claims, from :func:`meta_fusion_experiment`'s result (paired means over
    the meta-test episodes named):

    - noisy-image episodes: "over equal, noisy images" (predicted weights minus equal weights); "rule share"
      (the inverse-spread rule's gain over equal weights as a fraction of the predicted weights' gain);
      "squared rule gap" (|predicted weights minus the squared rule|);
    - at pixel noise 1 and 2 (:data:`STRONG_IMAGE_NOISES`): "noisy image weight" (the larger of the two
      mean predicted image weights), "below rule" (the larger of predicted minus rule mean image weight);
    - noisy-audio episodes: "equal gap, noisy audio" (|predicted weights minus equal weights|); "over single,
      audio -5 and -10 dB" (the smallest of the four gains over the image alone and over the audio alone
      at -5 and at -10 dB);
    - at -20 dB: "drowned audio off chance" (|audio-only accuracy - 0.25|), "drowned image weight" (the
      mean predicted image weight).
    """
    a, table = result.accuracy, by_condition(result)
    noisy_image = noisy_image_episodes(result)
    on_images, on_audio = paired_gains(result, noisy_image), paired_gains(result, ~noisy_image)
    rule_gain = (a["inverse-spread rule"] - a["equal weights"])[noisy_image].mean().item()
    strong = [table[("image", level)] for level in STRONG_IMAGE_NOISES]
    mild_audio = [paired_gains(result, condition_episodes(result, ("audio", snr))) for snr in AUDIO_SNRS[:2]]
    drowned = table[("audio", min(AUDIO_SNRS))]
    return {
        "over equal, noisy images": on_images["equal weights"].mean().item(),
        "rule share": rule_gain / on_images["equal weights"].mean().item(),
        "squared rule gap": abs(on_images["squared rule"].mean().item()),
        "noisy image weight": max(row["image weight"] for row in strong),
        "below rule": max(row["image weight"] - row["rule image weight"] for row in strong),
        "equal gap, noisy audio": abs(on_audio["equal weights"].mean().item()),
        "over single, audio -5 and -10 dB": min(g[k].mean().item() for g in mild_audio
                                                for k in ("image only", "audio only")),
        "drowned audio off chance": abs(drowned["audio only"] - 0.25),
        "drowned image weight": drowned["image weight"],
    }


# ---------------------------------------------------------------------- the lesson's claims and quantities
RAW_BEATS_LEARNED = Claim("on the new digits, nearest class mean on the raw inputs beats nearest class mean on every "
                          "learned embedding: the baseline's and the ProtoNet's, for the image and for the audio",
                          "smallest paired gain of the raw input over one of the four embeddings (4-way 5-shot "
                          "accuracy)", ">", 0.0)
WEIGHTING_BEATS_RAW_AUDIO = Claim("a ProtoNet whose encoder only weighs each spectrogram cell beats the raw "
                                  "spectrogram", "paired gain in 4-way 5-shot accuracy", ">", 0.0)
WEIGHTING_MATCHES_RAW_IMAGE = Claim("for the image, the same per-pixel weighting stays within 0.02 of the raw pixels",
                                    "|paired difference in 4-way 5-shot accuracy|", "<=", 0.02)
MORE_SHOTS_HELP = Claim("more examples per class help: 5-shot beats 1-shot",
                        "gain in 4-way accuracy of the audio ProtoNet from k = 1 to k = 5", ">=", 0.08)
FITTED_HEAD_TRAILS_AT_ONE_SHOT = Claim(
    "at one shot, a linear head fitted to the support set trails the nearest class mean on the same features (the "
    "plain classifier's)", "paired gain in 4-way 1-shot accuracy, fitted head minus class mean", "<", 0.0)
FINE_TUNED_BASELINE_PULLS_AHEAD = Claim(
    "with enough shots, the head fitted to the support set (Chen et al.'s Baseline) beats the nearest class mean on "
    "the same features", "paired gain in 4-way accuracy at your k, fitted head minus class mean", ">", 0.0)
MAML_BEATS_ITS_START = Claim("after the one inner step it was meta-trained for, MAML's initialisation beats the same "
                             "network's untrained initialisation given the same step",
                             "paired gain in 4-way 5-shot accuracy, second order, one step", ">", 0.0)
SECOND_ORDER_AHEAD = Claim("after one step, second-order MAML beats first-order MAML",
                           "paired gain in 4-way 5-shot accuracy, one step", ">", 0.0)
RAW_BEATS_MAML = Claim("nearest class mean on MAML's own input (the pooled spectrogram), with no training, beats "
                       "MAML after its five test steps", "paired gain in 4-way 5-shot accuracy", ">", 0.0)
META_WEIGHTS_BEAT_EQUAL = Claim("in noisy-image episodes, weights predicted from each support set beat equal weights",
                                "paired gain in meta-test accuracy in those episodes", ">", 0.0)
RULE_GETS_MOST_OF_THE_GAIN = Claim("a closed-form rule with no training (each modality weighted by the inverse of its "
                                   "within-class spread in the support set) gets most of that gain",
                                   "the rule's gain over equal weights as a fraction of the predicted weights' gain, "
                                   "noisy-image episodes", ">", 0.5)
SQUARED_RULE_MATCHES = Claim("in noisy-image episodes, the squared rule (no training) comes within 0.02 of the "
                             "predicted weights", "|paired difference in accuracy in those episodes|", "<=", 0.02)
WEIGHTS_TURN_FROM_NOISY_IMAGE = Claim("at pixel noise 1 and 2 the predicted weights turn away from the image",
                                      "the larger of the two mean image weights", "<", 0.5)
TURN_FURTHER_THAN_RULE = Claim("at pixel noise 1 and 2 they turn further away from it than the rule's weights do",
                               "the larger of the two differences of the mean image weight, predicted minus rule",
                               "<", 0.0)
NO_GAIN_ON_NOISY_AUDIO = Claim("in noisy-audio episodes, the predicted weights stay within 0.025 of equal weights",
                               "|paired difference in accuracy in those episodes|", "<=", 0.025)
FUSION_BEATS_BOTH_ON_NOISY_AUDIO = Claim("with the audio at -5 or -10 dB, the predicted weights beat each modality "
                                         "alone", "smallest of the four paired gains", ">", 0.0)
DROWNED_AUDIO_AT_CHANCE = Claim("with the audio at -20 dB, the audio alone is at chance (0.25)",
                                "distance of its accuracy from 0.25 in those episodes", "<=", 0.05)
DROWNED_AUDIO_STILL_WEIGHTED = Claim("the predicted weights do not learn to drop such drowned audio",
                                     "mean image weight at -20 dB", "<=", 0.9)
FUSION_CLAIMS = {  # section 6's claims and the quantity of fusion_quantities each tests
    META_WEIGHTS_BEAT_EQUAL: "over equal, noisy images", RULE_GETS_MOST_OF_THE_GAIN: "rule share",
    SQUARED_RULE_MATCHES: "squared rule gap", WEIGHTS_TURN_FROM_NOISY_IMAGE: "noisy image weight",
    TURN_FURTHER_THAN_RULE: "below rule", NO_GAIN_ON_NOISY_AUDIO: "equal gap, noisy audio",
    FUSION_BEATS_BOTH_ON_NOISY_AUDIO: "over single, audio -5 and -10 dB",
    DROWNED_AUDIO_AT_CHANCE: "drowned audio off chance", DROWNED_AUDIO_STILL_WEIGHTED: "drowned image weight",
}


def shot_gain(data: MetaData, embeddings: dict) -> float:
    """Mean 4-way accuracy at k = 5 minus at k = 1 (:func:`few_shot_accuracy`, its default episodes)."""
    five, one = (few_shot_accuracy(data, embeddings, k_shot=k).mean().item() for k in (5, 1))
    return five - one


def raw_margin(raw: dict, learned: list[dict]) -> float:
    """The smallest paired gain of the raw inputs over a learned embedding: the minimum, over the modalities
    of ``raw`` ({modality: (E,) accuracy}) and over the methods of ``learned`` (a list of such dicts, the
    same episodes), of the mean of raw minus learned."""
    return min((raw[m] - accuracy[m]).mean().item() for accuracy in learned for m in raw)


def maml_accuracies(data: MetaData, models: dict, steps=(1, 5)) -> dict:
    """{(name, steps): (episodes,) accuracy} of each of ``models`` ({name: MAML's perceptron}) after each
    number of test ``steps`` (:func:`maml_accuracy`, the same episodes for all)."""
    return {(name, k): maml_accuracy(model, data, steps=k) for name, model in models.items() for k in steps}


def measure_claims(seed: int) -> dict[Claim, float]:
    """Run every experiment of lesson 06 for ``seed``; return the quantity each claim tests."""
    data = meta_data(seed)
    raw = {m: few_shot_accuracy(data, {m: raw_inputs(data.test[m])}) for m in MODALITIES}
    baseline = {m: few_shot_accuracy(data, {m: embed(train_baseline(data, m)[0], data.test[m])}) for m in MODALITIES}
    encoders = {m: train_protonet(data, m)[0].encoder for m in MODALITIES}
    audio = {"audio": embed(encoders["audio"], data.test["audio"])}
    proto = {m: few_shot_accuracy(data, {m: embed(encoders[m], data.test[m])}) for m in MODALITIES}
    weighting = {m: few_shot_accuracy(data, {m: embed(train_input_weighting(data, m)[0].encoder, data.test[m])})
                 for m in MODALITIES}
    models = {"second order": train_maml(data)[0], "first order": train_maml(data, MAMLSettings(first_order=True))[0],
              "untrained": maml_start(data)}
    maml = maml_accuracies(data, models)
    pooled = few_shot_accuracy(data, {"x": maml_inputs(data.test["audio"], "audio")})
    fusion = fusion_quantities(meta_fusion_experiment(data, encoders))
    shots = fine_tuning_shots(lambda: FINE_TUNING_SHOTS, seed)  # the experiment exercise's worked solution
    return {
        RAW_BEATS_LEARNED: raw_margin(raw, [baseline, proto]),
        WEIGHTING_BEATS_RAW_AUDIO: (weighting["audio"] - raw["audio"]).mean().item(),
        WEIGHTING_MATCHES_RAW_IMAGE: abs((weighting["image"] - raw["image"]).mean().item()),
        MORE_SHOTS_HELP: shot_gain(data, audio),
        **{claim: shots[name] for claim, name in ((FINE_TUNED_BASELINE_PULLS_AHEAD, FINE_TUNED_GAIN),
                                                  (FITTED_HEAD_TRAILS_AT_ONE_SHOT, ONE_SHOT_GAIN))},
        MAML_BEATS_ITS_START: (maml[("second order", 1)] - maml[("untrained", 1)]).mean().item(),
        SECOND_ORDER_AHEAD: (maml[("second order", 1)] - maml[("first order", 1)]).mean().item(),
        RAW_BEATS_MAML: (pooled - maml[("second order", 5)]).mean().item(),
        **{claim: fusion[name] for claim, name in FUSION_CLAIMS.items()},
    }
