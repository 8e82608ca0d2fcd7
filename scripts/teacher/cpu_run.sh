#!/usr/bin/env bash
# The teacher stage at CPU scale, end to end, as measured in docs/training.md (2 cores, no GPU).
# Each step writes its own log under $R; rerunning skips steps whose output already exists.
# Usage: scripts/teacher/cpu_run.sh [RUN_DIR]   (default runs/teacher/cpu)
set -euo pipefail
R=${1:-runs/teacher/cpu}
T="relevance teacher"
N_EVAL=${N_EVAL:-300}      # seeded random test pairs per teacher-table row
GEN="--batch-size 32 --max-new-tokens 72"
mkdir -p "$R"
source "$(dirname "$0")/steps.sh"
step eval-base "$R/eval-base.json" $T eval --teacher smollm2 --split test --n-pairs "$N_EVAL" $GEN --out "$R/eval-base.json"
step dapt "$R/dapt/teacher.json" $T dapt --out "$R/dapt" --max-tokens "${DAPT_TOKENS:-100000}" --batch-size 8
# held-out (dev) perplexity of the platform text before and after DAPT: what DAPT moves on its own
step perplexity-base "$R/perplexity-base.json" $T perplexity --teacher smollm2 --out "$R/perplexity-base.json"
step perplexity-dapt "$R/perplexity-dapt.json" $T perplexity --teacher "$R/dapt" --out "$R/perplexity-dapt.json"
step eval-dapt "$R/eval-dapt.json" $T eval --teacher "$R/dapt" --split test --n-pairs "$N_EVAL" $GEN --out "$R/eval-dapt.json"
step sft "$R/sft/teacher.json" $T sft --teacher "$R/dapt" --out "$R/sft" --seeds attributes \
    --n-examples "${SFT_EXAMPLES:-1200}" --batch-size 8
step eval-sft "$R/eval-sft.json" $T eval --teacher "$R/sft" --split test --n-pairs "$N_EVAL" $GEN --out "$R/eval-sft.json"
step reward "$R/samples.jsonl" $T reward --teacher "$R/sft" --out "$R/samples.jsonl" \
    --n-pairs "${DPO_PAIRS:-240}" --samples-per-pair 4 $GEN
# the first measured DPO row used the ordinal label reward, which DPO hacked by answering `partial`;
# dpo-exact re-scores the same samples with the exact-match label reward (now the default)
step dpo "$R/dpo/teacher.json" $T dpo --teacher "$R/sft" --samples "$R/samples.jsonl" --out "$R/dpo" --batch-size 4 \
    --lr "${DPO_LR:-1e-4}" --label-scoring ordinal --selection margin  # lr: 2e-5 (the GPU-scale default) barely moves LoRA in ~50 steps
step eval-dpo "$R/eval-dpo.json" $T eval --teacher "$R/dpo" --split test --n-pairs "$N_EVAL" $GEN --out "$R/eval-dpo.json"
step dpo-exact "$R/dpo-exact/teacher.json" $T dpo --teacher "$R/sft" --samples "$R/samples.jsonl" --out "$R/dpo-exact" \
    --batch-size 4 --lr "${DPO_LR:-1e-4}" --label-scoring exact --selection margin
step eval-dpo-exact "$R/eval-dpo-exact.json" $T eval --teacher "$R/dpo-exact" --split test --n-pairs "$N_EVAL" $GEN \
    --out "$R/eval-dpo-exact.json"
# both collapsed onto the samples' majority label; label-contrastive, class-balanced pairs (the default now)
step dpo-contrast "$R/dpo-contrast/teacher.json" $T dpo --teacher "$R/sft" --samples "$R/samples.jsonl" \
    --out "$R/dpo-contrast" --batch-size 4 --lr "${DPO_LR:-1e-4}" --label-scoring exact --selection label_contrast
step eval-dpo-contrast "$R/eval-dpo-contrast.json" $T eval --teacher "$R/dpo-contrast" --split test \
    --n-pairs "$N_EVAL" $GEN --out "$R/eval-dpo-contrast.json"
step calibrate-contrast "$R/contrast-calibrated/teacher.json" $T calibrate --teacher "$R/dpo-contrast" \
    --out "$R/contrast-calibrated" --n-pairs 400 --batch-size 32
step eval-contrast-calibrated "$R/eval-contrast-calibrated.json" $T eval --teacher "$R/contrast-calibrated" \
    --split test --n-pairs "$N_EVAL" $GEN --out "$R/eval-contrast-calibrated.json"
# label calibration of both candidates on teacher_train; the one with the higher teacher_train
# macro-F1 after calibration (run.json: macro_f1_after) annotates -- chosen without test labels
step calibrate "$R/calibrated/teacher.json" $T calibrate --teacher "$R/dpo" --out "$R/calibrated" --n-pairs 400 --batch-size 32
step eval-calibrated "$R/eval-calibrated.json" $T eval --teacher "$R/calibrated" --split test --n-pairs "$N_EVAL" $GEN \
    --out "$R/eval-calibrated.json"
step calibrate-sft "$R/sft-calibrated/teacher.json" $T calibrate --teacher "$R/sft" --out "$R/sft-calibrated" \
    --n-pairs 400 --batch-size 32
step eval-sft-calibrated "$R/eval-sft-calibrated.json" $T eval --teacher "$R/sft-calibrated" --split test \
    --n-pairs "$N_EVAL" $GEN --out "$R/eval-sft-calibrated.json"
# DPO from samples of the *calibrated* SFT teacher (so every class has correct samples to
# prefer), label-contrastive class-balanced pairs, a gentler lr than the runs above (1e-4 overshot)
step reward-cal "$R/samples-cal.jsonl" $T reward --teacher "$R/sft-calibrated" --out "$R/samples-cal.jsonl" \
    --n-pairs "${DPO_PAIRS:-240}" --samples-per-pair 4 $GEN
step dpo-cal "$R/dpo-cal/teacher.json" $T dpo --teacher "$R/sft" --samples "$R/samples-cal.jsonl" --out "$R/dpo-cal" \
    --batch-size 4 --lr "${DPO_CAL_LR:-3e-5}" --label-scoring exact --selection label_contrast
step eval-dpo-cal "$R/eval-dpo-cal.json" $T eval --teacher "$R/dpo-cal" --split test --n-pairs "$N_EVAL" $GEN \
    --out "$R/eval-dpo-cal.json"
step calibrate-dpo-cal "$R/dpo-cal-calibrated/teacher.json" $T calibrate --teacher "$R/dpo-cal" \
    --out "$R/dpo-cal-calibrated" --n-pairs 400 --batch-size 32
step eval-dpo-cal-calibrated "$R/eval-dpo-cal-calibrated.json" $T eval --teacher "$R/dpo-cal-calibrated" \
    --split test --n-pairs "$N_EVAL" $GEN --out "$R/eval-dpo-cal-calibrated.json"
# label calibration of the candidates on teacher_train; the one with the highest teacher_train
# macro-F1 after calibration (run.json: macro_f1_after) annotates -- chosen without test labels
if [ -z "${STEPS:-}" ] || [[ ",$STEPS," == *",annotate,"* ]]; then
  best=$(python -c "import json,os,sys; c=[t for t in sys.argv[1:] if os.path.exists(t + '/run.json')]; \
print(max(c, key=lambda t: json.load(open(t + '/run.json'))['macro_f1_after']))" \
    "$R/calibrated" "$R/sft-calibrated" "$R/contrast-calibrated" "$R/dpo-cal-calibrated")
  echo "$(date -u +%FT%TZ) teacher done; annotating teacher (best teacher_train macro-F1 after calibration): $best"
fi
step annotate "$R/annotate.done" bash -c "relevance annotate --teacher ${best:-} --split pool --limit ${ANNOTATE:-5050} \
    --batch-size 32 --out artifacts/annotations/pool.jsonl && touch $R/annotate.done"
