"""`ProbeMonitor`: the TRL callback that reads persona directions every `probes.every` steps.

At each reading (in `on_step_end`, after the optimizer step, never inside the training forward):
- `probe/<dir>/eval_mean`: mean last-prompt-token projection over fixed held-out prompts of
  families the run never trains on; `probe/<dir>/eval_answer_mean`: the same over a short greedy
  answer;
- `probe/<dir>/rollout_mean`: mean projection over a subsample of the step's completions;
  `rollout_think_mean` / `rollout_answer_mean`: the same over their reasoning (`<think>…</think>`)
  and answer spans (`probes.spans`; a span no completion has is not logged);
- `probe/<dir>/z`: shift of eval_mean from the baseline (the first `baseline_readings` readings)
  in units of the standard error of the mean over the eval prompts;
- `probe/<dir>/read_seconds`: what the reading cost (its overhead on the run).
Values go into TRL's own metrics (so metrics.jsonl, TensorBoard and W&B get them) and one console
line. `state()`/`restore()` carry the baseline across a resume (saved with each checkpoint).
"""

from __future__ import annotations

import json
import math
import statistics
import time

from transformers import TrainerCallback

from personadrift.probes.direction import Direction
from personadrift.probes.reading import read_completion_spans, read_prompts
from personadrift.rng import rng_untouched


class ProbeMonitor(TrainerCallback):
    def __init__(self, trainer, direction: Direction, cfg, eval_texts: list[str], log=print):
        self.trainer = trainer
        self.direction = direction
        self.cfg = cfg  # ProbesConfig
        self.eval_texts = eval_texts
        self.log = log
        self.baseline: list[list[float]] = []  # per-prompt readings of the baseline readings
        self.history: list[tuple[int, float]] = []  # (step, z)
        self.last: dict[str, float] = {}

    # state ---------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"baseline": self.baseline, "history": self.history}

    def restore(self, state: dict) -> None:
        self.baseline = state.get("baseline", [])
        self.history = [tuple(h) for h in state.get("history", [])]

    # reading -------------------------------------------------------------------------------
    def key(self, what: str) -> str:
        return f"probe/{self.direction.name}/{what}"

    def read(self, step: int) -> dict[str, float]:
        with rng_untouched():
            return self._read(step)

    def _read(self, step: int) -> dict[str, float]:
        t0 = time.perf_counter()
        model, tok = self.trainer.model, self.trainer.processing_class
        last, answer = read_prompts(
            model, tok, self.eval_texts, self.direction, self.cfg.answer_tokens
        )
        if len(self.baseline) < self.cfg.baseline_readings:
            self.baseline.append(last)
        base = [v for reading in self.baseline for v in reading]
        base_mean = statistics.fmean(base)
        se = statistics.pstdev(self.baseline[0]) / math.sqrt(len(last)) or 1e-9
        mean = statistics.fmean(last)
        out = {self.key("eval_mean"): mean, self.key("z"): (mean - base_mean) / se}
        if answer:
            out[self.key("eval_answer_mean")] = statistics.fmean(answer)
        rollouts = self.rollouts()
        if rollouts:
            prompts, completions = rollouts
            spans = read_completion_spans(model, tok, prompts, completions, self.direction)
            out[self.key("rollout_mean")] = statistics.fmean(spans.all)
            for what, values in (("think", spans.think), ("answer", spans.answer)):
                present = [v for v in values if not math.isnan(v)]
                if present:  # a span no completion has is left out, not logged as 0
                    out[self.key(f"rollout_{what}_mean")] = statistics.fmean(present)
        out[self.key("read_seconds")] = time.perf_counter() - t0
        self.history.append((step, out[self.key("z")]))
        self.last = out
        return out

    def rollouts(self) -> tuple[list[str], list[str]] | None:
        logs = getattr(self.trainer, "_logs", None)
        if not logs or not logs.get("completion"):
            return None
        n = self.cfg.rollout_samples
        prompts, completions = list(logs["prompt"])[-n:], list(logs["completion"])[-n:]
        prompts = [p if isinstance(p, str) else json.dumps(p) for p in prompts]
        completions = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        return prompts, completions

    def push(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.trainer._metrics["train"][k].append(v)

    def console(self, step: int, values: dict[str, float]) -> None:
        from personadrift.report.sparkline import probe_line

        zs = [z for _, z in self.history]
        self.log(probe_line(step, f"probe/{self.direction.name}", values[self.key("eval_mean")],
                            values[self.key("z")], zs, None))  # fmt: skip

    # callback events -------------------------------------------------------------------------
    def initial(self, step: int) -> dict[str, float]:
        """The baseline reading before training (nothing when resuming with a baseline)."""
        if self.baseline:
            return {}
        values = self.read(step)
        self.console(step, values)
        return values

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.cfg.every or args.process_index != 0:
            return
        values = self.read(state.global_step)
        self.push(values)
        self.console(state.global_step, values)
