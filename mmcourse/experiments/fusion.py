"""Experiments of lesson 01 (fusion): the training runs and measurements behind its claims.

Each claim is a :class:`~mmcourse.claims.Claim` constant below, with its threshold; the lesson
checks it on its seed-0 run, :func:`measure_claims` computes every claimed quantity for any seed
(``tests/test_fusion_experiments.py`` runs other seeds, ``benchmarks/claims.py`` seeds 0-9).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ..claims import Claim
from ..data import (
    DEFAULT_AUDIO_SNR_DB,
    DEFAULT_IMAGE_NOISE,
    DEFAULT_OCCLUSION,
    as_tensors,
    audio_features,
    corrupt_av,
    corrupt_images,
    load_av_digits,
)
from ..device import one_thread, seed_everything
from ..encoders import AudioEncoder, ImageEncoder
from ..fusion import (
    AttentionFusion,
    EarlyFusion,
    LateFusion,
    LowRankFusion,
    MultimodalClassifier,
    TensorFusion,
)
from ..metrics import accuracy
from ..train import fit

AV_METHODS = ("image only", "audio only", "early", "late", "attention", "tensor", "low-rank")
FUSIONS = {"early": EarlyFusion, "attention": AttentionFusion, "tensor": TensorFusion, "low-rank": LowRankFusion}
IMAGE_NOISES = (0.0, 0.3, 0.6, 1.0, 1.5, 2.0, 3.0)  # pixel noise std for the robustness grid
AUDIO_SNRS = (20.0, 10.0, 5.0, 0.0, -5.0, -10.0, -20.0)  # dB, from clean to drowned


def inputs_of(method: str) -> list[str]:
    """The columns a model of ``method`` reads: ["image"], ["audio"] or ["image", "audio"]."""
    return {"image only": ["image"], "audio only": ["audio"]}.get(method, ["image", "audio"])


def build_av_model(method: str, dim: int = 64, rank: int = 4, modality_dropout: float = 0.0,
                   classes: int = 10) -> MultimodalClassifier:
    """An AV-Digits classifier: encoders (:mod:`mmcourse.encoders`), the fusion of ``method``, a head.

    Every model has the same encoders (embeddings of size ``dim``) and, except late fusion
    (whose fusion already gives class scores), the same head ReLU -> Linear(dim, classes).
    """
    if method not in AV_METHODS:
        raise ValueError(f"method: expected one of {AV_METHODS}, got {method!r}")
    make = {"image": ImageEncoder, "audio": AudioEncoder}
    encoders = [make[name](out_dim=dim) for name in inputs_of(method)]
    dims = [dim] * len(encoders)
    if method == "late":
        return MultimodalClassifier(encoders, LateFusion(dims, classes), None, modality_dropout)
    kind = "early" if method.endswith("only") else method
    fusion = LowRankFusion(dims, dim, rank=rank) if kind == "low-rank" else FUSIONS[kind](dims, dim)
    return MultimodalClassifier(encoders, fusion, nn.Sequential(nn.ReLU(), nn.Linear(dim, classes)), modality_dropout)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable numbers in ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def sensor_failure_copies(clean: dict, copies: int = 8, failure_rate: float = 1 / 3,
                          generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """``copies`` corrupted copies of every clean row, where one sensor sometimes fails.

    In each copy, with probability ``failure_rate`` the image fails (pixel noise std 1.5 to 3),
    with the same probability the audio fails (-30 to -15 dB), otherwise both are usable (noise
    std 0 to 0.6, -5 to 10 dB). A model trained on these has to learn which modality to trust.
    Returns the columns of :func:`~mmcourse.data.corrupt_av` plus ``image_noise`` and ``audio_snr_db`` (N * copies,).
    """
    if not 0 <= failure_rate <= 0.5:
        raise ValueError(f"failure_rate: expected a probability in [0, 0.5], got {failure_rate!r}")
    n = len(clean["label"])
    parts = []
    for _ in range(copies):  # one copy at a time keeps the noisy waveforms (and the memory) small
        case = torch.multinomial(torch.tensor([1 - 2 * failure_rate, failure_rate, failure_rate]), n,
                                 replacement=True, generator=generator)
        image_noise = torch.where(case == 1, _uniform(1.5, 3.0, n, generator), _uniform(0.0, 0.6, n, generator))
        snr = torch.where(case == 2, _uniform(-30.0, -15.0, n, generator), _uniform(-5.0, 10.0, n, generator))
        parts.append({**corrupt_av(clean, image_noise, snr, generator=generator), "image_noise": image_noise,
                      "audio_snr_db": snr})
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def _uniform(low: float, high: float, n: int, generator: torch.Generator | None) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


@dataclass
class AVData:
    """Tensors for the AV-Digits experiments: ``train`` (sensor-failure copies), ``test`` (default
    noise), ``clean_test`` (uncorrupted, to corrupt at other levels), and the ``seed``."""

    train: dict
    test: dict
    clean_test: dict
    seed: int


def av_data(seed: int = 0, copies: int = 8, failure_rate: float = 1 / 3) -> AVData:
    """Load clean AV-Digits once; build the training copies (see :func:`sensor_failure_copies`)
    and the test set at the default noise."""
    clean = load_av_digits(image_noise=0.0, occlusion=0, audio_snr_db=math.inf, seed=seed)
    g = torch.Generator().manual_seed(seed)
    columns = ["image", "waveform", "label"]
    train = sensor_failure_copies(as_tensors(clean["train"], columns), copies, failure_rate, generator=g)
    clean_test = as_tensors(clean["test"], columns)
    test = corrupt_av(clean_test, generator=g)
    return AVData(train, test, clean_test, seed)


@torch.no_grad()
def accuracy_with(model: nn.Module, method: str, image: torch.Tensor | None, audio: torch.Tensor | None,
                  labels: torch.Tensor) -> float:
    """Test accuracy of ``model`` on the given inputs; ``None`` marks a missing modality.

    A unimodal model whose only modality is missing can only guess: its accuracy is returned as
    ``nan``.
    """
    given = {"image": image, "audio": audio}
    xs = [given[name] for name in inputs_of(method)]
    if all(x is None for x in xs):
        return float("nan")
    was_training = model.training
    model.eval()
    scores = model(*xs).scores
    model.train(was_training)
    return accuracy(scores, labels)


@dataclass
class MethodResults:
    """Trained models of several methods and what was measured on them."""

    models: dict = field(default_factory=dict)
    accuracy: dict = field(default_factory=dict)  # on the test set at the default noise
    parameters: dict = field(default_factory=dict)  # trainable numbers in the whole model
    fusion_parameters: dict = field(default_factory=dict)  # ... in the fusion module alone
    seconds: dict = field(default_factory=dict)  # training time

    def table(self) -> str:
        """The results as an aligned text table."""
        rows = [f"{'method':<11} {'accuracy':>8} {'parameters':>10} {'of which fusion':>15} {'train (s)':>9}"]
        for m in self.models:
            rows.append(f"{m:<11} {self.accuracy[m]:>8.3f} {self.parameters[m]:>10,} "
                        f"{self.fusion_parameters[m]:>15,} {self.seconds[m]:>9.1f}")
        return "\n".join(rows)


def train_av_methods(data: AVData, methods=AV_METHODS, epochs: int = 2, modality_dropout: float = 0.0,
                     progress: bool = False, into: MethodResults | None = None) -> MethodResults:
    """Train one model per method on ``data.train`` (same seed, same recipe) and test it.

    Results are added to ``into`` when given (to train the methods in several steps), else to a
    new :class:`MethodResults`, which is returned.
    """
    results = into if into is not None else MethodResults()
    for method in methods:
        seed_everything(data.seed)
        model = build_av_model(method, modality_dropout=modality_dropout)
        history = fit(model, data.train, inputs_of(method), epochs=epochs, seed=data.seed, progress=progress)
        model.cpu()
        results.models[method] = model
        results.accuracy[method] = accuracy_with(model, method, data.test["image"], data.test["audio"],
                                                 data.test["label"])
        results.parameters[method] = count_parameters(model)
        results.fusion_parameters[method] = count_parameters(model.fusion)
        results.seconds[method] = history.seconds
    return results


class RobustnessGrid:
    """The test set corrupted at every level of a grid, computed once, so that evaluating is cheap.

    ``images[s]`` holds the test images with pixel noise std ``s`` (and the usual occluder),
    ``audio[d]`` the spectrograms at ``d`` dB; ``labels`` the digits.
    """

    def __init__(self, data: AVData, image_noises=IMAGE_NOISES, audio_snrs=AUDIO_SNRS) -> None:
        g = torch.Generator().manual_seed(data.seed + 1)
        clean = data.clean_test
        self.image_noises, self.audio_snrs = tuple(image_noises), tuple(audio_snrs)
        self.images = {s: corrupt_images(clean["image"], s, DEFAULT_OCCLUSION, g) for s in self.image_noises}
        self.audio = {d: audio_features(clean["waveform"], d, g)[1] for d in self.audio_snrs}
        self.labels = clean["label"]

    def accuracy(self, model: nn.Module, method: str, image_noise: float | None, audio_snr_db: float | None) -> float:
        """Accuracy with the image at ``image_noise`` and the audio at ``audio_snr_db`` (None: missing)."""
        image = None if image_noise is None else self.images[image_noise]
        audio = None if audio_snr_db is None else self.audio[audio_snr_db]
        return accuracy_with(model, method, image, audio, self.labels)

    def curves(self, models: dict) -> dict:
        """Accuracy of every model as each modality gets noisier (the other at its default level),
        and with each modality missing. Returns {"image_noise": {method: [acc per level]},
        "audio_snr_db": {...}, "image missing": {method: acc}, "audio missing": {...}}."""
        image0 = min(self.image_noises, key=lambda s: abs(s - DEFAULT_IMAGE_NOISE))
        audio0 = min(self.audio_snrs, key=lambda d: abs(d - DEFAULT_AUDIO_SNR_DB))
        return {
            "image_noise": {m: [self.accuracy(model, m, s, audio0) for s in self.image_noises]
                            for m, model in models.items()},
            "audio_snr_db": {m: [self.accuracy(model, m, image0, d) for d in self.audio_snrs]
                             for m, model in models.items()},
            "image missing": {m: self.accuracy(model, m, None, audio0) for m, model in models.items()},
            "audio missing": {m: self.accuracy(model, m, image0, None) for m, model in models.items()},
        }


@torch.no_grad()
def mean_attention_weights(model: nn.Module, grid: RobustnessGrid) -> dict:
    """Mean attention weight of each modality as one modality gets noisier (the other at default).

    Returns {"image_noise": (levels, 2) tensor of mean (image, audio) weights per image noise
    level, "audio_snr_db": the same per audio level}.
    """
    model.eval()
    image0 = min(grid.image_noises, key=lambda s: abs(s - DEFAULT_IMAGE_NOISE))
    audio0 = min(grid.audio_snrs, key=lambda d: abs(d - DEFAULT_AUDIO_SNR_DB))
    return {
        "image_noise": torch.stack([model(grid.images[s], grid.audio[audio0]).weights.mean(0)
                                    for s in grid.image_noises]),
        "audio_snr_db": torch.stack([model(grid.images[image0], grid.audio[d]).weights.mean(0)
                                     for d in grid.audio_snrs]),
    }


def modality_dropout_experiment(data: AVData, methods=("low-rank",), p: float = 0.5, epochs: int = 2,
                                baseline: MethodResults | None = None) -> dict:
    """Train ``methods`` with and without :class:`~mmcourse.fusion.ModalityDropout` and test them with
    both modalities, without the image and without the audio.

    Returns {method: {"without": {"both", "image missing", "audio missing"}, "with": {...}}}.
    Models in ``baseline`` (trained without dropout on the same data) are reused.
    """
    test = data.test
    cases = {"both": (test["image"], test["audio"]), "image missing": (None, test["audio"]),
             "audio missing": (test["image"], None)}
    out = {}
    for method in methods:
        if baseline is not None and method in baseline.models:
            plain = baseline.models[method]
        else:
            plain = train_av_methods(data, [method], epochs).models[method]
        dropped = train_av_methods(data, [method], epochs, modality_dropout=p).models[method]
        out[method] = {
            name: {case: accuracy_with(model, method, *xs, test["label"]) for case, xs in cases.items()}
            for name, model in (("without", plain), ("with", dropped))
        }
        out[method]["models"] = {"without": plain, "with": dropped}
    return out


def time_per_batch(fusion: nn.Module, dims, batch_size: int = 64, repeats: int = 30) -> float:
    """Fastest of ``repeats`` forward-and-backward passes of ``fusion`` on a random batch, in seconds.

    Measured on the CPU with one thread, so that numbers compare across machines and do not
    depend on what else the machine is doing; the fastest run is the least disturbed one.
    """
    hs = [torch.randn(batch_size, d, requires_grad=True) for d in dims]
    times = []
    with one_thread():
        for _ in range(repeats):
            start = time.perf_counter()
            fusion(hs).z.sum().backward()
            times.append(time.perf_counter() - start)
    return min(times)


# --- Shapes & captions: does this caption describe this image? ---------------------------------

SCENE_COLUMNS = ["image", "caption_ids", "object_shape", "object_colour", "object_size", "object_position"]


def scene_descriptions(columns: dict) -> list[tuple]:
    """What a caption says about each scene: its objects' (shape, colour, size, position), sorted.

    Two scenes with the same description have captions that describe either scene equally well
    (captions list objects in any order and do not mention the small offsets).
    """
    attributes = torch.stack([columns[k] for k in SCENE_COLUMNS[2:]], dim=2)  # (N, K, 4), -1 = no object
    return [tuple(sorted(tuple(o) for o in scene.tolist() if o[0] >= 0)) for scene in attributes]


def caption_pairs(columns: dict, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Every scene twice: once with its own caption (label 1), once with another scene's (label 0).

    The wrong captions are a permutation of the right ones, redrawn where a wrong caption would
    describe the scene anyway, so every image and every caption occurs exactly once with each
    label: a model that sees only one modality cannot beat 0.5.
    Shape: ``columns`` of N scenes -> {"image": (2N, 3, 32, 32), "caption_ids": (2N, L), "label": (2N,),
    "caption_of": (2N,) index of the scene whose caption is used}.
    """
    descriptions = scene_descriptions(columns)
    n = len(descriptions)
    if len(set(descriptions)) < 2:
        raise ValueError("columns: need at least two scenes with different descriptions")
    other = torch.randperm(n, generator=generator)
    bad = [i for i in range(n) if descriptions[other[i]] == descriptions[i]]
    while bad:  # swap a bad position with a random one whenever both end up fine
        i, j = bad.pop(), int(torch.randint(n, (1,), generator=generator))
        if descriptions[other[j]] != descriptions[i] and descriptions[other[i]] != descriptions[j]:
            other[i], other[j] = other[j].clone(), other[i].clone()
        else:
            bad.append(i)
    own = torch.arange(n)
    return {
        "image": columns["image"].repeat(2, 1, 1, 1),
        "caption_ids": torch.cat([columns["caption_ids"], columns["caption_ids"][other]]),
        "label": torch.cat([torch.ones(n, dtype=torch.long), torch.zeros(n, dtype=torch.long)]),
        "caption_of": torch.cat([own, other]),
    }


CAPTION_INPUTS = {"image only": ["image"], "caption only": ["caption_ids"], "both": ["image", "caption_ids"]}


def build_caption_model(kind: str, dim: int = 64) -> MultimodalClassifier:
    """A match / no-match classifier: a small CNN, a GRU, or both with concatenation (early) fusion."""
    from ..data import VOCAB
    from ..encoders import SceneEncoder, TokenEncoder

    if kind not in CAPTION_INPUTS:
        raise ValueError(f"kind: expected one of {list(CAPTION_INPUTS)}, got {kind!r}")
    make = {"image": lambda: SceneEncoder(dim), "caption_ids": lambda: TokenEncoder(len(VOCAB), dim)}
    encoders = [make[name]() for name in CAPTION_INPUTS[kind]]
    head = nn.Sequential(nn.ReLU(), nn.Linear(dim, 2))
    return MultimodalClassifier(encoders, EarlyFusion([dim] * len(encoders), dim), head)


@dataclass
class CaptionMatching:
    """Results of :func:`caption_matching_experiment`."""

    train: dict
    test: dict
    models: dict
    accuracy: dict
    seconds: dict


def caption_matching_experiment(seed: int = 0, n_train: int = 1500, n_test: int = 500, epochs: int = 5,
                                single_epochs: int = 1, lr: float = 2e-3, kinds=tuple(CAPTION_INPUTS),
                                progress: bool = False) -> CaptionMatching:
    """Train image-only, caption-only and fused matchers on Shapes caption pairs; test accuracy of each.

    The fused model trains for ``epochs``; the unimodal ones for ``single_epochs`` only, since by
    construction (see :func:`caption_pairs`) no amount of training lets them beat 0.5.
    """
    from ..data import load_shapes

    shapes = load_shapes(n_train=n_train, n_validation=1, n_test=n_test, seed=seed)
    g = torch.Generator().manual_seed(seed)
    train = caption_pairs(as_tensors(shapes["train"], SCENE_COLUMNS), g)
    test = caption_pairs(as_tensors(shapes["test"], SCENE_COLUMNS), g)
    result = CaptionMatching(train, test, {}, {}, {})
    for kind in kinds:
        seed_everything(seed)
        model = build_caption_model(kind)
        history = fit(model, train, CAPTION_INPUTS[kind], epochs=epochs if kind == "both" else single_epochs, lr=lr,
                      seed=seed, progress=progress)
        model.cpu().eval()
        with torch.no_grad():
            scores = model(*(test[c] for c in CAPTION_INPUTS[kind])).scores
        result.models[kind] = model
        result.accuracy[kind] = accuracy(scores, test["label"])
        result.seconds[kind] = history.seconds
    return result


# --- The lesson's claims and the quantities that test them -------------------------------------

FUSION_BEATS_SINGLE = Claim("every fusion method beats the best single modality",
                            "smallest gain of a fusion method over the best single modality", ">", 0.0)
DROWNED_FUSED_HOLD = Claim("with either modality drowned, every fused model keeps a usable accuracy",
                           "worst accuracy of a fused model with one modality drowned", ">=", 0.5)
DROWNED_ALONE_FALLS = Claim("the drowned modality's own model falls to near chance",
                            "accuracy of the drowned modality's own model (the higher of the two)", "<=", 0.2)
MISSING_EARLY_LATE_HOLD = Claim("with a modality missing, early and late fusion stay close to the remaining "
                                "modality's own model", "largest shortfall of early or late fusion", "<=", 0.08)
MISSING_LOW_RANK_FALLS = Claim("with a modality missing, low-rank fusion falls far below the remaining "
                               "modality's own model", "shortfall of low-rank fusion", ">=", 0.2)
DROPOUT_GAIN = Claim("modality dropout makes low-rank fusion hold up with a modality missing",
                     "smaller gain with the image or the audio missing", ">=", 0.1)
DROPOUT_COST = Claim("modality dropout costs little with both modalities",
                     "accuracy lost with both modalities", "<=", 0.05)
ATTENTION_FOLLOWS = Claim("the weight of a modality falls to under a third of its clean value when it is drowned",
                          "larger ratio of drowned to clean weight", "<=", 1 / 3)
LOW_RANK_MATCHES_TENSOR = Claim("low-rank fusion matches tensor fusion's accuracy",
                                "accuracy gap between tensor and low-rank fusion", "<=", 0.04)
CAPTION_MATCHING_NEEDS_BOTH = Claim("together, the modalities tell matching captions from wrong ones",
                                    "accuracy of the fused matcher", ">=", 0.8)
MISSING_CASES = {"image missing": "audio only", "audio missing": "image only"}  # case -> the remaining model


def fused_methods(accuracy: dict) -> list[str]:
    """The fusion methods among the results (every method but the unimodal ones)."""
    return [m for m in accuracy if not m.endswith("only")]


def smallest_fusion_gain(accuracy: dict) -> float:
    """Worst fusion method's accuracy minus the best unimodal model's."""
    return min(accuracy[m] for m in fused_methods(accuracy)) - max(accuracy["image only"], accuracy["audio only"])


def drowned_accuracy(curves: dict, method: str) -> float:
    """Accuracy of ``method`` at the noisiest level of the modality that hurts it more."""
    return min(curves["image_noise"][method][-1], curves["audio_snr_db"][method][-1])


def missing_shortfall(curves: dict, method: str) -> float:
    """How far ``method`` falls below the remaining modality's own model, with a modality missing (the worse case)."""
    return max(curves[case][alone] - curves[case][method] for case, alone in MISSING_CASES.items())


def dropout_gain_and_cost(moddrop: dict) -> tuple[float, float]:
    """Of :func:`modality_dropout_experiment`'s results for one method: the smaller gain with a modality
    missing, and the accuracy lost with both modalities."""
    gain = min(moddrop["with"][case] - moddrop["without"][case] for case in MISSING_CASES)
    return gain, moddrop["without"]["both"] - moddrop["with"]["both"]


def drowned_weight_ratio(weights: dict) -> float:
    """Of :func:`mean_attention_weights`: the larger ratio of a drowned modality's weight to its clean weight."""
    image, audio = weights["image_noise"][:, 0], weights["audio_snr_db"][:, 1]
    return max(float(image[-1] / image[0]), float(audio[-1] / audio[0]))


def measure_claims(seed: int) -> dict[Claim, float]:
    """Run every experiment of lesson 01 for ``seed``; return the quantity each claim tests."""
    data = av_data(seed)
    results = train_av_methods(data)
    grid = RobustnessGrid(data)
    curves = grid.curves(results.models)
    fused = fused_methods(results.accuracy)
    gain, cost = dropout_gain_and_cost(modality_dropout_experiment(data, baseline=results)["low-rank"])
    matching = caption_matching_experiment(seed)
    return {
        FUSION_BEATS_SINGLE: smallest_fusion_gain(results.accuracy),
        DROWNED_FUSED_HOLD: min(drowned_accuracy(curves, m) for m in fused),
        DROWNED_ALONE_FALLS: max(curves["image_noise"]["image only"][-1], curves["audio_snr_db"]["audio only"][-1]),
        MISSING_EARLY_LATE_HOLD: max(missing_shortfall(curves, "early"), missing_shortfall(curves, "late")),
        MISSING_LOW_RANK_FALLS: missing_shortfall(curves, "low-rank"),
        DROPOUT_GAIN: gain,
        DROPOUT_COST: cost,
        ATTENTION_FOLLOWS: drowned_weight_ratio(mean_attention_weights(results.models["attention"], grid)),
        LOW_RANK_MATCHES_TENSOR: abs(results.accuracy["tensor"] - results.accuracy["low-rank"]),
        CAPTION_MATCHING_NEEDS_BOTH: matching.accuracy["both"],
    }
