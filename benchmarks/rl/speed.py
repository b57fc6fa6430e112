"""Speed side by side in one process: training-step throughput and per-step acting latency.

Ours (polyformer's Decision Transformer at the paper's size: embedding 128, 3 layers, 1 head, K=20,
hopper's 11-dim states and 3-dim actions) against HF transformers' DecisionTransformerModel of the
same size when `transformers` is importable (`pip install -e '.[bench]'`); without it, only ours.
Acting latency is the model time per environment step of a 100-step episode (batch 1): ours with
the step-cached recurrent form and with the published re-run of the last K steps; HF re-runs the
window (its model has no cache for the DT). On a shared machine single timings swing by 2x, so the
contenders run interleaved over several rounds and each reports its median round.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F

from polyformer.rl.models import MODELS

SIZE = {"state_dim": 11, "act_dim": 3, "context_len": 20, "embed_dim": 128, "depth": 3, "num_heads": 1, "max_timestep": 1000}


def _ours(mixer: str = "attention", dropout: float = 0.1):
    return MODELS.build({"name": "dt", "embed_dim": SIZE["embed_dim"], "depth": SIZE["depth"], "num_heads": SIZE["num_heads"],
                         "mixer": mixer, "dropout": dropout},
                        hints={"state_dim": SIZE["state_dim"], "act_dim": SIZE["act_dim"], "discrete": False,
                               "context_len": SIZE["context_len"], "max_timestep": SIZE["max_timestep"]})


def _hf(dropout: float = 0.1):
    try:
        from transformers import DecisionTransformerConfig, DecisionTransformerModel
    except ImportError:
        return None
    cfg = DecisionTransformerConfig(state_dim=SIZE["state_dim"], act_dim=SIZE["act_dim"], hidden_size=SIZE["embed_dim"],
                                    n_layer=SIZE["depth"], n_head=SIZE["num_heads"], n_inner=4 * SIZE["embed_dim"],
                                    max_ep_len=SIZE["max_timestep"], n_positions=3 * SIZE["context_len"],
                                    action_tanh=True, activation_function="gelu",
                                    resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout)
    return DecisionTransformerModel(cfg)


def _batch(b: int, k: int):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(b, k, SIZE["state_dim"], generator=g), torch.rand(b, k, SIZE["act_dim"], generator=g) * 2 - 1,
            torch.randn(b, k, 1, generator=g), torch.arange(k).repeat(b, 1), torch.ones(b, k, dtype=torch.long))


def _time(fn, reps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def _interleaved(fns: dict[str, Any], reps: int, rounds: int) -> dict[str, float]:
    """Median seconds per call of each fn, timed round-robin (`reps` calls per fn per round)."""
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(_time(fn, reps, warmup=0))
    return {name: float(statistics.median(ts)) for name, ts in times.items()}


def train_throughput(batch: int = 64, reps: int = 5, rounds: int = 5, dropout: float = 0.1,
                     mamba: bool = True) -> dict[str, Any]:
    """Training steps per second (forward + MSE + backward + AdamW) at batch 64, K = 20."""
    s, a, r, t, m = _batch(batch, SIZE["context_len"])
    steps = {}
    models = (("ours", _ours(dropout=dropout)), ("ours_mamba", _ours("mamba", dropout) if mamba else None),
              ("hf", _hf(dropout)))
    for name, model in models:
        if model is None:
            continue
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        if name.startswith("ours"):
            fwd = lambda model=model: model(s, a, r, t)
        else:
            fwd = lambda model=model: model(states=s, actions=a, rewards=None, returns_to_go=r, timesteps=t,
                                            attention_mask=m, return_dict=True).action_preds

        def step(fwd=fwd, opt=opt):
            loss = F.mse_loss(fwd(), a)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        steps[name] = step
    # The mamba mixer's torch scan is far slower on CPU: fewer of its steps per round.
    fast = _interleaved({k: v for k, v in steps.items() if k != "ours_mamba"}, reps, rounds)
    slow = _interleaved({"ours_mamba": steps["ours_mamba"]}, 1, rounds) if "ours_mamba" in steps else {}
    out: dict[str, Any] = {name: 1.0 / sec for name, sec in {**fast, **slow}.items()}
    out = {name: out[name] for name in steps}
    if "hf" in out:
        out["ratio_ours_over_hf"] = out["ours"] / out["hf"]
    return out


@torch.no_grad()
def acting_latency(steps: int = 100, rounds: int = 5) -> dict[str, Any]:
    """Model milliseconds per environment step over one `steps`-step episode, batch 1."""
    k = SIZE["context_len"]
    s, a, r, t, m = _batch(1, steps)
    fns: dict[str, Any] = {}
    for mixer in ("attention", "mamba"):
        net = _ours(mixer).eval()

        def recurrent(net=net):
            state = net.init_state(1)
            prev = None
            for i in range(steps):
                act, state = net.step(state, r[:, i], s[:, i], t[:, i], prev)
                prev = act

        def window(net=net):
            for i in range(steps):
                lo = max(0, i + 1 - k)
                net(s[:, lo:i + 1], a[:, lo:i + 1], r[:, lo:i + 1], t[:, lo:i + 1])

        fns[f"ours_{mixer}_recurrent_ms"] = recurrent
        fns[f"ours_{mixer}_window_ms"] = window
    hf = _hf()
    if hf is not None:
        hf.eval()

        def hf_window():
            for i in range(steps):
                lo = max(0, i + 1 - k)
                hf(states=s[:, lo:i + 1], actions=a[:, lo:i + 1], rewards=None, returns_to_go=r[:, lo:i + 1],
                   timesteps=t[:, lo:i + 1], attention_mask=m[:, lo:i + 1], return_dict=True)

        fns["hf_window_ms"] = hf_window
    return {name: 1000 * sec / steps for name, sec in _interleaved(fns, 1, rounds).items()}


def speed_report() -> dict[str, Any]:
    """Both measurements, and whether HF was available."""
    torch.manual_seed(0)
    return {"size": SIZE, "hf_available": _hf() is not None, "train_steps_per_s": train_throughput(),
            # Core's MLP drops out inside its hidden layer too (ViT style), GPT-2 does not: without dropout
            # the two stacks do the same work, which tells the mixer/layout cost from the dropout cost.
            "train_steps_per_s_no_dropout": train_throughput(dropout=0.0, mamba=False),
            "acting": acting_latency()}
