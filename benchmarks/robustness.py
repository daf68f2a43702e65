"""Accuracy and refusals under the conditions people record in: clips of a corpus the model
never trained on (TESS by default), clean and corrupted — white and pink noise and babble
(other corpora's speakers) at a set SNR, simulated rooms (exponentially decaying noise as the
impulse response, RT60 0.3 and 0.8 s), a telephone channel (8 kHz, 300-3,400 Hz, mu-law),
Opus at 12 kbit/s and MP3 at 32 kbit/s (PyAV), a level of -30 dBFS, and short excerpts of
0.5-1.5 s. Prints accuracy over the clips analysed and the share refused as no speech.

    python benchmarks/robustness.py [--model default] [--corpus tess] [--clips 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import io

import numpy as np
from common import CORPORA

SR = 16_000


def at_snr(y: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    noise = noise[: len(y)]
    gain = np.sqrt(np.mean(y**2) / (np.mean(noise**2) * 10 ** (snr_db / 10) + 1e-12))
    return (y + gain * noise).astype(np.float32)


def pink(n: int, rng) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    spectrum[1:] /= np.sqrt(f[1:])
    return np.fft.irfft(spectrum, n).astype(np.float32)


def room(y: np.ndarray, rt60: float, rng) -> np.ndarray:
    """Convolution with exponentially decaying noise (60 dB down after ``rt60``)."""
    from scipy.signal import fftconvolve

    t = np.arange(int(rt60 * SR)) / SR
    rir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    rir[0] = 1.0
    out = fftconvolve(y, rir)[: len(y)]
    return (out * np.abs(y).max() / (np.abs(out).max() + 1e-9)).astype(np.float32)


def telephone(y: np.ndarray) -> np.ndarray:
    import soxr
    from scipy.signal import butter, sosfilt

    narrow = soxr.resample(y, SR, 8_000)
    narrow = sosfilt(butter(4, [300, 3400], btype="band", fs=8_000, output="sos"), narrow)
    mu = 255.0
    coded = np.sign(narrow) * np.log1p(mu * np.minimum(np.abs(narrow), 1.0)) / np.log1p(mu)
    coded = np.round(coded * 127) / 127  # 8-bit mu-law
    expanded = np.sign(coded) * ((1 + mu) ** np.abs(coded) - 1) / mu
    return soxr.resample(expanded.astype(np.float32), 8_000, SR).astype(np.float32)


def codec(y: np.ndarray, container: str, codec_name: str, bitrate: int) -> np.ndarray:
    import av

    from ser.audio import decode

    rate = 48_000 if codec_name == "libopus" else SR
    import soxr

    x = soxr.resample(y, SR, rate).astype(np.float32) if rate != SR else y
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec_name, rate=rate)
        stream.layout = "mono"
        stream.bit_rate = bitrate
        for start in range(0, len(x), 960):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[None, start : start + 960]),
                                               format="flt", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return decode(buf.getvalue(), SR, min_duration_s=None).samples


def main() -> None:
    from ser import EmotionRecognizer
    from ser.audio import decode
    from ser.datasets import scan

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--corpus", default="tess")
    ap.add_argument("--clips", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    records = scan(CORPORA / args.corpus).records
    records = [records[i] for i in rng.choice(len(records), min(args.clips, len(records)), replace=False)]
    others = scan(CORPORA / "crema-d").records
    babble_pool = [decode(others[i].path, SR).samples for i in rng.choice(len(others), 60, replace=False)]
    recognizer = EmotionRecognizer.load(args.model)

    def babble(n: int) -> np.ndarray:
        mix = np.zeros(n, np.float32)
        for k in rng.choice(len(babble_pool), 4, replace=False):  # four other voices at once
            voice = np.tile(babble_pool[k], -(-n // len(babble_pool[k])))[:n]
            mix += voice / (np.sqrt(np.mean(voice**2)) + 1e-9)
        return mix

    def excerpt(y: np.ndarray) -> np.ndarray:
        n = int(rng.uniform(0.5, 1.5) * SR)
        if len(y) <= n:
            return y
        start = int(rng.integers(0, len(y) - n))
        return y[start : start + n]

    conditions = {
        "clean": lambda y: y,
        "white noise 20 dB": lambda y: at_snr(y, rng.standard_normal(len(y)).astype(np.float32), 20),
        "white noise 10 dB": lambda y: at_snr(y, rng.standard_normal(len(y)).astype(np.float32), 10),
        "white noise 5 dB": lambda y: at_snr(y, rng.standard_normal(len(y)).astype(np.float32), 5),
        "pink noise 10 dB": lambda y: at_snr(y, pink(len(y), rng), 10),
        "babble 10 dB": lambda y: at_snr(y, babble(len(y)), 10),
        "babble 5 dB": lambda y: at_snr(y, babble(len(y)), 5),
        "room RT60 0.3 s": lambda y: room(y, 0.3, rng),
        "room RT60 0.8 s": lambda y: room(y, 0.8, rng),
        "telephone (8 kHz, mu-law)": telephone,
        "Opus 12 kbit/s": lambda y: codec(y, "ogg", "libopus", 12_000),
        "MP3 32 kbit/s": lambda y: codec(y, "mp3", "libmp3lame", 32_000),
        "level -30 dBFS": lambda y: (y * 10 ** (-30 / 20) / (np.abs(y).max() + 1e-9)).astype(np.float32),
        "excerpt 0.5-1.5 s": excerpt,
    }
    clips = [(decode(r.path, SR).samples, r.label) for r in records]
    print(f"model {args.model}, {len(clips)} {args.corpus} clips (never trained on), seed {args.seed}")
    print("| condition | accuracy (analysed) | refused as no speech |\n|---|---|---|")
    for name, corrupt in conditions.items():
        right = refused = 0
        for y, label in clips:
            p = recognizer.predict(corrupt(y), sample_rate=SR)
            if not p.has_speech:
                refused += 1
            else:
                right += p.emotion == label
        analysed = len(clips) - refused
        print(f"| {name} | {100 * right / max(analysed, 1):.1f}% | {100 * refused / len(clips):.1f}% |",
              flush=True)


if __name__ == "__main__":
    main()
