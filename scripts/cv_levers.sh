#!/usr/bin/env bash
# The levers on the same folds: 5-fold speaker-grouped CV of the logistic head on pooled
# Whisper-base states (seed 0), one run per row of docs/results.md "Levers" table ("shipped": the
# default's recipe, C chosen by scripts/train_default.sh; a later --l2-c overrides the base's;
# the "shipped_*" rows vary the whole-utterance recipe "whole_c001", measured first). Each run writes
# runs/cv_<name>/cv.md; the summary line per run goes to stdout. Needs `make install`.
# The first run with --encoder-states extracts every layer's states once (about 5 minutes for
# the three corpora on 2 cores); the others read the cache.
#   usage: scripts/cv_levers.sh [NAME...]   (default: every lever below)
set -euo pipefail
cd "$(dirname "$0")/.."
S=${CORPORA:-${SHARED:-../shared/corpora}}  # CORPORA=corpora after `ser datasets download`
DATA=("$S/ravdess" "$S/crema-d" "$S/emovo")
base=(--frontend whisper-base --optimizer logistic --l2-c 0.01 --folds 5 --seed 0 --quiet)
declare -A LEVERS=(
  [baseline]=""
  [tess]=""  # TESS added to the data (below)
  [bal1]="--balance-corpora"
  [bal05]="--balance-corpora 0.5"
  [ct2_float32]="--encoder-compute-type float32"
  [c0001]="--l2-c 0.001"
  [whole3]="--encoder-states 6 --anchor whole --window-s 3"
  [onnx_final]="--encoder-states 6"
  [state3]="--encoder-states 3"
  [state4]="--encoder-states 4"
  [state5]="--encoder-states 5"
  [state34]="--encoder-states 3,4"
  [state2345]="--encoder-states 2,3,4,5"
  [state3_bal05]="--encoder-states 3 --balance-corpora 0.5"
  [state34_bal05]="--encoder-states 3,4 --balance-corpora 0.5"
  [state34_whole3]="--encoder-states 3,4 --anchor whole --window-s 3"
  [state34_whole6]="--encoder-states 3,4 --anchor whole --window-s 6"
  [state34_whole3_bal05]="--encoder-states 3,4 --anchor whole --window-s 3 --balance-corpora 0.5"
  [state2345_whole3]="--encoder-states 2,3,4,5 --anchor whole --window-s 3"
  [state2345_whole3_bal05]="--encoder-states 2,3,4,5 --anchor whole --window-s 3 --balance-corpora 0.5"
  [shipped_tess]="--encoder-states 2,3,4,5 --anchor whole --window-s 3 --balance-corpora 0.5 --l2-c 0.001"
  [shipped_states12345]="--encoder-states 1,2,3,4,5 --anchor whole --window-s 3 --balance-corpora 0.5 --l2-c 0.001"
  [shipped_states_all]="--encoder-states 0,1,2,3,4,5,6 --anchor whole --window-s 3 --balance-corpora 0.5 --l2-c 0.001"
  [shipped_augment]="--encoder-states 2,3,4,5 --anchor whole --window-s 3 --balance-corpora 0.5 --l2-c 0.001 --augment 1"
  [shipped_states34]="--encoder-states 3,4 --anchor whole --window-s 3 --balance-corpora 0.5 --l2-c 0.001"
  [shipped_bal1]="--encoder-states 2,3,4,5 --anchor whole --window-s 3 --balance-corpora 1 --l2-c 0.001"
  [shipped]="--encoder-states 2,3,4,5 --balance-corpora 0.5 --l2-c 0.001"
  [state2345_c001]="--encoder-states 2,3,4,5 --l2-c 0.001"
  [whole_c001]="--encoder-states 2,3,4,5 --anchor whole --window-s 3 --balance-corpora 0.5 --l2-c 0.001"
  # Issue 22: the shipped recipe with each new corpus (more voices and languages), then all.
  [shipped_nemo]="--encoder-states 2,3,4,5 --balance-corpora 0.5 --l2-c 0.001"
  [shipped_banglaser]="--encoder-states 2,3,4,5 --balance-corpora 0.5 --l2-c 0.001"
  [shipped_turev]="--encoder-states 2,3,4,5 --balance-corpora 0.5 --l2-c 0.001"
  [shipped_new3]="--encoder-states 2,3,4,5 --balance-corpora 0.5 --l2-c 0.001"
  [shipped_nb]="--encoder-states 2,3,4,5 --balance-corpora 0.5 --l2-c 0.001"  # nEMO + BanglaSER
  # Issue 22: the held-out speakers also under recording conditions; then training on one
  # condition copy of each clip (scripts/cv_levers.sh shipped_nb_cond shipped_nb_augcond).
  [shipped_nb_cond]="--encoder-states 2,3,4,5 --balance-corpora 0.5 --l2-c 0.001 --test-conditions"
  [shipped_nb_augcond]="--encoder-states 2,3,4,5 --balance-corpora 0.5 --l2-c 0.001 --test-conditions --augment 1 --augment-kind conditions"
  [shipped_nb_augcond_w05]="--encoder-states 2,3,4,5 --balance-corpora 0.5 --l2-c 0.001 --test-conditions --augment 1 --augment-kind conditions --augment-weight 0.5"
  [shipped_nb_augcond_w03]="--encoder-states 2,3,4,5 --balance-corpora 0.5 --l2-c 0.001 --test-conditions --augment 1 --augment-kind conditions --augment-weight 0.3"
  # The shipped recipe with the encoder's linear layers on int8 weights (dynamic quantisation).
  [shipped_nb_augcond_w03_int8]="--encoder-states 2,3,4,5 --encoder-compute-type int8 --balance-corpora 0.5 --l2-c 0.001 --test-conditions --augment 1 --augment-kind conditions --augment-weight 0.3"
  [shipped_nb_augcond_c002]="--encoder-states 2,3,4,5 --balance-corpora 0.5 --l2-c 0.002 --test-conditions --augment 1 --augment-kind conditions"
)
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(baseline tess bal1 bal05 ct2_float32 c0001 whole3 onnx_final state3 state4 state5 state34 state2345 state3_bal05
                                  state34_bal05 state34_whole3 state34_whole6 state34_whole3_bal05
                                  state2345_whole3 state2345_whole3_bal05 whole_c001 shipped_tess
                                  shipped_states12345 shipped_states_all shipped_augment
                                  shipped_states34 shipped_bal1 shipped state2345_c001)
for name in "${names[@]}"; do
  read -r -a extra <<< "${LEVERS[$name]}"
  data=("${DATA[@]}")
  case $name in
    *tess) data+=("$S/tess");;
    *_nemo) data+=("$S/nemo");;
    *_banglaser) data+=("$S/banglaser");;
    *_turev) data+=("$S/turev-db");;
    *_new3) data+=("$S/nemo" "$S/banglaser" "$S/turev-db");;
    *_nb|*_nb_*) data+=("$S/nemo" "$S/banglaser");;
  esac
  start=$(date +%s)
  .venv/bin/ser cv "${data[@]}" "${base[@]}" "${extra[@]}" --out "runs/cv_$name" > "runs/cv_$name.log" 2>&1
  echo "== $name (${LEVERS[$name]}): $(( $(date +%s) - start )) s"
  grep -E '^\| (crema-d|emovo|ravdess|tess|nemo|banglaser|turev-db|overall) ' "runs/cv_$name.log"
  sed -n '/under recording conditions/,$p' "runs/cv_$name.log"
done
