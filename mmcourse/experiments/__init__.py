"""The experiments behind the lessons' claims, one module per lesson, as plain functions.

A lesson calls its experiment (for example with ``seed=0``) and checks the claims on the result;
the test suite calls the same function with several seeds, so every claim is shown to hold
beyond the one run a learner sees. Keep the methods themselves in their own modules
(``mmcourse.fusion``, ``mmcourse.cca`` ...); these functions only train, measure and return numbers.
"""
