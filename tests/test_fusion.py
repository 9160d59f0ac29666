"""mmcourse.fusion against independent computations: explicit concatenation, einsum outer products,
the full low-rank weight built by einsum, softmax weights, and measured dropout rates."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.encoders import AudioEncoder, ImageEncoder, MaxPool, SceneEncoder
from mmcourse.fusion import (
    AttentionFusion,
    EarlyFusion,
    Fused,
    LateFusion,
    LowRankFusion,
    ModalityDropout,
    MultimodalClassifier,
    TensorFusion,
    TuckerFusion,
    average_log_probs,
    check_modalities,
    tensor_product,
)


def _hs(dims, batch=5, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, d, generator=g, dtype=dtype) for d in dims]


@pytest.mark.parametrize("dims", [[4, 3], [4, 3, 2], [6]])
@pytest.mark.parametrize("make", [EarlyFusion, TensorFusion, LowRankFusion, TuckerFusion, AttentionFusion])
def test_every_fusion_maps_a_list_of_modalities_to_out_dim(make, dims):
    fused = make(dims, 7)(_hs(dims))
    assert isinstance(fused, Fused) and fused.z.shape == (5, 7)
    has_weights = make is AttentionFusion
    assert fused.weights.shape == (5, len(dims)) if has_weights else fused.weights is None


def test_early_fusion_is_a_linear_map_of_the_concatenation():
    fusion, hs = EarlyFusion([4, 3], 6), _hs([4, 3])
    expected = torch.cat(hs, 1) @ fusion.linear.weight.T + fusion.linear.bias
    assert torch.allclose(fusion(hs).z, expected, atol=1e-6)


def test_late_fusion_averages_log_probabilities_of_per_modality_heads():
    fusion, hs = LateFusion([4, 3], 5), _hs([4, 3])
    expected = sum(F.log_softmax(head(h), 1) for head, h in zip(fusion.heads, hs)) / 2
    assert torch.allclose(fusion(hs).z, expected, atol=1e-6)
    assert "weight_logits" not in dict(fusion.named_parameters())  # equal weights are not learned
    learned = LateFusion([4, 3], 5, learn_weights=True)
    with torch.no_grad():
        learned.weight_logits.copy_(torch.tensor([math.log(3.0), 0.0]))  # weights 0.75, 0.25
    expected = sum(w * F.log_softmax(head(h), 1) for w, head, h in zip((0.75, 0.25), learned.heads, hs))
    assert torch.allclose(learned(hs).z, expected, atol=1e-6)
    learned(hs).z.sum().backward()
    assert learned.weight_logits.grad is not None and learned.weight_logits.grad.abs().sum() > 0


def test_average_log_probs_ignores_constant_shifts_and_checks_weights():
    logits = _hs([3, 3], batch=4)
    shifted = [logits[0] + 100.0, logits[1] - 7.0]
    assert torch.allclose(average_log_probs(logits), average_log_probs(shifted), atol=1e-4)
    assert (average_log_probs(logits).exp().sum(1) <= 1 + 1e-6).all()  # a geometric mean of distributions
    with pytest.raises(ValueError, match=r"weights: expected shape \(2,\)"):
        average_log_probs(logits, torch.ones(3))
    with pytest.raises(ValueError, match="logits"):
        average_log_probs([torch.zeros(4, 3), torch.zeros(4, 5)])


def test_attention_weights_sum_to_one_and_mix_the_projections():
    fusion, hs = AttentionFusion([4, 3], 6), _hs([4, 3], batch=8)
    z, alpha = fusion(hs)
    assert alpha.shape == (8, 2) and torch.allclose(alpha, torch.full((8, 2), 0.5))  # equal at the start
    with torch.no_grad():
        fusion.score[-1].weight.normal_()  # any scorer: the weights still form a distribution per sample
    z, alpha = fusion(hs)
    assert torch.allclose(alpha.sum(1), torch.ones(8)) and (alpha >= 0).all()
    assert not torch.allclose(alpha[:, 0], alpha[0, 0].expand(8))  # they differ between samples
    u = [p(h) for p, h in zip(fusion.project, hs)]
    assert torch.allclose(z, alpha[:, :1] * u[0] + alpha[:, 1:] * u[1], atol=1e-6)


def test_tensor_product_structure_matches_an_explicit_outer_product():
    h1, h2 = _hs([4, 3], batch=6, dtype=torch.float64)
    z = tensor_product([h1, h2]).view(6, 5, 4)
    one = torch.ones(6, 1, dtype=torch.float64)
    assert torch.equal(z[:, 0, 0], torch.ones(6, dtype=torch.float64))
    assert torch.allclose(z[:, 0, :], torch.cat([one, h2], 1)) and torch.allclose(z[:, :, 0], torch.cat([one, h1], 1))
    assert torch.allclose(z, torch.einsum("bi,bj->bij", torch.cat([one, h1], 1), torch.cat([one, h2], 1)))
    h3 = torch.randn(6, 2, dtype=torch.float64)
    three = torch.einsum("bi,bj,bk->bijk", *(torch.cat([one, h], 1) for h in (h1, h2, h3))).flatten(1)
    assert torch.allclose(tensor_product([h1, h2, h3]), three)


def test_tensor_fusion_is_a_linear_map_of_the_outer_product():
    fusion, hs = TensorFusion([4, 3], 6), _hs([4, 3])
    assert fusion.linear.in_features == 5 * 4
    one = torch.ones(5, 1)
    outer = torch.einsum("bi,bj->bij", torch.cat([one, hs[0]], 1), torch.cat([one, hs[1]], 1)).flatten(1)
    assert torch.allclose(fusion(hs).z, F.linear(outer, fusion.linear.weight, fusion.linear.bias), atol=1e-5)


@pytest.mark.parametrize("dims, rank", [([4, 3], 1), ([4, 3], 5), ([3, 2, 4], 3)])
def test_low_rank_fusion_equals_its_tensor_fusion(dims, rank):
    torch.manual_seed(0)
    lmf = LowRankFusion(dims, 6, rank=rank).double()
    with torch.no_grad():
        lmf.rank_weights.normal_()
        lmf.bias.normal_()
    hs = _hs(dims, batch=7, dtype=torch.float64)
    tfn = lmf.to_tensor_fusion()
    assert isinstance(tfn, TensorFusion) and tfn.linear.weight.dtype == torch.float64
    assert torch.allclose(lmf(hs).z, tfn(hs).z, rtol=0, atol=1e-10)
    # and the full weight is sum_r lambda_r W_1^(r) x W_2^(r) (x W_3^(r)), built independently by einsum
    letters = "ijk"[: len(dims)]
    spec = "r," + ",".join(f"r{c}o" for c in letters) + "->" + letters + "o"
    full = torch.einsum(spec, lmf.rank_weights, *lmf.factors)
    assert torch.allclose(tfn.linear.weight.T, full.reshape(-1, 6), atol=1e-12)


def test_every_low_rank_parameter_is_registered_and_gets_a_gradient():
    lmf = LowRankFusion([4, 3], 6, rank=3)
    names = {name for name, _ in lmf.named_parameters()}
    assert names == {"factors.0", "factors.1", "rank_weights", "bias"}
    assert sum(p.numel() for p in lmf.parameters()) == 3 * (5 + 4) * 6 + 3 + 6
    lmf(_hs([4, 3])).z.pow(2).sum().backward()
    for name, p in lmf.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # converting the dtype (as .to(device) would) keeps the factors as trainable parameters
    lmf = lmf.double()
    assert all(p.dtype == torch.float64 for p in lmf.parameters()) and len(list(lmf.parameters())) == 4
    before = [p.detach().clone() for p in lmf.factors]
    optimizer = torch.optim.SGD(lmf.parameters(), lr=0.1)
    lmf(_hs([4, 3], dtype=torch.float64)).z.sum().backward()
    optimizer.step()
    assert all(not torch.equal(b, p) for b, p in zip(before, lmf.factors))


def test_gradients_reach_every_modality():
    for fusion in (EarlyFusion([4, 3], 5), LateFusion([4, 3], 5), AttentionFusion([4, 3], 5),
                   TensorFusion([4, 3], 5), LowRankFusion([4, 3], 5), TuckerFusion([4, 3], 5)):
        hs = [h.requires_grad_() for h in _hs([4, 3])]
        fusion(hs).z.pow(2).sum().backward()
        assert all(h.grad is not None and h.grad.abs().sum() > 0 for h in hs), type(fusion).__name__


def test_modality_dropout_rate_is_p_and_never_drops_everything():
    torch.manual_seed(0)
    n, p = 20000, 0.4
    dropout = ModalityDropout(p)
    image, audio = dropout([torch.ones(n, 1, 2, 2), torch.ones(n, 3)])
    lost_image, lost_audio = image.flatten(1).sum(1) == 0, audio.sum(1) == 0
    assert torch.equal(image.flatten(1).amin(1) == 0, lost_image)  # whole modalities, not single entries
    assert not (lost_image & lost_audio).any()
    sd = math.sqrt(p * (1 - p) / n)
    assert abs((lost_image | lost_audio).float().mean() - p) < 4 * sd  # a fraction p lose one modality
    for lost in (lost_image, lost_audio):  # ... chosen uniformly: p / 2 each
        assert abs(lost.float().mean() - p / 2) < 4 * math.sqrt(p / 2 * (1 - p / 2) / n)
    three = ModalityDropout(0.9)([torch.ones(n, 2)] * 3)
    assert (torch.stack([t.sum(1) > 0 for t in three]).sum(0) >= 2).all()


def test_modality_dropout_only_acts_in_training():
    dropout, hs = ModalityDropout(1.0), _hs([4, 3], batch=50)
    out = dropout(hs)
    assert ((out[0].abs().sum(1) == 0) ^ (out[1].abs().sum(1) == 0)).all()  # p = 1: every sample loses one
    dropout.eval()
    assert all(torch.equal(a, b) for a, b in zip(dropout(hs), hs))
    assert all(torch.equal(a, b) for a, b in zip(ModalityDropout(0.0)(hs), hs))
    for bad in (-0.1, 1.5, "half"):
        with pytest.raises(ValueError, match="p: expected a probability"):
            ModalityDropout(bad)
    with pytest.raises(ValueError, match="same batch size"):
        ModalityDropout(0.5)([torch.ones(3, 2), torch.ones(4, 2)])


def test_multimodal_classifier_composes_and_handles_missing_modalities():
    torch.manual_seed(0)
    model = MultimodalClassifier([ImageEncoder(16), AudioEncoder(8)], AttentionFusion([16, 8], 12),
                                 torch.nn.Linear(12, 10))
    image, audio = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 32, 40)
    scores, alpha = model(image, audio)
    assert scores.shape == (4, 10) and alpha.shape == (4, 2)
    hs = model.embed(image, audio)  # layer-normalised embeddings
    assert all(torch.allclose(h.mean(1), torch.zeros(4), atol=1e-5) for h in hs)
    missing = model.embed(image, None)
    assert torch.equal(missing[1], torch.zeros(4, 8)) and torch.allclose(missing[0], hs[0])
    early = MultimodalClassifier([ImageEncoder(16), AudioEncoder(8)], EarlyFusion([16, 8], 10), normalize=False)
    assert torch.allclose(early(image, audio).scores,
                          early.fusion([early.encoders[0](image), early.encoders[1](audio)]).z)
    assert early(image, audio).weights is None
    with pytest.raises(ValueError, match="expected 2 inputs"):
        model(image)
    with pytest.raises(ValueError, match="every modality is None"):
        model(None, None)


def test_modality_dropout_inside_the_classifier_follows_train_and_eval():
    torch.manual_seed(0)
    model = MultimodalClassifier([ImageEncoder(8), AudioEncoder(8)], EarlyFusion([8, 8], 4), modality_dropout=1.0)
    image, audio = torch.randn(64, 1, 8, 8), torch.randn(64, 1, 32, 40)
    dropped = model.train().embed(image, audio)
    assert ((dropped[0].abs().sum(1) == 0) ^ (dropped[1].abs().sum(1) == 0)).all()  # exactly one of two lost
    kept = model.eval().embed(image, audio)
    assert all((h.abs().sum(1) > 0).all() for h in kept)


@pytest.mark.parametrize(
    "hs, match",
    [
        ([torch.zeros(5, 4)], r"expected 2 modalities \(dims=\[4, 3\]\), got 1"),
        ([torch.zeros(5, 4), torch.zeros(5, 3), torch.zeros(5, 3)], "expected 2 modalities"),
        ([torch.zeros(5, 4), torch.zeros(6, 3)], r"same batch size B for every modality, got \[5, 6\]"),
        ([torch.zeros(5, 4), torch.zeros(5, 2)], r"hs\[1\]: expected shape \(B, 3\), got \(5, 2\)"),
        ([torch.zeros(5, 4), torch.zeros(5, 3, 1)], r"hs\[1\]: expected shape \(B, 3\), got \(5, 3, 1\)"),
        (torch.zeros(5, 7), "expected a list of 2 tensors"),
        ([], "expected a list of 2 tensors"),
    ],
)
@pytest.mark.parametrize("make", [EarlyFusion, LateFusion, AttentionFusion, TensorFusion, LowRankFusion, TuckerFusion])
def test_bad_inputs_raise_errors_that_say_what_was_expected(make, hs, match):
    with pytest.raises(ValueError, match=match):
        make([4, 3], 6)(hs)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"dims": [], "out_dim": 3}, "dims"), ({"dims": [4, 0], "out_dim": 3}, "dims"),
     ({"dims": 4, "out_dim": 3}, "dims"), ({"dims": [4, 3], "out_dim": 0}, "out_dim")],
)
def test_bad_constructor_arguments(kwargs, match):
    for make in (EarlyFusion, LateFusion, AttentionFusion, TensorFusion, LowRankFusion, TuckerFusion):
        with pytest.raises(ValueError, match=match):
            make(**kwargs)
    with pytest.raises(ValueError, match="rank"):
        LowRankFusion([4, 3], 2, rank=0)
    for ranks in (0, [2], [2, 0]):
        with pytest.raises(ValueError, match="ranks"):
            TuckerFusion([4, 3], 2, ranks=ranks)


def test_check_modalities_without_dims_accepts_any_feature_sizes():
    check_modalities([torch.zeros(2, 3), torch.zeros(2, 5)])
    with pytest.raises(ValueError, match=r"hs\[0\]: expected shape \(B, d\)"):
        check_modalities([torch.zeros(2)])


@pytest.mark.parametrize("shape", [(4, 16, 8, 8), (2, 5, 7, 9), (3, 32, 32, 32)])
def test_max_pool_matches_torch_in_values_and_gradients(shape):
    # After a ReLU many windows tie at 0, and a plain image region gives windows of equal positive
    # values: both poolings must send each window's gradient to the same (first) maximum.
    g = torch.Generator().manual_seed(0)
    x = torch.relu(torch.randn(shape, generator=g))
    x[..., : shape[2] // 2, :] = 0.7  # a plain region: every window ties
    grad = torch.randn(shape[0], shape[1], shape[2] // 2, shape[3] // 2, generator=g)
    outputs = []
    for pool in (MaxPool(), nn.MaxPool2d(2)):
        leaf = x.clone().requires_grad_()
        y = pool(leaf)
        y.backward(grad)
        outputs.append((y.detach(), leaf.grad))
    assert outputs[0][0].is_contiguous()
    assert torch.equal(outputs[0][0], outputs[1][0]) and torch.equal(outputs[0][1], outputs[1][1])


@pytest.mark.parametrize("make, shape", [(lambda: ImageEncoder(16, channels=4), (6, 1, 8, 8)),
                                         (lambda: SceneEncoder(16, channels=4), (6, 3, 32, 32))])
def test_encoders_pool_before_the_relu_with_the_usual_orders_numbers(make, shape):
    # The encoders pool before their ReLU to save time; the usual order (ReLU, then pool) must give
    # the same outputs and gradients bit for bit, also where whole windows are negative or tie at zero.
    torch.manual_seed(0)
    encoder = make()
    usual = copy.deepcopy(encoder)
    layers = list(usual.net)
    pools = [i for i, layer in enumerate(layers) if isinstance(layer, (MaxPool, nn.MaxPool2d))]
    assert pools and all(isinstance(layers[i + 1], nn.ReLU) for i in pools)
    for i in pools:
        layers[i], layers[i + 1] = layers[i + 1], layers[i]
    usual.net = nn.Sequential(*layers)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(shape, generator=g)
    x[0] = -1.0  # a plain negative image: after the first layers, windows of equal values
    x[1] = 0.0
    grad = torch.randn(shape[0], 16, generator=g)
    results = []
    for model in (encoder, usual):
        out = model(x)
        out.backward(grad)
        results.append((out.detach(), [p.grad for p in model.parameters()]))
    assert torch.equal(results[0][0], results[1][0])
    assert all(torch.equal(a, b) for a, b in zip(results[0][1], results[1][1]))


def test_scene_encoder_shapes_and_errors():
    encoder = SceneEncoder(out_dim=24)
    assert encoder(torch.rand(3, 3, 32, 32)).shape == (3, 24)
    with pytest.raises(ValueError, match=r"image: expected shape \(B, 3, 32, 32\), got \(3, 1, 32, 32\)"):
        encoder(torch.rand(3, 1, 32, 32))


def test_missing_modality_takes_the_dtype_of_the_others():
    model = MultimodalClassifier([ImageEncoder(8), AudioEncoder(8)], TensorFusion([8, 8], 3)).double()
    out = model(None, torch.randn(2, 1, 32, 40, dtype=torch.float64))
    out = out.scores
    assert out.dtype == torch.float64 and out.shape == (2, 3)


# --- late fusion with a missing modality ---------------------------------------------------------


def test_late_fusion_drops_a_missing_modality_and_renormalises_the_weights():
    fusion, hs = LateFusion([4, 3, 2], 5, learn_weights=True), _hs([4, 3, 2])
    with torch.no_grad():
        fusion.weight_logits.copy_(torch.tensor([math.log(3.0), 0.0, 0.0]))  # weights 0.6, 0.2, 0.2
    assert torch.allclose(fusion(hs).weights[0], torch.tensor([0.6, 0.2, 0.2]))
    out = fusion([hs[0], None, hs[2]])  # by hand: 0.6 / (0.6 + 0.2) = 0.75 and 0.25, the middle one dropped
    assert torch.allclose(out.weights, torch.tensor([[0.75, 0.0, 0.25]]).expand(5, 3))
    expected = 0.75 * F.log_softmax(fusion.heads[0](hs[0]), 1) + 0.25 * F.log_softmax(fusion.heads[2](hs[2]), 1)
    assert torch.allclose(out.z, expected, atol=1e-6)
    alone = fusion([None, hs[1], None])  # one modality left: its own log-probabilities, weight 1
    assert torch.allclose(alone.z, F.log_softmax(fusion.heads[1](hs[1]), 1), atol=1e-6)
    assert torch.equal(alone.weights[0], torch.tensor([0.0, 1.0, 0.0]))
    alone.z.sum().backward()  # no NaN from the -inf of the missing ones
    assert torch.isfinite(fusion.weight_logits.grad).all()
    with pytest.raises(ValueError, match="every modality is None"):
        fusion([None, None, None])
    with pytest.raises(ValueError, match=r"hs\[2\]: expected shape \(B, 2\)"):
        fusion([hs[0], None, torch.zeros(5, 3)])
    with pytest.raises(ValueError, match="expected a list"):
        EarlyFusion([4, 3], 5)([hs[0], None])  # only late fusion accepts a missing modality


def test_classifier_passes_a_missing_modality_to_late_fusion_as_none():
    torch.manual_seed(0)
    model = MultimodalClassifier([ImageEncoder(8), AudioEncoder(6)], LateFusion([8, 6], 10)).eval()
    audio = torch.randn(3, 1, 32, 40)
    assert model.embed(None, audio)[0] is None
    out = model(None, audio)
    assert torch.equal(out.weights, torch.tensor([[0.0, 1.0]]).expand(3, 2))
    h = F.layer_norm(model.encoders[1](audio), (6,))
    assert torch.allclose(out.scores, F.log_softmax(model.fusion.heads[1](h), 1), atol=1e-6)


def test_check_modalities_accepts_none_only_when_asked():
    check_modalities([None, torch.zeros(2, 3)], allow_missing=True)
    with pytest.raises(ValueError, match="expected a list"):
        check_modalities([None, torch.zeros(2, 3)])
    with pytest.raises(ValueError, match=r"same batch size B for every modality, got \[2, 4\]"):
        check_modalities([torch.zeros(2, 3), None, torch.zeros(4, 3)], allow_missing=True)


# --- the learned "missing" embedding --------------------------------------------------------------


def _learned_model(p: float = 0.0) -> MultimodalClassifier:
    torch.manual_seed(0)
    return MultimodalClassifier([ImageEncoder(8), AudioEncoder(6)], LowRankFusion([8, 6], 5),
                                torch.nn.Linear(5, 10), modality_dropout=p, missing="learned")


def test_normalised_embeddings_lie_on_a_sphere_and_zero_is_its_centre():
    model = _learned_model()
    xs = torch.randn(50, 1, 8, 8), torch.randn(50, 1, 32, 40)
    hs = model.embed(*xs)
    for encoder, x, h, d in zip(model.encoders, xs, hs, (8, 6)):
        # mean 0 and variance var / (var + eps) over the d features: norm sqrt(d) up to LayerNorm's eps
        var = encoder(x).var(dim=1, unbiased=False)
        assert torch.allclose(h.norm(dim=1), (d * var / (var + 1e-5)).sqrt(), rtol=1e-4)
        assert (h.norm(dim=1) <= math.sqrt(d) + 1e-5).all()
    for m, d in enumerate((8, 6)):  # the learned vector is normalised too, so it lies on the same sphere
        assert model.missing_embedding(m, hs[0]).norm().item() == pytest.approx(math.sqrt(d), rel=1e-3)
    assert MultimodalClassifier([ImageEncoder(8)], EarlyFusion([8], 3)).missing_embedding(0, hs[0]).norm() == 0


def test_learned_missing_embedding_is_used_only_for_missing_inputs_and_gets_a_gradient():
    model = _learned_model().eval()
    image, audio = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 32, 40)
    both, no_audio = model(image, audio).scores, model(image, None).scores
    hs = model.embed(image, None)
    assert torch.allclose(hs[1], F.layer_norm(model.missing_embeddings[1], (6,)).expand(4, 6))
    with torch.no_grad():
        model.missing_embeddings[1].add_(torch.randn(6))
    assert torch.equal(model(image, audio).scores, both)  # not used when the audio is there
    assert not torch.allclose(model(image, None).scores, no_audio)  # used when it is missing
    model.zero_grad()
    model(image, None).scores.sum().backward()
    assert model.missing_embeddings[1].grad.abs().sum() > 0
    assert model.missing_embeddings[0].grad is None  # the image was there: its vector is not involved


def test_modality_dropout_fills_dropped_modalities_with_the_learned_embedding():
    model = _learned_model(p=1.0).train()  # every sample loses one modality
    hs = model.embed(torch.randn(64, 1, 8, 8), torch.randn(64, 1, 32, 40))
    fills = [F.layer_norm(e, e.shape) for e in model.missing_embeddings]
    dropped = [(h - f).abs().amax(1) < 1e-6 for h, f in zip(hs, fills)]
    assert (dropped[0] ^ dropped[1]).all()  # exactly one of the two, filled with its learned vector
    (hs[0] * torch.randn(64, 8)).sum().backward()  # (a plain sum of a normalised vector is constant)
    assert model.missing_embeddings[0].grad.abs().sum() > 0  # dropout is how the vectors learn
    with pytest.raises(ValueError, match="missing: expected one of"):
        MultimodalClassifier([ImageEncoder(8)], EarlyFusion([8], 3), missing="mean")


def test_modality_dropout_fill_replaces_whole_modalities():
    torch.manual_seed(0)
    hs = [torch.ones(100, 3), torch.ones(100, 2)]
    fill = [torch.tensor([7.0, 8.0, 9.0]), torch.tensor([-1.0, -2.0])]
    out = ModalityDropout(1.0)(hs, fill)
    lost = [torch.equal(a, fill[0]) for a in out[0]], [torch.equal(b, fill[1]) for b in out[1]]
    kept = [torch.equal(a, hs[0][0]) for a in out[0]], [torch.equal(b, hs[1][0]) for b in out[1]]
    assert all(x ^ y for x, y in zip(*lost)) and all(x ^ y for x, y in zip(*kept))


# --- Tucker fusion ------------------------------------------------------------------------------


@pytest.mark.parametrize("dims, ranks", [([4, 3], 2), ([4, 3], [3, 5]), ([3, 2, 4], [2, 3, 2])])
def test_tucker_fusion_equals_its_tensor_fusion(dims, ranks):
    torch.manual_seed(0)
    tucker = TuckerFusion(dims, 6, ranks=ranks).double()
    with torch.no_grad():
        tucker.bias.normal_()
    hs = _hs(dims, batch=7, dtype=torch.float64)
    tfn = tucker.to_tensor_fusion()
    assert isinstance(tfn, TensorFusion) and torch.allclose(tucker(hs).z, tfn(hs).z, rtol=0, atol=1e-10)
    # the full weight G x_1 U_1 x_2 U_2 (x_3 U_3), built independently one mode at a time
    full = tucker.core
    for u in tucker.factors:  # contract the leading rank axis with U_m, put the new axis last
        full = torch.tensordot(full, u, dims=([0], [1]))
    full = full.movedim(0, -1)  # (d_1 + 1, ..., d_M + 1, out)
    assert torch.allclose(tfn.linear.weight.T, full.reshape(-1, 6), atol=1e-12)


def test_tucker_fusion_parameters_are_registered_and_trained():
    tucker = TuckerFusion([4, 3], 6, ranks=[2, 3])
    assert {n for n, _ in tucker.named_parameters()} == {"factors.0", "factors.1", "core", "bias"}
    assert sum(p.numel() for p in tucker.parameters()) == 5 * 2 + 4 * 3 + 2 * 3 * 6 + 6
    tucker(_hs([4, 3])).z.pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in tucker.parameters())
