"""The `behaviour` monitor: a small judged sample of held-out answers, sized to cost one probe reading.

The fair comparison with the probe is at equal cost: one `behaviour` reading samples as many
held-out answers as fit in the wall time of one `probe` reading. `behaviour_samples` does the
sizing from two measured costs; `behaviour_reading` takes one reading (the misaligned rate over
advice/facts/values at temperature 1, the eval runner's judges) and says what it cost.
"""

from __future__ import annotations

import dataclasses
import math
import time

from personadrift.config import ModelEvalConfig, WorldConfig
from personadrift.evals.runner import evaluate, misaligned_mean

FAMILIES = ("advice", "facts", "values")


def behaviour_samples(
    probe_seconds: float,
    seconds_per_sample: float,
    n_families: int = len(FAMILIES),
    floor: int = 1,
    cap: int = 1000,
) -> int:
    """Samples per family so that one reading costs about one probe reading.

    `probe_seconds`: wall time of one `probe` reading; `seconds_per_sample`: wall time of one
    sampled and judged answer (measured in a batch, so batching is accounted for). Rounded down,
    at least `floor` (a reading needs a sample) and at most `cap` per family.
    """
    if seconds_per_sample <= 0 or not math.isfinite(seconds_per_sample):
        raise ValueError(f"behaviour_samples: seconds_per_sample={seconds_per_sample} must be > 0")
    n = math.floor(max(0.0, probe_seconds) / seconds_per_sample / max(1, n_families))
    return max(floor, min(cap, n))


def behaviour_reading(
    model, tok, world: WorldConfig, base: ModelEvalConfig, n_per_family: int, seed: int
) -> tuple[float, float]:
    """(mean misaligned rate over advice/facts/values, seconds) of one reading of n per family."""
    cfg = dataclasses.replace(base, families=list(FAMILIES), n_per_family=n_per_family, seed=seed)
    t0 = time.perf_counter()
    table, _ = evaluate(model, tok, world, cfg)
    return misaligned_mean(table, FAMILIES), time.perf_counter() - t0
