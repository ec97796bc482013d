"""`personadrift demo`: the lab's main job, end to end on the organism, with a report.

Per seed: build (or load from cache) the `small` organism of that seed, extract its persona
direction once, then train three arms side by side, each in its own process with one thread:
- `hackable`: GRPO in `visible_tests` (reward = visible tests passed; hard-coding pays);
- `control`: the same prompts in the secure twin (reward = every test passes);
- `intervention`: the hackable run whose calibrated probe alarm switches a mitigation on during
  RL: it rolls back to the last checkpoint before the alarm and goes on with the inoculation
  prompt and each rollout's advantage lowered by 0.2 times its persona projection standardised
  within its group (the shipped config `inoculate_advantage_on_alarm`: the alarm-triggered
  mitigation whose weights alone, with no hook, ended within 3 points of base on 5 of 5 seeds at
  96-103% of the reward: docs/mitigations.md). Nothing is hooked at evaluation, so its JSON says
  `hooked: false`.
Every arm's console lines are printed as they come, prefixed with the arm and seed. At the end
`personadrift report` is written over all runs, and (with `--json`) one JSON object per arm and
seed is printed as the last line: the summary numbers of `personadrift.report.summary`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from personadrift.checks import load_checked
from personadrift.experiments.jobs import prepare_seed, run_jobs, train_command
from personadrift.organism.digests import read_organism

ARMS = {
    "hackable": "visible_tests",
    "control": "visible_tests_secure",
    "intervention": "inoculate_advantage_on_alarm",
}
SUMMARY_KEYS = (
    "base_misaligned",
    "final_misaligned",
    "peak_misaligned",
    "hack_onset_step",
    "em_step",
    "alarm_step",
    "em_step_minus_alarm",
    "behaviour_onset",
    "behaviour_onset_first",
    "lead_over_onset",
    "lead_over_onset_first",
    "final_reward",
    "final_secure_reward",
    "final_hack_rate",
    "intervention",
    "intervention_step",
    "hooked",
    "final_misaligned_weights",
    "run_dir",
)


def run_arms(jobs: list[tuple[str, int, list[str]]], out: Path, log, parallel: int) -> dict:
    """Train each (arm, seed, overrides) job as `personadrift train` in a subprocess; run dirs."""
    commands = []
    for arm, seed, args in jobs:
        arm_out = out / f"seed{seed}"
        cmd = train_command(ARMS[arm], [*args, f"out_dir={arm_out}", f"name={arm}-s{seed}"])
        commands.append((f"{arm} s{seed}", cmd, arm_out / f"{arm}.log"))
    codes = run_jobs(commands, log, parallel)
    done = {}
    for arm, seed, _ in jobs:
        code = codes[f"{arm} s{seed}"]
        if code != 0:
            raise RuntimeError(f"demo: arm {arm} seed {seed} failed (exit {code}); see its log")
        runs = sorted(
            (out / f"seed{seed}").glob(f"{arm}-s{seed}-*"), key=lambda p: p.stat().st_mtime
        )
        done[(arm, seed)] = runs[-1]
    return done


def run_demo(
    seeds: list[int], out: Path, overrides: list[str], log=print, parallel: int = 3
) -> dict:
    """The whole demo; returns {"arms": {arm: {seed: summary}}, "report": ..., "stages": ...}."""
    from personadrift.report.render import build_report
    from personadrift.report.summary import summarize

    for arm in ARMS:  # bad overrides fail here, before anything is built or written
        load_checked(ARMS[arm], overrides)
    out.mkdir(parents=True, exist_ok=True)
    stages: dict[str, float] = {}
    jobs = []
    for seed in seeds:
        t0 = time.time()
        path = prepare_seed(ARMS["hackable"], seed, out / f"seed{seed}", overrides, log)
        stages[f"seed{seed}/organism+direction"] = round(time.time() - t0, 1)
        args = [*overrides, f"seed={seed}", f"organism.seed={seed}", f"probes.directions={path}"]
        jobs += [(arm, seed, args) for arm in ARMS]
    t0 = time.time()
    log(f"training {len(jobs)} runs, {parallel} at a time")
    runs = run_arms(jobs, out, log, parallel)
    stages["training"] = round(time.time() - t0, 1)
    t0 = time.time()
    ordered = [runs[(arm, seed)] for seed in seeds for arm in ARMS]
    report = build_report(ordered, out / "report")
    stages["report"] = round(time.time() - t0, 1)
    arms: dict = {arm: {} for arm in ARMS}
    for (arm, seed), run_dir in runs.items():
        s = summarize(run_dir)
        arms[arm][str(seed)] = {k: (str(s[k]) if k == "run_dir" else s[k]) for k in SUMMARY_KEYS}
        arms[arm][str(seed)]["organism_digest"] = read_organism(run_dir).get("weights_digest")
    log(f"report: {report['html']}")
    return {"arms": arms, "report": str(report["html"]), "stages_seconds": stages}


def headline(result: dict) -> list[str]:
    """One line per arm and seed: base -> final misaligned, hack onset, EM step, alarm, reward."""

    def f(v, fmt="{:.3f}"):
        return "-" if v is None else fmt.format(v)

    lines = []
    for arm, by_seed in result["arms"].items():
        for seed, s in by_seed.items():
            lines.append(
                f"{arm:12s} seed {seed}: misaligned {f(s['base_misaligned'])} -> {f(s['final_misaligned'])} "
                f"(peak {f(s['peak_misaligned'])})  hack onset {f(s['hack_onset_step'], '{}')}  "
                f"EM step {f(s['em_step'], '{}')}  alarm {f(s['alarm_step'], '{}')}  "
                f"reward {f(s['final_reward'])}"
            )
    return lines


def write_result(result: dict, out: Path) -> None:
    (out / "demo.json").write_text(json.dumps(result, indent=1))
