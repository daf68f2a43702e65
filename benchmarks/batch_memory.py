"""Peak memory of `predict_many` as the number of files grows: it keeps at most 4 x workers
files in flight, so the peak should stay flat from 100 to 5,000 files.

Each run is a fresh process predicting N links to corpus clips with the light model; the
figure is the peak RSS of that process (the main one, where results are assembled).

    python benchmarks/batch_memory.py [--counts 100 1000 5000] [--model light]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import CORPORA

CHILD = """
import resource, sys, time
from ser.serving.inference import EmotionRecognizer
paths = open(sys.argv[1]).read().split()
rec = EmotionRecognizer.load(sys.argv[2])
started = time.perf_counter()
n = sum(1 for _ in rec.predict_many(paths, workers=2))
print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, time.perf_counter() - started)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", type=int, nargs="+", default=[100, 1000, 5000])
    ap.add_argument("--model", default="light")
    ap.add_argument("--corpora", type=Path,
                    default=CORPORA)
    args = ap.parse_args()
    sources = sorted((args.corpora / "ravdess").rglob("*.flac"))[:50]
    print(f"model {args.model}; links to {len(sources)} RAVDESS clips; 2 workers")
    print("| files | peak RSS of the main process MB | wall s |\n|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.counts:
            paths = []
            for i in range(count):
                link = Path(tmp) / f"{count}_{i}.flac"
                os.symlink(sources[i % len(sources)], link)
                paths.append(str(link))
            listing = Path(tmp) / f"{count}.txt"
            listing.write_text("\n".join(paths))
            out = subprocess.run([sys.executable, "-c", CHILD, str(listing), args.model],
                                 capture_output=True, text=True, check=True).stdout.split()
            print(f"| {out[0]} | {float(out[1]):.0f} | {float(out[2]):.1f} |")


if __name__ == "__main__":
    main()
