"""Time ``mmcourse.cca.CCA.fit`` against scikit-learn's ``CCA.fit`` on the same data.

    python benchmarks/cca_fit.py              # default sizes, median of 7 fits each
    python benchmarks/cca_fit.py --repeats 15

Data: ``make_two_views`` with canonical correlations 0.9, 0.7, 0.4; each row states k, the number of
components both keep (scikit-learn's NIPALS finds them one at a time, so its cost grows with k; the
closed form's hardly changes). Both fit the same float64 arrays; the two are timed alternately, so
that a change in the machine's load affects both alike, and the median of the repeats is reported.
Each size runs twice: with the libraries' default threads and restricted to one thread (torch and
NumPy's BLAS). The last column checks that both find the same canonical correlations (projections
compared, since the weights differ in sign and scale).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
from sklearn.cross_decomposition import CCA as SklearnCCA
from threadpoolctl import threadpool_limits

from mmcourse.cca import CCA
from mmcourse.data import make_two_views

SIZES = [(500, 10, 8, 3), (2000, 10, 8, 3), (1000, 40, 40, 3), (2000, 64, 32, 3), (2000, 64, 32, 8),
         (2000, 100, 100, 3), (5000, 50, 50, 3)]  # n, p, q, k


def _correlations(u, v) -> torch.Tensor:
    u, v = torch.as_tensor(u), torch.as_tensor(v)
    return torch.stack([torch.corrcoef(torch.stack([u[:, i], v[:, i]]))[0, 1] for i in range(u.shape[1])])


def compare(n: int, p: int, q: int, k: int, repeats: int) -> dict:
    views = make_two_views(n=n, dim_x=p, dim_y=q, correlations=(0.9, 0.7, 0.4), seed=0)
    x, y = views.x.numpy(), views.y.numpy()
    ours_times, sklearn_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        ours = CCA(n_components=k).fit(x, y)
        ours_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs = SklearnCCA(n_components=k, max_iter=1000).fit(x, y)
        sklearn_times.append(time.perf_counter() - start)
    difference = (ours.correlations(x, y) - _correlations(*theirs.transform(x, y))).abs().max().item()
    t_ours, t_sklearn = statistics.median(ours_times), statistics.median(sklearn_times)
    return {"ours": t_ours, "sklearn": t_sklearn, "ratio": t_sklearn / t_ours, "difference": difference}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
          f"load average {load:.2f}; median of {args.repeats} fits each\n")
    print("| n | p | q | k | threads | ours (ms) | scikit-learn (ms) | ratio | largest correlation difference |")
    print("|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for n, p, q, k in SIZES:
        compare(n, p, q, k, 1)  # warm up both code paths
        default_threads = torch.get_num_threads()
        for label in (f"default ({default_threads})", "1"):
            if label == "1":
                torch.set_num_threads(1)
                with threadpool_limits(limits=1):
                    r = compare(n, p, q, k, args.repeats)
                torch.set_num_threads(default_threads)
            else:
                r = compare(n, p, q, k, args.repeats)
            print(f"| {n} | {p} | {q} | {k} | {label} | {1000 * r['ours']:.2f} | {1000 * r['sklearn']:.2f} | "
                  f"{r['ratio']:.1f}x | {r['difference']:.1e} |", flush=True)


if __name__ == "__main__":
    main()
