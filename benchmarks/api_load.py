"""Load test of `ser serve` on loopback: requests/s, latency percentiles, errors and server
memory for 3-s clips at 1, 4, 16 and 64 concurrent clients; then normal clients side by side
with abusive ones (a 590-s 96-kHz 8-channel FLAC, a 564-s Opus recording and a 119-s WAV of
speech, sent both to /v1/predict and to /v1/jobs, in a bounded loop); and the server's memory
over a soak.

    python benchmarks/api_load.py [--seconds 20] [--max-requests 400] [--soak 120] [--model DIR]

Traffic goes only to 127.0.0.1; every loop is bounded in requests and time.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import soundfile as sf

from ser.audio import load_audio
from ser.training.datasets import scan
from common import CORPORA, free_port



def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def clips(n: int) -> list[bytes]:
    records = scan(CORPORA).records
    out = []
    for r in records[:: max(1, len(records) // n)][:n]:
        y = load_audio(r.path, 16_000)[:48_000]
        buf = io.BytesIO()
        sf.write(buf, np.pad(y, (0, 48_000 - len(y))), 16_000, format="WAV")
        out.append(buf.getvalue())
    return out


def abusive_files() -> dict[str, tuple[bytes, str]]:
    """The two inputs that used to sink the server: tiny uploads, huge decoded audio."""
    flac = io.BytesIO()
    with sf.SoundFile(flac, "w", 96_000, 8, format="FLAC", subtype="PCM_16") as f:
        block = np.zeros((96_000, 8), np.float32)
        for _ in range(590):
            f.write(block)
    records = scan(CORPORA / "crema-d").records
    speech, total, i = [], 0, 0
    while total < 564 * 16_000:
        y = load_audio(records[i].path, 16_000)
        speech += [y, np.zeros(8_000, np.float32)]
        total += len(y) + 8_000
        i += 1
    opus = io.BytesIO()
    sf.write(opus, np.concatenate(speech)[: 564 * 16_000], 16_000, format="OGG", subtype="OPUS")
    # Issue 19's case: 119 s of speech, which /v1/predict used to accept (limit 120 s).
    wav = io.BytesIO()
    sf.write(wav, np.concatenate(speech)[: 119 * 16_000], 16_000, format="WAV")
    return {"96-kHz 8-ch 590-s FLAC": (flac.getvalue(), "audio/flac"),
            "564-s Opus speech": (opus.getvalue(), "audio/ogg"),
            "119-s WAV speech": (wav.getvalue(), "audio/wav")}


def abuse(url: str, files: dict, stop: threading.Event, counts: dict) -> None:
    """Send each abusive file to both endpoints, again and again, until ``stop``."""
    import json

    while not stop.is_set():
        for name, (body, ctype) in files.items():
            for endpoint in ("/v1/predict", "/v1/jobs"):
                if stop.is_set():
                    return
                req = urllib.request.Request(f"{url}{endpoint}", data=body,
                                             headers={"content-type": ctype})
                try:
                    with urllib.request.urlopen(req, timeout=60) as resp:
                        code = resp.status
                        json.loads(resp.read())
                except urllib.error.HTTPError as exc:
                    code = exc.code
                except Exception:
                    code = "error"
                key = f"{name} -> {endpoint}: {code}"
                counts[key] = counts.get(key, 0) + 1
                time.sleep(0.2)


def drive(url: str, bodies: list[bytes], clients: int, seconds: float, max_requests: int):
    latencies, errors, lock = [], [0], threading.Lock()
    count = [0]
    stop = time.perf_counter() + seconds

    def worker(k: int):
        i = k
        while time.perf_counter() < stop:
            with lock:
                if count[0] >= max_requests:
                    return
                count[0] += 1
            req = urllib.request.Request(f"{url}/v1/predict", data=bodies[i % len(bodies)],
                                         headers={"content-type": "audio/wav"})
            t = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    resp.read()
                    ok = resp.status == 200
            except Exception:
                ok = False
            with lock:
                latencies.append(time.perf_counter() - t)
                errors[0] += not ok
            i += clients

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - started
    lat = np.array(latencies) * 1000
    return len(lat) / elapsed, np.percentile(lat, [50, 95, 99]), errors[0], len(lat)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--max-requests", type=int, default=400)
    parser.add_argument("--soak", type=float, default=120.0, help="memory soak (s); 0 skips")
    parser.add_argument("--model", default=None)
    args = parser.parse_args()

    port = free_port()
    cmd = [str(Path(sys.executable).with_name("ser")), "serve", "--port", str(port),
           "--max-concurrency", "2"]
    if args.model:
        cmd += ["--model", args.model]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/v1/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        bodies = clips(50)
        drive(url, bodies, 2, 5, 20)  # warm up
        print(f"`ser serve` on loopback, 3-s WAV clips, server at --max-concurrency 2 "
              f"(RSS after warm-up {rss_mb(server.pid):.0f} MB)")
        print("| clients | requests | req/s | p50 ms | p95 ms | p99 ms | errors | server peak RSS MB |")
        print("|---|---|---|---|---|---|---|---|")
        unloaded_p99 = None
        for clients in (1, 4, 16, 64):
            peak = [rss_mb(server.pid)]
            done = threading.Event()
            watcher = threading.Thread(target=lambda: [peak.append(rss_mb(server.pid))
                                                       for _ in iter(lambda: done.wait(0.5), True)])
            watcher.start()
            rps, (p50, p95, p99), errors, n = drive(url, bodies, clients, args.seconds, args.max_requests)
            done.set()
            watcher.join()
            unloaded_p99 = p99 if clients == 4 else unloaded_p99
            print(f"| {clients} | {n} | {rps:.1f} | {p50:.0f} | {p95:.0f} | {p99:.0f} | {errors} | "
                  f"{max(peak):.0f} |")

        files = abusive_files()
        print("\nAbusive inputs: " + ", ".join(f"{k} ({len(v[0]) / 1e3:.0f} KB)" for k, v in files.items()))
        stop, counts = threading.Event(), {}
        abusers = [threading.Thread(target=abuse, args=(url, files, stop, counts)) for _ in range(2)]
        peak = [rss_mb(server.pid)]
        for th in abusers:
            th.start()
        watcher_done = threading.Event()
        watcher = threading.Thread(target=lambda: [peak.append(rss_mb(server.pid))
                                                   for _ in iter(lambda: watcher_done.wait(0.5), True)])
        watcher.start()
        rps, (p50, p95, p99), errors, n = drive(url, bodies, 4, args.seconds, args.max_requests)
        stop.set()
        for th in abusers:
            th.join()
        watcher_done.set()
        watcher.join()
        print(f"4 normal clients beside 2 abusive ones: {n} requests, {rps:.1f} req/s, p50 {p50:.0f} ms, "
              f"p99 {p99:.0f} ms ({p99 / unloaded_p99:.2f}x the p99 without abuse), {errors} errors; "
              f"server peak RSS {max(peak):.0f} MB")
        for key, count in sorted(counts.items()):
            print(f"  {key}: {count}")
        if args.soak:
            start_rss = rss_mb(server.pid)
            samples = []
            done = threading.Event()

            def sample():
                while not done.wait(5):
                    samples.append(rss_mb(server.pid))

            th = threading.Thread(target=sample)
            th.start()
            rps, _, errors, n = drive(url, bodies, 4, args.soak, 10**6)
            done.set()
            th.join()
            print(f"\nSoak: {args.soak:.0f} s at 4 clients, {n} requests, {errors} errors; server RSS "
                  f"{start_rss:.0f} MB at start, {max(samples or [start_rss]):.0f} MB peak, "
                  f"{rss_mb(server.pid):.0f} MB at end")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
