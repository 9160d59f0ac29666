"""Lesson 05's exercise checks: the worked solutions pass, and typical mistakes fail with a message that says
which case and what differs."""

import re

import pytest
import torch

from mmcourse import exercises
from mmcourse.exercises import ExerciseError


def test_the_sample_and_kl_check_catches_the_variance_used_as_the_standard_deviation():
    def variance_for_sigma(mu, logvar, eps):
        return mu + logvar.exp() * eps, 0.5 * (logvar.exp() + mu.pow(2) - 1 - logvar).sum(-1)

    with pytest.raises(ExerciseError, match=r"case 2 of 3 \(variance 4.*got 4, expected 2"):
        exercises.check("sample_and_kl", variance_for_sigma, must_pass=True)


def test_the_negative_elbo_check_catches_a_mean_against_a_sum():
    def buggy(x, x_mean, mu, logvar, scale=1.0):  # the lesson's buggy_negative_elbo
        reconstruction = torch.nn.functional.mse_loss(x_mean, x) / (2 * scale**2)
        return reconstruction - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())

    def fixed(x, x_mean, mu, logvar, scale=1.0):
        reconstruction = (x - x_mean).pow(2).flatten(1).sum(1) / (2 * scale**2)
        return (reconstruction - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)).mean()

    with pytest.raises(ExerciseError, match=r"case 2 of 3 \(one sample, 64 pixels"):
        exercises.check("negative_elbo", buggy, must_pass=True)
    assert exercises.check("negative_elbo", fixed, must_pass=True)


def _kl_summed_over_the_batch(mu, logvar, eps):
    return mu + (0.5 * logvar).exp() * eps, 0.5 * (logvar.exp() + mu.pow(2) - 1 - logvar).sum()


def _kl_averaged_over_the_dimensions(mu, logvar, eps):
    return mu + (0.5 * logvar).exp() * eps, 0.5 * (logvar.exp() + mu.pow(2) - 1 - logvar).mean(-1)


def test_the_sample_and_kl_check_rejects_a_kl_summed_over_the_batch_or_averaged_over_z():
    with pytest.raises(ExerciseError, match=r"case 1 of 3.*item 1 of the result has shape \(\), expected \(2,\)"):
        exercises.check("sample_and_kl", _kl_summed_over_the_batch, must_pass=True)
    with pytest.raises(ExerciseError, match=r"case 2 of 3"):
        exercises.check("sample_and_kl", _kl_averaged_over_the_dimensions, must_pass=True)


def test_the_negative_elbo_check_rejects_half_a_fix_and_a_sum_over_everything():
    def reconstruction_fixed_only(x, x_mean, mu, logvar, scale=1.0):
        reconstruction = (x - x_mean).pow(2).flatten(1).sum(1).mean() / (2 * scale**2)
        return reconstruction - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())

    def summed_over_everything(x, x_mean, mu, logvar, scale=1.0):
        reconstruction = torch.nn.functional.mse_loss(x_mean, x, reduction="sum") / (2 * scale**2)
        return reconstruction - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())

    for wrong in (reconstruction_fixed_only, summed_over_everything):
        with pytest.raises(ExerciseError, match=r"case 3 of 3 \(8 samples"):
            exercises.check("negative_elbo", wrong, must_pass=True)


def test_the_lesson_imports_each_reference_after_its_exercises_and_no_solution_calls_one():
    """Lesson 05 imports the package's functions that the checks reject only after the exercises they answer,
    so that a learner does not find them in the namespace; and the worked solutions do not call them."""
    from lesson_cells import LessonCode

    lesson = LessonCode("05_autoencoders")
    kl_exercises = ("sample_and_kl", "negative_elbo")
    for function, exercise_names in (("kl_to_standard_normal", kl_exercises), ("kl_divergence", kl_exercises),
                                     ("product_of_experts", ("mvae_loss",)), ("MVAE", ("mvae_loss", "mvae_step"))):
        imported = lesson.first(f"import {function}" if function != "kl_divergence" else "import Normal, kl_divergence")
        assert all(lesson.last(f'exercises.check("{name}"') < imported for name in exercise_names), function
    solutions = lesson.solutions
    assert len(solutions) == 4
    calls = re.compile(r"\b(kl_to_standard_normal|product_of_experts|kl_divergence|_kl|_product|reparameterize|"
                       r"MVAE\.loss|mvae_step)\(")
    assert not any(calls.search(source) for source in solutions)


def _sample(mu, logvar, eps):
    return mu + (0.5 * logvar).exp() * eps


def _kl_by_torch(mu, logvar, eps):
    from torch.distributions import Normal, kl_divergence

    return _sample(mu, logvar, eps), kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)


def _kl_by_torchs_normal_normal(mu, logvar, eps):
    from torch.distributions import Normal
    from torch.distributions.kl import _kl_normal_normal

    prior = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    return _sample(mu, logvar, eps), _kl_normal_normal(Normal(mu, (0.5 * logvar).exp()), prior).sum(-1)


def _kl_by_the_private_helper(mu, logvar, eps):
    from mmcourse.autoencoders import _kl

    return _sample(mu, logvar, eps), _kl(mu, logvar)


def _kl_by_the_package(mu, logvar, eps):
    from mmcourse.autoencoders import kl_to_standard_normal

    return _sample(mu, logvar, eps), kl_to_standard_normal(mu, logvar)


@pytest.mark.parametrize("solution, called", [
    (_kl_by_torch, "torch.distributions.kl.kl_divergence"),
    (_kl_by_torchs_normal_normal, "torch.distributions.kl._kl_normal_normal"),
    (_kl_by_the_private_helper, "mmcourse.autoencoders._kl"),
    (_kl_by_the_package, "mmcourse.autoencoders.kl_to_standard_normal"),
], ids=["torch.distributions", "torch's Normal-Normal KL", "the package's _kl", "kl_to_standard_normal"])
def test_the_kl_checks_reject_a_kl_they_did_not_write(solution, called):
    """Exercises 1 and 2 reject a KL taken from torch.distributions or from the package, public or private: each
    gives the right numbers, so only the call can tell."""
    with pytest.raises(ExerciseError, match=rf"calls `{called}`"):
        exercises.check("sample_and_kl", solution, must_pass=True)

    def negative_elbo(x, x_mean, mu, logvar, scale=1.0):
        reconstruction = (x - x_mean).pow(2).flatten(1).sum(1) / (2 * scale**2)
        return (reconstruction + solution(mu, logvar, torch.zeros_like(mu))[1]).mean()

    with pytest.raises(ExerciseError, match=rf"calls `{called}`"):
        exercises.check("negative_elbo", negative_elbo, must_pass=True)


def test_the_find_the_bug_explains_itself_once_fixed(capsys):
    def fixed(x, x_mean, mu, logvar, scale=1.0):
        reconstruction = (x - x_mean).pow(2).flatten(1).sum(1) / (2 * scale**2)
        return (reconstruction + 0.5 * (logvar.exp() + mu.pow(2) - 1 - logvar).sum(-1)).mean()

    assert exercises.check("negative_elbo", fixed, must_pass=True)
    out = capsys.readouterr().out
    assert "mse_loss" in out and "case 2" in out and "case 3" in out


def test_an_unfinished_exercise_is_not_done_yet(capsys):
    def stub(*args):
        raise NotImplementedError

    class Stub(torch.nn.Module):  # the build's scaffold, unfilled
        def __init__(self, coders, beta=1.0, unimodal=True):
            super().__init__()
            self.coders, self.beta, self.unimodal = torch.nn.ModuleList(coders), beta, unimodal

        def loss(self, *xs):
            raise NotImplementedError

    for name, submission in (("sample_and_kl", stub), ("negative_elbo", stub), ("mvae_loss", Stub),
                             ("mvae_step", stub), ("kl_weight", stub)):
        assert not exercises.check(name, submission)
    assert capsys.readouterr().out.count("not done yet") == 5


# ----------------------------------------------------------------------------- the build: MVAE's loss and step
class RightMVAE(torch.nn.Module):
    """The build's worked solution (as in the lesson), written here from the paper."""

    def __init__(self, coders, beta=1.0, unimodal=True):
        super().__init__()
        self.coders, self.beta, self.unimodal = torch.nn.ModuleList(coders), beta, unimodal

    def posterior(self, experts):
        precision = 1 + sum((-logvar).exp() for _, logvar in experts)
        return sum(mu * (-logvar).exp() for mu, logvar in experts) / precision, -precision.log()

    def sample(self, mu, logvar, eps):
        return mu + (0.5 * logvar).exp() * eps

    def rebuilt(self, xs, z, which):
        return sum(self.coders[m].log_likelihood(xs[m], self.coders[m].decode(z)) for m in which)

    def subsets(self):
        return [[0, 1], [0], [1]] if self.unimodal else [[0, 1]]

    def loss(self, *xs):
        experts = [coder.encode(x) for coder, x in zip(self.coders, xs)]
        elbo = 0
        for subset in self.subsets():
            eps = torch.randn_like(experts[0].mu)
            mu, logvar = self.posterior([experts[m] for m in subset])
            kl = 0.5 * (logvar.exp() + mu.pow(2) - 1 - logvar).sum(-1)
            elbo = elbo + self.rebuilt(xs, self.sample(mu, logvar, eps), subset) - self.beta * kl
        return -elbo.mean()


class NoPriorExpert(RightMVAE):
    def posterior(self, experts):  # the product of the modalities' experts only
        precision = sum((-logvar).exp() for _, logvar in experts)
        return sum(mu * (-logvar).exp() for mu, logvar in experts) / precision, -precision.log()


class VarianceForSigma(RightMVAE):
    def sample(self, mu, logvar, eps):
        return mu + logvar.exp() * eps


class EveryModalityRebuilt(RightMVAE):  # MMVAE's demand: each set's code rebuilds both modalities
    def rebuilt(self, xs, z, which):
        return super().rebuilt(xs, z, range(len(self.coders)))


class SummedOverTheBatch(RightMVAE):
    def loss(self, *xs):
        return super().loss(*xs) * len(xs[0])


class BetaIgnored(RightMVAE):
    def __init__(self, coders, beta=1.0, unimodal=True):
        super().__init__(coders, 1.0, unimodal)


class OnePerSample(RightMVAE):
    def loss(self, *xs):
        return super().loss(*xs).expand(len(xs[0]))


class UnimodalIgnored(RightMVAE):
    def subsets(self):
        return [[0, 1], [0], [1]]


class NoiseDrawnFirst(RightMVAE):
    def loss(self, *xs):  # every eps drawn before the loop: right in law, other numbers than the package's draws
        experts = [coder.encode(x) for coder, x in zip(self.coders, xs)]
        eps = torch.randn(len(self.subsets()), *experts[0].mu.shape).unbind()
        elbo = 0
        for subset, e in zip(self.subsets(), eps):
            mu, logvar = self.posterior([experts[m] for m in subset])
            kl = 0.5 * (logvar.exp() + mu.pow(2) - 1 - logvar).sum(-1)
            elbo = elbo + self.rebuilt(xs, self.sample(mu, logvar, e), subset) - self.beta * kl
        return -elbo.mean()


def test_the_build_passes_the_worked_solution():
    assert exercises.check("mvae_loss", RightMVAE, must_pass=True)


@pytest.mark.parametrize("wrong, message", [
    (NoPriorExpert, r"case 1 of 4 \(one scene and its caption\): the result has wrong values"),
    (VarianceForSigma, r"case 1 of 4 .*wrong values"),
    (EveryModalityRebuilt, r"case 1 of 4 .*wrong values"),
    (OnePerSample, r"case 1 of 4 .*the result has shape \(1,\), expected \(\)"),
    (SummedOverTheBatch, r"case 2 of 4 \(8 scenes and their captions\).*\n  passed before it: case 1"),
    (BetaIgnored, r"case 3 of 4 \(8 digits and their spectrograms, a KL weight beta = 4\)"),
    (UnimodalIgnored, r"case 4 of 4 \(.*unimodal=False"),
    (NoiseDrawnFirst, r"case 2 of 4 .*wrong values"),
], ids=["no prior expert", "variance for sigma", "every modality rebuilt", "one loss per sample",
        "summed over the batch", "beta ignored", "unimodal ignored", "noise drawn elsewhere"])
def test_the_builds_check_names_the_case_a_common_mistake_fails(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check("mvae_loss", wrong, must_pass=True)


def test_the_build_rejects_the_packages_mvae_and_its_parts():
    from mmcourse.autoencoders import MVAE

    class Thin(MVAE):  # its own loss, which hands the work to the package's
        def loss(self, *xs):
            return super().loss(*xs)

    class ProductFromThePackage(RightMVAE):
        def posterior(self, experts):
            from mmcourse.autoencoders import product_of_experts

            prior = torch.zeros_like(experts[0].mu)
            mus, logvars = zip(*experts)
            return tuple(product_of_experts(torch.stack([prior, *mus]), torch.stack([prior, *logvars])))

    class SampleFromThePackage(RightMVAE):
        def sample(self, mu, logvar, eps):
            from mmcourse.autoencoders import reparameterize

            return reparameterize(mu, logvar)

    for submission, called in ((MVAE, "MVAE.loss"), (Thin, "MVAE.loss"),
                               (ProductFromThePackage, "product_of_experts"),
                               (SampleFromThePackage, "reparameterize")):
        with pytest.raises(ExerciseError, match=rf"calls `mmcourse.autoencoders.{called}`"):
            exercises.check("mvae_loss", submission, must_pass=True)


def right_step(model, batch, optimizer):
    optimizer.zero_grad()
    loss = model.loss(*batch)
    loss.backward()
    optimizer.step()
    return loss.item()


def test_the_step_check_passes_the_worked_solution_and_a_loss_returned_as_a_tensor():
    assert exercises.check("mvae_step", right_step, must_pass=True)

    def tensor_loss(model, batch, optimizer):
        optimizer.zero_grad()
        loss = model.loss(*batch)
        loss.backward()
        optimizer.step()
        return loss.detach()

    assert exercises.check("mvae_step", tensor_loss, must_pass=True)


def _no_zero_grad(model, batch, optimizer):
    loss = model.loss(*batch)
    loss.backward()
    optimizer.step()
    return loss.item()


def _step_before_backward(model, batch, optimizer):
    optimizer.zero_grad()
    loss = model.loss(*batch)
    optimizer.step()
    loss.backward()
    return loss.item()


def _no_loss_returned(model, batch, optimizer):
    right_step(model, batch, optimizer)


def _the_packages_step(model, batch, optimizer):
    from mmcourse.experiments.autoencoders import mvae_step

    return mvae_step(model, batch, optimizer)


@pytest.mark.parametrize("wrong, message", [
    (_no_zero_grad, r"case 2 of 2 \(two steps of Adam.*result\['coders\.0\.body\.0\.weight'\] has wrong values"),
    (_step_before_backward, r"case 1 of 2 .*has wrong values"),
    (_no_loss_returned, r"case 1 of 2 .*item 0 of the result\['losses'\] should be a number, got NoneType"),
    (_the_packages_step, r"calls `mmcourse.experiments.autoencoders.mvae_step`"),
], ids=["no zero_grad", "step before backward", "no loss returned", "the package's step"])
def test_the_step_check_catches_the_usual_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check("mvae_step", wrong, must_pass=True)


def test_the_checks_leave_torchs_generator_as_they_found_it():
    """A check in a notebook draws its cases' weights and noise from a seeded generator of its own: the cells
    after it draw what they would have drawn without it."""
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    exercises.check("mvae_loss", RightMVAE)
    exercises.check("mvae_step", right_step)
    assert torch.equal(torch.rand(3), expected)
