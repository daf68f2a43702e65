"""Batch throughput: the local engine and Ray Data (1 and 2 actors) on the same corpus clips,
in one run. Prints clips/s, real-time factor (seconds of compute per second of audio, wall
clock), Ray's start-up time and overhead per file against the local engine, and the peak
memory of one Ray actor.

    python benchmarks/batch.py [--clips 500] [--model default] [--corpora ../shared/corpora]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import soundfile as sf
from common import CORPORA


def main() -> None:
    from ser import batch
    from ser.datasets import scan

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=500)
    ap.add_argument("--model", default="default")
    ap.add_argument("--corpora", type=Path,
                    default=CORPORA)
    args = ap.parse_args()
    records = scan(args.corpora).records
    step = max(1, len(records) // args.clips)
    files = [r.path for r in records[::step]][: args.clips]
    audio_s = sum(sf.info(f).duration for f in files)
    print(f"{len(files)} clips, {audio_s:.0f} s of audio, model {args.model}")
    print("| engine | wall s | clips/s | RTF | notes |\n|---|---|---|---|---|")
    started = time.perf_counter()
    batch.run(files, model=args.model, engine="local")
    local_s = time.perf_counter() - started
    print(f"| local (process pool) | {local_s:.1f} | {len(files) / local_s:.1f} | "
          f"{local_s / audio_s:.4f} | |")
    import ray

    for actors, cpus in ((1, 1.0), (2, 0.5)):
        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 _node_ip_address="127.0.0.1")
        startup = time.perf_counter() - started
        stats: dict = {}
        limits: dict = {}
        rows = list(batch._ray_rows(files, args.model, None, actors, cpus, 8, limits, stats))
        wall = time.perf_counter() - started
        ray.shutdown()
        assert len(rows) == len(files)
        overhead_ms = 1000 * (wall - local_s) / len(files)
        print(f"| Ray, {actors} actor(s) x {cpus:g} CPU | {wall:.1f} | {len(files) / wall:.1f} | "
              f"{wall / audio_s:.4f} | start-up {startup:.1f} s; {overhead_ms:+.1f} ms/file vs local; "
              f"actor peak RSS {stats.get('actor_peak_rss_mb', 0):.0f} MB |")


if __name__ == "__main__":
    main()
