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
