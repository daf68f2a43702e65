#!/usr/bin/env bash
# The reference system (hand-made features -> stacked LSTM 256-256-128, dense 256; Adam 1e-3,
# batch 128) trained and reported on both protocols, and the shipped `reference` bundle.
# Runs on a CPU (about 45 s per epoch on 2 cores) or, much faster, where PyTorch sees a GPU.
#
#   CORPORA=../shared/corpora OUT=runs/reference bash scripts/train_reference.sh
#
# Steps (independent ones run side by side; each leaves its folder under $OUT):
#   random       the reference's protocol: stratified random 70/10/20 split of the files of
#                RAVDESS + CREMA-D + TESS, the reference's hyperparameters
#   tune         Optuna over the LSTM's hyperparameters, scored on validation speakers
#   random_tuned the reference's protocol again, with the tuned hyperparameters
#   cv           5-fold cross-validation grouped by speaker over all corpora
#   ship         trained on every speaker (validation speakers for early stopping and
#                temperature), the cv report attached; INSTALL=1 copies it to
#                src/ser/models/reference (then: python benchmarks/uncertain.py --model
#                reference --write)
set -euo pipefail
CORPORA=${CORPORA:-../shared/corpora}
OUT=${OUT:-runs/reference}
SER=${SER:-ser}
EPOCHS=${EPOCHS:-60}
PATIENCE=${PATIENCE:-8}
TRIALS=${TRIALS:-40}
TUNE_SECONDS=${TUNE_SECONDS:-900}
TUNE_EPOCHS=${TUNE_EPOCHS:-25}
FOLDS=${FOLDS:-5}
WORKERS=${WORKERS:-}
CACHE=${CACHE:-}
STEPS=${STEPS:-"random tune cv"}  # which of the three chains below to run
mkdir -p "$OUT"
common=(--arch reference_lstm --anchor start --quiet)
[ -n "$WORKERS" ] && common+=(--workers "$WORKERS")
[ -n "$CACHE" ] && common+=(--cache-dir "$CACHE")
# The reference's training recipe: plain Adam, no label smoothing, no feature masking.
recipe=(--optimizer adam --label-smoothing 0 --no-mask --epochs "$EPOCHS" --patience "$PATIENCE")
reference_corpora=("$CORPORA/ravdess" "$CORPORA/crema-d" "$CORPORA/tess")
all_corpora=("$CORPORA/ravdess" "$CORPORA/crema-d" "$CORPORA/tess" "$CORPORA/emovo")

log() { echo "[$(date +%H:%M:%S)] $*"; }

# Features once for every corpus (cached), so that the parallel steps below only read them.
log "features"
$SER datasets extract "${all_corpora[@]}" --anchor start --quiet ${WORKERS:+--workers "$WORKERS"} \
  ${CACHE:+--cache-dir "$CACHE"}

step_random() {
  log "random: start"
  $SER train "${reference_corpora[@]}" --out "$OUT/random" --protocol random "${common[@]}" \
    "${recipe[@]}" > "$OUT/random.log" 2>&1
  log "random: done"
}
step_tune_then_random() {
  log "tune: start"
  $SER tune "${reference_corpora[@]}" --out "$OUT/tune" --arch reference_lstm --anchor start \
    --trials "$TRIALS" --timeout "$TUNE_SECONDS" --epochs "$TUNE_EPOCHS" --quiet \
    --optimizer adam --label-smoothing 0 --no-mask \
    ${WORKERS:+--workers "$WORKERS"} ${CACHE:+--cache-dir "$CACHE"} > "$OUT/tune.log" 2>&1
  log "tune: done; random_tuned: start"
  $SER train "${reference_corpora[@]}" --out "$OUT/random_tuned" --protocol random \
    "${common[@]}" "${recipe[@]}" --params "$OUT/tune/best_params.json" \
    > "$OUT/random_tuned.log" 2>&1
  log "random_tuned: done"
}
step_cv_then_ship() {
  log "cv: start"
  $SER cv "${all_corpora[@]}" --out "$OUT/cv" --folds "$FOLDS" "${common[@]}" "${recipe[@]}" \
    > "$OUT/cv.log" 2>&1
  log "cv: done; ship: start"
  $SER train "${all_corpora[@]}" --out "$OUT/ship" --test-fraction 0 "${common[@]}" \
    "${recipe[@]}" --cv-report "$OUT/cv/cv.json" > "$OUT/ship.log" 2>&1
  log "ship: done"
  if [ "${INSTALL:-0}" = 1 ]; then  # INSTALL=1: replace the packaged `reference` model
    rm -rf src/ser/models/reference && cp -r "$OUT/ship/bundle" src/ser/models/reference
    log "installed as src/ser/models/reference"
  fi
}

pids=()
[[ " $STEPS " == *" random "* ]] && { step_random & pids+=($!); }
[[ " $STEPS " == *" tune "* ]] && { step_tune_then_random & pids+=($!); }
[[ " $STEPS " == *" cv "* ]] && { step_cv_then_ship & pids+=($!); }
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
log "all steps finished (status $status)"
exit $status
