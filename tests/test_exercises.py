"""The exercise checker: it says what is wrong and which case failed."""

import pytest
import torch

from mmcourse.exercises import EXERCISES, Case, Exercise, ExerciseError, check, compare, register


def test_correct_solution_passes(capsys):
    assert check("accuracy", lambda s, y: (s.argmax(1) == y).float().mean().item())
    assert "\N{CHECK MARK} accuracy: all 3 cases match" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, message",
    [
        (lambda s, y: (s.argmin(1) == y).float().mean().item(),
         "case 1 of 3 (4 samples, 3 classes): the result is 0.25, expected 0.75"),
        (lambda s, y: (s.argmax(1) == y).float(), "should be a single number, got a tensor of shape (4,)"),
        (lambda s, y: (s.argmax(0) == y).float().mean(), "case 1 of 3 (4 samples, 3 classes) raised RuntimeError"),
        (lambda s, y: "0.75", "should be a number, got str"),
    ],
)
def test_wrong_solutions_are_explained(fn, message, capsys):
    assert not check("accuracy", fn)
    out = capsys.readouterr().out
    assert out.startswith("\N{BALLOT X} accuracy") and message in out


def test_not_implemented_is_not_done_yet(capsys):
    def stub(scores, labels):
        raise NotImplementedError

    assert not check("accuracy", stub)
    assert "not done yet" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not done yet"):
        check("accuracy", stub, must_pass=True)


def test_compare_tensors_tuples_and_values():
    a = torch.arange(6.0).reshape(2, 3)
    assert compare(a, a.clone()) is None
    assert "shape (3, 2), expected (2, 3)" in compare(a.T, a)
    b = a.clone()
    b[1, 2] += 1
    assert "at index (1, 2) got 6, expected 5" in compare(b, a)
    assert "item 1 of the result" in compare((a, b), (a, a))
    assert "2 items" in compare((a,), (a, a))
    assert "contains NaN" in compare(torch.full((2,), float("nan")), torch.zeros(2))
    assert "differs at index (1,)" in compare(torch.tensor([1, 2]), torch.tensor([1, 3]))
    assert compare("yes", "yes") is None and "expected 'no'" in compare("yes", "no")
    params = {"weight": a, "bias": torch.zeros(2)}
    assert compare(dict(params), params) is None
    assert "the result['bias'] has wrong values" in compare({"weight": a, "bias": torch.ones(2)}, params)
    assert "keys ['bias', 'weight']" in compare({"weight": a}, params)


def test_register_a_new_exercise():
    ex = register("double", lambda x: 2 * x, lambda: [Case("ones", (torch.ones(3),))])
    assert EXERCISES["double"] is ex
    assert check("double", lambda x: x + x)
    assert not check(ex, lambda x: x)
    del EXERCISES["double"]


def test_unknown_exercise_is_a_clear_error():
    with pytest.raises(ValueError, match="no exercise named 'nope'"):
        check("nope", lambda: None)


def test_the_explanation_is_printed_by_the_solution_cell_only(capsys):
    """Run All runs the learner's cells too: a find-the-bug explanation must come only from the hidden solution
    (``must_pass=True``); a learner's passing fix is sent there, a failing or unfinished one hears nothing."""
    ex = register("triple", lambda x: 3 * x, lambda: [Case("ones", (torch.ones(2),))],
                  explanation="the bug was a factor of two")
    assert not check(ex, lambda x: 2 * x)
    assert "the bug was" not in capsys.readouterr().out

    def unfinished(x):
        raise NotImplementedError

    assert not check(ex, unfinished)
    assert "the bug was" not in capsys.readouterr().out
    assert check(ex, lambda x: x * 3)
    out = capsys.readouterr().out
    assert "the bug was" not in out and "solution cell" in out
    assert check(ex, lambda x: x * 3, must_pass=True)
    assert capsys.readouterr().out.endswith("\n  the bug was a factor of two\n")
    del EXERCISES["triple"]


def test_the_gru_bug_of_lesson_00_is_caught_and_the_fix_passes(capsys):
    def buggy(x, gru):
        outputs, _ = gru(x)  # (B, L, E) read as (L, B, E)
        return outputs[:, -1]

    def fixed(x, gru):
        return gru(x.transpose(0, 1))[0][-1]

    assert not check("last_hidden", buggy)
    assert "case 1 of 4 (one caption of 6 words): the result has wrong values" in capsys.readouterr().out
    assert check("last_hidden", fixed, must_pass=True)
    assert "batch_first" in capsys.readouterr().out


def test_a_check_shows_only_its_feedback_in_a_notebook(capsys):
    result = check("accuracy", lambda s, y: (s.argmax(1) == y).float().mean().item())
    assert result and result.passed and repr(result) == "Checked(passed=True)"
    result._ipython_display_()  # what IPython calls when a cell ends with the check: nothing more to show
    assert capsys.readouterr().out.count("\N{CHECK MARK}") == 1


def _every_exercise() -> list[str]:
    """The function exercises (builds and experiments are run their own way and have their own tests)."""
    check("accuracy", lambda s, y: (s.argmax(1) == y).float().mean().item())  # loads every lesson's exercises
    return sorted(name for name, ex in EXERCISES.items() if isinstance(ex, Exercise) and ex.drive is None)


@pytest.mark.parametrize("name", _every_exercise())
def test_the_reference_itself_is_rejected(name, capsys):
    """In every exercise, the function the notebook imported (called directly, through the check's own reference,
    or from a thin wrapper of the learner's) fails with a message that names it, and not with a values mismatch."""
    import sys

    exercise = EXERCISES[name]
    assert not check(name, lambda *args, **kwargs: None)  # a wrong answer: finds the functions to watch for
    capsys.readouterr()
    implementation = [f for f in exercise._forbidden.values() if ".exercises." not in f]
    assert exercise._forbidden and all(f.startswith(("mmcourse.", "torch.", "scipy."))
                                       for f in exercise._forbidden.values())

    def wrapper(*args, **kwargs):
        return exercise.reference(*args, **kwargs)

    for fn in (exercise.reference, wrapper):
        assert not check(name, fn)
        out = capsys.readouterr().out
        # The message names the package's method the reference wraps (procrustes, CCA.fit, ...): it is caught
        # inside the wrapper, so calling it directly is caught too. Only where the reference is the check's own
        # code (a find-the-bug exercise's corrected function) does it name that.
        named = implementation[0] if implementation else next(iter(exercise._forbidden.values()))
        assert out.startswith(f"\N{BALLOT X} {name}: your function calls `{named}`"), out
        assert "which already does what this exercise asks you to write" in out
        with pytest.raises(ExerciseError, match="your function calls"):
            check(name, fn, must_pass=True)
    assert sys.getprofile() is None, "the check leaves no profile hook behind"


def test_a_thin_wrapper_of_the_package_function_is_rejected(capsys):
    from mmcourse.metrics import accuracy

    assert not check("accuracy", lambda s, y: accuracy(s, y))
    assert "your function calls `mmcourse.metrics.accuracy`" in capsys.readouterr().out
    # A learner's own code that happens to share nothing with the package still passes.
    assert check("accuracy", lambda s, y: (s.argmax(1) == y).double().mean().item())


def test_a_solution_built_on_the_package_one_level_up_is_rejected(capsys):
    """MAML's meta-gradient: the reference reaches ``maml_loss`` through a lambda inside ``torch.func.grad``, and
    ``adapt`` (the inner step with its graph kept) would do the find-the-bug exercise's job: both are caught."""
    import torch.nn.functional as F
    from torch.func import functional_call, grad

    from mmcourse.meta import adapt, maml_loss

    def via_maml_loss(model, params, support_x, support_y, query_x, query_y, inner_lr):
        detached = {k: v.detach() for k, v in params.items()}
        return grad(lambda p: maml_loss(model, p, (support_x, support_y), (query_x, query_y), F.cross_entropy,
                                        inner_lr))(detached)

    def via_adapt(model, params, support_x, support_y, query_x, query_y, inner_lr):
        adapted = adapt(model, params, (support_x, support_y), F.cross_entropy, inner_lr)
        loss = F.cross_entropy(functional_call(model, adapted, (query_x,)), query_y)
        return dict(zip(params, torch.autograd.grad(loss, list(params.values()))))

    for fn, name in ((via_maml_loss, "mmcourse.meta.maml_loss"), (via_adapt, "mmcourse.meta.adapt")):
        assert not check("meta_gradient", fn)
        assert f"your function calls `{name}`" in capsys.readouterr().out

    def own(model, params, support_x, support_y, query_x, query_y, inner_lr):  # written out: passes
        inner = F.cross_entropy(functional_call(model, params, (support_x,)), support_y)
        g = torch.autograd.grad(inner, list(params.values()), create_graph=True)
        adapted = {k: v - inner_lr * gk for (k, v), gk in zip(params.items(), g)}
        loss = F.cross_entropy(functional_call(model, adapted, (query_x,)), query_y)
        return dict(zip(params, torch.autograd.grad(loss, list(params.values()))))

    assert check("meta_gradient", own)


def test_a_failing_case_is_reported_with_the_cases_that_passed_before_it(capsys):
    ex = register("halve", lambda x: x / 2, lambda: [Case("zeros", (torch.zeros(2),)), Case("ones", (torch.ones(2),)),
                                                     Case("twos", (2 * torch.ones(2),))])
    assert not check(ex, lambda x: x * 0)
    out = capsys.readouterr().out
    assert "case 2 of 3 (ones)" in out and "passed before it: case 1 (zeros)" in out and "twos" not in out
    del EXERCISES["halve"]


def test_folded_prints_outside_a_notebook(capsys):
    """In a kernel the text is displayed in a closed <details> (the browser test checks the executed lessons)."""
    from mmcourse.exercises import folded

    with folded():
        print("a verify line")
    assert capsys.readouterr().out == "a verify line\n"


class _Scale(torch.nn.Module):
    """A toy "package class" for the build tests: y = w * x + b."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.w, self.b = torch.nn.Parameter(torch.randn(d)), torch.nn.Parameter(torch.randn(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w * x + self.b


def _toy_build():
    def reference(state, x):
        model = _Scale(x.shape[-1])
        model.load_state_dict(state)
        return model(x)

    def drive(cls, state, x):
        model = cls(x.shape[-1])
        model.load_state_dict(state)
        return model(x)

    def cases():
        torch.manual_seed(0)
        return [Case("d=3", (_Scale(3).state_dict(), torch.randn(5, 3)))]

    # The package's classes are found by running the reference; this toy class is not the package's: named here.
    return register("toy_build", reference, cases, drive=drive, forbid=(f"{__name__}._Scale.forward",))


def test_a_build_runs_the_learners_class_with_the_references_weights(capsys):
    ex = _toy_build()

    class Right(_Scale):  # the same parameters, its own forward
        def forward(self, x):
            return x * self.w + self.b

    class Wrong(_Scale):
        def forward(self, x):
            return self.w * x

    class Lazy(_Scale):
        def forward(self, x):
            return _Scale.forward(self, x)  # the package's forward: not building it

    assert check(ex, Right)
    assert not check(ex, Wrong)
    assert "case 1 of 1 (d=3): the result has wrong values" in capsys.readouterr().out
    assert not check(ex, Lazy)
    assert "your function calls `" in capsys.readouterr().out
    del EXERCISES["toy_build"]


def test_yours_or_uses_the_learners_build_only_once_it_passed(capsys):
    from mmcourse.exercises import yours_or

    ex = _toy_build()

    class Mine(_Scale):
        def forward(self, x):
            return x * self.w + self.b

    assert yours_or("toy_build", Mine, _Scale) is _Scale
    assert "has not passed its check yet" in capsys.readouterr().out
    check(ex, Mine)
    assert yours_or("toy_build", Mine, _Scale) is Mine
    assert "using your Mine" in capsys.readouterr().out
    del EXERCISES["toy_build"]


def _toy_experiment():
    from mmcourse.claims import Claim
    from mmcourse.exercises import register_experiment

    big = Claim("a large enough setting clears the bar", "the measured value", ">=", 1.0)

    def run(attempt, seed):
        value = attempt()
        if value < 0:
            raise ValueError(f"setting: expected a number >= 0, got {value}")
        return {"value": 2.0 * value + 0.01 * seed, "cost": value}

    return register_experiment("toy_experiment", run, {"value": big}, question="the measured value",
                               predicted="value", reference=lambda: 1.0)


def test_an_experiment_judges_the_measured_outcome_and_shows_the_prediction(capsys):
    from mmcourse.exercises import PREDICTIONS, predict

    ex = _toy_experiment()
    predict("toy_experiment", None)
    assert "write your guess in place of None" in capsys.readouterr().out
    assert not check(ex, lambda: 0.2)
    out = capsys.readouterr().out
    assert out.startswith("\N{BALLOT X} toy_experiment: your run (seed 0) misses an outcome")
    assert "the measured value = 0.4 (needed >= 1" in out and "no prediction recorded" in out
    assert "also measured: cost = 0.2" in out
    predict("toy_experiment", 1.5)
    assert check(ex, lambda: 1.0, seed=3)
    out = capsys.readouterr().out
    assert "meets every outcome" in out
    assert "you predicted the measured value: 1.5; this run (seed 3) measured 2.03" in out
    assert not check(ex, lambda: -1.0)
    assert "your attempt was rejected: setting: expected a number >= 0" in capsys.readouterr().out

    def unfinished():
        raise NotImplementedError

    assert not check(ex, unfinished)
    assert "not done yet" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="misses an outcome"):
        check(ex, lambda: 0.2, must_pass=True)
    with pytest.raises(ValueError, match="function exercise, not an experiment"):
        predict("accuracy", 0.5)
    PREDICTIONS.pop("toy_experiment", None)
    del EXERCISES["toy_experiment"]


def test_an_experiment_rejects_the_packages_own_attempt(capsys):
    """The correct attempt the benchmark measures lives in the package; handing it in (or wrapping it) is not an
    attempt. Only calls from the learner's code count: the experiment's own run may use the package."""
    from mmcourse.experiments import welcome as experiments

    assert not check("shuffled_labels", experiments.shuffle_labels)
    assert "your attempt is `mmcourse.experiments.welcome.shuffle_labels`" in capsys.readouterr().out
    assert not check("shuffled_labels", lambda labels, generator: experiments.shuffle_labels(labels, generator))
    assert "your attempt calls `mmcourse.experiments.welcome.shuffle_labels`" in capsys.readouterr().out


def test_not_done_yet_names_the_function_that_still_raises(capsys):
    def my_helper(scores):
        raise NotImplementedError

    def my_accuracy(scores, labels):
        return (my_helper(scores) == labels).float().mean().item()

    assert not check("accuracy", my_accuracy)
    assert "not done yet: replace `raise NotImplementedError` in `my_helper` with your code" in capsys.readouterr().out
