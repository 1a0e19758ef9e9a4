#!/usr/bin/env bash
# Train the GPU-sized kronos-open pair (configs/kronos-open-gpu.yaml) on one GPU and package it in the shipped
# layout, then evaluate it on the held-out test period. Run from the project root, with ../shared/data beside it:
#
#   bash scripts/train_kronos_open_gpu.sh                 # train + package (+ evaluation unless NO_EVAL=1)
#   OUT=runs/kronos-open-gpu bash scripts/train_kronos_open_gpu.sh
#
# Writes $OUT/tokenizer, $OUT/predictor (the runs: checkpoints, metrics, config), $OUT/package (model/,
# tokenizer/, predictor.json, MODEL_CARD.md, loss_curves.png: what src/kronos/pretrained/kronos-open holds) and,
# unless NO_EVAL=1, $OUT/eval/tables.md. Training resumes from $OUT's last checkpoints when rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/kronos-open-gpu}
CONFIG=configs/kronos-open-gpu.yaml

python - <<'EOF'
import torch
if not torch.cuda.is_available():
    raise SystemExit("no CUDA device: this recipe is sized for one GPU (configs/kronos-open.yaml is the CPU recipe)")
print(f"GPU: {torch.cuda.get_device_name(0)}, PyTorch {torch.__version__}")
EOF

start=$(date +%s)
kronos train tokenizer "$CONFIG" -o "$OUT/tokenizer"
kronos train predictor "$CONFIG" -o "$OUT/predictor" --set "model.tokenizer=$OUT/tokenizer/best"
echo "training took $(( $(date +%s) - start )) s"

eval_args=()
if [ "${NO_EVAL:-0}" != "1" ]; then
  python benchmarks/kronos_open_eval.py --model "$OUT/predictor/predictor" --no-anomaly --jobs 4 --out "$OUT/eval"
  eval_args=(--eval "$OUT/eval/tables.md" --notes /dev/null)
fi
python scripts/package_kronos_open.py --runs "$OUT" --dest "$OUT/package" --recipe "$CONFIG" "${eval_args[@]}"
