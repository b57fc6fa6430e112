"""Models: shapes and gradients over policies and mixers; stepping the mixers acts exactly like re-running the context."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polyformer.core.mixers import list_mixers
from polyformer.rl.models import MODELS
from polyformer.rl.module import DecisionTransformerModule

MIXERS = list_mixers()


def _spec(discrete: bool, obs_dim: int = 3) -> dict:
    action = {"type": "discrete", "n": 4, "start": 0} if discrete else {"type": "box", "shape": [2], "low": [-2.0, -1.0], "high": [2.0, 1.0]}
    return {
        "env_id": "LunarLander-v3" if discrete else "Pendulum-v1",
        "observation_dim": obs_dim,
        "action_space": action,
        "state_mean": [0.1] * obs_dim,
        "state_std": [2.0] * obs_dim,
        "return_scale": 10.0,
        "max_episode_steps": 50,
        "context_len": 4,
        "target_returns": [1.0, 5.0],
        "target_return": 5.0,
        "reference_returns": {"random": 0.0, "expert": 10.0},
    }


def _module(mixer="attention", discrete=False, name="dt") -> DecisionTransformerModule:
    torch.manual_seed(0)
    model = {"name": name, "embed_dim": 16, "depth": 2, "num_heads": 2, "mixer": mixer, "dropout": 0.0} if name == "dt" \
        else {"name": "bc", "hidden_dim": 16}
    return DecisionTransformerModule(model=model, optim=None, data=_spec(discrete)).eval()


def _batch(discrete: bool, b: int = 3, t: int = 4) -> dict:
    g = torch.Generator().manual_seed(1)
    actions = torch.randint(0, 4, (b, t), generator=g) if discrete else torch.rand(b, t, 2, generator=g) * 2 - 1
    mask = torch.ones(b, t, dtype=torch.bool)
    mask[0, -1] = False
    return {"states": torch.randn(b, t, 3, generator=g), "actions": actions, "returns_to_go": torch.randn(b, t, 1, generator=g),
            "timesteps": torch.arange(t).repeat(b, 1), "mask": mask}


@pytest.mark.parametrize("mixer", MIXERS)
@pytest.mark.parametrize("discrete", [False, True])
def test_dt_shapes_and_backward(mixer, discrete):
    module = _module(mixer, discrete).train()
    batch = _batch(discrete)
    out = module(batch)
    assert out.shape == (3, 4, 4 if discrete else 2)
    if not discrete:
        assert out.abs().max() <= 1.0  # tanh
    loss = module._losses(batch)["loss"]
    loss.backward()
    grads = [p.grad for p in module.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("mixer", MIXERS)
def test_forward_without_last_action_token_is_exact(mixer):
    """The forward pass leaves out the final action token; predictions equal those of the full 3K tokens."""
    net = _module(mixer).net.train()
    b = _batch(False)
    tokens = net.tokens(b["states"], b["actions"], b["returns_to_go"], b["timesteps"])
    full, _ = net.stack(tokens)
    ref = net.head(full.reshape(3, 4, 3, -1)[:, :, 1])
    out = net(b["states"], b["actions"], b["returns_to_go"], b["timesteps"])
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    g_out = torch.autograd.grad(out.square().sum(), net.embed_state.weight)[0]
    g_ref = torch.autograd.grad(ref.square().sum(), net.embed_state.weight)[0]
    torch.testing.assert_close(g_out, g_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("discrete", [False, True])
def test_bc_shapes_and_backward(discrete):
    module = _module(name="bc", discrete=discrete).train()
    batch = _batch(discrete)
    assert module(batch).shape == (3, 4, 4 if discrete else 2)
    module._losses(batch)["loss"].backward()


@pytest.mark.parametrize("mixer", MIXERS)
def test_step_equals_full_forward_within_context(mixer):
    """Feeding tokens through the mixers' step gives the parallel forward's predictions (t < K)."""
    module = _module(mixer)
    net, batch = module.net, _batch(False, b=2, t=4)
    with torch.no_grad():
        full = net(batch["states"], batch["actions"], batch["returns_to_go"], batch["timesteps"])
        state = net.init_state(2)
        steps = []
        for t in range(4):
            prev = None if t == 0 else batch["actions"][:, t - 1]
            out, state = net.step(state, batch["returns_to_go"][:, t], batch["states"][:, t], batch["timesteps"][:, t], prev)
            steps.append(out)
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("mixer", MIXERS)
@pytest.mark.parametrize("discrete", [False, True])
def test_recurrent_acting_equals_window_acting_within_k(mixer, discrete):
    """The step-cached actor picks the same actions as re-running the last K steps, for the first K steps."""
    module = _module(mixer, discrete)
    rng = np.random.default_rng(0)
    rec, win = module.actor(3, 5.0, mode="recurrent"), module.actor(3, 5.0, mode="window")
    assert rec.mode == "recurrent" and win.mode == "window"
    history = {"obs": [], "rtg": [], "actions": []}
    for _ in range(4):
        obs = rng.normal(size=(3, 3)).astype(np.float32)
        a_rec, a_win = rec.act(obs), win.act(obs)
        if discrete:
            np.testing.assert_array_equal(a_rec, a_win)
        else:
            np.testing.assert_allclose(a_rec, a_win, atol=1e-5)
        history["obs"].append(obs)
        history["rtg"].append(rec.rtg.copy())
        history["actions"].append(a_rec)
        rewards = rng.normal(size=3)
        rec.observe(rewards)
        win.observe(rewards)
    # The stateless act() on the same history gives the last action too.
    obs = np.stack(history["obs"], 1)
    last = module.act(obs, np.stack(history["rtg"], 1), actions=np.stack(history["actions"][:-1], 1))
    if discrete:
        np.testing.assert_array_equal(last, history["actions"][-1])
    else:
        np.testing.assert_allclose(last, history["actions"][-1], atol=1e-5)


def test_actions_are_in_the_action_space():
    module = _module()
    actor = module.actor(2, 1.0)
    a = actor.act(np.zeros((2, 3), np.float32))
    assert a.shape == (2, 2) and np.all(np.abs(a[:, 0]) <= 2.0) and np.all(np.abs(a[:, 1]) <= 1.0)
    assert module.action_space.contains(a[0])


def test_registry_lists_models():
    assert {"dt", "bc"} <= set(MODELS.names())
