"""Experiments of lesson 06 (meta-learning): the training runs and measurements behind its claims.

Each claim is a :class:`~mmcourse.claims.Claim` constant below, with its threshold; the lesson checks
it on its seed-0 run, :func:`measure_claims` computes every claimed quantity for any seed
(``tests/test_meta_experiments.py`` runs another seed, ``benchmarks/claims.py`` seeds 0-9).

Meta-training uses digits 0-5 of AV-Digits' training split; meta-testing uses digits 6-9 of its
validation and test splits: new classes, new handwriting and new voices.
"""

from __future__ import annotations

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
    shape_classes,
    support_statistics,
)
from ..train import fit

META_TRAIN_DIGITS = (0, 1, 2, 3, 4, 5)
META_TEST_DIGITS = (6, 7, 8, 9)
MODALITIES = ("image", "audio")
EMBED_DIM = 32
TEST_SEED_OFFSET = 1000  # meta-test episodes use seed + 1000: never the episodes of meta-training
# Section 6: each episode corrupts one modality at one of these levels (the other stays at the default).
IMAGE_NOISES = (1.0, 2.0, 3.0)  # pixel noise std (default 0.3)
AUDIO_SNRS = (-5.0, -10.0, -20.0)  # dB (default 0)
CONDITIONS = (("image", 1.0), ("image", 2.0), ("image", 3.0), ("audio", -5.0), ("audio", -10.0), ("audio", -20.0))


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


def train_protonet(data: MetaData, modality: str, n_way: int = 6, k_shot: int = 5, n_query: int = 10,
                   episodes: int | None = None, meta_batch: int = 4, lr: float | None = None, progress: bool = False):
    """Train a :class:`~mmcourse.meta.ProtoNet` episodically on the meta-train pool; return (net, History).

    Each step averages the query cross-entropy of ``meta_batch`` episodes (``n_way``-way, ``k_shot``-shot).
    ``episodes`` and ``lr`` default to :data:`PROTONET_TRAINING` (the audio encoder overfits the six
    training digits sooner, so it trains for fewer episodes).
    """
    if modality not in PROTONET_TRAINING:
        raise ValueError(f"modality: expected one of {MODALITIES}, got {modality!r}")
    episodes = PROTONET_TRAINING[modality]["episodes"] if episodes is None else episodes
    lr = PROTONET_TRAINING[modality]["lr"] if lr is None else lr
    seed_everything(data.seed)
    net = ProtoNet(build_encoder(modality))
    sampler = EpisodeSampler({modality: data.train[modality]}, data.train["label"], META_TRAIN_DIGITS, n_way,
                             k_shot, n_query, seed=data.seed)

    def step(model: nn.Module, batch: dict) -> torch.Tensor:
        e = sampler.sample_batch(batch["episode"].cpu())
        device = next(model.parameters()).device
        scores = model(e.support[modality].to(device), e.support_labels.to(device), e.query[modality].to(device),
                       n_way).scores
        return F.cross_entropy(scores.flatten(0, 1), e.query_labels.to(device).flatten())

    history = fit(net, episodes_as_data(episodes), ["episode"], None, step=step, batch_size=meta_batch, epochs=1,
                  lr=lr, seed=data.seed, progress=progress, description=f"ProtoNet ({modality})")
    return net.cpu().eval(), history


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
    """Embeddings of every row of ``x`` (evaluation mode, no gradients). Shape: (P, ...) -> (P, D)."""
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
    batch whose columns include them. Shape: -> (T, Q, N).
    """
    logits = modality_logits([episodes.support[m] for m in embeddings], episodes.support_labels,
                             [episodes.query[m] for m in embeddings], episodes.classes.shape[-1])
    return logits.mean(-3)


def few_shot_accuracy(data: MetaData, embeddings: dict, n_way: int = 4, k_shot: int = 5, n_query: int = 15,
                      episodes: int = 300) -> torch.Tensor:
    """Accuracy of nearest-prototype classification on ``episodes`` meta-test episodes.

    ``embeddings``: {modality: (P, D) embeddings of ``data.test``}; with several modalities their logits
    are averaged (fused prototypes with equal weights). The same seed gives the same episodes, so two
    calls with the same sizes compare methods on the same tasks (paired). Returns (episodes,).
    """
    batch = test_sampler(data, embeddings, n_way, k_shot, n_query).sample_batch(range(episodes))
    return episode_accuracy(prototype_scores(embeddings, batch), batch.query_labels)


def accuracy_grid(data: MetaData, embeddings: dict, ways=(2, 3, 4), shots=(1, 2, 5, 10), episodes: int = 300) -> dict:
    """{(N, K): Interval} of :func:`few_shot_accuracy` for every N-way K-shot setting."""
    return {(n, k): normal_interval(few_shot_accuracy(data, embeddings, n, k, episodes=episodes))
            for n in ways for k in shots}


@torch.no_grad()
def per_class_accuracy(data: MetaData, embeddings: dict, k_shot: int = 5, episodes: int = 300) -> dict:
    """Accuracy on the queries of each meta-test digit, 4-way ``k_shot``-shot, for each set of modalities.

    ``embeddings``: {name: {modality: (P, D)}}, e.g. {"image": {...}, "audio": {...}, "both": {...}}.
    Returns {name: {digit: accuracy}}.
    """
    out = {}
    for name, columns in embeddings.items():
        batch = test_sampler(data, columns, 4, k_shot).sample_batch(range(episodes))
        right = prototype_scores(columns, batch).argmax(-1) == batch.query_labels  # (T, Q)
        digit = torch.gather(batch.classes, 1, batch.query_labels)  # (T, Q)
        out[name] = {d: right[digit == d].float().mean().item() for d in META_TEST_DIGITS}
    return out


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


def train_maml(data: MetaData, settings: MAMLSettings | None = None, progress: bool = False):
    """Meta-train MAML's perceptron with :func:`~mmcourse.meta.maml_meta_loss` (vmapped); return (model, History)."""
    s = settings or MAMLSettings()
    seed_everything(data.seed)
    model = build_maml_model(s.modality, s.n_way)
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
                  episodes: int = 300) -> torch.Tensor:
    """Accuracy of MAML on meta-test episodes: adapt to each support set (``test_steps`` steps), classify
    its queries. The episodes are those of :func:`few_shot_accuracy` with the same sizes. Returns (episodes,)."""
    s = settings or MAMLSettings()
    x = maml_inputs(data.test[s.modality], s.modality)
    batch = test_sampler(data, {"x": x}, s.n_way, k_shot).sample_batch(range(episodes))
    with torch.no_grad():
        scores = maml_predict(model, dict(model.named_parameters()), (batch.support["x"], batch.support_labels),
                              batch.query["x"], F.cross_entropy, s.inner_lr, s.test_steps)
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

    ``image[level]`` (L_i, P, D) and ``audio`` (L_a, P, D): level 0 is the default corruption, then
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

    Returns (support [image (T, S, D), audio (T, S, D)], support labels (T, S), query [...], query labels (T, Q)).
    """
    indices = torch.as_tensor(indices)
    e = sampler.sample_batch(indices)
    levels = torch.tensor([pool.levels(CONDITIONS[int(c)]) for c in conditions[indices]])  # (T, 2)
    tables = (pool.image, pool.audio)

    def take(rows: torch.Tensor) -> list[torch.Tensor]:
        return [table[levels[:, m, None], rows] for m, table in enumerate(tables)]  # (T, rows, D) each

    return take(e.support_rows), e.support_labels, take(e.query_rows), e.query_labels


@dataclass
class FusionResult:
    """Section 6: the trained :class:`~mmcourse.meta.MetaFusion`, and on the E meta-test episodes: each
    episode's ``conditions`` (E,) (indices into :data:`CONDITIONS`), its support ``statistics``
    (:class:`~mmcourse.meta.SupportStatistics`, two (E, 2) tensors), the predicted ``weights`` (E, 2),
    the closed-form rule's ``rule_weights`` (E, 2) (:func:`~mmcourse.meta.inverse_spread_weights`;
    column 0 the image, 1 the audio) and ``accuracy`` {method: (E,)}; the training ``history``."""

    model: MetaFusion
    conditions: torch.Tensor
    statistics: SupportStatistics
    weights: torch.Tensor
    rule_weights: torch.Tensor
    accuracy: dict
    history: object


def meta_fusion_experiment(data: MetaData, encoders: dict, n_way: int = 4, k_shot: int = 5, n_query: int = 10,
                           episodes: int = 1600, meta_batch: int = 16, test_episodes: int = 600, lr: float = 1e-2,
                           progress: bool = False) -> FusionResult:
    """Train :class:`~mmcourse.meta.MetaFusion` on meta-train episodes of varied corruption (encoders fixed),
    then compare on meta-test episodes: image only, audio only, equal weights, the closed-form
    inverse-spread rule (no training) and the predicted weights."""
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
    accuracy = {"image only": episode_accuracy(logits[:, 0], yq), "audio only": episode_accuracy(logits[:, 1], yq),
                "equal weights": episode_accuracy(logits.mean(1), yq),
                "inverse-spread rule": episode_accuracy(fuse_logits(logits, rule), yq),
                "meta-learned weights": episode_accuracy(fused.scores, yq)}
    return FusionResult(model, conditions, support_statistics(support, ys, n_way), fused.weights, rule, accuracy,
                        history)


def by_condition(result: FusionResult) -> dict:
    """Means over the meta-test episodes of each condition: {condition: {"image weight", "rule image weight",
    "image spread", "audio spread", method: accuracy ...}}. A modality's spread is the mean squared distance
    between its prototypes (``exp`` of :attr:`~mmcourse.meta.SupportStatistics.log_between`)."""
    out = {}
    between = result.statistics.log_between.exp()  # (E, 2)
    for i, c in enumerate(CONDITIONS):
        rows = result.conditions == i
        out[c] = {"image weight": result.weights[rows, 0].mean().item(),
                  "rule image weight": result.rule_weights[rows, 0].mean().item(),
                  "image spread": between[rows, 0].mean().item(), "audio spread": between[rows, 1].mean().item(),
                  **{k: v[rows].mean().item() for k, v in result.accuracy.items()}}
    return out


def noisy_image_episodes(result: FusionResult) -> torch.Tensor:
    """(E,) bool: the meta-test episodes whose image is the corrupted modality."""
    return torch.tensor([m == "image" for m, _ in CONDITIONS])[result.conditions]


def paired_gains(result: FusionResult) -> dict[str, torch.Tensor]:
    """Per-episode accuracy of the predicted weights minus each comparison, (E,) each: "equal weights",
    "inverse-spread rule", "image only", "audio only", and "each episode's better single modality" (the
    larger of the two single accuracies of that episode: an oracle, since it looks at the query labels)."""
    a = result.accuracy
    learned = a["meta-learned weights"]
    gains = {k: learned - a[k] for k in ("equal weights", "inverse-spread rule", "image only", "audio only")}
    gains["each episode's better single modality"] = learned - torch.maximum(a["image only"], a["audio only"])
    return gains


def fusion_quantities(result: FusionResult) -> dict[str, float]:
    """The numbers behind section 6's claims, from :func:`meta_fusion_experiment`'s result.

    - "over equal", "over single": paired mean gain of the predicted weights over equal weights, and over
      the better single modality over all episodes (one modality for every episode);
    - "rule share": the rule's gain over equal weights as a fraction of the predicted weights' gain;
    - "noisy image weight": the largest of the three pixel-noise conditions' mean image weight;
    - "below rule": the largest, over those conditions, of the predicted minus the rule's mean image weight;
    - "over rule, noisy images": paired mean gain over the rule in noisy-image episodes;
    - at -20 dB: "drowned audio off chance" (|audio-only accuracy - 0.25|), "drowned image weight" (the
      mean predicted image weight), "drowned over image" (paired gain over the image alone).
    """
    a, table = result.accuracy, by_condition(result)
    gains = paired_gains(result)
    learned_gain = gains["equal weights"].mean().item()
    rule_gain = (a["inverse-spread rule"] - a["equal weights"]).mean().item()
    image_levels = [table[("image", level)] for level in IMAGE_NOISES]
    drowned = table[("audio", min(AUDIO_SNRS))]
    return {
        "over equal": learned_gain,
        "rule share": rule_gain / learned_gain,
        "over single": min(gains["image only"].mean().item(), gains["audio only"].mean().item()),
        "noisy image weight": max(row["image weight"] for row in image_levels),
        "below rule": max(row["image weight"] - row["rule image weight"] for row in image_levels),
        "over rule, noisy images": gains["inverse-spread rule"][noisy_image_episodes(result)].mean().item(),
        "drowned audio off chance": abs(drowned["audio only"] - 0.25),
        "drowned image weight": drowned["image weight"],
        "drowned over image": drowned["meta-learned weights"] - drowned["image only"],
    }


# ---------------------------------------------------------------------- the lesson's claims and quantities
PROTONET_BEATS_CHANCE = Claim("on digits never seen in meta-training, the audio ProtoNet is far above chance (0.25)",
                              "4-way 5-shot meta-test accuracy", ">=", 0.55)
MORE_SHOTS_HELP = Claim("more examples per class help: 5-shot beats 1-shot",
                        "gain in 4-way accuracy of the audio ProtoNet from K = 1 to K = 5", ">=", 0.08)
MAML_BEATS_CHANCE = Claim("MAML adapts to digits never seen in meta-training, far above chance (0.25)",
                          "4-way 5-shot meta-test accuracy of second-order MAML", ">=", 0.5)
META_WEIGHTS_BEAT_EQUAL = Claim("when corruption varies between episodes, weights predicted from each support set "
                                "beat equal weights", "paired gain in meta-test accuracy", ">=", 0.05)
RULE_GETS_MOST_OF_THE_GAIN = Claim("a closed-form rule with no training (each modality weighted by the inverse of its "
                                   "within-class spread in the support set) gets most of that gain",
                                   "the rule's gain over equal weights as a fraction of the predicted weights' gain",
                                   ">", 0.5)
META_BEATS_BEST_SINGLE = Claim("with predicted weights, the two modalities beat the better single modality over all "
                               "episodes (one modality for every episode)",
                               "paired gain over the better single modality", ">", 0.0)
WEIGHTS_TURN_FROM_NOISY_IMAGE = Claim("in noisy-image episodes the predicted weights turn away from the image, at "
                                      "every pixel-noise level", "largest mean image weight over the three levels",
                                      "<=", 0.4)
TURN_FURTHER_THAN_RULE = Claim("they turn further away from a noisy image than the rule's weights do, at every "
                               "pixel-noise level", "largest difference of the mean image weight, predicted minus "
                               "rule, over the three levels", "<", 0.0)
META_BEATS_RULE_ON_NOISY_IMAGES = Claim("in noisy-image episodes the predicted weights beat the rule",
                                        "paired gain over the rule in those episodes", ">", 0.0)
DROWNED_AUDIO_AT_CHANCE = Claim("with the audio at -20 dB, the audio alone is at chance (0.25)",
                                "distance of its accuracy from 0.25 in those episodes", "<=", 0.05)
DROWNED_AUDIO_STILL_WEIGHTED = Claim("the predicted weights do not learn to drop such drowned audio",
                                     "mean image weight at -20 dB", "<=", 0.9)
DROWNED_NO_BETTER_THAN_IMAGE = Claim("at -20 dB the predicted weights do no better than the image alone",
                                     "paired gain over the image alone at -20 dB", "<=", 0.025)
FUSION_CLAIMS = {  # section 6's claims and the quantity of fusion_quantities each tests
    META_WEIGHTS_BEAT_EQUAL: "over equal", RULE_GETS_MOST_OF_THE_GAIN: "rule share",
    META_BEATS_BEST_SINGLE: "over single", WEIGHTS_TURN_FROM_NOISY_IMAGE: "noisy image weight",
    TURN_FURTHER_THAN_RULE: "below rule", META_BEATS_RULE_ON_NOISY_IMAGES: "over rule, noisy images",
    DROWNED_AUDIO_AT_CHANCE: "drowned audio off chance", DROWNED_AUDIO_STILL_WEIGHTED: "drowned image weight",
    DROWNED_NO_BETTER_THAN_IMAGE: "drowned over image",
}


def shot_gain(data: MetaData, embeddings: dict) -> float:
    """Mean 4-way accuracy at K = 5 minus at K = 1 (:func:`few_shot_accuracy`, its default episodes)."""
    five, one = (few_shot_accuracy(data, embeddings, k_shot=k).mean().item() for k in (5, 1))
    return five - one


def measure_claims(seed: int) -> dict[Claim, float]:
    """Run every experiment of lesson 06 for ``seed``; return the quantity each claim tests."""
    data = meta_data(seed)
    encoders = {m: train_protonet(data, m)[0].encoder for m in MODALITIES}
    audio = {"audio": embed(encoders["audio"], data.test["audio"])}
    maml, _ = train_maml(data)
    fusion = fusion_quantities(meta_fusion_experiment(data, encoders))
    return {
        PROTONET_BEATS_CHANCE: few_shot_accuracy(data, audio).mean().item(),
        MORE_SHOTS_HELP: shot_gain(data, audio),
        MAML_BEATS_CHANCE: maml_accuracy(maml, data).mean().item(),
        **{claim: fusion[name] for claim, name in FUSION_CLAIMS.items()},
    }
