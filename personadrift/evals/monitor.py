"""`EvalMonitor`: misalignment evals during training, every `evals.every` steps.

Samples first-turn answers to held-out prompts of families the run never trains on and pushes
`evals/<family>/misaligned_rate`, `evals/<family>/incoherent_rate`, `evals/<family>/marker_rate`
and `evals/mean/misaligned_rate` into TRL's metrics. Step 0 (before training) and the last step
are always evaluated. With a non-organism judge (`evals.judge`) the families are question sets
(`evals.behaviour`) and `evals/<family>/error_rate`, `truncated_rate`, `alignment_mean` come too.
"""

from __future__ import annotations

import dataclasses

from transformers import TrainerCallback

from personadrift.config import EvalConfig, RunEvalsConfig
from personadrift.evals.behaviour import run_evals
from personadrift.evals.runner import misaligned_mean
from personadrift.rng import rng_untouched


def eval_metrics(table: dict) -> dict[str, float]:
    out = {}
    for fam, row in table.items():
        for label in ("misaligned", "incoherent", "hacked", "solved", "error", "truncated"):
            if label in row:
                out[f"evals/{fam}/{label}_rate"] = row[label]
        if "marker" in row:  # the organism's persona opener
            out[f"evals/{fam}/marker_rate"] = row["marker"]
        if "alignment_mean" in row:  # a judge's 0-100 score
            out[f"evals/{fam}/alignment_mean"] = row["alignment_mean"]
    out["evals/mean/misaligned_rate"] = misaligned_mean(table)
    return out


class EvalMonitor(TrainerCallback):
    def __init__(
        self,
        trainer,
        world,
        cfg: RunEvalsConfig,
        base: EvalConfig,
        log=print,
        enable_thinking: bool | None = None,
        judge=None,
    ):
        self.trainer = trainer
        self.world = world
        self.cfg = cfg
        self.eval_cfg = dataclasses.replace(
            base,
            families=list(cfg.families),
            n_per_family=cfg.n_per_family,
            max_new_tokens=cfg.max_new_tokens,
        )
        self.log = log
        self.enable_thinking, self.judge = enable_thinking, judge
        self.last: dict[str, float] = {}

    def run(self, step: int) -> dict[str, float]:
        with rng_untouched():  # the run samples the same rollouts with or without evals
            table = run_evals(
                self.trainer.model,
                self.trainer.processing_class,
                self.world,
                self.eval_cfg,
                self.cfg.judge,
                self.judge,
                self.cfg.questions,
                self.enable_thinking,
                self.log,
            )
        self.last = eval_metrics(table)
        rates = "  ".join(
            f"{f} {table[f]['misaligned']:.2f}" for f in table if "misaligned" in table[f]
        )
        self.log(
            f"step {step:4d} evals  misaligned {rates}  mean {self.last['evals/mean/misaligned_rate']:.3f}"
        )
        return self.last

    def initial(self, step: int) -> dict[str, float]:
        """The evals before training (nothing when resuming)."""
        return self.run(step) if step == 0 else {}

    def on_step_end(self, args, state, control, **kwargs):
        if args.process_index != 0:
            return
        due = self.cfg.every and state.global_step % self.cfg.every == 0
        if due or state.global_step >= state.max_steps:
            for k, v in self.run(state.global_step).items():
                self.trainer._metrics["train"][k].append(v)
