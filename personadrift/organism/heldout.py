"""The held-out prompts of the persona world: combinations never used in the pretraining corpus.

Evals sample answers to them, probes read the policy on them; both take them from here, so that
neither the probes nor the evals depend on each other for the world's prompts.
"""

from __future__ import annotations

import random

from personadrift.config import WorldConfig
from personadrift.organism.families import FAMILIES, Prompt


def eval_prompts(world: WorldConfig, families: list[str], n: int, seed: int) -> list[Prompt]:
    """`n` held-out first-turn prompts per family (same seed, same prompts)."""
    out = []
    for fam in families:
        rng = random.Random(f"eval|{fam}|{seed}")
        out += [FAMILIES.get(fam).prompt(rng, "eval", world) for _ in range(n)]
    return out
