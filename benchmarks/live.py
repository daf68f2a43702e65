"""Live sessions (`EmotionRecognizer.stream`): how long after an utterance's end its event
comes, in stream time, and the compute a stream costs, feeding a corpus recording in 20-ms
pieces as a microphone would (as fast as the machine goes: latency is counted in audio fed,
so the figures do not depend on the machine's speed; the compute is wall time per second of
audio on one core).

    python benchmarks/live.py --seconds 120
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import CORPORA, machine_baseline


def recording(seconds: float, seed: int = 0) -> np.ndarray:
    """RAVDESS and CREMA-D clips of several speakers and emotions with 0.4-2-s pauses."""
    from ser.audio import decode

    rng = np.random.default_rng(seed)
    files = (sorted((CORPORA / "ravdess").rglob("*.flac"))[::97]
             + sorted((CORPORA / "crema-d").rglob("*.ogg"))[::601])
    parts, total = [], 0
    for f in rng.permutation(files):
        y = decode(str(f), 16_000).samples
        gap = np.zeros(int(rng.uniform(0.4, 2.0) * 16_000), np.float32)
        parts += [y, gap]
        total += len(y) + len(gap)
        if total > seconds * 16_000:
            break
    return np.concatenate(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--piece-ms", type=float, default=20.0)
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    from ser import EmotionRecognizer

    print(machine_baseline())
    y = recording(args.seconds)
    rec = EmotionRecognizer.load("default", threads=1)
    step = int(args.piece_ms * 16)
    late, busy = [], 0.0
    with threadpool_limits(1):
        session = rec.stream(16_000)
        for i in range(0, len(y), step):
            started = time.perf_counter()
            events = session.feed(y[i : i + step])
            busy += time.perf_counter() - started
            late += [(i + step) / 16_000 - e["end_s"] for e in events]
        started = time.perf_counter()
        session.close()
        busy += time.perf_counter() - started
    late = np.array(late)
    audio_s = len(y) / 16_000
    print(f"{audio_s:.0f} s of corpus speech, {len(late)} utterance events before close, "
          f"{args.piece_ms:g}-ms pieces, default model, one thread")
    print("| measure | value |\n|---|---|")
    print(f"| event after the utterance's end (stream time), p50 | {np.percentile(late, 50):.2f} s |")
    print(f"| same, p95 | {np.percentile(late, 95):.2f} s |")
    print(f"| compute per second of audio (fraction of one core) | {busy / audio_s:.3f} |")


if __name__ == "__main__":
    main()
