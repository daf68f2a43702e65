"""Corpus extraction: what each clip becomes as model input, with a progress bar and an
on-disk cache — hand-made features in parallel worker processes (:func:`extract`), or pooled
encoder states in batches (:func:`extract_embeddings`; the encoder is called from here, it
knows nothing of corpora or caches).

The cache key is the sha256 of the file's bytes, the feature config hash, the augmentation
variant and settings and the speech gate's version (see :mod:`ser.training.clipcache`), so renaming a
file keeps its cache entry, while a changed config or file recomputes.
Entries are plain ``.npy`` arrays (loaded with ``allow_pickle=False``).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from ser.training.clipcache import (  # noqa: F401  (Extraction and the cache folder are part of the API)
    Extraction, Outcome, collect, default_cache_dir, read_clip, resolve_cache_dir, store,
)
from ser.training.datasets import Record
from ser.frontends.encoders import SAMPLE_RATE, EncoderConfig, load_encoder
from ser.frontends.features import FeatureConfig, features_from_waveform
from ser.frontends.registry import get_frontend


def _single_threaded() -> None:
    # The matrices here are small: BLAS threads only fight the worker processes for cores
    # (measured: 2 workers x 2 threads ran 3x slower than 2 workers x 1 thread).
    threadpool_limits(1)


def _extract_one(args: tuple[str, str, str | None, str | None]) -> Outcome:
    """Worker: the hand-made features of one clip."""
    path, config_json, cache_dir, variant = args
    config = FeatureConfig.from_json(config_json)
    outcome, window, target = read_clip(path, config, cache_dir, (config.hash(), variant or ""),
                                        variant)
    if outcome is not None:
        return outcome
    result = features_from_waveform(window, config)
    store(target, result)
    return "ok", result, False


def extract(
    records: Sequence[Record],
    config: FeatureConfig,
    *,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    variant: str | None = None,
    progress: bool = True,
    desc: str = "features",
) -> Extraction:
    """Features for every record, in order; unusable clips are reported in ``failures``.

    ``cache_dir=None`` uses :func:`default_cache_dir`; pass ``False`` to disable caching.
    ``variant`` names an augmentation (see :mod:`ser.training.augment`) applied before the features.
    """
    from tqdm.auto import tqdm

    cache = resolve_cache_dir(cache_dir)
    workers = workers or min(os.cpu_count() or 1, 8)
    jobs = [(r.path, config.to_json(), cache and str(cache), variant) for r in records]
    bar = tqdm(total=len(jobs), desc=desc, unit="clip", disable=not progress, leave=False)
    outputs = []
    if workers == 1 or len(jobs) < 32:
        with threadpool_limits(1):
            for job in jobs:
                outputs.append(_extract_one(job))
                bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=_single_threaded) as pool:
            for out in pool.map(_extract_one, jobs, chunksize=16):
                outputs.append(out)
                bar.update()
    bar.close()
    return collect(records, outputs, (0, config.n_frames, config.n_features))


def extract_embeddings(
    records,
    feature_config,
    encoder_config: EncoderConfig = EncoderConfig(),
    *,
    cache_dir=None,
    variant: str | None = None,
    progress: bool = True,
    batch_size: int = 16,
):
    """Pooled encoder embeddings of corpus clips (cached per file like the features).

    Each clip is placed in its window exactly as for the hand-made features
    (``feature_config.window_s`` and ``anchor``). On ONNX every state is cached at once and the
    configured ones selected, so trying other states costs no second pass. Returns an
    :class:`Extraction` whose ``features`` are (n_ok, dim).
    """
    from tqdm.auto import tqdm

    cache = resolve_cache_dir(cache_dir)
    cached_config = replace(encoder_config, states=encoder_config.cached_states)
    # Everything that changes the embedding: the encoder, and the window placement (whose
    # trimming uses n_fft and hop_length).
    key = (json.dumps({"encoder": cached_config.to_dict(), "window_s": feature_config.window_s,
                       "anchor": feature_config.anchor, "sr": SAMPLE_RATE,
                       "trim_top_db": feature_config.trim_top_db, "n_fft": feature_config.n_fft,
                       "hop_length": feature_config.hop_length}, sort_keys=True), variant or "")
    encoder = None
    outcomes: list = [None] * len(records)
    pending: list[tuple[int, np.ndarray, Path | None]] = []

    def flush():
        nonlocal encoder
        if not pending:
            return
        if encoder is None:
            encoder = load_encoder(cached_config)
        vectors = encoder.embed(np.stack([w for _, w, _ in pending]), batch_size=batch_size,
                                whole=feature_config.anchor == "whole")
        for (i, _, target), vec in zip(pending, vectors):
            outcomes[i] = ("ok", vec, False)
            store(target, vec)
        pending.clear()

    for i, record in enumerate(tqdm(records, desc="embeddings", unit="clip", disable=not progress,
                                    leave=False)):
        outcome, window, target = read_clip(record.path, feature_config, cache, key, variant)
        if outcome is not None:
            outcomes[i] = outcome
            continue
        pending.append((i, window, target))
        if len(pending) >= batch_size:
            flush()
    flush()
    ex = collect(records, outcomes, (0, cached_config.dim))
    if cached_config.states != encoder_config.states:
        rows = [cached_config.states.index(s) for s in encoder_config.states]
        ex.features = np.ascontiguousarray(
            ex.features.reshape(len(ex.features), -1, 1024)[:, rows].reshape(len(ex.features), -1))
    return ex


def failure_summary(failures: Sequence[tuple[Record, str]]) -> str:
    if not failures:
        return "all clips usable"
    lines = [f"{len(failures)} clip(s) skipped:"]
    for record, reason in failures[:20]:
        lines.append(f"  {Path(record.path).name}: {reason}")
    if len(failures) > 20:
        lines.append(f"  ... and {len(failures) - 20} more")
    return "\n".join(lines)


def extract_inputs(records, feature_config, frontend: str, cache_dir=None, workers=None,
                   progress=True, variant=None, desc=None, options: dict | None = None):
    """Model inputs of records for the named front end (options as for
    :func:`ser.frontends.registry.get_frontend`): hand-made features in worker processes, or
    encoder states in batches; cached either way."""
    chosen = get_frontend(frontend, options)
    if chosen.name == "handcrafted":
        return extract(records, feature_config, cache_dir=cache_dir, workers=workers,
                       progress=progress, variant=variant, desc=desc or "features")
    return extract_embeddings(records, feature_config, chosen.encoder_config(),
                              cache_dir=cache_dir, variant=variant, progress=progress)
