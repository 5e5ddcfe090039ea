#!/usr/bin/env bash
# The whole CultureSPA loop at small scale on a CPU: build data -> train LoRA adapters (joint and
# culture-specific) -> evaluate them with the lm-eval tasks -> report.
#
#   bash recipes/smoke.sh            # tiny random model (CI; a few minutes on 2 cores)
#   bash recipes/smoke.sh default    # SmolLM2-135M-Instruct, the default model (longer)
#
# Everything goes under $SMOKE_DIR (default runs/smoke/<scale>); rerunning resumes the data build.
# It proves that the stages fit together, not that the tiny model learns cultures.
set -euo pipefail

SCALE="${1:-tiny}"
ROOT="${SMOKE_DIR:-runs/smoke/$SCALE}"
LIMIT="${SMOKE_LIMIT:-8}"            # WVS items per evaluated task
COUNTRIES="USA CHN NGA"              # the countries of recipes/data/tiny.yaml and smollm2_cpu.yaml
cd "$(dirname "$0")/.."

case "$SCALE" in
  tiny)
    MODEL="$ROOT/tiny_llama"
    DATA_CONFIG=recipes/data/tiny.yaml
    RECIPE=recipes/tiny_cpu_smoke.yaml
    SPECIFIC_STEPS=5
    # A 2-layer model runs faster on one thread than on several competing ones.
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
    ;;
  default)
    MODEL=default
    DATA_CONFIG=recipes/data/smollm2_cpu_sample.yaml
    RECIPE=recipes/smollm2-135m-instruct_cpu_smoke.yaml
    SPECIFIC_STEPS=5
    ;;
  -h|--help)
    echo "usage: bash recipes/smoke.sh [tiny|default]   (build data -> train -> evaluate -> report)"
    exit 0
    ;;
  *)
    echo "usage: bash recipes/smoke.sh [tiny|default]" >&2
    exit 2
    ;;
esac

export TOKENIZERS_PARALLELISM=false
start=$SECONDS
stage() { echo; echo "== [$((SECONDS - start))s] $*"; }

if [ "$SCALE" = tiny ] && [ ! -f "$MODEL/config.json" ]; then
  stage "tiny model -> $MODEL"
  python -m culturespa.tiny_model "$MODEL"
fi

stage "1/4 build data ($DATA_CONFIG) -> $ROOT/data"
culturespa build-data --config "$DATA_CONFIG" --model "$MODEL" --output-dir "$ROOT/data"

stage "2/4 train: culture-joint adapter"
accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \
  recipes/sft.py --config "$RECIPE" --model_name_or_path "$MODEL" \
  --dataset_path "$ROOT/data/sft/culture_joint" --output_dir "$ROOT/train/culture_joint"

stage "2/4 train: one culture-specific adapter per country"
python recipes/sft.py --config "$RECIPE" --model_name_or_path "$MODEL" \
  --dataset_path "$ROOT/data/sft/culture_specific" --countries all \
  --output_dir "$ROOT/train/culture_specific" --max_steps "$SPECIFIC_STEPS"

TASKS=$(for c in $COUNTRIES; do printf 'wvs_culture_aware_%s,' "$(echo "$c" | tr 'A-Z' 'a-z')"; done)
TASKS="${TASKS%,}"

stage "3/4 evaluate: base model, joint adapter, culture-specific adapters ($LIMIT items per task)"
culturespa eval --model "$MODEL" --tasks "$TASKS" --limit "$LIMIT" --device cpu \
  --output-path "$ROOT/eval"
culturespa eval --model "$MODEL" --peft "$ROOT/train/culture_joint" --tasks "$TASKS" \
  --limit "$LIMIT" --device cpu --output-path "$ROOT/eval"
python recipes/eval_specific.py "$ROOT/train/culture_specific" --model "$MODEL" \
  --task wvs_culture_aware --limit "$LIMIT" --device cpu --output-path "$ROOT/eval"

stage "4/4 report -> $ROOT/report"
culturespa report "$ROOT/eval" -o "$ROOT/report"

stage "done: smoke flow ($SCALE) in $((SECONDS - start))s"
