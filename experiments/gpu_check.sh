#!/usr/bin/env bash
# The GPU check (issue 29): ZSSR on JAX (and PyTorch if time is left) on one GPU machine that has
# JAX, PyTorch, NumPy, SciPy, scikit-image, OpenCV, Pillow, PyYAML, h5py, tqdm, psutil and
# matplotlib but no TensorFlow, no MLflow and no package registry. At most 8 minutes.
#
#   experiments/gpu_check.sh OUT_DIR [--cpu]
#
# 1. Installs the carried wheels in .whl/ (keras and what it and the tests need beyond that
#    machine; fetch them beforehand, see experiments/README.md) into /tmp/site (--no-deps).
# 2. Runs the core tests with KERAS_BACKEND=jax (the list `make test-jax` runs).
# 3. Times Set5 x2 (tests/data) with the fast, default and blind presets, run.tracking false, one
#    process per run (experiments/backend_run.py): ms per iteration, seconds per image, PSNR-Y,
#    peak GPU memory; then the fast and default presets on PyTorch while the time budget lasts.
# 4. Writes OUT_DIR/gpu_check.json: fast_s_per_image, default_s_per_image, blind_s_per_image (JAX
#    means), the device name, per-image rows (also OUT_DIR/rows.jsonl as they come) and the tests'
#    outcome; OUT_DIR/tests.log holds pytest's output.
#
# --cpu: JAX on the CPU (JAX_PLATFORMS=cpu), for trying the script where there is no GPU; with it
# ZSSR_CHECK_IMAGES (default 1) images and ZSSR_CHECK_ITERS (default 20) iterations per run (and
# estimation), so it is short. Both variables apply without --cpu too (default: all 5 images, the
# presets' own iterations). ZSSR_CHECK_BUDGET_S (default 420) stops starting new runs after that
# many seconds.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: experiments/gpu_check.sh OUT_DIR [--cpu]}
CPU=${2:-}
mkdir -p "$OUT"
START=$(date +%s)
BUDGET=${ZSSR_CHECK_BUDGET_S:-420}
PY=${PYTHON:-python3}

# Where Keras is already installed (trying --cpu on a development machine) the wheels are not needed.
if ! "$PY" -c "import keras, pytest, png" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install --quiet --no-index --no-deps --upgrade --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false TF_CPP_MIN_LOG_LEVEL=3
if [ "$CPU" = "--cpu" ]; then
  export JAX_PLATFORMS=cpu
  IMAGES=${ZSSR_CHECK_IMAGES:-1}
  ITERS=${ZSSR_CHECK_ITERS:-20}
else
  IMAGES=${ZSSR_CHECK_IMAGES:-5}
  ITERS=${ZSSR_CHECK_ITERS:-}
fi

# shellcheck disable=SC2046
timeout 150 "$PY" -m pytest -q -p no:cacheprovider -m "not slow" $(cat tests/jax_core_tests.txt) > "$OUT/tests.log" 2>&1
TESTS_RC=$?
tail -n 3 "$OUT/tests.log"

LIMIT=()
if [ -n "$ITERS" ]; then LIMIT=("max_iters=$ITERS" "estimation_iters=$ITERS" "estimation_runs=1"); fi
: > "$OUT/rows.jsonl"
run() {  # run BACKEND PRESET IMAGE
  if [ $(( $(date +%s) - START )) -ge "$BUDGET" ]; then echo "skipped $1 $2 $3: over ${BUDGET} s"; return 1; fi
  KERAS_BACKEND=$1 timeout 300 "$PY" experiments/backend_run.py --backend "$1" --config "$2" \
    --image "tests/data/set5/lr_x2/$3.png" --gt "tests/data/set5/hr/$3.png" "${LIMIT[@]}" \
    2> "$OUT/$1_$2_$3.err" | tail -n 1 | tee -a "$OUT/rows.jsonl"
}
NAMES=$(ls tests/data/set5/lr_x2/*.png | xargs -n1 basename | sed 's/\.png$//' | head -n "$IMAGES")
for preset in fast default blind; do
  for name in $NAMES; do run jax "$preset" "$name"; done
done
if "$PY" -c "import torch" 2>/dev/null; then
  for preset in fast default; do
    for name in $NAMES; do run torch "$preset" "$name" || break 2; done
  done
fi

"$PY" - "$OUT" "$TESTS_RC" "$(( $(date +%s) - START ))" <<'PY'
import json, statistics, sys
from pathlib import Path

out, tests_rc, seconds = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines() if line.startswith("{")]
report = {"device": next((r["device"] for r in rows), None), "tests_passed": tests_rc == 0,
          "tests_summary": (out / "tests.log").read_text().strip().splitlines()[-1:],
          "check_seconds": seconds, "rows": rows}
for backend in ("jax", "torch"):
    for preset in ("fast", "default", "blind"):
        mine = [r for r in rows if r["backend"] == backend and r["config"] == preset]
        prefix = "" if backend == "jax" else "torch_"
        report[f"{prefix}{preset}_s_per_image"] = statistics.mean(r["seconds"] for r in mine) if mine else None
        report[f"{prefix}{preset}_psnr_y"] = statistics.mean(r["psnr_y"] for r in mine) if mine else None
(out / "gpu_check.json").write_text(json.dumps(report, indent=2))
print(f"\n{report['device']}: tests {'passed' if report['tests_passed'] else 'FAILED'}")
print("| backend | preset | image | iterations | ms / iteration | s / image | PSNR-Y | peak GPU MiB |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    peak = f"{r['peak_gpu_bytes'] / 2**20:.0f}" if r.get("peak_gpu_bytes") else "-"
    print(f"| {r['backend']} | {r['config']} | {r['image']} | {r['iterations']} | {r['ms_per_iteration']:.1f} | "
          f"{r['seconds']:.1f} | {r.get('psnr_y', float('nan')):.2f} | {peak} |")
print({k: v for k, v in report.items() if k.endswith("_s_per_image")})
PY
