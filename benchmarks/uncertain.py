"""Choose a model's "uncertain" threshold on its validation speakers, through the served path.

A bundle records its validation speakers (used for early stopping and temperature, never for
fitting weights). Their clips go through ``EmotionRecognizer.predict_many`` — VAD, windows,
calibrated probabilities — and the table shows, per 0.05-wide band of top probability, how
often the prediction is right. The rule: **uncertain below the lowest t (0.20 to 0.80) from
which every band is right at least half the time** — below t a prediction is more likely wrong
than right. With ``--write`` it is stored in the bundle's config.json as ``uncertain_below``.

    python benchmarks/uncertain.py [--model default] [--corpora ../shared/corpora] [--write]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from common import CORPORA


def main() -> None:
    from ser.training.datasets import scan
    from ser.serving.inference import EmotionRecognizer

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--corpora", type=Path,
                    default=CORPORA)
    ap.add_argument("--write", action="store_true", help="store the threshold in the bundle")
    args = ap.parse_args()
    rec = EmotionRecognizer.load(args.model)
    val_speakers = set(rec.bundle.config["training"]["split"]["val"]["speakers"])
    records = [r for r in scan(args.corpora).records if r.speaker in val_speakers]
    conf, correct = [], []
    for record, result in zip(records, rec.predict_many([r.path for r in records], workers=2)):
        if isinstance(result, Exception) or not result.has_speech:
            continue
        conf.append(result.confidence)
        correct.append(result.emotion == record.label)
    conf, correct = np.array(conf), np.array(correct)
    print(f"model {args.model}: {len(conf)} clips of {len(val_speakers)} validation speakers "
          f"({', '.join(sorted(val_speakers))}); accuracy {100 * correct.mean():.1f}%")
    print("| top probability | clips | right | share of all |\n|---|---|---|---|")
    edges = np.round(np.arange(0.20, 0.801, 0.05), 2)
    band_ok = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        band = (conf >= lo) & (conf < hi)
        acc = correct[band].mean() if band.any() else float("nan")
        band_ok.append(bool(band.any() and acc >= 0.5) or not band.any())
        print(f"| {lo:.2f}-{hi:.2f} | {band.sum()} | {100 * acc:.1f}% | {100 * band.mean():.1f}% |")
    chosen = None
    for k, lo in enumerate(edges[:-1]):
        if all(band_ok[k:]):
            chosen = float(lo)
            break
    below = conf < (chosen or 0)
    print(f"\nchosen threshold: {chosen}: {100 * below.mean():.1f}% of the validation predictions "
          f"are flagged, {100 * correct[below].mean():.1f}% of them right; "
          f"{100 * correct[~below].mean():.1f}% of the others right")
    if args.write and chosen is not None:
        path = rec.bundle.root / "config.json"
        config = json.loads(path.read_text())
        config["uncertain_below"] = chosen
        config["uncertain_rule"] = ("the lowest t in 0.20..0.80 from which every 0.05-wide band "
                                    "of top probability is right at least half the time on the "
                                    "validation speakers (benchmarks/uncertain.py)")
        path.write_text(json.dumps(config, indent=1))
        print(f"written to {path}")


if __name__ == "__main__":
    main()
