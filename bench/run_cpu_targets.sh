#!/usr/bin/env bash
# The CPU figures of issue 5 (docs/training.md, bench/README.md). Appends rows to bench/results/.
#   bench/run_cpu_targets.sh [PREPARED_TRAIN_H5]
# The data-path figure needs a split prepared at 256 px (crop 384); without one, a 300-person
# synthetic split is fetched and prepared under ${TMPDIR:-/tmp}/hgbench-bench.
set -euo pipefail
H5=${1:-}
if [[ -z "$H5" ]]; then
  work=${TMPDIR:-/tmp}/hgbench-bench
  mkdir -p "$work"
  python - "$work/p256.yaml" <<'PY'
import sys, yaml
raw = yaml.safe_load(open("params/demo.yaml"))
ds = raw["datasets"]["synthetic"]
ds.update(input_res=256, output_res=64, crop_margin=1.5)
ds["synthetic"].update(n_train=300, n_valid=20, image_size=512, person_height=[300, 450])
open(sys.argv[1], "w").write(yaml.safe_dump(raw))
PY
  hgbench fetch --params "$work/p256.yaml" --dataset synthetic --out "$work/raw"
  hgbench prepare --params "$work/p256.yaml" --dataset synthetic --raw "$work/raw" --out "$work/proc"
  H5=$work/proc/train.h5
fi
for precision in bf16 fp32; do
  hgbench bench train --variant hg8 --batch 4 --steps 6 --threads 2 --precision "$precision" --json
done
hgbench bench data --data "$H5" --batch 16 --batches 18 --threads 1 --json
