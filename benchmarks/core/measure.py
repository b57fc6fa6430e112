"""How the benchmark measures: forward+backward time (interleaved medians) and peak resident memory.

Time: every implementation of a group is built in one process on the same data; after warm-up,
repetitions are interleaved round-robin (A, B, C, A, B, C, ...) so that load from other processes on
the shared CPU hits all of them alike, and the median per implementation is reported.

Memory: peak resident set size (RSS) of a forward+backward pass, in a child process of its own per
(implementation, T). In the child, large allocations are forced onto mmap (returned to the OS when
freed), free heap memory is trimmed, the current RSS is taken as the baseline, the kernel's RSS
high-water mark is reset (`/proc/self/clear_refs`, Linux), one forward+backward runs, and the peak
is `VmHWM - baseline`: the memory the pass itself needed (activations, autograd buffers, gradients),
excluding the interpreter, libraries, parameters and inputs. tracemalloc does not see torch's
allocations, which is why RSS is used.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing as mp
import os
import resource
import statistics
import time
import traceback
from collections.abc import Callable

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def configure_malloc() -> None:
    """Fixed glibc thresholds: blocks >= 128 KiB are mmapped (freed straight back to the OS)."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, 128 * 1024)
        libc.mallopt(M_TRIM_THRESHOLD, 256 * 1024)


def trim_malloc() -> None:
    """Collect garbage and return free heap memory to the OS, so the baseline RSS holds live memory only."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def reset_peak() -> bool:
    """Reset the kernel's RSS high-water mark (VmHWM) of this process; False where not supported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def limit_memory(gib: float | None) -> None:
    """Cap this process's data segment (heap + private mappings) at its current size + `gib` GiB, so a
    case that would exhaust the machine fails with an allocation error instead of the OOM killer."""
    data = _status_kib("VmData")
    if gib is None or data is None:
        return
    cap = data * 1024 + int(gib * 2**30)
    try:
        resource.setrlimit(resource.RLIMIT_DATA, (cap, resource.getrlimit(resource.RLIMIT_DATA)[1]))
    except (ValueError, OSError):
        pass


def peak_memory_mib(run: Callable[[], object]) -> tuple[float, str]:
    """Peak RSS above the baseline while `run()` executes, in MiB, and the method used."""
    trim_malloc()
    base = _status_kib("VmRSS")
    if reset_peak() and base is not None:
        run()
        return (_status_kib("VmHWM") - base) / 1024, "VmHWM-VmRSS (clear_refs)"
    # no clear_refs: the lifetime high-water mark, which setup may already have raised (a lower bound)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024, "ru_maxrss delta (lower bound)"


def time_interleaved(
    runs: dict[str, Callable[[], object]],
    reps: int,
    warmup: int = 0,
    budget_s: float = 60.0,
    prior: dict[str, float] | None = None,
):
    """Median seconds of each callable, repetitions interleaved round-robin.

    Each callable runs `warmup` untimed times first (callers that already ran each once pass 0);
    the first timed round sets the number of repetitions: callables slower than `budget_s / reps`
    get fewer (at least 3, or `reps` if smaller), so a slow reference does not dominate the benchmark's run time.
    `prior` holds already measured first runs that count as samples (used for runs of seconds,
    where one-time start-up costs are negligible). Returns `{name: {"median_s", "min_s", "reps"}}`.
    """
    for fn in runs.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for name, t in (prior or {}).items():
        if name in samples:
            samples[name].append(t)

    def timed(name):
        t0 = time.perf_counter()
        runs[name]()
        samples[name].append(time.perf_counter() - t0)

    for name in runs:
        if not samples[name]:
            timed(name)
    n_reps = {name: max(min(3, reps), min(reps, int(budget_s / max(samples[name][0], 1e-9)))) for name in runs}
    for _ in range(1, max(n_reps.values(), default=0)):
        for name in runs:
            if len(samples[name]) < n_reps[name]:
                timed(name)
    return {
        name: {"median_s": statistics.median(s), "min_s": min(s), "reps": len(s)} for name, s in samples.items()
    }


def _die_with_parent() -> None:
    """Linux: have the kernel kill this child when the parent process dies (PR_SET_PDEATHSIG)."""
    libc = _libc()
    if libc is not None:
        libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL


def _child(conn, fn, args, mem_limit_gib):
    try:
        _die_with_parent()
        configure_malloc()
        limit_memory(mem_limit_gib)
        conn.send(("ok", fn(*args)))
    except BaseException as e:  # report anything, including MemoryError, to the parent
        conn.send(("error", f"{type(e).__name__}: {e}".strip()[:500], traceback.format_exc()[-2000:]))
    finally:
        conn.close()


def in_child(fn: Callable, *args, timeout_s: float = 900.0, mem_limit_gib: float | None = 6.0):
    """Run `fn(*args)` in a forked child process and return its result.

    Raises RuntimeError with the child's error, or with its exit code when it died (e.g. killed
    for memory), or on timeout. The parent must not have run torch ops (fork + OpenMP).
    """
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args, mem_limit_gib), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(timeout_s):
            raise RuntimeError(f"timed out after {timeout_s:.0f} s")
        msg = parent.recv()
    except EOFError:
        proc.join(5)
        raise RuntimeError(f"child process died (exit code {proc.exitcode}; -9 is usually out of memory)") from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        parent.close()
    if msg[0] == "error":
        raise RuntimeError(msg[1])
    return msg[1]


def cpu_info() -> dict:
    """Machine facts that go into the results file."""
    import platform

    import torch

    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "cpu": model or platform.processor(),
        "cpus_visible": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_avg_at_start": os.getloadavg(),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", ""),
    }


def state_bytes(state) -> dict:
    """Bytes of the tensors in a mixer's state (recursively through dicts, lists and tuples).

    `bytes`: sum of `numel * element_size` (the state's own size). `retained_bytes`: sum over the
    distinct storages those tensors keep alive, which is larger when a tensor is a view into a bigger
    buffer (e.g. the last columns of a sequence-length activation). `tensors`: shape and dtype of each."""
    import torch

    found: list[torch.Tensor] = []

    def walk(s):
        if isinstance(s, torch.Tensor):
            found.append(s)
        elif isinstance(s, dict):
            for v in s.values():
                walk(v)
        elif isinstance(s, (list, tuple)):
            for v in s:
                walk(v)

    walk(state)
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in found}
    return {
        "bytes": sum(t.numel() * t.element_size() for t in found),
        "retained_bytes": sum(storages.values()),
        "tensors": [[list(t.shape), str(t.dtype).replace("torch.", "")] for t in found],
    }
