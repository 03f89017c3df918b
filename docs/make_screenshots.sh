#!/usr/bin/env bash
# Regenerates the MLflow UI screenshots of docs/tracking.md (docs/mlflow_*.png): a tiny 2x2 sweep and
# one registered run on Set5 bird in a fresh SQLite store, the MLflow UI on it, headless Chromium
# (Debian package `chromium`) driven by docs/screenshot.py. Run from the repository root; needs
# ../shared/data. A few minutes (more on a busy machine: raise WAIT, seconds per page).
#   docs/make_screenshots.sh [PYTHON] [WORK_DIR]     (runs already in WORK_DIR are reused)
set -euo pipefail
PYTHON=${1:-python}
REPO=$(pwd)
WORK=${2:-$(mktemp -d)}
mkdir -p "$WORK"
PORT=5055
WAIT=${WAIT:-60}
LR=$REPO/../shared/data/set5/lr_x2/bird.png
HR=$REPO/../shared/data/set5/hr/bird.png
TINY="model.depth=3 model.width=16 max_iters=50 min_iters=10 learning_rate_policy_check_every=10 run_test_every=10 learning_rate_slope_range=30"
cd "$WORK"
export MLFLOW_TRACKING_URI="sqlite:///$WORK/mlflow.db"
if [ ! -s train.log ]; then
  "$PYTHON" -m zssr_tf.cli sweep tiny --image "$LR" $TINY
  "$PYTHON" -m zssr_tf.cli train "$LR" --gt "$HR" $TINY register_model=bird_zssr | tee train.log
fi
RUN=$(sed -n 's/^MLflow run \([0-9a-f]*\) .*/\1/p' train.log)
MODEL=$(sed -n 's|^MLflow model models:/\(m-[0-9a-f]*\).*|\1|p' train.log)
# One worker: under load the supervisor of several restarts them before they answer.
"$PYTHON" -m mlflow ui --backend-store-uri "$MLFLOW_TRACKING_URI" --port $PORT --workers 1 > ui.log 2>&1 &
UI=$!
trap 'kill $UI' EXIT
until curl -sf "http://127.0.0.1:$PORT/health" > /dev/null; do sleep 1; done
shot() {  # name, page, height
  "$PYTHON" "$REPO/docs/screenshot.py" "http://127.0.0.1:$PORT/$2" "$WORK/$1.png" --height "$3" --wait "$WAIT"
  # A 64-colour palette keeps each PNG small (UI screenshots have few colours).
  "$PYTHON" -c "from PIL import Image; Image.open('$WORK/$1.png').convert('RGB').quantize(64).save('$REPO/docs/$1.png', optimize=True)"
}
shot mlflow_runs "#/experiments/1/runs?workflowType=machine_learning" 760
shot mlflow_run "#/experiments/1/runs/$RUN" 1000
shot mlflow_model "#/experiments/1/models/$MODEL" 1000
ls -l "$REPO"/docs/mlflow_*.png
echo "runs and screenshots in $WORK"
