"""The Mamba token mixer (Gu & Dao 2023): the layer of mamba-ssm's `Mamba`, in PyTorch.

    x, z = in_proj(u)                                  # [B, T, d_inner] each, d_inner = expand * dim
    x = silu(causal depthwise conv1d(x))              # kernel d_conv
    dt, B, C = x_proj(x)                              # dt_rank, d_state, d_state
    delta = softplus(dt_proj(dt))                     # [B, T, d_inner]
    y = selective_scan(x, delta, A = -exp(A_log), B, C, D)
    out = out_proj(y * silu(z))

Parameter names and initialisation follow mamba-ssm (`in_proj`, `conv1d`, `x_proj`, `dt_proj`,
`A_log`, `D`, `out_proj`; dt bias = inverse softplus of log-uniform dt in [dt_min, dt_max]; S4D-real
`A_log = log(1..d_state)`), so a mamba-ssm `Mamba` state dict loads into the causal form.

State: `{"conv": [B, d_inner, d_conv - 1], "ssm": [B, d_inner, d_state]}` (the ssm state in float32
for half-precision models). Padding (`mask[B, T]`, True at valid tokens, right padding): padded
inputs to the conv are zeroed and padded steps get `delta = 0`, a no-op for the scan, so valid
outputs and the returned state equal those of the sequence run alone.

`causal=False` is the bidirectional form of Vision Mamba (Zhu et al. 2024): a second scan over the
time-reversed sequence with its own conv, x_proj, dt_proj, A and D (`*_b` parameters), sharing
in_proj / out_proj and the gate; the two scans are summed.

Backends: "torch" (always), "mamba_ssm" (mamba-ssm's CUDA selective-scan kernel for the scan; the
conv stays a torch depthwise conv), "cpu" (polyformer's compiled CPU selective scan, built on first use:
about 4-10x faster forward+backward than "torch" on CPU; Mamba only), "auto" = mamba_ssm when it imports
and the input is on CUDA, else torch (auto never compiles anything). `self.backend` holds the backend of the last forward.
"""

from __future__ import annotations

import functools
import importlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from polyformer.core.errors import ConfigError, DataError
from polyformer.core.mixers.base import TokenMixer, check_mode
from polyformer.core.mixers.registry import register_mixer
from polyformer.core.ops.selective_scan import naive_selective_scan, selective_scan, selective_scan_step
from polyformer.core.ops.selective_scan_cpu import load_cpu_kernel, selective_scan_cpu

BACKENDS = ("auto", "torch", "mamba_ssm", "cpu")
CUDA_INSTALL_HINT = "install the GPU extras with: pip install 'polyformer[cuda]'"


# ---------------------------------------------------------------------------------------------- helpers
# (shared with mamba2.py)


# Which mamba-ssm module each mixer needs: Mamba's scan is a compiled CUDA extension, Mamba-2's SSD is
# Triton only, so a mamba-ssm installed without its CUDA build (MAMBA_SKIP_CUDA_BUILD) still serves Mamba-2.
KERNEL_MODULES = {
    "mamba": "mamba_ssm.ops.selective_scan_interface",
    "mamba2": "mamba_ssm.ops.triton.ssd_combined",
}


@functools.cache
def mamba_ssm_available(name: str = "mamba") -> bool:
    """True when the mamba-ssm kernel of mixer `name` imports (a broken CUDA / triton install counts as absent)."""
    try:
        importlib.import_module(KERNEL_MODULES[name])
    except Exception:
        return False
    return True


def check_backend(name: str, backend: str, mode: str) -> str:
    """Validate a mixer's `backend` at construction: `mamba_ssm` must import and cannot run `recurrent`."""
    if backend not in BACKENDS:
        raise ConfigError(f"{name}: backend must be one of {BACKENDS}, got '{backend}'")
    if backend == "mamba_ssm" and not mamba_ssm_available(name):
        raise ConfigError(
            f"{name}: backend='mamba_ssm' needs the mamba-ssm package, which does not import; {CUDA_INSTALL_HINT}"
        )
    if backend in ("mamba_ssm", "cpu") and mode == "recurrent":
        raise ConfigError(
            f"{name}: mode='recurrent' is the torch reference loop; use backend='torch' or 'auto' with it"
        )
    if backend == "cpu":
        if name != "mamba":
            raise ConfigError(f"{name}: backend='cpu' (the compiled CPU selective scan) exists for 'mamba' only")
        load_cpu_kernel()  # builds once per machine; a ConfigError says why it cannot
    return backend


def pick_backend(name: str, requested: str, mode: str, x: torch.Tensor) -> str:
    """The backend used for input `x` (never a silent switch: an explicit `mamba_ssm` on CPU input raises)."""
    if requested == "torch" or mode == "recurrent":
        return "torch"
    if requested == "mamba_ssm":
        if not x.is_cuda:
            raise ConfigError(
                f"{name}: backend='mamba_ssm' runs CUDA kernels, but the input is on {x.device}; "
                "use backend='torch' or 'auto'"
            )
        return "mamba_ssm"
    if requested == "cpu":
        if x.device.type != "cpu":
            raise ConfigError(
                f"{name}: backend='cpu' is the compiled CPU kernel, but the input is on {x.device}; use backend='auto'"
            )
        return "cpu"
    return "mamba_ssm" if (x.is_cuda and mamba_ssm_available(name)) else "torch"


def check_mask(mask: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
    """`mask[B, T]` as bool (True = valid token)."""
    if mask is None:
        return None
    if tuple(mask.shape) != tuple(x.shape[:2]):
        raise DataError(
            f"mask must be [B, T] = {list(x.shape[:2])} (True at valid tokens), got {tuple(mask.shape)}"
        )
    return mask.to(torch.bool)


def causal_conv(x, weight, bias, mask=None, cache=None, want_cache=False):
    """SiLU(depthwise causal conv) of `x[B, T, C]` with `weight[C, 1, K]`; `cache[B, C, K-1]` holds the
    inputs before `x` (zeros when None). Returns `(y[B, T, C], new cache | None)`.

    Padded inputs (mask False) are zeroed; with right padding the new cache is the window that ends at
    each sequence's last valid token. Computed as K shifted multiply-adds in the `[B, T, C]` layout
    (faster on CPU than a grouped conv1d, and the same for every dtype).
    """
    Bsz, T, Ch = x.shape
    K = weight.shape[-1]
    if mask is not None:
        x = torch.where(mask[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))
    prefix = x.new_zeros(Bsz, K - 1, Ch) if cache is None else cache.to(x.dtype).transpose(1, 2)
    xp = torch.cat([prefix, x], 1)  # [B, K - 1 + T, C]
    w = weight[:, 0].to(x.dtype).t()  # [K, C]
    y = xp[:, :T] * w[0] if bias is None else torch.addcmul(bias.to(x.dtype), xp[:, :T], w[0])
    for k in range(1, K):
        y = y.addcmul_(xp[:, k : k + T], w[k])
    y = F.silu(y)
    if not want_cache:
        return y, None
    end = torch.full((Bsz,), T, device=x.device) if mask is None else mask.long().sum(1)
    idx = end[:, None] + torch.arange(K - 1, device=x.device)  # rows end .. end + K - 2 of xp
    return y, xp.gather(1, idx[:, :, None].expand(Bsz, K - 1, Ch)).transpose(1, 2)


def conv_step(x_t, weight, bias, cache):
    """One step of `causal_conv`: `x_t[B, C]`, `cache[B, C, K-1]` -> `(y_t[B, C], new cache)`."""
    window = torch.cat([cache.to(x_t.dtype), x_t[:, :, None]], -1)  # [B, C, K]
    y = (window * weight[:, 0].to(x_t.dtype)).sum(-1)
    if bias is not None:
        y = y + bias.to(x_t.dtype)
    return F.silu(y), window[:, :, 1:]


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half-precision models, else the model's dtype: where the scan state lives."""
    return torch.float32 if dtype in (torch.bfloat16, torch.float16) else dtype


def no_state_when_bidirectional(name: str, state, return_state: bool) -> None:
    if state is not None or return_state:
        raise ConfigError(
            f"mixer '{name}' was built with causal=False (bidirectional): it has no recurrent state, so "
            "state=/return_state=True are not available; build it with causal=True for streaming or generation"
        )


def step_needs_causal(name: str) -> ConfigError:
    return ConfigError(
        f"mixer '{name}' was built with causal=False (bidirectional): every output depends on future tokens, "
        "so it cannot be run step by step; build it with causal=True to use step()"
    )


def inverse_softplus_dt(n: int, dt_min: float, dt_max: float, dt_init_floor: float) -> torch.Tensor:
    """mamba-ssm's dt bias init: dt log-uniform in [dt_min, dt_max] (floored), stored as softplus^-1(dt)."""
    dt = torch.exp(torch.rand(n) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
    dt = dt.clamp(min=dt_init_floor)
    return dt + torch.log(-torch.expm1(-dt))


# ---------------------------------------------------------------------------------------------- the mixer


@register_mixer("mamba")
class MambaMixer(TokenMixer):
    """Mamba (S6) mixer; `dt_rank="auto"` is `ceil(dim / 16)`; `chunk_size` is the scan's chunk length
    (None: chosen from T by `selective_scan`); `mode` "chunk"/"parallel"/"auto" run the chunked scan,
    "recurrent" the reference loop."""

    def __init__(
        self,
        dim: int,
        *,
        causal: bool = True,
        mode: str = "auto",
        backend: str = "auto",
        d_state: int = 16,
        d_conv: int = 4,
        expand: float = 2,
        dt_rank: int | str = "auto",
        dt_min: float = 1e-3,
        dt_max: float = 0.1,
        dt_init: str = "random",
        dt_scale: float = 1.0,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
        chunk_size: int | None = None,
    ):
        super().__init__()
        self.causal, self.mode = causal, check_mode(mode)
        self.requested_backend = check_backend("mamba", backend, mode)
        self.backend = "mamba_ssm" if backend == "mamba_ssm" else "torch"
        if d_conv < 1 or d_state < 1:
            raise ConfigError(f"mamba: d_conv and d_state must be >= 1, got {d_conv} and {d_state}")
        if dt_init not in ("random", "constant"):
            raise ConfigError(f"mamba: dt_init must be 'random' or 'constant', got '{dt_init}'")
        self.dim, self.d_state, self.d_conv, self.chunk_size = dim, d_state, d_conv, chunk_size
        self.d_inner = int(expand * dim)
        self.dt_rank = math.ceil(dim / 16) if dt_rank == "auto" else int(dt_rank)
        init = dict(
            dt_min=dt_min, dt_max=dt_max, dt_init=dt_init, dt_scale=dt_scale, dt_init_floor=dt_init_floor
        )

        self.in_proj = nn.Linear(dim, 2 * self.d_inner, bias=bias)
        self.conv1d, self.x_proj, self.dt_proj, self.A_log, self.D = self._ssm_params(conv_bias, **init)
        if not causal:  # the time-reversed scan's own parameters (Vision Mamba's "v2" bidirectional layer)
            self.conv1d_b, self.x_proj_b, self.dt_proj_b, self.A_b_log, self.D_b = self._ssm_params(
                conv_bias, **init
            )
        self.out_proj = nn.Linear(self.d_inner, dim, bias=bias)

    def _ssm_params(self, conv_bias, dt_min, dt_max, dt_init, dt_scale, dt_init_floor):
        """conv1d, x_proj, dt_proj, A_log, D of one scan direction, initialised as in mamba-ssm."""
        d_inner, N = self.d_inner, self.d_state
        conv1d = nn.Conv1d(
            d_inner, d_inner, self.d_conv, groups=d_inner, padding=self.d_conv - 1, bias=conv_bias
        )
        x_proj = nn.Linear(d_inner, self.dt_rank + 2 * N, bias=False)
        dt_proj = nn.Linear(self.dt_rank, d_inner, bias=True)
        std = self.dt_rank**-0.5 * dt_scale
        with torch.no_grad():
            if dt_init == "constant":
                dt_proj.weight.fill_(std)
            else:
                dt_proj.weight.uniform_(-std, std)
            dt_proj.bias.copy_(inverse_softplus_dt(d_inner, dt_min, dt_max, dt_init_floor))
        dt_proj.bias._no_reinit = True
        A_log = nn.Parameter(torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(d_inner, 1))
        D = nn.Parameter(torch.ones(d_inner))
        A_log._no_weight_decay = D._no_weight_decay = True
        return conv1d, x_proj, dt_proj, A_log, D

    def _branch(self, reverse: bool):
        if reverse:
            return self.conv1d_b, self.x_proj_b, self.dt_proj_b, self.A_b_log, self.D_b
        return self.conv1d, self.x_proj, self.dt_proj, self.A_log, self.D

    @classmethod
    def backend_for(cls, device: str) -> str:
        """The backend a default (`backend="auto"`) mixer uses for input on `device`."""
        return "mamba_ssm" if str(device).startswith("cuda") and mamba_ssm_available("mamba") else "torch"

    # ------------------------------------------------------------------ forward

    def _dt_B_C(self, xc, x_proj, dt_proj):
        """delta `[.., d_inner]` (softplus'ed, accumulation dtype) and B, C `[.., d_state]` from the conv output."""
        dt, B, C = x_proj(xc).split([self.dt_rank, self.d_state, self.d_state], -1)
        ct = acc_dtype(xc.dtype)
        delta = F.softplus(F.linear(dt, dt_proj.weight).to(ct) + dt_proj.bias.to(ct))
        return delta, B, C

    def _scan(self, xs, mask, state, want_state, reverse=False):
        """One direction: conv, projections, selective scan. Returns `(y[B, T, d_inner], state | None)`."""
        conv1d, x_proj, dt_proj, A_log, D = self._branch(reverse)
        state = state or {}
        xc, conv_state = causal_conv(xs, conv1d.weight, conv1d.bias, mask, state.get("conv"), want_state)
        delta, B, C = self._dt_B_C(xc, x_proj, dt_proj)
        if mask is not None:  # padded steps: delta = 0 leaves the state untouched
            delta = torch.where(
                mask[..., None], delta, torch.zeros((), dtype=delta.dtype, device=delta.device)
            )
        A = -torch.exp(A_log.to(delta.dtype))
        args = (xc, delta, A, B, C, D.to(delta.dtype))
        kw = dict(initial_state=state.get("ssm"), output_final_state=want_state)
        if self.backend == "mamba_ssm":
            y, ssm = _mamba_ssm_scan(*args, **kw)
        elif self.backend == "cpu":
            y, ssm = selective_scan_cpu(*args, **kw)
        elif self.mode == "recurrent":
            y, ssm = naive_selective_scan(*args, **kw)
        else:
            y, ssm = selective_scan(*args, **kw, chunk_size=self.chunk_size)
        return y, ({"conv": conv_state, "ssm": ssm} if want_state else None)

    def forward(self, x, *, mask=None, state=None, return_state=False):
        """`x[B, T, dim]` -> `(y[B, T, dim], state | None)`; `state` continues a sequence (prefill continuation)."""
        mask = check_mask(mask, x)
        self.backend = pick_backend("mamba", self.requested_backend, self.mode, x)
        xs, z = self.in_proj(x).chunk(2, -1)
        if self.causal:
            y, new_state = self._scan(xs, mask, state, return_state)
        else:
            no_state_when_bidirectional("mamba", state, return_state)
            back_mask = None if mask is None else mask.flip(1)
            back, _ = self._scan(xs.flip(1), back_mask, None, False, reverse=True)
            y = self._scan(xs, mask, None, False)[0] + back.flip(1)
            new_state = None
        return self.out_proj(y * F.silu(z)), new_state

    # ------------------------------------------------------------------ recurrent form

    def step(self, x_t, state):
        """One token `x_t[B, 1, dim]` from `state` (None: empty) -> `(y_t[B, 1, dim], new state)`.

        Runs in torch on every backend (a few small ops per token)."""
        if not self.causal:
            raise step_needs_causal("mamba")
        if state is None:
            state = self.init_state(x_t.shape[0], x_t.device, x_t.dtype)
        xs, z = self.in_proj(x_t[:, 0]).chunk(2, -1)
        xc, conv_state = conv_step(xs, self.conv1d.weight, self.conv1d.bias, state["conv"])
        delta, B, C = self._dt_B_C(xc, self.x_proj, self.dt_proj)
        A = -torch.exp(self.A_log.to(delta.dtype))
        y, ssm = selective_scan_step(xc, delta, A, B, C, self.D.to(delta.dtype), None, state["ssm"])
        return self.out_proj(y * F.silu(z))[:, None], {"conv": conv_state, "ssm": ssm}

    def init_state(self, batch, device=None, dtype=None):
        """Zeros: `{"conv": [B, d_inner, d_conv - 1], "ssm": [B, d_inner, d_state]}`.

        The ssm state is float32 for half-precision dtypes."""
        if not self.causal:
            raise step_needs_causal("mamba")
        device = device or self.out_proj.weight.device
        dtype = dtype or self.out_proj.weight.dtype
        return {
            "conv": torch.zeros(batch, self.d_inner, self.d_conv - 1, device=device, dtype=dtype),
            "ssm": torch.zeros(batch, self.d_inner, self.d_state, device=device, dtype=acc_dtype(dtype)),
        }

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, d_inner={self.d_inner}, d_state={self.d_state}, d_conv={self.d_conv}, "
            f"dt_rank={self.dt_rank}, causal={self.causal}, mode={self.mode}, backend={self.requested_backend}"
        )


def _mamba_ssm_scan(u, delta, A, B, C, D, *, initial_state=None, output_final_state=False):
    """mamba-ssm's CUDA `selective_scan_fn` with our batch-first layout (delta already softplus'ed and masked).

    The kernel has no initial state; by linearity its contribution is added here:
    `y_t += C_t . (exp(A cumsum(delta)_t) * h0)` and `final += exp(A sum(delta)) * h0`.
    """
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

    out = selective_scan_fn(
        u.transpose(1, 2), delta.to(u.dtype).transpose(1, 2), A.float(), B.transpose(1, 2), C.transpose(1, 2),
        D.float(), z=None, delta_bias=None, delta_softplus=False, return_last_state=output_final_state,
    )  # fmt: skip
    y, last = out if output_final_state else (out, None)
    y, last = y.transpose(1, 2), (None if last is None else last.float())
    if initial_state is not None:
        h0 = initial_state.float()
        cum = delta.float().cumsum(1)  # [B, T, d]
        decay = torch.exp(cum[..., None] * A.float())  # [B, T, d, N]
        y = y + torch.einsum("btdn,bdn,btn->btd", decay, h0, C.float()).to(y.dtype)
        if last is not None:
            last = last + torch.exp(cum[:, -1, :, None] * A.float()) * h0
    return y, last
