"""Lesson 05's exercise checks: the worked solutions pass, and typical mistakes fail with a message that says
which case and what differs."""

import re

import pytest
import torch

from mmcourse import exercises
from mmcourse.exercises import ExerciseError


def test_the_product_of_two_experts_check():
    def right(mu1, logvar1, mu2, logvar2):
        t1, t2 = (-logvar1).exp(), (-logvar2).exp()
        return (t1 * mu1 + t2 * mu2) / (t1 + t2), -torch.log(t1 + t2)

    def averaged(mu1, logvar1, mu2, logvar2):  # averages the means: right only for equal variances
        return (mu1 + mu2) / 2, -torch.log((-logvar1).exp() + (-logvar2).exp())

    assert exercises.check("product_of_two_experts", right, must_pass=True)
    with pytest.raises(ExerciseError, match=r"case 2 of 4 \(N\(0, 1\) x N\(4, 1/4\).*got 2, expected 3.2"):
        exercises.check("product_of_two_experts", averaged, must_pass=True)


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


def _precisions(logvar1, logvar2):
    return (-logvar1).exp(), (-logvar2).exp()


def _log_variances_averaged(mu1, logvar1, mu2, logvar2):
    t1, t2 = _precisions(logvar1, logvar2)
    return (t1 * mu1 + t2 * mu2) / (t1 + t2), (logvar1 + logvar2) / 2


def _variance_as_precision(mu1, logvar1, mu2, logvar2):
    t1, t2 = logvar1.exp(), logvar2.exp()
    return (t1 * mu1 + t2 * mu2) / (t1 + t2), -torch.log(t1 + t2)


def _variance_not_its_log(mu1, logvar1, mu2, logvar2):
    t1, t2 = _precisions(logvar1, logvar2)
    return (t1 * mu1 + t2 * mu2) / (t1 + t2), 1 / (t1 + t2)


@pytest.mark.parametrize("wrong, case", [(_log_variances_averaged, 1), (_variance_as_precision, 2),
                                         (_variance_not_its_log, 1)],
                         ids=["log-variances averaged", "variance used as precision", "variance, not its log"])
def test_the_product_check_rejects_the_lab_guides_mistakes(wrong, case):
    with pytest.raises(ExerciseError, match=rf"case {case} of 4"):
        exercises.check("product_of_two_experts", wrong, must_pass=True)


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
                                     ("product_of_experts", ("product_of_two_experts",))):
        imported = lesson.first(f"import {function}" if function != "kl_divergence" else "import Normal, kl_divergence")
        assert all(lesson.last(f'exercises.check("{name}"') < imported for name in exercise_names), function
    solutions = lesson.solutions
    assert len(solutions) == 3
    calls = re.compile(r"\b(kl_to_standard_normal|product_of_experts|kl_divergence|_kl|_product)\(")
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


@pytest.mark.parametrize("helper", ["_product", "product_of_experts"])
def test_the_product_check_rejects_the_packages_product_public_or_private(helper):
    import mmcourse.autoencoders as methods

    def product(mu1, logvar1, mu2, logvar2):
        mu, logvar = torch.stack([mu1, mu2]), torch.stack([logvar1, logvar2])
        return tuple(methods._product(mu, -logvar) if helper == "_product" else methods.product_of_experts(mu, logvar))

    with pytest.raises(ExerciseError, match=rf"calls `mmcourse.autoencoders.{helper}`"):
        exercises.check("product_of_two_experts", product, must_pass=True)


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

    for name in ("product_of_two_experts", "sample_and_kl", "negative_elbo"):
        assert not exercises.check(name, stub)
    assert capsys.readouterr().out.count("not done yet") == 3
