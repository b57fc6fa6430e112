"""Sizes of our Mamba / Mamba-2 mixers and copying their weights into peers' modules.

Our mixers use mamba-ssm's parameter names (in_proj, conv1d, x_proj, dt_proj, A_log, D, out_proj;
Mamba-2: in_proj = [z, xBC, dt], conv1d, dt_bias, A_log, D, norm.weight, out_proj), and so do
mambapy's MambaBlock and transformers' MambaMixer / Mamba2Mixer, so a strict state-dict load copies
every weight; a missing or extra name is an error, never a silently different model.
"""

from __future__ import annotations

from torch import nn


def mamba_sizes(m: nn.Module) -> dict:
    return {
        "d_inner": m.d_inner,
        "d_state": m.d_state,
        "d_conv": m.d_conv,
        "dt_rank": m.dt_rank,
        "bias": m.in_proj.bias is not None,
        "conv_bias": m.conv1d.bias is not None,
    }


def mamba2_sizes(m: nn.Module) -> dict:
    return {
        "d_inner": m.d_inner,
        "d_state": m.d_state,
        "d_conv": m.d_conv,
        "nheads": m.nheads,
        "headdim": m.headdim,
        "ngroups": m.ngroups,
        "chunk_size": m.chunk_size,
        "bias": m.in_proj.bias is not None,
        "conv_bias": m.conv1d.bias is not None,
        "norm_eps": m.norm.eps,
    }


def _copy(ours: nn.Module, peer: nn.Module) -> None:
    state = ours.state_dict()
    target = peer.state_dict()
    missing = sorted(set(target) - set(state))
    extra = sorted(set(state) - set(target))
    if missing or extra:
        raise RuntimeError(f"weights do not map one to one: peer-only {missing}, ours-only {extra}")
    for name, t in state.items():
        if tuple(target[name].shape) != tuple(t.shape):
            raise RuntimeError(f"{name}: ours {tuple(t.shape)} vs peer {tuple(target[name].shape)}")
    peer.load_state_dict(state, strict=True)


def copy_mamba(ours: nn.Module, peer: nn.Module) -> None:
    """Our causal Mamba mixer's weights into mambapy's MambaBlock or transformers' MambaMixer."""
    _copy(ours, peer)


def copy_mamba2(ours: nn.Module, peer: nn.Module) -> None:
    """Our causal Mamba-2 mixer's weights into transformers' Mamba2Mixer."""
    _copy(ours, peer)
