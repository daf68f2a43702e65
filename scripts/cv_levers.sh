#!/usr/bin/env bash
# Issue 14's levers on the same folds: 5-fold speaker-grouped CV of the logistic head on pooled
# Whisper-base states (seed 0), one run per row of README's "Levers" table. Each run writes
# runs/cv_<name>/cv.md; the summary line per run goes to stdout. Needs `make install`.
# The first run with --encoder-states extracts every layer's states once (about 5 minutes for
# the three corpora on 2 cores); the others read the cache.
#   usage: scripts/cv_levers.sh [NAME...]   (default: every lever below)
set -euo pipefail
cd "$(dirname "$0")/.."
S=${SHARED:-../shared/corpora}
DATA=("$S/ravdess" "$S/crema-d" "$S/emovo")
base=(--frontend whisper-base --optimizer logistic --l2-c 0.01 --folds 5 --seed 0 --quiet)
declare -A LEVERS=(
  [onnx_final]="--encoder-states 6"
  [state3]="--encoder-states 3"
  [state4]="--encoder-states 4"
  [state5]="--encoder-states 5"
  [state34]="--encoder-states 3,4"
  [state2345]="--encoder-states 2,3,4,5"
  [state3_bal05]="--encoder-states 3 --balance-corpora 0.5"
)
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(onnx_final state3 state4 state5 state34 state2345 state3_bal05)
for name in "${names[@]}"; do
  read -r -a extra <<< "${LEVERS[$name]}"
  start=$(date +%s)
  .venv/bin/ser cv "${DATA[@]}" "${base[@]}" "${extra[@]}" --out "runs/cv_$name" > "runs/cv_$name.log" 2>&1
  echo "== $name (${LEVERS[$name]}): $(( $(date +%s) - start )) s"
  grep -E '^\| (crema-d|emovo|ravdess|overall) ' "runs/cv_$name.log"
done
