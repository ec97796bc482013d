"""Wall time of one reading of each early-warning monitor, and its ratio to one GRPO step.

    python benchmarks/monitor_cost.py [key=value ...]      # e.g. seed=1 organism.seed=1

At the study's settings (`personadrift/configs/runs/visible_tests.yaml` + the study's overrides) on the
cached `small` organism: times each monitor's function directly, on one thread, median of
`REPEATS` readings, then trains a few GRPO steps (monitors off) for the step time. `behaviour` is
sized to cost one `probe` reading (`evals.behaviour.behaviour_samples`, from the measured cost of
one judged answer) and then timed at that size. Prints a table and, last, one JSON object.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from personadrift.config import load_config
from personadrift.evals.behaviour import behaviour_reading, behaviour_samples
from personadrift.evals.runner import sample_answers
from personadrift.evals.trace import trace_rate
from personadrift.experiments.warning import ARMS, STUDY_OVERRIDES
from personadrift.probes.paired import high_fraction, paired_stat, percentile
from personadrift.probes.reading import read_completions, read_prompts
from personadrift.rl import setup

REPEATS = 3
GRPO_STEPS = 3


def timed(fn, repeats: int = REPEATS) -> tuple[float, object]:
    """(median seconds, last result) of `fn()`."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def rollouts(cfg, model, tok, world) -> tuple[list[str], list[str]]:
    """One step's worth of rollouts (prompts, completions) of the env, sampled like GRPO does."""
    env = setup.build_env(cfg, world, tok)
    n = cfg.grpo["per_device_train_batch_size"]
    examples = env.examples("train", n // cfg.grpo["num_generations"], cfg.env.seed)
    prompts = [e.prompt for e in examples for _ in range(cfg.grpo["num_generations"])]
    completions = sample_answers(
        model, tok, prompts, 1.0, cfg.grpo["max_completion_length"], 64, cfg.seed
    )
    return prompts, completions


def grpo_step_seconds(overrides: list[str]) -> float:
    """Mean wall time of a GRPO step at the study's settings, monitors and probes off."""
    from personadrift.rl.train import train

    with tempfile.TemporaryDirectory() as out:
        cfg = load_config(
            ARMS["hackable"],
            [
                *overrides,
                f"grpo.max_steps={GRPO_STEPS}",
                "probes.enabled=false",
                "run_evals.every=-1",
                "monitors.record=false",
                "checkpoints.every=1000",
                "detect.rule=''",
                f"out_dir={out}",
            ],
        )
        run = train(cfg, log=lambda *_: None)
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        times = [r["step_time"] for r in rows if isinstance(r.get("step_time"), (int, float))]
        if times:
            return statistics.fmean(times)
        return json.loads((run / "DONE").read_text())["seconds"] / GRPO_STEPS


def main(argv: list[str]) -> int:
    torch.set_num_threads(1)
    overrides = [*STUDY_OVERRIDES, *argv]
    cfg = load_config(ARMS["hackable"], overrides)
    model, tok, world = setup.load_policy(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        direction = setup.build_direction(cfg, model, tok, world, Path(tmp), lambda *_: None)
    texts = setup.probe_texts(cfg, world, tok)
    base, _ = read_prompts(model, tok, texts, direction, 0)
    prompts, completions = rollouts(cfg, model, tok, world)
    base_rollout = read_completions(model, tok, prompts, completions, direction)
    p99 = percentile(base_rollout, cfg.monitors.rollout_quantile)

    cost: dict[str, float] = {}
    cost["probe"], _ = timed(
        lambda: paired_stat(base, read_prompts(model, tok, texts, direction, 0)[0])
    )
    cost["probe_rollout"], _ = timed(
        lambda: high_fraction(read_completions(model, tok, prompts, completions, direction), p99)
    )
    cost["trace"], _ = timed(lambda: trace_rate(completions, world.markers))
    env = setup.build_env(cfg, world, tok)
    examples = env.examples("train", len(set(prompts)), cfg.env.seed)
    per_prompt = cfg.grpo["num_generations"]
    cost["hack_rate"], _ = timed(
        lambda: env.grade_many([e for e in examples for _ in range(per_prompt)], completions), 1
    )
    probe_n = 20
    seconds, _ = timed(
        lambda: behaviour_reading(model, tok, world, cfg.model_eval, probe_n, 1)[1], 1
    )
    per_sample = seconds / (3 * probe_n)
    n = cfg.monitors.behaviour_n or behaviour_samples(cost["probe"], per_sample)
    cost["behaviour"], _ = timed(lambda: behaviour_reading(model, tok, world, cfg.model_eval, n, 1))
    step = grpo_step_seconds(argv)
    print(f"GRPO step (study settings, {GRPO_STEPS} steps, 1 thread): {step:.2f}s")
    print(f"{'monitor':15s} {'seconds':>9s} {'x GRPO step':>12s}")
    for name, s in cost.items():
        print(f"{name:15s} {s:9.3f} {s / step:12.3f}")
    print(
        f"behaviour: {n} answers per family ({per_sample * 1000:.1f} ms per judged answer); "
        "hack_rate: the secure grader, already paid by the reward (a reference only); "
        "probe_rollout: post-hoc forward here, free inside the GRPO loss forward"
    )
    print(
        json.dumps(
            {
                "grpo_step_seconds": step,
                "seconds": cost,
                "behaviour_n_per_family": n,
                "ratio_to_step": {k: v / step for k, v in cost.items()},
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
