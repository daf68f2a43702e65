"""Batch throughput and memory, as a user runs it: `ser predict --from-list` with the local
engine and with Ray Data (1 and 2 actors) on the same corpus clips, in one run. Prints wall
time, clips/s, real-time factor (seconds of compute per second of audio), start-up (a one-file
run) and the peak memory of the whole process tree (the driver, and for Ray its GCS, raylet,
agents and actors, summed; sampled every 0.1 s).

    python benchmarks/batch.py [--clips 500] [--model default] [--corpora ../shared/corpora]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf
from common import CORPORA, machine_baseline

SER = str(Path(sys.executable).parent / "ser")


def tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and all its descendants, in MB (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)  # fields[1]: the parent's pid
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")  # fields[21]: resident pages
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total / 1e6


def measured(cmd: list[str]) -> tuple[float, float]:
    """(wall s, peak whole-tree RSS MB) of a command."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, tree_rss_mb(proc.pid))
        time.sleep(0.1)
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 1):  # 1: some file failed, reported per file
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr.read()}")
    return wall, peak


def main() -> None:
    from ser.training.datasets import scan

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=500)
    ap.add_argument("--model", default="default")
    ap.add_argument("--corpora", type=Path, default=CORPORA)
    args = ap.parse_args()
    records = scan(args.corpora).records
    step = max(1, len(records) // args.clips)
    files = [r.path for r in records[::step]][: args.clips]
    audio_s = sum(sf.info(f).duration for f in files)
    print(machine_baseline())
    print(f"{len(files)} clips, {audio_s:.0f} s of audio, model {args.model}, {os.cpu_count()} CPUs")
    engines = {"local (process pool)": ["--engine", "local"],
               "Ray, 1 actor x 1 CPU": ["--engine", "ray", "--actors", "1", "--cpus-per-actor", "1"],
               "Ray, 2 actors x 0.5 CPU": ["--engine", "ray", "--actors", "2", "--cpus-per-actor", "0.5"]}
    print("| engine | wall s | clips/s | RTF | start-up s (one file) | whole-tree peak RSS MB |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        listing, one = Path(tmp) / "files.txt", Path(tmp) / "one.txt"
        listing.write_text("\n".join(files) + "\n")
        one.write_text(files[0] + "\n")
        for name, flags in engines.items():
            base = [SER, "predict", "--model", args.model, "--format", "jsonl", *flags]
            startup, _ = measured([*base, "--from-list", str(one)])
            wall, peak = measured([*base, "--from-list", str(listing)])
            print(f"| {name} | {wall:.1f} | {len(files) / wall:.1f} | {wall / audio_s:.4f} | "
                  f"{startup:.1f} | {peak:.0f} |", flush=True)


if __name__ == "__main__":
    main()
