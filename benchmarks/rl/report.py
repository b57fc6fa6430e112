"""The markdown tables of the rl benchmark: scores per environment and method, checks, and speed."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.rl.train_eval import LABELS, rises_with_target


def summary(cells: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    """Per (env, method): mean and std over seeds of the normalised score, seeds, mean Spearman of DT sweeps."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for key in sorted({(c["env"], c["method"]) for c in cells}):
        mine = [c for c in cells if (c["env"], c["method"]) == key]
        scores = np.array([c["normalized_score"] for c in mine])
        rho = [rises_with_target(c["sweep"]) for c in mine if c["sweep"]]
        out[key] = {"mean": float(scores.mean()), "std": float(scores.std()), "seeds": len(mine),
                    "spearman": float(np.mean(rho)) if rho else float("nan"),
                    "train_s": float(np.mean([c["train_seconds"] for c in mine]))}
    return out


def markdown(results: dict[str, Any]) -> str:
    """The whole report as markdown."""
    cells = results.get("cells", [])
    table = summary(cells)
    envs = sorted({k[0] for k in table})
    methods = [m for m in LABELS if any(k[1] == m for k in table)]
    seeds = {m: sorted({c["seed"] for c in cells if c["method"] == m}) for m in methods}
    if len({tuple(v) for v in seeds.values()}) <= 1:
        over = f"{len(next(iter(seeds.values()), []))} training seed(s)"
    else:  # a cut run: say which method has how many seeds
        over = "training seeds (" + ", ".join(f"{LABELS[m]}: {len(v)}" for m, v in seeds.items()) + ")"
    lines = [f"Normalised score (D4RL definition; mean +- std over {over}, "
             f"{results.get('episodes')} rollouts each; {results.get('steps')} training steps)", "",
             *([results["note"], ""] if results.get("note") else []),
             "| environment (replay data) | " + " | ".join(LABELS[m] for m in methods) + " | DT > BC | DT return rises with target (Spearman) |",
             "|---|" + "---:|" * len(methods) + "---|---:|"]
    for env in envs:
        row = []
        for m in methods:
            s = table.get((env, m))
            row.append(f"{s['mean']:.1f} +- {s['std']:.1f}" if s else "")
        dt, bc = table.get((env, "dt")), table.get((env, "bc"))
        beats = ""
        if dt and bc:  # a margin inside the seed spread is no win
            margin = dt["mean"] - bc["mean"]
            beats = "yes" if margin > max(dt["std"], bc["std"]) else ("no" if margin < 0 else "within seed std")
        rho = f"{dt['spearman']:.2f}" if dt else ""
        lines.append(f"| {env} | " + " | ".join(row) + f" | {beats} | {rho} |")
    for method in ("dt", "dt_mamba"):
        sweeps = [c for c in cells if c["method"] == method and c["sweep"]]
        if not sweeps:
            continue
        lines += ["", f"{LABELS[method]}, achieved return per target return (seed-mean; Spearman per seed, averaged):", ""]
        for env in envs:
            mine = [c for c in sweeps if c["env"] == env]
            if not mine:
                continue
            targets = [s["target"] for s in mine[0]["sweep"]]
            achieved = np.mean([[s["return_mean"] for s in c["sweep"]] for c in mine], axis=0)
            pairs = ", ".join(f"{t:g} -> {a:.0f}" for t, a in zip(targets, achieved))
            rho = np.mean([rises_with_target(c["sweep"]) for c in mine])
            lines.append(f"- {env}: {pairs} (Spearman {rho:.2f}; best episode in data {mine[0]['dataset_best_return']:.0f})")
    speed = results.get("speed")
    if speed:
        tp, act = speed["train_steps_per_s"], speed["acting"]
        lines += ["", "Speed (paper size: embedding 128, 3 layers, 1 head, K=20, batch 64; CPU, one process):", "",
                  "| | ours (attention) | ours (mamba) | HF DecisionTransformerModel |", "|---|---:|---:|---:|",
                  f"| training steps/s | {tp['ours']:.1f} | {tp.get('ours_mamba', float('nan')):.1f} | "
                  + (f"{tp['hf']:.1f} |" if "hf" in tp else "not installed |"),
                  f"| acting ms/step, recurrent (step cache) | {act['ours_attention_recurrent_ms']:.2f} | "
                  f"{act['ours_mamba_recurrent_ms']:.2f} | n/a (no cache) |",
                  f"| acting ms/step, re-run last K steps | {act['ours_attention_window_ms']:.2f} | "
                  f"{act['ours_mamba_window_ms']:.2f} | " + (f"{act['hf_window_ms']:.2f} |" if "hf_window_ms" in act else "not installed |")]
        nd = speed.get("train_steps_per_s_no_dropout")
        if nd:
            lines.insert(len(lines) - 2, f"| training steps/s, dropout 0 | {nd['ours']:.1f} | | "
                         + (f"{nd['hf']:.1f} |" if "hf" in nd else "not installed |"))
        if "ratio_ours_over_hf" in tp:
            ratio = f"\nTraining throughput ratio ours / HF: {tp['ratio_ours_over_hf']:.2f} (dropout 0.1, the paper's)"
            if nd and "ratio_ours_over_hf" in nd:
                ratio += f"; {nd['ratio_ours_over_hf']:.2f} without dropout"
            lines.append(ratio)
    commands = results.get("commands") or ([results["command"]] if results.get("command") else [])
    if commands:
        lines += ["", f"Produced by (torch threads: {results.get('torch_threads', '?')}):", ""]
        lines += [f"    {c}" for c in commands]
    return "\n".join(lines) + "\n"
