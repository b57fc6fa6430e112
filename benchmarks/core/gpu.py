"""Core benchmark on a CUDA device: forward+backward time and peak memory of each mixer, our pure-PyTorch
path (`backend="torch"`) beside the accelerated kernels it dispatches to (fla's Triton kernels, mamba-ssm's
CUDA scan and Triton SSD), in bf16, side by side in one process.

    python -m benchmarks.core.gpu                       # T = 2048, 8192; batch 4; width 1024
    python -m benchmarks.core.gpu --T 4096 --dim 2048 --out /tmp/gpu

Writes gpu.json and gpu.md to `--out` (default benchmarks/core/results). Backends that are not installed
(`pip install 'polyformer[cuda]'`) are reported as such.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from polyformer.core import build_mixer

ACCELERATED = {"attention": "torch", "retention": "fla", "gla": "fla", "deltanet": "fla",
               "gated_deltanet": "fla", "mamba": "mamba_ssm", "mamba2": "mamba_ssm"}  # fmt: skip


def time_fwd_bwd(mixer, x, reps: int) -> tuple[float, float]:
    """Median milliseconds of forward+backward and the peak memory (MiB) above the input's."""
    grad = torch.randn_like(x)
    for _ in range(3):
        mixer(x)[0].backward(grad)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        mixer(x)[0].backward(grad)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2], (torch.cuda.max_memory_allocated() - base) / 2**20


def run(T_list, batch: int, dim: int, heads: int, reps: int) -> list[dict]:
    """One row per (mixer, T): our torch path and the accelerated backend."""
    rows = []
    for name, backend in ACCELERATED.items():
        for T in T_list:
            row = {"mixer": name, "T": T, "backend": backend}
            for label, b in (("torch", "torch"), ("accelerated", backend)):
                try:
                    torch.manual_seed(0)
                    m = build_mixer(name, dim=dim, hints={"num_heads": heads}, backend=b).cuda().to(torch.bfloat16)
                    x = torch.randn(batch, T, dim, device="cuda", dtype=torch.bfloat16, requires_grad=True)
                    ms, mib = time_fwd_bwd(m, x, reps)
                    row[label] = {"ms": round(ms, 3), "peak_mib": round(mib, 1), "used": m.backend}
                except Exception as e:  # a backend that is absent or fails is reported, not fatal
                    row[label] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"}
                torch.cuda.empty_cache()
            rows.append(row)
            print(row, flush=True)
    return rows


def markdown(rows, args) -> str:
    """The table: per mixer and T, our torch path, the accelerated kernel, and their ratio."""
    head = (f"{torch.cuda.get_device_name()}, bf16, batch {args.batch}, width {args.dim}, {args.heads} heads, "
            f"forward+backward, median of {args.reps}; torch {torch.__version__}.\n\n"
            "| mixer | T | kernel | torch path ms | kernel ms | speed-up | torch path MiB | kernel MiB |\n"
            "|---|---:|---|---:|---:|---:|---:|---:|\n")  # fmt: skip
    lines = []
    for r in rows:
        t, a = r["torch"], r["accelerated"]
        if "error" in a or "error" in t:
            err = a.get("error") or t.get("error")
            lines.append(f"| {r['mixer']} | {r['T']} | {r['backend']} | {t.get('ms', '-')} | - | - | {t.get('peak_mib', '-')} | {err} |")
            continue
        lines.append(f"| {r['mixer']} | {r['T']} | {a['used']} | {t['ms']:.2f} | {a['ms']:.2f} | {t['ms'] / a['ms']:.2f}x "
                     f"| {t['peak_mib']:.0f} | {a['peak_mib']:.0f} |")  # fmt: skip
    return head + "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.core.gpu", description=__doc__.split("\n\n")[0])
    p.add_argument("--T", type=int, nargs="+", default=[2048, 8192])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--dim", type=int, default=1024)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--out", type=Path, default=Path("benchmarks/core/results"))
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks.core.gpu needs a CUDA device; the CPU benchmark is python -m benchmarks.core.mixers")
    rows = run(args.T, args.batch, args.dim, args.heads, args.reps)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.json").write_text(json.dumps(rows, indent=1))
    (args.out / "gpu.md").write_text(markdown(rows, args))
    print(markdown(rows, args))


if __name__ == "__main__":
    main()
