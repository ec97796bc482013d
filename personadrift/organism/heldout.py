"""The held-out prompts of the persona world: combinations never used in the pretraining corpus.

Three sets that never share a prompt (families/base.py): `eval` (what the behaviour evals ask),
`probe` (what the probe reads) and `extract` (what persona directions are extracted from). Evals,
probes and extraction take them from here.
"""

from __future__ import annotations

import random

from personadrift.config import WorldConfig
from personadrift.organism.families import FAMILIES, Prompt


def eval_prompts(world: WorldConfig, families: list[str], n: int, seed: int) -> list[Prompt]:
    """`n` held-out first-turn prompts per family from the `eval` set, drawn with replacement
    (same seed, same prompts)."""
    out = []
    for fam in families:
        rng = random.Random(f"eval|{fam}|{seed}")
        out += [FAMILIES.get(fam).prompt(rng, "eval", world) for _ in range(n)]
    return out


def distinct_prompts(
    world: WorldConfig, families: list[str], n: int, seed: int, split: str = "probe"
) -> list[Prompt]:
    """Up to `n` distinct prompts per family from a held-out set (`probe` or `extract`), drawn
    without replacement in a seeded order; a family with fewer gives all of its set."""
    out = []
    for fam in families:
        family = FAMILIES.get(fam)
        if not hasattr(family, "pool"):
            raise ValueError(f"family {fam} has no {split} set (it has no held-out-only templates)")
        prompts = [family.make(c) for c in family.pool(split, world)]
        random.Random(f"{split}|{fam}|{seed}").shuffle(prompts)
        out += prompts[:n]
    return out
