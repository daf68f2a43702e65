"""Seconds per training epoch of the reference LSTM (256-256-128) on hand-made features.

Runs real epochs of `ser.training.loop.fit` on random inputs of the corpus's shape (151 frames x 233
features) and scales the time to a whole training set (--train-clips, default 6,860: 70% of
RAVDESS + CREMA-D + TESS, the reference protocol). Three settings in one run, so that the ratios
are measured on the same machine state:

* before: the per-clip Python loop for time/feature masking that training used until now, fp32
* after (fp32): vectorised masking
* after (bf16): vectorised masking and bfloat16 autocast (weights and optimiser stay fp32)

    python benchmarks/train_speed.py [--clips 1024] [--epochs 2] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def loop_masks(x, rng, max_time=20, max_freq=16, n_masks=1):
    """The earlier masking code (one Python iteration per clip), kept here as the baseline."""
    x = x.copy()
    batch, frames, feats = x.shape
    for i in range(batch):
        for _ in range(n_masks):
            t = int(rng.integers(0, max_time + 1))
            if t:
                t0 = int(rng.integers(0, max(1, frames - t)))
                x[i, t0 : t0 + t, :] = 0.0
            f = int(rng.integers(0, max_freq + 1))
            if f:
                f0 = int(rng.integers(0, max(1, feats - f)))
                x[i, :, f0 : f0 + f] = 0.0
    return x


def epoch_seconds(x, y, precision: str, masks, args) -> float:
    import ser.training.augment
    from ser.training.loop import TrainConfig, fit

    original = ser.training.augment.mask_features
    ser.training.augment.mask_features = masks
    try:
        config = TrainConfig(arch={"name": "reference_lstm"}, max_epochs=args.epochs,
                             patience=99, threads=args.threads, device=args.device,
                             optimizer="adam", precision=precision)
        result = fit(x, y, x[:256], y[:256], config, progress=False)
    finally:
        ser.training.augment.mask_features = original
    return result.seconds / args.epochs


def main() -> None:
    from ser.training.augment import mask_features

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=1024, help="clips per measured epoch")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--train-clips", type=int, default=6860, help="training-set size to scale to")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.clips, 151, 233)).astype(np.float32)
    y = rng.integers(0, 8, args.clips)
    rows = [("before: loop masks, fp32", "fp32", loop_masks),
            ("after: vectorised masks, fp32", "fp32", mask_features),
            ("after: vectorised masks, bf16 autocast", "bf16", mask_features)]
    print(f"reference_lstm, {args.clips} clips x {args.epochs} epochs, device {args.device}, "
          f"{args.threads} threads; scaled to {args.train_clips} training clips")
    print("| setting | s/epoch (measured) | s/epoch (full training set) |")
    print("|---|---|---|")
    for name, precision, masks in rows:
        started = time.perf_counter()
        per_epoch = epoch_seconds(x, y, precision, masks, args)
        scaled = per_epoch * args.train_clips / args.clips
        print(f"| {name} | {per_epoch:.1f} | {scaled:.0f} |  ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
