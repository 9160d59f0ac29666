"""Lesson 03's claims hold on other seeds than the lesson's (``claims_hold``)."""

from claims_hold import claim_tests

from mmcourse.experiments import attention as experiments

measured, test_every_claim_is_measured, test_claim_holds = claim_tests(experiments, seeds=(2,))
