"""What every stage shares, defined once: the no-speech marker, the error family, the cache
folder, softmax."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: The emotion of input without speech, and the reason a training clip was skipped for it.
NO_SPEECH = "no_speech"


class SerError(Exception):
    """An expected failure (bad audio, a damaged bundle, a wrong setting): the command line
    prints it as one line; anything else is a bug and keeps its traceback."""


class ConfigError(SerError, ValueError):
    """Settings that cannot work together, found before any work starts."""


def cache_root() -> Path:
    """``$SER_CACHE_DIR``, else ``$XDG_CACHE_HOME/ser`` (``~/.cache/ser``): features in
    ``features/``, the joined Whisper weights in ``whisper-base/``."""
    base = os.environ.get("SER_CACHE_DIR")
    if base:
        return Path(base)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ser"


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
