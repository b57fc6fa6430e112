"""`polyformer doctor`: versions, devices, and the backend each registered mixer uses on CPU and on CUDA.

A mixer class may define `backend_for(device: str) -> str` (a classmethod) to say which backend it
would pick without building one; otherwise the doctor builds a tiny instance, runs one forward on
that device and reads its `.backend`.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import platform
import sys
from importlib import metadata

import torch

ACCELERATED = ("mamba_ssm", "causal_conv1d", "fla", "triton")
VERSIONED = {
    "torch": "torch",
    "lightning": "lightning",
    "hydra": "hydra-core",
    "timm": "timm",
    "torchaudio": "torchaudio",
    "gymnasium": "gymnasium",
    "xarray": "xarray",
    "torch_geometric": "torch-geometric",
}


@functools.cache
def package_status(module: str) -> str:
    """"imports", "broken: <error>" or "missing"; on a machine without CUDA, where these kernels cannot run
    (and importing fla alone takes tens of seconds), an installed package is reported as "installed"."""
    if importlib.util.find_spec(module) is None:
        return "missing"
    if not torch.cuda.is_available():
        return "installed"
    try:
        importlib.import_module(module)
    except Exception as err:  # ImportError, or e.g. a triton built for another CUDA
        return f"broken: {type(err).__name__}: {err}"
    return "imports"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment_report() -> dict:
    """Versions of python and the main libraries, devices, threads and accelerated packages."""
    from polyformer.core import __version__

    cuda = torch.cuda.is_available()
    devices = ["cpu"]
    if cuda:
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            devices.append(f"cuda:{i} {p.name} ({p.total_memory / 2**30:.0f} GiB, sm_{p.major}{p.minor})")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return {
        "polyformer": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        **{name: _version(dist) for name, dist in VERSIONED.items()},
        "cuda_available": cuda,
        "cuda_version": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "devices": devices,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "accelerated": {name: package_status(name) for name in ACCELERATED},
    }


def backend_on(name: str, device: str) -> str:
    """The backend the mixer `name` uses for input on `device` ("cpu" or "cuda")."""
    from polyformer.core.mixers import MIXERS, build_mixer

    hook = getattr(MIXERS.get(name), "backend_for", None)
    if callable(hook):
        return str(hook(device))
    mixer = build_mixer(name, dim=64, hints={"num_heads": 2}).to(device).eval()
    with torch.no_grad():
        mixer(torch.randn(1, 8, 64, device=device))
    return str(mixer.backend)


def _has_hook(name: str) -> bool:
    from polyformer.core.mixers import MIXERS

    return callable(getattr(MIXERS.get(name), "backend_for", None))


def _sdpa_kernel(device: str) -> str:
    from polyformer.core.ops.attention import sdpa_backend

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    q = torch.randn(1, 8, 2, 64, device=device, dtype=dtype)
    return sdpa_backend(q, q, q, causal=True)


def _probe(fn, *args) -> str:
    try:
        return fn(*args)
    except Exception as err:  # a diagnostic tool reports failures instead of dying on them
        return f"error: {type(err).__name__}: {err}"


def backend_report() -> list[dict]:
    """One row per registered mixer: accelerated packages, CUDA availability, backend on CPU and on CUDA."""
    from polyformer.core.mixers import list_mixers

    cuda = torch.cuda.is_available()
    accelerated = {name: package_status(name) for name in ACCELERATED}
    rows = []
    for name in list_mixers():
        row = {
            "mixer": name,
            "cuda_available": cuda,
            "accelerated": accelerated,
            "cpu": _probe(backend_on, name, "cpu"),
            "cuda": _probe(backend_on, name, "cuda") if cuda or _has_hook(name) else "n/a (no CUDA device)",
        }
        if name == "attention":
            row["sdpa_kernel"] = {"cpu": _probe(_sdpa_kernel, "cpu"), "cuda": _probe(_sdpa_kernel, "cuda") if cuda else None}
        rows.append(row)
    return rows


def print_doctor() -> None:
    """Print the environment and the per-mixer backend table."""
    env = environment_report()
    accelerated = env.pop("accelerated")
    width = max(len(k) for k in env)
    for key, value in env.items():
        value = ", ".join(value) if isinstance(value, list) else value
        print(f"{key:<{width}}  {value if value is not None else '-'}")
    print("accelerated packages: " + ", ".join(f"{k} {v}" for k, v in accelerated.items()))
    print()
    rows = backend_report()
    name_w = max([5] + [len(r["mixer"]) for r in rows])
    cpu_w = max([3] + [len(r["cpu"]) for r in rows])
    print(f"{'mixer':<{name_w}}  {'cpu':<{cpu_w}}  cuda")
    for r in rows:
        extra = ""
        if "sdpa_kernel" in r:
            extra = f"   (SDPA kernel: cpu {r['sdpa_kernel']['cpu']}, cuda {r['sdpa_kernel']['cuda'] or '-'})"
        print(f"{r['mixer']:<{name_w}}  {r['cpu']:<{cpu_w}}  {r['cuda']}{extra}")
