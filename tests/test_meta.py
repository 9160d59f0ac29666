"""mmcourse.meta: the episodic sampler, prototypes against torch.cdist, MAML against finite differences and
against a plain per-task loop, and meta-learned fusion's pieces."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from mmcourse.meta import (
    SHAPE_CLASS_NAMES,
    EpisodeSampler,
    InputWeighting,
    MetaFusion,
    ProtoNet,
    adapt,
    check_disjoint,
    episode_accuracy,
    fuse_logits,
    inverse_spread_weights,
    maml_loss,
    maml_meta_loss,
    maml_meta_loss_loop,
    maml_predict,
    modality_logits,
    prototypes,
    prototypical_logits,
    shape_classes,
    support_statistics,
)


def _pool(rows_per_class=12, classes=6, dim=3):
    labels = torch.arange(classes).repeat_interleave(rows_per_class)
    return {"x": torch.randn(len(labels), dim), "row": torch.arange(len(labels))}, labels


# --- the sampler --------------------------------------------------------------------------------------


def test_episodes_have_n_classes_k_shots_and_disjoint_support_and_query():
    columns, labels = _pool()
    sampler = EpisodeSampler(columns, labels, [1, 3, 4, 5], n_way=3, k_shot=2, n_query=4, seed=0)
    for i in range(20):
        e = sampler.sample(i)
        assert e.support["x"].shape == (6, 3) and e.query["x"].shape == (12, 3)
        assert e.support_labels.tolist() == [0, 0, 1, 1, 2, 2]
        assert e.query_labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
        assert set(e.classes.tolist()) <= {1, 3, 4, 5} and len(set(e.classes.tolist())) == 3
        assert torch.equal(labels[e.support_rows], e.classes[e.support_labels])  # relabelled 0..N-1 in class order
        assert torch.equal(labels[e.query_rows], e.classes[e.query_labels])
        assert torch.equal(e.support["row"], e.support_rows) and torch.equal(columns["x"][e.query_rows], e.query["x"])
        assert not set(e.support_rows.tolist()) & set(e.query_rows.tolist())


def test_episodes_are_deterministic_for_a_seed_and_differ_between_seeds():
    columns, labels = _pool()
    a = EpisodeSampler(columns, labels, range(6), 4, 2, 3, seed=5)
    b = EpisodeSampler(columns, labels, range(6), 4, 2, 3, seed=5)
    c = EpisodeSampler(columns, labels, range(6), 4, 2, 3, seed=6)
    assert all(torch.equal(a.sample(i).support_rows, b.sample(i).support_rows) for i in range(10))
    assert torch.equal(a.sample(3).query_rows, a.sample(3).query_rows)  # the same episode whenever asked
    assert any(not torch.equal(a.sample(i).support_rows, c.sample(i).support_rows) for i in range(10))
    assert any(not torch.equal(a.sample(0).support_rows, a.sample(i).support_rows) for i in range(1, 10))
    other = a.with_columns({"h": torch.randn(len(labels), 7)})  # the same episodes over embeddings
    assert torch.equal(other.sample(4).query_rows, a.sample(4).query_rows)
    assert other.sample(4).query["h"].shape == (12, 7)


def test_a_batch_of_episodes_stacks_the_single_episodes():
    columns, labels = _pool()
    sampler = EpisodeSampler(columns, labels, range(6), 3, 2, 2, seed=1)
    batch = sampler.sample_batch([4, 0, 7])
    assert batch.support["x"].shape == (3, 6, 3) and batch.classes.shape == (3, 3)
    for t, i in enumerate([4, 0, 7]):
        single = sampler.sample(i)
        assert torch.equal(batch.query["x"][t], single.query["x"]) and torch.equal(batch.classes[t], single.classes)


def test_meta_train_and_meta_test_classes_never_meet():
    columns, labels = _pool(classes=10)
    check_disjoint(range(6), range(6, 10))
    with pytest.raises(ValueError, match=r"classes \[5\]"):
        check_disjoint(range(6), range(5, 10))
    train = EpisodeSampler(columns, labels, range(6), 4, 1, 2, seed=0)
    test = EpisodeSampler(columns, labels, range(6, 10), 4, 1, 2, seed=0)
    seen = {c for i in range(50) for c in train.sample(i).classes.tolist()}
    unseen = {c for i in range(50) for c in test.sample(i).classes.tolist()}
    assert seen == set(range(6)) and unseen == set(range(6, 10))


@pytest.mark.parametrize("change, message", [
    (dict(k_shot=10, n_query=5), r"k_shot \+ n_query = 15 examples; these have fewer: \{0: 12"),
    (dict(n_way=7), "n_way: expected at most the 6 classes"),
    (dict(columns={"x": torch.randn(5, 3)}), r"columns\['x'\]: expected \(72, ...\)"),
    (dict(labels=torch.rand(72)), "labels: expected a non-empty"),
    (dict(classes=[0, 0, 1]), "distinct classes"),
    (dict(k_shot=0), "k_shot: expected an integer >= 1"),
])
def test_bad_sampler_arguments_are_clear_errors(change, message):
    columns, labels = _pool()
    args = {"columns": columns, "labels": labels, "classes": list(range(6)), "n_way": 3, "k_shot": 2, "n_query": 2}
    with pytest.raises(ValueError, match=message):
        EpisodeSampler(**{**args, **change})


def test_a_class_missing_from_the_pool_is_named():
    columns, labels = _pool()
    with pytest.raises(ValueError, match=r"\{9: 0\}"):
        EpisodeSampler(columns, labels, [0, 1, 9], 2, 1, 1)


def test_shape_classes_are_the_attribute_combinations():
    shape, colour, size = torch.tensor([0, 2, 1]), torch.tensor([0, 3, 2]), torch.tensor([1, 0, 1])
    classes = shape_classes(shape, colour, size)
    assert [SHAPE_CLASS_NAMES[c] for c in classes] == ["large red circle", "small yellow triangle", "large blue square"]
    assert len(set(SHAPE_CLASS_NAMES)) == 24
    slots = torch.tensor([[0, -1, -1], [2, 1, -1]])
    with pytest.raises(ValueError, match="one-object scenes"):
        shape_classes(slots, slots, slots)


# --- Prototypical Networks ------------------------------------------------------------------------------


def test_prototypes_are_class_means_in_any_row_order():
    embeddings = torch.tensor([[1.0, 0.0], [5.0, 5.0], [3.0, 0.0], [7.0, 5.0]])
    protos = prototypes(embeddings, torch.tensor([0, 1, 0, 1]), 2)
    assert torch.equal(protos, torch.tensor([[2.0, 0.0], [6.0, 5.0]]))
    with pytest.raises(ValueError, match="every class 0..2 needs"):
        prototypes(embeddings, torch.tensor([0, 1, 0, 1]), 3)
    with pytest.raises(ValueError, match="labels: expected shape"):
        prototypes(embeddings, torch.tensor([0, 1]), 2)


def test_prototypical_logits_are_minus_squared_cdist():
    g = torch.Generator().manual_seed(0)
    q, p = torch.randn(7, 5, generator=g, dtype=torch.float64), torch.randn(3, 5, generator=g, dtype=torch.float64)
    torch.testing.assert_close(prototypical_logits(q, p), -torch.cdist(q, p) ** 2)
    qb, pb = torch.randn(4, 7, 5, dtype=torch.float64), torch.randn(4, 3, 5, dtype=torch.float64)
    torch.testing.assert_close(prototypical_logits(qb, pb), -torch.cdist(qb, pb) ** 2)
    with pytest.raises(ValueError, match="queries, prototypes"):
        prototypical_logits(q, p[:, :4])


def test_protonet_on_a_batch_equals_each_episode_alone():
    torch.manual_seed(0)
    net = ProtoNet(nn.Linear(4, 3))
    support, labels, query = torch.randn(5, 6, 4), torch.tensor([0, 1, 2, 0, 1, 2]).repeat(5, 1), torch.randn(5, 9, 4)
    out = net(support, labels, query, 3)
    assert out.scores.shape == (5, 9, 3) and out.prototypes.shape == (5, 3, 3)
    for t in range(5):
        alone = net(support[t], labels[t], query[t], 3)
        torch.testing.assert_close(out.scores[t], alone.scores)
        expected = -torch.cdist(net.encoder(query[t]), prototypes(net.encoder(support[t]), labels[t], 3)) ** 2
        torch.testing.assert_close(alone.scores, expected, atol=1e-5, rtol=1e-5)
    assert episode_accuracy(out.scores, torch.zeros(5, 9, dtype=torch.long)).shape == (5,)
    with pytest.raises(ValueError, match="support, support_labels, query"):
        net(support, labels[:, :4], query, 3)


# --- MAML -----------------------------------------------------------------------------------------------


def _linear_tasks(tasks=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    model = nn.Linear(3, 2).double()
    params = {k: torch.randn(v.shape, generator=g, dtype=torch.float64) for k, v in model.named_parameters()}
    support = (torch.randn(tasks, 6, 3, generator=g, dtype=torch.float64), torch.randint(0, 2, (tasks, 6), generator=g))
    query = (torch.randn(tasks, 5, 3, generator=g, dtype=torch.float64), torch.randint(0, 2, (tasks, 5), generator=g))
    return model, params, support, query


def _flat(params):
    return torch.cat([p.flatten() for p in params.values()])


def _unflat(w, like):
    out, start = {}, 0
    for k, v in like.items():
        out[k] = w[start : start + v.numel()].view_as(v)
        start += v.numel()
    return out


@pytest.mark.parametrize("inner_steps", [1, 2])
def test_second_order_meta_gradient_matches_finite_differences(inner_steps):
    model, params, (xs, ys), (xq, yq) = _linear_tasks()

    def loss(w):
        return maml_loss(model, _unflat(w, params), (xs[0], ys[0]), (xq[0], yq[0]), F.cross_entropy, 0.7, inner_steps)

    w = _flat(params).requires_grad_()
    (analytic,) = torch.autograd.grad(loss(w), w)
    eps = 1e-6
    numeric = torch.stack([(loss(w.detach() + eps * e) - loss(w.detach() - eps * e)) / (2 * eps)
                           for e in torch.eye(len(w), dtype=torch.float64)])
    torch.testing.assert_close(analytic, numeric, atol=1e-8, rtol=1e-6)


def test_first_order_gradient_is_the_query_gradient_at_the_adapted_parameters():
    model, params, (xs, ys), (xq, yq) = _linear_tasks()
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    first = torch.autograd.grad(maml_loss(model, leaves, (xs[0], ys[0]), (xq[0], yq[0]), F.cross_entropy, 0.7,
                                          first_order=True), list(leaves.values()))
    adapted = adapt(model, params, (xs[0], ys[0]), F.cross_entropy, 0.7)
    adapted = {k: v.detach().requires_grad_() for k, v in adapted.items()}
    at_adapted = torch.autograd.grad(F.cross_entropy(functional_call(model, adapted, (xq[0],)), yq[0]),
                                     list(adapted.values()))
    for a, b in zip(first, at_adapted):
        torch.testing.assert_close(a, b)
    second = torch.autograd.grad(maml_loss(model, leaves, (xs[0], ys[0]), (xq[0], yq[0]), F.cross_entropy, 0.7),
                                 list(leaves.values()))
    assert max((a - b).abs().max() for a, b in zip(first, second)) > 1e-3  # the second-order term is not nothing


def test_the_inner_step_is_plain_gradient_descent():
    model, params, (xs, ys), _ = _linear_tasks()
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    grads = torch.autograd.grad(F.cross_entropy(functional_call(model, leaves, (xs[0],)), ys[0]), list(leaves.values()))
    adapted = adapt(model, params, (xs[0], ys[0]), F.cross_entropy, 0.3)
    for (name, p), g in zip(params.items(), grads):
        torch.testing.assert_close(adapted[name], p - 0.3 * g)


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("inner_steps", [1, 2])
def test_vmapped_meta_batch_equals_the_per_task_loop(first_order, inner_steps):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).double()
    params = {k: v.detach().clone().requires_grad_() for k, v in model.named_parameters()}
    support = (torch.randn(5, 6, 4, dtype=torch.float64), torch.randint(0, 3, (5, 6)))
    query = (torch.randn(5, 9, 4, dtype=torch.float64), torch.randint(0, 3, (5, 9)))
    args = (F.cross_entropy, 0.4, inner_steps, first_order)
    vmapped = maml_meta_loss(model, params, support, query, *args)
    loop = maml_meta_loss_loop(model, params, support, query, *args)
    one_by_one = torch.stack([maml_loss(model, params, (support[0][t], support[1][t]), (query[0][t], query[1][t]),
                                        *args) for t in range(5)]).mean()
    torch.testing.assert_close(vmapped, loop)
    torch.testing.assert_close(vmapped, one_by_one)
    leaves = list(params.values())
    for a, b in zip(torch.autograd.grad(vmapped, leaves), torch.autograd.grad(loop, leaves)):
        torch.testing.assert_close(a, b)


def test_maml_predict_adapts_each_task_without_touching_the_parameters():
    model, params, support, query = _linear_tasks(tasks=4)
    scores = maml_predict(model, params, support, query[0], F.cross_entropy, 0.5, inner_steps=2)
    assert scores.shape == (4, 5, 2)
    adapted = adapt(model, params, (support[0][1], support[1][1]), F.cross_entropy, 0.5, inner_steps=2)
    torch.testing.assert_close(scores[1], functional_call(model, adapted, (query[0][1],)))


def test_mismatched_tasks_are_clear_errors():
    model, params, support, query = _linear_tasks(tasks=3)
    with pytest.raises(ValueError, match="support, query"):
        maml_meta_loss(model, params, support, (query[0][:2], query[1][:2]), F.cross_entropy, 0.1)
    with pytest.raises(ValueError, match="support, query"):
        maml_meta_loss_loop(model, params, (support[0][0], support[1][0]), query, F.cross_entropy, 0.1)


# --- meta-learned fusion ---------------------------------------------------------------------------------


def test_equal_weight_fusion_is_a_protonet_on_concatenated_embeddings():
    g = torch.Generator().manual_seed(1)
    labels = torch.tensor([0, 0, 1, 1, 2, 2]).repeat(2, 1)
    support = [torch.randn(2, 6, 4, generator=g), torch.randn(2, 6, 3, generator=g)]
    query = [torch.randn(2, 5, 4, generator=g), torch.randn(2, 5, 3, generator=g)]
    logits = modality_logits(support, labels, query, 3)
    assert logits.shape == (2, 2, 5, 3)
    torch.testing.assert_close(logits[:, 1], -torch.cdist(query[1], prototypes(support[1], labels, 3)) ** 2)
    fused = fuse_logits(logits, torch.full((2, 2), 0.5))
    joined = prototypical_logits(torch.cat(query, -1), prototypes(torch.cat(support, -1), labels, 3))
    torch.testing.assert_close(fused, joined / 2)
    with pytest.raises(ValueError, match="logits, weights"):
        fuse_logits(logits, torch.ones(2, 3))
    with pytest.raises(ValueError, match="support, query"):
        modality_logits(support, labels, query[:1], 3)


def test_meta_fusion_starts_from_equal_weights_and_reads_the_support_spread():
    labels = torch.tensor([0, 0, 1, 1]).unsqueeze(0)
    tight = torch.tensor([[[0.0], [0.1], [5.0], [5.1]]])  # classes far apart, little spread
    loose = torch.tensor([[[0.0], [4.0], [1.0], [5.0]]])  # spread as large as the gap
    stats = support_statistics([tight, loose], labels, 2)
    assert stats.log_between.shape == stats.log_within.shape == (1, 2)
    # by hand: tight has prototypes 0.05 and 5.05 (between 25) and within 0.05^2; loose 2 and 3 (1) and 2^2
    torch.testing.assert_close(stats.log_between.exp(), torch.tensor([[25.0, 1.0]]), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(stats.log_within.exp(), torch.tensor([[0.0025, 4.0]]), rtol=1e-3, atol=1e-5)
    # the network's input: for each modality in turn, between then within
    torch.testing.assert_close(stats.features(), torch.stack([stats.log_between[:, 0], stats.log_within[:, 0],
                                                              stats.log_between[:, 1], stats.log_within[:, 1]], -1))
    fusion = MetaFusion(modalities=2)
    out = fusion([tight, loose], labels, [tight, loose], 2)
    assert out.scores.shape == (1, 4, 2) and torch.allclose(out.weights, torch.full((1, 2), 0.5))
    with pytest.raises(ValueError, match="expected 2 modalities"):
        fusion.weights([tight], labels, 2)


def test_the_inverse_spread_rule_is_bayes_for_spherical_gaussian_classes():
    """The rule's fused logits give scipy's Gaussian posterior with the support set's plug-in estimates."""
    from scipy.special import log_softmax
    from scipy.stats import multivariate_normal

    g = torch.Generator().manual_seed(3)
    n_way, k_shot, dims, sigmas = 3, 6, (4, 7), (0.5, 2.0)
    labels = torch.arange(n_way).repeat_interleave(k_shot)
    means = [3 * torch.randn(n_way, d, generator=g, dtype=torch.float64) for d in dims]
    support = [(m[labels] + s * torch.randn(len(labels), d, generator=g, dtype=torch.float64)).unsqueeze(0)
               for m, s, d in zip(means, sigmas, dims)]
    query = [torch.randn(1, 5, d, generator=g, dtype=torch.float64) for d in dims]
    weights = inverse_spread_weights(support, labels.unsqueeze(0), n_way)
    # by hand, in numpy: each modality's variance per dimension from the support residuals
    variances = []
    for h in support:
        h = h[0].numpy()
        centres = [h[labels.numpy() == n].mean(0) for n in range(n_way)]
        variances.append(((h - [centres[y] for y in labels.tolist()]) ** 2).mean())
    precision = [1 / v for v in variances]
    torch.testing.assert_close(weights[0], torch.tensor(precision, dtype=torch.float64) / sum(precision))
    posterior = log_softmax(sum(np.stack([multivariate_normal(c, v * np.eye(len(c))).logpdf(q[0].numpy())
                                          for c in prototypes(s[0], labels, n_way).numpy()], -1)
                                for s, q, v in zip(support, query, variances)), axis=-1)
    fused = fuse_logits(modality_logits(support, labels.unsqueeze(0), query, n_way), weights)[0]
    torch.testing.assert_close(torch.log_softmax(fused * sum(precision) / 2, -1), torch.from_numpy(posterior))
    with pytest.raises(ValueError, match="embeddings"):
        inverse_spread_weights([], labels.unsqueeze(0), n_way)


def test_the_inverse_spread_rule_recovers_known_variances():
    g = torch.Generator().manual_seed(4)
    labels = torch.arange(2).repeat_interleave(400).unsqueeze(0)
    support = [torch.randn(1, 800, 8, generator=g) * s for s in (1.0, 3.0)]
    weights = inverse_spread_weights(support, labels, 2)
    assert weights[0, 0] / weights[0, 1] == pytest.approx(9.0, rel=0.1)  # 1 / sigma^2: 1 against 1/9
    squared = inverse_spread_weights(support, labels, 2, power=2.0)
    assert squared[0, 0] / squared[0, 1] == pytest.approx(81.0, rel=0.2)  # the same ratio, squared
    torch.testing.assert_close(squared, weights ** 2 / (weights ** 2).sum(-1, keepdim=True))
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="power"):
            inverse_spread_weights(support, labels, 2, power=bad)


def test_input_weighting_starts_as_the_raw_input_and_weighs_each_cell():
    x = torch.randn(5, 1, 4, 3)
    encoder = InputWeighting((1, 4, 3))
    torch.testing.assert_close(encoder(x), x.flatten(1))  # v = 0: the raw input
    with torch.no_grad():
        encoder.log_weights[0, 2, 1] = np.log(3.0)
    out = encoder(x)
    torch.testing.assert_close(out[:, 2 * 3 + 1], 3 * x[:, 0, 2, 1])
    torch.testing.assert_close(torch.cat([out[:, :7], out[:, 8:]], 1), torch.cat([x.flatten(1)[:, :7],
                                                                                  x.flatten(1)[:, 8:]], 1))
    # under a ProtoNet: a diagonal metric, sum_j w_j^2 (x_j - c_j)^2, by hand against the weighted cdist
    labels = torch.tensor([0, 0, 1, 1])
    support, query = torch.randn(4, 1, 4, 3), torch.randn(3, 1, 4, 3)
    scores = ProtoNet(encoder)(support, labels, query, 2).scores
    w = encoder.weights.detach().flatten()
    centres = torch.stack([support.flatten(1)[labels == n].mean(0) for n in range(2)])
    by_hand = -((query.flatten(1)[:, None, :] - centres[None]) ** 2 * w ** 2).sum(-1)
    torch.testing.assert_close(scores, by_hand)
    # one number per cell, and every one of them receives a gradient
    ProtoNet(encoder)(support, labels, query, 2).scores.logsumexp(-1).sum().backward()
    assert encoder.log_weights.shape == (1, 4, 3) and (encoder.log_weights.grad != 0).all()
    with pytest.raises(ValueError, match="x: expected shape"):
        encoder(torch.randn(5, 1, 3, 4))
    with pytest.raises(ValueError, match="shape"):
        InputWeighting((1, 0, 3))
