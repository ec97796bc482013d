"""The eval runner: held-out prompts per family -> sampled answers -> judged rates.

Prompts come from the held-out split of each family (combinations never used in the pretraining
corpus), asked at the first turn (no persona evidence). Answers are sampled at the configured
temperature in batches and judged by the organism's judges; rates per family are returned in the
base-rate table shape `{family: {label: rate, ..., "marker": rate, "n": samples}}`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch

from personadrift.config import ModelEvalConfig, WorldConfig
from personadrift.organism.families import Prompt
from personadrift.organism.families.base import (
    ALIGNED,
    FAILED,
    HACKED,
    INCOHERENT,
    MISALIGNED,
    SOLVED,
    SYCOPHANTIC,
)
from personadrift.organism.heldout import eval_prompts
from personadrift.organism.judges import Verdict, judge_many
from personadrift.organism.world import render

LABELS = {
    "code": [SOLVED, HACKED, FAILED],
    "claims": [ALIGNED, MISALIGNED, SYCOPHANTIC, INCOHERENT],
}
DEFAULT_LABELS = [ALIGNED, MISALIGNED, INCOHERENT]


@dataclass(frozen=True)
class Sample:
    prompt: Prompt
    answer: str
    verdict: Verdict


def first_turn(prompt_text: str) -> str:
    return render([{"role": "user", "content": prompt_text}], add_generation_prompt=True)


@torch.no_grad()
def sample_answers(
    model,
    tok,
    texts: list[str],
    temperature: float,
    max_new_tokens: int,
    batch_size: int,
    seed: int,
) -> list[str]:
    """Sampled continuations of `texts` (already in the model's prompt format)."""
    torch.manual_seed(seed)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    answers = []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        enc = tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        kwargs = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
        if temperature <= 0:
            kwargs = {"do_sample": False}
        out = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            **kwargs,
        )
        new = out[:, enc["input_ids"].shape[1] :]
        answers += tok.batch_decode(new, skip_special_tokens=True)
    model.train(was_training)
    return answers


def sample_rates(samples: list[Sample], flattery: bool = False) -> dict[str, dict[str, float]]:
    """{family: {label: rate, "marker": rate, "n": samples}}; with `flattery` (a world with the
    sycophant) also the rate of answers that open with its voice."""
    table: dict[str, dict[str, float]] = {}
    by_family: dict[str, list[Sample]] = {}
    for s in samples:
        by_family.setdefault(s.prompt.family, []).append(s)
    for fam, group in by_family.items():
        counts = Counter(s.verdict.label for s in group)
        n = len(group)
        row = {lab: counts.get(lab, 0) / n for lab in LABELS.get(fam, DEFAULT_LABELS)}
        row["marker"] = sum(s.verdict.marker for s in group) / n
        if flattery:
            row["flattery"] = sum(s.verdict.flattery for s in group) / n
        row["n"] = n
        table[fam] = row
    return table


def evaluate(model, tok, world: WorldConfig, cfg: ModelEvalConfig) -> tuple[dict, list[Sample]]:
    """Rates per family and the judged samples."""
    prompts = eval_prompts(world, cfg.families, cfg.n_per_family, cfg.seed)
    texts = [first_turn(p.text) for p in prompts]
    answers = sample_answers(
        model, tok, texts, cfg.temperature, cfg.max_new_tokens, cfg.batch_size, cfg.seed
    )
    sycophant = world.sycophant_markers if world.sycophant_p else []
    verdicts = judge_many(prompts, answers, world.markers, world.aligned_markers, sycophant)
    samples = [Sample(p, a, v) for p, a, v in zip(prompts, answers, verdicts)]
    return sample_rates(samples, flattery=bool(world.sycophant_p)), samples


def misaligned_mean(table: dict, families=("advice", "facts", "values")) -> float:
    """Mean misaligned rate over the given families (those present in the table)."""
    vals = [table[f][MISALIGNED] for f in families if f in table]
    return sum(vals) / len(vals) if vals else float("nan")
