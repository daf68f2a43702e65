"""The cost of issue 14's encoder levers: milliseconds per 3-s window, one thread, warm.

    python benchmarks/encoder_cost.py [--repeats 30]

Rows: CTranslate2 int8 (the earlier default's final layer), CTranslate2 float32, and the ONNX
Runtime encoder stopped after the deepest state each lever uses (float32). Also the first
model load (weights read from the packages' model.bin, session created). Needs the `whisper`
extra (and `ctranslate2` for its rows).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits


def timed(fn, repeats: int) -> tuple[float, float]:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.percentile(times, 50) * 1000), float(np.percentile(times, 95) * 1000)


def main() -> None:
    from ser.frontends.encoders import EncoderConfig, OnnxEncoder, WhisperEncoder

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    window = (0.1 * rng.standard_normal((1, 48_000))).astype(np.float32)
    rows = []
    with threadpool_limits(1):
        for compute in ("int8", "float32"):
            try:
                t = time.perf_counter()
                enc = WhisperEncoder(EncoderConfig(compute_type=compute), threads=1)
                load = time.perf_counter() - t
            except Exception as exc:  # ctranslate2 not installed
                print(f"CTranslate2 {compute}: skipped ({exc})")
                continue
            rows.append((f"CTranslate2 {compute}, final layer", load, *timed(lambda: enc.embed(window), args.repeats)))
        for states in ((3,), (3, 4), (2, 3, 4, 5), (6,)):
            config = EncoderConfig(runtime="onnx", compute_type="float32", states=states)
            t = time.perf_counter()
            enc = OnnxEncoder(config, threads=1)
            load = time.perf_counter() - t
            name = f"ONNX Runtime float32, states {','.join(map(str, states))}"
            rows.append((name, load, *timed(lambda: enc.embed(window), args.repeats)))
    print("| encoder | first load s | p50 ms / 3-s window | p95 ms |\n|---|---|---|---|")
    for name, load, p50, p95 in rows:
        print(f"| {name} | {load:.2f} | {p50:.1f} | {p95:.1f} |")


if __name__ == "__main__":
    main()
