"""The fake accelerator (tests/fake_accelerator.py): CUDA's placement rules on a CPU-only machine.

It applies CUDA's rules (a CPU tensor in an op on the device raises, so do CPU generators and ``.numpy()``)
with the CPU's numbers, bit for bit; it catches a ``device=`` dropped from a model's tensor; and it counts
host synchronisations by line. Registering it is for the whole process (torch allows one PrivateUse1 backend
per process); nothing in the course looks for that backend unless ``MMCOURSE_DEVICE`` names it. On a torch
other than the one the course installs, these tests skip (the registration uses private torch API).
"""

from __future__ import annotations

import copy
import inspect

import fake_accelerator as fake
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmcourse import fit, get_device

REASON = fake.unsupported()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"fake accelerator: {REASON}")
HERE = "tests/test_fake_accelerator.py"


@pytest.fixture(scope="module")
def device() -> torch.device:
    return fake.device()


def _blobs(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.randn(n, 4, generator=g) * 0.5 + torch.eye(3, 4)[y] * 2
    return {"x": x, "label": y}


def test_tensors_report_the_fake_device_and_come_back_with_the_cpus_values(device):
    x = torch.randn(3, 4)
    on_device = x.to(device)
    assert on_device.device == torch.device("fakegpu:0") and on_device.is_fakegpu
    assert type(on_device.cpu()) is torch.Tensor and torch.equal(on_device.cpu(), x)
    assert torch.equal((on_device @ on_device.T).relu().sum(1).cpu(), (x @ x.T).relu().sum(1))
    for made in (torch.zeros(2, 3, device=device), torch.arange(5, device=device), torch.tensor([1, 2], device=device),
                 torch.full((2,), 1.5, device=device), torch.eye(3, device=device), torch.zeros_like(x, device=device)):
        assert made.device == on_device.device
    assert torch.arange(5, device=device).shape == (5,) and torch.equal(torch.eye(3, device=device).cpu(), torch.eye(3))
    assert torch.fakegpu.is_available() and torch.fakegpu.device_count() == 1


def test_it_is_pinned_to_the_torch_the_course_installs(monkeypatch):
    assert fake.course_torch_version().startswith("2.")
    monkeypatch.setattr(torch, "__version__", "2.99.0+cpu")
    assert "pinned to the torch the course installs" in fake.unsupported() and "2.99.0+cpu" in fake.unsupported()


def test_an_op_mixing_device_and_cpu_tensors_raises_and_names_the_op(device):
    x, cpu = torch.randn(3, 4, device=device), torch.randn(3, 4)
    with pytest.raises(RuntimeError, match=r"same device.*fakegpu:0 and cpu.*aten\.add\.Tensor"):
        x + cpu
    with pytest.raises(RuntimeError, match=r"aten\.mm"):
        x @ torch.randn(4, 2)
    with pytest.raises(RuntimeError, match=r"aten\.index_select"):
        x.index_select(0, torch.tensor([0, 2]))  # CUDA wants index_select's index on the device
    with pytest.raises(RuntimeError, match=r"aten\.scatter_add"):
        torch.zeros(3).scatter_add_(0, torch.tensor([0, 1, 1], device=device), torch.ones(3, device=device))
    with pytest.raises(RuntimeError, match="indices should be either on cpu or on the same device"):
        cpu[torch.tensor([0, 1], device=device)]
    # What CUDA allows: CPU 0-dim tensors (scalars), copies, and CPU index tensors in x[idx] and x[idx] = v.
    assert torch.equal((x * torch.tensor(2.0)).cpu(), x.cpu() * 2)
    idx = torch.tensor([2, 0])
    assert torch.equal(x[idx].cpu(), x.cpu()[idx])
    x[idx] = torch.ones(2, 4, device=device)
    assert torch.equal(x.cpu()[idx], torch.ones(2, 4))
    assert torch.equal(cpu.copy_(x), x.cpu())


def test_random_draws_on_the_device_take_a_device_generator_or_none(device):
    with pytest.raises(RuntimeError, match="Expected a 'fakegpu' device type for generator but found 'cpu'"):
        torch.randn(3, device=device, generator=torch.Generator().manual_seed(0))
    with pytest.raises(RuntimeError, match="generator"):
        torch.empty(3, device=device).uniform_(generator=torch.Generator())
    torch.manual_seed(5)
    drawn = torch.randn(3, device=device), torch.randperm(6, device=device), F.dropout(torch.ones(8, device=device))
    torch.manual_seed(5)
    expected = torch.randn(3), torch.randperm(6), F.dropout(torch.ones(8))
    assert all(torch.equal(a.cpu(), b) for a, b in zip(drawn, expected))  # the CPU's draws for a seed


def test_numpy_raises_on_the_device(device):
    x = torch.ones(2, device=device)
    with pytest.raises(TypeError, match="can't convert fakegpu:0 device type tensor to numpy"):
        x.numpy()
    assert x.cpu().numpy().tolist() == [1.0, 1.0]


def test_float64_raises_in_the_mps_like_mode(device):
    assert torch.zeros(2, dtype=torch.float64, device=device).dtype == torch.float64  # allowed by default
    with fake.settings(float64=False):
        for make in (lambda: torch.zeros(2, dtype=torch.float64, device=device),
                     lambda: torch.ones(2, device=device).double(),
                     lambda: torch.ones(2, dtype=torch.float64).to(device)):
            with pytest.raises(TypeError, match="float64"):
                make()
        assert torch.ones(2, device=device).float().dtype == torch.float32


def test_mmcourse_device_chooses_the_fake_device_and_checks_its_index(device, monkeypatch):
    monkeypatch.setenv("MMCOURSE_DEVICE", "fakegpu")
    assert get_device() == torch.device("fakegpu")
    monkeypatch.setenv("MMCOURSE_DEVICE", "fakegpu:1")
    with pytest.raises(ValueError, match=r"MMCOURSE_DEVICE: got 'fakegpu:1'.* 1 fakegpu device\(s\): fakegpu:0"):
        get_device()
    with fake.settings(device_count=2):
        assert get_device() == torch.device("fakegpu:1")
        with pytest.raises(RuntimeError, match="fakegpu:0 and fakegpu:1"):
            torch.ones(2, device="fakegpu:0") + torch.ones(2, device="fakegpu:1")


class _Small(nn.Module):
    """Much of what the lessons use: embedding, convolution, normalisation, dropout, linear layers."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.conv = nn.Conv1d(8, 8, 3, padding=1)
        self.norm = nn.LayerNorm(8)
        self.out = nn.Sequential(nn.Dropout(0.2), nn.Linear(8, 3))

    def forward(self, tokens):
        h = self.conv(self.embed(tokens).transpose(1, 2)).transpose(1, 2).relu()
        return self.out(self.norm(h).mean(1))


def _forward_backward(model, inputs, device):
    torch.manual_seed(1)  # the same dropout masks
    output = model(*(x.to(device) for x in inputs))
    output = output[0] if isinstance(output, tuple) else output  # a GRU's or an attention's outputs
    output.square().mean().backward()
    return output.detach().cpu(), [p.grad.cpu() for p in model.parameters()]


def test_forward_and_backward_give_the_cpus_numbers_bit_for_bit(device):
    torch.manual_seed(0)
    model = _Small()
    on_device = copy.deepcopy(model).to(device)
    tokens = torch.randint(0, 10, (4, 6))
    (output, grads), (device_output, device_grads) = (_forward_backward(model, [tokens], "cpu"),
                                                      _forward_backward(on_device, [tokens], device))
    assert torch.equal(output, device_output)
    assert all(torch.equal(a, b) for a, b in zip(grads, device_grads))
    assert on_device.embed.weight.grad.device == device


@pytest.mark.parametrize("layer", ["attention", "gru"])
def test_attention_and_a_gru_run_on_the_device_close_to_the_cpu(device, layer):
    """Where torch picks another kernel for any device but the CPU, the numbers differ in the last bits:
    scaled dot-product attention takes its math path (the CPU has a fused kernel), and nn.GRU a fused cell
    (which the fake device writes out)."""
    torch.manual_seed(0)
    if layer == "gru":
        model = nn.GRU(3, 4, batch_first=True)
        inputs = [torch.randn(2, 5, 3)]
    else:
        model = nn.MultiheadAttention(4, 2, batch_first=True)
        inputs = [torch.randn(2, 5, 4)] * 3
    on_device = copy.deepcopy(model).to(device)
    (output, grads), (device_output, device_grads) = (_forward_backward(model, inputs, "cpu"),
                                                      _forward_backward(on_device, inputs, device))
    torch.testing.assert_close(device_output, output)
    for a, b in zip(grads, device_grads):
        torch.testing.assert_close(b, a)


def test_fit_with_adam_gives_the_cpus_history_and_weights(device, monkeypatch):
    data = _blobs()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))
    on_device = copy.deepcopy(model)
    torch.manual_seed(1)
    history = fit(model, data, ["x"], epochs=2, batch_size=32, lr=1e-2, progress=False, device="cpu")
    monkeypatch.setenv("MMCOURSE_DEVICE", "fakegpu")  # chosen as a learner's GPU is: fit's default device
    torch.manual_seed(1)
    device_history = fit(on_device, data, ["x"], epochs=2, batch_size=32, lr=1e-2, progress=False)
    assert next(on_device.parameters()).device == device
    assert device_history.train_loss == history.train_loss
    assert all(torch.equal(a, b.cpu()) for a, b in zip(model.parameters(), on_device.parameters()))


class _Broken(nn.Module):
    """A deliberately broken model: its forward makes a tensor without ``device=``."""

    def __init__(self, fixed: bool = False):
        super().__init__()
        self.linear, self.fixed = nn.Linear(4, 3), fixed

    def forward(self, x):
        offset = torch.zeros(x.shape[0], 3, device=x.device) if self.fixed else torch.zeros(x.shape[0], 3)
        return self.linear(x) + offset


def test_a_dropped_device_argument_fails_on_the_fake_device_and_passes_on_the_cpu(device):
    data = _blobs(32)
    fit(_Broken(), data, ["x"], epochs=1, batch_size=16, progress=False, device="cpu")  # the CPU cannot tell
    with pytest.raises(RuntimeError, match=r"fakegpu:0 and cpu.*aten\.add\.Tensor.*shape \(16, 3\)"):
        fit(_Broken(), data, ["x"], epochs=1, batch_size=16, progress=False, device=device)
    fit(_Broken(fixed=True), data, ["x"], epochs=1, batch_size=16, progress=False, device=device)


def test_count_syncs_counts_host_synchronisations_by_calling_line(device):
    x = torch.arange(6.0, device=device)
    with fake.count_syncs() as syncs:
        line = inspect.currentframe().f_lineno + 1
        x.sum().item(), bool(x[0] > 0), float(x[1]), f"{x[2]:.1f}", x.tolist(), x.nonzero(), x[x > 2], torch.equal(x, x)
        y = (x * 2).exp().sum()  # no sync: values stay on the device
        y.cpu()
        torch.ones(3).to(device)
        x[torch.tensor([0, 1])]
        torch.ones(3).to(device, non_blocking=True)  # no sync
    assert syncs == {f"{HERE}:{line}": 8, f"{HERE}:{line + 2}": 1, f"{HERE}:{line + 3}": 1, f"{HERE}:{line + 4}": 1}
    assert syncs.ops == {"item": 4, "tolist": 1, "nonzero": 1, "nonzero (boolean mask)": 1, "equal": 1,
                         "copy device->host": 1, "copy host->device": 1, "copy host->device (CPU index)": 1}
    torch.ones(1, device=device).item()  # outside the block: not counted
    assert sum(syncs.values()) == 11


def test_recording_notes_every_broken_rule_and_goes_on(device):
    """For surveys: inside ``recording()`` a broken rule is noted with its line, and the op goes on."""
    x = torch.ones(2, 3, device=device)
    with fake.recording() as found:
        line = inspect.currentframe().f_lineno + 1
        y = x + torch.ones(2, 3)
        torch.randn(2, device=device, generator=torch.Generator())
    assert torch.equal(y.cpu(), torch.full((2, 3), 2.0))
    assert [(where, what.split(":")[0]) for where, what in found] == [(f"{HERE}:{line}", "RuntimeError"),
                                                                      (f"{HERE}:{line + 1}", "RuntimeError")]
    assert "aten.add.Tensor" in found[0][1] and "generator" in found[1][1]
    with pytest.raises(RuntimeError):  # outside the block: raises again
        x + torch.ones(2, 3)


def test_count_syncs_sees_the_lines_of_fit(device):
    with fake.count_syncs() as syncs:
        fit(nn.Linear(4, 3), _blobs(64), ["x"], epochs=1, batch_size=32, progress=False, device=device)
    assert syncs and all(where.startswith("mmcourse/") for where in syncs)


def _cross_entropy_step(model, batch):
    return F.cross_entropy(model(batch["x"]), batch["label"])


def test_fit_makes_no_host_synchronisation_per_step(device):
    """fit keeps its losses on the device and reads them once per epoch, sends each epoch's shuffled order
    once and the validation rows once per fit: its host synchronisations grow with the epochs, not with the
    steps (before issue 31's fix: two or three at every step, and more per validation batch)."""
    data = _blobs(96)
    for settings in ({}, {"validation": data}, {"validation": data, "step": _cross_entropy_step}):
        counts = {}
        for epochs, batch_size in [(2, 48), (2, 8), (3, 8)]:
            with fake.count_syncs() as syncs:
                fit(nn.Linear(4, 3), data, ["x"], epochs=epochs, batch_size=batch_size, progress=False,
                    device=device, **settings)
            counts[epochs, batch_size] = sum(syncs.values())
        assert counts[2, 48] == counts[2, 8], (settings, counts)  # 4 steps or 24: the same
        assert 0 < counts[3, 8] - counts[2, 8] <= 3, (settings, counts)  # order, losses, validation


def test_fit_with_validation_a_step_and_before_step_gives_the_cpus_history(device):
    """The device paths of fit's validation (a classifier's and a ``step``'s) and of ``before_step`` give
    the CPU's numbers, bit for bit (the fake device computes on the CPU)."""
    train, validation = _blobs(), _blobs(40, seed=1)

    def noisy(batch):  # draws from torch's default generator, on the batch's device
        return {**batch, "x": batch["x"] + 0.3 * torch.randn_like(batch["x"])}

    for settings in ({"before_step": noisy}, {"step": _cross_entropy_step, "drop_last": True}):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))
        on_device = copy.deepcopy(model)
        histories = []
        for m, where in ((model, "cpu"), (on_device, device)):
            torch.manual_seed(1)
            histories.append(fit(m, train, ["x"], validation=validation, epochs=2, batch_size=32, lr=1e-2,
                                 progress=False, device=where, **settings))
        cpu, fake_device = histories
        assert (fake_device.train_loss, fake_device.val_loss, fake_device.val_accuracy) == (
            cpu.train_loss, cpu.val_loss, cpu.val_accuracy)
        assert len(cpu.val_loss) == 2
        assert all(torch.equal(a, b.cpu()) for a, b in zip(model.parameters(), on_device.parameters()))


def test_fork_rng_restores_the_generator_with_the_fake_device_installed():
    """torch.random.fork_rng forks the current accelerator's generator as well; the fake's is the CPU's."""
    if fake.unsupported() is not None:
        pytest.skip(fake.unsupported())
    fake.install()
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    with torch.random.fork_rng():
        torch.rand(5)
    assert torch.equal(torch.rand(3), expected)
