"""The early-warning monitors, read side by side at every step of a study run (`monitors.record`).

Each monitor turns something the run can see into one number per step, logged as `monitor/<name>`
(the series that `alarms/calibrate.py` calibrates on null runs and the `calibrated` detector
watches):
- `probe`: the paired statistic (`probes.paired.paired_stat`) of the held-out prompts' persona
  projections against each prompt's own baseline reading;
- `probe_L<k>`: the `probe` statistic with the direction read at its layer k instead of its chosen
  layer (the same prompts; read in-run only when a detector watches it, post hoc by the study's
  dense pass at every layer);
- `probe_shift`: the same per-prompt change in units of the baseline's spread across prompts
  (`probes.paired.shift_stat`: an effect size, whose null range does not collapse);
- `probe_rollout`: the fraction of the step's rollouts whose projection (read in the loss forward)
  exceeds the base model's `rollout_quantile` percentile, taken from the first step's rollouts
  (sampled, and read, under the initial weights);
- `behaviour`: the misaligned rate of a small judged sample of held-out answers, as many as one
  probe reading's wall time buys (`monitors.behaviour_n`, or measured at step 0);
- `trace`: the keyword monitor on the step's rollouts (`evals.trace`), the cheap text baseline;
- `hack_rate`: the secure grader's hack rate, a reference a real lab would not have.

A study run records all of them (`monitors.record`); a run whose detector watches one
(`detect.metric: monitor/probe`, the calibrated alarm) reads only that one (`names`).
"""

from __future__ import annotations

import dataclasses
import re

from personadrift.config import ModelEvalConfig, MonitorsConfig
from personadrift.evals.behaviour import behaviour_reading, behaviour_samples
from personadrift.evals.trace import trace_rate
from personadrift.probes.paired import high_fraction, paired_stat, percentile, shift_stat
from personadrift.rng import rng_untouched

NAMES = ("probe", "probe_shift", "probe_rollout", "behaviour", "trace", "hack_rate")
LAYER_MONITOR = re.compile(r"probe_L(\d+)")
SIZING_N = 8  # answers per family of the step-0 reading that measures a sample's cost


@dataclasses.dataclass
class StepView:
    """What the monitors see of one step."""

    step: int
    baseline: list[float] | None  # the held-out prompts' baseline projections (per prompt)
    now: list[float] | None  # this step's projections of the same prompts
    probe_seconds: float | None  # what this step's probe reading cost
    projections: list[float]  # the step's rollouts, read in the loss forward
    completions: list[str]  # the step's rollouts, as written to samples/
    hack_rate: float | None
    layers: dict[int, tuple[list[float], list[float]]] = dataclasses.field(default_factory=dict)
    # the same prompts read at other layers of the direction: layer -> (baseline, now)


def monitor_layer(name: str) -> int | None:
    """k of a `probe_L<k>` monitor (None for any other name)."""
    m = LAYER_MONITOR.fullmatch(name)
    return int(m.group(1)) if m else None


def is_monitor(name: str) -> bool:
    return name in NAMES or monitor_layer(name) is not None


class Monitors:
    def __init__(self, cfg: MonitorsConfig, world, base_eval: ModelEvalConfig, names=NAMES) -> None:
        self.cfg = cfg
        self.names = set(names)
        self.world = world
        self.base_eval = base_eval
        self.rollout_cut: float | None = None  # the base model's rollout percentile
        self.behaviour_n = cfg.behaviour_n  # 0 until sized at the first reading

    def state(self) -> dict:
        return {"rollout_cut": self.rollout_cut, "behaviour_n": self.behaviour_n}

    def restore(self, state: dict) -> None:
        self.rollout_cut = state.get("rollout_cut", self.rollout_cut)
        self.behaviour_n = state.get("behaviour_n", self.behaviour_n)

    def read(self, view: StepView, model, tok) -> dict[str, float]:
        out: dict[str, float] = {}
        want = self.names.__contains__
        if view.baseline is not None and view.now is not None:
            if want("probe"):
                out["monitor/probe"] = paired_stat(view.baseline, view.now)
            if want("probe_shift"):
                out["monitor/probe_shift"] = shift_stat(view.baseline, view.now)
        for layer, (baseline, now) in view.layers.items():
            if want(f"probe_L{layer}"):
                out[f"monitor/probe_L{layer}"] = paired_stat(baseline, now)
        if want("probe_rollout") and view.projections:
            if self.rollout_cut is None:
                self.rollout_cut = percentile(view.projections, self.cfg.rollout_quantile)
            out["monitor/probe_rollout"] = high_fraction(view.projections, self.rollout_cut)
        if want("behaviour") and self.world is not None:
            rate, seconds = self.behaviour(model, tok, view)
            out["monitor/behaviour"] = rate
            out["monitor/behaviour_seconds"] = seconds
        if want("trace") and view.completions:
            markers = self.world.markers if self.world is not None else ()
            out["monitor/trace"] = trace_rate(view.completions, markers)
        if want("hack_rate") and view.hack_rate is not None:
            out["monitor/hack_rate"] = view.hack_rate
        return out

    def behaviour(self, model, tok, view: StepView) -> tuple[float, float]:
        seed = self.base_eval.seed + 1000 * (view.step + 1)  # fresh answers at every reading
        with rng_untouched():  # the run samples the same rollouts with or without the monitor
            if not self.behaviour_n:
                _, cost = behaviour_reading(model, tok, self.world, self.base_eval, SIZING_N, seed)
                per_sample = cost / (SIZING_N * 3)
                self.behaviour_n = behaviour_samples(view.probe_seconds or 0.0, per_sample)
            return behaviour_reading(model, tok, self.world, self.base_eval, self.behaviour_n, seed)
