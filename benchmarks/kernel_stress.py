"""Execute notebooks again and again with a short cell timeout, and report every stall with the cell it stopped in.

    python benchmarks/kernel_stress.py                           # the stress notebook, each way, 3 minutes each
    python benchmarks/kernel_stress.py --minutes 10 --load 1     # longer, with one busy core beside it
    python benchmarks/kernel_stress.py --lessons 00 04 --runs 3  # lessons instead (cell timeout 60 s)
    python benchmarks/kernel_stress.py --kernel-python /tmp/ipykernel7/bin/python   # a kernel of another environment

A stall is a cell whose reply does not come within the cell timeout although the cell takes milliseconds (the
stress notebook) or a few seconds (a lesson): the kernel waits for a request that it never read, the client
waits for the reply (ipython/ipykernel#1554, ipykernel 7). Each stall is reported with the notebook, the run,
the cell and how busy the kernel process was while the client waited (a stalled kernel idles near 0% CPU; a
slow cell keeps it busy).

Two ways to run a notebook, as the course's users do, each run in a fresh kernel:

- ``cell by cell``: nbclient sends a cell, waits for its reply and the kernel's idle status, then sends the next
  (``jupyter nbconvert --execute``). A cell answered only when nbclient's wait timed out counts as a stall: the
  reply was there, but the wait did not see it (jupyter/nbclient#312: nbclient's stand-in for an ``Output``
  widget sends on the socket that the wait polls, which can use up the reply's wake-up).
- ``cell by cell, course's executor``: the same with ``mmcourse.instructor.NotebookExecutor``, which waits in
  slices of half a second (the website build, ``benchmarks/lessons.py``, ``mmcourse.instructor executed``).
- ``run all``: JupyterLab's Run All. A second client first asks for ``kernel_info`` and leaves without reading
  the reply (what jupyter_server does on every new websocket), then every cell's ``execute_request`` goes out at
  once and the kernel queues them.
- ``reconnecting``: that unanswered ``kernel_info`` of a new connection before every cell, the cell 0-2 ms later
  (a browser tab opened or reconnected while the kernel runs): the window that ipython/ipykernel#1554 describes.

The stress notebook repeats the kinds of cell the lessons have: prints, a slider driving an ``Output`` with
``interactive_output`` and a matplotlib figure, ``IPython.display.Audio`` and an ``ipywidgets.Audio`` widget,
tqdm progress bars, stderr, an HTML table. Results for the pinned and the newer ipykernel are in
benchmarks/README.md ("Kernel stalls").
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import nbformat
import psutil
from jupyter_client import KernelManager
from jupyter_client.session import Session
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "lessons"

# One block of cells like the lessons' (widgets, audio, progress bars, plots, prints); the notebook repeats it.
STRESS_SETUP = """\
import io, sys, time, wave
import numpy as np
import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import Audio, HTML, display
from tqdm.auto import tqdm

def wav_bytes(seconds=0.3, rate=8000):
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate); w.writeframes(samples.tobytes())
    return buffer.getvalue()
"""
STRESS_BLOCK = [
    "print('a line of text'); 1 + 1",
    """\
slider = widgets.IntSlider(value=3, min=1, max=9, description="k")
def draw(k):
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot(np.arange(10) ** (k / 3))
    plt.show()
    plt.close(fig)
display(widgets.VBox([slider, widgets.interactive_output(draw, {"k": slider})]))""",
    "display(Audio(np.sin(np.linspace(0, 2000, 2400)), rate=8000))",
    "display(widgets.Audio(value=wav_bytes(), format='wav', autoplay=False))",
    "for _ in tqdm(range(20), desc='training'):\n    time.sleep(0.001)",
    "print('a warning', file=sys.stderr)",
    "display(HTML('<table>' + ''.join(f'<tr><td>{i}</td><td>{i * i}</td></tr>' for i in range(20)) + '</table>'))",
    "slider.value = 5  # a widget changed from code: the kernel sends its new state",
    """\
out = widgets.Output()
display(out)
with out:  # printed into an Output widget, as the lessons' views draw: nbclient's stand-in sends its new state
    print("inside the output widget")""",
]


def stress_notebook(blocks: int = 6) -> nbformat.NotebookNode:
    """The stress notebook: the set-up cell, then ``blocks`` copies of the block (1 + 8 * blocks cells)."""
    cells = [nbformat.v4.new_code_cell(STRESS_SETUP)]
    cells += [nbformat.v4.new_code_cell(source) for _ in range(blocks) for source in STRESS_BLOCK]
    return nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                           "display_name": "Python 3"}})


class Stall(NamedTuple):
    notebook: str
    mode: str
    run: int
    cell: int
    source: str
    waited_s: float
    kernel_cpu: float  # percent of one core, while the client waited


@dataclass
class Tally:
    runs: int = 0
    cells: int = 0
    seconds: float = 0.0
    stalls: list[Stall] = field(default_factory=list)


def _first_line(source: str) -> str:
    line = source.strip().splitlines()[0] if source.strip() else ""
    return line[:60]


def _kernel_process(manager: KernelManager) -> psutil.Process | None:
    pid = getattr(manager.provisioner, "pid", None) if manager.provisioner else None
    try:
        return psutil.Process(pid) if pid else None
    except psutil.Error:
        return None


def _cpu_percent(process: psutil.Process | None, seconds: float = 2.0) -> float:
    """How busy the kernel is: CPU time over ``seconds`` of wall time, in percent of one core (NaN if gone)."""
    if process is None:
        return float("nan")
    try:
        before = sum(process.cpu_times()[:2])
        time.sleep(seconds)
        return 100 * (sum(process.cpu_times()[:2]) - before) / seconds
    except psutil.Error:
        return float("nan")


def run_cell_by_cell(nb: nbformat.NotebookNode, name: str, run: int, timeout: float, kernel: str,
                     cwd: Path, client_class=NotebookClient) -> tuple[int, list[Stall]]:
    """Execute ``nb`` with nbclient, one cell after the other, as nbconvert does (``client_class``: nbclient's own
    NotebookClient, or the course's NotebookExecutor). A cell whose reply comes only at the timeout counts as
    a stall too: nbclient's wait for the reply looks at the socket once more when its timeout ends."""
    # allow_errors: a cell that fails still counts as answered (a stall is a cell that gets no answer).
    client = client_class(nb, timeout=timeout, kernel_name=kernel, allow_errors=True,
                          resources={"metadata": {"path": str(cwd)}})
    done, late = 0, []
    with client.setup_kernel():
        process = _kernel_process(client.km)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            start = time.perf_counter()
            try:
                client.execute_cell(cell, index)
            except CellTimeoutError:
                waited = time.perf_counter() - start
                return done, late + [Stall(name, "cell by cell", run, index, _first_line(cell.source), waited,
                                           _cpu_percent(process))]
            waited = time.perf_counter() - start
            if waited > LATE * timeout:  # answered only when the wait timed out: a stall that ended by luck
                late.append(Stall(name, "cell by cell", run, index, _first_line(cell.source), waited, float("nan")))
            done += 1
    return done, late


def run_cell_by_cell_executor(nb: nbformat.NotebookNode, name: str, run: int, timeout: float, kernel: str,
                              cwd: Path) -> tuple[int, list[Stall]]:
    """:func:`run_cell_by_cell` with the course's ``mmcourse.instructor.NotebookExecutor`` (nbclient, its waits
    for the kernel sliced): the way the course's tools run notebooks."""
    from mmcourse.instructor import NotebookExecutor

    done, stalls = run_cell_by_cell(nb, name, run, timeout, kernel, cwd, client_class=NotebookExecutor)
    return done, [stall._replace(mode="cell by cell, course's executor") for stall in stalls]


def run_all(nb: nbformat.NotebookNode, name: str, run: int, timeout: float, kernel: str,
            cwd: Path) -> tuple[int, list[Stall]]:
    """Send every cell at once, as JupyterLab's Run All does, after a kernel_info request left unanswered."""
    manager = KernelManager(kernel_name=kernel)
    manager.start_kernel(cwd=str(cwd))
    process = _kernel_process(manager)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        _nudge(manager)
        cells = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        pending = {client.execute(c.source, store_history=True): (i, c) for i, c in cells}
        done, deadline = 0, time.perf_counter() + timeout
        while pending:
            try:
                reply = client.get_shell_msg(timeout=max(0.05, deadline - time.perf_counter()))
            except Exception:  # queue.Empty: nothing within the timeout
                # The cell the kernel should be running: the first one without a reply.
                index, cell = min(pending.values(), key=lambda item: item[0])
                return done, [Stall(name, "run all", run, index, _first_line(cell.source), timeout,
                                    _cpu_percent(process))]
            if reply["parent_header"].get("msg_id") in pending:
                pending.pop(reply["parent_header"]["msg_id"])
                done += 1
                deadline = time.perf_counter() + timeout  # each cell gets the full timeout after the one before
        return done, []
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def run_reconnecting(nb: nbformat.NotebookNode, name: str, run: int, timeout: float, kernel: str,
                     cwd: Path) -> tuple[int, list[Stall]]:
    """Before every cell, a new connection's kernel_info request that nobody waits for (what jupyter_server
    sends whenever a browser tab opens or reconnects to a running kernel), then the cell: the request lands
    while the kernel answers a peer that has gone, the window of ipython/ipykernel#1554."""
    manager = KernelManager(kernel_name=kernel)
    manager.start_kernel(cwd=str(cwd))
    process = _kernel_process(manager)
    client = manager.client()
    client.start_channels()
    jitter = random.Random(run)
    try:
        client.wait_for_ready(timeout=60)
        done = 0
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            _nudge(manager)
            time.sleep(jitter.uniform(0, 0.002))
            msg_id = client.execute(cell.source, store_history=True)
            deadline = time.perf_counter() + timeout
            while True:
                try:
                    reply = client.get_shell_msg(timeout=max(0.05, deadline - time.perf_counter()))
                except Exception:  # queue.Empty
                    return done, [Stall(name, "reconnecting", run, index, _first_line(cell.source), timeout,
                                        _cpu_percent(process))]
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
            done += 1
        return done, []
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def _nudge(manager: KernelManager) -> None:
    """jupyter_server's nudge: a kernel_info_request from a new connection (a session of its own, as each
    websocket has) that closes before the reply comes."""
    nudge = manager.client(session=Session(key=manager.session.key, signature_scheme=manager.session.signature_scheme))
    nudge.start_channels(iopub=False, stdin=False, hb=False, control=False)
    nudge.kernel_info()
    nudge.stop_channels()


MODES = {"cell by cell": run_cell_by_cell, "cell by cell, course's executor": run_cell_by_cell_executor,
         "run all": run_all, "reconnecting": run_reconnecting}
LATE = 0.9  # a cell answered after 90% of the timeout was answered by the timeout's last look, not by its reply


def _busy(stop_at: float) -> None:
    while time.time() < stop_at:
        sum(i * i for i in range(10_000))


def stress(notebooks: dict[str, tuple[nbformat.NotebookNode, Path]], modes: list[str], kernel: str, timeout: float,
           runs: int | None, minutes: float | None) -> dict[tuple[str, str], Tally]:
    """Run each notebook in each mode ``runs`` times (or for ``minutes`` per mode and notebook)."""
    tallies: dict[tuple[str, str], Tally] = {}
    for mode in modes:
        for name, (nb, cwd) in notebooks.items():
            tally = tallies.setdefault((mode, name), Tally())
            stop = time.perf_counter() + 60 * minutes if minutes else float("inf")
            while (runs is None or tally.runs < runs) and time.perf_counter() < stop:
                start = time.perf_counter()
                done, stalls = MODES[mode](nbformat.from_dict(nb), name, tally.runs, timeout, kernel, cwd)
                tally.runs += 1
                tally.cells += done + sum(s.kernel_cpu == s.kernel_cpu for s in stalls)  # + a cell that never answered
                tally.seconds += time.perf_counter() - start
                tally.stalls += stalls
                for stall in stalls:
                    print(f"STALL: {stall}", file=sys.stderr, flush=True)
            print(f"{mode}, {name}: {tally.runs} runs, {tally.cells} cells, {len(tally.stalls)} stalls",
                  file=sys.stderr, flush=True)
    return tallies


def kernel_versions(python: str) -> str:
    code = ("import sys, ipykernel, jupyter_client, zmq; print(f'Python {sys.version.split()[0]}, ipykernel "
            "{ipykernel.__version__}, jupyter_client {jupyter_client.__version__} (kernel side), pyzmq "
            "{zmq.__version__}, libzmq {zmq.zmq_version()}')")
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def _kernelspec(python: str, folder: Path) -> str:
    """A kernel spec named ``stress`` that starts ``python``'s ipykernel; returns its name."""
    spec = folder / "kernels" / "stress"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "stress", "language": "python"}))
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(folder), os.environ.get("JUPYTER_PATH", "")])
    return "stress"


def report(tallies: dict[tuple[str, str], Tally], header: str) -> str:
    lines = [header, "", "| way | notebook | runs | cells executed | minutes | stalls | where (run, cell: first line; "
             "kernel CPU while waiting, or when the late answer came) |", "|---|---|---:|---:|---:|---:|---|"]
    for (mode, name), t in tallies.items():
        where = "; ".join(f"run {s.run}, cell {s.cell}: `{s.source}` " + (
            f"(answered after {s.waited_s:.1f} s)" if s.kernel_cpu != s.kernel_cpu else f"({s.kernel_cpu:.0f}% CPU)")
            for s in t.stalls[:4]) + (f"; {len(t.stalls) - 4} more" if len(t.stalls) > 4 else "")
        lines.append(f"| {mode} | {name} | {t.runs} | {t.cells} | {t.seconds / 60:.1f} | {len(t.stalls)} | "
                     f"{where or '-'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lessons", nargs="*", help="lesson prefixes (00 04 ...); default: the stress notebook")
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES))
    parser.add_argument("--runs", type=int, help="runs per notebook and way (default: run for --minutes)")
    parser.add_argument("--minutes", type=float, default=3.0, help="minutes per notebook and way, without --runs")
    parser.add_argument("--timeout", type=float, help="seconds per cell (default 10; 60 for lessons)")
    parser.add_argument("--blocks", type=int, default=6, help="copies of the block in the stress notebook")
    parser.add_argument("--kernel-python", default=sys.executable, help="the Python whose ipykernel to stress")
    parser.add_argument("--load", type=int, default=0, help="busy processes beside the kernel (a loaded machine)")
    args = parser.parse_args(argv)

    if args.lessons is not None:
        paths = sorted(p for p in LESSONS.glob("[0-9][0-9]_*.ipynb") if any(p.name.startswith(x) for x in
                                                                              args.lessons or [""]))
        notebooks = {p.stem: (nbformat.read(p, as_version=4), LESSONS) for p in paths}
        timeout = args.timeout or 60.0
    else:
        notebooks = {f"stress ({1 + len(STRESS_BLOCK) * args.blocks} cells)": (stress_notebook(args.blocks),
                                                                                 Path(tempfile.gettempdir()))}
        timeout = args.timeout or 10.0
    kernel = "python3"
    if Path(args.kernel_python).resolve() != Path(sys.executable).resolve():
        kernel = _kernelspec(args.kernel_python, Path(tempfile.mkdtemp(prefix="kernel-stress-")))
    minutes = None if args.runs else args.minutes
    load = []
    if args.load:
        stop_at = time.time() + 24 * 3600
        load = [multiprocessing.Process(target=_busy, args=(stop_at,), daemon=True) for _ in range(args.load)]
        for p in load:
            p.start()
    try:
        tallies = stress(notebooks, args.modes, kernel, timeout, args.runs, minutes)
    finally:
        for p in load:
            p.terminate()
    header = (f"{time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, {os.cpu_count()} cores, "
              f"{kernel_versions(args.kernel_python)}; cell timeout {timeout:g} s, {args.load} busy processes beside")
    print(report(tallies, header))
    return 1 if any(t.stalls for t in tallies.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
