"""Core benchmark: forward+backward time and peak memory of every mixer and op over T, side by side with
our naive references and the pure-PyTorch paths of peer libraries (mambapy, transformers, fla); and
(`mixer:state`) each mixer's generation state after a prefill of T tokens and the time of one decode step.

    python -m benchmarks.core.mixers                 # full run: T = 256 ... 8192 (about 1 h on 2 busy cores)
    python -m benchmarks.core.mixers --quick         # T = 256, 1024, fewer repetitions
    python -m benchmarks.core.mixers --only op:gla mixer:mamba --T 1024 2048
    python -m benchmarks.core.mixers --render --readme   # README.md's tables from results.json
    python -m benchmarks.core.mixers --only mixer:state --update --readme   # generation state + decode step

Writes `results.json` and `results.md` to `--out` (default benchmarks/core/results) and prints the
markdown. Peers that are not installed (`pip install -e '.[bench]'`) are skipped. See README.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from benchmarks.core import runner
from benchmarks.core.common import Sizes
from benchmarks.core.report import markdown, readme_with_results, targets
from benchmarks.core.runner import all_groups, run_all

FULL_T = (256, 512, 1024, 2048, 4096, 8192)
QUICK_T = (256, 1024)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.core.mixers", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help=f"T = {QUICK_T}, 3 repetitions")
    p.add_argument("--T", type=int, nargs="+", help=f"sequence lengths (default {FULL_T})")
    p.add_argument("--only", nargs="+", metavar="KIND:NAME", help="groups to run, e.g. op:gla mixer:mamba")
    p.add_argument("--out", type=Path, default=Path("benchmarks/core/results"), help="folder for results.json/.md")
    p.add_argument("--reps", type=int, default=None, help="timed repetitions per implementation (default 7, quick 3)")
    p.add_argument("--budget", type=float, default=20.0, help="seconds of timed repetitions per implementation and T")
    p.add_argument(
        "--update",
        action="store_true",
        help="keep the other groups of an existing results.json in --out (same T and sizes); rerun only --only",
    )
    p.add_argument("--render", action="store_true", help="only rewrite results.md from the results.json in --out")
    p.add_argument(
        "--readme",
        type=Path,
        nargs="?",
        const=Path(__file__).resolve().parent / "README.md",
        help="also rewrite the '## Results' section of this README (default benchmarks/core/README.md)",
    )
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    p.add_argument("--no-peers", action="store_true", help="only our ops and mixers and our references")
    p.add_argument("--inline", action="store_true", help="run everything in this process (tests; memory less isolated)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (the targets are stated for 2)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--dim", type=int, default=256, help="mixer width")
    p.add_argument("--mem-limit-gib", type=float, default=6.0, help="cap on each child's extra memory")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per child process")
    return p.parse_args(argv)


def select_groups(only, no_peers: bool):
    from benchmarks.core.common import PEER

    groups = list(all_groups())
    if only:
        unknown = set(only) - {g.key for g in groups}
        if unknown:
            known = ", ".join(g.key for g in groups)
            raise SystemExit(f"unknown group(s) {sorted(unknown)}; known: {known}")
        groups = [g for g in groups if g.key in only]
    if no_peers:
        from dataclasses import replace

        groups = [replace(g, impls=tuple(i for i in g.impls if i.role != PEER)) for g in groups]
    return groups


def _previous(path: Path, Ts, sizes: Sizes) -> dict | None:
    """An earlier results file measured at the same T and sizes, to merge a partial rerun into."""
    from dataclasses import asdict

    if not path.exists():
        return None
    old = json.loads(path.read_text())
    if old.get("Ts") != list(Ts) or old.get("sizes") != asdict(sizes):
        raise SystemExit(f"--update: {path} was measured at other T or sizes; rerun everything instead")
    return old


def _write_report(results: dict, out: Path, readme: Path | None = None) -> str:
    md = markdown(results)
    (out / "results.md").write_text(md)
    if readme is not None:
        readme.write_text(readme_with_results(readme.read_text(), md))
    print(md)
    return md


def main(argv=None) -> dict:
    args = parse_args(argv)
    runner.THREADS = args.threads
    args.out.mkdir(parents=True, exist_ok=True)
    if args.render:
        results = json.loads((args.out / "results.json").read_text())
        _write_report(results, args.out, args.readme)
        return results
    Ts = sorted(args.T or (QUICK_T if args.quick else FULL_T))
    reps = args.reps or (3 if args.quick else 7)
    sizes = Sizes(batch=args.batch, dim=args.dim)
    groups = select_groups(args.only, args.no_peers)
    previous = _previous(args.out / "results.json", Ts, sizes) if args.update else None
    results = run_all(
        groups, Ts, sizes, reps=reps, budget_s=args.budget, memory=not args.no_memory, inline=args.inline,
        mem_limit_gib=args.mem_limit_gib, timeout_s=args.timeout, out_json=args.out / "results.json",
        keep=None if previous is None else previous["groups"],
    )  # fmt: skip
    argv = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m benchmarks.core.mixers", *(shlex.quote(a) for a in argv)])
    earlier = [] if previous is None else previous["meta"].get("commands", [])
    results["meta"]["commands"] = [*earlier, f"{command}  # {results['meta']['started']}"]
    if previous is not None:  # the kept groups' run keeps its dates and load; this rerun is listed beside it
        prev, meta = previous["meta"], results["meta"]
        update = {
            k: meta[k] for k in ("updated_groups", "started", "finished", "load_avg_at_start", "threads") if k in meta
        }
        for k in ("started", "finished", "load_avg_at_start", "load_avg_observed", "threads"):
            if k in prev:
                meta[k] = prev[k]
            else:
                meta.pop(k, None)
        meta["updates"] = [*prev.get("updates", []), update]
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    _write_report(results, args.out, args.readme)
    results["verdicts"] = targets(results)[1]
    return results


if __name__ == "__main__":
    main()
