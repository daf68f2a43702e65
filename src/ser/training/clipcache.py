"""Private: the per-clip read → cache → decode → place → gate path shared by the hand-made
features (:mod:`ser.training.extraction`) and the encoder embeddings (:mod:`ser.frontends.encoders`). Not API.

The cache key is the sha256 of the file's bytes plus the caller's key parts (config hashes,
augmentation variant and settings) and :data:`GATE_VERSION`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ser.audio import AudioError, load_audio
from ser.training.augment import augment_waveform, augmentation_key
from ser.common import NO_SPEECH, cache_root
from ser.training.datasets import Record
from ser.frontends.features import FeatureConfig
from ser.frontends.windows import clip_unit

#: Part of every cache key: which speech gate decided that a clip has no speech.
GATE_VERSION = "silero-vad-6-min0.1"  # minimum speech 0.1 s (was 0.25 s before short words were measured)

Outcome = tuple[str, "np.ndarray | None", bool]  # (status "ok" or a reason, result, from cache)


@dataclass
class Extraction:
    """Model inputs of the clips that could be used, and why the others could not."""

    features: np.ndarray  # (n_ok, *input shape) float32
    records: list[Record]
    failures: list[tuple[Record, str]] = field(default_factory=list)
    cache_hits: int = 0


def default_cache_dir() -> Path:
    return cache_root() / "features"


def _cache_path(cache_dir: Path, key_parts: tuple[str, ...], content_hash: str) -> Path:
    subdir = hashlib.sha256("|".join(key_parts).encode()).hexdigest()[:16]
    return cache_dir / subdir / content_hash[:2] / f"{content_hash}.npy"


def resolve_cache_dir(cache_dir) -> Path | None:
    """``None``: the default cache; ``False``: no cache; else that folder."""
    if cache_dir is False:
        return None
    return default_cache_dir() if cache_dir is None else Path(cache_dir)


def read_clip(
    path: str, config: FeatureConfig, cache_dir: str | Path | None, key_parts: tuple[str, ...],
    variant: str | None,
) -> tuple[Outcome | None, np.ndarray | None, Path | None]:
    """Everything before the front end, shared by features and encoder embeddings: read and
    hash the file, look up the cache, decode, augment, place the clip in its window and gate
    that window with the VAD (:func:`ser.frontends.windows.clip_unit`, as prediction does).

    Returns ``(outcome, window, target)``: ``outcome`` when the clip is already settled (cache
    hit, unreadable, not audio, no speech); otherwise the placed ``window`` to process and the
    cache ``target`` to :func:`store` the result in.
    """
    key_parts = (*key_parts, GATE_VERSION, augmentation_key(variant) if variant else "")
    sample_rate = config.sample_rate
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return (f"cannot read file ({exc.strerror or exc})", None, False), None, None
    content_hash = hashlib.sha256(data).hexdigest()
    target = None
    if cache_dir is not None:
        target = _cache_path(Path(cache_dir), key_parts, content_hash)
        if target.exists():
            try:
                cached = np.load(target, allow_pickle=False)
                outcome = ("ok", cached, True) if cached.size else (NO_SPEECH, None, True)
                return outcome, None, None
            except (OSError, ValueError):
                pass  # a damaged entry is recomputed
    try:
        y = load_audio(data, sample_rate)
    except AudioError as exc:
        return (str(exc), None, False), None, None
    if variant:
        y = augment_waveform(y, sample_rate, variant, seed_key=content_hash)
    unit = clip_unit(y, config)
    if not unit.speech:
        store(target, None)
        return (NO_SPEECH, None, False), None, None
    return None, unit.window, target


def store(target: Path | None, result: np.ndarray | None) -> None:
    """Cache a result (``None``: the clip has no speech). Atomic: parallel runs never see
    half-written entries."""
    if target is None:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, result if result is not None else np.zeros(0, np.float32))
    os.replace(tmp, target)


def collect(records: Sequence[Record], outcomes: Sequence[Outcome], empty_shape) -> Extraction:
    """Stack the usable results in record order; the rest become failures with their reason."""
    ok_features, ok_records, failures, hits = [], [], [], 0
    for record, (status, result, hit) in zip(records, outcomes):
        hits += hit
        if result is not None:
            ok_features.append(result)
            ok_records.append(record)
        else:
            failures.append((record, status))
    stacked = (np.stack(ok_features).astype(np.float32, copy=False) if ok_features
               else np.zeros(empty_shape, np.float32))
    return Extraction(stacked, ok_records, failures, hits)
