"""Core utilities: device choice, seeding, claims, the training loop, metrics."""

import os
import types

import pytest
import torch
from torch import nn

import mmcourse
from mmcourse import (
    Claim,
    ClaimError,
    VerificationError,
    claim,
    claims,
    evaluate,
    fit,
    get_device,
    predict,
    seed_everything,
    verify,
)
from mmcourse.claims import STRICT_VARIABLE
from mmcourse.data import as_tensors
from mmcourse.metrics import accuracy
from mmcourse.train import SGD, Adam


def test_device_defaults_and_override(monkeypatch):
    monkeypatch.delenv("MMCOURSE_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert get_device().type == expected
    monkeypatch.setenv("MMCOURSE_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    monkeypatch.setenv("MMCOURSE_DEVICE", "toaster")
    with pytest.raises(ValueError, match="MMCOURSE_DEVICE.*toaster"):
        get_device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("MMCOURSE_DEVICE", "cuda")
        with pytest.raises(ValueError, match="not available"):
            get_device()


def test_device_override_checks_the_index_against_the_device_count(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a one-GPU machine
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("MMCOURSE_DEVICE", "cuda:0")
    assert get_device() == torch.device("cuda:0")
    monkeypatch.setenv("MMCOURSE_DEVICE", "cuda")
    assert get_device() == torch.device("cuda")
    monkeypatch.setenv("MMCOURSE_DEVICE", "cuda:7")
    with pytest.raises(ValueError, match=r"MMCOURSE_DEVICE: got 'cuda:7'.* 1 cuda device\(s\): cuda:0$"):
        get_device()
    monkeypatch.setenv("MMCOURSE_DEVICE", "cpu:1")  # torch takes cpu:1 for the CPU; so does the course
    assert get_device().type == "cpu"


def test_device_override_takes_any_backend_torch_has_a_module_for(monkeypatch):
    """xpu, or a backend registered for PrivateUse1 (tests/test_fake_accelerator.py registers one)."""
    monkeypatch.setattr(torch, "xpu", types.SimpleNamespace(is_available=lambda: True, device_count=lambda: 2))
    monkeypatch.setenv("MMCOURSE_DEVICE", "xpu:1")
    assert get_device() == torch.device("xpu:1")
    monkeypatch.setenv("MMCOURSE_DEVICE", "xpu:2")
    with pytest.raises(ValueError, match=r"got 'xpu:2'.* 2 xpu device\(s\): xpu:0, xpu:1"):
        get_device()
    monkeypatch.setattr(torch, "xpu", types.SimpleNamespace(is_available=lambda: False, device_count=lambda: 0))
    monkeypatch.setenv("MMCOURSE_DEVICE", "xpu")
    with pytest.raises(ValueError, match="'xpu' is not available"):
        get_device()
    monkeypatch.setenv("MMCOURSE_DEVICE", "meta")  # a device type without a module: never chosen
    with pytest.raises(ValueError, match="'meta' is not available"):
        get_device()


def test_seeding_repeats_random_draws():
    seed_everything(3)
    a = torch.rand(3)
    g = seed_everything(3)
    assert torch.equal(a, torch.rand(3))
    assert torch.equal(torch.rand(2, generator=g), torch.rand(2, generator=torch.Generator().manual_seed(3)))
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)


def test_claim_prints_numbers_and_raises_in_strict_mode(capsys, monkeypatch):
    monkeypatch.setenv(STRICT_VARIABLE, "1")
    assert claim(0.9 > 0.8, "fused beats single", fused=0.9, single=torch.tensor(0.8), n=3) is None
    out = capsys.readouterr().out
    assert out.startswith("\N{CHECK MARK} fused beats single") and "fused=0.9" in out and "single=0.8" in out
    assert "n=3" in out
    with pytest.raises(ClaimError, match="does not hold: impossible.*x=1"):
        claim(False, "impossible", x=1)
    with pytest.raises(ClaimError):
        claim(torch.tensor(False), "tensor condition")
    with pytest.raises(ValueError, match="condition"):
        claim(torch.tensor([True, False]), "ambiguous")


def test_a_false_claim_in_a_learners_kernel_prints_a_cross_and_goes_on(capsys, monkeypatch):
    monkeypatch.delenv(STRICT_VARIABLE, raising=False)
    assert not claims.strict()
    assert claim(False, "impossible", x=1) is None  # no exception
    out = capsys.readouterr().out
    assert out.startswith("\N{BALLOT X} this run does not support the claim: impossible") and "x=1" in out
    assert "seed" in out and "hardware" in out  # and why results can differ
    Claim("fusion helps", "gain", ">=", 0.05).check(0.01, best=0.8)
    out = capsys.readouterr().out
    assert "\N{BALLOT X}" in out and "fusion helps: gain = 0.01 >= 0.05" in out and "best=0.8" in out


def test_verify_raises_in_both_modes(capsys, monkeypatch):
    for strict in ("1", ""):
        monkeypatch.setenv(STRICT_VARIABLE, strict)
        verify(True, "an identity", gap=0.0)
        assert capsys.readouterr().out.startswith("\N{CHECK MARK} an identity  (gap=0)")
        with pytest.raises(VerificationError, match="does not hold: ours equals theirs.*gap=0.5"):
            verify(False, "ours equals theirs", gap=0.5)


def test_claim_objects_compare_with_their_threshold(capsys, monkeypatch):
    monkeypatch.setenv(STRICT_VARIABLE, "1")
    at_least, at_most = Claim("a", "q", ">=", 0.5), Claim("b", "q", "<", 0.2)
    assert at_least.holds(0.5) and not at_least.holds(0.49) and at_least.margin(0.7) == pytest.approx(0.2)
    assert at_most.holds(0.1) and not at_most.holds(0.2) and at_most.margin(0.3) == pytest.approx(-0.1)
    at_least.check(0.6)
    assert capsys.readouterr().out.startswith("\N{CHECK MARK} a: q = 0.6 >= 0.5")
    with pytest.raises(ClaimError, match="b: q = 0.3 < 0.2"):
        at_most.check(0.3)
    with pytest.raises(ValueError, match="op"):
        Claim("c", "q", "=>", 1.0)
    module = types.ModuleType("example")
    module.FIRST, module.other, module.SECOND = at_least, 3, at_most
    assert claims.claims_of(module) == {"FIRST": at_least, "SECOND": at_most}


def test_accuracy_metric():
    scores = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert accuracy(scores, torch.tensor([1, 0, 0])) == pytest.approx(2 / 3)
    assert accuracy(torch.tensor([1, 1]), torch.tensor([1, 0])) == 0.5
    with pytest.raises(ValueError, match="labels"):
        accuracy(scores, torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="scores"):
        accuracy(torch.zeros(2, 2, 2), torch.tensor([1, 0]))


def _blobs(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.randn(n, 2, generator=g) * 0.3 + torch.tensor([[2.0, 0], [-2, 0], [0, 2]])[y]
    return {"x": x, "label": y}


def test_fit_learns_a_trivial_task_and_returns_history():
    train, test = _blobs(seed=0), _blobs(seed=1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    before = evaluate(model, test, ["x"])["accuracy"]
    history = fit(model, train, ["x"], validation=test, epochs=5, lr=1e-2, progress=False, device="cpu")
    assert history.epoch == [1, 2, 3, 4, 5] and len(history.val_accuracy) == 5
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.val_accuracy[-1] > 0.95 > before
    assert history.seconds > 0 and "epochs=5" in repr(history)
    assert predict(model, test, ["x"]).shape == (400, 3)


def test_fit_is_deterministic_for_a_seed():
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        model = nn.Linear(2, 3)
        results.append(fit(model, _blobs(), ["x"], epochs=2, seed=7, progress=False, device="cpu").train_loss)
    assert results[0] == results[1]


def test_fit_takes_the_steps_of_torchs_own_adam():
    """fit trains with Adam on shuffled batches: a plain loop over the same batches, with torch's own
    Adam and the same settings, ends at the same weights, bit for bit."""
    data, seed = _blobs(100), 3
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
    reference = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
    reference.load_state_dict(model.state_dict())
    initial = model[0].weight.detach().clone()
    fit(model, data, ["x"], epochs=2, batch_size=16, lr=1e-2, weight_decay=1e-3, seed=seed, progress=False,
        device="cpu")
    optimizer = torch.optim.Adam(reference.parameters(), lr=1e-2, weight_decay=1e-3, foreach=False)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(2):
        order = torch.randperm(100, generator=generator)
        for start in range(0, 100, 16):
            idx = order[start:start + 16]
            loss = nn.functional.cross_entropy(reference(data["x"][idx]), data["label"][idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    for ours, theirs in zip(model.parameters(), reference.parameters()):
        assert torch.equal(ours, theirs)
    assert (model[0].weight - initial).abs().max() > 0.05  # the weights did move


class _TwoPaths(nn.Module):
    """A model whose second layer gets a gradient only on some steps (as a learned "missing" embedding)."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 4), nn.Linear(3, 4)

    def forward(self, x, use_b):
        return self.a(x) + (self.b(x) if use_b else 0)


@pytest.mark.parametrize("custom_step", [False, True])
def test_fit_history_is_that_of_reading_each_steps_loss(custom_step):
    """fit reads its losses from the device once per epoch, not at every step (which stalls a GPU): its
    history is, bit for bit, that of a loop that reads each step's loss with ``.item()`` and adds
    ``loss * batch size`` in Python floats, and its validation numbers are evaluate's (a classifier) or the
    step's mean loss read batch by batch (a ``step``, here with a float64 loss) after each epoch. On the CPU."""
    train, validation, seed = _blobs(100), _blobs(1100, seed=1), 4  # 1100 rows: two of predict's batches

    def step(model, batch):
        return nn.functional.cross_entropy(model(batch["x"]), batch["label"]).double()

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
    reference = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
    reference.load_state_dict(model.state_dict())
    history = fit(model, train, ["x"], step=step if custom_step else None, validation=validation, epochs=3,
                  batch_size=16, lr=1e-2, seed=seed, progress=False, device="cpu")
    optimizer, generator = Adam(reference.parameters(), lr=1e-2), torch.Generator().manual_seed(seed)
    train_loss, val_loss, val_accuracy = [], [], []
    for _ in range(3):
        order, total = torch.randperm(100, generator=generator), 0.0
        for start in range(0, 100, 16):
            idx = order[start:start + 16]
            loss = step(reference, {c: v[idx] for c, v in train.items()})
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        train_loss.append(total / 100)
        if custom_step:
            reference.eval()
            with torch.no_grad():
                val_loss.append(sum(step(reference, {c: v[i:i + 16] for c, v in validation.items()}).item()
                                    * len(validation["x"][i:i + 16]) for i in range(0, 1100, 16)) / 1100)
            reference.train()
        else:
            result = evaluate(reference, validation, ["x"])
            val_loss.append(result["loss"])
            val_accuracy.append(result["accuracy"])
    assert history.train_loss == train_loss and history.val_loss == val_loss
    assert history.val_accuracy == val_accuracy and len(val_loss) == 3
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), reference.parameters()))

@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_takes_the_same_steps_as_torchs(weight_decay):
    torch.manual_seed(0)
    ours, theirs = _TwoPaths(), _TwoPaths()
    theirs.load_state_dict(ours.state_dict())
    optimizers = [Adam(ours.parameters(), lr=3e-2, weight_decay=weight_decay),
                  torch.optim.Adam(theirs.parameters(), lr=3e-2, weight_decay=weight_decay, foreach=False)]
    g = torch.Generator().manual_seed(1)
    for step in range(30):
        x, target = torch.randn(8, 3, generator=g), torch.randn(8, 4, generator=g)
        for model, optimizer in zip((ours, theirs), optimizers):
            loss = (model(x, use_b=step % 3 == 0) - target).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a, b)
    assert optimizers[0].state[ours.b.weight]["t"] == 10  # b was stepped only when it had a gradient


def test_sgd_takes_the_same_steps_as_torchs():
    torch.manual_seed(0)
    ours, theirs = nn.Linear(3, 2), nn.Linear(3, 2)
    theirs.load_state_dict(ours.state_dict())
    optimizers = [SGD(ours.parameters(), lr=0.1), torch.optim.SGD(theirs.parameters(), lr=0.1)]
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(1))
    for _ in range(20):
        for model, optimizer in zip((ours, theirs), optimizers):
            optimizer.zero_grad()
            model(x).pow(2).sum().backward()
            optimizer.step()
    assert torch.equal(ours.weight, theirs.weight) and torch.equal(ours.bias, theirs.bias)


def test_optimisers_reject_bad_settings():
    weight = nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="lr, betas, eps, weight_decay: expected lr > 0"):
        Adam([weight], lr=0.0)
    with pytest.raises(ValueError, match="params: expected at least one tensor"):
        Adam([torch.zeros(2)])
    with pytest.raises(ValueError, match="params, lr: expected tensors that require a gradient and lr > 0"):
        SGD([weight], lr=-1.0)


def test_fit_accepts_a_dataset_and_before_step():
    from datasets import Dataset

    data = Dataset.from_dict({k: v.numpy() for k, v in _blobs().items()}).with_format("torch")
    seen = []

    def before_step(batch):
        seen.append(len(batch["x"]))
        return batch

    fit(nn.Linear(2, 3), data, ["x"], epochs=1, batch_size=100, progress=False, before_step=before_step, device="cpu")
    assert seen == [100, 100, 100, 100]


def test_fit_and_data_errors():
    with pytest.raises(ValueError, match="epochs"):
        fit(nn.Linear(2, 3), _blobs(), ["x"], epochs=0)
    with pytest.raises(ValueError, match="missing columns \\['image'\\]"):
        fit(nn.Linear(2, 3), _blobs(), ["image"], progress=False)
    with pytest.raises(ValueError, match="different numbers of rows"):
        as_tensors({"x": torch.zeros(3, 2), "label": torch.zeros(4)}, ["x", "label"])
    with pytest.raises(ValueError, match="no rows"):
        as_tensors({"x": torch.zeros(0, 2)}, ["x"])


def test_lazy_submodules():
    assert mmcourse.data.load_av_digits is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mmcourse.nope  # noqa: B018


def test_import_is_light():
    """`import mmcourse` must not pull in datasets, sklearn or matplotlib (budget: 1 s over torch)."""
    import subprocess
    import sys

    code = ("import torch, sys; import mmcourse; "
            "print(sorted(m for m in ('datasets', 'sklearn', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_thread_limit_respects_quota_and_choice(monkeypatch):
    from mmcourse import device

    before = torch.get_num_threads()
    try:
        assert 1 <= device.available_cpus() <= (os.cpu_count() or 1)
        monkeypatch.setenv("MMCOURSE_THREADS", "1")
        assert device.limit_threads() == 1
        monkeypatch.setenv("MMCOURSE_THREADS", "many")
        with pytest.raises(ValueError, match="MMCOURSE_THREADS"):
            device.limit_threads()
        monkeypatch.delenv("MMCOURSE_THREADS")
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setattr(device, "available_cpus", lambda: 2)
        torch.set_num_threads(2)
        assert device.limit_threads() == 1  # two CPUs or fewer: one thread
        monkeypatch.setattr(device, "available_cpus", lambda: 3)
        torch.set_num_threads(8)
        assert device.limit_threads() == 3  # lowered to what the container grants
        monkeypatch.setattr(device, "available_cpus", lambda: 16)
        torch.set_num_threads(16)
        assert device.limit_threads() == device.MAX_THREADS == 4  # small models: few threads even on many cores
        torch.set_num_threads(2)
        assert device.limit_threads() == 2  # never raised
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert device.limit_threads() == 2  # the learner chose
    finally:
        torch.set_num_threads(before)
