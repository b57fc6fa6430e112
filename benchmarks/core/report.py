"""Markdown tables and the target verdicts from a results dict (see runner.run_all)."""

from __future__ import annotations

import math

SPEEDUP_TARGET_T = 2048  # chunked op vs recurrence
CHUNK_VS_NAIVE_TARGET = 10.0
PEER_TARGET, PEER_AIM = 1.0, 1.5
FAR_SMALLER = 4.0  # "far smaller in memory": at least 4x less peak memory than softmax attention
LINEAR_SLOPE_MAX = 1.15  # log-log slope of peak memory vs T that still counts as linear
STATE_SMALLER = 4.0  # a linear mixer's generation state at the longest T: >= 4x smaller than attention's KV cache
STATE_GROUP = "mixer:state"

CHUNK_OPS = ("retention", "gla", "delta_rule", "selective_scan", "ssd")
# Training forms of an op judged against its recurrence: the fastest one measured counts, and every one
# is reported. S6 has no matmul form, so its pure-PyTorch chunked form cannot reach 10x; the compiled CPU
# kernel (backend="cpu") is its fast form where it builds.
FAST_FORMS = {"selective_scan": ("cpu-kernel", "chunk")}
PEER_TARGETS = (  # (label, group, our impl, peer impls)
    ("Mamba", "mixer:mamba", "ours", ("mambapy", "hf-torch", "hf-mambapy")),
    ("Mamba-2", "mixer:mamba2", "ours", ("hf-torch",)),
    ("GLA", "op:gla", "chunk", ("fla-recurrent",)),
    ("DeltaNet", "op:delta_rule", "chunk", ("fla-recurrence", "fla-chunkwise")),
    ("Retention (not a target)", "op:retention", "chunk", ("fla-naive",)),
)


def _ms(s: float | None) -> str:
    return "n/a" if s is None else (f"{s * 1e3:.0f}" if s >= 1 else f"{s * 1e3:.1f}" if s >= 0.01 else f"{s * 1e3:.2f}")


def _mib(m: float | None) -> str:
    return "n/a" if m is None else f"{m:.0f}" if m >= 10 else f"{m:.1f}"


def _x(r: float | None) -> str:
    return "n/a" if r is None or not math.isfinite(r) else f"{r:.1f}x" if r < 100 else f"{r:.0f}x"


def _time(res: dict | None, name: str) -> float | None:
    return ((res or {}).get("time") or {}).get(name, {}).get("median_s")


def _mem(res: dict | None, name: str) -> float | None:
    return ((res or {}).get("memory") or {}).get(name, {}).get("peak_mib")


def _kib(b: float | None) -> str:
    return "n/a" if b is None else _mib(b / 1024)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def _ours_name(entry: dict) -> str | None:
    for role in ("ours", "reference"):
        for name, info in entry["impls"].items():
            if info["role"] == role:
                return name
    return None


def group_table(entry: dict) -> str:
    """One table per group: time (ms) and peak memory (MiB) of every implementation per T, then the
    speed-up of ours over each other implementation and the equal-output check."""
    impls = list(entry["impls"])
    ours = _ours_name(entry)
    others = [n for n in impls if n != ours]
    head = ["T"] + [f"{n} ms" for n in impls] + [f"{n} MiB" for n in impls]
    head += [f"{n} / {ours}" for n in others] + [f"max abs diff {n}" for n in others]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for T, res in entry["results"].items():
        row = [T] + [_ms(_time(res, n)) for n in impls] + [_mib(_mem(res, n)) for n in impls]
        row += [_x(_ratio(_time(res, n), _time(res, ours))) for n in others]
        for n in others:
            chk = res.get("checks", {}).get(n)
            if chk is None:
                row.append("error" if n in res.get("errors", {}) else "n/a")
            else:
                o = chk["output"]
                mark = "ok" if o["ok"] and chk["grad"]["ok"] else ("FAIL" if not o["ok"] else "grad FAIL")
                row.append(f"{o['max_abs_diff']:.1e} {mark}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def legend(entry: dict) -> str:
    return "; ".join(
        f"`{n}` = {i['label']}" + (f" (up to T={i['max_T']})" if i["max_T"] else "") for n, i in entry["impls"].items()
    )


def _slope(entry: dict, name: str, t_min: int = 1024) -> float | None:
    pts = [
        (int(T), _mem(res, name))
        for T, res in entry["results"].items()
        if int(T) >= t_min and _mem(res, name) is not None and _mem(res, name) > 0
    ]
    if len(pts) < 2:
        return None
    xs, ys = [math.log(t) for t, _ in pts], [math.log(m) for _, m in pts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return None if den == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def targets(results: dict) -> tuple[str, dict]:
    """The targets of issue 3, as a markdown table and a dict of verdicts."""
    G = results["groups"]
    rows, verdicts = [], {}
    # 1. chunked op (or its fastest training form) >= 10x faster than its recurrence at T = 2048
    for op in CHUNK_OPS:
        e = G.get(f"op:{op}")
        res = (e or {}).get("results", {}).get(str(SPEEDUP_TARGET_T))
        forms = FAST_FORMS.get(op, ("chunk",))
        measured = [f for f in forms if _ratio(_time(res, "naive"), _time(res, f)) is not None]
        best = min(measured, key=lambda f: _time(res, f)) if measured else forms[0]
        r = _ratio(_time(res, "naive"), _time(res, best))
        checks = (res or {}).get("checks", {})
        equal = all(c["output"]["ok"] and c["grad"]["ok"] for n, c in checks.items() if n in (*forms, "naive"))
        ok = None if r is None else (r >= CHUNK_VS_NAIVE_TARGET and equal)
        verdicts[f"chunk_vs_naive:{op}"] = ok
        if len(forms) == 1:
            chk = checks.get("naive")
            eq = "" if chk is None else f"; max abs diff {chk['output']['max_abs_diff']:.1e}"
            what, text = "chunked", f"{_x(r)}{eq}"
        else:
            labels = {f: (e or {}).get("impls", {}).get(f, {}).get("label", f) for f in forms}
            what = "fastest training form"
            parts = [f"{_x(r)} by `{best}` ({labels[best]})"] if measured else ["n/a"]
            for f in measured:
                if f != best:
                    parts.append(f"`{f}` {_x(_ratio(_time(res, 'naive'), _time(res, f)))}")
            diffs = [
                f"`{n}` vs `{c['against']}` {c['output']['max_abs_diff']:.1e}" for n, c in checks.items() if n in (*forms, "naive")
            ]
            text = "; ".join(parts) + ("; max abs diff " + ", ".join(diffs) if diffs else "")
            missing = [f for f in forms if f not in measured]
            if missing:
                text += "; not measured: " + ", ".join(f"`{f}`" for f in missing)
        rows.append(
            (f"{op}: {what} >= {CHUNK_VS_NAIVE_TARGET:.0f}x faster than recurrence at T={SPEEDUP_TARGET_T}", text, _verdict(ok))
        )
    # 2. at the longest T: linear mixers vs softmax attention (SDPA and plain softmax), time and memory
    Tmax = str(max(results["Ts"]))
    lc, interleaved = long_context(results)
    how = "interleaved in one process" if interleaved else "separate processes"
    for name in LINEAR_MIXERS:
        if name not in lc:
            continue
        t, m = lc[name]
        for ref, what in (("attention", "SDPA"), ("attention-plain", "plain softmax")):
            rt, rm = _ratio(lc.get(ref, (None, None))[0], t), _ratio(lc.get(ref, (None, None))[1], m)
            ok = None if rt is None or rm is None else (rt > 1 and rm >= FAR_SMALLER)
            verdicts[f"vs_attention:{name}:{ref}"] = ok
            rows.append(
                (
                    f"{name} mixer vs attention ({what}) at T={Tmax}: faster and >= {FAR_SMALLER:.0f}x less memory",
                    f"time {_x(rt)} ({_ms(t)} vs {_ms(lc.get(ref, (None, None))[0])} ms, {how}), "
                    f"memory {_x(rm)} ({_mib(m)} vs {_mib(lc.get(ref, (None, None))[1])} MiB)",
                    _verdict(ok),
                )
            )
    # 2b. generation after a prefill of the longest T: state size and one step, against attention's KV cache
    rows += _decode_targets(results, verdicts)
    # 3. ours faster than every pure-PyTorch peer at the same shapes (aim 1.5x)
    for label, key, ours, peers in PEER_TARGETS:
        e = G.get(key)
        if e is None:
            continue
        for peer in (p for p in peers if p in e["impls"]):
            rs = {
                T: _ratio(_time(res, peer), _time(res, ours))
                for T, res in e["results"].items()
                if _ratio(_time(res, peer), _time(res, ours)) is not None
            }
            if not rs:
                rows.append((f"{label} vs {e['impls'][peer]['label']}", "not measured", "n/a"))
                continue
            worst = min(rs.values())
            t_worst = min(rs, key=rs.get)
            ok = worst > PEER_TARGET
            if not label.endswith("(not a target)"):
                verdicts[f"vs_peer:{label}:{peer}"] = ok
            aim = "aim 1.5x met" if worst >= PEER_AIM else "aim 1.5x not met"
            span = f"T={min(rs, key=int)}..{max(rs, key=int)}"
            rows.append(
                (
                    f"{label} faster than {e['impls'][peer]['label']} ({span})",
                    f"min {_x(worst)} (T={t_worst}), max {_x(max(rs.values()))}; {aim}",
                    _verdict(ok),
                )
            )
    # 4. memory of chunked forms linear in T
    for key, e in G.items():
        fast = "chunk" if e["kind"] == "op" else "ours"
        if not e["linear"] or fast not in e["impls"]:
            continue
        s = _slope(e, fast)
        ok = None if s is None else s <= LINEAR_SLOPE_MAX
        verdicts[f"linear_memory:{key}"] = ok
        rows.append(
            (f"{key} memory linear in T (log-log slope over T>=1024 <= {LINEAR_SLOPE_MAX})", "n/a" if s is None else f"slope {s:.2f}", _verdict(ok))
        )
    table = ["| target | measured | verdict |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(table), verdicts


LINEAR_MIXERS = ("retention", "gla", "deltanet", "mamba", "mamba2")


def decode_at(results: dict, T: int | str | None = None) -> dict:
    """`{mixer: {"bytes", "retained_bytes", "step_s", "step_ok"}}` from the `mixer:state` group at T
    (default the longest T); empty when the group was not run."""
    T = str(max(results["Ts"]) if T is None else T)
    res = results["groups"].get(STATE_GROUP, {}).get("results", {}).get(T)
    out = {}
    for name, st in ((res or {}).get("state") or {}).items():
        chk = res.get("step_check", {}).get(name, {})
        out[name] = {
            "bytes": st["bytes"],
            "retained_bytes": st["retained_bytes"],
            "step_s": _time(res, name),
            "step_ok": chk.get("ok"),
        }
    return out


def _state_text(d: dict) -> str:
    """A state's size in KiB, and what it keeps alive when that is more (a view into a larger buffer)."""
    if d["retained_bytes"] <= d["bytes"]:
        return f"{_kib(d['bytes'])} KiB"
    return f"{_kib(d['bytes'])} KiB, holding {_kib(d['retained_bytes'])} KiB alive"


def _decode_targets(results: dict, verdicts: dict) -> list[tuple[str, str, str]]:
    """Rows: each linear mixer's state vs attention's KV cache at the longest T (judged on the memory the
    state keeps alive), and one row comparing one decode step's time."""
    Tmax = max(results["Ts"])
    dec = decode_at(results)
    att = dec.get("attention")
    if not dec or att is None:
        return []
    rows = []
    linear = [n for n in dec if n != "attention"]
    for name in linear:
        d = dec[name]
        r = _ratio(att["retained_bytes"], d["retained_bytes"])
        ok = None if r is None else (r >= STATE_SMALLER and bool(d["step_ok"]) and bool(att["step_ok"]))
        verdicts[f"state_vs_kv_cache:{name}"] = ok
        text = f"{_x(r)} ({_state_text(d)}; attention's KV cache {_state_text(att)})"
        if d["retained_bytes"] > d["bytes"]:
            text += f"; its own tensors alone: {_x(_ratio(att['retained_bytes'], d['bytes']))}"
        rows.append(
            (f"{name} mixer: recurrent state after a prefill of T={Tmax} >= {STATE_SMALLER:.0f}x smaller than attention's KV cache", text, _verdict(ok))
        )
    steps = {n: dec[n]["step_s"] for n in linear if dec[n]["step_s"] is not None}
    if att["step_s"] is not None and steps:
        ok = all(t < att["step_s"] for t in steps.values()) and all(bool(dec[n]["step_ok"]) for n in dec)
        verdicts["decode_step_vs_attention"] = ok
        parts = [f"attention {_ms(att['step_s'])} ms"] + [
            f"{n} {_ms(t)} ms ({_x(_ratio(att['step_s'], t))})" for n, t in steps.items()
        ]
        rows.append(
            (
                f"one decode step at context T={Tmax}: every linear mixer faster than attention's step over its KV cache",
                "; ".join(parts) + f" (interleaved in one process, {_threads(results)})",
                _verdict(ok),
            )
        )
    return rows


def _threads(results: dict) -> str:
    n = results["groups"].get(STATE_GROUP, {}).get("threads", results["meta"]["threads"])
    return f"{n} torch thread" + ("s" if n != 1 else "")


def decode_tables(results: dict) -> str:
    """The `mixer:state` group: at the longest T every mixer's state and step, then state size and step
    time per T."""
    e = results["groups"].get(STATE_GROUP)
    if e is None or not e["results"]:
        return "Not measured (`--only mixer:state`)."
    Tmax = max(results["Ts"])
    dec = decode_at(results)
    att = dec.get("attention", {})
    lines = [
        f"| after a prefill of T={Tmax} | state KiB | KiB kept alive | attention KV cache / this "
        "| step ms | attention step / this | step = forward |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, d in dec.items():
        res = e["results"].get(str(Tmax), {})
        chk = res.get("step_check", {}).get(name, {})
        check = "n/a" if not chk else f"{chk['max_abs_diff']:.1e} " + ("ok" if chk["ok"] else "FAIL")
        lines.append(
            f"| {name} | {_kib(d['bytes'])} | {_kib(d['retained_bytes'])} | "
            f"{_x(_ratio(att.get('retained_bytes'), d['retained_bytes']))} | {_ms(d['step_s'])} | "
            f"{_x(_ratio(att.get('step_s'), d['step_s']))} | {check} |"
        )
    names = list(e["impls"])
    by_t = [
        "| T | " + " | ".join(f"{n} KiB" for n in names) + " | " + " | ".join(f"{n} step ms" for n in names) + " |",
        "|" + "---:|" * (1 + 2 * len(names)),
    ]
    for T, res in e["results"].items():
        st = res.get("state", {})
        cells = [_kib(st[n]["retained_bytes"]) if n in st else "n/a" for n in names]
        cells += [_ms(_time(res, n)) for n in names]
        by_t.append(f"| {T} | " + " | ".join(cells) + " |")
    errs = {f"{n} T={T}": msg for T, res in e["results"].items() for n, msg in res.get("errors", {}).items()}
    note = (
        f"Per mixer, in eval mode without gradients, one process per T ({_threads(results)}, batch "
        f"{results['sizes']['batch']}, fp32): `_, state = mixer(x, return_state=True)` over T prefill tokens; "
        "`state KiB` sums `numel * element_size` over the tensors in the state (attention: its KV cache k, v "
        "and key positions); `KiB kept alive` sums the distinct storages those tensors hold, which is more "
        "when a state tensor is a view into a larger buffer; the per-T table gives the latter. `step ms`: median "
        "of one `mixer.step(x_next, state)` from that state, repetitions of all mixers interleaved. "
        "`step = forward`: that step's output against the last output of the forward over all T + 1 tokens "
        "(max abs diff, allclose)."
    )
    out = "\n".join(lines) + "\n\n" + note + "\n\n" + "\n".join(by_t)
    if errs:
        out += "\n\nErrors: " + "; ".join(f"{k}: {v}" for k, v in errs.items())
    return out


def long_context(results: dict) -> tuple[dict, bool]:
    """`{mixer: (median s, peak MiB)}` at the longest T, for attention (SDPA), attention-plain and the
    linear mixers. Times come from the `mixer:long_context` group (all mixers interleaved in one
    process) when it was run, else from each mixer's own group; memory from each mixer's own group.
    Returns the dict and whether the times were interleaved."""
    Tmax = str(max(results["Ts"]))
    G = results["groups"]
    lc = G.get("mixer:long_context", {}).get("results", {}).get(Tmax)
    out = {}
    for name in ("attention", "attention-plain", *LINEAR_MIXERS):
        key, impl = ("mixer:attention", "plain") if name == "attention-plain" else (f"mixer:{name}", "ours")
        own = G.get(key, {}).get("results", {}).get(Tmax)
        t = _time(lc, name) if lc is not None else _time(own, impl)
        if t is not None or _mem(own, impl) is not None:
            out[name] = (t, _mem(own, impl))
    return out, lc is not None and bool(lc.get("time"))


def long_context_table(results: dict) -> str:
    """At the longest T: every mixer's and op's time and memory, and the ratios of softmax attention to it."""
    Tmax = str(max(results["Ts"]))
    G = results["groups"]
    head = (
        f"| at T={Tmax} | ms | MiB | attention SDPA time / this | plain softmax time / this "
        "| attention SDPA memory / this | plain softmax memory / this |"
    )
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|"]

    def row(label, t, m, ref_sdpa, ref_plain):
        return (
            f"| {label} | {_ms(t)} | {_mib(m)} | {_x(_ratio(ref_sdpa[0], t))} | {_x(_ratio(ref_plain[0], t))} | "
            f"{_x(_ratio(ref_sdpa[1], m))} | {_x(_ratio(ref_plain[1], m))} |"
        )

    lc, interleaved = long_context(results)
    none = (None, None)
    for name, (t, m) in lc.items():
        lines.append(row(f"mixer {name}", t, m, lc.get("attention", none), lc.get("attention-plain", none)))
    att = G.get("op:attention", {}).get("results", {}).get(Tmax)
    sdpa, plain = (_time(att, "sdpa"), _mem(att, "sdpa")), (_time(att, "plain"), _mem(att, "plain"))
    for key, e in G.items():
        if e["kind"] != "op":
            continue
        res = e["results"].get(Tmax)
        for n in ("sdpa", "plain") if key == "op:attention" else ("chunk",):
            lines.append(row(f"op {e['name']} {n}", _time(res, n), _mem(res, n), sdpa, plain))
    note = (
        "Mixer times: all mixers interleaved in one process (`mixer:long_context`)."
        if interleaved
        else "Mixer times: each mixer's own group (separate processes)."
    )
    return "\n".join(lines) + "\n\n" + note + " Memory: each case's own child process."


def _load(meta: dict) -> str:
    """The machine's load while measuring (other jobs share the CPU)."""
    if "load_avg_observed" in meta:
        lo, hi = meta["load_avg_observed"]
        return f"1-min load average {lo:.0f} to {hi:.0f} while measuring (shared machine)" + _updates(meta)
    text = "load average at start " + ", ".join(f"{x:.1f}" for x in meta.get("load_avg_at_start", []))
    return text + _updates(meta)


def _updates(meta: dict) -> str:
    """The groups rerun later with `--update`, when and at what load."""
    out = [
        f"{', '.join(u.get('updated_groups', []))} rerun {u.get('started', '?')} to {u.get('finished', '?')} "
        f"(load average at start {u['load_avg_at_start'][0]:.1f}"
        + (f", {u['threads']} torch thread{'s' if u['threads'] != 1 else ''}" if u.get("threads", meta["threads"]) != meta["threads"] else "")
        + ")"
        for u in meta.get("updates", [])
        if u.get("load_avg_at_start")
    ]
    return ("; " + "; ".join(out)) if out else ""


def markdown(results: dict) -> str:
    meta, sizes = results["meta"], results["sizes"]
    out = [
        "# polyformer core benchmark: forward+backward time and peak memory",
        "",
        "Produced by" + (" (a full run, then reruns of some groups merged with `--update`)" if len(meta.get("commands", [])) > 1 else "") + ":",
        "",
        "```",
        *meta.get("commands", ["python -m benchmarks.core.mixers"]),
        "```",
        "",
        f"Machine: {meta.get('cpu', '?')}, {meta['threads']} torch threads, {meta['dtype']}, torch {meta['torch']}; "
        + _load(meta) + "; "
        f"{meta.get('started', '')} to {meta.get('finished', '')}.",
        "",
        f"Sizes: {', '.join(f'{k}={v}' for k, v in sizes.items())}.",
        "",
        "Times are medians of interleaved forward+backward repetitions in one process per (group, T); "
        "memory is the peak RSS of one forward+backward above the baseline, in a fresh child process per "
        "(implementation, T). `a / ours` columns: time of `a` divided by ours (> 1: ours is faster). "
        "`max abs diff`: output of `a` against ours on the same inputs (ok = allclose of outputs and of "
        "the first input's gradient). n/a: not run at that T (per-step loops stop at T=2048, and so does "
        "fla's naive_retention, which returns NaN beyond T~2800; transformers' Mamba loop, whose backward is "
        "O(T^2), stops at T=512); nothing is extrapolated.",
        "",
        "## Targets",
        "",
        targets(results)[0],
        "",
        "## Long context",
        "",
        long_context_table(results),
        "",
        "## Generation: recurrent state and one decode step",
        "",
        decode_tables(results),
        "",
    ]
    for kind, title in (("op", "Ops"), ("mixer", "Mixers")):
        out += [f"## {title}", ""]
        for key, e in results["groups"].items():
            if e["kind"] != kind or not e.get("same_function", True):
                continue
            out += [f"### {key}", "", legend(e), "", group_table(e), ""]
            errs = {
                f"{n} T={T}": msg for T, res in e["results"].items() for n, msg in res.get("errors", {}).items()
            }
            if errs:
                out += ["Errors: " + "; ".join(f"{k}: {v}" for k, v in errs.items()), ""]
    return "\n".join(out)


README_HEADING = "## Results"


def readme_with_results(readme: str, md: str) -> str:
    """README.md's text with everything after its "## Results" heading replaced by the report `md`
    (without its title, headings one level down): the README's tables always come from this code."""
    head, sep, _ = readme.partition(f"\n{README_HEADING}\n")
    if not sep:
        raise ValueError(f"the README has no '{README_HEADING}' heading to put the results under")
    body = ["#" + line if line.startswith("#") else line for line in md.splitlines()[1:]]
    return head + sep + "\n".join(body) + "\n"
