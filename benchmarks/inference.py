"""Inference speed and memory: the whole path (decode -> features -> model) for 3-s clips.

    python benchmarks/inference.py [--model DIR] [--clips 500] [--repeats 50]

Prints: warm single-clip latency (p50, p95) on ONNX Runtime vs the same model in PyTorch
(one thread each); batch throughput over real corpus clips with 2 workers, as clips/s and
real-time factor (compute time / audio duration); and the peak RSS of `ser predict` on them.
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
import soundfile as sf
from threadpoolctl import threadpool_limits

from ser.audio import load_audio
from ser.serving.bundle import read_bundle, resolve_model
from ser.training.datasets import scan
from ser.serving.inference import EmotionRecognizer
from common import CORPORA



def percentiles(times):
    a = np.array(times) * 1000
    return np.percentile(a, 50), np.percentile(a, 95)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    parser.add_argument("--clips", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()

    info = read_bundle(resolve_model(args.model))
    records = scan(CORPORA).records
    picks = records[:: max(1, len(records) // args.clips)][: args.clips]
    # A 3-s clip as a WAV file in memory: the latency covers decoding too.
    y = load_audio(picks[0].path, 16_000)[:48_000]
    buf = io.BytesIO()
    sf.write(buf, np.pad(y, (0, max(0, 48_000 - len(y)))), 16_000, format="WAV")
    wav = buf.getvalue()

    rec = EmotionRecognizer.load(args.model, threads=1)
    import torch

    from ser.training.export import load_torch_model

    torch.set_num_threads(1)
    model = load_torch_model(info)

    def torch_path():
        # Same decoding, windowing and front end as the recognizer; only the model differs.
        x = rec.model_inputs(wav)
        with torch.no_grad():
            model(torch.from_numpy(x))

    rows = []
    with threadpool_limits(1):
        for name, fn in (("ONNX Runtime", lambda: rec.predict(wav)), ("PyTorch", torch_path)):
            for _ in range(5):
                fn()
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
            rows.append((name, *percentiles(times)))
    print(f"Warm latency, one 3-s WAV clip, whole path (decode, features, model), one thread, "
          f"model {info.config['arch']['name']} ({info.frontend} front end); model files "
          f"{sum(p.stat().st_size for p in info.root.iterdir()) / 1e6:.1f} MB")
    print("| runtime | p50 ms | p95 ms |\n|---|---|---|")
    for name, p50, p95 in rows:
        print(f"| {name} | {p50:.1f} | {p95:.1f} |")

    # Long recordings: corpus speech with 0.5-s pauses, cut into utterances by the VAD.
    parts = []
    for r in picks[:200]:
        parts += [load_audio(r.path, 16_000), np.zeros(8_000, np.float32)]
    speech = np.concatenate(parts)
    print()
    for seconds in (60, 600):
        long = np.tile(speech, 1 + seconds * 16_000 // len(speech))[: seconds * 16_000]
        for threads in (1, 2):
            r = rec if threads == 1 else EmotionRecognizer.load(args.model, threads=threads)
            with threadpool_limits(threads):
                r.predict(long[:16_000 * 5], sample_rate=16_000)
                t = time.perf_counter()
                result = r.predict(long, sample_rate=16_000, max_duration_s=None)
                elapsed = time.perf_counter() - t
            print(f"Long recording: {seconds} s, {len(result.segments)} utterance pieces, "
                  f"{threads} thread(s): {elapsed:.2f} s, real-time factor {elapsed / seconds:.4f}")

    paths = [r.path for r in picks]
    audio_s = sum(sf.info(p).duration for p in paths)
    rec2 = EmotionRecognizer.load(args.model, threads=1)
    t = time.perf_counter()
    results = list(rec2.predict_many(paths, workers=2))
    elapsed = time.perf_counter() - t
    ok = sum(not isinstance(r, Exception) for r in results)
    print(f"\nBatch: {len(paths)} corpus clips ({audio_s:.0f} s of audio), 2 workers: "
          f"{len(paths) / elapsed:.1f} clips/s, real-time factor {elapsed / audio_s:.4f} "
          f"({ok} ok)")
    # Start-up time and memory of `ser predict` as a fresh process: benchmarks/cli_startup.py.


if __name__ == "__main__":
    main()
