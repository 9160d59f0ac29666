"""mmcourse.contrastive: the CLIP loss against a direct computation and its known values, the dual encoder
and its clamped temperature, zero-shot classification on a hand-made case, NDCG against scikit-learn."""

import math

import pytest
import torch
from torch import nn

from mmcourse.contrastive import (
    LOGIT_SCALE_INIT,
    LOGIT_SCALE_MAX,
    ContrastiveStep,
    ConvTextEncoder,
    DualEncoder,
    DualOutput,
    PatchSetEncoder,
    clip_loss,
    similarity,
    zero_shot_classifier,
)


def _direct_clip_loss(image, text, s):
    """CLIP's loss written out with loops, in float64: -log softmax of each row and each column at the diagonal."""
    image = image.double() / image.double().norm(dim=1, keepdim=True)
    text = text.double() / text.double().norm(dim=1, keepdim=True)
    b = len(image)
    logits = [[math.exp(s) * float(image[i] @ text[j]) for j in range(b)] for i in range(b)]
    rows = sum(-logits[i][i] + math.log(sum(math.exp(v) for v in logits[i])) for i in range(b)) / b
    cols = sum(-logits[i][i] + math.log(sum(math.exp(logits[j][i]) for j in range(b))) for i in range(b)) / b
    return (rows + cols) / 2


@pytest.mark.parametrize("b, d, s", [(2, 3, 0.0), (7, 5, 1.5), (16, 8, LOGIT_SCALE_INIT)])
def test_clip_loss_equals_the_formula_and_is_symmetric(b, d, s):
    g = torch.Generator().manual_seed(b)
    image, text = torch.randn(b, d, generator=g) * 3, torch.randn(b, d, generator=g)
    loss = clip_loss(image, text, torch.tensor(s))
    assert loss.shape == ()
    assert loss.item() == pytest.approx(_direct_clip_loss(image, text, s), rel=1e-5)
    assert clip_loss(text, image, s).item() == pytest.approx(loss.item(), rel=1e-6)


def test_clip_loss_is_about_log_b_on_random_and_about_0_on_aligned_embeddings():
    g = torch.Generator().manual_seed(0)
    for b in (10, 100, 1000):
        loss = clip_loss(torch.randn(b, 64, generator=g), torch.randn(b, 64, generator=g), 0.0)
        assert abs(loss.item() - math.log(b)) < 0.05
    aligned = torch.randn(200, 64, generator=g)
    assert clip_loss(aligned, 2 * aligned, LOGIT_SCALE_MAX).item() < 1e-3  # scale does not matter: normalised


def test_clip_loss_sends_gradients_to_both_embeddings_and_the_scale():
    image, text = torch.randn(6, 4, requires_grad=True), torch.randn(6, 4, requires_grad=True)
    s = torch.tensor(1.0, requires_grad=True)
    clip_loss(image, text, s).backward()
    assert image.grad.abs().sum() > 0 and text.grad.abs().sum() > 0 and s.grad.abs() > 0


@pytest.mark.parametrize("image, text, s, match", [
    (torch.randn(4, 3), torch.randn(5, 3), 0.0, "text_emb"),
    (torch.randn(4, 3), torch.randn(4, 2), 0.0, "text_emb"),
    (torch.randn(4), torch.randn(4), 0.0, "image_emb"),
    (torch.zeros(0, 3), torch.zeros(0, 3), 0.0, "image_emb"),
    (torch.full((2, 3), float("nan")), torch.randn(2, 3), 0.0, "image_emb"),
    (torch.randn(2, 3), torch.randn(2, 3), torch.ones(2), "logit_scale"),
    (torch.randn(2, 3), torch.randn(2, 3), float("inf"), "logit_scale"),
])
def test_clip_loss_rejects_bad_input(image, text, s, match):
    with pytest.raises(ValueError, match=match):
        clip_loss(image, text, s)


def test_similarity_is_the_cosine():
    a, b = torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 0.0], [0.0, -2.0]])
    assert similarity(a, b)[0].tolist() == pytest.approx([0.6, -0.8])


class _Linear(nn.Linear):
    """A linear encoder with the ``out_dim`` attribute DualEncoder needs."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__(a, b)
        self.out_dim = b


def test_dual_encoder_returns_unit_embeddings_and_its_temperature():
    model = DualEncoder(_Linear(5, 7), _Linear(3, 6), dim=4)
    out = model(torch.randn(8, 5), torch.randn(8, 3))
    assert isinstance(out, DualOutput) and out.image.shape == (8, 4) and out.text.shape == (8, 4)
    assert torch.allclose(out.image.norm(dim=1), torch.ones(8)) and torch.allclose(out.text.norm(dim=1), torch.ones(8))
    assert out.logit_scale.item() == pytest.approx(LOGIT_SCALE_INIT) and model.temperature == pytest.approx(0.07)
    assert isinstance(model.logit_scale, nn.Parameter)
    fixed = DualEncoder(_Linear(5, 7), _Linear(3, 6), dim=4, temperature=1.0, learn_temperature=False)
    assert "logit_scale" not in dict(fixed.named_parameters()) and fixed.temperature == pytest.approx(1.0)


def test_clamp_keeps_the_scale_between_1_and_100():
    model = DualEncoder(_Linear(2, 2), _Linear(2, 2))
    with torch.no_grad():
        model.logit_scale.fill_(9.0)
    model.clamp_logit_scale_()
    assert model.logit_scale.item() == pytest.approx(LOGIT_SCALE_MAX)
    with torch.no_grad():
        model.logit_scale.fill_(-3.0)
    model.clamp_logit_scale_()
    assert model.logit_scale.item() == 0.0


MIXING = torch.randn(6, 5, generator=torch.Generator().manual_seed(99))  # y is a noisy linear map of x


def _paired(n: int = 512, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    return {"x": x, "y": x @ MIXING + 0.1 * torch.randn(n, 5, generator=g)}


def test_fit_learns_matching_pairs_and_clamps_every_step():
    torch.manual_seed(0)
    model = DualEncoder(_Linear(6, 16), _Linear(5, 16), dim=8, temperature=0.012)  # s starts near the clamp
    history = model.fit(_paired(), "x", "y", epochs=15, batch_size=64, lr=1e-2, progress=False)
    model.cpu()
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert len(model.logit_scales_) == 15 * 8 + 1
    assert max(model.logit_scales_) <= LOGIT_SCALE_MAX + 1e-6  # s recorded after each clamp, and at the end
    test = _paired(200, seed=1)
    with torch.no_grad():
        scores = similarity(model.encode_image(test["x"]), model.encode_text(test["y"]))
    assert (scores.argmax(1) == torch.arange(200)).float().mean() > 0.9


def test_a_fixed_temperature_is_never_clamped():
    fixed = DualEncoder(_Linear(6, 4), _Linear(5, 4), temperature=2.0, learn_temperature=False)
    fixed.clamp_logit_scale_()
    assert fixed.temperature == pytest.approx(2.0)
    torch.manual_seed(0)
    fixed.fit(_paired(128), "x", "y", epochs=2, batch_size=64, progress=False)
    assert fixed.temperature == pytest.approx(2.0)  # was silently 1.0 when the clamp applied to a fixed s
    assert fixed.logit_scales_ == pytest.approx([math.log(1 / 2.0)] * 5)


def test_a_learned_temperature_must_start_inside_the_clamp():
    with pytest.raises(ValueError, match=r"temperature: a learned temperature .* got 2\.0"):
        DualEncoder(_Linear(2, 2), _Linear(2, 2), temperature=2.0)
    assert DualEncoder(_Linear(2, 2), _Linear(2, 2), temperature=1.0).temperature == pytest.approx(1.0)


def test_contrastive_step_records_only_while_training():
    model, step = DualEncoder(_Linear(6, 4), _Linear(5, 4)), ContrastiveStep("x", "y")
    batch = _paired(8)
    step(model, batch)
    model.eval()
    step(model, batch)
    assert len(step.logit_scales) == 1


@pytest.mark.parametrize("kwargs, match", [({"dim": 0}, "dim"), ({"temperature": 0.001}, "temperature"),
                                           ({"temperature": "hot"}, "temperature")])
def test_dual_encoder_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DualEncoder(_Linear(2, 2), _Linear(2, 2), **kwargs)
    with pytest.raises(ValueError, match="text_encoder"):
        DualEncoder(_Linear(2, 2), nn.Identity())


def _identity_dual_encoder(d: int = 3) -> DualEncoder:
    model = DualEncoder(_Linear(d, d), _Linear(d, d), dim=d)
    for part in (model.image_encoder, model.text_encoder, model.image_projection, model.text_projection):
        with torch.no_grad():
            part.weight.copy_(torch.eye(d))
            if part.bias is not None:
                part.bias.zero_()
    return model


def test_zero_shot_classifier_on_a_hand_made_case():
    model = _identity_dual_encoder()
    prompts = torch.eye(3)  # class c's prompt embeds to the unit vector e_c
    images = torch.tensor([[0.1, 2.0, 0.0], [0.0, 0.2, -1.0], [5.0, 1.0, 1.0], [0.0, 0.1, 0.3]])
    classifier = zero_shot_classifier(model, prompts)
    assert classifier.class_embeddings.shape == (3, 3)
    assert classifier(images).argmax(1).tolist() == [1, 1, 0, 2]  # the largest cosine with e_c
    expected = math.exp(LOGIT_SCALE_INIT) * torch.nn.functional.normalize(images, dim=1)
    assert torch.allclose(classifier(images), expected, atol=1e-5)


def test_zero_shot_prompt_ensembles():
    model = _identity_dual_encoder(2)
    # class 0: prompts at 10 and 170 degrees (their mean points at 90); class 1: one prompt at 45, twice
    angle = torch.tensor([[10.0, 170.0], [45.0, 45.0]]).deg2rad()
    prompts = torch.stack([angle.cos(), angle.sin()], dim=-1)  # (2, 2, 2)
    image = torch.tensor([[20.0]]).deg2rad()
    image = torch.cat([image.cos(), image.sin()], dim=1)  # at 20 degrees: class 1's mean is closer, class 0's best
    # prompt closer still
    assert zero_shot_classifier(model, prompts, "mean")(image).argmax(1).item() == 1
    assert zero_shot_classifier(model, prompts, "max")(image).argmax(1).item() == 0
    with pytest.raises(ValueError, match="ensemble"):
        zero_shot_classifier(model, prompts, "vote")
    with pytest.raises(ValueError, match="prompts"):
        zero_shot_classifier(model, torch.zeros(3))
    with pytest.raises(ValueError, match="model"):
        zero_shot_classifier(nn.Linear(2, 2), prompts)


def test_shapes_encoders():
    image = torch.rand(5, 3, 32, 32)
    encoder = PatchSetEncoder(out_dim=10)
    assert encoder(image).shape == (5, 10) and encoder.out_dim == 10
    text = ConvTextEncoder(vocab_size=20, out_dim=12)
    tokens = torch.randint(1, 20, (5, 26))
    assert text(tokens).shape == (5, 12)
    with pytest.raises(ValueError, match="tokens"):
        text(tokens.float())
    with pytest.raises(ValueError, match="image"):
        encoder(torch.rand(5, 3, 16, 16))
