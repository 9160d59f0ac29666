"""Meta-learning: few-shot episodes, Prototypical Networks, MAML with ``torch.func``, meta-learned fusion.

A few-shot *episode* (task) has N classes ("N-way"), k labelled examples of each (the *support*
set S, "k-shot") and more examples of the same classes to classify (the *query* set Q). Episodes for
meta-training use one pool of classes, episodes for meta-testing another pool, disjoint from the
first: a model is judged on classes it never saw. Labels inside an episode are 0..N-1, in the order
of the episode's ``classes``.

Two families of answers: *metric-based* (:class:`ProtoNet`: embed, average each class's support
embeddings into a prototype, classify by distance; :func:`protonet_step` trains it on an episode) and
*optimisation-based* (:func:`maml_loss`: learn an initialisation that a few gradient steps on the
support set adapt to the episode; the inner step size eta_in is ``inner_lr``, the outer one eta_out the
optimiser's learning rate).
:class:`InputWeighting` is the smallest encoder a ProtoNet can learn: one weight per input cell. With
several modalities, :class:`MetaFusion` predicts each episode's modality weights from its support set, and
:func:`inverse_spread_weights` is the closed-form rule to compare it with.

References
----------
Vinyals, Blundell, Lillicrap, Kavukcuoglu and Wierstra (2016), "Matching Networks for One Shot
Learning", https://arxiv.org/abs/1606.04080 (episodes).
Snell, Swersky and Zemel (2017), "Prototypical Networks for Few-shot Learning",
https://arxiv.org/abs/1703.05175
Finn, Abbeel and Levine (2017), "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
https://arxiv.org/abs/1703.03400
Nichol, Achiam and Schulman (2018), "On First-Order Meta-Learning Algorithms",
https://arxiv.org/abs/1803.02999
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from .data.shapes import COLOURS, SHAPES, SIZES

Params = dict[str, torch.Tensor]
Pair = tuple[torch.Tensor, torch.Tensor]  # (x, y): inputs and labels of a support or query set
SHAPE_CLASS_NAMES = [f"{size} {colour} {shape}" for shape in SHAPES for colour in COLOURS for size in SIZES]


# ------------------------------------------------------------------------------------------- episodes
class Episode(NamedTuple):
    """One few-shot task, or B of them stacked (a leading dimension B on every field).

    Support and query rows are ordered class by class (k rows of class 0, then of class 1, ...); the
    support set has |S| = N * k rows, the query set |Q| = N * ``n_query``.
    """

    support: dict[str, torch.Tensor]  # column -> (|S|, ...) or (B, |S|, ...), |S| = N * k
    support_labels: torch.Tensor  # (|S|,) int64 in 0..N-1, or (B, |S|)
    query: dict[str, torch.Tensor]  # column -> (|Q|, ...) or (B, |Q|, ...), |Q| = N * n_query
    query_labels: torch.Tensor  # (|Q|,) or (B, |Q|)
    classes: torch.Tensor  # (N,) or (B, N): the pool's label of each episode class
    support_rows: torch.Tensor  # (|S|,) or (B, |S|): rows of the pool's columns
    query_rows: torch.Tensor  # (|Q|,) or (B, |Q|)


class EpisodeSampler:
    """N-way k-shot episodes drawn from the rows of a pool whose label is in ``classes``.

    Episode ``index`` is the same every time for the same ``seed`` (its generator is seeded by the
    seed and the index), so a lesson, its test and a widget can ask for the same episodes, and two
    samplers with the same labels and seed give the same rows whatever their columns (raw inputs
    or embeddings computed once).

    Parameters
    ----------
    columns : {name: (P, ...) tensor}, one row per example of the pool (e.g. "image", "audio").
    labels : (P,) int64 class of each row.
    classes : the classes episodes may use; give disjoint lists to the meta-train and meta-test
        samplers (:func:`check_disjoint`).
    n_way, k_shot, n_query : classes per episode, support and query examples per class.
    seed : fixes every episode.

    Example::

        >>> labels = torch.arange(40) % 4
        >>> sampler = EpisodeSampler({"x": torch.randn(40, 3)}, labels, [0, 1, 2, 3], 2, 1, 3, seed=0)
        >>> e = sampler.sample(0)
        >>> e.support["x"].shape, e.support_labels.tolist(), e.query_labels.tolist()
        (torch.Size([2, 3]), [0, 1], [0, 0, 0, 1, 1, 1])
        >>> bool((labels[e.support_rows] == e.classes[e.support_labels]).all())
        True
    """

    def __init__(self, columns: Mapping[str, torch.Tensor], labels: torch.Tensor, classes: Sequence[int],
                 n_way: int, k_shot: int, n_query: int, seed: int = 0) -> None:
        labels = torch.as_tensor(labels)
        if labels.ndim != 1 or labels.is_floating_point() or len(labels) == 0:
            raise ValueError(f"labels: expected a non-empty (P,) tensor of integer classes, got "
                             f"{labels.dtype} of shape {tuple(labels.shape)}")
        if not isinstance(columns, Mapping) or not columns:
            raise ValueError(f"columns: expected a dict of {{name: (P, ...) tensor}}, got {columns!r:.60}")
        for name, value in columns.items():
            if not isinstance(value, torch.Tensor) or value.ndim == 0 or len(value) != len(labels):
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(f"columns[{name!r}]: expected ({len(labels)}, ...), one row per label, got {shape}")
        classes = [int(c) for c in classes]
        if not classes or len(set(classes)) != len(classes):
            raise ValueError(f"classes: expected a non-empty list of distinct classes, got {classes}")
        for name, value in (("n_way", n_way), ("k_shot", k_shot), ("n_query", n_query)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if n_way > len(classes):
            raise ValueError(f"n_way: expected at most the {len(classes)} classes of the pool {classes}, got {n_way}")
        self.rows = {c: torch.nonzero(labels == c).flatten() for c in classes}
        short = {c: len(r) for c, r in self.rows.items() if len(r) < k_shot + n_query}
        if short:
            raise ValueError(f"classes: each class needs k_shot + n_query = {k_shot + n_query} examples; "
                             f"these have fewer: {short}")
        self.columns, self.labels, self.classes = dict(columns), labels, torch.tensor(classes)
        self.n_way, self.k_shot, self.n_query, self.seed = n_way, k_shot, n_query, int(seed)

    def with_columns(self, columns: Mapping[str, torch.Tensor]) -> EpisodeSampler:
        """The same episodes (same labels, classes, sizes and seed) over other ``columns``."""
        return EpisodeSampler(columns, self.labels, self.classes.tolist(), self.n_way, self.k_shot, self.n_query,
                              self.seed)

    def _rows(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(index))
        chosen = self.classes[torch.randperm(len(self.classes), generator=g)[: self.n_way]]
        support, query = [], []
        for c in chosen.tolist():
            rows = self.rows[c][torch.randperm(len(self.rows[c]), generator=g)[: self.k_shot + self.n_query]]
            support.append(rows[: self.k_shot])
            query.append(rows[self.k_shot :])
        return chosen, torch.cat(support), torch.cat(query)

    def sample(self, index: int) -> Episode:
        """Episode number ``index`` (any integer >= 0)."""
        if not isinstance(index, int) or index < 0:
            raise ValueError(f"index: expected an integer >= 0, got {index!r}")
        classes, support, query = self._rows(index)
        ways = torch.arange(self.n_way)
        return Episode({k: v[support] for k, v in self.columns.items()}, ways.repeat_interleave(self.k_shot),
                       {k: v[query] for k, v in self.columns.items()}, ways.repeat_interleave(self.n_query),
                       classes, support, query)

    def sample_batch(self, indices) -> Episode:
        """Episodes ``indices`` stacked: every field gets a leading dimension B = len(indices)."""
        indices = [int(i) for i in torch.as_tensor(indices).flatten().tolist()]
        if not indices:
            raise ValueError("indices: expected at least one episode index, got none")
        episodes = [self.sample(i) for i in indices]
        return Episode(*(
            {k: torch.stack([e[f][k] for e in episodes]) for k in self.columns} if isinstance(episodes[0][f], dict)
            else torch.stack([e[f] for e in episodes])
            for f in range(len(Episode._fields))
        ))


def shape_classes(object_shape: torch.Tensor, object_colour: torch.Tensor, object_size: torch.Tensor) -> torch.Tensor:
    """Classes of one-object Shapes scenes as attribute combinations: (shape, colour, size) -> one of 24.

    class = (shape * 4 + colour) * 2 + size, with the indices of ``SHAPES``, ``COLOURS`` and ``SIZES``
    (:mod:`mmcourse.data.shapes`); :data:`SHAPE_CLASS_NAMES` names them ("small red circle", ...).
    Shape: the first object's attributes (P,) each, or the loader's (P, 3) object slots -> (P,).
    """
    attributes = []
    for name, value in (("object_shape", object_shape), ("object_colour", object_colour), ("object_size", object_size)):
        value = torch.as_tensor(value)
        if value.ndim == 2:
            if (value[:, 1:] >= 0).any():
                raise ValueError(f"{name}: expected one-object scenes (load_shapes(max_objects=1)), got scenes "
                                 "with a second object")
            value = value[:, 0]
        if value.ndim != 1 or (value < 0).any():
            raise ValueError(f"{name}: expected (P,) attribute indices >= 0, got shape {tuple(value.shape)}")
        attributes.append(value)
    shape, colour, size = attributes
    if not len(shape) == len(colour) == len(size):
        raise ValueError(f"object_shape, object_colour, object_size: expected the same length, got "
                         f"{len(shape)}, {len(colour)}, {len(size)}")
    return (shape * len(COLOURS) + colour) * len(SIZES) + size


def check_disjoint(meta_train: Sequence[int], meta_test: Sequence[int]) -> None:
    """Raise ValueError when a class is in both pools: meta-testing must use classes never seen in training."""
    shared = sorted(set(int(c) for c in meta_train) & set(int(c) for c in meta_test))
    if shared:
        raise ValueError(f"meta_test: classes {shared} are also meta-training classes; the pools must be disjoint")


# ---------------------------------------------------------------------------- Prototypical Networks
def prototypes(embeddings: torch.Tensor, labels: torch.Tensor, n_way: int) -> torch.Tensor:
    """Class means of the support embeddings: c_n = mean of f(x_i) over the support rows with y_i = n.

    Shape: ``embeddings`` (|S|, d) and ``labels`` (|S|,) in 0..n_way-1 -> (n_way, d); with a leading
    dimension of B episodes, (B, |S|, d) and (B, |S|) -> (B, n_way, d). Every class needs a support row.
    """
    if embeddings.ndim < 2 or labels.shape != embeddings.shape[:-1]:
        raise ValueError(f"labels: expected shape {tuple(embeddings.shape[:-1])} (one per embedding row of "
                         f"{tuple(embeddings.shape)}), got {tuple(labels.shape)}")
    onehot = F.one_hot(labels, n_way).to(embeddings.dtype)  # (..., |S|, N)
    counts = onehot.sum(-2)  # (..., N)
    if (counts == 0).any():
        raise ValueError(f"labels: every class 0..{n_way - 1} needs at least one support example; "
                         f"counts per class {counts.tolist()}")
    return (onehot.transpose(-1, -2) @ embeddings) / counts.unsqueeze(-1)


def prototypical_logits(queries: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """Logits of Prototypical Networks: minus the squared Euclidean distance to each prototype.

    softmax of these is p(y = n | x) = exp(-||f(x) - c_n||^2) / sum_n' exp(-||f(x) - c_n'||^2) (Snell et al. 2017).
    Shape: ``queries`` (|Q|, d), ``prototypes`` (N, d) -> (|Q|, N); or (B, |Q|, d), (B, N, d) -> (B, |Q|, N).
    """
    if queries.shape[-1] != prototypes.shape[-1] or queries.shape[:-2] != prototypes.shape[:-2]:
        raise ValueError(f"queries, prototypes: expected (..., |Q|, d) and (..., N, d) with the same d and leading "
                         f"dimensions, got {tuple(queries.shape)} and {tuple(prototypes.shape)}")
    return -(queries.unsqueeze(-2) - prototypes.unsqueeze(-3)).pow(2).sum(-1)


class FewShot(NamedTuple):
    """What :class:`ProtoNet` returns."""

    scores: torch.Tensor  # (|Q|, N) or (B, |Q|, N): logits of each query over the episode's classes
    prototypes: torch.Tensor  # (N, d) or (B, N, d)


def _check_episode(support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor) -> int:
    """The number of leading dimensions (1: rows; 2: episodes and rows), after checking that the shapes agree."""
    lead = support_labels.ndim
    if lead not in (1, 2) or support.shape[:lead] != support_labels.shape or query.shape[: lead - 1] != \
            support.shape[: lead - 1]:
        raise ValueError(f"support, support_labels, query: expected (|S|, ...), (|S|,), (|Q|, ...) or with B "
                         f"episodes (B, |S|, ...), (B, |S|), (B, |Q|, ...); got {tuple(support.shape)}, "
                         f"{tuple(support_labels.shape)}, {tuple(query.shape)}")
    return lead


def _embed(encoder: nn.Module, x: torch.Tensor, lead: int) -> torch.Tensor:
    """Run ``encoder`` on (..., *input) rows whose first ``lead`` dimensions are episodes and rows."""
    return encoder(x.flatten(0, lead - 1)).unflatten(0, x.shape[:lead])


class ProtoNet(nn.Module):
    """Prototypical Network around an ``encoder``: prototypes from the support set, logits for the queries.

    Shape: ``support`` (|S|, *input), ``support_labels`` (|S|,), ``query`` (|Q|, *input) -> :class:`FewShot`
    (scores (|Q|, N), prototypes (N, d)); with B episodes stacked, (B, |S|, *input), (B, |S|),
    (B, |Q|, *input) -> (B, |Q|, N), (B, N, d).
    """

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor,
                n_way: int) -> FewShot:
        lead = _check_episode(support, support_labels, query)
        protos = prototypes(_embed(self.encoder, support, lead), support_labels, n_way)
        return FewShot(prototypical_logits(_embed(self.encoder, query, lead), protos), protos)


def protonet_loss(model: nn.Module, episode: Episode, column: str = "x") -> torch.Tensor:
    """The loss a ProtoNet trains on: the mean cross-entropy of the episode's queries (Snell et al. 2017, eq. 2 and
    Algorithm 1).

    ``model`` is a :class:`ProtoNet` (or a module with its forward); ``episode`` an :class:`Episode`, one or B
    stacked, whose ``column`` holds the inputs. Shape: scores (|Q|, N) or (B, |Q|, N) -> a scalar, the mean
    over every query of every episode.
    """
    if column not in episode.support:
        raise ValueError(f"column: expected one of the episode's columns {sorted(episode.support)}, got {column!r}")
    scores = model(episode.support[column], episode.support_labels, episode.query[column],
                   episode.classes.shape[-1]).scores
    return F.cross_entropy(scores.flatten(0, -2), episode.query_labels.flatten())


def protonet_step(model: nn.Module, episode: Episode, optimizer, column: str = "x") -> float:
    """One training step of a ProtoNet on an episode: :func:`protonet_loss`, its gradient, one ``optimizer``
    step (an optimiser over ``model``'s parameters, e.g. :class:`mmcourse.train.Adam`). Returns the loss
    before the step."""
    loss = protonet_loss(model, episode, column)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


class InputWeighting(nn.Module):
    """An encoder that only weighs each cell of its input: f(x)_j = exp(v_j) x_j, one learned v_j per cell.

    Under a :class:`ProtoNet` the squared distance becomes sum_j exp(2 v_j) (x_j - c_j)^2, a learned
    diagonal metric on the raw input (a Mahalanobis distance with a diagonal matrix; like the squared
    Euclidean distance it is a Bregman divergence, the family for which Snell et al. 2017, section 2.3,
    show that the class mean is the right prototype). v starts at 0, so the encoder starts as the raw
    input. The weights are the same for every class: what training can teach it is how much a
    difference in each cell counts, not features of the training classes. A common factor on every
    weight changes no nearest prototype.

    Shape: ``x`` (B, *shape) -> (B, prod(shape)); ``weights`` is exp(v), of shape ``shape``.
    """

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        if not self.shape or min(self.shape) < 1:
            raise ValueError(f"shape: expected the positive sizes of one input, e.g. (1, 32, 40), got {shape}")
        self.log_weights = nn.Parameter(torch.zeros(self.shape))

    @property
    def weights(self) -> torch.Tensor:
        """exp(v), one positive weight per input cell, of shape ``shape``."""
        return self.log_weights.exp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"x: expected shape (B, {', '.join(map(str, self.shape))}), got {tuple(x.shape)}")
        return (x * self.weights).flatten(1)


def episode_accuracy(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Accuracy of each episode. Shape: ``scores`` (B, |Q|, N), ``labels`` (B, |Q|) -> (B,)."""
    if scores.shape[:-1] != labels.shape:
        raise ValueError(f"labels: expected shape {tuple(scores.shape[:-1])}, got {tuple(labels.shape)}")
    return (scores.argmax(-1) == labels).float().mean(-1)


# --------------------------------------------------------------------------------------------- MAML
def adapt(model: nn.Module, params: Params, support: Pair, loss_fn: Callable, inner_lr: float,
          inner_steps: int = 1, first_order: bool = False) -> Params:
    """The inner loop of MAML: ``inner_steps`` gradient steps on the support set, theta' = theta - eta_in g.

    eta_in is ``inner_lr``, the inner step size (the paper's alpha).

    ``g = torch.func.grad(inner_loss)(params)`` is itself differentiable, so the meta-gradient flows
    through the steps (second order). ``first_order=True`` detaches g: the update is then a constant
    shift, and the meta-gradient is the query gradient at the adapted parameters (Finn et al. 2017,
    section 5.2; Nichol et al. 2018). Returns the adapted parameters, a new dict.
    """
    def inner_loss(p: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return loss_fn(functional_call(model, p, (x,)), y)

    for _ in range(inner_steps):
        g = grad(inner_loss)(params, *support)
        params = {name: p - inner_lr * (g[name].detach() if first_order else g[name]) for name, p in params.items()}
    return params


def maml_loss(model: nn.Module, params: Params, support: Pair, query: Pair, loss_fn: Callable, inner_lr: float,
              inner_steps: int = 1, first_order: bool = False) -> torch.Tensor:
    """MAML's loss of one task: the query loss after ``inner_steps`` steps on the support set (Finn et al. 2017).

    L_Q(theta') = loss(f_{theta'}(x_q), y_q) with theta' = theta - eta_in grad loss(f_theta(x_s), y_s); the
    outer loop then moves theta by eta_out (the optimiser's learning rate) against the gradient of L_Q(theta').

    Parameters
    ----------
    model : the network; only its structure is used, through ``torch.func.functional_call``.
    params : {name: tensor}, as ``dict(model.named_parameters())`` gives.
    support, query : (x, y) pairs: x (|S|, *input) and y (|S|,); x (|Q|, *input) and y (|Q|,).
    loss_fn : ``loss_fn(scores, y) -> scalar``, e.g. ``torch.nn.functional.cross_entropy``.
    inner_lr : eta_in, the step size of the inner loop (the paper's alpha).
    inner_steps, first_order : see :func:`adapt`.

    Returns a scalar tensor. A meta-batch of B tasks goes through :func:`maml_meta_loss` (``vmap``); the
    model must then hold no BatchNorm running statistics (``track_running_stats=False``).
    """
    adapted = adapt(model, params, support, loss_fn, inner_lr, inner_steps, first_order)
    return loss_fn(functional_call(model, adapted, (query[0],)), query[1])


def _check_tasks(support: Pair, query: Pair) -> None:
    (xs, ys), (xq, yq) = support, query
    if ys.ndim != 2 or yq.ndim != 2 or xs.shape[:2] != ys.shape or xq.shape[:2] != yq.shape or len(ys) != len(yq):
        raise ValueError(f"support, query: expected (x (B, |S|, ...), y (B, |S|)) and (x (B, |Q|, ...), y (B, |Q|)) "
                         f"with the same B, got x {tuple(xs.shape)}, y {tuple(ys.shape)} and x {tuple(xq.shape)}, "
                         f"y {tuple(yq.shape)}")


def maml_meta_loss(model: nn.Module, params: Params, support: Pair, query: Pair, loss_fn: Callable,
                   inner_lr: float, inner_steps: int = 1, first_order: bool = False) -> torch.Tensor:
    """Mean of :func:`maml_loss` over a meta-batch of B tasks, all at once with ``torch.func.vmap``.

    Shape: ``support`` (x (B, |S|, *input), y (B, |S|)), ``query`` (x (B, |Q|, *input), y (B, |Q|)) -> scalar.
    ``params`` are shared by the tasks (not batched); ``backward()`` on the result gives the meta-gradient.
    """
    _check_tasks(support, query)

    def task_loss(xs, ys, xq, yq):
        return maml_loss(model, params, (xs, ys), (xq, yq), loss_fn, inner_lr, inner_steps, first_order)

    return vmap(task_loss)(*support, *query).mean()


def maml_meta_loss_loop(model: nn.Module, params: Params, support: Pair, query: Pair, loss_fn: Callable,
                        inner_lr: float, inner_steps: int = 1, first_order: bool = False) -> torch.Tensor:
    """The same mean as :func:`maml_meta_loss`, the way most tutorials write it: a Python loop over the
    tasks, each adapted with ``torch.autograd.grad(..., create_graph=not first_order)``.

    It does not use ``torch.func.grad`` or ``vmap``, so it is an independent check of both, and the
    baseline that ``benchmarks/maml_step.py`` times.
    """
    _check_tasks(support, query)
    names = list(params)
    losses = []
    for xs, ys, xq, yq in zip(*support, *query):
        fast = dict(params)
        for _ in range(inner_steps):
            inner = loss_fn(functional_call(model, fast, (xs,)), ys)
            grads = torch.autograd.grad(inner, [fast[n] for n in names], create_graph=not first_order)
            fast = {n: fast[n] - inner_lr * g for n, g in zip(names, grads)}
        losses.append(loss_fn(functional_call(model, fast, (xq,)), yq))
    return torch.stack(losses).mean()


def maml_predict(model: nn.Module, params: Params, support: Pair, query_x: torch.Tensor, loss_fn: Callable,
                 inner_lr: float, inner_steps: int = 1) -> torch.Tensor:
    """Scores of the queries of B tasks after adapting to each task's support set (meta-testing).

    Shape: ``support`` (x (B, |S|, *input), y (B, |S|)), ``query_x`` (B, |Q|, *input) -> (B, |Q|, N).
    """
    def one(xs, ys, xq):
        adapted = adapt(model, {k: v.detach() for k, v in params.items()}, (xs, ys), loss_fn, inner_lr, inner_steps,
                        first_order=True)
        return functional_call(model, adapted, (xq,))

    return vmap(one)(*support, query_x)


# --------------------------------------------------------------------------------- meta-learned fusion
def modality_logits(support: Sequence[torch.Tensor], support_labels: torch.Tensor, query: Sequence[torch.Tensor],
                    n_way: int) -> torch.Tensor:
    """Each modality's prototype logits, stacked: the input of every fusion rule (:func:`fuse_logits`).

    Logit (m, q, n) is -||f_m(x_q) - c^(m)_n||^2, with c^(m)_n the prototype of class n in modality m.
    Shape: ``support`` [(B, |S|, d_m)] and ``query`` [(B, |Q|, d_m)], one per modality, ``support_labels``
    (B, |S|) -> (B, M, |Q|, N); without the episode dimension B, (|S|, d_m), (|S|,), (|Q|, d_m) -> (M, |Q|, N).
    """
    if len(support) != len(query) or not support:
        raise ValueError(f"support, query: expected one tensor per modality in each, got {len(support)} and "
                         f"{len(query)}")
    return torch.stack([prototypical_logits(q, prototypes(s, support_labels, n_way))
                        for s, q in zip(support, query)], dim=-3)


class SupportStatistics(NamedTuple):
    """What :func:`support_statistics` returns: two spreads per modality, as logarithms.

    ``log_between`` (B, M): log of the mean squared distance between two of an episode's prototypes;
    ``log_within`` (B, M): log of the mean squared distance of a support embedding to its own prototype.
    """

    log_between: torch.Tensor
    log_within: torch.Tensor

    def features(self) -> torch.Tensor:
        """The input of :class:`MetaFusion`'s network, (B, 2 M): for each modality in turn, between then within."""
        return torch.stack([self.log_between, self.log_within], dim=-1).flatten(-2)


def _spreads(embeddings: Sequence[torch.Tensor], labels: torch.Tensor, n_way: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(between, within), each (B, M): the mean squared distances of :class:`SupportStatistics`, not logged."""
    if isinstance(embeddings, torch.Tensor) or not embeddings:
        raise ValueError(f"embeddings: expected a list of (B, |S|, d_m) tensors, one per modality, got "
                         f"{type(embeddings).__name__} of length {len(embeddings)}")
    between, within = [], []
    for h in embeddings:
        protos = prototypes(h, labels, n_way)  # (B, N, d)
        pairs = -prototypical_logits(protos, protos)  # (B, N, N), zero on the diagonal
        between.append(pairs.sum((-1, -2)) / max(n_way * (n_way - 1), 1))
        own = torch.gather(protos, -2, labels.unsqueeze(-1).expand(*labels.shape, h.shape[-1]))
        within.append((h - own).pow(2).sum(-1).mean(-1))
    return torch.stack(between, dim=-1), torch.stack(within, dim=-1)


def support_statistics(embeddings: Sequence[torch.Tensor], labels: torch.Tensor, n_way: int) -> SupportStatistics:
    """How well each modality's prototypes separate an episode's classes, from its support set alone.

    For each modality m: the spread *between* classes (mean squared distance between two prototypes)
    and the spread *within* a class (mean squared distance of a support embedding to its own
    prototype; it needs k >= 2 to say anything), both as logarithms. A noisy modality has a large
    within-class spread for its between-class spread.
    Shape: ``embeddings`` [(B, |S|, d_m)] per modality, ``labels`` (B, |S|) -> :class:`SupportStatistics`
    of two (B, M) tensors.
    """
    between, within = _spreads(embeddings, labels, n_way)
    return SupportStatistics(torch.log(between + 1e-6), torch.log(within + 1e-6))


def inverse_spread_weights(support: Sequence[torch.Tensor], support_labels: torch.Tensor, n_way: int,
                          power: float = 1.0) -> torch.Tensor:
    """A closed-form fusion rule, no training: weight each modality by the inverse of its within-class spread.

    If, in every modality m, each class is a spherical Gaussian N(mu_n^(m), sigma_m^2 I) in d_m
    dimensions, the modalities independent given the class and the classes equally likely, then
    log p(y = n | x) = const - sum_m ||f_m(x) - mu_n^(m)||^2 / (2 sigma_m^2): prototype logits weighted
    by 1 / sigma_m^2. (Snell et al. 2017 read ProtoNets as mixture density estimation; squared Euclidean
    distance is the case of spherical Gaussians with one fixed variance.) The support set estimates
    sigma_m^2 as the within-class spread of :func:`support_statistics` over d_m (times k / (k - 1),
    the same for every modality), so alpha_m is proportional to d_m / within_m. The weights are scaled to
    sum to 1, which changes the temperature of the fused logits but not their argmax.

    ``power`` p > 0 gives alpha_m proportional to (d_m / within_m)^p: p = 1 is the rule above; p = 2 is
    no longer Bayes' rule for these Gaussians but the same rule made sharper (the log weights
    multiplied by p, a temperature of 1/p on them), so that a scattered modality loses its say faster.
    Shape: ``support`` [(B, |S|, d_m)] per modality, ``support_labels`` (B, |S|) -> (B, M), rows summing to 1.
    """
    if not power > 0:
        raise ValueError(f"power: expected a number > 0, got {power}")
    _, within = _spreads(support, support_labels, n_way)
    dims = torch.tensor([h.shape[-1] for h in support], dtype=within.dtype, device=within.device)
    precision = (dims / within.clamp_min(1e-12)) ** power
    return precision / precision.sum(-1, keepdim=True)


def fuse_logits(logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted sum of per-modality prototype logits: sum_m alpha_m (-||f_m(x) - c^(m)_n||^2).

    With equal weights 1/M this is -||h - c||^2 / M for the concatenated embedding h = [f_1(x); ...; f_M(x)]
    and the concatenated prototypes: equal-weight fusion is ProtoNet on concatenated embeddings.
    Shape: ``logits`` (B, M, |Q|, N) (:func:`modality_logits`), ``weights`` (B, M) -> (B, |Q|, N).
    """
    if logits.ndim != 4 or weights.shape != logits.shape[:2]:
        raise ValueError(f"logits, weights: expected (B, M, |Q|, N) and (B, M), got {tuple(logits.shape)} and "
                         f"{tuple(weights.shape)}")
    return torch.einsum("tm,tmqn->tqn", weights, logits)


class FusedFewShot(NamedTuple):
    """What :class:`MetaFusion` returns."""

    scores: torch.Tensor  # (B, |Q|, N) fused logits
    weights: torch.Tensor  # (B, M) each episode's modality weights alpha_m (rows sum to 1)


class MetaFusion(nn.Module):
    """Meta-learned fusion: a small network maps statistics of an episode's support set to modality weights.

    The weights alpha = softmax(g_phi(s)) come from :func:`support_statistics` s, per episode, and weigh the
    modalities' prototype logits (:func:`fuse_logits`). Trained across many episodes whose corruption
    differs, g_phi learns which modality to trust from what the support set looks like; the encoders stay
    fixed. The last layer starts at zero, so training starts from equal weights.

    Shape: ``support`` [(B, |S|, d_m)] per modality, ``support_labels`` (B, |S|), ``query`` [(B, |Q|, d_m)]
    -> :class:`FusedFewShot` (scores (B, |Q|, N), weights (B, M)).
    """

    def __init__(self, modalities: int = 2, hidden: int = 16) -> None:
        super().__init__()
        self.modalities = modalities
        self.net = nn.Sequential(nn.Linear(2 * modalities, hidden), nn.Tanh(), nn.Linear(hidden, modalities))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def weights(self, support: Sequence[torch.Tensor], support_labels: torch.Tensor, n_way: int) -> torch.Tensor:
        """Each episode's modality weights alpha_m, (B, M)."""
        if len(support) != self.modalities:
            raise ValueError(f"support: expected {self.modalities} modalities, got {len(support)}")
        return torch.softmax(self.net(support_statistics(support, support_labels, n_way).features()), dim=-1)

    def forward(self, support: Sequence[torch.Tensor], support_labels: torch.Tensor, query: Sequence[torch.Tensor],
                n_way: int) -> FusedFewShot:
        weights = self.weights(support, support_labels, n_way)
        return FusedFewShot(fuse_logits(modality_logits(support, support_labels, query, n_way), weights), weights)
