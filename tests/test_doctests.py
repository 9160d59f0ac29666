"""The examples in the package's docstrings run and give what they show (doctest)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "mmcourse"
FILES = sorted(p for p in PACKAGE.rglob("*.py") if ">>>" in p.read_text())
MODULES = [".".join(("mmcourse", *p.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
           for p in FILES]


def test_some_docstrings_have_examples():
    assert len(MODULES) >= 3, MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0, result
