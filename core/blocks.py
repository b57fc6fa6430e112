"""Pre-norm residual blocks around any token mixer, and stacks of them (hybrid layouts included)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from polyformer.core.errors import ConfigError
from polyformer.core.layers.drop_path import DropPath
from polyformer.core.layers.mlp import build_mlp
from polyformer.core.layers.norms import build_norm
from polyformer.core.mixers.base import TokenMixer
from polyformer.core.mixers.registry import build_mixer

MixerSpec = str | Mapping[str, Any] | type


def make_mixer(spec: MixerSpec, dim: int, *, causal: bool = True, hints: Mapping[str, Any] | None = None) -> TokenMixer:
    """A mixer from a registry name, a dict `{"name": ..., **options}` or a TokenMixer class (timm style).

    `hints` (e.g. `{"num_heads": 8}`) reach the mixer only where its constructor takes them.
    """
    if isinstance(spec, type):
        if not issubclass(spec, nn.Module):
            raise ConfigError(f"a mixer class must be an nn.Module (TokenMixer), got {spec.__name__}")
        params = inspect.signature(spec.__init__).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        extra = {k: v for k, v in (hints or {}).items() if takes_any or k in params}
        return spec(dim, causal=causal, **extra)
    if isinstance(spec, str | Mapping):
        return build_mixer(spec, dim=dim, causal=causal, hints=hints)
    raise ConfigError(f"a mixer is given by name, dict or class, got {type(spec).__name__}")


class Block(nn.Module):
    """`x + drop_path(dropout(mixer(norm(x))))`, then `x + drop_path(mlp(norm(x)))` (pre-norm residual).

    Args:
        dim: model width.
        mixer: registry name, dict `{"name": ..., **options}` or TokenMixer class.
        causal: causal or bidirectional form of the mixer.
        mlp: "swiglu", "gelu" or None (mixer only, as in Mamba stacks).
        mlp_ratio: MLP hidden width over `dim`.
        norm: "rmsnorm" or "layernorm".
        drop_path: stochastic-depth rate of both residual branches (training only).
        dropout: dropout on the mixer output and inside the MLP.
        hints: offered to the mixer's constructor where it takes them (e.g. `num_heads`).
    """

    def __init__(
        self,
        dim: int,
        mixer: MixerSpec = "attention",
        *,
        causal: bool = True,
        mlp: str | None = "swiglu",
        mlp_ratio: float = 4.0,
        norm: str = "rmsnorm",
        drop_path: float = 0.0,
        dropout: float = 0.0,
        hints: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        self.norm1 = build_norm(norm, dim)
        self.mixer = make_mixer(mixer, dim, causal=causal, hints=hints)
        self.drop = nn.Dropout(dropout)
        self.mlp = build_mlp(mlp, dim, mlp_ratio, dropout)
        self.norm2 = build_norm(norm, dim) if self.mlp is not None else None
        self.drop_path = DropPath(drop_path)

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.mlp is None else x + self.drop_path(self.mlp(self.norm2(x)))

    def forward(
        self, x: torch.Tensor, *, mask: torch.Tensor | None = None, state: Any = None, return_state: bool = False, **mixer_kwargs
    ) -> tuple[torch.Tensor, Any]:
        """`x[B, T, D] -> (y[B, T, D], mixer state | None)`; extra keywords go to the mixer (e.g. `attn_bias`)."""
        h, state = self.mixer(self.norm1(x), mask=mask, state=state, return_state=return_state, **mixer_kwargs)
        return self._mlp(x + self.drop_path(self.drop(h))), state

    def step(self, x_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """One recurrent step on `x_t[B, 1, D]`."""
        h, state = self.mixer.step(self.norm1(x_t), state)
        return self._mlp(x_t + self.drop_path(self.drop(h))), state

    def init_state(self, batch: int, device=None, dtype=None) -> Any:
        """The mixer's empty state."""
        return self.mixer.init_state(batch, device=device, dtype=dtype)


def expand_layout(depth: int, mixer: MixerSpec, layout: Mapping[str, Sequence[int]] | Sequence[MixerSpec] | None) -> list:
    """Per-layer mixer specs: all `mixer`, or a hybrid.

    `layout` is a dict `{spec_name: [layer indices]}` (e.g. `{"attention": [3, 7]}`: attention at
    layers 3 and 7, `mixer` elsewhere) or a full list of `depth` per-layer specs.
    """
    if layout is None:
        return [mixer] * depth
    if isinstance(layout, Mapping):
        specs: list = [mixer] * depth
        taken: dict[int, str] = {}
        for name, indices in layout.items():
            if isinstance(indices, int):
                indices = [indices]
            for i in indices:
                i = int(i)
                if not -depth <= i < depth:
                    raise ConfigError(f"layout puts '{name}' at layer {i}, but the stack has {depth} layers (0..{depth - 1})")
                i %= depth
                if i in taken:
                    raise ConfigError(f"layout puts both '{taken[i]}' and '{name}' at layer {i}")
                taken[i] = name
                specs[i] = name
        return specs
    if isinstance(layout, Sequence) and not isinstance(layout, str):
        if len(layout) != depth:
            raise ConfigError(f"layout lists {len(layout)} mixers for a stack of depth {depth}; give one per layer")
        return list(layout)
    raise ConfigError(f"layout must be a dict {{name: [layers]}} or a list of per-layer mixers, got {type(layout).__name__}")


def _forward_kwargs(module: nn.Module) -> set[str] | None:
    """Extra keyword names a mixer's forward takes (None: any)."""
    params = inspect.signature(module.forward).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params} - {"x", "mask", "state", "return_state"}


class MixerStack(nn.Module):
    """`depth` Blocks and a final norm; a hybrid when `layout` mixes mixers (e.g. Mamba-2 with attention at 3, 7).

    Drop path rises linearly from 0 to `drop_path` over depth. Extra forward keywords (e.g. `attn_bias`)
    go to the layers whose mixer takes them; a keyword no layer takes is an error.
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        mixer: MixerSpec = "attention",
        layout: Mapping[str, Sequence[int]] | Sequence[MixerSpec] | None = None,
        *,
        causal: bool = True,
        mlp: str | None = "swiglu",
        mlp_ratio: float = 4.0,
        norm: str = "rmsnorm",
        drop_path: float = 0.0,
        dropout: float = 0.0,
        hints: Mapping[str, Any] | None = None,
        final_norm: bool = True,
    ):
        super().__init__()
        if depth < 1:
            raise ConfigError(f"a mixer stack needs depth >= 1, got {depth}")
        specs = expand_layout(depth, mixer, layout)
        rates = [drop_path * i / max(depth - 1, 1) for i in range(depth)]
        self.layers = nn.ModuleList(
            Block(dim, spec, causal=causal, mlp=mlp, mlp_ratio=mlp_ratio, norm=norm, drop_path=rate, dropout=dropout, hints=hints)
            for spec, rate in zip(specs, rates)
        )
        self.norm = build_norm(norm if final_norm else "none", dim)
        self._takes = [_forward_kwargs(layer.mixer) for layer in self.layers]

    def _kwargs_for(self, i: int, mixer_kwargs: dict) -> dict:
        takes = self._takes[i]
        return dict(mixer_kwargs) if takes is None else {k: v for k, v in mixer_kwargs.items() if k in takes}

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, state: list | None = None, return_state: bool = False, **mixer_kwargs
    ) -> tuple[torch.Tensor, list | None]:
        """`x[B, T, D] -> (y, per-layer states | None)`; `state` is a list with one entry per layer."""
        unused = [k for k in mixer_kwargs if all(t is not None and k not in t for t in self._takes)]
        if unused:
            raise ConfigError(f"no mixer in this stack takes {unused}")
        states = [None] * len(self.layers) if state is None else list(state)
        if len(states) != len(self.layers):
            raise ConfigError(f"state has {len(states)} entries for {len(self.layers)} layers")
        new_states = []
        for i, layer in enumerate(self.layers):
            x, s = layer(x, mask=mask, state=states[i], return_state=return_state, **self._kwargs_for(i, mixer_kwargs))
            new_states.append(s)
        return self.norm(x), (new_states if return_state else None)

    def step(self, x_t: torch.Tensor, states: list) -> tuple[torch.Tensor, list]:
        """One recurrent step through all layers."""
        new_states = []
        for layer, s in zip(self.layers, states, strict=True):
            x_t, s = layer.step(x_t, s)
            new_states.append(s)
        return self.norm(x_t), new_states

    def init_state(self, batch: int, device=None, dtype=None) -> list:
        """Empty per-layer states."""
        return [layer.init_state(batch, device=device, dtype=dtype) for layer in self.layers]

    @property
    def mixer_names(self) -> list[str]:
        """The mixer class of each layer, e.g. to log a hybrid layout."""
        return [type(layer.mixer).__name__ for layer in self.layers]
