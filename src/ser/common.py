"""What every stage shares, defined once: the labels, the version, the no-speech marker, the
error family, the cache folder, file hashes, softmax. It imports nothing of ser's: every module
may import it, and the package has no import circles (a test reads the imports)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

__version__ = "0.1.0"

#: The eight classes, in the order of every model's outputs.
EMOTIONS = ("angry", "calm", "disgust", "fear", "happy", "neutral", "sad", "surprise")

#: The emotion of input without speech, and the reason a training clip was skipped for it.
NO_SPEECH = "no_speech"


class SerError(Exception):
    """An expected failure (bad audio, a damaged bundle, a wrong setting): the command line
    prints it as one line; anything else is a bug and keeps its traceback."""


class ConfigError(SerError, ValueError):
    """Settings that cannot work together, found before any work starts."""


class EncoderUnavailableError(SerError, RuntimeError):
    """A pretrained encoder's packages are missing or its model file fails verification."""


def cache_root() -> Path:
    """``$SER_CACHE_DIR``, else ``$XDG_CACHE_HOME/ser`` (``~/.cache/ser``): features in
    ``features/``, the joined Whisper weights in ``whisper-base/``."""
    base = os.environ.get("SER_CACHE_DIR")
    if base:
        return Path(base)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ser"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
