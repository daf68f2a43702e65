"""What the benchmarks share: where the development corpora are, a free loopback port."""

from __future__ import annotations

import os
import socket
from pathlib import Path

#: ``../shared/corpora`` beside the repository (``SER_CORPORA`` overrides).
CORPORA = Path(os.environ.get("SER_CORPORA", Path(__file__).resolve().parents[2] / "shared" / "corpora"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine_baseline() -> str:
    """Two figures that say how fast this machine is, printed beside a benchmark's own so a
    reader can scale them to theirs: a cold ``import numpy`` in a new interpreter (median of 3)
    and one 1,024² float32 matrix product on one thread (median of 20)."""
    import subprocess
    import sys
    import time

    import numpy as np
    from threadpoolctl import threadpool_limits

    starts = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import numpy"], check=True)
        starts.append(time.perf_counter() - t)
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    products = []
    with threadpool_limits(1):
        for _ in range(20):
            t = time.perf_counter()
            a @ a
            products.append(time.perf_counter() - t)
    return (f"machine baseline: python -c 'import numpy' {1000 * sorted(starts)[1]:.0f} ms, "
            f"1024x1024 float32 matmul (1 thread) {1000 * sorted(products)[10]:.1f} ms, "
            f"{os.cpu_count()} CPUs")
