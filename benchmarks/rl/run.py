"""Offline RL benchmark on the embedded mixed-quality ("replay") datasets, and speed next to HF's DT.

    python -m benchmarks.rl.run                        # all three environments, DT / DT-mamba / BC / %BC, 2 seeds
    python -m benchmarks.rl.run --quick                # Pendulum only, 1 seed, short training (minutes)
    python -m benchmarks.rl.run --envs Pendulum-v1 --methods dt bc --seeds 0 --steps 2000

Every cell trains with the demo recipe for longer (see train_eval.py: 10000 AdamW steps at lr 1e-3 after
100 warmup steps, batch 64, K=10, a 2-layer width-64 DT without dropout; BC an MLP with 2x256 ReLU; at
the demo's 3000 steps the DT is still underfit on Pendulum), then rolls the policy out for
`--episodes` episodes per seed: DTs at the environment's target returns (the headline is the
target near the expert's return) and BC / %BC once. Scores are D4RL-normalised
(`100 * (R - R_random) / (R_expert - R_random)`, polyformer.rl.data.envs has the references):
mean over seeds of the per-seed mean, +- the std over seeds. Also checked: DT beats BC on each
mixed dataset, and DT's achieved return rises with the target (Spearman correlation over targets).

Writes results.json and results.md to --out (default benchmarks/rl/results) after every cell, so a
long run can be read while it goes; --resume skips cells already in results.json (and keeps the
commands that made them); --speed-only --resume re-measures only the speed table; --merge combines
the folders of runs split over processes (e.g. one per environment).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from benchmarks.rl.report import markdown
from benchmarks.rl.train_eval import METHODS, run_cell

ENVS = ("Pendulum-v1", "LunarLanderContinuous-v3", "LunarLander-v3")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.rl.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", nargs="+", default=list(ENVS))
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--steps", type=int, default=10000, help="training steps per cell")
    p.add_argument("--episodes", type=int, default=20, help="evaluation episodes per target and seed")
    p.add_argument("--dataset-episodes", type=int, default=None, help="episodes per dataset (default: 200)")
    p.add_argument("--quick", action="store_true", help="Pendulum only, seed 0, 1500 steps")
    p.add_argument("--no-speed", action="store_true", help="skip the speed comparison")
    p.add_argument("--speed-only", action="store_true", help="no cells: (re-)measure only the speed comparison")
    p.add_argument("--resume", action="store_true", help="keep cells already in --out/results.json")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: no spin-waiting on a busy machine)")
    p.add_argument("--merge", nargs="+", type=Path, default=None,
                   help="only combine the results.json of these folders (runs split over processes) into --out")
    p.add_argument("--data-dir", default=os.environ.get("POLYFORMER_DATA_DIR", os.path.expanduser("~/.cache/polyformer")))
    p.add_argument("--out", type=Path, default=Path("benchmarks/rl/results"))
    args = p.parse_args(argv)
    if args.quick:
        args.envs, args.seeds, args.steps = ["Pendulum-v1"], [0], 1500
    return args


def merge(folders: list[Path], out: Path) -> dict:
    """One results.json/.md from runs split over several processes (cells concatenated, speed kept)."""
    merged: dict = {"cells": []}
    for folder in folders:
        part = json.loads((folder / "results.json").read_text())
        merged["cells"] += part.pop("cells", [])
        command = part.pop("command", "")
        merged.setdefault("commands", []).extend(part.pop("commands", None) or [command])
        for key, value in part.items():
            merged.setdefault(key, value)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(merged, indent=1))
    (out / "results.md").write_text(markdown(merged))
    return merged


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.merge:
        print(markdown(merge(args.merge, args.out)))
        return 0
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.json"
    results = json.loads(path.read_text()) if args.resume and path.is_file() else {}
    command = "python -m benchmarks.rl.run " + " ".join(sys.argv[1:] if argv is None else argv)
    # A resumed run keeps the commands before it (a table may come from several, e.g. fewer seeds for a method).
    results["commands"] = [*results.get("commands", [results["command"]] if "command" in results else []), command]
    if not args.speed_only:
        results.update({"steps": args.steps, "episodes": args.episodes, "seeds": args.seeds})
    results.update({"command": command, "torch_threads": args.threads})
    cells = results.setdefault("cells", [])
    done = {(c["env"], c["method"], c["seed"]) for c in cells}

    def save():
        path.write_text(json.dumps(results, indent=1))
        (args.out / "results.md").write_text(markdown(results))

    for env in [] if args.speed_only else args.envs:
        for seed in args.seeds:
            for method in args.methods:
                if (env, method, seed) in done:
                    continue
                cell = run_cell(method, env, args.data_dir, steps=args.steps, seed=seed, episodes=args.episodes,
                                dataset_episodes=args.dataset_episodes)
                cells.append(cell)
                print(f"{env:26s} {method:9s} seed {seed}: normalised {cell['normalized_score']:6.1f} "
                      f"(train {cell['train_seconds']:.0f}s, eval {cell['eval_seconds']:.0f}s)", flush=True)
                save()
    if not args.no_speed:
        from benchmarks.rl.speed import speed_report

        results["speed"] = speed_report()
        save()
    print(markdown(results))
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=2)
    sys.exit(main())
