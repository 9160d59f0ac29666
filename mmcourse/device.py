"""Device choice and seeding, so that every lesson runs unchanged on a GPU, a Mac or a laptop CPU."""

from __future__ import annotations

import math
import os
import random
from contextlib import contextmanager

import numpy as np
import torch

DEVICE_VARIABLE = "MMCOURSE_DEVICE"


def _backend(device_type: str):
    """The module torch keeps for a device type (``torch.cuda``, ``torch.mps``, ``torch.xpu``, or the module
    of a backend registered for PrivateUse1), or None where torch has none with ``is_available``."""
    module = getattr(torch, device_type, None)
    return module if callable(getattr(module, "is_available", None)) else None


def _is_available(device_type: str) -> bool:
    if device_type == "cpu":
        return True
    if device_type == "mps":  # torch.backends.mps answers in every torch the course allows
        return torch.backends.mps.is_available()
    backend = _backend(device_type)
    return backend is not None and bool(backend.is_available())


def get_device() -> torch.device:
    """The device lessons train on: CUDA if available, then Apple MPS, then the CPU.

    Set the environment variable ``MMCOURSE_DEVICE`` to choose yourself: ``cpu``, ``cuda``, ``cuda:1``,
    ``mps``, or any other device type that torch has a module for (``xpu``, or a backend registered
    for PrivateUse1, such as the test suite's fake accelerator). A device that is unknown, not
    available, or has an index past the machine's device count raises ``ValueError``.
    """
    override = os.environ.get(DEVICE_VARIABLE, "").strip()
    if override:
        try:
            device = torch.device(override)
        except RuntimeError as err:
            raise ValueError(
                f"{DEVICE_VARIABLE}: expected a torch device such as 'cpu' or 'cuda', got {override!r}"
            ) from err
        if not _is_available(device.type):
            raise ValueError(f"{DEVICE_VARIABLE}: device {override!r} is not available on this machine")
        backend = _backend(device.type)
        if device.type != "cpu" and device.index is not None and callable(getattr(backend, "device_count", None)):
            count = backend.device_count()
            if device.index >= count:
                exists = ", ".join(f"{device.type}:{i}" for i in range(count)) or "none"
                raise ValueError(f"{DEVICE_VARIABLE}: got {override!r}, but this machine has {count} "
                                 f"{device.type} device(s): {exists}")
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


def draw_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    """Where to draw random numbers for a tensor on ``device``: on the generator's own device (then move the
    draw to ``device``: a CPU generator, such as :func:`seed_everything` returns, gives the CPU's draws on
    every device), or on ``device`` itself without a generator."""
    if generator is None:
        return device
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator: expected a torch.Generator or None, got {type(generator).__name__}")
    return generator.device


def available_cpus() -> int:
    """CPUs this process may really use: its CPU affinity, capped by a cgroup CPU quota.

    Containers (Binder, CI runners, Docker) often show every core of the host but allow only one
    or two through a quota; torch then starts one thread per visible core, and the threads
    fight over the quota, which makes small computations many times slower.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    for quota_file, period_file in (("/sys/fs/cgroup/cpu.max", None),
                                    ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")):
        try:
            with open(quota_file) as f:
                fields = f.read().split()
            if period_file is not None:
                with open(period_file) as f:
                    fields.append(f.read().strip())
            quota, period = fields[0], fields[1]
            if quota not in ("max", "-1") and int(period) > 0:
                cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
            break
        except (OSError, ValueError, IndexError):
            continue
    return max(1, cpus)


MAX_THREADS = 4  # small models gain nothing from more threads, and lose much to their overhead


def limit_threads() -> int:
    """Set torch's CPU thread count for the course's small models; return the count.

    At most one thread per CPU the process really gets (:func:`available_cpus`), a single thread
    where that is two or fewer, and never more than ``MAX_THREADS``: the course's models are small,
    so on two cores a second thread saves only 10-20% on an idle machine, while under any competing
    load (the browser showing the notebook, a test runner, a Binder neighbour) the two threads wait
    on each other and training runs 5-20 times slower (measured on lessons 01-03); and on a
    16-core machine torch's default of 16 threads made a small CCA fit 40 times slower than one
    thread (benchmarks/cca_fit.py). Never raises the count.

    Left alone when you chose yourself through ``OMP_NUM_THREADS`` or ``MMCOURSE_THREADS``
    (the latter sets the count).
    """
    chosen = os.environ.get("MMCOURSE_THREADS", "").strip()
    if chosen:
        if not chosen.isdigit() or int(chosen) < 1:
            raise ValueError(f"MMCOURSE_THREADS: expected a whole number >= 1, got {chosen!r}")
        torch.set_num_threads(int(chosen))
    elif not os.environ.get("OMP_NUM_THREADS"):
        cpus = available_cpus()
        wanted = 1 if cpus <= 2 else min(cpus, MAX_THREADS)
        if wanted < torch.get_num_threads():
            torch.set_num_threads(wanted)
    return torch.get_num_threads()


@contextmanager
def one_thread():
    """Run torch and NumPy's BLAS on one thread inside the block, for fair and repeatable timings."""
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)
