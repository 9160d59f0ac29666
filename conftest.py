"""Test-wide set-up: no network anywhere (here and in notebook kernels), offline Hugging Face, strict claims."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT / "tests"))
import no_network  # noqa: E402

_scratch = Path(tempfile.mkdtemp(prefix="mmcourse-tests-"))
NETWORK_LOG = _scratch / "network.log"
os.environ["MMCOURSE_NETWORK_LOG"] = str(NETWORK_LOG)
os.environ["HF_DATASETS_OFFLINE"] = "1"
# Strict claims: a lesson whose claim fails is an error under the tests, in this process, in nbval's
# kernels and in the browser test's JupyterLab (they inherit this environment). Learners get a ✗ instead.
os.environ["MMCOURSE_STRICT_CLAIMS"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
# The running comparison's rows that lessons keep for lesson 07 (mmcourse.experiments.comparison): in a folder of
# this run, shared by the pytest-xdist workers and the kernels they start, never the user's ~/.cache.
os.environ.setdefault("MMCOURSE_CACHE", str(_scratch / "cache"))
# Kernels started by nbval (and by the browser test) inherit IPYTHONDIR and run this guard first.
startup = _scratch / "ipython" / "profile_default" / "startup"
startup.mkdir(parents=True)
(startup / "00-no-network.py").write_text(
    f"import sys\nsys.path.insert(0, {str(ROOT / 'tests')!r})\nimport no_network\nno_network.install()\n"
)
os.environ["IPYTHONDIR"] = str(_scratch / "ipython")
no_network.install()
# The fake accelerator (tests/fake_accelerator.py) registers a device backend for the process: torch's autograd engine
# sets up its device queues at the first backward pass, so the backend must exist before any test trains. Learners'
# code never picks it (get_device tries CUDA, MPS, then the CPU); tests ask for it by name.
import fake_accelerator  # noqa: E402

if fake_accelerator.unsupported() is None:
    fake_accelerator.install()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    NETWORK_LOG.write_text("")
    result = yield
    attempts = NETWORK_LOG.read_text().strip()
    if attempts:
        raise no_network.NetworkAccessError(f"{item.nodeid} tried to use the network:\n{attempts}")
    return result

