"""The experiments behind lesson 02's claims (CCA), as plain functions of a seed.

Each returns a dict of results (tensors and numbers, plus what the lesson draws). The claims are
:class:`~mmcourse.claims.Claim` constants at the end, with their thresholds; the lesson checks them
on its seed-0 run and :func:`measure_claims` computes their quantities for any seed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..cca import CCA, DeepCCA, cca_loss
from ..claims import Claim
from ..data import TwoViews, as_tensors, load_av_digits, make_two_views
from ..device import one_thread, seed_everything
from ..encoders import MLPEncoder
from ..metrics import ComparisonEntry, chance_recall_at_k, comparison_entry, hits_at_k, recall_at_k

TRUE_CORRELATIONS = (0.9, 0.7, 0.4)


def recover_correlations(seed: int = 0, n: int = 2000) -> dict:
    """Linear CCA on linear two views (x in R^10, y in R^8) with canonical correlations 0.9, 0.7, 0.4.

    Returns ``true``, ``train`` (the fitted ``canonical_correlations_``) and ``held_out``
    (correlations of the fitted pairs on n new samples), each (3,); ``standard_error`` (3,), the
    large-sample standard error (1 - rho^2) / sqrt(n) of an estimated correlation rho; and
    ``worst``, the largest error of ``train`` or ``held_out`` in standard errors.
    """
    views = make_two_views(n=n, dim_x=10, dim_y=8, correlations=TRUE_CORRELATIONS, n_test=n, seed=seed)
    cca = CCA(n_components=3).fit(views.x, views.y)
    held_out = cca.correlations(views.x_test, views.y_test)
    standard_error = (1 - views.correlations**2) / n**0.5
    errors = torch.stack([cca.canonical_correlations_ - views.correlations, held_out - views.correlations])
    return {"true": views.correlations, "train": cca.canonical_correlations_, "held_out": held_out,
            "standard_error": standard_error, "worst": (errors.abs() / standard_error).max().item()}


def _median_seconds(fns, repeats: int) -> list[float]:
    """Median wall time of each function over ``repeats`` rounds; within a round they run in turn, so
    that a change in the machine's load affects all of them alike."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, spent in zip(fns, times):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return [statistics.median(spent) for spent in times]


def against_sklearn(seed: int = 0, n: int = 1000, dim: int = 40, repeats: int = 9) -> dict:
    """Our closed-form CCA against scikit-learn's iterative one (NIPALS) on the same data.

    Data: linear two views, both of dimension ``dim``, correlations 0.9, 0.7, 0.4. The two are
    compared by the correlations of their projected training data (their weights differ in sign
    and scale). Times are medians of ``repeats`` fits of each, taken in turn, both on one thread.
    Returns ``ours`` and ``sklearn`` (3,), ``difference`` (largest absolute), ``seconds_ours``,
    ``seconds_sklearn`` and ``speedup`` (their time / ours).
    """
    from sklearn.cross_decomposition import CCA as SklearnCCA

    views = make_two_views(n=n, dim_x=dim, dim_y=dim, correlations=TRUE_CORRELATIONS, seed=seed)
    x, y = views.x.numpy(), views.y.numpy()
    ours = CCA(n_components=3).fit(x, y).correlations(x, y)
    theirs_model = SklearnCCA(n_components=3, max_iter=1000).fit(x, y)
    u, v = (torch.from_numpy(a) for a in theirs_model.transform(x, y))
    theirs = torch.stack([torch.corrcoef(torch.stack([u[:, i], v[:, i]]))[0, 1] for i in range(3)])
    with one_thread():
        seconds_ours, seconds_sklearn = _median_seconds(
            [lambda: CCA(n_components=3).fit(x, y), lambda: SklearnCCA(n_components=3, max_iter=1000).fit(x, y)],
            repeats)
    return {"ours": ours, "sklearn": theirs, "difference": (ours - theirs).abs().max().item(),
            "seconds_ours": seconds_ours, "seconds_sklearn": seconds_sklearn,
            "speedup": seconds_sklearn / seconds_ours}


def many_features(n: int = 100, dim: int = 60, noise: float = 0.5, n_test: int = 2000, seed: int = 0) -> TwoViews:
    """Few samples, many features: linear two views (10 coordinates each, correlations 0.9, 0.7, 0.4)
    spread over ``dim`` features by a random linear map, plus independent noise of std ``noise``.

    Like real measurements (pixels, spectrogram cells), most of the variance lies in a few
    directions that carry the signal. ``correlations`` are those of the shared latent; the noise
    lowers the population canonical correlations a little (to about 0.85, 0.7, 0.45 at noise 0.5).
    """
    views = make_two_views(n=n, dim_x=10, dim_y=10, correlations=TRUE_CORRELATIONS, n_test=n_test, seed=seed)
    g = torch.Generator().manual_seed(10_000 + seed)
    lift_x, lift_y = (torch.randn(10, dim, generator=g, dtype=views.x.dtype) / 10**0.5 for _ in range(2))

    def spread(a: torch.Tensor, lift: torch.Tensor) -> torch.Tensor:
        return a @ lift + noise * torch.randn(len(a), dim, generator=g, dtype=a.dtype)

    return TwoViews(spread(views.x, lift_x), spread(views.y, lift_y), spread(views.x_test, lift_x),
                    spread(views.y_test, lift_y), views.correlations)


def overfitting(seed: int = 0, reg: float = 0.3) -> dict:
    """Plain and ridge CCA on :func:`many_features` (100 samples, 60 + 60 features).

    Returns the correlations of the 3 canonical pairs on the training and held-out data:
    ``plain_train``, ``plain_held_out``, ``ridge_train``, ``ridge_held_out``, and ``reg``.
    """
    views = many_features(seed=seed)
    plain = CCA(n_components=3).fit(views.x, views.y)
    ridge = CCA(n_components=3, reg=reg).fit(views.x, views.y)
    return {"plain_train": plain.correlations(views.x, views.y),
            "plain_held_out": plain.correlations(views.x_test, views.y_test),
            "ridge_train": ridge.correlations(views.x, views.y),
            "ridge_held_out": ridge.correlations(views.x_test, views.y_test), "reg": reg}


# the grid lesson 02's experiment chooses from: no ridge, then 0.01 to 10,000 in steps of about x3
RIDGES = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)
FIXED_RIDGE = 0.3  # section 4's ridge, chosen by eye for the views of many_features as they are
SCALE = 100.0  # the experiment's second views: every feature 100 times larger (lengths in cm instead of m)


def pick_ridge_by_validation(x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor,
                             ridges=RIDGES) -> float:
    """The ridge among ``ridges`` whose CCA, fitted on the training pairs x (n, p), y (n, q), gives the largest
    first canonical correlation on the validation pairs x_val (m, p), y_val (m, q): lesson 02's experiment,
    done right (the reference attempt of :func:`ridge_by_validation`)."""
    return max(ridges, key=lambda r: CCA(1, reg=r).fit(x, y).correlations(x_val, y_val)[0].item())


def _as_ridge(chosen) -> float:
    """``chosen`` as one of :data:`RIDGES`; ValueError otherwise (the learner's function returned something else)."""
    try:
        value = float(chosen)
    except (TypeError, ValueError, RuntimeError):
        value = None
    if value not in RIDGES:
        raise ValueError(f"ridge: expected one of the candidate ridges {RIDGES} (the ridges argument), "
                         f"got {chosen!r:.60}")
    return value


def _choose_and_test(pick: Callable, views: TwoViews, scale: float, n_validation: int) -> tuple[float, dict]:
    """Run ``pick`` on the training and validation pairs of ``views`` (every feature times ``scale``); return its
    ridge and the first test correlation of CCA fitted on the training pairs with each ridge of :data:`RIDGES`."""
    x, y, rest_x, rest_y = (a * scale for a in (views.x, views.y, views.x_test, views.y_test))
    x_val, y_val = rest_x[:n_validation], rest_y[:n_validation]
    x_test, y_test = rest_x[n_validation:], rest_y[n_validation:]
    ridge = _as_ridge(pick(x.clone(), y.clone(), x_val.clone(), y_val.clone(), RIDGES))
    return ridge, {r: CCA(1, reg=r).fit(x, y).correlations(x_test, y_test)[0].item() for r in RIDGES}


def ridge_by_validation(pick: Callable, seed: int = 0, n_validation: int = 100) -> dict:
    """Choose CCA's ridge with ``pick`` on a validation split, then measure it once on held-out test pairs; twice,
    on views as they are and on views whose features are :data:`SCALE` times larger.

    Both sets of views are new draws of :func:`many_features` (seeds ``1000 + seed`` and ``2000 + seed``, which
    lesson 02 never shows): 100 training pairs of 60 + 60 features, ``n_validation`` more pairs for validation
    and 2,000 for the test, all from the same distribution. ``pick(x, y, x_val, y_val, ridges)`` sees the
    training pairs x, y (100, 60), the validation pairs x_val, y_val (n_validation, 60) and the grid
    :data:`RIDGES`, and returns one ridge of the grid (a ValueError otherwise). The test pairs measure the first
    canonical correlation of CCA fitted on the training pairs, for every ridge of the grid (the canonical ridge of
    Vinod 1976, "Canonical ridge and econometrics of joint production"). Scaling every feature by c scales the
    covariances by c^2, so the ridge that suits the scaled views is about c^2 times the other: no fixed ridge
    suits both, a validated one does.

    Returns, for the views as they are: ``ridge`` (the chosen one), ``held_out`` (its first test correlation),
    ``best_held_out`` (the best ridge of the grid, which only the test pairs reveal); the same with ``_x100``
    for the scaled views, and ``held_out_x100_ridge_0.3`` (with :data:`FIXED_RIDGE`); ``regret`` (best minus
    chosen, the worse of the two sets of views) and ``gain`` (chosen minus :data:`FIXED_RIDGE`'s, scaled views).
    """
    if not isinstance(n_validation, int) or n_validation < 2:
        raise ValueError(f"n_validation: expected an integer >= 2 (a correlation needs two), got {n_validation!r}")
    ridge, held_out = _choose_and_test(pick, many_features(seed=1000 + seed, n_test=n_validation + 2000), 1.0,
                                       n_validation)
    ridge_x100, held_out_x100 = _choose_and_test(pick, many_features(seed=2000 + seed, n_test=n_validation + 2000),
                                                 SCALE, n_validation)
    best, best_x100 = max(held_out.values()), max(held_out_x100.values())
    return {"ridge": ridge, "held_out": held_out[ridge], "best_held_out": best, "ridge_x100": ridge_x100,
            "held_out_x100": held_out_x100[ridge_x100], "best_held_out_x100": best_x100,
            "held_out_x100_ridge_0.3": held_out_x100[FIXED_RIDGE],
            "regret": max(best - held_out[ridge], best_x100 - held_out_x100[ridge_x100]),
            "gain": held_out_x100[ridge_x100] - held_out_x100[FIXED_RIDGE]}


def av_digits_views(split, pool: tuple[int, int] = (2, 4)) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat features of one AV-Digits split: pixels (N, 64), the log-mel spectrogram averaged over
    ``pool`` (mel bands, frames) blocks ((N, 160) for (2, 4)), and the labels (N,)."""
    columns = as_tensors(split, ["image", "audio", "label"])  # straight from Arrow: 25x faster than split["image"][:]
    image = columns["image"].flatten(1).double()
    audio = F.avg_pool2d(columns["audio"], pool).flatten(1).double()
    return image, audio, columns["label"]


def standardiser(train: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The map a -> (a - mean) / std with the feature means and standard deviations of ``train`` (N, F).

    A feature that never varies in training (the border pixels of clean digits) carries no
    information; it gets a standard deviation of 1 instead of 0, so that it stays finite (0 on the
    training data) instead of turning into NaN. Shape: (M, F) -> (M, F).
    """
    mean, std = train.mean(0), train.std(0)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return lambda a: (a - mean) / std


def av_digits_features(data) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """:func:`av_digits_views` of every split, each feature standardised with the training split's
    statistics (:func:`standardiser`): ``{split: (image (N, 64), audio (N, 160), labels (N,))}``."""
    views = {s: av_digits_views(data[s]) for s in ("train", "validation", "test")}
    image, audio = standardiser(views["train"][0]), standardiser(views["train"][1])
    return {s: (image(i), audio(a), labels) for s, (i, a, labels) in views.items()}


def retrieval_scores(u_query: torch.Tensor, v_gallery: torch.Tensor) -> torch.Tensor:
    """Cosine similarities between projected queries (Q, k) and gallery items (G, k): (Q, G)."""
    return F.normalize(u_query, dim=1) @ F.normalize(v_gallery, dim=1).T


def _retrieval(image_scores: torch.Tensor, audio_scores: torch.Tensor, labels: torch.Tensor) -> dict:
    """Spoken digits (queries) retrieving images (gallery) of the test split, from their projections (N, k)."""
    scores = retrieval_scores(audio_scores, image_scores)
    relevant = labels[:, None] == labels[None, :]
    hits1, hits5 = hits_at_k(scores, relevant, 1), hits_at_k(scores, relevant, 5)
    return {"recall1": hits1.double().mean().item(), "recall5": hits5.double().mean().item(),
            "chance1": chance_recall_at_k(relevant, 1), "chance5": chance_recall_at_k(relevant, 5),
            "hits1": hits1, "hits5": hits5, "image_scores": image_scores, "audio_scores": audio_scores,
            "labels": labels}


def av_digits_retrieval(seed: int = 0, data=None, n_components: int = 9, regs=(0.1, 1.0, 10.0, 100.0)) -> dict:
    """CCA between AV-Digits pixels and spectrograms; audio queries retrieve images in the shared space.

    Features are standardised with the training split's statistics (:func:`av_digits_features`).
    The ridge is chosen among ``regs`` by Recall@1 on the validation split; the test split is
    touched once. An image counts as relevant to an audio query when it shows the same digit.

    Parameters
    ----------
    seed : the data seed (``load_av_digits(seed=seed)``), unless ``data`` is given.
    data : an AV-Digits ``DatasetDict`` already loaded (the lesson passes its own).

    Returns ``reg``, ``validation_recall1`` ({reg: R@1}), test ``recall1``, ``recall5``,
    ``chance1``, ``chance5``, per-query ``hits1`` and ``hits5`` (N,) bool, ``correlations`` (test,
    (k,)), the test projections ``image_scores`` and ``audio_scores`` (N, k), ``labels`` (N,) and
    the fitted ``cca``.
    """
    data = load_av_digits(seed=seed) if data is None else data
    features = av_digits_features(data)
    (xi, xa, _), (vi, va, vl), (ti, ta, tl) = (features[s] for s in ("train", "validation", "test"))

    def recall1(cca: CCA) -> float:
        u, v = cca.transform(vi, va)
        return recall_at_k(retrieval_scores(v, u), vl[:, None] == vl[None, :], 1)

    models = {r: CCA(n_components, reg=r).fit(xi, xa) for r in regs}
    validation = {r: recall1(m) for r, m in models.items()}
    reg = max(validation, key=validation.get)
    cca = models[reg]
    return {"reg": reg, "validation_recall1": validation, **_retrieval(*cca.transform(ti, ta), tl),
            "correlations": cca.correlations(ti, ta), "cca": cca}


def deep_cca_retrieval(seed: int = 0, data=None, epochs: int = 150, n_components: int = 9, eps: float = 10.0,
                       progress: bool = False) -> dict:
    """Deep CCA between AV-Digits pixels and spectrograms, then the same retrieval as :func:`av_digits_retrieval`.

    Inputs are the standardised features of :func:`av_digits_features` (pixels (N, 64), pooled
    spectrogram (N, 160)). Each view gets an :class:`~mmcourse.encoders.MLPEncoder` with one hidden
    layer of 64 units and ``n_components`` outputs, trained with :meth:`DeepCCA.fit` (Adam, lr 1e-3,
    batches of half the training split, one CPU thread). With about a thousand training pairs the
    networks overfit the correlation quickly; the ridge ``eps`` of :func:`~mmcourse.cca.cca_loss`,
    large here as the ridge that linear CCA picks on this data, keeps them in check. 150 epochs take
    about two seconds on a laptop CPU.

    Returns ``recall1``, ``recall5``, ``chance1``, ``chance5``, ``hits1``, ``hits5``, test
    ``image_scores`` and ``audio_scores`` (N, k), ``labels``, ``correlations`` (test, (k,)),
    ``history`` and the fitted ``model``.
    """
    data = load_av_digits(seed=seed) if data is None else data
    features = av_digits_features(data)
    (xi, xa, _), (ti, ta, tl) = features["train"], features["test"]
    seed_everything(seed)
    model = DeepCCA(MLPEncoder(xi.shape[1], n_components, layers=1), MLPEncoder(xa.shape[1], n_components, layers=1),
                    n_components=n_components)
    with one_thread():
        history = model.fit(xi.float(), xa.float(), epochs=epochs, batch_size=len(xi) // 2, eps=eps, seed=seed,
                            progress=progress)
    image_scores, audio_scores = model.transform(ti.float(), ta.float())
    return {**_retrieval(image_scores, audio_scores, tl), "correlations": model.correlations(ti.float(), ta.float()),
            "history": history, "model": model.cpu().eval()}


def deep_overfitting(result: dict) -> float:
    """Total correlation of a :func:`deep_cca_retrieval` run on its last epoch's training batches (minus the
    mean loss, which the ridge lowers) minus the total on the test pairs: how much it overfits."""
    return -result["history"].train_loss[-1] - result["correlations"].sum().item()


def comparison_rows(linear: dict, deep: dict) -> list[ComparisonEntry]:
    """Lesson 02's rows of the course's running comparison (:mod:`mmcourse.experiments.comparison`), from the
    lesson's own runs: ``linear`` from :func:`av_digits_retrieval`, ``deep`` from :func:`deep_cca_retrieval`.
    Queries are the test clips' projections, the gallery the test images', relevance the digit. Neither method
    trained on labels, but in linear CCA's run labels chose the ridge (validation Recall@1): "model selection".
    Deep CCA reuses that ridge (10, what linear CCA chose on lesson 02's seed), so labels chose its ridge too:
    "model selection" as well."""
    return [comparison_entry("linear CCA", "02", "all", "model selection", linear["audio_scores"],
                             linear["image_scores"], linear["labels"], linear["labels"],
                             f"ridge {linear['reg']:g}, chosen on validation Recall@1"),
            comparison_entry("Deep CCA", "02", "all", "model selection", deep["audio_scores"], deep["image_scores"],
                             deep["labels"], deep["labels"], "ridge 10, the one linear CCA chose with labels (seed 0)")]


def speech_to_image_retrieval(seed: int = 0) -> list[ComparisonEntry]:
    """Lesson 02's rows of the running comparison, computed as lesson 02 computes them (the same data, settings and
    seed): :func:`av_digits_retrieval` and :func:`deep_cca_retrieval` on ``load_av_digits(seed=seed)``, then
    :func:`comparison_rows`. A few seconds on a laptop CPU."""
    data = load_av_digits(seed=seed)
    return comparison_rows(av_digits_retrieval(seed, data), deep_cca_retrieval(seed, data))


def best_nonlinear_total(correlations, k: int) -> float:
    """The largest total of k canonical correlations that *any* functions of two views can reach, when
    each view is a one-to-one function of independent Gaussian causes (plus independent noise) and
    cause i of x correlates ``correlations[i]`` with cause i of y.

    For one Gaussian pair with correlation rho, Hermite polynomials of degree m of each side are
    canonical functions with correlation rho^m (Lancaster 1958, "The structure of bivariate
    distributions", https://doi.org/10.1214/aoms/1177706532); independent pairs multiply. So the
    canonical correlations are the products rho_1^m1 rho_2^m2 ... (not all m zero); sum the top k.
    """
    totals = [1.0]
    for rho in correlations:
        totals = [t * float(rho) ** m for t in totals for m in range(k + 1)]
    return sum(sorted(totals, reverse=True)[1 : k + 1])  # [0] is the constant function, correlation 1


def deep_vs_linear(seed: int = 0, n: int = 10_000, epochs: int = 30, batch_size: int = 500,
                   progress: bool = False) -> dict:
    """Deep CCA against linear CCA on non-linear two views (x, y in R^10, latent correlations 0.9, 0.7).

    Deep CCA: an :class:`~mmcourse.encoders.MLPEncoder` per view (two hidden layers of 64) with
    2 outputs, trained with Adam (lr 2e-3) on one CPU thread (these networks are so small that
    more threads only add overhead, and much more of it on a busy machine). Both keep 2 canonical
    pairs. Returns ``true`` (2,), held-out correlations ``linear`` and ``deep`` (2,), their sums
    ``linear_total`` and ``deep_total``, ``best_possible`` (see :func:`best_nonlinear_total`), the
    ``history``, and the fitted ``model`` and ``views``.
    """
    views = make_two_views(n=n, dim_x=10, dim_y=10, correlations=(0.9, 0.7), nonlinear=True, n_test=2000,
                           seed=seed, dtype=torch.float32)
    linear = CCA(n_components=2).fit(views.x, views.y).correlations(views.x_test, views.y_test)
    seed_everything(seed)
    model = DeepCCA(MLPEncoder(10, 2), MLPEncoder(10, 2), n_components=2)
    with one_thread():
        history = model.fit(views.x, views.y, epochs=epochs, batch_size=batch_size, lr=2e-3, seed=seed,
                            progress=progress)
    deep = model.correlations(views.x_test, views.y_test)
    return {"true": views.correlations, "linear": linear, "deep": deep, "linear_total": linear.sum().item(),
            "deep_total": deep.sum().item(), "best_possible": best_nonlinear_total(views.correlations, 2),
            "history": history, "model": model.cpu().eval(), "views": views}


def batch_size_bias(seed: int = 0, dim: int = 8, sizes=(12, 100, 1000), draws: int = 20) -> dict:
    """The sum of the top 2 canonical correlations between *independent* random embeddings (B, dim),
    averaged over ``draws`` batches per size B: what :func:`cca_loss` sees in pure noise.

    Returns ``{B: mean total correlation}``; the truth is 0 for every B.
    """
    g = torch.Generator().manual_seed(seed)
    return {b: statistics.mean(-cca_loss(torch.randn(b, dim, generator=g), torch.randn(b, dim, generator=g), 2).item()
                               for _ in range(draws)) for b in sizes}


# --- The lesson's claims and the quantities that test them -------------------------------------

# Six estimates, each within 4 standard errors of the truth: a correct estimator fails this in fewer
# than one run of 2,000 (Bonferroni: 6 x P(|z| > 4) = 4e-4), so a failure means a wrong estimate.
RECOVERS_PLANTED = Claim("CCA recovers the planted correlations on training and held-out data",
                         "largest error, in standard errors", "<", 4.0)
PLAIN_HELD_OUT_NEAR_ZERO = Claim("without a ridge, every held-out correlation is near 0",
                                 "largest held-out correlation (absolute) without a ridge", "<", 0.2)
RIDGE_RESTORES = Claim("a ridge of 0.3 restores the first held-out correlation",
                       "first held-out correlation with the ridge", ">", 0.6)
RIDGE_GAIN = Claim("the ridge's first held-out correlation is far above plain CCA's",
                   "gain of the ridge on the first held-out correlation", ">", 0.5)
RIDGE_VALIDATED_BEATS_FIXED = Claim("with every feature 100 times larger, the ridge chosen on the validation "
                                    "pairs beats section 4's ridge of 0.3 by more than 0.05 on the test pairs",
                                    "first test correlation on the x100 views, validated ridge minus a ridge of 0.3",
                                    ">", 0.05)
RIDGE_VALIDATED_NEAR_BEST = Claim("on both sets of new views, the ridge chosen on the validation pairs comes within "
                                  "0.1 of the best ridge of the grid, which only the test pairs could reveal",
                                  "best first test correlation of the grid minus the validated ridge's (the worse "
                                  "of the two sets of views)", "<", 0.1)
RETRIEVAL_RECALL1 = Claim("a spoken digit's best image shows the same digit more than twice as often as by chance, "
                          "across unseen voices", "Recall@1 over its chance level (ratio)", ">", 2.0)
RETRIEVAL_RECALL5 = Claim("among the top five images, the spoken digit is found far more often than by chance",
                          "Recall@5 minus its chance level", ">", 0.2)
SMALL_BATCH_LOOKS_CORRELATED = Claim("in batches of 12, independent noise looks strongly correlated",
                                     "mean total of the top two correlations in batches of 12", ">", 1.9)
LARGE_BATCH_NEAR_ZERO = Claim("in batches of 1000, it looks nearly uncorrelated",
                              "mean total of the top two correlations in batches of 1000", "<", 0.4)
DEEP_BEATS_LINEAR = Claim("on non-linear views, Deep CCA finds clearly more held-out correlation than linear CCA",
                          "held-out total of Deep CCA minus linear CCA's", ">", 0.1)
DEEP_WITHIN_CEILING = Claim("Deep CCA finds no more than is possible",
                            "held-out total of Deep CCA minus the best possible total", "<", 0.02)
DEEP_RETRIEVAL_RECALL5 = Claim("Deep CCA's shared space also finds the spoken digit among the top five images "
                               "clearly more often than chance",
                               "Recall@5 of Deep CCA minus its chance level", ">", 0.1)
DEEP_OVERFITS_FEW_PAIRS = Claim("on a thousand AV-Digits pairs, Deep CCA's training batches show far more total "
                                "correlation than the test pairs, even with the ridge lowering the first",
                                "total correlation on the last epoch's training batches minus on the test pairs",
                                ">", 1.0)
DEEP_NO_CLEAR_GAIN = Claim("on a thousand noisy AV-Digits pairs, Deep CCA brings no clear gain over linear CCA",
                           "Recall@1 of Deep CCA minus linear CCA's, on the same queries", "<", 0.1)


def measure_claims(seed: int) -> dict[Claim, float]:
    """Run every experiment of lesson 02 for ``seed``; return the quantity each claim tests."""
    recovered = recover_correlations(seed)
    over = overfitting(seed)
    validated = ridge_by_validation(pick_ridge_by_validation, seed)
    data = load_av_digits(seed=seed)
    retrieval = av_digits_retrieval(seed, data)
    bias = batch_size_bias(seed)
    deep = deep_vs_linear(seed)
    deep_retrieval = deep_cca_retrieval(seed, data)
    return {
        RECOVERS_PLANTED: recovered["worst"],
        PLAIN_HELD_OUT_NEAR_ZERO: over["plain_held_out"].abs().max().item(),
        RIDGE_RESTORES: over["ridge_held_out"][0].item(),
        RIDGE_GAIN: (over["ridge_held_out"][0] - over["plain_held_out"][0]).item(),
        RIDGE_VALIDATED_BEATS_FIXED: validated["gain"],
        RIDGE_VALIDATED_NEAR_BEST: validated["regret"],
        RETRIEVAL_RECALL1: retrieval["recall1"] / retrieval["chance1"],
        RETRIEVAL_RECALL5: retrieval["recall5"] - retrieval["chance5"],
        SMALL_BATCH_LOOKS_CORRELATED: bias[12],
        LARGE_BATCH_NEAR_ZERO: bias[1000],
        DEEP_BEATS_LINEAR: deep["deep_total"] - deep["linear_total"],
        DEEP_WITHIN_CEILING: deep["deep_total"] - deep["best_possible"],
        DEEP_RETRIEVAL_RECALL5: deep_retrieval["recall5"] - deep_retrieval["chance5"],
        DEEP_OVERFITS_FEW_PAIRS: deep_overfitting(deep_retrieval),
        DEEP_NO_CLEAR_GAIN: deep_retrieval["recall1"] - retrieval["recall1"],
    }
