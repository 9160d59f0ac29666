"""Experiments of lesson 04 (alignment without pairs): the runs and measurements behind its claims.

Each claim is a :class:`~mmcourse.claims.Claim` constant at the end, with its threshold; the lesson
checks it on its seed-0 run, :func:`measure_claims` computes every claimed quantity for any seed
(``tests/test_alignment_experiments.py`` runs another seed, ``benchmarks/claims.py`` seeds 0-9), and
:func:`speech_to_image_retrieval` gives lesson 07 this lesson's rows of the running comparison.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..alignment import (
    adversarial_alignment,
    clustered_points,
    cosine_scores,
    csls_scores,
    hubness,
    k_occurrence,
    mean_cosine_criterion,
    normalize_embeddings,
    precision_at_1,
    procrustes,
    random_rotation,
    refine,
    regression_map,
)
from ..claims import Claim
from ..data import as_tensors, load_av_digits
from ..device import seed_everything
from ..encoders import AudioEncoder, ImageEncoder
from ..metrics import ComparisonEntry, Retrieval, chance_recall_at_k, class_retrieval, recall_at_k
from ..train import fit

DIM, POINTS, NOISE = 16, 1500, 0.1  # the synthetic spaces: 1,500 points in 16 dimensions
MAX_ANGLE = 1.5  # radians: the planted rotation turns each plane by at most this (86 degrees)
WARPS = (0.0, 0.5, 1.0, 1.5, 2.0)  # how far the target is from a rotated copy of the source
HUB_WARP = 1.0  # the warp at which section 5 compares nearest neighbours with CSLS


# --- Synthetic spaces ------------------------------------------------------------------------------


class Spaces(NamedTuple):
    """Two synthetic embedding spaces: row i of ``source`` and row ``truth[i]`` of ``target`` are one
    item, ``target`` ~ a rotated copy of ``source``. Both (n, d), centred, rows of unit length."""

    source: torch.Tensor
    target: torch.Tensor
    rotation: torch.Tensor  # (d, d) the planted rotation
    truth: torch.Tensor  # (n,) the partner of each source row (here the same row)
    cluster: torch.Tensor  # (n,) each item's top-level cluster


def warp(z: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """A smooth non-linear distortion z + strength * tanh(z A) B, with random A, B (d, d) / sqrt(d):
    0 leaves the points alone; at 1 and more, near points stay near but the space is bent."""
    d = z.shape[1]
    a, b = (torch.randn(d, d, generator=generator) / d**0.5 for _ in range(2))
    return z + strength * torch.tanh(z @ a) @ b


def synthetic_spaces(seed: int = 0, warp_strength: float = 0.0, max_angle: float = MAX_ANGLE, n: int = POINTS,
                     d: int = DIM, noise: float = NOISE) -> Spaces:
    """Items with structure (:func:`~mmcourse.alignment.clustered_points`), seen in two spaces: the
    source sees item z, the target sees ``warp(z)`` turned by a random rotation whose largest angle
    is ``max_angle``; each adds its own noise (std ``noise``). The items, the warp, the rotation and
    the noise depend on ``seed`` only, so spaces that differ in ``warp_strength`` or ``max_angle``
    share everything else."""
    z, cluster = clustered_points(n, d, generator=torch.Generator().manual_seed(seed))
    rotation = random_rotation(d, max_angle, torch.Generator().manual_seed(seed + 1))
    bent = warp(z, warp_strength, torch.Generator().manual_seed(seed + 2))
    g = torch.Generator().manual_seed(seed + 3)
    source = normalize_embeddings(z + noise * torch.randn(n, d, generator=g))
    target = normalize_embeddings((bent + noise * torch.randn(n, d, generator=g)) @ rotation)
    return Spaces(source, target, rotation, torch.arange(n), cluster)


def csls_precision(source: torch.Tensor, target: torch.Tensor, w: torch.Tensor, truth: torch.Tensor) -> float:
    """Precision@1 of the translations that the map ``w`` induces, read off with CSLS (k = 10)."""
    return precision_at_1(csls_scores(source @ w, target), truth)


# --- Section 2: Procrustes with pairs --------------------------------------------------------------


def procrustes_recovery(seed: int = 0, pairs=(4, 8, 12, 16, 24, 32, 64, 128, 512), noises=(0.0, 0.05, 0.1, 0.2),
                        draws: int = 5) -> dict:
    """How many pairs Procrustes needs: the planted rotation's relative error ||W - Q||_F / ||Q||_F,
    averaged over ``draws`` random sets of pairs, for each number of pairs and each noise level.

    Source: :func:`~mmcourse.alignment.clustered_points`, normalised; target = source @ Q + noise
    (std ``noise`` per coordinate, against coordinates of about 0.25). Returns ``pairs``, ``noises``,
    ``error`` {noise: [error per number of pairs]}, ``dim`` and ``exact`` (the error with every
    noiseless pair).
    """
    z, _ = clustered_points(POINTS, DIM, generator=torch.Generator().manual_seed(seed))
    source = normalize_embeddings(z.double())  # float64, so that "exact" means exact
    rotation = random_rotation(DIM, generator=torch.Generator().manual_seed(seed + 1)).double()
    g = torch.Generator().manual_seed(seed + 4)
    error = {}
    for noise in noises:
        target = source @ rotation + noise * torch.randn(source.shape, generator=g, dtype=torch.float64)
        error[noise] = [sum((procrustes(source[i], target[i]) - rotation).norm().item() / DIM**0.5
                            for i in (torch.randperm(POINTS, generator=g)[:m] for _ in range(draws))) / draws
                        for m in pairs]
    exact = (procrustes(source, source @ rotation) - rotation).norm().item() / DIM**0.5
    return {"pairs": list(pairs), "noises": list(noises), "error": error, "dim": DIM, "exact": exact}


# --- Section 3: without pairs ----------------------------------------------------------------------


def unsupervised_alignment(seed: int = 0, steps: int = 600, progress: bool = False) -> dict:
    """The MUSE recipe on :func:`synthetic_spaces`: adversarial training from the identity, then
    refinement (5 rounds of Procrustes on mutual CSLS neighbours). Precision@1 over all source
    points, read off with CSLS, against the truth; chance is 1 / n.

    A second run trains alongside (one batched computation), identical but without the
    orthogonalisation step (beta = 0), for :func:`orthogonalisation_effect`.

    Returns ``spaces``, the ``result`` of :func:`~mmcourse.alignment.adversarial_alignment` (run 0:
    the recipe, run 1: without orthogonalisation; history every 30 steps), the maps
    ``adversarial``, ``refined`` and ``procrustes`` (all true pairs: the best any orthogonal map
    can do), their ``precision`` and ``criterion`` ({name: value}), and ``chance``.
    """
    spaces = synthetic_spaces(seed)
    result = adversarial_alignment(spaces.source, spaces.target, truth=spaces.truth, runs=2, steps=steps,
                                   beta=torch.tensor([0.01, 0.0]), record_every=30, eval_rows=300, seed=seed,
                                   progress=progress)
    maps = {"adversarial": result.maps[0], "refined": refine(spaces.source, spaces.target, result.maps[0]),
            "procrustes": procrustes(spaces.source, spaces.target)}
    return {"spaces": spaces, "result": result, "maps": maps,
            "precision": {k: csls_precision(spaces.source, spaces.target, w, spaces.truth) for k, w in maps.items()},
            "criterion": {k: mean_cosine_criterion(spaces.source @ w, spaces.target) for k, w in maps.items()},
            "chance": 1 / len(spaces.target)}


FAILURE_RUNS = ("recipe", "no orthogonalisation")


def orthogonalisation_effect(unsupervised: dict) -> dict:
    """Of :func:`unsupervised_alignment`'s two runs (the recipe, and the same without orthogonalisation):
    per name of :data:`FAILURE_RUNS`, ``singular_values`` (d,) of the adversarial map, their largest
    distance from 1 (``deviation``) and ``adversarial`` precision@1."""
    spaces = unsupervised["spaces"]
    out = {}
    for name, w in zip(FAILURE_RUNS, unsupervised["result"].maps):
        values = torch.linalg.svdvals(w)
        out[name] = {"singular_values": values, "deviation": (values - 1).abs().max().item(),
                     "adversarial": csls_precision(spaces.source, spaces.target, w, spaces.truth)}
    return out


# --- Section 4: where it breaks --------------------------------------------------------------------


def non_isometry(seed: int = 0, warps=WARPS, steps: int = 400, progress: bool = False) -> dict:
    """The recipe at every warp strength at once (one batched adversarial run per warp, all from the
    identity, then refinement): how precision@1 and the unsupervised criterion change as the target
    stops being a rotated copy of the source.

    Returns ``warps``, per warp lists ``precision`` and ``criterion`` (refined map), ``ceiling``
    and ``ceiling_criterion`` (Procrustes on all true pairs), the ``spaces`` and refined ``maps``.
    """
    spaces = [synthetic_spaces(seed, warp_strength=s) for s in warps]
    source = spaces[0].source
    result = adversarial_alignment(source, torch.stack([s.target for s in spaces]), steps=steps, seed=seed,
                                   record_every=steps, eval_rows=300, progress=progress)
    maps = [refine(source, s.target, w) for s, w in zip(spaces, result.maps)]
    best = [procrustes(source, s.target) for s in spaces]
    return {"warps": list(warps), "spaces": spaces, "maps": maps,
            "precision": [csls_precision(source, s.target, w, s.truth) for s, w in zip(spaces, maps)],
            "criterion": [mean_cosine_criterion(source @ w, s.target) for s, w in zip(spaces, maps)],
            "ceiling": [csls_precision(source, s.target, w, s.truth) for s, w in zip(spaces, best)],
            "ceiling_criterion": [mean_cosine_criterion(source @ w, s.target) for s, w in zip(spaces, best)]}


def mirror_symmetric(seed: int = 0, n: int = 1000) -> dict:
    """A space that is its own mirror image: half its points are the reflection of the other half
    across a random hyperplane (a Householder reflection H). Then the true map Q and the wrong map
    H Q give the very same mapped cloud, so no unsupervised criterion can prefer one.

    Returns ``criterion`` and ``precision`` for ``{"true": Q, "mirrored": H Q}``, and ``chance``.
    """
    z, _ = clustered_points(n // 2, DIM, generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed + 5)
    v = F.normalize(torch.randn(DIM, generator=g), dim=0)
    mirror = torch.eye(DIM) - 2 * torch.outer(v, v)
    source = normalize_embeddings(torch.cat([z, z @ mirror]))
    rotation = random_rotation(DIM, generator=g)
    target = source @ rotation
    truth = torch.arange(len(source))
    maps = {"true": rotation, "mirrored": mirror @ rotation}
    return {"criterion": {k: mean_cosine_criterion(source @ w, target) for k, w in maps.items()},
            "precision": {k: csls_precision(source, target, w, truth) for k, w in maps.items()},
            "chance": 1 / len(target)}


# --- Section 5: hubness and CSLS -------------------------------------------------------------------


def hubness_and_csls(seed: int = 0, warp_strength: float = HUB_WARP, k: int = 10) -> dict:
    """Retrieval with plain cosine nearest neighbours against CSLS, on warped spaces (where precision
    is far from perfect) aligned with the best orthogonal map (Procrustes on all true pairs).

    Returns, for ``"cosine"`` and ``"csls"``: ``precision`` (P@1), ``hubness``
    (:class:`~mmcourse.alignment.Hubness`) and ``occurrence`` (the k-occurrence of every target).
    """
    spaces = synthetic_spaces(seed, warp_strength=warp_strength)
    mapped = spaces.source @ procrustes(spaces.source, spaces.target)
    out = {}
    for name, score in (("cosine", cosine_scores), ("csls", csls_scores)):
        scores = score(mapped, spaces.target)
        out[name] = {"precision": precision_at_1(scores, spaces.truth), "hubness": hubness(scores, k),
                     "occurrence": k_occurrence(scores, k)}
    return out


# --- Section 6: across modalities ------------------------------------------------------------------


def train_unimodal_encoders(seed: int = 0, dim: int = 32, epochs: int = 10, data=None, progress: bool = False) -> dict:
    """An image classifier and an audio classifier for AV-Digits, each trained on its own modality and
    its own digit labels (an encoder, then Linear(dim, 10)); no image ever meets a sound.

    Returns the embeddings (the encoders' outputs) ``image`` and ``audio`` as {"train": (N, dim),
    "test": (M, dim)}, the ``labels`` {"train", "test"}, each classifier's test ``accuracy`` and
    the training ``seconds``.
    """
    data = load_av_digits(seed=seed) if data is None else data
    splits = {s: as_tensors(data[s], ["image", "audio", "label"]) for s in ("train", "test")}
    out = {"labels": {s: splits[s]["label"] for s in splits}, "accuracy": {}, "seconds": 0.0}
    for name, make in (("image", ImageEncoder), ("audio", AudioEncoder)):
        seed_everything(seed)
        encoder = make(out_dim=dim)
        model = nn.Sequential(encoder, nn.Linear(dim, 10))
        history = fit(model, splits["train"], [name], epochs=epochs, lr=3e-3, seed=seed, progress=progress,
                      description=f"{name} classifier")
        model.cpu().eval()
        with torch.no_grad():
            predicted = model(splits["test"][name]).argmax(1)
            out["accuracy"][name] = (predicted == splits["test"]["label"]).float().mean().item()
            out[name] = {s: encoder(splits[s][name]) for s in splits}
        out["seconds"] += history.seconds
    return out


def ten_pairs(labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """One training row per digit, drawn at random: the ten pairs of alignment (b). Shape: (N,) -> (10,)."""
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.nonzero(labels == c).flatten()[torch.randint(int((labels == c).sum()), (1,), generator=g)]
                        for c in range(10)]).flatten()


def centroid_geometry(embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cosine similarities between the ten digits' mean embeddings: a (10, 10) matrix that no rotation
    of the space changes, so two spaces with the same shape have the same matrix."""
    means = torch.stack([embeddings[labels == c].mean(0) for c in range(10)])
    return F.normalize(means, dim=1) @ F.normalize(means, dim=1).T


ALIGNMENTS = ("all pairs", "10 pairs", "no pairs")


def cross_modal_alignment(seed: int = 0, encoders: dict | None = None, steps: int = 400, draws: int = 10,
                          progress: bool = False) -> dict:
    """Map spoken digits into the image space (both spaces centred with training statistics, rows
    scaled to unit length) by (a) Procrustes on every training pair, (b) Procrustes on ten pairs
    (:func:`ten_pairs`; the results are averaged over ``draws`` random choices of the ten, since one
    choice can be lucky or not), (c) the unsupervised recipe (adversarial + refinement, no pairs).

    Returns, for each name of :data:`ALIGNMENTS`: ``retrieval`` (speech-to-image
    :class:`~mmcourse.metrics.Retrieval` on the test split), ``criterion`` (on the training split);
    ``geometry`` ({"image", "audio"}: :func:`centroid_geometry`) and ``geometry_correlation``
    (the correlation of their off-diagonal entries), ``maps`` ({name: [maps]}), ``pairs`` (the
    draws of ten training rows) and ``encoders``.
    """
    encoders = train_unimodal_encoders(seed, progress=progress) if encoders is None else encoders
    labels = encoders["labels"]
    mean_audio, mean_image = encoders["audio"]["train"].mean(0), encoders["image"]["train"].mean(0)
    audio = {s: F.normalize(a - mean_audio, dim=1) for s, a in encoders["audio"].items()}
    image = {s: F.normalize(a - mean_image, dim=1) for s, a in encoders["image"].items()}
    adversarial = adversarial_alignment(audio["train"], image["train"], steps=steps, seed=seed, progress=progress)
    picks = [ten_pairs(labels["train"], 1000 * seed + draw) for draw in range(draws)]
    maps = {"all pairs": [procrustes(audio["train"], image["train"])],
            "10 pairs": [procrustes(audio["train"][pick], image["train"][pick]) for pick in picks],
            "no pairs": [refine(audio["train"], image["train"], adversarial.maps[0])]}
    out = {}
    for name, ws in maps.items():  # the mean over the maps (several only for ten pairs)
        found = [class_retrieval(audio["test"] @ w, image["test"], labels["test"], labels["test"]) for w in ws]
        out[name] = {"retrieval": Retrieval(*(sum(r[i] for r in found) / len(found) for i in range(4))),
                     "criterion": sum(mean_cosine_criterion(audio["train"] @ w, image["train"]) for w in ws) / len(ws)}
    geometry = {"image": centroid_geometry(image["train"], labels["train"]),
                "audio": centroid_geometry(audio["train"], labels["train"])}
    off = ~torch.eye(10, dtype=torch.bool)
    out.update(maps=maps, encoders=encoders, geometry=geometry, pairs=picks,
               geometry_correlation=torch.corrcoef(torch.stack([geometry["image"][off],
                                                                geometry["audio"][off]]))[0, 1].item())
    return out


def speech_to_image_retrieval(seed: int = 0, fast: bool = True) -> list[ComparisonEntry]:
    """This lesson's rows of the course's running comparison (lesson 07 shows the whole table):
    speech-to-image retrieval on AV-Digits' test split after Procrustes on all pairs, Procrustes on
    ten pairs, and unsupervised alignment. The unimodal encoders are trained with their own
    modality's digit labels (``labels=True``). ``fast`` trains them for 6 epochs instead of 10 and
    the adversarial map for 300 steps instead of 400 (a few seconds in all)."""
    epochs, steps = (6, 300) if fast else (10, 400)
    result = cross_modal_alignment(seed, train_unimodal_encoders(seed, epochs=epochs), steps=steps)
    note = "smaller run than in its lesson" if fast else ""
    return [ComparisonEntry(f"Procrustes, {name}" if name != "no pairs" else "unsupervised alignment (MUSE)", "04",
                            {"all pairs": "all", "10 pairs": "10", "no pairs": "none"}[name], True,
                            result[name]["retrieval"], note)
            for name in ALIGNMENTS]


# --- Section 7: image to caption, with an adversarial term ----------------------------------------


def bag_of_words(caption_ids: torch.Tensor, vocabulary_size: int, pad_id: int = 0) -> torch.Tensor:
    """Word counts of each caption, padding excluded. Shape: (N, L) int -> (N, V) float."""
    counts = torch.zeros(len(caption_ids), vocabulary_size)
    counts.scatter_add_(1, caption_ids, torch.ones(caption_ids.shape))
    counts[:, pad_id] = 0
    return counts


def image_features(images: torch.Tensor) -> torch.Tensor:
    """Mean colour of each 4x4 block of a Shapes scene: (N, 3, 32, 32) -> (N, 192)."""
    return F.avg_pool2d(images, 4).flatten(1)


CAPTION_WEIGHTS = (0.0, 0.1, 1.0)  # adversarial weights of section 7; 0 is plain regression


def image_to_caption(seed: int = 0, n_train: int = 1000, n_test: int = 1000, weights=CAPTION_WEIGHTS,
                     steps: int = 300, k: int = 10, progress: bool = False) -> dict:
    """Map Shapes image features (:func:`image_features`, standardised) to caption bag-of-words
    vectors (centred) by regression with an adversarial term of each weight in ``weights``
    (:func:`~mmcourse.alignment.regression_map`; weight 0 is plain regression), then retrieve test
    captions for test images by cosine. A caption is relevant when it is word for word the image's
    own caption.

    Returns, for each weight: ``recall`` {1, 5, 10: R@K} and ``hubness``; and ``chance`` {1, 5, 10},
    ``weights``, ``captions`` (test) and the fitted ``maps``.
    """
    from ..data import VOCAB, load_shapes

    shapes = load_shapes(n_train=n_train, n_validation=1, n_test=n_test, seed=seed)
    train, test = (as_tensors(shapes[s], ["image", "caption_ids"]) for s in ("train", "test"))
    x_train, x_test = image_features(train["image"]), image_features(test["image"])
    mean, std = x_train.mean(0), x_train.std(0).clamp(min=1e-6)
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    y_train, y_test = (bag_of_words(s["caption_ids"], len(VOCAB.itos), VOCAB.pad_id) for s in (train, test))
    y_mean = y_train.mean(0)
    y_train, y_test = y_train - y_mean, y_test - y_mean
    captions = list(shapes["test"]["caption"])
    relevant = torch.tensor([[a == b for b in captions] for a in captions])
    out = {"chance": {r: chance_recall_at_k(relevant, r) for r in (1, 5, 10)}, "weights": list(weights),
           "captions": captions, "maps": {}}
    for weight in weights:
        fitted = regression_map(x_train, y_train, weight, steps=steps, seed=seed, progress=progress)
        with torch.no_grad():
            scores = cosine_scores(fitted.map(x_test), y_test)
        out["maps"][weight] = fitted.map
        out[weight] = {"recall": {r: recall_at_k(scores, relevant, r) for r in (1, 5, 10)},
                       "hubness": hubness(scores, k)}
    return out


# --- The lesson's claims and the quantities that test them -------------------------------------

ADVERSARIAL_ABOVE_CHANCE = Claim("adversarial training alone finds hundreds of times more partners than chance",
                                 "precision@1 of the adversarial map (chance 1/1500)", ">=", 0.15)
REFINEMENT_RECOVERS = Claim("refinement recovers the planted rotation without a single pair",
                            "precision@1 after refinement", ">=", 0.95)
PRECISION_FALLS_WITH_WARP = Claim("precision@1 falls as the target stops being a rotated copy",
                                  "precision@1 at warp 0 minus at warp 2", ">=", 0.1)
CRITERION_TRACKS_PRECISION = Claim("the unsupervised criterion falls with it",
                                   "rank correlation of criterion and precision@1 over the five warps", ">=", 0.9)
ORTHOGONALISATION_KEEPS_SHAPE = Claim("without orthogonalisation the map drifts away from orthogonal",
                                      "largest |singular value - 1| without it minus with it", ">=", 0.15)
CSLS_RAISES_PRECISION = Claim("CSLS finds more partners than plain nearest neighbours",
                              "gain in precision@1", ">=", 0.02)
CSLS_LOWERS_HUBNESS = Claim("CSLS lowers hubness", "drop in the skewness of the 10-occurrence", ">", 0.0)
ALL_PAIRS_RETRIEVE = Claim("with all pairs, an orthogonal map between separately trained encoders retrieves the "
                           "spoken digit far above chance", "Recall@1 over its chance level (ratio)", ">=", 3.0)
TEN_PAIRS_RETRIEVE = Claim("ten pairs, one per digit, already retrieve above chance",
                           "Recall@5 minus its chance level (mean over 10 choices of the ten pairs)", ">=", 0.05)
NO_PAIRS_AT_CHANCE = Claim("without pairs, the recipe does no better than chance", "Recall@5 minus its chance level",
                           "<=", 0.1)
SPACES_NOT_ISOMETRIC = Claim("even the best orthogonal map leaves the two modalities far from overlapping",
                             "criterion of Procrustes on all pairs (a rotated copy gives 0.999)", "<=", 0.95)
CRITERION_CANNOT_TELL = Claim("the criterion cannot tell the wrong unsupervised map from the one fitted on all pairs",
                              "criterion of the unsupervised map minus that of Procrustes on all pairs", ">=", -0.03)
GEOMETRIES_DIFFER = Claim("the digits are arranged differently in the two spaces",
                          "correlation of the two digit-centroid geometries", "<=", 0.7)
ADVERSARIAL_TERM_NO_HELP = Claim("the adversarial term does not raise image-to-caption recall at either weight",
                                 "the larger change in Recall@5 (adversarial weights 0.1 and 1)", "<=", 0.01)


def rank_correlation(a, b) -> float:
    """Spearman's rank correlation of two sequences of distinct numbers: the correlation of their ranks."""
    ranks = [torch.as_tensor(v, dtype=torch.float64).argsort().argsort().double() for v in (a, b)]
    return torch.corrcoef(torch.stack(ranks))[0, 1].item()


def precision_drop_and_rank(isometry: dict) -> tuple[float, float]:
    """Of :func:`non_isometry`: precision@1 lost from the first to the last warp, and the rank correlation
    of the criterion with precision@1 over the warps (1: the criterion orders the warps as P@1 does)."""
    return isometry["precision"][0] - isometry["precision"][-1], rank_correlation(isometry["criterion"],
                                                                                  isometry["precision"])


def orthogonality_gap(effect: dict) -> float:
    """Of :func:`orthogonalisation_effect`: the largest |singular value - 1| of the map without
    orthogonalisation minus that of the recipe's map."""
    return effect["no orthogonalisation"]["deviation"] - effect["recipe"]["deviation"]


def caption_gains(captions: dict) -> dict[float, float]:
    """Of :func:`image_to_caption`: the change in Recall@5 that each adversarial weight brings, {weight: change}."""
    return {w: captions[w]["recall"][5] - captions[0.0]["recall"][5] for w in captions["weights"] if w > 0}


def measure_claims(seed: int) -> dict[Claim, float]:
    """Run every experiment of lesson 04 for ``seed``; return the quantity each claim tests."""
    unsupervised = unsupervised_alignment(seed)
    drop, rank = precision_drop_and_rank(non_isometry(seed))
    failures = orthogonalisation_effect(unsupervised)
    hubs = hubness_and_csls(seed)
    cross = cross_modal_alignment(seed)
    captions = image_to_caption(seed)
    retrieval = {name: cross[name]["retrieval"] for name in ALIGNMENTS}
    return {
        ADVERSARIAL_ABOVE_CHANCE: unsupervised["precision"]["adversarial"],
        REFINEMENT_RECOVERS: unsupervised["precision"]["refined"],
        PRECISION_FALLS_WITH_WARP: drop,
        CRITERION_TRACKS_PRECISION: rank,
        ORTHOGONALISATION_KEEPS_SHAPE: orthogonality_gap(failures),
        CSLS_RAISES_PRECISION: hubs["csls"]["precision"] - hubs["cosine"]["precision"],
        CSLS_LOWERS_HUBNESS: hubs["cosine"]["hubness"].skewness - hubs["csls"]["hubness"].skewness,
        ALL_PAIRS_RETRIEVE: retrieval["all pairs"].recall_at_1 / retrieval["all pairs"].chance_at_1,
        TEN_PAIRS_RETRIEVE: retrieval["10 pairs"].recall_at_5 - retrieval["10 pairs"].chance_at_5,
        NO_PAIRS_AT_CHANCE: retrieval["no pairs"].recall_at_5 - retrieval["no pairs"].chance_at_5,
        SPACES_NOT_ISOMETRIC: cross["all pairs"]["criterion"],
        CRITERION_CANNOT_TELL: cross["no pairs"]["criterion"] - cross["all pairs"]["criterion"],
        GEOMETRIES_DIFFER: cross["geometry_correlation"],
        ADVERSARIAL_TERM_NO_HELP: max(caption_gains(captions).values()),
    }
