"""Mamba mixer, `backend="cpu"` (compiled selective scan) against `backend="torch"` (chunked PyTorch path):
forward+backward time, repetitions interleaved in one process, same weights and inputs, equal outputs.

    python -m benchmarks.core.mamba_backends --T 2048 8192 --threads 1

Prints one line per T (medians, the ratio torch / cpu and the max abs difference of the outputs).
The kernel compiles on first use (about a minute, once per machine and kernel version).
"""

from __future__ import annotations

import argparse
import os


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks.core.mamba_backends", description=__doc__.split("\n\n")[0])
    p.add_argument("--T", type=int, nargs="+", default=[2048, 8192])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--budget", type=float, default=30.0, help="seconds of timed repetitions per backend and T")
    p.add_argument("--dim", type=int, default=256)
    args = p.parse_args(argv)

    import torch

    from benchmarks.core.common import Built, compare, leaf, seeded
    from benchmarks.core.measure import time_interleaved
    from polyformer.core.mixers import build_mixer

    torch.set_num_threads(args.threads)
    out = {}
    for T in args.T:
        g = seeded(10)
        x = torch.randn(1, T, args.dim, generator=g)
        grad_out = torch.randn(1, T, args.dim, generator=g)
        built, outs = {}, {}
        for backend in ("torch", "cpu"):
            torch.manual_seed(0)
            m = build_mixer("mamba", dim=args.dim, causal=True, backend=backend).train()
            xl = leaf(x)
            built[backend] = b = Built([xl], lambda m=m, xl=xl: m(xl)[0], module=m)
            outs[backend] = b.fwd_bwd(grad_out).detach()  # warm-up (and the kernel's compilation)
        diff = compare(outs["cpu"], outs["torch"])
        times = time_interleaved(
            {k: (lambda b=b, g=grad_out: b.fwd_bwd(g)) for k, b in built.items()}, reps=args.reps, budget_s=args.budget
        )
        ratio = times["torch"]["median_s"] / times["cpu"]["median_s"]
        out[T] = {"times": times, "ratio": ratio, "check": diff}
        print(
            f"T={T}: torch {times['torch']['median_s'] * 1e3:.0f} ms, cpu {times['cpu']['median_s'] * 1e3:.0f} ms "
            f"({times['cpu']['reps']} reps), torch / cpu {ratio:.1f}x; max abs diff {diff['max_abs_diff']:.1e} "
            f"{'ok' if diff['ok'] else 'FAIL'}; {args.threads} thread(s), load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    return out


if __name__ == "__main__":
    main()
