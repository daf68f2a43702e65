"""`ser predict` and `ser models`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ser.audio import FILE_MAX_DURATION_S
from ser.common import ConfigError
from ser.interfaces.cli.base import EXTRAS


def cmd_predict(args: argparse.Namespace) -> int:
    from ser.serving import batch

    if not args.paths and args.from_list is None:
        args.parser.print_usage(sys.stderr)
        print("ser predict: error: give audio files, folders, globs or URIs, or --from-list FILE",
              file=sys.stderr)
        return 2
    sources = batch.expand_inputs([str(p) for p in args.paths], args.from_list)
    if not sources:
        raise ConfigError("no input files (the folders and globs given hold no audio files)")
    speakers = batch.read_speakers(args.speakers, sources) if args.speakers else None
    rows, failed = batch.run(
        sources, model=args.model, engine=args.engine, output=args.output, fmt=args.format,
        resume=args.resume, restart=args.restart, workers=args.workers, address=args.address, actors=args.actors,
        cpus_per_actor=args.cpus_per_actor, max_clip_s=args.max_clip,
        max_duration_s=args.max_duration, progress=len(sources) > 1 and sys.stderr.isatty(),
        verbose=args.verbose, speakers=speakers, adapt=not args.no_adapt)
    for row in rows:
        if "error" in row:
            print(f"ser: error: {row['path']}: {row['error']}", file=sys.stderr)
    if args.output is None:
        sys.stdout.write(batch.format_rows(rows, args.format))
    if failed:
        print(f"ser: {failed} of {len(rows)} files failed", file=sys.stderr)
    return 1 if failed else 0


def cmd_models(args: argparse.Namespace) -> int:
    """The shipped models: size, front end, architecture, cross-validated accuracy, and with
    --latency the measured time for one 3-s clip on this machine."""
    from importlib.resources import files

    from ser.serving.bundle import SHIPPED_MODELS, read_bundle, shipped_bundle_path

    rows = []
    for name, about in SHIPPED_MODELS.items():
        root = shipped_bundle_path(name)
        if not root.is_dir():
            continue
        info = read_bundle(root, verify=False)
        cfg = info.config
        metrics = cfg.get("metrics", {})
        cv = metrics.get("cross_validation", {}).get("summary", {}).get("overall", {})
        test = metrics.get("test", {}).get("overall", {})
        # Unseen speakers either way: 5-fold CV where the model has it, else its held-out split.
        protocol = "cv" if cv else ("test" if test else None)
        row = {"name": name, "description": about, "frontend": info.frontend,
               "architecture": cfg.get("arch", {}).get("name"),
               "parameters": cfg.get("training", {}).get("parameters"),
               "size_mb": round(sum(f.stat().st_size for f in root.iterdir()) / 1e6, 1),
               "accuracy_protocol": protocol,
               "wa": cv.get("wa", {}).get("mean") if cv else test.get("wa"),
               "ua": cv.get("ua", {}).get("mean") if cv else test.get("ua")}
        if args.latency:
            row["p50_ms_3s_clip"] = _latency_ms(name, str(files("ser") / "examples" / "speech_example.wav"))
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<10} {'front end':<13} {'architecture':<15} {'params':>9} {'size':>8} "
          f"{'WA':>7} {'UA':>6}" + (f" {'p50 3-s clip':>13}" if args.latency else ""))
    for r in rows:
        pct = lambda v: f"{100 * v:5.1f}%" if v is not None else "     -"  # noqa: E731
        mark = {"cv": " ", "test": "*"}.get(r["accuracy_protocol"], " ")
        line = (f"{r['name']:<10} {r['frontend']:<13} {r['architecture']:<15} "
                f"{r['parameters'] or 0:>9,} {r['size_mb']:>6.1f}MB {pct(r['wa'])}{mark}{pct(r['ua'])}")
        if args.latency:
            lat = r["p50_ms_3s_clip"]
            line += f" {lat:>10.1f} ms" if isinstance(lat, float) else f"  {lat}"
        print(line)
    print("Size: the bundle folder; default also reads the Whisper-base encoder's first layers "
          "(about 70 MB in memory) from the weight packages.\nWA/UA: accuracy (weighted/unweighted) "
          "on unseen speakers: 5-fold cross-validation grouped by speaker, or * the model's "
          "held-out test speakers (one split); details in each MODEL_CARD.md."
          + (" Latency: median of 10 predictions after one warm-up, this machine." if args.latency else ""))
    return 0


def _latency_ms(name: str, clip: str) -> "float | str":
    import time

    from ser.serving.inference import EmotionRecognizer

    try:
        rec = EmotionRecognizer.load(name)
    except Exception as exc:  # noqa: BLE001 - e.g. the whisper extra is not installed
        return f"unavailable ({type(exc).__name__})"
    rec.predict(clip)
    times = []
    for _ in range(10):
        started = time.perf_counter()
        rec.predict(clip)
        times.append(1000 * (time.perf_counter() - started))
    return float(sorted(times)[len(times) // 2])


def add_parsers(sub) -> None:
    p = sub.add_parser("models", help="list the shipped models (size, accuracy on unseen "
                                      "speakers; --latency times each)")
    p.add_argument("--latency", action="store_true", help="time one 3-s clip with each model")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("predict", help="predict the emotion of audio files or folders")
    p.add_argument("paths", nargs="*", help="files, folders, globs or URIs")
    p.add_argument("--from-list", type=Path, default=None,
                   help="a text file listing paths or URIs, one a line")
    p.add_argument("--format", choices=("table", "json", "jsonl", "csv", "parquet"), default="table",
                   help="table: one line a file for people; json/jsonl: every field (segments, "
                        "shares, warnings); csv: scalars and one column per emotion (no segments, "
                        "shares or warnings); parquet: all of it, one fixed schema (ray extra)")
    p.add_argument("--output", type=Path, help="write results to this file")
    p.add_argument("--speakers", type=Path, default=None,
                   help="a CSV with columns path,speaker (paths as given here): one speaker's "
                        "files are answered together, adapted to the speaker when their "
                        "emotions vary (the JSON's adapted, adapted_utterances)")
    p.add_argument("--no-adapt", action="store_true",
                   help="answer every utterance on its own: never adapt a recording (or a "
                        "speaker's files) to its speaker")
    p.add_argument("--resume", action="store_true",
                   help="go on from an earlier run with the same --output, model and settings: "
                        "keep its rows of unchanged files, try its failures again")
    p.add_argument("--restart", action="store_true",
                   help="discard the journal of an earlier run with the same --output")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local process pool, or Ray Data (pip install 'ser[ray]')")
    p.add_argument("--address", default=None,
                   help="Ray cluster to join (auto, or HOST:PORT of its head); default: start one here")
    p.add_argument("--actors", type=int, default=None, help="Ray actors (default: one per CPU of the cluster)")
    p.add_argument("--verbose", action="store_true", help="show Ray's own logging")
    p.add_argument("--cpus-per-actor", type=float, default=None,
                   help="CPUs Ray reserves per actor (default: up to 1, leaving half a CPU for "
                        "Ray's read tasks)")
    p.add_argument("--model", default=None,
                   help="a shipped model's name (default, reference, light; see `ser models`) "
                        "or a bundle folder")
    p.add_argument("--max-clip", type=float, default=5.0,
                   help="input up to this long (s) is one clip; longer is cut into utterances")
    p.add_argument("--max-duration", type=float, default=FILE_MAX_DURATION_S,
                   help="longest input (s)")
    p.add_argument("--workers", type=int, default=None,
                   help="local engine: worker processes that decode (default: CPUs, at most 4)")
    p.set_defaults(func=cmd_predict, needs=_predict_needs, parser=p)


def _predict_needs(args: argparse.Namespace) -> list:
    wanted = []
    if args.engine == "ray":
        wanted.append(("ray", EXTRAS["ray"]))
    elif args.format == "parquet":
        wanted.append(("ray", ("pyarrow",)))
    return wanted
