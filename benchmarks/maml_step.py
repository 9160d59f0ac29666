"""Time one MAML meta-training step with ``torch.func.vmap`` over the tasks against a Python loop over them.

    python benchmarks/maml_step.py               # median of 15 steps each
    python benchmarks/maml_step.py --repeats 31

A step is the meta-loss of a meta-batch of tasks and its gradient with respect to the initial
parameters: ``mmcourse.meta.maml_meta_loss`` (``torch.func``: ``grad`` for the inner step, ``vmap``
over the tasks) against ``mmcourse.meta.maml_meta_loss_loop`` (one task at a time, each adapted with
``torch.autograd.grad(..., create_graph=True)``, as most tutorials write it). The model and tasks are
lesson 06's: a perceptron 160 -> 64 -> 64 -> 4 on 4-way 5-shot AV-Digits audio tasks (10 queries per
class) of the meta-train digits. One torch thread; the two ways are timed alternately, so that a change
in the machine's load affects both alike; the last column checks that both give the same meta-gradient.
The first row is the setting of the lesson and of issue 13 (16 tasks, 1 inner step, second order).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from mmcourse.experiments import meta as experiments
from mmcourse.meta import maml_meta_loss, maml_meta_loss_loop

ROWS = [(16, 1, False), (16, 1, True), (4, 1, False), (32, 1, False), (16, 3, False)]  # tasks, inner steps, FO


def step(loss_of, model, params, tasks, inner_steps: int, first_order: bool) -> list[torch.Tensor]:
    loss = loss_of(model, params, *tasks, F.cross_entropy, 0.2, inner_steps, first_order)
    return list(torch.autograd.grad(loss, list(params.values())))


def compare(data, meta_batch: int, inner_steps: int, first_order: bool, repeats: int) -> dict:
    settings = experiments.MAMLSettings(meta_batch=meta_batch)
    tasks = experiments.meta_batch_tasks(experiments.maml_sampler(data, settings), range(meta_batch))
    torch.manual_seed(0)
    model = experiments.build_maml_model("audio")
    params = {k: v.detach().clone().requires_grad_() for k, v in model.named_parameters()}
    times = {"vmap": [], "loop": []}
    grads = {}
    for i in range(repeats + 1):  # the first round warms up both
        for name, loss_of in (("vmap", maml_meta_loss), ("loop", maml_meta_loss_loop)):
            start = time.perf_counter()
            grads[name] = step(loss_of, model, params, tasks, inner_steps, first_order)
            if i:
                times[name].append(time.perf_counter() - start)
    difference = max((a - b).abs().max().item() for a, b in zip(grads["vmap"], grads["loop"]))
    vmap, loop = statistics.median(times["vmap"]), statistics.median(times["loop"])
    return {"vmap": vmap, "loop": loop, "ratio": loop / vmap, "difference": difference}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = experiments.meta_data(seed=0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, one thread, "
          f"load average {load:.2f}; median of {args.repeats} steps each\n")
    print("| tasks | inner steps | meta-gradient | vmap (ms) | loop (ms) | loop / vmap | largest gradient difference |")
    print("|---:|---:|---|---:|---:|---:|---:|")
    for meta_batch, inner_steps, first_order in ROWS:
        r = compare(data, meta_batch, inner_steps, first_order, args.repeats)
        order = "first order" if first_order else "second order"
        print(f"| {meta_batch} | {inner_steps} | {order} | {1000 * r['vmap']:.1f} | {1000 * r['loop']:.1f} | "
              f"{r['ratio']:.1f}x | {r['difference']:.1e} |", flush=True)


if __name__ == "__main__":
    main()
