"""Live streams through the real server (`ser serve`, WS /v1/stream), as clients use them: each
stream sends 20-ms frames of a recording in real time (corpus clips of several speakers with
0.4-2-s pauses, and one 15-s stretch of speech without a pause). Printed:

* latency: from the end of an utterance's speech (the detector's ``speech_ended`` time) to the
  moment its ``utterance`` event reaches the client (wall clock), p50 / p95, with 1 and with 4
  concurrent streams; of it, the detector's closing silence (``speech_ended`` arriving) and
  the first look (the ``interim`` estimate sent as the detector ends the utterance);
* interim estimates during the 15-s stretch: the longest gap between them;
* CPU per stream: the server's CPU time over the audio streamed (fraction of one core);
* a /v1/predict request's time alone and while 4 streams run;
* memory: the server's peak RSS during one 60-minute stream sent as fast as possible
  (``--hour``), and its RSS and threads before and after 100 abrupt disconnects.

    python benchmarks/live.py [--seconds 90] [--streams 1 4] [--hour]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
from common import CORPORA, free_port, machine_baseline

FRAME = int(__import__("os").environ.get("FRAME", 320))  # 20 ms at 16 kHz


def recording(seconds: float, seed: int = 0, monologue: bool = True) -> np.ndarray:
    """Corpus clips (RAVDESS, CREMA-D) with 0.4-2-s pauses; with ``monologue``, 15 s of their
    speech without pauses (the detector's segments, joined) after the first 20 s."""
    from ser.audio import decode
    from ser.audio.vad import speech_segments

    rng = np.random.default_rng(seed)
    files = (sorted((CORPORA / "ravdess").rglob("*.flac"))[::97]
             + sorted((CORPORA / "crema-d").rglob("*.ogg"))[::601])
    parts, total, talk = [], 0, []
    for f in rng.permutation(files):
        y = decode(str(f), 16_000).samples
        if monologue and total > 20 * 16_000 and sum(map(len, talk)) < 15 * 16_000:
            talk += [y[a:b] for a, b in speech_segments(y)]
            if sum(map(len, talk)) >= 15 * 16_000:
                parts += [np.concatenate(talk)[: 15 * 16_000], np.zeros(16_000, np.float32)]
            continue
        gap = np.zeros(int(rng.uniform(0.4, 2.0) * 16_000), np.float32)
        parts += [y, gap]
        total += len(y) + len(gap)
        if total > seconds * 16_000:
            break
    return np.concatenate(parts)


def proc_stat(pid: int) -> tuple[float, float, int]:
    """(CPU seconds, RSS MB, threads) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, clock ticks of 10 ms
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(status.split("VmRSS:")[1].split()[0]) / 1024
    threads = int(status.split("Threads:")[1].split()[0])
    return cpu, rss, threads


def start_server(port: int) -> subprocess.Popen:
    ser = Path(sys.executable).with_name("ser")
    log = open(Path(tempfile.gettempdir()) / f"ser-live-bench-{port}.log", "w")  # noqa: SIM115
    print(f"server log: {log.name}")
    proc = subprocess.Popen([str(ser), "serve", "--port", str(port)], stdout=log,
                            stderr=subprocess.STDOUT)
    for _ in range(180):
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=2).status == 200:
                return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the server did not start")


def stream(port: int, y: np.ndarray, realtime: bool, out: dict) -> None:
    """Send ``y`` as s16le frames; record (wall time, event) pairs relative to the start."""
    from websockets.sync.client import connect

    pcm = np.clip(np.round(y * 32768), -32768, 32767).astype("<i2")
    events: list[tuple[float, dict]] = []
    with connect(f"ws://127.0.0.1:{port}/v1/stream?sample_rate=16000&format=s16le",
                 max_size=None) as ws:
        json.loads(ws.recv())  # ready
        started = time.monotonic()

        def receive():
            try:
                for message in ws:
                    events.append((time.monotonic() - started, json.loads(message)))
            except Exception:  # noqa: BLE001 - the connection closed
                pass

        reader = threading.Thread(target=receive)
        reader.start()
        for i in range(0, len(pcm), FRAME):
            if realtime:
                time.sleep(max(0.0, started + i / 16_000 - time.monotonic()))
            ws.send(pcm[i : i + FRAME].tobytes())
        ws.send(json.dumps({"type": "end"}))
        reader.join()
    out["events"] = events


def latencies(events: list[tuple[float, dict]]) -> dict[str, list[float]]:
    """Per utterance: wall time from its speech's end to its event; to speech_ended; to the
    first look."""
    out = {"utterance": [], "speech_ended": [], "first look": [], "same": []}
    ends = [(t, e) for t, e in events if e["type"] == "speech_ended"]
    for t, e in events:
        if e["type"] != "utterance":
            continue
        mine = [(te, x) for te, x in ends if e["start_s"] <= x["time_s"] <= e["end_s"]]
        if not mine:
            continue  # a piece of a cut utterance
        arrived, ended = mine[-1]
        speech_end = ended["time_s"]
        out["utterance"].append(t - speech_end)
        out["speech_ended"].append(arrived - speech_end)
        look = [(ti, x) for ti, x in events if x["type"] == "interim" and ti >= arrived
                and x["start_s"] == e["start_s"]]
        if look:
            out["first look"].append(look[0][0] - speech_end)
            out["same"].append(look[0][1]["emotion"] == e["emotion"])
    return out


def predict_time(port: int, data: bytes, n: int = 5) -> float:
    times = []
    for _ in range(n):
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/predict", data=data,
                                         headers={"Content-Type": "audio/wav"})
        started = time.perf_counter()
        urllib.request.urlopen(request, timeout=60).read()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def run_streams(port: int, pid: int, n: int, seconds: float) -> None:
    from importlib.resources import files

    example = (files("ser") / "examples" / "speech_example.wav").read_bytes()
    alone = predict_time(port, example)
    recordings = [recording(seconds, seed=k) for k in range(n)]
    results = [dict() for _ in range(n)]
    cpu0 = proc_stat(pid)[0]
    threads = [threading.Thread(target=stream, args=(port, y, True, r))
               for y, r in zip(recordings, results)]
    for t in threads:
        t.start()
    time.sleep(5)
    during = predict_time(port, example)
    for t in threads:
        t.join()
    cpu = proc_stat(pid)[0] - cpu0
    audio_s = sum(len(y) for y in recordings) / 16_000
    lat = {k: [] for k in ("utterance", "speech_ended", "first look", "same")}
    for r in results:
        for k, v in latencies(r["events"]).items():
            lat[k] += v
    events = results[0]["events"]
    talk = [(x["time_s"], next(y["time_s"] for _, y in events if y["type"] == "speech_ended"
                                and y["time_s"] > x["time_s"]))
            for _, x in events if x["type"] == "speech_started"]
    start, end = max(talk, key=lambda s: s[1] - s[0])
    looks = [t for t, x in events if x["type"] == "interim" and start + 3 <= t <= end]
    gap = max(np.diff(looks)) if len(looks) > 1 else float("nan")
    print(f"\n{n} stream(s) of {audio_s / n:.0f} s each, in real time, 20-ms frames "
          f"({len(lat['utterance'])} utterances)")
    print("| measure | p50 | p95 |\n|---|---|---|")
    for key, label in (("utterance", "utterance event after its speech ends"),
                       ("speech_ended", "of it: the detector's closing silence (speech_ended arrives)"),
                       ("first look", "first look (interim of the whole utterance) after its speech ends")):
        v = np.array(lat[key])
        print(f"| {label} | {np.percentile(v, 50):.2f} s | {np.percentile(v, 95):.2f} s |")
    print(f"| first look's emotion = the utterance's | {sum(lat['same'])} of {len(lat['same'])} | |")
    print(f"| longest gap between interim estimates in {end - start:.0f} s of speech | {gap:.2f} s | |")
    print(f"| server CPU per stream (fraction of one core) | {cpu / audio_s:.3f} | |")
    print(f"| /v1/predict on the bundled example, alone / during the streams | "
          f"{alone:.2f} s / {during:.2f} s | |")


def hour(port: int, pid: int) -> None:
    y = recording(600, seed=7, monologue=False)
    base = proc_stat(pid)[1]
    peak, done = [base], threading.Event()

    def watch():
        while not done.is_set():
            peak.append(proc_stat(pid)[1])
            time.sleep(0.5)

    watcher = threading.Thread(target=watch)
    watcher.start()
    out: dict = {}
    started = time.perf_counter()
    stream(port, np.tile(y, int(np.ceil(3600 * 16_000 / len(y))))[: 3600 * 16_000], False, out)
    done.set()
    watcher.join()
    summary = out["events"][-1][1]
    print(f"\none 60-minute stream sent as fast as possible: {time.perf_counter() - started:.0f} s, "
          f"{len(summary.get('segments', []))} utterances; server RSS {base:.0f} MB before, "
          f"peak {max(peak):.0f} MB")


def disconnects(port: int, pid: int, n: int = 100) -> None:
    from websockets.sync.client import connect

    y = recording(10, monologue=False)
    pcm = np.clip(np.round(y * 32768), -32768, 32767).astype("<i2").tobytes()
    _, rss0, threads0 = proc_stat(pid)
    for _ in range(n):
        ws = connect(f"ws://127.0.0.1:{port}/v1/stream?sample_rate=16000&format=s16le")
        ws.recv()
        ws.send(pcm[:64_000])
        ws.socket.close()  # no close frame: the connection just drops
    time.sleep(3)
    _, rss1, threads1 = proc_stat(pid)
    print(f"\n{n} abrupt disconnects: server RSS {rss0:.0f} -> {rss1:.0f} MB, "
          f"threads {threads0} -> {threads1}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=90.0)
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--hour", action="store_true", help="also one 60-minute stream (memory)")
    args = ap.parse_args()
    print(machine_baseline())
    port = free_port()
    server = start_server(port)
    try:
        print(f"server (default model) RSS after start: {proc_stat(server.pid)[1]:.0f} MB")
        for n in args.streams:
            run_streams(port, server.pid, n, args.seconds)
        disconnects(port, server.pid)
        if args.hour:
            hour(port, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
