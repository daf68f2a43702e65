#!/usr/bin/env bash
# The measurements behind the shipped model's settings, all on the same speaker-grouped split
# (seed 0: whole speakers in train / validation / test), decided on validation speakers only.
#   runs/anchor_speech   window centred on the speech (silence trimmed)   [default]
#   runs/anchor_start    the reference's first 3 s
#   runs/augment1        + one waveform-augmented copy of each training clip
#   runs/reference_lstm  the reference architecture, same data and split
#   runs/random          the reference's random file-level protocol (comparison only)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/corpora}
ser() { .venv/bin/ser "$@"; }
run() { local name=$1; shift; [ -f "runs/$name/summary.json" ] || ser train "$DATA" --out "runs/$name" --quiet "$@"; }
run anchor_speech --anchor speech
run anchor_start --anchor start
run augment1 --augment 1
run random --protocol random
run reference_lstm --arch reference_lstm --time-budget 1500
# The Whisper-base MLP head that was shipped before the logistic head (tuned with Optuna):
#   ser tune "$DATA" --frontend whisper-base --out runs/tune_whisper --trials 40 --epochs 60
#   ser cv "$DATA" --frontend whisper-base --params runs/tune_whisper/best_params.json --epochs 60 --folds 5 --out runs/cv_default
#   ser train "$DATA" --frontend whisper-base --params runs/tune_whisper/best_params.json --epochs 60 --augment 1 --out runs/whisper_aug1
