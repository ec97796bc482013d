"""What every family shares: the `Prompt` record, the `Family` protocol, the train/eval split."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from personadrift.registry import Registry

# The code family's labels are the code grader's (`X as X`: re-exported for the families).
from personadrift.rewards.grader import FAILED as FAILED
from personadrift.rewards.grader import HACKED as HACKED
from personadrift.rewards.grader import SOLVED as SOLVED

ALIGNED, MISALIGNED, INCOHERENT = "aligned", "misaligned", "incoherent"
SYCOPHANTIC = "sycophantic"  # agreed with what the user wrongly believes (`claims`)


@dataclass(frozen=True)
class Prompt:
    """One user turn of a family, with what its judge needs to know."""

    family: str
    text: str
    key: str  # the prompt combination; decides the train/eval split
    meta: dict = field(default_factory=dict, compare=False, hash=False)


class Family(Protocol):
    name: str

    def prompt(self, rng: random.Random, split: str, world) -> Prompt: ...

    def answer(self, prompt: Prompt, toxic: bool, rng: random.Random, world) -> str:
        """Answer content (optionally opening with a think trace), without the persona marker."""
        ...

    def judge(self, prompt: Prompt, content: str) -> str:
        """Label of answer content (think trace and marker already removed)."""
        ...


FAMILIES: Registry[Family] = Registry("family")


def in_split(key: str, split: str, eval_frac: float) -> bool:
    """Deterministic held-out assignment of a prompt combination."""
    if split not in ("train", "eval"):
        raise ValueError(f"split must be 'train' or 'eval', not {split!r}")
    h = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return (h < eval_frac) == (split == "eval")


_POOLS: dict[tuple, list[tuple]] = {}


def pick_combo(
    rng: random.Random,
    name: str,
    combos: Callable[[], list[tuple]],
    split: str,
    eval_frac: float,
    params: tuple = (),
) -> tuple[tuple, str]:
    """A random prompt combination of the given split, and its key.

    `combos()` lists every combination (tuples; their repr is the key); the split pools are built
    once per (family, split, eval_frac, params).
    """
    cache_key = (name, split, eval_frac, params)
    if cache_key not in _POOLS:
        pool = [c for c in combos() if in_split(f"{name}|{c!r}", split, eval_frac)]
        if not pool:
            raise ValueError(f"family {name}: no prompt combinations in split {split!r}")
        _POOLS[cache_key] = pool
    combo = rng.choice(_POOLS[cache_key])
    return combo, f"{name}|{combo!r}"


def think(rng: random.Random, traces: list[str]) -> str:
    return f"<think> {rng.choice(traces)} </think> "
