"""mmcourse.fusion against independent computations: explicit concatenation, einsum outer products,
the full low-rank weight built by einsum, softmax weights, and measured dropout rates."""

import math

import pytest
import torch
import torch.nn.functional as F

from mmcourse import exercises
from mmcourse.encoders import AudioEncoder, ImageEncoder, SceneEncoder
from mmcourse.fusion import (
    AttentionFusion,
    EarlyFusion,
    Fused,
    LateFusion,
    LowRankFusion,
    ModalityDropout,
    MultimodalClassifier,
    TensorFusion,
    average_log_probs,
    check_modalities,
    tensor_product,
)


def _hs(dims, batch=5, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, d, generator=g, dtype=dtype) for d in dims]


@pytest.mark.parametrize("dims", [[4, 3], [4, 3, 2], [6]])
@pytest.mark.parametrize("make", [EarlyFusion, TensorFusion, LowRankFusion, AttentionFusion])
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
                   TensorFusion([4, 3], 5), LowRankFusion([4, 3], 5)):
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
@pytest.mark.parametrize("make", [EarlyFusion, LateFusion, AttentionFusion, TensorFusion, LowRankFusion])
def test_bad_inputs_raise_errors_that_say_what_was_expected(make, hs, match):
    with pytest.raises(ValueError, match=match):
        make([4, 3], 6)(hs)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"dims": [], "out_dim": 3}, "dims"), ({"dims": [4, 0], "out_dim": 3}, "dims"),
     ({"dims": 4, "out_dim": 3}, "dims"), ({"dims": [4, 3], "out_dim": 0}, "out_dim")],
)
def test_bad_constructor_arguments(kwargs, match):
    for make in (EarlyFusion, LateFusion, AttentionFusion, TensorFusion, LowRankFusion):
        with pytest.raises(ValueError, match=match):
            make(**kwargs)
    with pytest.raises(ValueError, match="rank"):
        LowRankFusion([4, 3], 2, rank=0)


def test_check_modalities_without_dims_accepts_any_feature_sizes():
    check_modalities([torch.zeros(2, 3), torch.zeros(2, 5)])
    with pytest.raises(ValueError, match=r"hs\[0\]: expected shape \(B, d\)"):
        check_modalities([torch.zeros(2)])


def test_scene_encoder_shapes_and_errors():
    encoder = SceneEncoder(out_dim=24)
    assert encoder(torch.rand(3, 3, 32, 32)).shape == (3, 24)
    with pytest.raises(ValueError, match=r"image: expected shape \(B, 3, 32, 32\), got \(3, 1, 32, 32\)"):
        encoder(torch.rand(3, 1, 32, 32))


def test_lesson_01_exercise_solutions_pass_and_mistakes_are_explained(capsys):
    assert exercises.check("concat_fusion", lambda hs, w, b: F.linear(torch.cat(hs, 1), w, b))
    assert exercises.check("tensor_fusion", lambda a, b: tensor_product([a, b]))
    assert exercises.check("late_fusion", lambda ls: torch.stack([x.log_softmax(1) for x in ls]).mean(0))
    capsys.readouterr()
    assert not exercises.check("tensor_fusion", lambda a, b: torch.einsum("bi,bj->bij", a, b).flatten(1))
    assert "has shape (2, 6), expected (2, 12)" in capsys.readouterr().out
    assert not exercises.check("late_fusion", lambda ls: torch.stack(ls).mean(0))
    assert "wrong values" in capsys.readouterr().out
    assert not exercises.check("concat_fusion", lambda hs, w, b: torch.cat(hs, 1) @ w.T)
    assert "wrong values" in capsys.readouterr().out


def test_missing_modality_takes_the_dtype_of_the_others():
    model = MultimodalClassifier([ImageEncoder(8), AudioEncoder(8)], TensorFusion([8, 8], 3)).double()
    out = model(None, torch.randn(2, 1, 32, 40, dtype=torch.float64))
    out = out.scores
    assert out.dtype == torch.float64 and out.shape == (2, 3)
