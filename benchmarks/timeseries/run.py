"""Accuracy of iTransformer and baselines on the embedded TMY3 data, lookback 96 / horizon 96.

    .venv/bin/python benchmarks/timeseries/run.py --epochs 6 --out benchmarks/timeseries/results

Trains each model through the same harness as `polyformer train timeseries` (Hydra config composed
in-process, best checkpoint on val MSE, every test window counted) and writes `results.json` and
`results.md` (test MSE / MAE on the scaled data and in original units, parameters, training time and
throughput). Models: iTransformer (softmax attention), iTransformer with two other core mixers,
DLinear, PatchTST, persistence, seasonal naive. With `neuralforecast` importable it also trains
neuralforecast's iTransformer on the same split, scaling and size and reports the MSE and throughput
ratios (see `peer_neuralforecast.py`); without it the table says it was skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CONF = REPO / "timeseries" / "conf"
OTHER_MIXERS = ("mamba", "gla", "deltanet", "retention", "mamba2")


def compose(overrides: list[str], out: Path):
    """The timeseries train config with `overrides`, its outputs under `out`."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = hydra_compose(config_name="train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.root_dir = str(out)
        cfg.paths.runs_dir = str(out / "runs")
        cfg.paths.output_dir = str(out)
        cfg.hydra.runtime.output_dir = str(out)
        cfg.hydra.runtime.cwd = str(REPO)
    HydraConfig.instance().set_config(cfg)
    return cfg


def entries(epochs: int) -> list[tuple[str, list[str]]]:
    """(label, overrides) of every model in the table."""
    from polyformer.core.mixers import list_mixers

    trained = [f"trainer.max_epochs={epochs}"]
    rows = [("iTransformer (attention)", ["model=itransformer", "mixer=attention", *trained])]
    others = [m for m in OTHER_MIXERS if m in list_mixers()][:2]
    rows += [(f"iTransformer ({m})", ["model=itransformer", f"mixer={m}", *trained]) for m in others]
    rows += [
        ("DLinear", ["model=dlinear", *trained]),
        ("PatchTST", ["model=patchtst", "model.d_model=64", "model.d_ff=128", "model.n_heads=8", "model.e_layers=2",
                      *trained]),
        ("persistence", ["model=persistence"]),
        ("seasonal naive (24 h)", ["model=seasonal_naive"]),
    ]
    return rows


def run_one(label: str, overrides: list[str], out: Path, common: list[str]) -> dict:
    """Train and test one model; its metrics, size and timing."""
    import torch

    from polyformer.core.training import runner
    from polyformer.timeseries import ForecastModule

    cfg = compose([*common, *overrides], out)
    start = time.perf_counter()
    metrics = runner.train(cfg)
    seconds = time.perf_counter() - start
    best = metrics.get("best_checkpoint") or metrics["last_checkpoint"]
    module = ForecastModule.load_from_checkpoint(best, weights_only=True)
    params = sum(p.numel() for p in module.parameters())
    best_epoch = int(torch.load(best, map_location="cpu", weights_only=True)["epoch"]) + 1
    epochs = 1 if params == 0 else int(cfg.trainer.max_epochs)
    return {
        "model": label,
        "overrides": overrides,
        **{k: float(metrics[k]) for k in ("test/mse", "test/mae", "test/mse_orig", "test/mae_orig")},
        "val/mse": float(metrics.get("val/mse", float("nan"))),
        "params": int(params),
        "epochs": epochs,
        "best_epoch": best_epoch,
        "seconds": round(seconds, 1),
        "train_samples_per_sec": float(metrics.get("perf/epoch_samples_per_sec", float("nan"))),
    }


def markdown(rows: list[dict], notes: list[str], command: str) -> str:
    """The results as a markdown table."""
    lines = [
        "| model | test MSE | test MAE | MSE (orig. units) | MAE (orig. units) | params | best / epochs | "
        "train windows/s | wall s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['test/mse']:.4f} | {r['test/mae']:.4f} | {r['test/mse_orig']:.2f} | "
            f"{r['test/mae_orig']:.3f} | {r['params']:,} | {r.get('best_epoch', '-')} / {r['epochs']} | "
            f"{r['train_samples_per_sec']:.0f} | {r['seconds']:.0f} |"
        )
    text = "\n".join(lines)
    text += "\n\nEmbedded TMY3 data (15 variates, hourly), lookback 96, horizon 96, features=M, 0.7/0.1/0.2 split, "
    text += "every test window counted; MSE/MAE on the train-fitted standardised scale and in original units. "
    text += "Trained models: AdamW + cosine schedule, the best epoch on val MSE is tested; wall s = fit + test.\n"
    text += f"\nCommand: `{command}`\n"
    for note in notes:
        text += f"\n- {note}"
    return text + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=6, help="max epochs of the trained models (best val MSE kept)")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for results.json / results.md")
    parser.add_argument("--work", type=Path, default=None, help="folder for the runs' checkpoints (default: a temp dir)")
    parser.add_argument("--only", nargs="*", default=None, help="labels (substrings) of the models to run")
    parser.add_argument("--lr", type=float, default=3e-4, help="AdamW learning rate (cosine schedule) of every trained model")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    parser.add_argument("--skip-peer", action="store_true", help="do not run neuralforecast even if importable")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="polyformer_ts_bench_"))
    common = ["data=tmy3", "data.seq_len=96", "data.pred_len=96", "optim=adamw", f"optim.lr={args.lr}",
              "logger=none", "trainer.accelerator=cpu",
              "++trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "seed=42"]
    rows, notes = [], []
    plan = entries(args.epochs)
    if len([label for label, _ in plan if label.startswith("iTransformer")]) < 3:
        notes.append("fewer than two other core mixers were registered when this ran; the missing iTransformer rows are absent")
    for label, overrides in plan:
        if args.only and not any(s.lower() in label.lower() for s in args.only):
            continue
        print(f"== {label}", flush=True)
        row = run_one(label, overrides, work / f"run{len(rows)}", common)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if not args.skip_peer:
        sys.path.insert(0, str(HERE))
        from peer_neuralforecast import compare_with_neuralforecast

        peer, note = compare_with_neuralforecast(rows, args.epochs, common, compose, work / "peer")
        notes.append(note)
        if peer:
            rows.append(peer)
    command = "python benchmarks/timeseries/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    (args.out / "results.json").write_text(json.dumps({"rows": rows, "notes": notes, "command": command}, indent=2))
    (args.out / "results.md").write_text(markdown(rows, notes, command.strip()))
    print(markdown(rows, notes, command.strip()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
