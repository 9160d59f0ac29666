"""Every lesson's claims on seeds 0-9: threshold, worst, median and best value, and the worst margin.

    python benchmarks/claims.py                       # every topic, seeds 0-9, two processes
    python benchmarks/claims.py fusion attention      # some topics
    python benchmarks/claims.py --seeds 0-4 --jobs 1  # fewer seeds, one process
    python benchmarks/claims.py --write               # also update the table in benchmarks/README.md
    python benchmarks/claims.py transfer --merge runs.json --json runs.json --write
                                                      # rerun one topic; the others' values come from runs.json

A run on another machine is, in effect, another seed, so a lesson claims only what holds on all ten
seeds with a margin well above the spread between them. For each claim the table gives the worst
margin (how far the worst seed is on the right side of the threshold) in units of the standard
deviation over the seeds; a claim is **robust** when every seed holds and that worst margin is at
least ``ROBUST_SDS`` standard deviations. Seed 0 also runs on two other floating-point paths of the
CPU, as another machine would: with oneDNN (MKL-DNN) switched off, and with two torch threads.

Each (topic, seed) runs in its own process with one torch thread, ``jobs`` at a time. The exit
status is 1 when some claim fails on some run. ``--device cuda`` runs the experiments on a GPU
(``MMCOURSE_DEVICE``); the floating-point variants then stay off.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "benchmarks" / "README.md"
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))
LESSON = {p.stem[3:]: p.name[:2] for p in LESSONS}  # topic -> lesson number: lessons/01_fusion.py -> "fusion": "01"
TOPICS = list(LESSON)  # in lesson order
VARIANTS = {"seed": "one thread", "no-onednn": "oneDNN off", "two-threads": "two threads"}
ROBUST_SDS = 2.0
MARKERS = ("<!-- claims table -->", "<!-- /claims table -->")


def _measure(topic: str, seed: int, variant: str, device: str | None) -> tuple[str, int, str, dict, float]:
    """Run ``measure_claims(seed)`` of one topic in this (worker) process; values by claim name."""
    os.environ.pop("MMCOURSE_STRICT_CLAIMS", None)
    if device:
        os.environ["MMCOURSE_DEVICE"] = device
    import torch

    from mmcourse.claims import claims_of

    torch.set_num_threads(2 if variant == "two-threads" else 1)
    module = importlib.import_module(f"mmcourse.experiments.{topic}")
    start = time.perf_counter()
    with torch.backends.mkldnn.flags(enabled=variant != "no-onednn"):
        measured = module.measure_claims(seed)
    names = {claim: name for name, claim in claims_of(module).items()}
    return topic, seed, variant, {names[c]: float(v) for c, v in measured.items()}, time.perf_counter() - start


def _seeds(text: str) -> list[int]:
    if "-" in text:
        first, last = text.split("-")
        return list(range(int(first), int(last) + 1))
    return [int(s) for s in text.split(",")]


def run(topics: list[str], seeds: list[int], jobs: int, device: str | None, variants: bool) -> dict:
    """All runs, as {topic: {"seed": {seed: {claim: value}}, "no-onednn": {...}, "two-threads": {...}}}."""
    tasks = [(t, s, "seed") for t in topics for s in seeds]
    if variants and not device:
        tasks += [(t, 0, v) for t in topics for v in ("no-onednn", "two-threads")]
    results: dict = {t: {v: {} for v in VARIANTS} for t in topics}
    seconds: dict = {t: [] for t in topics}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_measure, t, s, v, device) for t, s, v in tasks]
        for future in futures:
            topic, seed, variant, values, spent = future.result()
            results[topic][variant][seed] = values
            if variant == "seed":
                seconds[topic].append(spent)
            print(f"  {topic} {variant} seed {seed}: {spent:.1f} s", file=sys.stderr, flush=True)
    return {"results": results, "seconds": seconds}


def table(runs: dict, seeds: list[int]) -> tuple[str, int]:
    """The markdown table of every claim, and the number of claims that are not robust."""
    from mmcourse.claims import claims_of

    rows = [f"| lesson | claim | threshold | worst | median | best | sd | worst margin (sd) | "
            f"{VARIANTS['no-onednn']} (seed 0) | {VARIANTS['two-threads']} (seed 0) | robust |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    weak = 0
    for topic, by_variant in runs["results"].items():
        module = importlib.import_module(f"mmcourse.experiments.{topic}")
        for name, claim in claims_of(module).items():
            values = [by_variant["seed"][s][name] for s in seeds]
            worst = min(values, key=claim.margin)
            best = max(values, key=claim.margin)
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            margin = claim.margin(worst)
            in_sds = margin / sd if sd > 0 else float("inf")
            others = []
            for variant in ("no-onednn", "two-threads"):
                value = by_variant[variant].get(0, {}).get(name)
                others.append("n/a" if value is None else f"{value:.4g}" + ("" if claim.holds(value) else " ✗"))
            holds = all(claim.holds(v) for v in values) and all(not o.endswith("✗") for o in others)
            robust = holds and in_sds >= ROBUST_SDS
            weak += not robust
            rows.append(f"| {LESSON[topic]} | `{name}` | {claim.op} {claim.threshold:g} | {worst:.4g} | "
                        f"{statistics.median(values):.4g} | {best:.4g} | {sd:.3g} | {margin:.3g} "
                        f"({'inf' if in_sds == float('inf') else f'{in_sds:.1f}'}) | {others[0]} | {others[1]} | "
                        f"{'yes' if robust else ('NO: fails' if not holds else 'NO: thin')} |")
    return "\n".join(rows), weak


def describe_machine(device: str | None) -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        info = Path("/proc/cpuinfo").read_text()
        cpu = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
        flags = set(next(line for line in info.splitlines() if line.startswith("flags")).split())
        vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
        cpu += f" ({vector})"
    except (OSError, StopIteration):
        pass
    where = f"GPU {torch.cuda.get_device_name()}" if device == "cuda" and torch.cuda.is_available() else "CPU"
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, experiments on {where}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("topics", nargs="*", default=TOPICS, help=f"topics, of {TOPICS}")
    parser.add_argument("--seeds", default="0-9", help="e.g. 0-9 or 0,3,5")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the CPU, as on a laptop)")
    parser.add_argument("--no-variants", action="store_true", help="skip the oneDNN-off and two-thread runs")
    parser.add_argument("--write", action="store_true", help="update the table in benchmarks/README.md")
    parser.add_argument("--json", type=Path, help="also save the raw values there")
    parser.add_argument("--merge", type=Path, help="the raw values of an earlier run (--json) for the topics not rerun")
    args = parser.parse_args()
    unknown = sorted(set(args.topics) - set(TOPICS))
    if unknown:
        parser.error(f"unknown topics {unknown}; known: {TOPICS}")
    seeds = _seeds(args.seeds)
    device = args.device if args.device not in (None, "cpu") else None
    start = time.perf_counter()
    runs = run(args.topics, seeds, args.jobs, device, not args.no_variants)
    if args.merge:  # the earlier run's topics, with the topics just run replaced, in lesson order
        earlier = json.loads(args.merge.read_text())
        for key in ("results", "seconds"):
            merged = {**earlier[key], **runs[key]}
            runs[key] = {t: merged[t] for t in TOPICS if t in merged}
        runs["results"] = {t: {v: {int(s): values for s, values in by_seed.items()}  # JSON keys are strings
                               for v, by_seed in by_variant.items()} for t, by_variant in runs["results"].items()}
    text, weak = table(runs, seeds)
    minutes = (time.perf_counter() - start) / 60
    per_seed = ", ".join(f"{LESSON[t]}: {statistics.median(s):.0f} s" for t, s in runs["seconds"].items() if s)
    rerun = f" (this time {', '.join(args.topics)}; the others from an earlier run)" if args.merge else ""
    header = (f"Seeds {args.seeds} on {describe_machine(device)}; {args.jobs} processes, {minutes:.0f} min{rerun}; "
              f"median time of one seed's experiments: {per_seed}. Robust: every run holds and the worst seed "
              f"is at least {ROBUST_SDS:g} standard deviations (over the seeds) on the right side of the threshold.")
    output = f"{header}\n\n{text}\n"
    print(output)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    if args.write:
        readme = README.read_text()
        begin, end = MARKERS
        if begin in readme and end in readme:
            before, rest = readme.split(begin, 1)
            readme = before + begin + "\n" + output + end + rest.split(end, 1)[1]
        else:
            readme += (f"\n## Claims on seeds 0-9\n\nOutput of `python benchmarks/claims.py`:\n\n"
                       f"{begin}\n{output}{end}\n")
        README.write_text(readme)
    print(f"{weak} claim(s) not robust" if weak else "every claim is robust", file=sys.stderr)
    return 1 if weak else 0


if __name__ == "__main__":
    sys.exit(main())
