"""The Mamba-2 token mixer (Dao & Gu 2024): the layer of mamba-ssm's `Mamba2`, in PyTorch.

    z, xBC, dt = in_proj(u)                         # d_inner, d_inner + 2 * ngroups * d_state, nheads
    x, B, C = silu(causal depthwise conv1d(xBC))    # one conv over x, B and C together
    dt = softplus(dt + dt_bias)                     # [B, T, nheads]
    y = ssd(x, dt, A = -exp(A_log), B, C, D)        # heads of headdim channels; B/C shared by head groups
    out = out_proj(rmsnorm(y * silu(z)))            # gated RMSNorm, normalised per group of channels

Parameter names and initialisation follow mamba-ssm (`in_proj`, `conv1d`, `dt_bias`, `A_log`, `D`,
`norm.weight`, `out_proj`; A uniform in `A_init_range` stored as log; dt bias = inverse softplus of
log-uniform dt in [dt_min, dt_max]), so a mamba-ssm `Mamba2` state dict loads into the causal form.

Heads: `headdim` if given, else `num_heads` (models pass it as a hint: `headdim = d_inner // num_heads`),
else `headdim = 64` as in mamba-ssm. An explicit `headdim` wins over a `num_heads` hint.

State: `{"conv": [B, d_inner + 2 * ngroups * d_state, d_conv - 1], "ssm": [B, nheads, headdim, d_state]}`
(the ssm state in float32 for half-precision models). Padding and the bidirectional form
(`causal=False`: a second SSD over the reversed sequence with its own conv1d_b, dt_bias_b, A_b_log and
D_b, sharing in_proj, norm and out_proj, summed before the gated norm) work as in mamba.py.

Backends: "torch" (always), "mamba_ssm" (mamba-ssm's Triton `mamba_chunk_scan_combined` for the SSD;
the conv stays a torch depthwise conv), "auto" = mamba_ssm when it imports and the input is on CUDA.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from polyformer.core.errors import ConfigError
from polyformer.core.mixers.base import TokenMixer, check_mode
from polyformer.core.mixers.mamba import (
    acc_dtype,
    causal_conv,
    check_backend,
    check_mask,
    conv_step,
    inverse_softplus_dt,
    mamba_ssm_available,
    no_state_when_bidirectional,
    pick_backend,
    step_needs_causal,
)
from polyformer.core.mixers.registry import register_mixer
from polyformer.core.ops.ssd import naive_ssd, ssd, ssd_step


class GatedRMSNorm(nn.Module):
    """`rmsnorm(y * silu(z)) * weight`, normalised over groups of `group_size` channels (mamba-ssm's
    `RMSNormGated` with `norm_before_gate=False`); computed in float32 for half-precision inputs."""

    def __init__(self, dim: int, group_size: int, eps: float = 1e-5):
        super().__init__()
        self.group_size, self.eps = group_size, eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        ct = acc_dtype(y.dtype)
        g = y.to(ct) * F.silu(z.to(ct))
        g = g.unflatten(-1, (-1, self.group_size))
        g = (g * torch.rsqrt(g.pow(2).mean(-1, keepdim=True) + self.eps)).flatten(-2)
        return (g * self.weight.to(ct)).to(y.dtype)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, group_size={self.group_size}, eps={self.eps}"


@register_mixer("mamba2")
class Mamba2Mixer(TokenMixer):
    """Mamba-2 (SSD) mixer; `mode` "chunk"/"parallel"/"auto" run the chunked SSD, "recurrent" the loop."""

    def __init__(
        self,
        dim: int,
        *,
        causal: bool = True,
        mode: str = "auto",
        backend: str = "auto",
        d_state: int = 64,
        d_conv: int = 4,
        expand: float = 2,
        headdim: int | None = None,
        num_heads: int | None = None,
        ngroups: int = 1,
        chunk_size: int = 64,
        A_init_range: tuple[float, float] = (1.0, 16.0),
        dt_min: float = 1e-3,
        dt_max: float = 0.1,
        dt_init_floor: float = 1e-4,
        norm_eps: float = 1e-5,
        conv_bias: bool = True,
        bias: bool = False,
    ):
        super().__init__()
        self.causal, self.mode = causal, check_mode(mode)
        self.requested_backend = check_backend("mamba2", backend, mode)
        self.backend = "mamba_ssm" if backend == "mamba_ssm" else "torch"
        self.dim, self.d_state, self.d_conv, self.chunk_size = dim, d_state, d_conv, chunk_size
        self.d_inner = int(expand * dim)
        self.headdim = self._resolve_headdim(headdim, num_heads)
        self.nheads, self.ngroups = self.d_inner // self.headdim, ngroups
        if ngroups < 1 or self.nheads % ngroups:
            raise ConfigError(f"mamba2: ngroups={ngroups} must divide the number of heads ({self.nheads})")
        if d_conv < 1 or d_state < 1 or chunk_size < 1:
            raise ConfigError(
                f"mamba2: d_conv, d_state and chunk_size must be >= 1, got {d_conv}, {d_state}, {chunk_size}"
            )
        lo, hi = A_init_range
        if not 0 < lo <= hi:
            raise ConfigError(f"mamba2: A_init_range must satisfy 0 < low <= high, got {A_init_range}")
        self.conv_dim = self.d_inner + 2 * ngroups * d_state

        self.in_proj = nn.Linear(dim, self.d_inner + self.conv_dim + self.nheads, bias=bias)  # [z, xBC, dt]
        self.conv1d, self.dt_bias, self.A_log, self.D = self._ssm_params(
            conv_bias, A_init_range, dt_min, dt_max, dt_init_floor
        )
        if not causal:  # the time-reversed scan's own parameters
            self.conv1d_b, self.dt_bias_b, self.A_b_log, self.D_b = self._ssm_params(
                conv_bias, A_init_range, dt_min, dt_max, dt_init_floor
            )
        self.norm = GatedRMSNorm(self.d_inner, self.d_inner // ngroups, eps=norm_eps)
        self.out_proj = nn.Linear(self.d_inner, dim, bias=bias)

    def _resolve_headdim(self, headdim, num_heads) -> int:
        """Explicit `headdim` > `num_heads` (d_inner // num_heads) > 64; it must divide d_inner."""
        if headdim is not None:
            source, value = "headdim", int(headdim)
        elif num_heads is not None:
            if num_heads < 1 or self.d_inner % num_heads:
                raise ConfigError(
                    f"mamba2: num_heads={num_heads} must divide d_inner = expand * dim = {self.d_inner}; "
                    "or set headdim instead"
                )
            source, value = "num_heads", self.d_inner // num_heads
        else:
            source, value = "the default headdim", 64
        if value < 1 or self.d_inner % value:
            raise ConfigError(
                f"mamba2: headdim={value} (from {source}) must divide d_inner = expand * dim = {self.d_inner}; "
                "set headdim or num_heads to fit"
            )
        return value

    def _ssm_params(self, conv_bias, A_init_range, dt_min, dt_max, dt_init_floor):
        """conv1d, dt_bias, A_log, D of one scan direction, initialised as in mamba-ssm."""
        conv1d = nn.Conv1d(
            self.conv_dim,
            self.conv_dim,
            self.d_conv,
            groups=self.conv_dim,
            padding=self.d_conv - 1,
            bias=conv_bias,
        )
        dt_bias = nn.Parameter(inverse_softplus_dt(self.nheads, dt_min, dt_max, dt_init_floor))
        A_log = nn.Parameter(torch.empty(self.nheads).uniform_(*A_init_range).log())
        D = nn.Parameter(torch.ones(self.nheads))
        dt_bias._no_weight_decay = A_log._no_weight_decay = D._no_weight_decay = True
        return conv1d, dt_bias, A_log, D

    def _branch(self, reverse: bool):
        if reverse:
            return self.conv1d_b, self.dt_bias_b, self.A_b_log, self.D_b
        return self.conv1d, self.dt_bias, self.A_log, self.D

    @classmethod
    def backend_for(cls, device: str) -> str:
        """The backend a default (`backend="auto"`) mixer uses for input on `device`."""
        return "mamba_ssm" if str(device).startswith("cuda") and mamba_ssm_available("mamba2") else "torch"

    # ------------------------------------------------------------------ forward

    def _split(self, xc, dt, dt_bias):
        """x `[.., H, P]`, B and C `[.., G, N]` and dt `[.., H]` (softplus'ed, accumulation dtype) from the
        conv output and the dt projection."""
        G, N = self.ngroups, self.d_state
        x, B, C = xc.split([self.d_inner, G * N, G * N], -1)
        ct = acc_dtype(xc.dtype)
        dt = F.softplus(dt.to(ct) + dt_bias.to(ct))
        return (
            x.unflatten(-1, (self.nheads, self.headdim)),
            B.unflatten(-1, (G, N)),
            C.unflatten(-1, (G, N)),
            dt,
        )

    def _scan(self, xBC, dt, mask, state, want_state, reverse=False):
        """One direction: conv, SSD. Returns `(y[B, T, d_inner], state | None)`."""
        conv1d, dt_bias, A_log, D = self._branch(reverse)
        state = state or {}
        xc, conv_state = causal_conv(xBC, conv1d.weight, conv1d.bias, mask, state.get("conv"), want_state)
        x, B, C, dt = self._split(xc, dt, dt_bias)
        if mask is not None:  # padded steps: dt = 0 leaves the state untouched
            dt = torch.where(mask[..., None], dt, torch.zeros((), dtype=dt.dtype, device=dt.device))
        A = -torch.exp(A_log.to(dt.dtype))
        kw = dict(D=D.to(dt.dtype), initial_state=state.get("ssm"), output_final_state=want_state)
        if self.backend == "mamba_ssm":
            y, ssm = _mamba_ssm_ssd(x, dt, A, B, C, chunk_size=self.chunk_size, **kw)
        elif self.mode == "recurrent":
            y, ssm = naive_ssd(x, dt, A, B, C, **kw)
        else:
            y, ssm = ssd(x, dt, A, B, C, chunk_size=self.chunk_size, **kw)
        return y.flatten(-2), ({"conv": conv_state, "ssm": ssm} if want_state else None)

    def forward(self, x, *, mask=None, state=None, return_state=False):
        """`x[B, T, dim]` -> `(y[B, T, dim], state | None)`; `state` continues a sequence (prefill continuation)."""
        mask = check_mask(mask, x)
        self.backend = pick_backend("mamba2", self.requested_backend, self.mode, x)
        z, xBC, dt = self.in_proj(x).split([self.d_inner, self.conv_dim, self.nheads], -1)
        if self.causal:
            y, new_state = self._scan(xBC, dt, mask, state, return_state)
        else:
            no_state_when_bidirectional("mamba2", state, return_state)
            back = self._scan(
                xBC.flip(1), dt.flip(1), None if mask is None else mask.flip(1), None, False, True
            )[0]
            y = self._scan(xBC, dt, mask, None, False)[0] + back.flip(1)
            new_state = None
        return self.out_proj(self.norm(y, z)), new_state

    # ------------------------------------------------------------------ recurrent form

    def step(self, x_t, state):
        """One token `x_t[B, 1, dim]` from `state` (None: empty) -> `(y_t[B, 1, dim], new state)`.

        Runs in torch on every backend (a few small ops per token)."""
        if not self.causal:
            raise step_needs_causal("mamba2")
        if state is None:
            state = self.init_state(x_t.shape[0], x_t.device, x_t.dtype)
        z, xBC, dt = self.in_proj(x_t[:, 0]).split([self.d_inner, self.conv_dim, self.nheads], -1)
        xc, conv_state = conv_step(xBC, self.conv1d.weight, self.conv1d.bias, state["conv"])
        x, B, C, dt = self._split(xc, dt, self.dt_bias)
        A = -torch.exp(self.A_log.to(dt.dtype))
        y, ssm = ssd_step(x, dt, A, B, C, self.D.to(dt.dtype), None, state["ssm"])
        return self.out_proj(self.norm(y.flatten(-2), z))[:, None], {"conv": conv_state, "ssm": ssm}

    def init_state(self, batch, device=None, dtype=None):
        """Zeros: `{"conv": [B, conv_dim, d_conv - 1], "ssm": [B, nheads, headdim, d_state]}`.

        The ssm state is float32 for half-precision dtypes."""
        if not self.causal:
            raise step_needs_causal("mamba2")
        device = device or self.out_proj.weight.device
        dtype = dtype or self.out_proj.weight.dtype
        return {
            "conv": torch.zeros(batch, self.conv_dim, self.d_conv - 1, device=device, dtype=dtype),
            "ssm": torch.zeros(
                batch, self.nheads, self.headdim, self.d_state, device=device, dtype=acc_dtype(dtype)
            ),
        }

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, d_inner={self.d_inner}, nheads={self.nheads}, headdim={self.headdim}, "
            f"ngroups={self.ngroups}, d_state={self.d_state}, d_conv={self.d_conv}, chunk_size={self.chunk_size}, "
            f"causal={self.causal}, mode={self.mode}, backend={self.requested_backend}"
        )


def _mamba_ssm_ssd(x, dt, A, B, C, *, chunk_size, D=None, initial_state=None, output_final_state=False):
    """mamba-ssm's Triton `mamba_chunk_scan_combined` (dt already softplus'ed and masked)."""
    from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined

    out = mamba_chunk_scan_combined(
        x, dt.to(x.dtype), A.float(), B, C, chunk_size, D=None if D is None else D.float(),
        initial_states=initial_state, return_final_states=output_final_state,
    )  # fmt: skip
    return out if output_final_state else (out, None)
