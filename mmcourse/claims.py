"""``claim``: a statement in a lesson that the notebook computes and checks.

A claim prints a green check mark with the numbers behind it, or raises ``ClaimError``, so the
test suite (which runs every notebook) fails as soon as a lesson stops telling the truth.
"""

from __future__ import annotations

import numbers

import torch


class ClaimError(AssertionError):
    """A lesson's claim did not hold for the numbers this run computed."""


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


def claim(condition, message: str, **numbers) -> None:
    """Check ``condition``; print ``✓ message (numbers)`` if it holds, raise ``ClaimError`` if not.

    Parameters
    ----------
    condition : bool (or a one-element tensor)
        The statement, computed from this run's results.
    message : str
        What the lesson claims, in words.
    **numbers
        The values the claim rests on, printed next to it.

    Returns nothing, so a cell that ends with a claim prints it once. Example::

        claim(fused > best_single, "fusion beats the best single modality", fused=0.93, best=0.85)
    """
    if isinstance(condition, torch.Tensor):
        if condition.numel() != 1:
            raise ValueError(f"condition: expected one boolean, got a tensor of shape {tuple(condition.shape)}")
        condition = bool(condition.item())
    detail = ", ".join(f"{k}={_format(v)}" for k, v in numbers.items())
    line = message + (f"  ({detail})" if detail else "")
    if not condition:
        raise ClaimError("claim does not hold: " + line)
    print("\N{CHECK MARK} " + line)
