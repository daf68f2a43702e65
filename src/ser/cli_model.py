"""``ser predict``, ``ser train``, ``ser evaluate``, ``ser cv`` and ``ser tune``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import ConfigError



def cmd_predict(args: argparse.Namespace) -> int:
    from . import batch

    sources = batch.expand_inputs([str(p) for p in args.paths], args.from_list)
    if not sources:
        raise ConfigError("no input files")
    rows, failed = batch.run(
        sources, model=args.model, engine=args.engine, output=args.output, fmt=args.format,
        resume=args.resume, workers=args.workers, address=args.address, actors=args.actors,
        cpus_per_actor=args.cpus_per_actor, max_clip_s=args.max_clip,
        max_duration_s=args.max_duration, progress=len(sources) > 1 and sys.stderr.isatty())
    for row in rows:
        if "error" in row:
            print(f"ser: error: {row['path']}: {row['error']}", file=sys.stderr)
    if args.output is None:
        sys.stdout.write(batch.format_rows(rows, args.format))
    if failed:
        print(f"ser: {failed} of {len(rows)} files failed", file=sys.stderr)
    return 1 if failed else 0


def _train_config(args: argparse.Namespace):
    from .train import TrainConfig, validate_config

    default_arch = "conv_attention" if args.frontend == "handcrafted" else "embedding_mlp"
    arch = {"name": args.arch or default_arch}
    common = dict(seed=args.seed, max_epochs=args.epochs, augment_copies=args.augment,
                  frontend=args.frontend, optimizer=args.optimizer, l2_c=args.l2_c,
                  patience=args.patience, label_smoothing=args.label_smoothing,
                  mask_features=not args.no_mask, device=args.device, precision=args.precision)
    if args.optimizer == "logistic":
        arch.update(dense_units=0, input_dropout=0.0)
    optimiser = {"learning_rate": 1e-3 if args.lr is None else args.lr,
                 "batch_size": 128 if args.batch_size is None else args.batch_size}
    if args.params:
        try:
            params = json.loads(Path(args.params).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{args.params}: not a readable best_params.json ({exc})") from None
        explicit = [flag for flag, value in (("--lr", args.lr), ("--batch-size", args.batch_size),
                                            ("--arch", args.arch)) if value is not None]
        if explicit:  # never let one silently override the other
            raise ConfigError(f"--params sets the hyperparameters; drop {', '.join(explicit)} "
                              "or edit the file")
        if params.get("frontend", args.frontend) != args.frontend:
            raise ConfigError(f"{args.params} was tuned for the {params['frontend']} front end; "
                              f"pass --frontend {params['frontend']}")
        arch = {**arch, **params.get("arch", {})}
        optimiser.update({k: params[k] for k in ("learning_rate", "batch_size", "weight_decay")
                          if k in params})
    config = TrainConfig(arch=arch, **common, **optimiser)
    validate_config(config)
    return config


def _feature_config(args: argparse.Namespace):
    from .features import FeatureConfig

    return FeatureConfig(anchor=args.anchor)


def cmd_train(args: argparse.Namespace) -> int:
    from .train import train_pipeline

    summary = train_pipeline(
        args.data, args.out, config=_train_config(args), feature_config=_feature_config(args),
        protocol=args.protocol, test_fraction=args.test_fraction, cache_dir=args.cache_dir,
        workers=args.workers, progress=not args.quiet, time_budget_s=args.time_budget,
        cv_report=args.cv_report, resume=args.resume,
    )
    print(f"bundle written to {summary['bundle']}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .datasets import load_records
    from .evaluate import evaluate_served, summary_table, write_report
    from .inference import EmotionRecognizer

    recognizer = EmotionRecognizer.load(args.model)
    records, _ = load_records(args.data)
    rep = evaluate_served(recognizer, records, workers=args.workers, progress=not args.quiet)
    path = write_report(rep, args.out, extra={"model": str(recognizer.bundle.root),
                                              "data": [str(d) for d in args.data]})
    print(summary_table(rep))
    for name, part in rep.get("speakers", {}).items():
        print(f"\n{name}:\n{summary_table(part)}")
    skipped = rep["not_analysed"]
    if any(skipped.values()):
        print(f"\nnot analysed (left out of the figures): {skipped['no_speech']} without speech, "
              f"{skipped['errors']} that could not be decoded")
    print(f"report written to {path}")
    return 0


def write_cv_outputs(result: dict, out: Path) -> None:
    """cv.json, the test folds' confusion matrices summed (all and per corpus) and each fold's
    training curves."""
    from .evaluate import plot_confusion
    from .train import save_history

    out.mkdir(parents=True, exist_ok=True)
    (out / "cv.json").write_text(json.dumps(result, indent=2))
    n = len(result["folds"])
    plot_confusion(result["confusion"], out / "confusion_matrix.png", f"{n} test folds")
    for corpus, matrix in result["confusion_per_corpus"].items():
        plot_confusion(matrix, out / f"confusion_matrix_{corpus}.png", f"{corpus}, {n} test folds")
    for k, history in enumerate(result["histories"], start=1):
        if len(history["loss"]) > 1:
            save_history({key: history[key] for key in ("loss", "accuracy", "val_loss", "val_accuracy")},
                         out / f"fold{k}")


def cmd_cv(args: argparse.Namespace) -> int:
    from .train import cross_validate

    result = cross_validate(
        args.data, args.folds, config=_train_config(args), feature_config=_feature_config(args),
        cache_dir=args.cache_dir, workers=args.workers, progress=not args.quiet,
    )
    write_cv_outputs(result, args.out)
    print(result["table"])
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from .tune import tune

    best = tune(
        args.data, args.out, trials=args.trials, timeout_s=args.timeout, epochs=args.epochs,
        seed=args.seed, cache_dir=args.cache_dir, workers=args.workers, progress=not args.quiet,
        feature_config=_feature_config(args), frontend=args.frontend, arch_name=args.arch,
        device=args.device, recipe={"optimizer": args.optimizer, "label_smoothing": args.label_smoothing,
                                    "mask_features": not args.no_mask, "precision": args.precision},
    )
    print(json.dumps(best, indent=2))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .api import ServerConfig, serve

    serve(args.host, args.port, ServerConfig(
        model=args.model, max_upload_mb=args.max_upload_mb,
        max_duration_s=args.max_duration, max_sync_duration_s=args.max_sync_duration,
        timeout_s=args.timeout, max_concurrency=args.max_concurrency, max_jobs=args.max_jobs))
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    import os
    from importlib.resources import files

    app_file = str(files("ser") / "app.py")
    env = dict(os.environ, SER_APP_MAX_UPLOAD_MB=str(args.max_upload_mb))
    if args.model:
        env["SER_MODEL"] = str(args.model)
    cmd = [sys.executable, "-m", "streamlit", "run", app_file,
           "--server.address", args.host, "--server.port", str(args.port),
           # Streamlit refuses bigger files with only a tooltip; up to 4x the limit reaches the
           # page, which then says in words that the file is too large.
           "--server.maxUploadSize", str(int(max(1, 4 * args.max_upload_mb))),
           "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--client.toolbarMode", "viewer"]
    # Replace this process with Streamlit's, so that signals (Ctrl-C, terminate) reach it.
    os.execve(sys.executable, cmd, env)


def _add_training_args(p: argparse.ArgumentParser) -> None:
    from .architectures import ARCHITECTURES
    from .frontends import FRONTENDS

    p.add_argument("data", nargs="+", type=Path, help="corpus folders or CSV files")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--arch", choices=ARCHITECTURES, default=None,
                   help="default: conv_attention for hand-made features, embedding_mlp for an encoder")
    p.add_argument("--frontend", choices=FRONTENDS, default="handcrafted",
                   help="hand-made features, or pooled Whisper-base encoder states "
                        "(needs `pip install 'ser[whisper]'`; implies --arch embedding_mlp)")
    p.add_argument("--params", type=Path, help="best_params.json from `ser tune`")
    p.add_argument("--epochs", type=int, default=30, help="maximum epochs (early stopping)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-3)")
    p.add_argument("--batch-size", type=int, default=None, help="default 128")
    p.add_argument("--augment", type=int, default=0, help="waveform-augmented copies per clip")
    p.add_argument("--optimizer", choices=("adamw", "adam", "logistic"), default="adamw",
                   help="'adam': the reference's plain Adam; 'logistic': a linear head on pooled "
                        "encoder vectors solved by L-BFGS")
    p.add_argument("--patience", type=int, default=6, help="early-stopping patience (epochs)")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--no-mask", action="store_true", help="no time/feature masking in training")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: bfloat16 autocast, faster where the processor supports it")
    p.add_argument("--l2-c", type=float, default=0.01, help="inverse L2 strength for 'logistic'")
    p.add_argument("--anchor", choices=("speech", "start"), default="speech",
                   help="window placement: centred speech (default) or the first 3 s")
    p.add_argument("--seed", type=int, default=0)
    _add_common(p)


def _add_server_args(p: argparse.ArgumentParser, port: int) -> None:
    """What `ser serve` and `ser app` share: where to listen, which model, upload limit."""
    p.add_argument("--host", default="127.0.0.1", help="listen address (default loopback)")
    p.add_argument("--port", type=int, default=port)
    p.add_argument("--model", default=None,
                   help="a shipped model's name (default, reference, light) or a bundle folder")
    p.add_argument("--max-upload-mb", type=float, default=25.0)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", type=Path, default=None, help="feature cache folder")
    p.add_argument("--workers", type=int, default=None, help="parallel worker processes")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def cmd_models(args: argparse.Namespace) -> int:
    """The shipped models: size, front end, architecture, cross-validated accuracy, and with
    --latency the measured time for one 3-s clip on this machine."""
    from importlib.resources import files

    from .bundle import SHIPPED_MODELS, read_bundle, shipped_bundle_path

    rows = []
    for name, about in SHIPPED_MODELS.items():
        root = shipped_bundle_path(name)
        if not root.is_dir():
            continue
        info = read_bundle(root, verify=False)
        cfg = info.config
        cv = cfg.get("metrics", {}).get("cross_validation", {}).get("summary", {}).get("overall", {})
        row = {"name": name, "description": about, "frontend": info.frontend,
               "architecture": cfg.get("arch", {}).get("name"),
               "parameters": cfg.get("training", {}).get("parameters"),
               "size_mb": round(sum(f.stat().st_size for f in root.iterdir()) / 1e6, 1),
               "cv_wa": cv.get("wa", {}).get("mean"), "cv_ua": cv.get("ua", {}).get("mean")}
        if args.latency:
            row["p50_ms_3s_clip"] = _latency_ms(name, str(files("ser") / "examples" / "speech_example.wav"))
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<10} {'front end':<13} {'architecture':<15} {'params':>9} {'size':>8} "
          f"{'CV WA':>6} {'CV UA':>6}" + (f" {'p50 3-s clip':>13}" if args.latency else ""))
    for r in rows:
        pct = lambda v: f"{100 * v:5.1f}%" if v is not None else "     -"  # noqa: E731
        line = (f"{r['name']:<10} {r['frontend']:<13} {r['architecture']:<15} "
                f"{r['parameters'] or 0:>9,} {r['size_mb']:>6.1f}MB {pct(r['cv_wa'])} {pct(r['cv_ua'])}")
        if args.latency:
            lat = r["p50_ms_3s_clip"]
            line += f" {lat:>10.1f} ms" if isinstance(lat, float) else f"  {lat}"
        print(line)
    print("Size: the bundle folder; default also loads the Whisper-base encoder (about 145 MB) "
          "from its packages.\nCV: 5-fold cross-validation grouped by speaker (unseen voices), "
          "as in each MODEL_CARD.md."
          + (" Latency: median of 10 predictions after one warm-up, this machine." if args.latency else ""))
    return 0


def _latency_ms(name: str, clip: str) -> "float | str":
    import time

    from .inference import EmotionRecognizer

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


def add_commands(sub) -> None:
    from .frontends import FRONTENDS

    p = sub.add_parser("models", help="list the shipped models (size, accuracy, latency)")
    p.add_argument("--latency", action="store_true", help="time one 3-s clip with each model")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("predict", help="predict the emotion of audio files or folders")
    p.add_argument("paths", nargs="*", help="files, folders, globs or URIs")
    p.add_argument("--from-list", type=Path, default=None,
                   help="a text file listing paths or URIs, one a line")
    p.add_argument("--format", choices=("table", "json", "jsonl", "csv", "parquet"), default="table")
    p.add_argument("--output", type=Path, help="write results to this file")
    p.add_argument("--resume", action="store_true",
                   help="skip files already done in an earlier run with the same --output")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local process pool, or Ray Data (pip install 'ser[ray]')")
    p.add_argument("--address", default=None,
                   help="Ray cluster to join (auto, ray://host:10001); default: start one here")
    p.add_argument("--actors", type=int, default=None, help="Ray actors (default: CPUs / 2)")
    p.add_argument("--cpus-per-actor", type=float, default=None)
    p.add_argument("--model", default=None,
                   help="a shipped model's name (default, reference, light; see `ser models`) "
                        "or a bundle folder")
    p.add_argument("--max-clip", type=float, default=5.0,
                   help="input up to this long (s) is one clip; longer is cut into utterances")
    p.add_argument("--max-duration", type=float, default=3600.0, help="longest input (s)")
    p.add_argument("--workers", type=int, default=None)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("serve", help="serve the HTTP API (FastAPI + uvicorn)")
    _add_server_args(p, port=8000)
    p.add_argument("--max-duration", type=float, default=600.0, help="longest audio (s), as a job")
    p.add_argument("--max-sync-duration", type=float, default=120.0,
                   help="longest audio (s) for /v1/predict; longer goes to /v1/jobs")
    p.add_argument("--max-jobs", type=int, default=8, help="jobs queued or running at once")
    p.add_argument("--timeout", type=float, default=60.0, help="per-request limit (s)")
    p.add_argument("--max-concurrency", type=int, default=2, help="concurrent analyses")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("app", help="start the Streamlit web app")
    _add_server_args(p, port=8501)
    p.set_defaults(func=cmd_app)

    p = sub.add_parser("train", help="train a model and write a bundle")
    _add_training_args(p)
    p.add_argument("--protocol", choices=("speaker", "random"), default="speaker")
    p.add_argument("--test-fraction", type=float, default=None)
    p.add_argument("--time-budget", type=float, default=None, help="stop training after N s")
    p.add_argument("--resume", action="store_true",
                   help="continue from the last epoch's checkpoint in --out")
    p.add_argument("--cv-report", type=Path, default=None,
                   help="cv.json of `ser cv` with the same settings, reported in the model card")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a model bundle on labelled data")
    p.add_argument("model", help="a shipped model's name or a bundle folder")
    p.add_argument("data", nargs="+", type=Path)
    p.add_argument("--out", type=Path, default=Path("evaluation"))
    _add_common(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("cv", help="k-fold cross-validation grouped by speaker")
    _add_training_args(p)
    p.add_argument("--folds", type=int, default=5)
    p.set_defaults(func=cmd_cv)

    p = sub.add_parser("tune", help="hyperparameter search (Optuna) on validation speakers")
    p.add_argument("data", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--timeout", type=float, default=None, help="search budget in seconds")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--anchor", choices=("speech", "start"), default="speech")
    p.add_argument("--frontend", choices=FRONTENDS, default="handcrafted")
    p.add_argument("--arch", choices=("reference_lstm", "conv_attention"), default=None,
                   help="search this architecture only (hand-made features)")
    p.add_argument("--optimizer", choices=("adamw", "adam"), default="adamw")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--no-mask", action="store_true", help="no time/feature masking in training")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    _add_common(p)
    p.set_defaults(func=cmd_tune)
