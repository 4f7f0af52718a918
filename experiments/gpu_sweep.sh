#!/usr/bin/env bash
# One prepared device run: unpack FER2013, warm the cache, run the sweep in parallel processes.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 INCEPTION_FER_CACHE=/tmp/ifcache
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())"
python3 experiments/devdata.py unpack .devdata/fer_jpegs.npz /tmp/fer2013
python3 -c "from inception_fer.data import load_fer; d=load_fer('/tmp/fer2013'); print(len(d.train), len(d.val))"
mkdir -p "$OUT/logs" "$OUT/runs"
limit=${SWEEP_SECONDS:-480}
for name in "$@"; do
  OMP_NUM_THREADS=2 timeout "$limit" python3 experiments/sweep.py --data /tmp/fer2013 --out "$OUT/runs" "$name" \
    > "$OUT/logs/$name.log" 2>&1 &
done
wait
rm -f "$OUT"/runs/*/last.safetensors
for f in "$OUT"/logs/*.log; do echo "== $f"; tail -n 3 "$f"; done
