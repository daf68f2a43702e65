"""`ser features` and `ser datasets` (scan, extract)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


from ser.interfaces.cli.base import CliError, encoder_needs
from ser.frontends.features import ANCHORS
from ser.interfaces.cli.training import add_encoder_arguments, encoder_options


def _cmd_features(args: argparse.Namespace) -> int:
    import numpy as np

    from ser.audio import decode
    from ser.frontends.features import FeatureConfig, features_from_waveform
    from ser.frontends.windows import analysis_units, fit_window

    config = FeatureConfig()
    audio = decode(args.file, config.sample_rate)
    if args.windows:  # the windows `ser predict` analyses: the clip, or each utterance piece
        windows = [u.window for u in analysis_units(audio.samples, config)]
        if not windows:
            raise CliError(f"{args.file}: no speech found")
        mats = np.stack([features_from_waveform(w, config) for w in windows])
    else:
        mats = features_from_waveform(fit_window(audio.samples, config), config)[None]
    summary = {
        "file": str(args.file),
        "duration_s": round(audio.duration_s, 3),
        "sample_rate": config.sample_rate,
        "windows": int(mats.shape[0]),
        "shape": list(mats.shape[1:]),
        "feature_config_hash": config.hash(),
        "groups": {},
    }
    names = config.feature_names
    for group in ("mfcc", "mfcc_delta", "chroma", "logmel", "contrast", "tonnetz"):
        idx = [i for i, n in enumerate(names) if n.rsplit("_", 1)[0] == group]
        block = mats[..., idx]
        summary["groups"][group] = {
            "n": len(idx),
            "mean": round(float(block.mean()), 3),
            "std": round(float(block.std()), 3),
        }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['file']}: {summary['duration_s']} s at {config.sample_rate} Hz")
        print(
            f"features: {summary['windows']} window(s) x {mats.shape[1]} frames x "
            f"{mats.shape[2]} features (config {summary['feature_config_hash']})"
        )
        for group, stats in summary["groups"].items():
            print(f"  {group:<11} {stats['n']:>4}  mean {stats['mean']:>9.3f}  std {stats['std']:>8.3f}")
    return 0


def _cmd_datasets_scan(args: argparse.Namespace) -> int:
    from collections import Counter

    from ser.training.datasets import scan, summarise

    result = scan(args.dir, corpus=args.corpus)
    summary = summarise(result.records)
    summary["skipped"] = dict(result.skipped)
    if args.speakers:
        summary["speakers"] = dict(sorted(Counter(r.speaker for r in result.records).items()))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{summary['files']} usable files under {args.dir}")
    for corpus, info in summary["corpora"].items():
        classes = ", ".join(f"{k} {v}" for k, v in info["classes"].items())
        print(f"  {corpus:<8} {info['files']:>5} files  {info['speakers']:>3} speakers  {classes}")
    if args.speakers:
        for speaker, n in summary["speakers"].items():
            print(f"    {speaker:<16} {n:>4}")
    if result.skipped:
        print("skipped:")
        for reason, n in result.skipped.most_common():
            print(f"  {n:>5}  {reason}")
    if not result.records:
        raise CliError(f"no corpus files found under {args.dir}")
    return 0


def _cmd_datasets_extract(args: argparse.Namespace) -> int:
    """Fill the feature cache for corpora before training (parallel, resumable by design)."""
    from ser.training.extraction import failure_summary
    from ser.frontends.features import FeatureConfig
    from ser.training.datasets import load_records
    from ser.training.extraction import extract_inputs

    records, _ = load_records(args.data)
    options = encoder_options(args) or None
    config = FeatureConfig(anchor=args.anchor, window_s=args.window_s)
    ex = extract_inputs(records, config, args.frontend, args.cache_dir, args.workers,
                        not args.quiet, options=options)
    if ex.failures:
        print(failure_summary(ex.failures), file=sys.stderr)
    print(f"{len(ex.records)} of {len(records)} clips ready ({args.frontend}, "
          f"input {list(ex.features.shape[1:])}), {ex.cache_hits} from the cache")
    return 0


def _cmd_datasets_download(args: argparse.Namespace) -> int:
    from ser.training.download import download_corpus

    for name in args.names:
        report = download_corpus(name, args.to, mirror=args.mirror, progress=not args.quiet)
        extra = f", {report.unverified} more not in the manifest" if report.unverified else ""
        gone = f", {len(report.missing)} listed but not in the release" if report.missing else ""
        print(f"{name}: {report.verified} files checked against their sha256{extra}{gone} "
              f"in {report.folder} ({report.downloaded_bytes / 1e6:.1f} MB downloaded)")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("features", help="compute the feature matrix of an audio file")
    p.add_argument("file", type=Path, help="an audio file")
    p.add_argument("--windows", action="store_true",
                   help="features of each window `ser predict` analyses (utterances of long input)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_features)

    p = sub.add_parser("datasets", help="inspect corpora")
    dsub = p.add_subparsers(dest="datasets_command", metavar="ACTION", required=True,
                            help="run `ser datasets ACTION --help` for its options")
    q = dsub.add_parser("scan", help="count files per corpus, class and speaker")
    q.add_argument("dir", type=Path, help="a folder of corpora, read by their file naming")
    q.add_argument("--corpus", default=None, help="only this corpus's naming")
    q.add_argument("--speakers", action="store_true", help="list files per speaker")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=_cmd_datasets_scan)
    q = dsub.add_parser("extract", help="compute and cache model inputs for corpora")
    q.add_argument("data", nargs="+", type=Path, help="corpus folders or CSV files")
    q.add_argument("--frontend", choices=("handcrafted", "whisper-base"), default="handcrafted",
                   help="model inputs: hand-made features or Whisper-base states")
    q.add_argument("--anchor", choices=ANCHORS, default="speech",
                   help="window placement (see `ser train --help`)")
    q.add_argument("--window-s", type=float, default=3.0, help="window length in seconds")
    add_encoder_arguments(q)
    q.add_argument("--cache-dir", type=Path, default=None, help="feature cache folder")
    q.add_argument("--workers", type=int, default=None, help="parallel worker processes")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(func=_cmd_datasets_extract, needs=encoder_needs)
    q = dsub.add_parser("download", help="download public corpora (RAVDESS, CREMA-D, TESS, nEMO) "
                        "into the layout the readers expect, checked file by file")
    q.add_argument("names", nargs="+", metavar="NAME",
                   help="corpora: ravdess, crema-d, tess, nemo (emovo and banglaser have no stable public download: the command says where they come from)")
    q.add_argument("--to", type=Path, default=Path("corpora"),
                   help="folder that receives one sub-folder per corpus")
    q.add_argument("--mirror", default=None,
                   help="base URL of a mirror with the same files, instead of the public source")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(func=_cmd_datasets_download)
