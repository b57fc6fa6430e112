"""Graph transformers benchmark: accuracy on PATTERN/CLUSTER-recipe data, and speed/memory vs PyG's GPSConv.

One command (writes JSON and markdown tables under benchmarks/graphs/results/):

    .venv/bin/python benchmarks/graphs/run.py all            # accuracy + speed + memory
    .venv/bin/python benchmarks/graphs/run.py accuracy --epochs 6 --train 600
    .venv/bin/python benchmarks/graphs/run.py speed          # training throughput, ours / PyG GPSConv
    .venv/bin/python benchmarks/graphs/run.py memory         # peak memory per graph size, one subprocess each
    .venv/bin/python benchmarks/graphs/run.py degree         # how much of PATTERN/CLUSTER the node degree alone solves

Accuracy: class-weighted accuracy (benchmarking-gnns' accuracy_SBM) on the test split of PATTERN- and
CLUSTER-recipe graphs generated here, for GPS with softmax attention, GPS with a linear mixer, the Graph
Transformer and plain GINE, all with the same budget (graphs, epochs, width, depth; printed with the
table), beside the published GraphGPS numbers on the original datasets (a full 100-epoch GPU run:
experiment=gps_pattern / gps_cluster).

Speed: training steps per second of our GPS layer stack (GINE + attention) and of the same-size model
built from `torch_geometric.nn.GPSConv` (GINEConv + nn.MultiheadAttention), side by side in one
process, interleaved, on batches of PATTERN-size graphs and on single large graphs.

Large graphs: peak resident memory and time of one training step per model and graph size (10^3 to
10^5 nodes), each in a fresh subprocess (peak RSS during the first step minus the RSS before it; the
second, warm step is timed). On CPU,
torch's SDPA runs softmax attention through a fused (flash) kernel: its memory stays linear in the
number of nodes but its time is quadratic, so attention is run only while its step time, extrapolated
quadratically from the largest size measured, stays under `--time-cap-s`; attention with shortest-path
biases (`spd_max_dist`, Graphormer-style) must materialise `[heads, N, N]` biases and distances, so it is
run only while its analytic memory estimate stays under `--mem-cap-gib` (the machine is shared). Above a
cap the estimate is reported instead. The linear mixers run at every size.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PUBLISHED = {"pattern": 86.685, "cluster": 78.016}  # GraphGPS (Rampasek et al. 2022), Table 2, original datasets


# ---------------------------------------------------------------------------------------------- accuracy
ACCURACY_MODELS = {
    "GPS (GatedGCN + attention)": {"name": "gps", "local": "gatedgcn", "mixer": {"name": "attention"}, "attn_dropout": 0.2},
    "GPS (GINE + attention)": {"name": "gps", "local": "gine", "mixer": {"name": "attention"}, "attn_dropout": 0.2},
    "GPS (GINE + GLA, linear)": {"name": "gps", "local": "gine", "mixer": {"name": "gla"}, "node_order": "random"},
    "Graph Transformer": {"name": "gt", "num_heads": 4},
    "GINE": {"name": "gine"},
}


def run_accuracy(args) -> list[dict]:
    """Train every model on both recipes with the same budget; return one row per (dataset, model)."""
    import lightning as L

    from polyformer.graphs.data import GraphDataModule
    from polyformer.graphs.module import GraphModule

    rows = _load_rows("accuracy")  # rows from earlier (partial) runs are kept; a rerun replaces its own rows
    counts = {"train": args.train, "val": args.val, "test": args.test}
    for source in args.datasets:
        dm = GraphDataModule(
            source=source, data_dir=args.data_dir, num_graphs=counts, batch_size=args.batch_size,
            pe={"lap_k": 8, "lap_norm": "none", "rwse_k": 0},
        )
        t0 = time.perf_counter()
        dm.prepare_data()
        dm.setup("fit")
        print(f"[{source}] data ready in {time.perf_counter() - t0:.0f}s", flush=True)
        for label, model_cfg in ACCURACY_MODELS.items():
            if args.models and not _selected(label, args.models):
                continue
            runs = [_train_once(GraphModule, L, dm, model_cfg, args, seed) for seed in args.seeds]
            tests = [r["test"] for r in runs if r["test"] is not None]
            vals = [r["val"] for r in runs if r["val"] is not None]
            row = {
                "dataset": source, "model": label,
                "test_accuracy_sbm": _mean(tests), "test_accuracy_std": _std(tests),
                "test_accuracy_per_seed": [r["test"] for r in runs], "val_accuracy_sbm": _mean(vals),
                "seeds": list(args.seeds), "params": runs[0]["params"],
                "train_seconds": round(sum(r["seconds"] for r in runs) / len(runs)),
                "threads": torch.get_num_threads(), "epochs": args.epochs,
                "published_graphgps": PUBLISHED[source],
            }
            print(json.dumps(row), flush=True)
            rows = _merge_rows(rows, [row])
            _save("accuracy", rows, _accuracy_table(rows, args))
    return rows


def _train_once(GraphModule, L, dm, model_cfg, args, seed) -> dict:
    """Train one model with one seed; its test and last-epoch val class-weighted accuracy, seconds, params."""
    L.seed_everything(seed, verbose=False)
    steps = args.epochs * -(-args.train // args.batch_size)
    optim = {"name": "adamw", "lr": args.lr, "weight_decay": 1e-5,
             "scheduler": {"name": "cosine", "warmup_steps": max(1, steps // 20)}}
    cfg = {"dim": args.dim, "num_layers": args.layers, **model_cfg}
    module = GraphModule(model=cfg, optim=optim, data=dm.data_spec())
    trainer = L.Trainer(
        max_epochs=args.epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, gradient_clip_val=1.0,
        num_sanity_val_steps=0,
    )
    t0 = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    seconds = time.perf_counter() - t0
    val = _metric(trainer.callback_metrics, "val/accuracy_sbm")  # before test() resets them
    test = _metric(trainer.test(module, datamodule=dm, verbose=False)[0], "test/accuracy_sbm")
    print(f"  seed {seed}: test {test} val {val} ({seconds:.0f} s)", flush=True)
    return {"test": test, "val": val, "seconds": seconds, "params": sum(p.numel() for p in module.parameters())}


def _mean(values):
    return round(sum(values) / len(values), 2) if values else None


def _std(values):
    """Sample standard deviation (None for fewer than two values)."""
    if len(values) < 2:
        return None
    m = sum(values) / len(values)
    return round(math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)), 2)


def _selected(label, wanted) -> bool:
    """Whether `--models` picks `label`: an item equal to a label (case-insensitive) picks that label only
    ("GINE" is the baseline, not every GPS-GINE model); any other item picks the labels containing it."""
    labels = {m.lower() for m in ACCURACY_MODELS}
    return any(w.lower() == label.lower() if w.lower() in labels else w.lower() in label.lower() for w in wanted)


def _metric(metrics, key):
    """A logged metric as a percentage rounded to 2 places, or None when missing or not finite (JSON has no NaN)."""
    value = metrics.get(key)
    if value is None:
        return None
    value = float(value)
    return round(value, 2) if math.isfinite(value) else None


def _load_rows(name) -> list[dict]:
    """The rows already in results/<name>.json (none if the file is missing or unreadable)."""
    path = RESULTS / f"{name}.json"
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(rows, list):
        return []
    return [{k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in r.items()} for r in rows]


def _merge_rows(rows, new) -> list[dict]:
    """`rows` with each new row replacing the one of the same (dataset, model), or appended; sorted by dataset
    then model order of ACCURACY_MODELS, so partial runs (`--models`, `--datasets`) never drop earlier rows."""
    merged = {(r["dataset"], r["model"]): r for r in rows}
    merged.update({(r["dataset"], r["model"]): r for r in new})
    order = {m: i for i, m in enumerate(ACCURACY_MODELS)}
    datasets = list(PUBLISHED)
    return sorted(merged.values(), key=lambda r: (datasets.index(r["dataset"]) if r["dataset"] in datasets else len(datasets),
                                                 order.get(r["model"], len(order))))


def _accuracy_table(rows, args) -> str:
    budget = (f"Budget per run: {args.train}/{args.val}/{args.test} train/val/test graphs (recipe sizes), {args.epochs} epochs, "
              f"batch {args.batch_size}, width {args.dim}, {args.layers} layers, AdamW lr {args.lr} cosine, "
              f"LapPE k=8, CPU; test accuracy is the mean ± sample std over seeds {', '.join(map(str, args.seeds))} "
              f"(one number: one seed). Train time: wall seconds of training on a 2-core machine shared with other jobs, "
              f"per seed, with the torch thread count of each run; it is not a speed comparison (see the speed table).")
    lines = [budget, "", "| dataset | model | params | test acc (class-weighted) | train time | GraphGPS published (original data, 100 epochs) |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        acc = "n/a" if r.get("test_accuracy_sbm") is None else f"{r['test_accuracy_sbm']:.2f}"
        if r.get("test_accuracy_std") is not None:
            acc += f" ± {r['test_accuracy_std']:.2f}"
        threads = r.get("threads")
        time_cell = f"{r['train_seconds']} s" + (f" ({threads} thread{'s' if threads != 1 else ''})" if threads else "")
        lines.append(f"| {r['dataset'].upper()}-recipe | {r['model']} | {r['params']:,} | {acc} | "
                     f"{time_cell} | {r['published_graphgps']} |")
    return "\n".join(lines)


def run_degree_cue(args) -> list[dict]:
    """No learning: class-weighted test accuracy of one threshold on a node's degree (raw, and divided by its
    graph's mean degree), the threshold picked on the train split. Shows how much of each task the degree
    alone solves: sum aggregation (GINE) counts neighbours, weighted means (GatedGCN's normalised gates,
    softmax attention) cannot."""
    from torch_geometric.utils import degree

    from polyformer.graphs.data import GraphDataModule
    from polyformer.graphs.metrics import accuracy_sbm

    rows = []
    counts = {"train": args.train, "val": args.val, "test": args.test}
    for source in args.datasets:
        dm = GraphDataModule(source=source, data_dir=args.data_dir, num_graphs=counts, batch_size=args.batch_size,
                             pe={"lap_k": 8, "lap_norm": "none", "rwse_k": 0})
        dm.prepare_data()
        dm.setup("fit")
        num_classes = dm.data_spec()["out_dim"]
        feats = {}
        for split in ("train", "test"):
            raw, rel, y = [], [], []
            for g in dm.sets[split]:
                deg = degree(g.edge_index[0], g.num_nodes)
                raw.append(deg), rel.append(deg / deg.mean()), y.append(g.y)
            feats[split] = {"degree": torch.cat(raw), "degree / mean degree of its graph": torch.cat(rel), "y": torch.cat(y)}
        for cue in ("degree", "degree / mean degree of its graph"):
            x, y = feats["train"][cue], feats["train"]["y"]
            if num_classes == 2:  # one threshold
                cuts = torch.quantile(x, torch.linspace(0.01, 0.99, 99))
                best = max(cuts.tolist(), key=lambda t: accuracy_sbm((x > t).long(), y))
                test = accuracy_sbm((feats["test"][cue] > best).long(), feats["test"]["y"])
            else:  # several classes: the most frequent class per degree bin
                edges = torch.quantile(x, torch.linspace(0, 1, 21)[1:-1])
                bins = torch.bucketize(x, edges)
                table = torch.zeros(len(edges) + 1, num_classes).index_put_((bins, y), torch.ones_like(x), accumulate=True)
                pred = table.argmax(1)[torch.bucketize(feats["test"][cue], edges)]
                test = accuracy_sbm(pred, feats["test"]["y"])
            row = {"dataset": source, "cue": cue, "test_accuracy_sbm": round(float(test), 2)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    lines = [f"Degree alone, no learning: one threshold (PATTERN) or the most frequent class per degree bin (CLUSTER), "
             f"fit on the {args.train} train graphs, class-weighted accuracy on the {args.test} test graphs.", "",
             "| dataset | cue | test acc (class-weighted) |", "|---|---|---:|"]
    lines += [f"| {r['dataset'].upper()}-recipe | {r['cue']} | {r['test_accuracy_sbm']:.2f} |" for r in rows]
    _save("degree_cue", rows, "\n".join(lines))
    return rows


# ---------------------------------------------------------------------------------------------- models
def build_ours(dim, layers, heads, mixer="attention", local="gine", spd_max_dist=None):
    """Our GPS stack (no encodings, a constant edge embedding, linear node head), as the registry builds it."""
    from polyformer.graphs.models import MODELS

    hints = {"node_features": {"kind": "float", "dim": dim}, "edge_features": {"kind": "none"}, "out_dim": 2,
             "level": "node", "pe": None}
    cfg = {"name": "gps", "dim": dim, "num_layers": layers, "local": local, "mixer": {"name": mixer},
           "num_heads": heads, "attn_dropout": 0.0, "dropout": 0.0, "head_layers": 1, "spd_max_dist": spd_max_dist}
    return MODELS.build(cfg, hints=hints)


class PyGGPS(torch.nn.Module):
    """The same model from PyG's GPSConv: Linear in, GPSConv(GINEConv, multihead attention) x L, Linear out."""

    def __init__(self, dim, layers, heads):
        super().__init__()
        from torch_geometric.nn import GINEConv, GPSConv

        self.inp = torch.nn.Linear(dim, dim)
        self.edge = torch.nn.Parameter(torch.randn(dim) * 0.02)
        self.convs = torch.nn.ModuleList(
            GPSConv(dim, GINEConv(torch.nn.Sequential(torch.nn.Linear(dim, dim), torch.nn.ReLU(), torch.nn.Linear(dim, dim)),
                                  train_eps=True),
                    heads=heads, dropout=0.0, attn_type="multihead", attn_kwargs={"dropout": 0.0}, norm="batch_norm")
            for _ in range(layers)
        )
        self.out = torch.nn.Linear(dim, 2)

    def forward(self, batch):
        h = self.inp(batch.x)
        e = self.edge.expand(batch.edge_index.shape[1], -1)
        for conv in self.convs:
            h = conv(h, batch.edge_index, batch.batch, edge_attr=e)
        return self.out(h)


def make_batch(num_graphs, nodes, avg_degree, dim, seed=0):
    """`num_graphs` random graphs of `nodes` nodes (Erdos-Renyi by edge count), float features, labels."""
    from torch_geometric.data import Batch, Data

    g = torch.Generator().manual_seed(seed)
    graphs = []
    for _ in range(num_graphs):
        m = nodes * avg_degree // 2
        ei = torch.randint(0, nodes, (2, m), generator=g)
        ei = torch.cat([ei, ei.flip(0)], 1)
        graphs.append(Data(x=torch.randn(nodes, dim, generator=g), edge_index=ei,
                           y=torch.randint(0, 2, (nodes,), generator=g), num_nodes=nodes))
    return Batch.from_data_list(graphs)


def train_step(model, opt, batch):
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(batch), batch.y)
    loss.backward()
    opt.step()


# ---------------------------------------------------------------------------------------------- speed
def run_speed(args) -> list[dict]:
    """Median training-step time of ours vs PyG GPSConv, interleaved in one process."""
    rows = []
    cases = [("32 graphs x 120 nodes", 32, 120, 40), ("1 graph x 2,000 nodes", 1, 2000, 10), ("1 graph x 4,000 nodes", 1, 4000, 10)]
    for name, g, n, deg in cases:
        torch.manual_seed(0)
        batch = make_batch(g, n, deg, args.dim)
        ours, peer = build_ours(args.dim, args.layers, args.heads), PyGGPS(args.dim, args.layers, args.heads)
        opts = {m: torch.optim.AdamW(m.parameters(), 1e-3) for m in (ours, peer)}
        times = {"ours": [], "pyg": []}
        for rep in range(args.warmup + args.reps):
            for key, model in (("ours", ours), ("pyg", peer)) if rep % 2 == 0 else (("pyg", peer), ("ours", ours)):
                t0 = time.perf_counter()
                train_step(model, opts[model], batch)
                if rep >= args.warmup:
                    times[key].append(time.perf_counter() - t0)
        med = {k: min(v) for k, v in times.items()}  # best of the interleaved reps: the machine is shared
        row = {"case": name, "ours_steps_per_s": round(1 / med["ours"], 3), "pyg_steps_per_s": round(1 / med["pyg"], 3),
               "ratio_ours_over_pyg": round(med["pyg"] / med["ours"], 3),
               "params_ours": sum(p.numel() for p in ours.parameters()),
               "params_pyg": sum(p.numel() for p in peer.parameters())}
        print(json.dumps(row), flush=True)
        rows.append(row)
        _save("speed", rows, _speed_table(rows, args))
    return rows


def _speed_table(rows, args) -> str:
    lines = [f"GPS stack: width {args.dim}, {args.layers} layers, {args.heads} heads, GINE local + softmax attention, "
             f"dropout 0; best of {args.reps} interleaved training steps (AdamW) after {args.warmup} warm-up, CPU "
             f"({_threads()}).", "",
             "| batch | ours steps/s | PyG GPSConv steps/s | ours / PyG | params ours / PyG |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['ours_steps_per_s']} | {r['pyg_steps_per_s']} | {r['ratio_ours_over_pyg']:.2f}x | "
                     f"{r['params_ours']:,} / {r['params_pyg']:,} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- memory
def spd_bias_bytes(nodes, heads):
    """Analytic memory of shortest-path attention biases for one graph: float bias [H, N, N] and its
    gradient, long distances, float adjacency and BFS frontier, bool visited set, each N x N."""
    return nodes * nodes * (heads * 4 * 2 + 8 + 4 + 4 + 1)


def memory_child(kind, nodes, dim, layers, heads, deg):
    """Two training steps in this (fresh) process: prints the first step's peak RSS growth (the allocator keeps
    freed memory resident, so later steps reuse it) and the second step's seconds, as JSON."""
    torch.manual_seed(0)
    batch = make_batch(1, nodes, deg, dim)
    if kind == "pyg-attention":
        model = PyGGPS(dim, layers, heads)
    elif kind == "ours-attention+spd":
        model = build_ours(dim, layers, heads, spd_max_dist=3)
    else:
        model = build_ours(dim, layers, heads, mixer=kind.split("-", 1)[1])
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    try:
        base = _status_kib("VmRSS")
        reset = _reset_peak()
        train_step(model, opt, batch)  # the first step: its peak is the memory the step needs
        peak = _status_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        train_step(model, opt, batch)  # the second (warm) step is timed
    except (MemoryError, RuntimeError) as exc:  # out of memory
        print(json.dumps({"peak_mib": None, "seconds": None, "status": f"failed: {type(exc).__name__}"}))
        return
    print(json.dumps({"peak_mib": round((peak - base) / 1024, 1), "seconds": round(time.perf_counter() - t0, 2), "status": "ok"}))


def _status_kib(field):
    """A /proc/self/status memory field in KiB (VmRSS: now, VmHWM: peak since the last reset)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_peak():
    """Reset the process's peak-RSS mark (Linux: write 5 to /proc/self/clear_refs); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def run_memory(args) -> list[dict]:
    rows = []
    kinds = ["ours-attention", "pyg-attention", "ours-attention+spd", *[f"ours-{m}" for m in args.linear]]
    for nodes in args.sizes:
        for kind in kinds:
            row = {"nodes": nodes, "model": kind}
            skip = _skip_reason(kind, nodes, rows, args)
            if skip:
                row.update(status=skip, peak_mib=None)
            else:
                cmd = [sys.executable, __file__, "memory-child", kind, str(nodes), "--dim", str(args.dim),
                       "--layers", str(args.layers), "--heads", str(args.heads), "--degree", str(args.degree)]
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
                lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
                row.update(json.loads(lines[-1]) if lines else {"status": f"crashed (rc {done.returncode})", "peak_mib": None})
            print(json.dumps(row), flush=True)
            rows.append(row)
            _save("memory", rows, _memory_table(rows, args))
    return rows


def _skip_reason(kind, nodes, rows, args):
    """Why a (model, size) is not run: quadratic time over the time cap, or N x N memory over the memory cap."""
    if kind == "ours-attention+spd":
        est = spd_bias_bytes(nodes, args.heads) / 2**30
        if est > args.mem_cap_gib:
            return f"not run: N x N biases need ~{est:,.1f} GiB (cap {args.mem_cap_gib} GiB)"
    if kind.endswith("attention") or kind.endswith("+spd"):
        done = [r for r in rows if r["model"] == kind and r.get("status") == "ok"]
        if done:
            ref = max(done, key=lambda r: r["nodes"])
            est = ref["seconds"] * (nodes / ref["nodes"]) ** 2
            if est > args.time_cap_s:
                return f"not run: ~{_human(est)} per step (quadratic from {ref['nodes']:,} nodes; cap {args.time_cap_s:.0f} s)"
    return None


def _threads() -> str:
    n = torch.get_num_threads()
    return f"{n} thread" + ("s" if n != 1 else "")


def _human(seconds):
    return f"{seconds / 3600:,.1f} h" if seconds >= 3600 else f"{seconds / 60:,.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _memory_table(rows, args) -> str:
    kinds = list(dict.fromkeys(r["model"] for r in rows))
    lines = [f"One training step on one random graph (average degree {args.degree}), width {args.dim}, {args.layers} GPS layers "
             f"(GINE + global mixer), {args.heads} heads: peak RSS growth during the first training step in a fresh "
             f"process, and the seconds of the second step, CPU ({_threads()}, shared machine).", "",
             "| nodes | " + " | ".join(kinds) + " |", "|---:|" + "---|" * len(kinds)]
    for n in dict.fromkeys(r["nodes"] for r in rows):
        cells = []
        for k in kinds:
            r = next((r for r in rows if r["nodes"] == n and r["model"] == k), None)
            if r is None:
                cells.append("")
            elif r.get("status") != "ok":
                cells.append(r.get("status", ""))
            else:
                cells.append(f"{r['peak_mib']:,.0f} MiB, {r['seconds']} s")
        lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- main
def _save(name, rows, table):
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(rows, indent=2, allow_nan=False) + "\n")
    (RESULTS / f"{name}.md").write_text(table + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["all", "accuracy", "degree", "speed", "memory", "memory-child"])
    p.add_argument("child", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--datasets", nargs="+", default=["pattern", "cluster"])
    p.add_argument("--models", nargs="*", default=None, help="model labels to run (accuracy): an exact label, or a substring of labels")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds per accuracy row (mean ± std when several)")
    p.add_argument("--results-dir", default=None, help="where the JSON/markdown tables go (default benchmarks/graphs/results)")
    p.add_argument("--train", type=int, default=500)
    p.add_argument("--val", type=int, default=100)
    p.add_argument("--test", type=int, default=200)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 10000, 30000, 100000])
    p.add_argument("--linear", nargs="+", default=["gla", "mamba2"])
    p.add_argument("--degree", type=int, default=10)
    p.add_argument("--mem-cap-gib", type=float, default=3.0)
    p.add_argument("--time-cap-s", type=float, default=300.0)
    p.add_argument("--data-dir", default=os.environ.get("POLYFORMER_DATA_DIR"))
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: the machine is shared)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.results_dir:
        global RESULTS
        RESULTS = Path(args.results_dir)
    if args.what == "memory-child":
        kind, nodes = args.child
        return memory_child(kind, int(nodes), args.dim, args.layers, args.heads, args.degree)
    if args.what in ("speed", "all"):
        run_speed(args)
    if args.what in ("memory", "all"):
        run_memory(args)
    if args.what in ("accuracy", "all"):
        run_accuracy(args)
    if args.what in ("degree", "all"):
        run_degree_cue(args)


if __name__ == "__main__":
    main()
