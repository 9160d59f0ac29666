"""mmcourse: the tested implementations behind the multimodal machine learning course.

Lessons import what they need from here. Light names are imported eagerly; submodules
(``mmcourse.data``, ``mmcourse.fusion`` ...) load on first use so that ``import mmcourse``
stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil

from .claims import Claim, ClaimError, VerificationError, claim, verify
from .device import get_device, limit_threads, seed_everything
from .train import History, evaluate, fit, predict

__version__ = "0.1.0"
limit_threads()  # threads for small models on the CPUs really granted (see its docstring)
_SUBMODULES = {module.name for module in pkgutil.iter_modules(__path__)}  # fusion, cca, views, ... loaded on use
__all__ = [
    "Claim", "ClaimError", "History", "VerificationError", "claim", "evaluate", "fit", "get_device", "limit_threads",
    "predict", "seed_everything", "verify",
]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'mmcourse' has no attribute {name!r}")
