"""Run the cases: one child process per (group, T) for the side-by-side timing and equal-output checks,
one per (implementation, T) for peak memory. The parent only orchestrates (it runs no torch ops, so
forking it is safe)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from benchmarks.core.common import OURS, REFERENCE, Group, Sizes, compare
from benchmarks.core.measure import cpu_info, in_child, peak_memory_mib, state_bytes, time_interleaved

THREADS = 2
SLOW_FIRST_RUN_S = 2.0  # first runs longer than this count as timed samples
WARMUP_T = 64  # memory children warm up (lazy initialisation) on a sequence this long first


def all_groups() -> tuple[Group, ...]:
    from benchmarks.core.cases_mixers import MIXER_GROUPS
    from benchmarks.core.cases_ops import OP_GROUPS

    return OP_GROUPS + MIXER_GROUPS


PRELOAD = {  # imported once in the parent, so forked children do not import them again (seconds each)
    "polyformer": ("polyformer.core.mixers", "polyformer.core.ops.attention"),
    "fla": (),  # fla's naive references are loaded on their own (cases_ops.fla_naive), see below
    "mambapy": ("mambapy.mamba",),
    "transformers": ("transformers.models.mamba.modeling_mamba", "transformers.models.mamba2.modeling_mamba2"),
}


def preload(groups) -> None:
    """Import what the children will use (no torch ops run here, so forking stays safe)."""
    import importlib
    import warnings

    from benchmarks.core.cases_ops import fla_naive

    names = {"polyformer"} | {m for g in groups for i in g.impls if i.available() for m in i.requires}
    if "fla" in names:
        for op in ("gla", "delta_rule", "retention"):
            fla_naive(op)
    for name in sorted(names):
        for module in PRELOAD.get(name, ()):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    importlib.import_module(module)
            except Exception as e:  # the child reports the failure where it matters
                _log(f"  (could not preload {module}: {type(e).__name__}: {e})")


def find_group(key: str) -> Group:
    return next(g for g in all_groups() if g.key == key)


def baseline_impl(group: Group, names) -> str | None:
    """What the others are compared with: ours, else the reference."""
    for role in (OURS, REFERENCE):
        for impl in group.impls:
            if impl.role == role and impl.name in names:
                return impl.name
    return None


def _setup_torch():
    import torch

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    return torch


def check_case(key: str, T: int, sizes: Sizes, names: list[str]):
    """Build every implementation on the same data, run forward+backward once (also the warm-up) and
    compare outputs and the first input's gradient with ours.

    Returns `(built, checks, errors, grad_out, first)`, `first` the seconds of that first run."""
    _setup_torch()
    group = find_group(key)
    data = group.make_data(T, sizes)
    grad_out = data["grad_out"]
    built, errors = {}, {}
    for name in names:
        try:
            built[name] = group.impl(name).build(data, sizes)
        except Exception as e:  # a missing op or a peer that fails on this machine: report, go on
            errors[name] = f"build failed: {type(e).__name__}: {e}"[:400]
    outs, grads, first = {}, {}, {}
    for name, b in list(built.items()):
        try:
            t0 = time.perf_counter()
            outs[name] = b.fwd_bwd(grad_out).detach()
            first[name] = time.perf_counter() - t0
            grads[name] = b.grad().detach().clone()
        except Exception as e:
            errors[name] = f"run failed: {type(e).__name__}: {e}"[:400]
            del built[name]
    ref = baseline_impl(group, list(built))
    checks = {}
    if ref is not None and group.same_function:
        for name in built:
            if name != ref:
                checks[name] = {
                    "against": ref,
                    "output": compare(outs[name], outs[ref]),
                    "grad": compare(grads[name], grads[ref]),
                }
    return built, checks, errors, grad_out, first


def timing_case(key: str, T: int, sizes: Sizes, names: list[str], reps: int, budget_s: float) -> dict:
    """`check_case`, then forward+backward of every implementation timed with interleaved repetitions."""
    built, checks, errors, grad_out, first = check_case(key, T, sizes, names)
    runs = {name: (lambda b=b: b.fwd_bwd(grad_out)) for name, b in built.items()}
    slow = {name: t for name, t in first.items() if t > SLOW_FIRST_RUN_S}  # start-up cost negligible: a sample
    times = time_interleaved(runs, reps=reps, warmup=0, budget_s=budget_s, prior=slow) if runs else {}
    return {"time": times, "checks": checks, "errors": errors}


DECODE_REPS_FACTOR = 3  # steps take milliseconds: three times the repetitions of a forward+backward


def decode_case(key: str, T: int, sizes: Sizes, names: list[str], reps: int, budget_s: float) -> dict:
    """Generation after a prefill, every mixer of the group built in this process on the same data.

    Per mixer (eval, no grad): `_, state = mixer(x, return_state=True)` over the T prefill tokens, the
    state's bytes (`measure.state_bytes`), one `step(x_next, state)` compared with the last output of the
    forward over all T + 1 tokens (`step_check`), then that step timed from the same prefilled state,
    repetitions of all mixers interleaved. Returns the usual `time` / `checks` / `errors` and `state`."""
    torch = _setup_torch()
    group = find_group(key)
    data = group.make_data(T, sizes)
    x, x_next = data["x"], data["x_next"]
    mods, states, info, step_check, errors = {}, {}, {}, {}, {}
    with torch.no_grad():
        for name in names:
            try:
                m = group.impl(name).build(data, sizes).module.eval()
                _, state = m(x, return_state=True)
                y_step, _ = m.step(x_next, state)
                y_full = m(torch.cat([x, x_next], dim=1))[0][:, -1:]
            except Exception as e:
                errors[name] = f"decode failed: {type(e).__name__}: {e}"[:400]
                continue
            mods[name], states[name], info[name] = m, state, state_bytes(state)
            step_check[name] = {"against": f"forward over T+1 = {T + 1} tokens, last output", **compare(y_step, y_full)}
        runs = {name: (lambda m=m, st=states[name]: m.step(x_next, st)) for name, m in mods.items()}
        times = (
            time_interleaved(runs, reps=DECODE_REPS_FACTOR * reps, warmup=1, budget_s=budget_s) if runs else {}
        )
    return {"time": times, "checks": {}, "errors": errors, "state": info, "step_check": step_check}


def memory_case(key: str, T: int, sizes: Sizes, name: str) -> dict:
    """Peak RSS of one forward+backward of one implementation, after a warm-up pass on a short sequence
    (lazy initialisation of thread pools and caches is not the pass's memory)."""
    _setup_torch()
    group = find_group(key)
    impl = group.impl(name)
    warm = group.make_data(min(T, WARMUP_T), sizes)
    impl.build(warm, sizes).fwd_bwd(warm["grad_out"])
    del warm
    data = group.make_data(T, sizes)
    b = impl.build(data, sizes)
    grad_out = data["grad_out"]
    mib, method = peak_memory_mib(lambda: b.fwd_bwd(grad_out))
    return {"peak_mib": round(mib, 2), "method": method}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_all(
    groups: list[Group],
    Ts: list[int],
    sizes: Sizes,
    *,
    reps: int,
    budget_s: float,
    memory: bool,
    inline: bool,
    mem_limit_gib: float,
    timeout_s: float,
    out_json: Path | None = None,
    keep: dict | None = None,
) -> dict:
    """Measure every group at every T; returns (and, when given a path, keeps writing) the results dict.

    `keep`: groups of an earlier results dict (same T and sizes) kept unless measured again here."""
    results = {
        "meta": {
            **cpu_info(),
            "threads": THREADS,
            "dtype": "float32",
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "reps": reps,
            "memory_method": "peak RSS of one forward+backward above a baseline, own child process per (impl, T)"
            if not inline
            else "peak RSS of one forward+backward above a baseline, in-process (--inline)",
        },
        "sizes": asdict(sizes),
        "Ts": Ts,
        "groups": {},
    }
    order = [g.key for g in all_groups()]
    for key in order:  # earlier measurements first, in the usual order; replaced below when rerun
        if key in (keep or {}):
            results["groups"][key] = keep[key]
    if keep:
        results["meta"]["updated_groups"] = [g.key for g in groups]

    if not inline:
        preload(groups)

    def call(fn, *args):
        if inline:
            return fn(*args)
        return in_child(fn, *args, timeout_s=timeout_s, mem_limit_gib=mem_limit_gib)

    for group in groups:
        entry = results["groups"][group.key] = {
            "kind": group.kind,
            "name": group.name,
            "linear": group.linear,
            "same_function": group.same_function,
            "impls": {i.name: {"label": i.label, "role": i.role, "max_T": i.max_T} for i in group.impls},
            "measured": time.strftime("%Y-%m-%d %H:%M"),
            "threads": THREADS,
            "mode": group.mode,
            "results": {},
        }
        failed: dict[str, str] = {}
        for T in Ts:
            if group.only_T is not None and T not in group.only_T:
                continue
            names = [i.name for i in group.impls if i.runs_at(T) and i.available() and i.name not in failed]
            skipped = {
                i.name: ("not installed" if not i.available() else failed.get(i.name, f"n/a beyond T={i.max_T}"))
                for i in group.impls
                if i.name not in names
            }
            if not names:
                continue
            t0 = time.perf_counter()
            try:
                case = decode_case if group.mode == "decode" else timing_case
                res = call(case, group.key, T, sizes, names, reps, budget_s)
            except Exception as e:
                res = {"time": {}, "checks": {}, "errors": {n: f"timing child failed: {e}" for n in names}}
            res["skipped"] = skipped
            res["memory"] = {}
            if memory and group.memory:
                for name in names:
                    if name in res["errors"]:
                        continue
                    try:
                        res["memory"][name] = call(memory_case, group.key, T, sizes, name)
                    except Exception as e:
                        res["errors"][name] = f"memory: {e}"[:400]
            for name, err in res["errors"].items():
                failed.setdefault(name, f"failed at T={T}")
                _log(f"  ! {group.key} {name} T={T}: {err}")
            entry["results"][str(T)] = res
            _log(_progress_line(group, T, res, time.perf_counter() - t0))
            if out_json is not None:
                out_json.write_text(json.dumps(results, indent=1))
    rank = {k: i for i, k in enumerate(order)}
    results["groups"] = dict(sorted(results["groups"].items(), key=lambda kv: rank.get(kv[0], len(rank))))
    results["meta"]["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    if out_json is not None:
        out_json.write_text(json.dumps(results, indent=1))
    return results


def _progress_line(group: Group, T: int, res: dict, wall: float) -> str:
    parts = []
    for name, t in res["time"].items():
        part = f"{name} {t['median_s'] * 1e3:.1f}ms"
        state = res.get("state", {}).get(name)
        if state is not None:  # decode: the step's time, the state's size and the step-vs-forward check
            part += f"/{state['retained_bytes'] / 1024:.0f}KiB state"
            part += " ok" if res.get("step_check", {}).get(name, {}).get("ok") else " MISMATCH"
        else:
            mem = res["memory"].get(name, {}).get("peak_mib")
            chk = res["checks"].get(name)
            part += f"/{mem:.0f}MiB" if mem is not None else ""
            part += "" if chk is None else (" ok" if chk["output"]["ok"] else " MISMATCH")
        parts.append(part)
    return f"{group.key:22s} T={T:<5d} " + ", ".join(parts) + f"  [{wall:.0f}s]"
