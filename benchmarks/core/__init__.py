"""Benchmarks of the core token mixers and their ops: `python -m benchmarks.core.mixers` (see README.md).

On a shared CPU, OpenMP's default active spin-waiting makes 2-thread torch runs wait on descheduled
threads (a T=64 attention forward+backward measured 80 ms instead of 0.7 ms at load 9 on 2 cores),
so the benchmark asks for passive waiting unless OMP_WAIT_POLICY is already set. This must happen
before torch is imported, hence here.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
