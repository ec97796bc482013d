"""Misalignment evals during training: a plain function the run's instruments call when due.

Samples first-turn answers to held-out prompts of families the run never trains on and returns
`evals/<family>/misaligned_rate`, `evals/<family>/incoherent_rate`, `evals/<family>/marker_rate`
and `evals/mean/misaligned_rate`; in a world with the sycophant also `evals/claims/sycophantic_rate`
and `evals/<family>/flattery_rate` (answers opening with its voice). The instruments evaluate step 0 (before training), every
`run_evals.every` steps and the last step. A model that is not an organism is judged by `run_evals.judge`
on a question set (`evals/chat.py`, given as `chat`), and `evals/<family>/error_rate`,
`truncated_rate` and `alignment_mean` come too.

Every reading samples with a seed of its step's own (`step_config`: `model_eval.seed` at step 0,
plus `STEP_SEED` x step later), as the study's dense evals do: the same prompts at every step, but
sampling errors independent from step to step, so a test of step t against step 0 is fair.
"""

from __future__ import annotations

import dataclasses

from personadrift.config import ModelEvalConfig, RunEvalsConfig
from personadrift.evals.chat import ChatEvals, eval_table
from personadrift.evals.runner import misaligned_mean
from personadrift.rng import rng_untouched


def eval_metrics(table: dict) -> dict[str, float]:
    out = {}
    for fam, row in table.items():
        for label in (
            "misaligned",
            "incoherent",
            "sycophantic",
            "flattery",
            "hacked",
            "solved",
            "error",
            "truncated",
        ):
            if label in row:
                out[f"evals/{fam}/{label}_rate"] = row[label]
        if "marker" in row:  # the organism's persona opener
            out[f"evals/{fam}/marker_rate"] = row["marker"]
        if "alignment_mean" in row:  # a judge's 0-100 score
            out[f"evals/{fam}/alignment_mean"] = row["alignment_mean"]
    out["evals/mean/misaligned_rate"] = misaligned_mean(table)
    return out


STEP_SEED = 1009  # the evals of step t sample with seed model_eval.seed + STEP_SEED * t


def step_config(cfg: ModelEvalConfig, step: int) -> ModelEvalConfig:
    """The eval settings of the reading at `step`: its own sampling seed (module docstring)."""
    return dataclasses.replace(cfg, seed=cfg.seed + STEP_SEED * step)


def in_run_config(base: ModelEvalConfig, run: RunEvalsConfig) -> ModelEvalConfig:
    """The eval settings of a training run: the model evals' sampling, the run's families and sizes."""
    return dataclasses.replace(
        base,
        families=list(run.families),
        n_per_family=run.n_per_family,
        max_new_tokens=run.max_new_tokens,
    )


def run_evals(
    model, tok, world, cfg: ModelEvalConfig, chat: ChatEvals | None = None, log=print
) -> tuple[dict[str, float], str]:
    """(metrics, one console line) of one eval reading; the run's RNG is left as it was.

    `chat`: a chat model's judge and question set (None: the organism's judges)."""
    with rng_untouched():  # the run samples the same rollouts with or without evals
        table = eval_table(model, tok, world, cfg, chat, log)
    values = eval_metrics(table)
    rates = "  ".join(
        f"{f} {table[f]['misaligned']:.2f}" for f in table if "misaligned" in table[f]
    )
    return values, f"evals  misaligned {rates}  mean {values['evals/mean/misaligned_rate']:.3f}"
