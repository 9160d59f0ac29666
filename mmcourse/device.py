"""Device choice and seeding, so that every lesson runs unchanged on a GPU, a Mac or a laptop CPU."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

DEVICE_VARIABLE = "MMCOURSE_DEVICE"


def get_device() -> torch.device:
    """The device lessons train on: CUDA if available, then Apple MPS, then the CPU.

    Set the environment variable ``MMCOURSE_DEVICE`` (for example ``cpu`` or ``cuda:1``) to
    choose yourself; an unknown or unavailable device raises ``ValueError``.
    """
    override = os.environ.get(DEVICE_VARIABLE, "").strip()
    if override:
        try:
            device = torch.device(override)
        except RuntimeError as err:
            raise ValueError(
                f"{DEVICE_VARIABLE}: expected a torch device such as 'cpu' or 'cuda', got {override!r}"
            ) from err
        available = {
            "cpu": True,
            "cuda": torch.cuda.is_available(),
            "mps": torch.backends.mps.is_available(),
        }.get(device.type, False)
        if not available:
            raise ValueError(f"{DEVICE_VARIABLE}: device {override!r} is not available on this machine")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's, NumPy's and torch's random number generators; return a seeded torch Generator."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(int(seed))
