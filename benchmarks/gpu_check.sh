#!/usr/bin/env bash
# The prepared GPU check: one NVIDIA GPU, no network, at most --budget seconds (default 480).
#
#   benchmarks/gpu_check.sh --out DIR [--wheels DIR] [--budget 480] [--steps 30] [--off-steps 15]
#                           [--zero-steps 10] [--pretrain-steps 300] [--cache DIR] [--work DIR] [--vllm]
#   benchmarks/gpu_check.sh --dry-run --out DIR [--cache DIR]     # the same phases on CPU, in minutes
#
# Phases, in order, each stopped when its share of the budget is spent (organism by 50%, probes_on
# by 68%, probes_off by 79%, zero2 by 90%, its resume by 97%; unused time rolls over):
#   organism    builds the `base` organism (8 layers, hidden 512, 200k documents) with pretraining cut
#               to --pretrain-steps of its 4000 (fp32 matmuls on TF32): a timing check, not the
#               experiment's organism (a different step count is a different cache entry;
#               --pretrain-steps 4000 --budget 1500 builds the real one);
#   probes_on   --steps GRPO steps of personadrift/configs/runs/visible_tests_base.yaml (visible_tests, bf16) with
#               the probes read every 5 steps (evals off, no checkpoints);
#   probes_off  the same for --off-steps steps with probes.enabled=false;
#   zero2       --zero-steps steps under `accelerate launch` with personadrift/configs/accelerate/zero2.yaml (one
#               process: DeepSpeed ZeRO-2 engine, probes on the main process, a checkpoint every 5
#               steps), then `--resume` from the last checkpoint for 2 more steps (DeepSpeed's own
#               checkpoint loading);
#   vllm        (only with --vllm; up to 4 more minutes) 10 steps with grpo.use_vllm=true, colocate.
# Then it prints wall seconds per step, TRL's step_time, tokens/s and completion tokens/s of each run,
# the probes on/off ratio of wall time per step and the cost of one reading
# (benchmarks/step_stats.py), and copies into --out: each run's metrics.jsonl, config.yaml,
# events.jsonl and DONE, the organism's summary and pretraining log, every phase's log (logs/),
# versions and nvidia-smi (env.txt), the figures (gpu_check.json) and the printed summary
# (summary.txt). Exit status: 0 when every phase that ran finished or was only cut by the budget,
# 1 when one failed, 2 when the machine cannot run the check.
#
# --dry-run: CPU, the `tiny` organism (personadrift/configs/runs/tiny.yaml), 2 steps per run, no bf16, and the zero2
# phase as 3 steps of 2-process CPU DDP (torchrun + gloo; checkpoint at 2, resumed to 5): what the
# test suite runs.
#
# The machine needs python with torch (CUDA build), transformers and accelerate. trl, datasets,
# omegaconf, rich and deepspeed (vllm for --vllm) are checked first; what is missing is installed
# from --wheels DIR with `pip install --no-index --find-links DIR`. Without deepspeed the zero2 phase
# is skipped. Preparing DIR on a machine with network, the same Python version and architecture:
#   pip download -d DIR "trl>=0.23" datasets omegaconf rich
#   pip download -d DIR einops hjson msgpack ninja py-cpuinfo pydantic psutil tqdm   # deepspeed's deps
#   DS_BUILD_OPS=0 pip wheel --no-deps --no-build-isolation -w DIR deepspeed   # sdist only: needs torch there
#   pip download -d DIR vllm                                   # only for --vllm (large, pins its own torch)
# `pip download` also fetches torch as a dependency; the install leaves the machine's own torch in
# place when it satisfies the pins (add --no-deps and list the missing packages to keep DIR small).
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
OUT="" WHEELS="" CACHE="" WORK="" DRY=0 VLLM=0
BUDGET="" STEPS="" OFF_STEPS="" ZERO_STEPS="" PRETRAIN_STEPS=300 MIN_PHASE=20

usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while (($#)); do
    case "$1" in
        --out) OUT="$2"; shift ;;
        --wheels) WHEELS="$2"; shift ;;
        --cache) CACHE="$2"; shift ;;
        --work) WORK="$2"; shift ;;
        --budget) BUDGET="$2"; shift ;;
        --steps) STEPS="$2"; shift ;;
        --off-steps) OFF_STEPS="$2"; shift ;;
        --zero-steps) ZERO_STEPS="$2"; shift ;;
        --pretrain-steps) PRETRAIN_STEPS="$2"; shift ;;
        --dry-run) DRY=1 ;;
        --vllm) VLLM=1 ;;
        -h|--help) usage ;;
        *) echo "gpu_check: unknown argument $1" >&2; usage ;;
    esac
    shift
done
[[ -n "$OUT" ]] || { echo "gpu_check: --out DIR is required" >&2; usage; }

if ((DRY)); then
    BUDGET="${BUDGET:-900}" STEPS="${STEPS:-2}" OFF_STEPS="${OFF_STEPS:-2}" ZERO_STEPS="${ZERO_STEPS:-3}"
    BUILD_CFG=personadrift/configs/organisms/tiny.yaml TRAIN_CFG=personadrift/configs/runs/tiny.yaml ORG=() CKPT_EVERY=2
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
    VLLM=0
else
    BUDGET="${BUDGET:-480}" STEPS="${STEPS:-30}" OFF_STEPS="${OFF_STEPS:-15}" ZERO_STEPS="${ZERO_STEPS:-10}"
    BUILD_CFG=personadrift/configs/organisms/base.yaml TRAIN_CFG=personadrift/configs/runs/visible_tests_base.yaml
    ORG=("organism.pretrain.steps=$PRETRAIN_STEPS") CKPT_EVERY=5
fi
START=$(date +%s)
mkdir -p "$OUT/logs" || exit 2
OUT="$(cd "$OUT" && pwd)"
WORK="${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")}"
mkdir -p "$WORK/runs" && WORK="$(cd "$WORK" && pwd)"
CACHE="${CACHE:-$WORK/cache}"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
cd "$REPO" || exit 2
FAILED=0
say() { echo "$*" | tee -a "$OUT/summary.txt"; }
: > "$OUT/summary.txt"
say "gpu_check $( ((DRY)) && echo '--dry-run ')budget ${BUDGET}s, work dir $WORK, out $OUT"

# ---- what the machine has ------------------------------------------------------------------
missing_modules() {  # the modules of "$@" that python cannot import
    "$PYTHON" - "$@" <<'EOF'
import importlib.util, sys
print(" ".join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))
EOF
}
BASE_MISSING=$(missing_modules torch transformers accelerate)
[[ -z "$BASE_MISSING" ]] || { say "gpu_check: this python lacks $BASE_MISSING (needed as installed)"; exit 2; }
if ! ((DRY)); then
    "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" ||
        { say "gpu_check: torch sees no CUDA GPU here (use --dry-run on CPU)"; exit 2; }
fi
WANT=(trl datasets omegaconf rich)
((DRY)) || WANT+=(deepspeed)
((VLLM)) && WANT+=(vllm)
MISSING=$(missing_modules "${WANT[@]}")
if [[ -n "$MISSING" && -n "$WHEELS" ]]; then
    say "installing from $WHEELS: $MISSING"
    # shellcheck disable=SC2086  # one argument per package
    "$PYTHON" -m pip install --no-index --find-links "$WHEELS" $MISSING > "$OUT/logs/pip.log" 2>&1 ||
        say "pip install failed (see logs/pip.log)"
    MISSING=$(missing_modules "${WANT[@]}")
fi
for m in $MISSING; do
    case "$m" in
        deepspeed|vllm) say "no $m: its phase is skipped (see the header of $0 for --wheels)" ;;
        *) say "gpu_check: no $m and no wheel for it (see the header of $0 for --wheels)"; exit 2 ;;
    esac
done
has() { [[ " $MISSING " != *" $1 "* ]]; }
"$PYTHON" -c "import personadrift.rl.train, personadrift.organism.build" > "$OUT/logs/import.log" 2>&1 ||
    { say "gpu_check: personadrift does not import (logs/import.log)"; exit 2; }
{
    "$PYTHON" - <<'EOF'
import importlib.metadata as md, platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
for p in ("transformers", "accelerate", "trl", "datasets", "deepspeed", "vllm"):
    try:
        print(p, md.version(p))
    except md.PackageNotFoundError:
        print(p, "-")
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0))
EOF
    command -v nvidia-smi > /dev/null && nvidia-smi
} > "$OUT/env.txt" 2>&1

# ---- phases --------------------------------------------------------------------------------
declare -A STATUS
phase() {  # phase NAME UNTIL_PERCENT_OF_BUDGET CMD...: runs CMD until that point of the budget
    local name=$1 pct=$2 t0 left rc
    shift 2
    t0=$(date +%s)
    left=$((START + BUDGET * pct / 100 - t0))
    if ((left < MIN_PHASE)); then
        STATUS[$name]=skipped
        say "$name: skipped (time budget spent)"
        return 1
    fi
    echo "== $name (up to ${left}s): $*" | tee "$OUT/logs/$name.log"
    timeout -k 15 "$left" "$@" >> "$OUT/logs/$name.log" 2>&1
    rc=$?
    case $rc in
        0) STATUS[$name]=ok ;;
        124 | 137) STATUS[$name]=cut ;;
        *) STATUS[$name]="failed (exit $rc)"; FAILED=1; tail -n 15 "$OUT/logs/$name.log" ;;
    esac
    say "$name: ${STATUS[$name]} in $(($(date +%s) - t0))s"
    [[ $rc == 0 || $rc == 124 || $rc == 137 ]]
}
run_dir() { ls -dt "$WORK/runs/$1"/*/ 2> /dev/null | head -n 1 | sed 's:/$::'; }  # the newest
free_port() { "$PYTHON" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }
TRAIN=("$PYTHON" -m personadrift train "$TRAIN_CFG" "organism.cache_dir=$CACHE" "${ORG[@]}"
       "grpo.report_to=[]" run_evals.every=-1)
LAUNCH=("$PYTHON" -m accelerate.commands.launch)

phase organism 50 env TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 \
    "$PYTHON" -m personadrift organism build "$BUILD_CFG" "organism.cache_dir=$CACHE" "${ORG[@]}" \
    model_eval.n_per_family=100 --json
[[ ${STATUS[organism]} == ok ]] || { say "no organism: nothing else can run"; exit 1; }

phase probes_on 68 "${TRAIN[@]}" name=probes_on "out_dir=$WORK/runs/probes_on" \
    "grpo.max_steps=$STEPS" checkpoints.every=1000
phase probes_off 79 "${TRAIN[@]}" name=probes_off "out_dir=$WORK/runs/probes_off" \
    "grpo.max_steps=$OFF_STEPS" checkpoints.every=1000 probes.enabled=false

if ((DRY)); then
    ZERO=(--multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no)
    ZNAME="ddp2-cpu (2 processes, gloo)"
else
    ZERO=(--config_file personadrift/configs/accelerate/zero2.yaml --num_processes 1)
    ZNAME="zero2 (DeepSpeed ZeRO-2, 1 GPU)"
fi
if ((DRY)) || has deepspeed; then
    say "zero2 phase: $ZNAME"
    phase zero2 90 "${LAUNCH[@]}" "${ZERO[@]}" --main_process_port "$(free_port)" -m personadrift \
        "${TRAIN[@]:3}" name=zero2 "out_dir=$WORK/runs/zero2" "grpo.max_steps=$ZERO_STEPS" \
        "checkpoints.every=$CKPT_EVERY" &&
        [[ -n "$(run_dir zero2)" ]] &&
        phase zero2_resume 97 "${LAUNCH[@]}" "${ZERO[@]}" --main_process_port "$(free_port)" \
            -m personadrift train "$TRAIN_CFG" "grpo.max_steps=$((ZERO_STEPS + 2))" \
            --resume "$(run_dir zero2)"
fi
if ((VLLM)) && has vllm; then
    BUDGET=$((BUDGET + 240))  # vLLM start-up (engine, CUDA graphs) comes on top of the budget
    phase vllm 100 "${TRAIN[@]}" name=vllm "out_dir=$WORK/runs/vllm" \
        grpo.max_steps=10 checkpoints.every=1000 grpo.use_vllm=true grpo.vllm_mode=colocate
fi

# ---- figures and files ---------------------------------------------------------------------
SPECS=()
for name in probes_on probes_off zero2 vllm; do
    dir=$(run_dir "$name")
    [[ -n "$dir" ]] || continue
    mkdir -p "$OUT/$name"
    for f in metrics.jsonl config.yaml events.jsonl DONE; do
        [[ -f "$dir/$f" ]] && cp "$dir/$f" "$OUT/$name/"
    done
    if [[ $name == zero2 ]]; then
        SPECS+=("$name=$dir:2-$ZERO_STEPS")  # the resumed steps come after a restart gap
    else
        SPECS+=("$name=$dir")
    fi
done
ORG_DIR=$(tail -n 1 "$OUT/logs/organism.log" | "$PYTHON" -c "import json, sys; print(json.load(sys.stdin)['path'])" 2> /dev/null)
if [[ -n "$ORG_DIR" ]]; then
    mkdir -p "$OUT/organism"
    for f in summary.json pretrain_log.jsonl base_rates.json readability.json; do
        [[ -f "$ORG_DIR/$f" ]] && cp "$ORG_DIR/$f" "$OUT/organism/"
    done
fi
if ((${#SPECS[@]})); then
    "$PYTHON" benchmarks/step_stats.py "${SPECS[@]}" --ratio probes_on probes_off \
        --json "$OUT/gpu_check.json" | tee -a "$OUT/summary.txt"
fi
if [[ -n "$(run_dir zero2)" ]]; then
    "$PYTHON" - "$(run_dir zero2)" "$((ZERO_STEPS + 2))" <<'EOF' | tee -a "$OUT/summary.txt"
import json, sys
from pathlib import Path
run, want = Path(sys.argv[1]), int(sys.argv[2])
rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
steps = [r["step"] for r in rows]
probes = [r["step"] for r in rows if any(k.endswith("/eval_mean") for k in r)]
ckpts = sorted(p.name for p in (run / "checkpoints").glob("checkpoint-*"))
ok = steps == list(range(want + 1))
print(f"zero2: steps {steps[0]}..{steps[-1]} ({'contiguous through the resume' if ok else 'GAPS or missing steps'}),"
      f" probe readings at {probes}, checkpoints {ckpts}")
EOF
fi
say "work dir (runs, organism cache): $WORK"
say "total $(($(date +%s) - START))s"
exit "$FAILED"
