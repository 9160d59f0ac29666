"""Tests that a lesson's claims hold on seeds other than the lesson's own seed 0.

Every experiments module defines its claims as :class:`mmcourse.Claim` constants and a
``measure_claims(seed)`` that runs the lesson's experiments and returns the quantity each claim
tests. A topic's test module gets two tests per seed from :func:`claim_tests`:

    measured, test_every_claim_is_measured, test_claim_holds = claim_tests(experiments, seeds=(1,))

The lesson checks the same constants on seed 0 under nbval, and ``benchmarks/claims.py`` shows
seeds 0-9 with their margins.
"""

from __future__ import annotations

import pytest

from mmcourse.claims import claims_of


def claim_tests(module, seeds):
    """The fixture and the two tests for ``module``'s claims, on each of ``seeds``."""
    claims = claims_of(module)
    assert claims, f"{module.__name__} defines no Claim"

    @pytest.fixture(scope="module", params=list(seeds), ids=lambda s: f"seed{s}")
    def measured(request):
        return module.measure_claims(request.param)

    def test_every_claim_is_measured(measured):
        assert set(measured) == set(claims.values())

    @pytest.mark.parametrize("name", list(claims))
    def test_claim_holds(measured, name):
        claim = claims[name]
        value = measured[claim]
        assert claim.holds(value), f"{name}: {claim.statement}: {claim.quantity} = {value:.4g}, " \
                                   f"needs {claim.op} {claim.threshold:g}"

    return measured, test_every_claim_is_measured, test_claim_holds
