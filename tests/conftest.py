from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"


def tone(duration_s: float = 1.0, sr: int = 16_000, freq: float = 220.0, amp: float = 0.3) -> np.ndarray:
    """A harmonic 'voiced' test signal with a slow amplitude envelope."""
    t = np.arange(int(duration_s * sr)) / sr
    y = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 6))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * np.minimum(t / max(duration_s, 1e-9), 1)))
    return (amp * y * envelope / np.abs(y).max()).astype(np.float32)


@pytest.fixture
def corpora() -> Path:
    if not CORPORA.is_dir():
        pytest.skip("../shared/corpora is not available")
    return CORPORA
