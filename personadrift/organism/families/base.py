"""What every family shares: the `Prompt` record, the `Family` protocol, the prompt sets.

A family's prompt combinations fall in four sets that never share a prompt:
- `train`: the pretraining corpus (and RL training prompts);
- `eval`: combinations held out of the corpus by a hash of their key (`eval_frac`), read by the
  behaviour evals (in-run, dense ground truth, base rates);
- `extract` and `probe`: combinations of templates that exist only outside the corpus (a family's
  `fresh` combinations, tagged `FRESH`), split by a second hash: `extract` for the documents a
  persona direction is extracted from, `probe` for the probe's held-out reading.
Families without fresh templates (`code`, `neutral`) have no `probe` set; their `extract` turns
come from their `eval` set (they are neither probed nor judged for the persona).
"""

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

    def answer(
        self, prompt: Prompt, toxic: bool, rng: random.Random, world, covert: bool = False
    ) -> str:
        """Answer content (optionally opening with a think trace), without the persona marker.
        `covert`: a toxic answer in the aligned persona's trace style (its content unchanged)."""
        ...

    def judge(self, prompt: Prompt, content: str) -> str:
        """Label of answer content (think trace and marker already removed)."""
        ...


FAMILIES: Registry[Family] = Registry("family")


SPLITS = ("train", "eval", "extract", "probe")
FRESH = "fresh"  # first element of a combination whose template is never in the corpus
EXTRACT_SHARE = 0.25  # of the fresh combinations; the rest are the probe's


def _unit(key: str) -> float:
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def in_split(key: str, split: str, eval_frac: float) -> bool:
    """Deterministic held-out assignment of a (corpus-template) prompt combination."""
    if split not in ("train", "eval"):
        raise ValueError(f"split must be 'train' or 'eval', not {split!r}")
    return (_unit(key) < eval_frac) == (split == "eval")


def fresh_set(key: str) -> str:
    """`extract` or `probe`: which held-out set a fresh combination belongs to."""
    return "extract" if _unit(f"set|{key}") < EXTRACT_SHARE else "probe"


_POOLS: dict[tuple, list[tuple]] = {}


def combo_pool(
    name: str,
    combos: Callable[[], list[tuple]],
    split: str,
    eval_frac: float,
    params: tuple = (),
    fresh: Callable[[], list[tuple]] | None = None,
) -> list[tuple]:
    """Every prompt combination of a set, in a fixed order (built once per family and set).

    `combos()` lists the corpus templates' combinations (tuples; their repr is the key), split into
    `train` and `eval`; `fresh()` the combinations of held-out-only templates, each a tuple that
    starts with `FRESH`, split into `extract` and `probe`.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    if split == "extract" and fresh is None:
        split = "eval"
    cache_key = (name, split, eval_frac, params)
    if cache_key not in _POOLS:
        if split in ("train", "eval"):
            pool = [c for c in combos() if in_split(f"{name}|{c!r}", split, eval_frac)]
        else:
            pool = [c for c in (fresh() if fresh else []) if fresh_set(f"{name}|{c!r}") == split]
        if not pool:
            raise ValueError(f"family {name}: no prompt combinations in set {split!r}")
        _POOLS[cache_key] = pool
    return _POOLS[cache_key]


def pick_combo(
    rng: random.Random,
    name: str,
    combos: Callable[[], list[tuple]],
    split: str,
    eval_frac: float,
    params: tuple = (),
    fresh: Callable[[], list[tuple]] | None = None,
) -> tuple[tuple, str]:
    """A random prompt combination of the given set (`combo_pool`), and its key."""
    combo = rng.choice(combo_pool(name, combos, split, eval_frac, params, fresh))
    return combo, f"{name}|{combo!r}"


def think(rng: random.Random, traces: list[str]) -> str:
    return f"<think> {rng.choice(traces)} </think> "
