"""`polyformer demo` (`make demo`): train every built domain briefly on its embedded data and print one table."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

from polyformer.core.training.app import available_domains


def _run(domain: str, label: str, overrides: list[str], runs_dir: Path) -> dict:
    run_dir = runs_dir / domain / label
    cmd = [sys.executable, "-m", f"polyformer.{domain}", "task=train", *overrides, f"hydra.run.dir={run_dir}"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log = run_dir / "demo.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}, see {log}", "seconds": seconds}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    model = config.get("model", {})
    name = model.get("name", "?")
    mixer = model.get("mixer", {}).get("name") if isinstance(model.get("mixer"), dict) else None
    return {"metrics": metrics, "model": f"{name}({mixer})" if mixer else name, "seconds": seconds}


def run_demo(args: list[str] | None = None) -> int:
    """Train each domain's demo model and baseline; print model, metric and baseline per domain."""
    runs_dir = Path("runs") / "demo"
    only = set(args or [])
    rows, failed = [], False
    for name, spec in available_domains().items():
        if spec.demo is None or (only and name not in only):
            continue
        print(f"[demo] {name}: training {' '.join(spec.demo.model) or '(defaults)'}", flush=True)
        ours = _run(name, "model", spec.demo.model, runs_dir)
        print(f"[demo] {name}: baseline {' '.join(spec.demo.baseline)}", flush=True)
        base = _run(name, "baseline", spec.demo.baseline, runs_dir)
        metric = spec.demo.metric
        row = {"domain": name, "metric": metric + (" (higher is better)" if spec.demo.higher_is_better else "")}
        for key, res in (("model", ours), ("baseline", base)):
            if "error" in res:
                failed = True
                row[key], row[key + "_value"] = "failed", res["error"]
            else:
                row[key] = res["model"]
                row[key + "_value"] = f"{res['metrics'].get(metric, float('nan')):.4f}"
            row[key + "_seconds"] = f"{res['seconds']:.0f}"
        rows.append(row)
    _print_table(rows)
    (runs_dir / "summary.json").parent.mkdir(parents=True, exist_ok=True)
    (runs_dir / "summary.json").write_text(json.dumps(rows, indent=2))
    return 1 if failed or not rows else 0


def _print_table(rows: list[dict]) -> None:
    header = ["domain", "model", "metric", "model value", "baseline", "baseline value", "seconds"]
    lines = [
        [r["domain"], r["model"], r["metric"], r["model_value"], r["baseline"], r["baseline_value"],
         f"{r['model_seconds']}+{r['baseline_seconds']}"]
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    fmt = "| " + " | ".join(f"{{:<{w}}}" for w in widths) + " |"
    print()
    print(fmt.format(*header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in lines:
        print(fmt.format(*line))
