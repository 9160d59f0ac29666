"""Checks that give learners feedback on their exercise solutions.

An exercise pairs a reference implementation from the package with a few test cases. ``check``
runs the learner's function on every case and compares it with the reference, and says *what*
differs: an exception, a wrong type, a wrong shape, or wrong values (with the largest error and
where it is), naming the case. A function that still raises ``NotImplementedError`` is reported
as "not done yet", so a learner can run the whole notebook before attempting the exercises. A function
that calls the package's own implementation (the reference itself, or a thin wrapper around it) is
rejected: the exercise is to build it.

Three kinds, all checked with ``check("name", submission)``:

- a **function exercise** (:func:`register`): the learner's function against the reference on each case;
- a **build** (:func:`register` with ``drive``): the learner's ``nn.Module`` class or training step, run by the
  exercise's ``drive`` (the module given the reference's weights, or one step from the same start) and compared
  with the package's class on the same inputs: the outputs, the loss, the parameters after the step;
- an **experiment** (:func:`register_experiment`): the learner's setting or control is run, and the *measured
  outcome* is judged by the lesson's :class:`~mmcourse.claims.Claim` thresholds, which hold on seeds 0-9 for a
  correct attempt (``benchmarks/claims.py`` measures them). The learner records a prediction first
  (:func:`predict`); the check prints it beside what the run measured.

Each lesson's exercises live in a module of this package named after its topic (``fusion.py``, ``cca.py``, ...)
that calls :func:`register` and :func:`register_experiment`; ``check("name", fn)`` finds them by name.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import inspect
import io
import math
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, FrameType

import torch


class ExerciseError(AssertionError):
    """Raised by ``check(..., must_pass=True)`` when a solution does not match the reference."""


@dataclass
class Case:
    """One input to try: a short description and the arguments."""

    description: str
    args: tuple
    kwargs: dict = field(default_factory=dict)


@dataclass
class Exercise:
    """A named exercise: the reference function, a function making the cases, tolerances, and what to
    say once it passes (for a "find the bug" exercise: what the bug was and why the cases caught it)."""

    name: str
    reference: Callable
    cases: Callable[[], list[Case]]
    atol: float = 1e-5
    rtol: float = 1e-4
    explanation: str = ""
    forbid: tuple[str, ...] = ()  # more functions a solution must not call (dotted names, the package's or torch's)
    # How a build's submission (a class, a training step) is run on a case: drive(submission, *args, **kwargs) gives
    # what is compared with reference(*args, **kwargs). None: the submission is called like the reference.
    drive: Callable | None = None
    # The package's functions that the reference calls (found on first use) and ``forbid``: a solution must not.
    _forbidden: dict[CodeType, str] | None = field(default=None, repr=False)


EXERCISES: dict[str, Exercise | Experiment] = {}


def register(name: str, reference: Callable, cases: Callable[[], list[Case]], atol: float = 1e-5,
             rtol: float = 1e-4, explanation: str = "", forbid: tuple[str, ...] = (),
             drive: Callable | None = None) -> Exercise:
    """Add an exercise to :data:`EXERCISES` (lessons' modules call this) and return it.

    ``explanation`` is printed under the check mark by the worked solution (``must_pass=True``): for a
    "find the bug" exercise, what the bug was and which case gives it away. A learner's passing fix is
    pointed to the solution cell instead, so that Run All, which runs the learner's cells too, prints no
    explanation outside the hidden solution. A solution may not call the package's
    functions that the reference calls (found by running it); ``forbid`` names more, such as a function
    that does the whole job one level up (``"mmcourse.meta.adapt"``) or a library's equal
    (``"torch.distributions.kl.kl_divergence"``).

    A **build** gives ``drive(submission, *args, **kwargs)``: how the learner's class or training step is run on a
    case, returning what ``reference(*args, **kwargs)`` returns for the package's (for a module: build the
    learner's class, load the reference's weights with ``load_state_dict``, return its output; for a training
    step: run it from the case's start and return the loss and the parameters after it). The learner's code
    must not call what the reference calls (the package's class), as for a function exercise; ``drive`` itself
    is the check's code and may.
    """
    EXERCISES[name] = Exercise(name, reference, cases, atol, rtol, explanation, tuple(forbid), drive)
    return EXERCISES[name]


@dataclass
class Experiment:
    """An experiment exercise: the learner's submission (a function returning a setting, or a control to run)
    is run by ``run(submission, seed)``, which returns the measured values by name; each value named in
    ``outcomes`` is judged by its :class:`~mmcourse.claims.Claim` (in the lesson's ``experiments`` module, whose
    ``measure_claims`` measures it for a correct attempt on every seed). ``predicted`` names the value the
    learner's prediction is about, ``question`` says what to predict."""

    name: str
    run: Callable
    outcomes: dict
    question: str
    predicted: str
    reference: Callable  # a correct attempt (the worked solution's), for the tests and the benchmark


PREDICTIONS: dict[str, object] = {}


def register_experiment(name: str, run: Callable, outcomes: dict, question: str, predicted: str,
                        reference: Callable) -> Experiment:
    """Add an experiment exercise to :data:`EXERCISES` and return it.

    ``run(submission, seed) -> dict[str, float]`` runs the learner's attempt and measures it; ``outcomes`` maps
    names of the measured values to the :class:`~mmcourse.claims.Claim` that judges each (``op``, ``threshold``
    and the words of the message); ``question`` is what the learner predicts before running ("the accuracy
    with the image missing"), ``predicted`` the measured value that answers it. Its outcome claims must be
    among the claims its topic's ``measure_claims`` returns, measured with ``reference``, so that a correct
    attempt passes on seeds 0-9 (a test checks this).
    """
    EXERCISES[name] = Experiment(name, run, dict(outcomes), question, predicted, reference)
    return EXERCISES[name]


PASSED: dict[str, Callable] = {}  # exercise name -> the last submission that passed its check in this process


def yours_or(exercise: str, yours, fallback):
    """``yours`` (the learner's class or function) once it has passed the check of ``exercise`` in this kernel,
    else ``fallback`` (the package's equal), saying which one the next cell uses. A build section trains the
    learner's module this way, and a student version still runs top to bottom before the build is done."""
    name = getattr(yours, "__name__", repr(yours))
    if PASSED.get(exercise) is yours:
        print(f"\N{CHECK MARK} using your {name} (it passed its check)")
        return yours
    other = getattr(fallback, "__qualname__", repr(fallback))
    print(f"\N{BALLOT X} your {name} has not passed its check yet: the package's {other} stands in for it")
    return fallback


def predict(experiment: str, value) -> None:
    """Record a prediction for an experiment exercise before running it: predicting first is the point (a number
    guessed after seeing the result teaches nothing). ``value`` is ``None`` until the learner writes one."""
    ex = _find(experiment)
    if not isinstance(ex, Experiment):
        raise ValueError(f"experiment: {experiment!r} is a function exercise, not an experiment")
    if value is None:
        PREDICTIONS.pop(experiment, None)
        print(f"\N{WRITING HAND} {experiment}: predict {ex.question}: write your guess in place of None, run this "
              "cell, then run the experiment")
        return
    PREDICTIONS[experiment] = value
    print(f"\N{CHECK MARK} {experiment}: prediction recorded ({ex.question}: {value}); now run the experiment")


def compare(got, expected, atol: float = 1e-5, rtol: float = 1e-4, where: str = "the result") -> str | None:
    """Describe how ``got`` differs from ``expected``; ``None`` when they match.

    Tensors must have the same shape and close values; tuples and lists are compared item by
    item, dicts key by key (a dict of parameters, for example); numbers must be close.
    """
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"{where} should be a torch.Tensor of shape {tuple(expected.shape)}, got {type(got).__name__}"
        if got.shape != expected.shape:
            return f"{where} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
        if expected.dtype == torch.bool or not expected.is_floating_point():
            wrong = (got != expected).nonzero()
            if len(wrong):
                i = tuple(wrong[0].tolist())
                return f"{where} differs at index {i}: got {got[i].item()}, expected {expected[i].item()}"
            return None
        got_f, exp_f = got.detach().double(), expected.detach().double()
        if torch.isnan(got_f).any() and not torch.isnan(exp_f).any():
            return f"{where} contains NaN"
        error = (got_f - exp_f).abs()
        bad = error > atol + rtol * exp_f.abs()
        if bad.any():
            i = tuple(bad.nonzero()[0].tolist()) if error.ndim else ()
            return (f"{where} has wrong values: largest error {error.max().item():.3g}; at index {i} got "
                    f"{got_f[i].item():.5g}, expected {exp_f[i].item():.5g}")
        return None
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"{where} should be a {type(expected).__name__} of {len(expected)} items, got {got!r:.80}"
        for i, (g, e) in enumerate(zip(got, expected)):
            problem = compare(g, e, atol, rtol, f"item {i} of {where}")
            if problem:
                return problem
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            keys = sorted(got) if isinstance(got, dict) else type(got).__name__
            return f"{where} should be a dict with keys {sorted(expected)}, got {keys}"
        for key in expected:
            problem = compare(got[key], expected[key], atol, rtol, f"{where}[{key!r}]")
            if problem:
                return problem
        return None
    if isinstance(expected, (int, float)):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, torch.Tensor):
            return f"{where} should be a single number, got a tensor of shape {tuple(got.shape)}"
        if not isinstance(got, (int, float)):
            return f"{where} should be a number, got {type(got).__name__}"
        if not math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
            return f"{where} is {got:.6g}, expected {expected:.6g}"
        return None
    return None if got == expected else f"{where} is {got!r:.80}, expected {expected!r:.80}"


class Checked:
    """What :func:`check` returns: true when every case matched. A notebook cell that ends with a check
    shows the printed feedback only (no ``True`` or ``False`` under it)."""

    def __init__(self, passed: bool) -> None:
        self.passed = passed

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"Checked(passed={self.passed})"

    def _ipython_display_(self) -> None:  # the printed line already says it
        pass


def check(exercise: str | Exercise | Experiment, fn: Callable, must_pass: bool = False, seed: int = 0) -> Checked:
    """Run ``fn`` on every case of ``exercise`` and print what, if anything, differs from the reference.

    The cases run in order and the first that differs is reported, with the cases that passed before it (which
    case passes is often the clue in a find-the-bug exercise).

    Returns a :class:`Checked`, true when all cases match. With ``must_pass=True`` (used by the worked solutions, so
    that the test suite notices a broken one) a mismatch raises ``ExerciseError``.

    For an experiment (:func:`register_experiment`), ``fn`` is the learner's attempt: it is run with ``seed`` and
    each measured outcome is judged by its claim's threshold; the recorded prediction is shown beside the
    measurement.
    """
    ex = _find(exercise) if isinstance(exercise, str) else exercise
    if isinstance(ex, Experiment):
        return _judge(ex, fn, must_pass, seed)
    cases = ex.cases()
    if ex._forbidden is None:
        ex._forbidden = _package_calls(ex.reference, cases[0]) | {_code_of(name): name for name in ex.forbid}
    for number, case in enumerate(cases, start=1):
        label = f"case {number} of {len(cases)} ({case.description})"
        # The learner's function gets its own copy of the inputs: one that changes them in place (sets
        # ``gru.batch_first``, normalises a tensor with ``/=``) must not change what the reference sees.
        args, kwargs = _copy(case.args), _copy(case.kwargs)
        try:
            with _CallWatch(ex._forbidden) as watch:
                got = ex.drive(fn, *args, **kwargs) if ex.drive else fn(*args, **kwargs)
        except NotImplementedError as err:
            return _report(ex, False, _not_done(err), must_pass)
        except Exception as err:  # the learner's code failed: say where and how
            return _report(ex, False, f"{label} raised {type(err).__name__}: {err}", must_pass)
        if watch.called:
            return _report(ex, False, f"your function calls `{watch.called}`, which already does what this exercise "
                                      "asks you to write (the package's own implementation or its equal); write it "
                                      "yourself from the formula (plain torch operations are fine)", must_pass)
        problem = compare(got, ex.reference(*case.args, **case.kwargs), ex.atol, ex.rtol)
        if problem:
            passed = "; ".join(f"case {i} ({c.description})" for i, c in enumerate(cases[: number - 1], start=1))
            return _report(ex, False, f"{label}: {problem}" + (f"\n  passed before it: {passed}" if passed else ""),
                           must_pass)
    if not must_pass:  # a worked solution's check must not stand in for the learner's own
        PASSED[ex.name] = fn
    return _report(ex, True, f"all {len(cases)} cases match the reference", must_pass)


def _judge(ex: Experiment, fn: Callable, must_pass: bool, seed: int) -> Checked:
    """Run an experiment exercise's attempt and judge its measured outcomes (see :func:`check`)."""
    from ..claims import _format

    reference = getattr(ex.reference, "__code__", None)
    if reference is not None and getattr(fn, "__code__", None) is reference:
        return _report(ex, False, f"your attempt is `{_name(reference)}`, the package's own answer to this "
                                  "experiment; write your own", must_pass)
    try:
        with _CallWatch({reference: _name(reference)} if reference else {}, callers="learner") as watch:
            measured = ex.run(fn, seed)
    except NotImplementedError as err:
        return _report(ex, False, _not_done(err), must_pass)
    except ValueError as err:  # the package's own check of the setting: say it as it is
        return _report(ex, False, f"your attempt was rejected: {err}", must_pass)
    if watch.called:
        return _report(ex, False, f"your attempt calls `{watch.called}`, the package's own answer to this "
                                  "experiment; write your own", must_pass)
    lines, ok = [], True
    for key, outcome in ex.outcomes.items():
        value = measured[key]
        holds = outcome.holds(value)
        ok &= holds
        mark = "\N{CHECK MARK}" if holds else "\N{BALLOT X}"
        lines.append(f"{mark} {outcome.quantity} = {_format(value)} (needed {outcome.op} {outcome.threshold:g}: "
                     f"{outcome.statement})")
    others = {k: v for k, v in measured.items() if k not in ex.outcomes}
    if others:
        lines.append("also measured: " + ", ".join(f"{k} = {_format(v)}" for k, v in others.items()))
    if not must_pass:
        if ex.name in PREDICTIONS:
            lines.append(f"you predicted {ex.question}: {PREDICTIONS[ex.name]}; this run (seed {seed}) measured "
                         f"{_format(measured[ex.predicted])}")
        else:
            lines.append(f"no prediction recorded: next time, run exercises.predict({ex.name!r}, ...) first")
    head = f"your run (seed {seed}) " + ("meets every outcome" if ok else "misses an outcome")
    return _report(ex, ok, head + "\n  " + "\n  ".join(lines), must_pass)


def _not_done(err: NotImplementedError) -> str:
    """ "not done yet", naming the function that still raises (a build's part may call another of the learner's
    functions: say which one is unfinished)."""
    import traceback

    frames = traceback.extract_tb(err.__traceback__)
    where = f" in `{frames[-1].name}`" if frames else ""
    return f"not done yet: replace `raise NotImplementedError`{where} with your code"


_PACKAGE = Path(__file__).resolve().parents[1]  # mmcourse/
_EXERCISES = Path(__file__).resolve().parent  # mmcourse/exercises/


@functools.cache
def _where(filename: str) -> str:
    """"checks" for this package's exercise checks, "methods" for the rest of mmcourse, "" for other code
    (cached: a profile hook asks for every call, millions during an import)."""
    path = Path(filename).resolve()
    if path.is_relative_to(_EXERCISES):
        return "checks"
    return "methods" if path.is_relative_to(_PACKAGE) else ""


def _in_package(code: CodeType) -> bool:
    """Whether ``code`` belongs to mmcourse's methods (not to these checks, not to torch or the learner)."""
    return _where(code.co_filename) == "methods"


def _package_calls(reference: Callable, case: Case) -> dict[CodeType, str]:
    """The functions of mmcourse that ``reference`` calls itself (its implementation: ``procrustes``,
    ``CCA.__init__`` and ``CCA.fit``, ...), found by running it once on ``case``: called from the reference or
    from other code of these checks (a lambda it hands to ``torch.func.grad``), not the helpers those functions
    call in turn. The reference's own code too, so that calling the check's wrapper is caught as well. Their
    names, by code object."""
    own = getattr(reference, "__code__", None)
    found: dict[CodeType, str] = {} if own is None else {own: _name(own)}

    def profile(frame: FrameType, event: str, arg) -> None:
        caller = frame.f_back
        if event == "call" and caller is not None and _in_package(frame.f_code) and (
                caller.f_code is own or _in_checks(caller.f_code)):
            found[frame.f_code] = _name(frame.f_code)

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        reference(*case.args, **case.kwargs)
    finally:
        sys.setprofile(previous)
    return found


def _in_checks(code: CodeType) -> bool:
    return _where(code.co_filename) == "checks"


def _code_of(dotted: str) -> CodeType:
    """The code object of the function ``dotted`` ("mmcourse.meta.adapt", "mmcourse.cca.CCA.fit",
    "scipy.linalg.orthogonal_procrustes"), unwrapped from its decorators; importing it if need be."""
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            target = getattr(target, attribute)
        # A decorated function's own code, not its wrapper's: SciPy's batching wrapper, for one, shares its code
        # with every batched scipy.linalg function.
        return inspect.unwrap(target).__code__
    raise ValueError(f"forbid: no function {dotted!r} to import")


def _name(code: CodeType) -> str:
    module = Path(code.co_filename).resolve().relative_to(_PACKAGE.parent).with_suffix("")
    return f"{'.'.join(module.parts)}.{code.co_qualname}"


class _CallWatch:
    """Notes whether any of ``forbidden``'s functions runs inside the ``with`` block, however it was called
    (an imported name, a wrapper, a method): by the code object, with a profile hook."""

    def __init__(self, forbidden: dict[CodeType, str], callers: str = "any") -> None:
        # callers="learner": only calls from code outside the package count (an experiment's own run may call
        # the reference attempt's helpers; the learner's attempt may not call the reference)
        self.forbidden, self._seen, self._previous, self.callers = forbidden, [], None, callers

    @property
    def called(self) -> str:
        """The forbidden function that ran ("" if none): the package's method rather than the check's wrapper."""
        methods = [name for name in self._seen if ".exercises." not in name]
        return (methods or self._seen or [""])[0]

    def _profile(self, frame: FrameType, event: str, arg) -> None:
        if event == "call" and frame.f_code in self.forbidden and self.forbidden[frame.f_code] not in self._seen:
            caller = frame.f_back
            if self.callers == "learner" and caller is not None and _where(caller.f_code.co_filename):
                return
            self._seen.append(self.forbidden[frame.f_code])

    def __enter__(self) -> _CallWatch:
        self._previous = sys.getprofile()
        if self.forbidden:
            sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc) -> None:
        sys.setprofile(self._previous)


def _copy(value):
    """A deep copy of a case's inputs (tensors, modules, containers); the value itself where one cannot be
    copied (a tensor in the middle of a graph)."""
    try:
        return copy.deepcopy(value)
    except RuntimeError:
        return value


def _report(ex: Exercise | Experiment, ok: bool, message: str, must_pass: bool) -> Checked:
    mark = "\N{CHECK MARK}" if ok else "\N{BALLOT X}"
    line = f"{mark} {ex.name}: {message}"
    if not ok and must_pass:
        raise ExerciseError(line)
    # the why of a find-the-bug exercise: only the (hidden) solution cell tells it
    if ok and getattr(ex, "explanation", ""):
        line += "\n  " + (ex.explanation if must_pass else "Open the solution cell below to read why the bug mattered.")
    if must_pass and _in_a_notebook():
        _show_folded(line)
    else:
        print(line)
    return Checked(ok)


def _in_a_notebook() -> bool:
    """True in a Jupyter kernel (JupyterLab, nbval, nbclient); False in plain Python and under pytest."""
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    return shell is not None and hasattr(shell, "kernel")


class _Folded:
    """A worked solution's check, folded: JupyterLab shows a cell's outputs again whenever it runs the cell, so
    ``jupyter.outputs_hidden`` cannot keep them hidden through Run All. Its HTML is a closed ``<details>``; its
    plain text (terminals, nbval) is the line itself."""

    def __init__(self, line: str) -> None:
        self.line = line

    def _repr_html_(self) -> str:
        import html

        return ("<details><summary>Worked solution, checked (open to read the result)</summary><pre>"
                + html.escape(self.line) + "</pre></details>")

    def __repr__(self) -> str:
        return self.line


def _show_folded(line: str) -> None:
    from IPython.display import display

    display(_Folded(line))


@contextlib.contextmanager
def folded():
    """Fold what a worked solution cell prints besides its check (a ``verify`` that the solution reproduces a
    number, say), so that Run All shows it closed, as the check itself is. Outside a notebook it prints as usual::

        with exercises.folded():
            verify(...)
    """
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield
    text = buffer.getvalue().rstrip("\n")
    if text and _in_a_notebook():
        _show_folded(text)
    elif text:
        print(text)


def all_exercises() -> dict[str, Exercise | Experiment]:
    """Every lesson's exercises, by name: :data:`EXERCISES` once each lesson's module has registered its own."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return EXERCISES


def _find(name: str) -> Exercise | Experiment:
    """The registered exercise ``name``, loading every lesson's exercise module on first use."""
    if name not in EXERCISES:
        all_exercises()
    if name not in EXERCISES:
        raise ValueError(f"exercise: no exercise named {name!r}; known: {sorted(EXERCISES)}")
    return EXERCISES[name]
