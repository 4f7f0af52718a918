#!/usr/bin/env bash
# One prepared device call for issue #4's GPU runs: unpack FER2013, train the named runs below in
# parallel processes on the one GPU (the --time-budget runs' probes time their steps as they run
# side by side), then evaluate each best checkpoint (best PublicTest epoch) with TTA
# none/flip/shift. A run's own options come after the shared recipe, so they override it. Under
# $OUT: NAME.safetensors per run and logs.tar.gz (logs, histories, reports) -- the device tool
# returns at most 8 files.
#   BUDGET_MINUTES=7 bash experiments/gpu_long_run.sh l-silu l-silu-muon f-silu44
# Local dry run (a tiny network on the CPU): OUT=/tmp/out DEVICE=cpu AMP=none THREADS=1 \
#   BUDGET_MINUTES=1.5 EXTRA_ARGS='--model inception_fer_s --model-arg stem_width=8
#   --model-arg widths=[24,40] --model-arg depths=[0,0]' DATA=../shared/data/fer2013 \
#   RUNS_DIR=/tmp/runs bash experiments/gpu_long_run.sh l-relu l-silu
# (l-silu-muon's 8 whole-face epochs do not fit 1.5 minutes: dry-run it with BUDGET_MINUTES=2 and
#   --crop-schedule 40,48:1 added to EXTRA_ARGS.)
set -u
budget=${BUDGET_MINUTES:-7}
device=${DEVICE:-cuda}
amp=${AMP:-bf16}
data=${DATA:-/tmp/fer2013}
runs=${RUNS_DIR:-/tmp/runs}
threads=${THREADS:-4}
read -r -a extra <<<"${EXTRA_ARGS:-}"
recipe=(--batch-size 128 --optimizer adamw --lr 3e-3 --weight-decay 0.05 --schedule onecycle
  --label-smoothing 0.1 --augment default,translate=0,crop=40 --seed 0)

run_args() {
  case "$1" in
    l-relu) echo "--model inception_fer_l --time-budget $budget --model-arg act=relu" ;;
    l-silu) echo "--model inception_fer_l --time-budget $budget --model-arg act=silu" ;;
    l-silu-b512) echo "--model inception_fer_l --time-budget $budget --model-arg act=silu \
--batch-size 512 --lr 6e-3" ;;
    l-silu-muon) echo "--model inception_fer_l --time-budget $budget --model-arg act=silu \
--optimizer muon --no-decay-norm-bias --augment default,translate=0 --crop-schedule 40,48:8 \
--finish-augment flip,erase=0.5" ;;
    f-silu44) echo "--model inception_fer_f --epochs 44 --model-arg act=silu" ;;
    *) echo "unknown run $1" >&2; exit 2 ;;
  esac
}

for name in "$@"; do run_args "$name" >/dev/null || exit 2; done

export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1 INCEPTION_FER_CACHE=/tmp/ifcache
if [ "$device" != cpu ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
    .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PYTHONPATH
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
fi
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
[ -d "$data" ] || python3 experiments/devdata.py unpack .devdata/fer_jpegs.npz "$data" || exit 1
python3 -c "from inception_fer.data import load_fer; d = load_fer('$data'); \
print('train', len(d.train.labels), 'val', len(d.val.labels))" || exit 1
mkdir -p "$runs/logs"
limit=$(python3 -c "print(int($budget * 60 + 90))")
for name in "$@"; do
  read -r -a args <<<"$(run_args "$name")"
  echo "$name: train ${recipe[*]} --amp $amp ${args[*]}" >"$runs/logs/$name.log"
  timeout "$limit" python3 -m inception_fer train --data "$data" "${recipe[@]}" \
    --threads "$threads" --amp "$amp" --device "$device" --quiet "${args[@]}" "${extra[@]}" \
    --out "$runs/$name" >>"$runs/logs/$name.log" 2>&1 &
done
wait
for name in "$@"; do
  [ -f "$runs/$name/best.safetensors" ] || { echo "$name: no best checkpoint"; continue; }
  (
    for tta in none flip shift; do
      python3 -m inception_fer evaluate "$runs/$name/best.safetensors" --data "$data" \
        --tta "$tta" --device "$device" --out "$runs/$name/eval-$tta" >>"$runs/logs/$name.log" 2>&1
      cp "$runs/$name/eval-$tta/report.json" "$runs/logs/$name-$tta.json"
    done
  ) &
  cp "$runs/$name/best.safetensors" "$OUT/$name.safetensors"
  cp "$runs/$name/history.json" "$runs/logs/$name-history.json"
done
wait
python3 - "$runs" "$@" <<'PY'
import json, sys
from pathlib import Path
runs = Path(sys.argv[1])
for name in sys.argv[2:]:
    history = runs / name / "history.json"
    if not history.exists():
        print(f"{name}: no history")
        continue
    rows = json.loads(history.read_text())
    best = max((row for row in rows if row["val_acc"] is not None), key=lambda r: r["val_acc"])
    tta = {}
    for mode in ("none", "flip", "shift"):
        report = runs / name / f"eval-{mode}" / "report.json"
        if report.exists():
            tta[mode] = json.loads(report.read_text())["accuracy"]
    print(f"{name}: {len(rows)} epochs in {sum(row['seconds'] for row in rows):.0f} s, best "
          f"epoch {best['epoch']:.0f} ({best['val_acc']:.4f}); TTA "
          + ", ".join(f"{mode} {acc:.4f}" for mode, acc in tta.items()))
PY
tar -czf "$OUT/logs.tar.gz" -C "$runs" logs
for name in "$@"; do
  echo "== $name"
  grep -m1 "time budget" "$runs/logs/$name.log"
  tail -n 2 "$runs/logs/$name.log"
done
