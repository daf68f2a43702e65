"""Long recordings, as users run them: `ser predict` on 1-, 10- and 60-minute recordings (corpus
utterances with 0.5-2 s pauses, 16-kHz FLAC) next to one clip, in one run — wall time
including start-up, real-time factor and peak RSS — then the same recordings as jobs of one
`ser serve`: time to the result, the server's memory fresh, at its peak and after each job.

    python benchmarks/recordings.py [--minutes 1 10 60] [--model default] [--no-api]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from common import CORPORA, free_port

BIN = Path(sys.executable).parent


def make_recording(path: Path, minutes: float, seed: int = 0) -> None:
    import soundfile as sf
    import soxr

    from ser.training.datasets import scan

    rng = np.random.default_rng(seed)
    files = [r.path for c in ("ravdess", "crema-d") for r in scan(CORPORA / c).records]
    rng.shuffle(files)
    target, written, i = int(minutes * 60 * 16_000), 0, 0
    with sf.SoundFile(path, "w", 16_000, 1, format="FLAC") as out:
        while written < target:
            y, sr = sf.read(files[i % len(files)], dtype="float32")
            i += 1
            y = soxr.resample(y, sr, 16_000) if sr != 16_000 else y
            piece = np.concatenate([y, np.zeros(int(rng.uniform(0.5, 2.0) * 16_000), np.float32)])
            piece = piece[: target - written]
            out.write(piece)
            written += len(piece)


def cli(path: Path, model: str) -> tuple[float, float]:
    """(wall s, peak RSS MB) of `ser predict` on one file."""
    started = time.perf_counter()
    run = subprocess.run(["/usr/bin/time", "-f", "%M", str(BIN / "ser"), "predict", str(path),
                          "--model", model, "--format", "jsonl"],
                         capture_output=True, text=True, check=True)
    return time.perf_counter() - started, int(run.stderr.strip().splitlines()[-1]) / 1024


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0]) / 1024


def api_jobs(paths: list[Path], model: str) -> None:
    port = free_port()
    server = subprocess.Popen([str(BIN / "ser"), "serve", "--port", str(port), "--model", model,
                               "--max-duration", "3700", "--max-upload-mb", "100"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if urllib.request.urlopen(f"{base}/v1/health", timeout=1).status == 200:
                    break
            except Exception:  # noqa: BLE001 - loading (503) or not listening yet
                time.sleep(0.2)
        print(f"\n`ser serve` after start-up and warm-up: {rss_mb(server.pid):.0f} MB")
        print("| recording | job wall s | RTF | server peak RSS MB | server RSS after MB |")
        print("|---|---|---|---|---|")
        for path in paths:
            data = path.read_bytes()
            started = time.perf_counter()
            request = urllib.request.Request(f"{base}/v1/jobs", data=data,
                                             headers={"content-type": "audio/flac"})
            job = json.load(urllib.request.urlopen(request))
            peak = 0.0
            while job["status"] in ("queued", "running"):
                peak = max(peak, rss_mb(server.pid))
                time.sleep(0.2)
                job = json.load(urllib.request.urlopen(f"{base}/v1/jobs/{job['id']}"))
            wall = time.perf_counter() - started
            assert job["status"] == "done", job
            time.sleep(1.0)
            seconds = job["result"]["duration_s"]
            print(f"| {seconds / 60:.0f} min | {wall:.1f} | {wall / seconds:.4f} | {peak:.0f} | "
                  f"{rss_mb(server.pid):.0f} |", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    ap.add_argument("--model", default="default")
    ap.add_argument("--no-api", action="store_true")
    args = ap.parse_args()
    from importlib.resources import files

    clip = Path(str(files("ser") / "examples" / "speech_example.wav"))
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for minutes in args.minutes:
            paths.append(Path(tmp) / f"recording_{minutes:g}min.flac")
            make_recording(paths[-1], minutes)
        print(f"model {args.model}, {os.cpu_count()} CPUs")
        print("| input | wall s (with start-up) | RTF | peak RSS MB |\n|---|---|---|---|")
        wall, peak = cli(clip, args.model)
        print(f"| one 2.8-s clip | {wall:.2f} | | {peak:.0f} |", flush=True)
        for minutes, path in zip(args.minutes, paths):
            wall, peak = cli(path, args.model)
            print(f"| {minutes:g}-min recording | {wall:.1f} | {wall / (60 * minutes):.4f} | "
                  f"{peak:.0f} |", flush=True)
        if not args.no_api:
            api_jobs(paths, args.model)


if __name__ == "__main__":
    main()
