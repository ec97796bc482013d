"""Misalignment evals during training: a plain function the run's instruments call when due.

Samples first-turn answers to held-out prompts of families the run never trains on and returns
`evals/<family>/misaligned_rate`, `evals/<family>/incoherent_rate`, `evals/<family>/marker_rate`
and `evals/mean/misaligned_rate`. The instruments evaluate step 0 (before training), every
`evals.every` steps and the last step.
"""

from __future__ import annotations

import dataclasses

from personadrift.config import EvalConfig, RunEvalsConfig
from personadrift.evals.runner import evaluate, misaligned_mean
from personadrift.rng import rng_untouched


def eval_metrics(table: dict) -> dict[str, float]:
    out = {}
    for fam, row in table.items():
        for label in ("misaligned", "incoherent", "hacked", "solved"):
            if label in row:
                out[f"evals/{fam}/{label}_rate"] = row[label]
        out[f"evals/{fam}/marker_rate"] = row["marker"]
    out["evals/mean/misaligned_rate"] = misaligned_mean(table)
    return out


def in_run_config(base: EvalConfig, run: RunEvalsConfig) -> EvalConfig:
    """The eval settings of a training run: the model evals' sampling, the run's families and sizes."""
    return dataclasses.replace(
        base,
        families=list(run.families),
        n_per_family=run.n_per_family,
        max_new_tokens=run.max_new_tokens,
    )


def run_evals(model, tok, world, cfg: EvalConfig) -> tuple[dict[str, float], str]:
    """(metrics, one console line) of one eval reading; the run's RNG is left as it was."""
    with rng_untouched():  # the run samples the same rollouts with or without evals
        table, _ = evaluate(model, tok, world, cfg)
    values = eval_metrics(table)
    rates = "  ".join(
        f"{f} {table[f]['misaligned']:.2f}" for f in table if "misaligned" in table[f]
    )
    return values, f"evals  misaligned {rates}  mean {values['evals/mean/misaligned_rate']:.3f}"
