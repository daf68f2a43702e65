"""What a user waits for: wall time and peak memory of `ser predict` as a fresh process, on one
clip and on 200 clips, next to `python -c "import numpy"` measured in the same run.

    python benchmarks/cli_startup.py [--model default] [--corpora ../shared/corpora] [--repeats 3]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from common import CORPORA, machine_baseline


def measure(cmd: list[str], repeats: int) -> tuple[float, float]:
    """(median wall seconds, peak RSS MB of the child) over ``repeats`` fresh processes."""
    walls, peaks = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - started)
        # RUSAGE_CHILDREN keeps the largest child so far: run the small commands first.
        peaks.append(max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024)
    return sorted(walls)[len(walls) // 2], max(peaks)


def main() -> None:
    from importlib.resources import files

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--corpora", type=Path,
                    default=CORPORA)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    ser = str(Path(sys.executable).with_name("ser"))
    clip = str(files("ser") / "examples" / "speech_example.wav")
    clips = sorted((args.corpora / "ravdess").rglob("*.flac"))[:200]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listing:
        listing.write("\n".join(map(str, clips)))
    rows = [("python -c 'import numpy'", [sys.executable, "-c", "import numpy"]),
            ("ser --help", [ser, "--help"]),
            ("ser predict, 1 clip", [ser, "predict", clip, "--model", args.model]),
            (f"ser predict, {len(clips)} clips", [ser, "predict", "--from-list", listing.name,
                                                  "--model", args.model])]
    print(machine_baseline())
    print(f"model {args.model}; median of {args.repeats} fresh processes")
    print("| command | wall s | peak RSS MB |\n|---|---|---|")
    for name, cmd in rows:
        wall, peak = measure(cmd, args.repeats if "200" not in name else 1)
        print(f"| {name} | {wall:.2f} | {peak:.0f} |")


if __name__ == "__main__":
    main()
