"""A fake accelerator for the test suite: a device that is not the CPU, on machines without a GPU.

The course promises that every lesson runs unchanged on a GPU. On a CPU-only machine nothing checks that
promise: a ``torch.zeros(n, 3)`` without ``device=`` works on the CPU and fails only on a GPU. This module
registers a Python backend for torch's PrivateUse1 device type, named ``fakegpu``
(``torch.device("fakegpu")``, ``MMCOURSE_DEVICE=fakegpu``). Its tensors are a wrapper subclass
(:class:`FakeDeviceTensor`) that reports the fake device and holds a CPU tensor; every op on them runs on
the CPU, so the numbers are bit-identical to the CPU's (random draws without a generator come from torch's
default CPU generator, so ``torch.manual_seed`` gives the CPU's draws). Except where torch itself picks
another kernel for every device but the CPU: scaled dot-product attention (``F.scaled_dot_product_attention``,
``nn.MultiheadAttention``) takes its math path, and ``nn.GRU`` a fused cell (written out here, as
``_STAND_INS``); those differ from the CPU in the last bits. It applies CUDA's placement rules:

- an op that mixes a fake-device tensor with a CPU tensor of dimension > 0 raises ``RuntimeError`` naming
  the op; CPU 0-dim tensors (scalars), copies (``.to()``, ``.cpu()``, ``copy_``) and CPU index tensors in
  ``x[idx]`` and ``x[idx] = v`` are allowed, as on CUDA;
- drawing random numbers on the fake device with a CPU ``torch.Generator`` raises ``RuntimeError``;
- ``.numpy()`` (and ``np.asarray``) on a fake-device tensor raises ``TypeError``;
- inside ``settings(float64=False)`` (an MPS-like mode; off by default) a float64 tensor on the fake
  device raises ``TypeError``.

It counts host synchronisations on fake-device tensors by calling line: ``with count_syncs() as syncs:``
gives a ``Counter`` of ``"file:line"`` (``syncs.ops`` counts them by kind, ``syncs.detail`` by both). Counted:
reading values (``.item()``, ``bool()``, ``float()``, ``f"{t:.3f}"``, ``.tolist()``, ``print``), ops whose
output size depends on the values (``nonzero``, boolean-mask indexing, ``masked_select``, ``unique``,
``torch.equal`` ...) and blocking copies between host and device (``.cpu()``, ``.to(device)`` of a CPU tensor, CPU index
tensors; torch waits for the device's stream after each blocking copy, in both directions).

``with recording() as found:`` notes broken rules (with their lines) instead of raising, so that one run finds
them all (after the first, an op may break a rule only because an earlier one was let through).

Every op goes through Python: the lessons' experiment functions at small sizes took 3 to 6 times as long as on
the CPU (a tiny MLP's fit 40 times). Run small sizes.

The registration uses private torch API (``torch.utils.backend_registration``) that may change between
versions: :func:`unsupported` says why it cannot be used (a torch other than the course's, or PrivateUse1
taken), and tests skip with that message. It is for the whole process and cannot be undone (torch allows
one PrivateUse1 backend per process); a process that never calls :func:`install` is not touched.

What did not work (tried for issue 31): ``set_default_device("meta")`` (blind to real mismatches, breaks on
``.item()``), two CPU "devices" (``cpu:1`` is ``cpu``), ``FakeTensorMode`` (every ``.item()`` raises, and
moving a tensor that requires grad aborts the interpreter).
"""

from __future__ import annotations

import functools
import re
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import torch
from torch.utils._pytree import tree_flatten, tree_map

NAME = "fakegpu"
aten = torch.ops.aten
_ROOT = Path(__file__).resolve().parents[1]
_INSTALL_SCRIPT = _ROOT / "scripts" / "install.sh"
_TORCH_DIR = str(Path(torch.__file__).parent)


def course_torch_version() -> str:
    """The torch version the course installs (``TORCH_VERSION`` in scripts/install.sh)."""
    text = _INSTALL_SCRIPT.read_text()
    match = re.search(r"^TORCH_VERSION=\$\{TORCH_VERSION:-([0-9][0-9.]*)\}", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{_INSTALL_SCRIPT}: found no line TORCH_VERSION=${{TORCH_VERSION:-x.y.z}}")
    return match.group(1)


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split("+")[0].split(".")[:2])


class _Settings:
    installed = False
    float64 = True  # False: float64 on the fake device raises, as on Apple's MPS
    device_count = 1


_STATE = _Settings()


def unsupported() -> str | None:
    """Why the fake accelerator cannot be used in this process, or ``None`` when it can."""
    try:
        wanted, have = course_torch_version(), torch.__version__
    except (OSError, RuntimeError) as err:
        return f"cannot tell which torch the course installs: {err}"
    if _major_minor(wanted) != _major_minor(have):
        return (f"the fake accelerator uses private torch API and is pinned to the torch the course installs "
                f"({wanted}, scripts/install.sh TORCH_VERSION, any patch release); this is torch {have}")
    taken = torch._C._get_privateuse1_backend_name()
    if not _STATE.installed and taken != "privateuseone":
        return f"torch's PrivateUse1 device type is already registered, as {taken!r}, in this process"
    return None


# ---------------------------------------------------------------- the tensors


class FakeDeviceTensor(torch.Tensor):
    """A tensor on the fake device: reports ``fakegpu:i`` and holds its values in a CPU tensor ``.cpu_data``."""

    cpu_data: torch.Tensor

    @staticmethod
    def __new__(cls, data: torch.Tensor, device: torch.device):
        if isinstance(data, FakeDeviceTensor) or data.device.type != "cpu":
            raise AssertionError(f"expected a plain CPU tensor inside, got {type(data).__name__} on {data.device}")
        r = torch.Tensor._make_wrapper_subclass(
            cls, data.size(), strides=data.stride(), storage_offset=data.storage_offset(), dtype=data.dtype,
            layout=data.layout, device=device, requires_grad=False)
        r.cpu_data = data
        return r

    __torch_function__ = torch._C._disabled_torch_function_impl

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return _run(func, args, kwargs or {})

    def __repr__(self, *, tensor_contents=None) -> str:
        _count_sync("print")
        text = repr(self.cpu_data)
        extra = f", device='{self.device}'"
        if self.grad_fn is not None:
            extra += f", grad_fn=<{type(self.grad_fn).__name__}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return text[:-1] + extra + ")"

    def numpy(self, *, force: bool = False):
        _violation(TypeError(f"can't convert {self.device} device type tensor to numpy. Use Tensor.cpu() to copy "
                             "the tensor to host memory first."))
        _count_sync("copy device->host")
        return self.cpu_data.numpy(force=force)

    def __array__(self, *args, **kwargs):
        return self.numpy()

    def __format__(self, format_spec: str) -> str:
        # torch formats 0-dim tensors of type Tensor only (``f"{loss:.3f}"``); a GPU's work as well
        if self.dim() == 0:
            return self.detach().item().__format__(format_spec)
        return object.__format__(self, format_spec)

    def tolist(self):
        _count_sync("tolist")
        return self.cpu_data.tolist()

    # ``param.data = other`` swaps the tensor's C++ guts but not this Python object's ``cpu_data``.
    @property
    def data(self):
        return torch._C.TensorBase.data.__get__(self)

    @data.setter
    def data(self, new) -> None:
        if not isinstance(new, FakeDeviceTensor):
            raise RuntimeError(f"data set to a tensor on {new.device} on a {self.device} tensor: the fake device "
                               "cannot swap a tensor's device in place")
        torch._C.TensorBase.data.__set__(self, new)
        self.cpu_data = new.cpu_data


# ---------------------------------------------------------------- CUDA's rules


def _is_cpu_tensor(x) -> bool:
    return isinstance(x, torch.Tensor) and not isinstance(x, FakeDeviceTensor) and x.device.type == "cpu"


def _fake_device(device) -> torch.device | None:
    """The fake device that ``device`` names, with its index; None if it names another device."""
    if device is None:
        return None
    device = torch.device(device)
    if device.type != NAME:
        return None
    index = 0 if device.index is None else device.index
    if not 0 <= index < _STATE.device_count:
        raise RuntimeError(f"{NAME}: invalid device ordinal {index}: there are {_STATE.device_count} {NAME} "
                           "device(s)")
    return torch.device(NAME, index)


_COPIES = {aten._to_copy.default, aten.copy_.default, aten._copy_from.default, aten._copy_from_and_resize.default,
           aten.copy.default, aten.lift_fresh.default, aten.lift_fresh_copy.default}
# Ops whose argument 1 is a list of index tensors, which CUDA lets live on the CPU (and copies over).
_INDEXING = {aten.index.Tensor, aten.index_put_.default, aten.index_put.default, aten._index_put_impl_.default,
             aten._unsafe_index.Tensor, aten._unsafe_index_put.default}
# Ops that read device values on the host (their result, or its size, depends on them).
_READS = {aten._local_scalar_dense.default: "item", aten.nonzero.default: "nonzero",
          aten.argwhere.default: "nonzero", aten.masked_select.default: "masked_select",
          aten.equal.default: "equal", aten.is_nonzero.default: "item", aten._unique.default: "unique",
          aten._unique2.default: "unique", aten.unique_dim.default: "unique",
          aten.unique_consecutive.default: "unique", aten.repeat_interleave.Tensor: "repeat_interleave",
          aten.bincount.default: "bincount"}


def _violation(error: Exception) -> None:
    """Raise the error of a broken rule, or, inside :func:`recording`, note it and go on."""
    if _RECORDINGS:
        where = _caller()
        for found in _RECORDINGS:
            found.append((where, f"{type(error).__name__}: {error}"))
        return
    raise error


def _mixing_error(func, fake: torch.device, cpu: torch.Tensor) -> RuntimeError:
    return RuntimeError(
        f"Expected all tensors to be on the same device, but found at least two devices, {fake} and cpu! "
        f"(in {func}: a CPU tensor of shape {tuple(cpu.shape)} with tensors on {fake}; a GPU fails the same "
        "way: create the tensor with device=..., or move it with .to(device))")


def _check_placement(func, args, fakes, flat) -> None:
    devices = {t.device for t in fakes}
    if len(devices) > 1:
        a, b = sorted(devices, key=str)[:2]
        _violation(RuntimeError(f"Expected all tensors to be on the same device, but found at least two "
                                f"devices, {a} and {b}! (in {func})"))
    fake = min(devices, key=str)
    if func in _COPIES:
        return
    others = [a for a in flat if isinstance(a, torch.Tensor)]
    if func in _INDEXING:
        indices = [i for i in args[1] if i is not None]
        if not isinstance(args[0], FakeDeviceTensor):
            _violation(RuntimeError(f"indices should be either on cpu or on the same device as the indexed "
                                    f"tensor (cpu) (in {func})"))
        others = [a for a in others if not any(a is i for i in indices)]
        for i in indices:
            if _is_cpu_tensor(i):
                _count_sync("copy host->device (CPU index)")
            elif i.dtype in (torch.bool, torch.uint8):
                _count_sync("nonzero (boolean mask)")
    for t in others:
        if _is_cpu_tensor(t) and t.dim() > 0:
            _violation(_mixing_error(func, fake, t))
            return


@functools.cache
def _generator_position(func) -> int | None:
    for i, argument in enumerate(func._schema.arguments):
        if argument.name == "generator":
            return i
    return None


def _check_generator(func, args, kwargs) -> None:
    position = _generator_position(func)
    if position is None:
        return
    generator = kwargs.get("generator", args[position] if position < len(args) else None)
    if generator is not None and generator.device.type != NAME:
        _violation(RuntimeError(f"Expected a '{NAME}' device type for generator but found "
                                f"'{generator.device.type}' (in {func}: a draw on the device needs a generator "
                                "on the device, or none)"))


def _check_dtype(dtype: torch.dtype) -> None:
    if not _STATE.float64 and dtype in (torch.float64, torch.complex128):
        _violation(TypeError(f"Cannot convert a {NAME} Tensor to {dtype} dtype as the fake device, in its "
                             "MPS-like mode, doesn't support float64. Please use float32 instead."))


# ---------------------------------------------------------------- ops with no CPU kernel


def _fused_gru_cell(input_gates, hidden_gates, hx, input_bias=None, hidden_bias=None):
    """CUDA's fused GRU cell, which torch's GRU calls on every device but the CPU, for CPU tensors.

    Close to, not bit-identical with, the CPU's GRU (which adds the biases inside its matrix products).
    Returns the new hidden state and a workspace (r, z, n, h_n, hx) for :func:`_fused_gru_cell_backward`.
    """
    if input_bias is not None:
        input_gates = input_gates + input_bias
    if hidden_bias is not None:
        hidden_gates = hidden_gates + hidden_bias
    i_r, i_z, i_n = input_gates.chunk(3, 1)
    h_r, h_z, h_n = hidden_gates.chunk(3, 1)
    r = (i_r + h_r).sigmoid()
    z = (i_z + h_z).sigmoid()
    n = (i_n + r * h_n).tanh()
    return n + z * (hx - n), torch.cat([r, z, n, h_n, hx], 1)


def _fused_gru_cell_backward(grad_hy, workspace, has_bias):
    r, z, n, h_n, hx = workspace.chunk(5, 1)
    grad_n = grad_hy * (1 - z) * (1 - n * n)
    grad_z = grad_hy * (hx - n) * z * (1 - z)
    grad_r = grad_n * h_n * r * (1 - r)
    grad_input_gates = torch.cat([grad_r, grad_z, grad_n], 1)
    grad_hidden_gates = torch.cat([grad_r, grad_z, grad_n * r], 1)
    grad_hx = grad_hy * z
    if not has_bias:
        return grad_input_gates, grad_hidden_gates, grad_hx, None, None
    return grad_input_gates, grad_hidden_gates, grad_hx, grad_input_gates.sum(0), grad_hidden_gates.sum(0)


_STAND_INS = {aten._thnn_fused_gru_cell.default: _fused_gru_cell,
              aten._thnn_fused_gru_cell_backward.default: _fused_gru_cell_backward}


# ---------------------------------------------------------------- running ops


def _unwrap(x):
    return x.cpu_data if isinstance(x, FakeDeviceTensor) else x


def _wrap(out, device: torch.device):
    def wrap(x):
        if isinstance(x, torch.Tensor) and not isinstance(x, FakeDeviceTensor):
            _check_dtype(x.dtype)
            return FakeDeviceTensor(x, device)
        return x

    return tree_map(wrap, out)


@functools.cache
def _written_arguments(func) -> tuple[tuple[int, str, bool, frozenset], ...]:
    """The arguments an op writes to: (position, name, keyword only, alias set)."""
    return tuple((i, a.name, a.kwarg_only, frozenset(a.alias_info.before_set))
                 for i, a in enumerate(func._schema.arguments) if a.alias_info is not None and a.alias_info.is_write)


def _follow_metadata(func, tensor: FakeDeviceTensor) -> None:
    """After an in-place op that changed the inner tensor's shape (``transpose_``, ``unsqueeze_``, an ``out=``
    of another size), give the wrapper the same shape."""
    inner = tensor.cpu_data
    if (tensor.shape, tensor.stride(), tensor.storage_offset()) == (inner.shape, inner.stride(),
                                                                     inner.storage_offset()):
        return
    try:
        with torch._C._DisableTorchDispatch():
            aten.as_strided_.default(tensor, inner.size(), inner.stride(), inner.storage_offset())
    except RuntimeError as err:
        raise NotImplementedError(f"{func} grew a {tensor.device} tensor in place from {tuple(tensor.shape)} to "
                                  f"{tuple(inner.shape)}, which the fake device cannot do; pass an out= "
                                  "tensor of the right size") from err


def _returns(func, args, kwargs, out, output_device):
    """Wrap the op's CPU results; in-place and out= ops return their argument itself."""
    written = {}
    for i, name, kwarg_only, alias in _written_arguments(func):
        value = kwargs.get(name) if kwarg_only or i >= len(args) else args[i]
        written[alias] = value
        if isinstance(value, FakeDeviceTensor):
            _follow_metadata(func, value)
    results = out if isinstance(out, tuple) else (out,)
    final = []
    for result, ret in zip(results, func._schema.returns, strict=False):
        info = ret.alias_info
        if info is not None and info.is_write and frozenset(info.before_set) in written:
            final.append(written[frozenset(info.before_set)])
        elif output_device is not None:
            final.append(_wrap(result, output_device))
        else:
            final.append(result)
    final.extend(results[len(final):])
    return tuple(final) if isinstance(out, tuple) else final[0]


def _count_copy(func, args, kwargs, flat, output_device) -> None:
    """A blocking copy between host and device waits for the device (torch syncs its stream after it)."""
    non_blocking = kwargs.get("non_blocking", args[2] if func is aten.copy_.default and len(args) > 2 else False)
    if non_blocking:
        return
    if output_device is None or (func is aten.copy_.default and _is_cpu_tensor(args[0])):
        _count_sync("copy device->host")
    elif any(_is_cpu_tensor(a) for a in flat):
        _count_sync("copy host->device")


def _run(func, args, kwargs):
    flat, _ = tree_flatten((args, kwargs))
    fakes = [a for a in flat if isinstance(a, FakeDeviceTensor)]
    device = kwargs.get("device")
    target = _fake_device(device)
    if target is not None:
        output_device = target
        kwargs = {**kwargs, "device": torch.device("cpu")}
    elif device is not None:
        output_device = None  # a copy to the CPU (``.cpu()``, ``.to("cpu")``, ``empty_like(x, device="cpu")``)
    else:
        output_device = fakes[0].device if fakes else None
    if fakes:
        _check_placement(func, args, fakes, flat)
        for t in fakes:
            _check_dtype(t.dtype)
        if func in _READS:
            _count_sync(_READS[func])
    if func in _COPIES and (fakes or output_device is not None):
        _count_copy(func, args, kwargs, flat, output_device)
    if output_device is not None:
        _check_generator(func, args, kwargs)
    cpu_args, cpu_kwargs = tree_map(_unwrap, (args, kwargs))
    try:
        out = _STAND_INS.get(func, func)(*cpu_args, **cpu_kwargs)
    except NotImplementedError as err:
        if "'CPU' backend" not in str(err):
            raise
        raise NotImplementedError(f"the fake device has no CPU stand-in for {func}, which torch runs only on "
                                  f"accelerators: add one to _STAND_INS in {__file__}") from err
    return _returns(func, args, kwargs, out, output_device)


def _kernel(func, *args, **kwargs):
    """The PrivateUse1 kernel of factories and copies: ops that reach the fake device without a fake tensor
    argument, or with Python dispatch turned off (``torch.tensor(data, device=...)`` does that)."""
    return _run(func, args, kwargs)


# ---------------------------------------------------------------- counting host synchronisations


def _caller() -> str:
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not (filename.startswith(_TORCH_DIR) or filename == __file__ or filename.startswith("<frozen")):
            try:
                filename = str(Path(filename).resolve().relative_to(_ROOT))
            except ValueError:
                pass
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "<no Python caller: a backward pass>"


class SyncCounter(Counter):
    """Host synchronisations by calling line (``"file:line"``); ``ops`` counts them by kind, ``detail`` by
    (line, kind)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter = Counter()
        self.detail: Counter = Counter()


_RECORDINGS: list[list] = []  # the open recording blocks
_COUNTERS: list[SyncCounter] = []  # the open count_syncs blocks (of any thread: backward may run on another)


def _count_sync(kind: str) -> None:
    if _COUNTERS:
        where = _caller()
        for counter in _COUNTERS:
            counter[where] += 1
            counter.ops[kind] += 1
            counter.detail[where, kind] += 1


@contextmanager
def count_syncs():
    """Count host synchronisations on fake-device tensors inside the block, by calling line.

    >>> with count_syncs() as syncs:  # doctest: +SKIP
    ...     fit(model, data, ["x"], device="fakegpu")
    >>> syncs.most_common(1), syncs.ops  # doctest: +SKIP
    ([('mmcourse/train.py:270', 40)], Counter({'item': 40, 'copy host->device': 44, ...}))
    """
    counter = SyncCounter()
    _COUNTERS.append(counter)
    try:
        yield counter
    finally:
        _COUNTERS.remove(counter)


@contextmanager
def recording():
    """Inside the block, a broken rule does not raise: it is noted, as ``("file:line", "Error: message")`` in
    the list the block gives, and the op goes on with the CPU's values; to find every broken rule of a run at
    once (the survey of issue 31). The tests raise, as a GPU does."""
    found: list[tuple[str, str]] = []
    _RECORDINGS.append(found)
    try:
        yield found
    finally:
        _RECORDINGS.remove(found)


# ---------------------------------------------------------------- registration


class _Module:
    """``torch.fakegpu``: what torch and the course ask of a device module (like ``torch.cuda``)."""

    @staticmethod
    def is_available() -> bool:
        return True

    @staticmethod
    def is_initialized() -> bool:
        return True

    @staticmethod
    def device_count() -> int:
        return _STATE.device_count

    @staticmethod
    def current_device() -> int:
        return 0

    @staticmethod
    def _is_in_bad_fork() -> bool:
        return False

    @staticmethod
    def manual_seed_all(seed: int) -> None:
        """Draws on the fake device come from torch's default CPU generator, which torch.manual_seed seeds."""

    manual_seed = manual_seed_all

    @staticmethod
    def get_rng_state(device=None) -> torch.Tensor:
        """The fake device draws from the CPU generator, so its state is the CPU's (``torch.random.fork_rng`` saves
        and restores the current accelerator's state too)."""
        return torch.get_rng_state()

    @staticmethod
    def set_rng_state(state: torch.Tensor, device=None) -> None:
        torch.set_rng_state(state)

    @staticmethod
    def synchronize(device=None) -> None:
        _count_sync("synchronize")

    @staticmethod
    def get_amp_supported_dtype() -> list[torch.dtype]:
        return [torch.float16, torch.bfloat16]


def _factories() -> list:
    """aten's factories: ops with a ``device`` and no tensor argument (``zeros``, ``arange``, ``randn`` ...)."""
    names = sorted({n[len("aten::"):].split(".")[0] for n in torch._C._dispatch_get_all_op_names()
                    if n.startswith("aten::")})
    found = []
    for name in names:
        if name.startswith("_") or name in ("from_file", "sparse_coo_tensor"):
            continue
        packet = getattr(aten, name)
        for overload in packet.overloads():
            op = getattr(packet, overload)
            arguments, returns = op._schema.arguments, op._schema.returns
            if (any(a.name == "device" for a in arguments) and len(returns) == 1 and str(returns[0].type) == "Tensor"
                    and not any("Tensor" in str(a.type) or a.alias_info is not None for a in arguments)):
                found.append(op)
    return found


_LIBRARIES: list = []  # a Library unregisters its kernels when it is collected


def install() -> str:
    """Register the fake device, once per process; return its name. RuntimeError where :func:`unsupported`."""
    if _STATE.installed:
        return NAME
    reason = unsupported()
    if reason is not None:
        raise RuntimeError(f"fake accelerator: {reason}")
    from torch.utils.backend_registration import _setup_privateuseone_for_python_backend

    _setup_privateuseone_for_python_backend(rename=NAME, backend_module=_Module())
    # Ops reach the PrivateUse1 key, rather than __torch_dispatch__, when no argument is a fake tensor
    # (factories: their composite kernels would make an empty tensor and resize it through out=, which a
    # wrapper cannot follow) and when Python dispatch is off (torch.tensor(data, device=...) copies so).
    kernels = torch.library.Library("aten", "IMPL")
    for op in [*_factories(), *_COPIES]:
        kernels.impl(op, functools.partial(_kernel, op), "PrivateUse1")
    # Anything else without a tensor argument. (A Python fallback fails on ops with tensor arguments: an
    # internal assert in torch 2.13.)
    fallback = torch.library.Library("_", "IMPL")
    fallback.fallback(_kernel, "PrivateUse1")
    _LIBRARIES.extend([kernels, fallback])
    _STATE.installed = True
    return NAME


@contextmanager
def settings(*, float64: bool | None = None, device_count: int | None = None):
    """Change the fake device's rules inside the block: ``float64=False`` makes float64 on it raise (as on
    Apple's MPS); ``device_count`` is how many fake devices there are (``fakegpu:0`` ... ; 1 by default)."""
    saved = _STATE.float64, _STATE.device_count
    if float64 is not None:
        _STATE.float64 = float64
    if device_count is not None:
        _STATE.device_count = device_count
    try:
        yield
    finally:
        _STATE.float64, _STATE.device_count = saved


def device(index: int = 0) -> torch.device:
    """The fake device ``fakegpu:index``, installing it first if needed."""
    install()
    return torch.device(NAME, index)


__all__ = ["NAME", "FakeDeviceTensor", "SyncCounter", "count_syncs", "course_torch_version", "device", "install",
           "recording", "settings", "unsupported"]
