"""Checked statements in lessons: ``verify`` for identities, ``claim`` and :class:`Claim` for findings.

Two kinds of statement, two behaviours:

- ``verify(condition, message)`` states an identity or an equality with a reference ("our
  attention equals PyTorch's", "this parameter count is the formula's"). If it is false the code is
  wrong, on any machine, so it always raises :class:`VerificationError`.
- ``claim(condition, message)`` and :meth:`Claim.check` state an empirical result of training
  ("fusion beats the best single modality"). A run on another machine is, in effect, another seed,
  so a lesson claims only what holds on seeds 0-9 with a margin (``benchmarks/claims.py``). Where
  it still fails in a learner's kernel, it prints a clear ✗ with the numbers and the notebook goes
  on. Under the test suite (``MMCOURSE_STRICT_CLAIMS=1``, set by ``conftest.py`` for the tests, the
  notebooks' kernels and the browser test's JupyterLab) it raises :class:`ClaimError`.

A :class:`Claim` is a named constant next to the experiment behind it (``mmcourse.experiments``):
the statement, the quantity it measures and its threshold, used by the lesson, by its test and by
the benchmark, so that the three cannot drift.
"""

from __future__ import annotations

import numbers
import operator
import os
from dataclasses import dataclass

import torch

STRICT_VARIABLE = "MMCOURSE_STRICT_CLAIMS"
WHY_IT_CAN_DIFFER = (
    "Results change a little with the seed, the hardware (CPU or GPU arithmetic) and any setting you "
    "changed; the course checks this claim on seeds 0-9 (benchmarks/claims.py), so a clear miss with "
    "the lesson's settings is worth reporting."
)


class ClaimError(AssertionError):
    """A lesson's claim did not hold for the numbers this run computed (raised in strict mode)."""


class VerificationError(AssertionError):
    """An identity or an equality with a reference did not hold: the code is wrong."""


def strict() -> bool:
    """True when a false claim must raise: the environment variable ``MMCOURSE_STRICT_CLAIMS`` is set
    to ``1``, ``true`` or ``yes`` (the test suite sets it)."""
    return os.environ.get(STRICT_VARIABLE, "").strip().lower() in {"1", "true", "yes"}


def _format(value) -> str:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.4g}"
    return str(value)


def _as_bool(condition) -> bool:
    if isinstance(condition, torch.Tensor):
        if condition.numel() != 1:
            raise ValueError(f"condition: expected one boolean, got a tensor of shape {tuple(condition.shape)}")
        return bool(condition.item())
    return bool(condition)


def _line(message: str, values: dict) -> str:
    detail = ", ".join(f"{k}={_format(v)}" for k, v in values.items())
    return message + (f"  ({detail})" if detail else "")


def verify(condition, message: str, **values) -> None:
    """Check an identity or an equality with a reference: print ``✓ message (values)``, or raise.

    Use it where a false result means the code is wrong (an algebraic identity, agreement with
    PyTorch or scikit-learn to a tolerance, a parameter count). Always raises
    :class:`VerificationError` when false, in a learner's kernel too. Example::

        verify(gap < 1e-5, "our attention equals PyTorch's", largest_difference=gap)
    """
    line = _line(message, values)
    if not _as_bool(condition):
        raise VerificationError("does not hold: " + line)
    print("\N{CHECK MARK} " + line)


def claim(condition, message: str, **values) -> None:
    """Check an empirical finding: print ``✓ message (values)`` when it holds.

    When it does not hold, a learner's kernel prints ``✗`` with the numbers and why results can
    differ, and the notebook goes on; in strict mode (the test suite) it raises :class:`ClaimError`.
    Returns nothing, so that a cell ending with a claim prints it once. Example::

        claim(fused > best_single, "fusion beats the best single modality", fused=0.93, best=0.85)
    """
    line = _line(message, values)
    if _as_bool(condition):
        print("\N{CHECK MARK} " + line)
    elif strict():
        raise ClaimError("claim does not hold: " + line)
    else:
        print(f"\N{BALLOT X} this run does not support the claim: {line}\n  {WHY_IT_CAN_DIFFER}")


_OPERATORS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


@dataclass(frozen=True)
class Claim:
    """A lesson's claim: a statement, the quantity that tests it, and a threshold.

    Parameters
    ----------
    statement : what the lesson says, in words.
    quantity : what is measured, e.g. ``"smallest gain over the best single modality"``.
    op : ``">="`` or ``">"`` (the quantity must reach the threshold), ``"<="`` or ``"<"``.
    threshold : the bound, chosen so that the claim holds on seeds 0-9 with a margin well above the
        spread between seeds (``benchmarks/claims.py`` prints both).

    Example::

        >>> FUSION_HELPS = Claim("fusion helps", "gain in accuracy", ">=", 0.05)
        >>> FUSION_HELPS.holds(0.08), round(FUSION_HELPS.margin(0.08), 3)
        (True, 0.03)
    """

    statement: str
    quantity: str
    op: str
    threshold: float

    def __post_init__(self) -> None:
        if self.op not in _OPERATORS:
            raise ValueError(f"op: expected one of {sorted(_OPERATORS)}, got {self.op!r}")

    def holds(self, value: float) -> bool:
        """Whether ``value`` satisfies the claim."""
        return bool(_OPERATORS[self.op](float(value), self.threshold))

    def margin(self, value: float) -> float:
        """How far ``value`` is on the right side of the threshold (negative when the claim fails)."""
        return float(value) - self.threshold if self.op in (">=", ">") else self.threshold - float(value)

    def check(self, value: float, **values) -> None:
        """:func:`claim` this statement for ``value``; print the quantity, the threshold and ``values``."""
        line = f"{self.statement}: {self.quantity} = {_format(value)} {self.op} {self.threshold:g}"
        claim(self.holds(value), line, **values)


def claims_of(module) -> dict[str, Claim]:
    """The :class:`Claim` constants a module defines, by name, in the order they are defined."""
    return {name: value for name, value in vars(module).items() if isinstance(value, Claim)}
