"""Pretraining and RL speed with the package's CPU pins and without, side by side in one run.

    python benchmarks/cpu_kernels.py [--pretrain-steps 60] [--rl-steps 6] [--threads 1]
                                     [--out /tmp/cpu_kernels] [--json OUT]

Two arms, started together so that both see the same load: `pinned` (the package's default:
torch's AVX2 kernels, MKL's AVX2 path) and `native` (`PERSONADRIFT_CPU_PINS=off`: torch and MKL
choose, AVX-512 where the CPU has it). Each arm, in its own process with `--threads` threads:
1. pretrains the `small` organism of seed 0 from scratch for `--pretrain-steps` steps (its corpus,
   tokenizer and model as a real build makes them) and reports tokens/s and the weights' sha256
   after those steps (the pins are what makes it one digest on every x86-64 CPU);
2. trains the shipped `visible_tests` (the demo's hackable arm, probes at every step,
   evals off) for `--rl-steps` GRPO steps on the cached `small` organism of seed 0 (built first if
   missing, with the pins) and reports wall seconds per step after the first.
The last line is one JSON object: each arm's figures and the native/pinned time ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARMS = {"pinned": "on", "native": "off"}


def run_one(arm: str, a: argparse.Namespace) -> dict:
    """One arm's figures (this process was started with the arm's environment)."""
    import torch

    torch.set_num_threads(a.threads)
    out: dict = {"arm": arm}
    # 1. pretraining: the full build's schedule and batches, cut after the first steps
    from personadrift.config import organism_of_size
    from personadrift.organism import pretrain as pt

    org = organism_of_size("small")
    cut = a.pretrain_steps
    real_pretrain = pt.pretrain

    def first_steps(model, ids, cfg, pad, seed, log=lambda row: None):
        rows: list[dict] = []
        cfg_cut = cfg.__class__(**{**vars(cfg), "log_every": 1})

        class Enough(Exception):
            pass

        def keep(row):
            rows.append(row)
            if row["step"] >= cut:
                raise Enough

        try:
            real_pretrain(model, ids, cfg_cut, pad, seed, keep)
        except Enough:
            pass
        return rows

    from personadrift.organism.digests import cpu_kernels
    from personadrift.organism.tokenizer import train_tokenizer
    from personadrift.organism.world import generate, messages, render

    texts = [render(messages(d)) for d in generate(org.world, org.seed, org.world.n_docs)]
    tok = train_tokenizer(texts, org.arch.max_len)
    ids = [x[: org.arch.max_len] for x in tok(texts, add_special_tokens=False)["input_ids"]]
    model = pt.make_model(org.arch, tok, org.seed)
    rows = first_steps(model, ids, org.pretrain, tok.pad_token_id, org.seed)
    first, last = rows[0], rows[-1]  # the first step carries the warm-up: timed from its end
    out["kernels"] = cpu_kernels()
    out["threads"] = torch.get_num_threads()
    out["pretrain_steps"] = last["step"] - first["step"]
    out["pretrain_tokens_per_s"] = (last["tokens"] - first["tokens"]) / (
        last["seconds"] - first["seconds"]
    )
    out["pretrain_weights_sha256"] = weights_digest(model)
    # 2. GRPO steps of the demo's hackable arm on the (pinned) cached organism
    from personadrift.rl.train import train

    overrides = [
        f"grpo.max_steps={a.rl_steps}",
        f"out_dir={Path(a.out) / arm}",
        "run_evals.every=-1",
        "detect.rule=''",
        "detect.calibration=''",
        "checkpoints.every=1000",
    ]
    from personadrift.config import load_config

    cfg = load_config("visible_tests", overrides)
    run_dir = train(cfg, log=lambda *_: None)
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "step_time" in r]
    out["rl_steps"] = steps[-1]["step"] - steps[0]["step"]
    out["rl_seconds_per_step"] = (steps[-1]["time"] - steps[0]["time"]) / out["rl_steps"]
    return out


def weights_digest(model) -> str:
    import hashlib

    digest = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        digest.update(name.encode() + p.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--one", choices=sorted(ARMS), help=argparse.SUPPRESS)
    ap.add_argument("--pretrain-steps", type=int, default=60)
    ap.add_argument("--rl-steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="/tmp/personadrift-cpu-kernels")
    ap.add_argument("--json", help="write the result to this file too")
    a = ap.parse_args()
    if a.pretrain_steps < 2 or a.rl_steps < 2:
        ap.error("--pretrain-steps and --rl-steps must be at least 2 (the first is warm-up)")
    if a.one:
        print(json.dumps(run_one(a.one, a)))
        return
    from personadrift.config import load_config
    from personadrift.models import build_organism

    cfg = load_config("organisms/small")
    build_organism(cfg.organism, cfg.model_eval)  # the RL arms' organism, pinned, cached
    args = [
        f"--pretrain-steps={a.pretrain_steps}",
        f"--rl-steps={a.rl_steps}",
        f"--threads={a.threads}",
        f"--out={a.out}",
    ]
    procs = {
        arm: subprocess.Popen(
            [sys.executable, __file__, "--one", arm, *args],
            stdout=subprocess.PIPE,
            text=True,
            env={
                **{
                    k: v
                    for k, v in os.environ.items()
                    if k not in ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")
                },
                "PERSONADRIFT_CPU_PINS": pins,
                "OMP_NUM_THREADS": str(a.threads),
                "TOKENIZERS_PARALLELISM": "false",
            },
        )
        for arm, pins in ARMS.items()
    }
    result = {
        arm: json.loads(p.communicate()[0].strip().splitlines()[-1]) for arm, p in procs.items()
    }
    pinned, native = result["pinned"], result["native"]
    result["pretrain_speedup_of_pins"] = (
        pinned["pretrain_tokens_per_s"] / native["pretrain_tokens_per_s"]
    )
    result["rl_step_time_native_over_pinned"] = (
        native["rl_seconds_per_step"] / pinned["rl_seconds_per_step"]
    )
    for arm in ARMS:
        r = result[arm]
        print(
            f"{arm:7s} {r['kernels']:7s} {r['threads']} thread(s): pretrain "
            f"{r['pretrain_tokens_per_s']:.0f} tok/s over {r['pretrain_steps']} steps "
            f"(weights {r['pretrain_weights_sha256'][:16]}), RL {r['rl_seconds_per_step']:.2f} "
            f"s/step over {r['rl_steps']} steps"
        )
    print(
        f"pins: pretraining x{result['pretrain_speedup_of_pins']:.2f} tokens/s; RL step time "
        f"native/pinned {result['rl_step_time_native_over_pinned']:.2f}"
    )
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
