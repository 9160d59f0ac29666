"""mmcourse.autoencoders against closed forms and torch.distributions; every model with every subset of modalities."""

import math

import fake_accelerator as fake
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from mmcourse import fit, seed_everything
from mmcourse.autoencoders import (
    MMVAE,
    MVAE,
    AlignedAutoencoders,
    BimodalAutoencoder,
    Generated,
    SceneCoder,
    TokenCoder,
    VectorCoder,
    gaussian_log_density,
    kl_to_standard_normal,
    mixture_of_experts_sample,
    product_of_experts,
    reparameterize,
    standardized_distance,
    vae_step,
)

D = 4


def _experts(e=3, b=5, d=D, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(e, b, d, generator=g, dtype=torch.float64), torch.randn(e, b, d, generator=g,
                                                                              dtype=torch.float64)


# ----------------------------------------------------------------------------- product of experts
def test_product_of_experts_is_the_precision_weighted_closed_form():
    mu, logvar = _experts()
    precision = 1 / logvar.exp()
    expected_var = 1 / precision.sum(0)
    expected_mu = (precision * mu).sum(0) * expected_var
    got = product_of_experts(mu, logvar)
    torch.testing.assert_close(got.mu, expected_mu)
    torch.testing.assert_close(got.logvar.exp(), expected_var)


def test_product_of_two_unit_gaussians_by_hand():
    # N(0, 1) x N(2, 1) is proportional to N(1, 1/2); N(0, 1) x N(4, 1/4): precisions 1 and 4 -> mean 16/5
    mu = torch.tensor([[[0.0, 0.0]], [[2.0, 4.0]]])
    logvar = torch.log(torch.tensor([[[1.0, 1.0]], [[1.0, 0.25]]]))
    got = product_of_experts(mu, logvar)
    torch.testing.assert_close(got.mu, torch.tensor([[1.0, 3.2]]))
    torch.testing.assert_close(got.logvar.exp(), torch.tensor([[0.5, 0.2]]))


def test_the_product_is_sharper_than_every_expert_and_leans_to_the_surer_one():
    mu, logvar = _experts(e=2, seed=1)
    got = product_of_experts(mu, logvar)
    assert (got.logvar < logvar.min(0).values).all()
    surer = (logvar[0] < logvar[1])  # where expert 0 has the smaller variance, the mean is nearer to it
    nearer_0 = (got.mu - mu[0]).abs() < (got.mu - mu[1]).abs()
    assert torch.equal(surer, nearer_0)


def test_a_masked_expert_is_ignored():
    mu, logvar = _experts(e=3, b=4)
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[1, 2] = False  # expert 1 is missing for sample 2
    got = product_of_experts(mu, logvar, mask)
    without = product_of_experts(mu[[0, 2]], logvar[[0, 2]])
    torch.testing.assert_close(got.mu[2], without.mu[2])
    torch.testing.assert_close(got.logvar[2], without.logvar[2])
    torch.testing.assert_close(got.mu[0], product_of_experts(mu, logvar).mu[0])  # other samples keep all three
    mu2 = mu.clone()
    mu2[1, 2] = 1e6  # whatever the missing expert says changes nothing
    torch.testing.assert_close(product_of_experts(mu2, logvar, mask).mu, got.mu)


def test_one_expert_and_the_prior():
    # N(m, s2) x N(0, 1) = N(m / (1 + s2), s2 / (1 + s2))
    m, s2 = torch.tensor([[1.5, -2.0, 0.0]]), torch.tensor([[0.5, 2.0, 1.0]])
    prior = torch.zeros(1, 1, 3)
    got = product_of_experts(torch.cat([prior, m[None]]), torch.cat([prior, s2.log()[None]]))
    torch.testing.assert_close(got.mu, m / (1 + s2))
    torch.testing.assert_close(got.logvar.exp(), s2 / (1 + s2))


def test_mvae_adds_the_prior_expert_and_drops_a_missing_modality():
    torch.manual_seed(0)
    model = MVAE([VectorCoder((1, 8, 8), D, 16), VectorCoder((5,), D, 16)]).eval()
    image, audio = torch.rand(3, 1, 8, 8), torch.randn(3, 5)
    q_image = model.coders[0].encode(image)
    prior = torch.zeros(1, 3, D)
    alone = product_of_experts(torch.cat([prior, q_image.mu[None]]), torch.cat([prior, q_image.logvar[None]]))
    torch.testing.assert_close(model.posterior(image, None).mu, alone.mu)
    torch.testing.assert_close(model(image, None).mu, alone.mu)
    q_audio = model.coders[1].encode(audio)
    both = product_of_experts(torch.stack([prior[0], q_image.mu, q_audio.mu]),
                              torch.stack([prior[0], q_image.logvar, q_audio.logvar]))
    torch.testing.assert_close(model.posterior(image, audio).logvar, both.logvar)


@pytest.mark.parametrize("case, match", [
    ("no expert for a sample", "mask"), ("mask shape", "mask"), ("mu not 3-D", "mu"), ("logvar shape", "logvar"),
    ("NaN", "NaN"),
])
def test_product_of_experts_rejects_bad_input(case, match):
    mu, logvar = _experts(e=2, b=3)
    mask = torch.ones(2, 3, dtype=torch.bool)
    if case == "no expert for a sample":
        mask[:, 1] = False
    elif case == "mask shape":
        mask = torch.ones(3, 2, dtype=torch.bool)
    elif case == "mu not 3-D":
        mu, logvar = mu[0], logvar[0]
    elif case == "logvar shape":
        logvar = logvar[:, :2]
    else:
        mu[0, 0, 0] = math.nan
    with pytest.raises(ValueError, match=match):
        product_of_experts(mu, logvar, mask)


# ----------------------------------------------------------------------------- KL, reparameterisation, mixture
def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(2)
    mu, logvar = torch.randn(6, 5, generator=g, dtype=torch.float64), 2 * torch.randn(6, 5, generator=g,
                                                                                      dtype=torch.float64)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(kl_to_standard_normal(mu, logvar), expected)
    assert torch.equal(kl_to_standard_normal(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2))
    with pytest.raises(ValueError, match="logvar"):
        kl_to_standard_normal(mu, logvar[:, :2])


def test_a_reparameterised_sample_passes_gradients_to_mu_and_logvar():
    mu = torch.tensor([[0.5, -1.0]], requires_grad=True)
    logvar = torch.tensor([[0.0, math.log(4.0)]], requires_grad=True)
    g = torch.Generator().manual_seed(3)
    z = reparameterize(mu, logvar, g)
    eps = torch.randn(1, 2, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(z, mu + torch.tensor([[1.0, 2.0]]) * eps)
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones(1, 2))  # dz/dmu = 1
    torch.testing.assert_close(logvar.grad, 0.5 * torch.tensor([[1.0, 2.0]]) * eps)  # dz/dlogvar = sigma eps / 2


def test_reparameterised_samples_have_the_right_moments():
    mu, logvar = torch.full((200_000, 1), 3.0), torch.full((200_000, 1), math.log(0.25))
    z = reparameterize(mu, logvar, torch.Generator().manual_seed(4))
    assert abs(z.mean() - 3.0) < 0.01 and abs(z.var() - 0.25) < 0.01


FAKE = fake.unsupported()


@pytest.mark.skipif(FAKE is not None, reason=f"fake accelerator: {FAKE}")
def test_a_cpu_generator_samples_device_tensors_as_on_the_cpu():
    """Issue 31: the CPU generator that ``seed_everything`` returns, with ``mu`` on a device, failed (a draw on
    the device needs a generator there). It now draws on the CPU and moves eps: the CPU's sample, on the device."""
    mu, logvar = _experts(e=2, b=3)
    device = fake.device()
    z = reparameterize(mu.to(device), logvar.to(device), seed_everything(0))
    assert z.device == device and torch.equal(z.cpu(), reparameterize(mu, logvar, seed_everything(0)))
    strata = mixture_of_experts_sample(mu.to(device), logvar.to(device), k=2,
                                       generator=torch.Generator().manual_seed(1))
    expected = mixture_of_experts_sample(mu, logvar, k=2, generator=torch.Generator().manual_seed(1))
    assert strata.z.device == device and torch.equal(strata.z.cpu(), expected.z)
    with pytest.raises(ValueError, match="^generator: expected a torch.Generator or None, got int"):
        reparameterize(mu, logvar, 0)


def test_stratified_sampling_gives_k_samples_of_every_expert_with_equal_weights():
    mu, logvar = _experts(e=3, b=4)
    strata = mixture_of_experts_sample(mu, logvar, k=7, generator=torch.Generator().manual_seed(0))
    assert strata.z.shape == (3, 7, 4, D) and strata.weight.shape == (3, 4)
    torch.testing.assert_close(strata.weight, torch.full((3, 4), 1 / 3, dtype=torch.float64))
    mask = torch.tensor([[True, True, False, True], [True, False, False, True], [True, True, True, False]])
    weight = mixture_of_experts_sample(mu, logvar, mask).weight
    torch.testing.assert_close(weight.sum(0), torch.ones(4, dtype=torch.float64))
    assert (weight[~mask] == 0).all() and weight[0, 2] == 0 and weight[2, 2] == 1
    with pytest.raises(ValueError, match="k"):
        mixture_of_experts_sample(mu, logvar, k=0)


def test_each_stratum_follows_its_own_expert_and_the_weighted_sum_is_the_mixture_mean():
    mu = torch.tensor([[[0.0]], [[10.0]]])  # two experts, one sample, one dimension
    logvar = torch.log(torch.tensor([[[1.0]], [[4.0]]]))
    strata = mixture_of_experts_sample(mu, logvar, k=100_000, generator=torch.Generator().manual_seed(5))
    means, variances = strata.z.mean(1), strata.z.var(1)
    torch.testing.assert_close(means, mu, atol=0.03, rtol=0)
    torch.testing.assert_close(variances, logvar.exp(), atol=0.06, rtol=0)
    mixture_mean = (strata.weight[:, :, None] * means).sum(0)
    torch.testing.assert_close(mixture_mean, torch.tensor([[5.0]]), atol=0.03, rtol=0)


def test_stratified_samples_are_differentiable():
    mu, logvar = (t.float().requires_grad_() for t in _experts(e=2, b=3))
    mixture_of_experts_sample(mu, logvar, k=2).z.sum().backward()
    assert mu.grad is not None and logvar.grad is not None and (mu.grad == 2).all()


def test_gaussian_log_density_matches_torch():
    z, mu, logvar = torch.randn(3, 5), torch.randn(3, 5), torch.randn(3, 5)
    torch.testing.assert_close(gaussian_log_density(z, mu, logvar),
                               Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(-1))


def test_standardized_distance_is_one_minus_the_correlations():
    g = torch.Generator().manual_seed(6)
    a = torch.randn(50, 3, generator=g, dtype=torch.float64)
    b = 0.7 * a + torch.randn(50, 3, generator=g, dtype=torch.float64)
    rho = torch.stack([torch.corrcoef(torch.stack([a[:, d], b[:, d]]))[0, 1] for d in range(3)])
    torch.testing.assert_close(standardized_distance(a, b).mean(), 2 * 49 / 50 * (1 - rho).sum())
    assert standardized_distance(a, a).abs().max() == 0
    torch.testing.assert_close(standardized_distance(10 * a, b), standardized_distance(a, b))  # scale-free


# ----------------------------------------------------------------------------- coders
def test_vector_coder_likelihood_is_torch_normal_times_its_weight():
    coder = VectorCoder((2, 3), latent_dim=D, scale=0.4, weight=2.0)
    x, mean = torch.randn(5, 2, 3), torch.randn(5, 2, 3)
    expected = 2.0 * Normal(mean, 0.4).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(coder.log_likelihood(x, mean), expected)
    assert coder.decode(torch.randn(5, D)).shape == (5, 2, 3)


def test_token_coder_likelihood_is_the_log_probability_of_each_true_token():
    coder = TokenCoder((2, 3), latent_dim=D, weight=3.0)
    logits, x = torch.randn(4, 5), torch.tensor([[0, 2], [1, 0], [1, 1], [0, 0]])
    expected = 3.0 * (torch.log_softmax(logits[:, :2], 1).gather(1, x[:, :1]).squeeze(1)
                      + torch.log_softmax(logits[:, 2:], 1).gather(1, x[:, 1:]).squeeze(1))
    torch.testing.assert_close(coder.log_likelihood(x, logits), expected)
    assert torch.equal(coder.to_data(torch.tensor([[0.0, 1.0, 5.0, 0.0, 1.0]])), torch.tensor([[1, 0]]))


def test_scene_coder_draws_one_silhouette_in_the_chosen_cell():
    coder = SceneCoder(16, latent_dim=D)
    assert coder.place.shape == (9, 36, 256) and (coder.place.sum((1, 2)) == 36).all()
    with torch.no_grad():  # a decoder whose output is: cell 4 (the centre), a full 6x6 silhouette, colour white
        last = coder.decoder[-1]
        last.weight.zero_()
        last.bias.fill_(-30.0)
        last.bias[4] = 30.0
        last.bias[9:-3] = 30.0
        last.bias[-3:] = 30.0
        image = coder.decode(torch.zeros(1, D))[0]
    white = (image > 0.99).all(0)
    assert white[5:11, 5:11].all() and white.sum() == 36  # the window at rows and columns 5..10
    assert torch.allclose(image[:, 0, 0], coder.background.flatten())
    with pytest.raises(ValueError, match="size"):
        SceneCoder(20)


@pytest.mark.parametrize("kind", ["vector", "token", "scene"])
def test_a_coder_builds_only_the_layers_it_keeps(kind):
    """Each coder draws the random numbers of its own layers and no others: the same parameters as its three
    layers (body, to_gaussian, decoder) built by hand in that order, and the generator left where they leave it."""
    hidden = 8
    make, body_in, out = {
        "vector": (lambda: VectorCoder((1, 4, 5), D, hidden), 20, 20),
        "token": (lambda: TokenCoder((2, 3), D, hidden), 5, 5),
        "scene": (lambda: SceneCoder(16, D, hidden), 16 * 16 + 3, 9 + 6 * 6 + 3),
    }[kind]
    torch.manual_seed(0)
    coder = make()
    after_coder = torch.rand(3)
    torch.manual_seed(0)
    layers = [torch.nn.Linear(body_in, hidden), torch.nn.Linear(hidden, 2 * D), torch.nn.Linear(D, hidden),
              torch.nn.Linear(hidden, out)]
    torch.testing.assert_close(torch.rand(3), after_coder, atol=0, rtol=0)  # the same draws, no more
    body = coder.body if kind == "token" else coder.body[0]
    for ours, theirs in zip((body, coder.to_gaussian, coder.decoder[0], coder.decoder[2]), layers):
        torch.testing.assert_close(ours.weight, theirs.weight, atol=0, rtol=0)
        torch.testing.assert_close(ours.bias, theirs.bias, atol=0, rtol=0)
    assert sum(p.numel() for p in coder.parameters()) == sum(p.numel() for layer in layers for p in layer.parameters())


# ----------------------------------------------------------------------------- the models, any subset of modalities
def _shapes_like(batch=6):
    g = torch.Generator().manual_seed(7)
    image = torch.rand(batch, 3, 16, 16, generator=g)
    caption = torch.stack([torch.randint(0, n, (batch,), generator=g) for n in (2, 4, 3, 9)], dim=1)
    return [SceneCoder(16, D, 16), TokenCoder((2, 4, 3, 9), D, 8)], image, caption


def _av_like(batch=6):
    g = torch.Generator().manual_seed(8)
    return [VectorCoder((1, 8, 8), D, 16), VectorCoder((1, 16, 10), D, 16)], torch.rand(batch, 1, 8, 8, generator=g), \
        torch.randn(batch, 1, 16, 10, generator=g)


MAKERS = {"autoencoder": BimodalAutoencoder, "MVAE": MVAE, "MMVAE": MMVAE, "MMVAE k=3": lambda c: MMVAE(c, k=3),
          "MVAE joint only": lambda c: MVAE(c, unimodal=False), "aligned": AlignedAutoencoders}


@pytest.mark.parametrize("data", [_shapes_like, _av_like], ids=["shapes", "av"])
@pytest.mark.parametrize("kind", list(MAKERS))
def test_every_model_accepts_every_subset_of_modalities(kind, data):
    parts, x1, x2 = data()
    torch.manual_seed(0)
    model = MAKERS[kind](parts)
    for subset in ((x1, x2), (x1, None), (None, x2)):
        for mode in (model.train, model.eval):
            mode()
            out = model(*subset)
            assert isinstance(out, Generated)
            assert out.z.shape == out.mu.shape == (6, D)
            assert (out.logvar is None) == (kind in ("autoencoder", "aligned"))
            assert out.outputs[0].shape == x1.shape and out.outputs[1].shape == x2.shape
        model.train()
        loss = model.loss(*subset)
        assert loss.ndim == 0 and torch.isfinite(loss)
        loss.backward()
        assert model.embed(*subset).shape == (6, D)
        generated = model.generate(*subset)
        assert [g.shape for g in generated] == [x1.shape, x2.shape]
    assert model.training  # generate puts the mode back


@pytest.mark.parametrize("kind", list(MAKERS))
def test_every_model_rejects_bad_input(kind):
    parts, image, caption = _shapes_like()
    model = MAKERS[kind](parts)
    nan_image = image.clone()
    nan_image[0, 0, 0, 0] = math.nan
    bad = {
        "every modality is None": (None, None),
        "xs: expected 2": (image,),
        "NaN": (nan_image, caption),
        r"xs\[0\]: expected shape \(B, 3, 16, 16\)": (image[:, :, :8], caption),
        r"xs\[1\]: expected token ids of shape \(B, 4\)": (image, caption[:, :3]),
        "integer token ids": (image, caption.float()),
        "token j in": (image, caption + 5),
        "batch size": (image, caption[:3]),
    }
    for match, xs in bad.items():
        with pytest.raises(ValueError, match=match):
            model(*xs)
        with pytest.raises(ValueError, match=match):
            model.loss(*xs)


def test_models_reject_bad_construction():
    parts, _, _ = _av_like()
    with pytest.raises(ValueError, match="coders"):
        MVAE(parts[:1])
    with pytest.raises(ValueError, match="latent size"):
        MVAE([VectorCoder((3,), 2), VectorCoder((3,), 3)])
    with pytest.raises(ValueError, match="zero_rate"):
        BimodalAutoencoder(parts, zero_rate=2.0)
    with pytest.raises(ValueError, match="k"):
        MMVAE(parts, k=0)
    with pytest.raises(ValueError, match="beta"):
        MVAE(parts, beta=-1.0)
    with pytest.raises(ValueError, match="scale"):
        VectorCoder((3,), scale=0.0)
    with pytest.raises(ValueError, match="sizes"):
        TokenCoder((1, 3))
    with pytest.raises(ValueError, match="z"):
        MVAE(parts).decode(torch.zeros(2, D + 1))


def test_a_zeroed_modality_is_the_same_as_a_missing_one_in_the_autoencoder():
    parts, image, audio = _av_like()
    model = BimodalAutoencoder(parts).eval()
    present = torch.ones(2, 6, dtype=torch.bool)
    present[0, :3] = False  # the first three samples lose their image
    code = model.code(image, audio, present=present)
    torch.testing.assert_close(code[:3], model.code(None, audio[:3]))
    torch.testing.assert_close(code[3:], model.code(image[3:], audio[3:]))


def test_mmvae_generates_from_its_mixture_and_its_mean_in_eval_mode():
    parts, image, audio = _av_like()
    model = MMVAE(parts).eval()
    mus = torch.stack([model.coders[0].encode(image).mu, model.coders[1].encode(audio).mu])
    torch.testing.assert_close(model(image, audio).mu, mus.mean(0))
    torch.testing.assert_close(model(image, None).mu, mus[0])
    torch.testing.assert_close(model(image, None).logvar, model.coders[0].encode(image).logvar)


def test_mvae_loss_is_minus_the_joint_and_the_unimodal_elbos():
    """The loss against the ELBOs written out: the product of the prior and the experts of each subset
    (product_of_experts), a reparameterised sample, each subset's own reconstruction, the closed-form KL."""
    parts, image, audio = _av_like()
    model = MVAE(parts, beta=0.5)
    xs = (image, audio)
    torch.manual_seed(3)
    loss = model.loss(*xs)
    experts = [c.encode(x) for c, x in zip(model.coders, xs)]
    prior = torch.zeros(1, 6, D)
    torch.manual_seed(3)  # the same noise, drawn in the same order: the joint posterior, then each modality
    total = 0.0
    for subset in ([0, 1], [0], [1]):
        q = product_of_experts(torch.cat([prior, torch.stack([experts[m].mu for m in subset])]),
                               torch.cat([prior, torch.stack([experts[m].logvar for m in subset])]))
        z = q.mu + (0.5 * q.logvar).exp() * torch.randn(q.mu.shape)
        recon = sum(model.coders[m].log_likelihood(xs[m], model.coders[m].decode(z)) for m in subset)
        total = total + recon - 0.5 * kl_to_standard_normal(q.mu, q.logvar)
    torch.testing.assert_close(loss, -total.mean())


def test_the_aligned_autoencoders_term_is_their_alignment_of_the_two_codes():
    parts, image, audio = _av_like()
    model = AlignedAutoencoders(parts, weight=2.0)
    z1, z2 = model.codes(image, audio)
    torch.testing.assert_close(model.alignment_term(image, audio), standardized_distance(z1, z2))
    recon = sum(c.log_likelihood(x, c.decode(z)) for c, x, z in zip(model.coders, (image, audio), (z1, z2)))
    torch.testing.assert_close(model.loss(image, audio), (-recon + 2.0 * standardized_distance(z1, z2)).mean())


def test_fit_trains_a_vae_through_its_step():
    parts, image, audio = _av_like(batch=64)
    torch.manual_seed(0)
    model = MVAE(parts)
    history = fit(model, {"image": image, "audio": audio}, ["image", "audio"], None, step=vae_step(["image", "audio"]),
                  epochs=15, batch_size=32, lr=3e-3, progress=False, device="cpu")
    assert history.train_loss[-1] < history.train_loss[0] - 20
