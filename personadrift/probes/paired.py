"""Per-reading statistics of the probe monitors: the paired shift and the exceedance fraction.

- `paired_stat(baseline, now)`: the `probe` monitor's statistic on the fixed held-out prompts;
  `shift_stat(baseline, now)`: the `probe_shift` monitor's (the same change, in prompt SDs).
- `high_fraction(values, p99)` with `percentile(values, q)`: the `probe_rollout` monitor's
  statistic on the step's own rollouts (the fraction above the base model's 99th percentile).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

SD_FLOOR = 1e-6  # relative to the mean absolute change: below it the diffs count as constant


def paired_stat(baseline: Sequence[float], now: Sequence[float]) -> float:
    """Paired t statistic of the per-prompt change `now[i] - baseline[i]`.

    t = mean(d) / (sd(d) / sqrt(n)), with d the change of each prompt's projection from that
    same prompt's baseline reading and sd the sample standard deviation (n - 1).

    Why it is calibrated where the old `probe/<dir>/z` is not: z divided the mean shift by the
    across-prompt spread of one baseline reading. That spread is mostly *between prompts* (each
    prompt has its own projection), which the shift does not contain, so z's unit has nothing to
    do with the shift's own noise: a small uniform drift of the weights moves every prompt a
    little and z reads it as many standard errors (control runs drifted to z = -6…-9). Pairing
    removes the between-prompt spread; what is left in sd(d) is how unevenly the prompts moved, so
    t grows only when the prompts move *together* by more than they scatter. With independent
    per-prompt noise and no shift it follows Student's t(n - 1) whatever the prompts' spread;
    the drift that null runs still show is what the calibration on null runs absorbs.

    Guarded: fewer than 2 pairs gives 0; when every prompt moved by the same amount (sd = 0,
    e.g. identical weights) it is 0 for no change and ±1e9 (a finite stand-in for infinity,
    so thresholds still compare) for a uniform shift.
    """
    if len(baseline) != len(now):
        raise ValueError(f"paired_stat: {len(baseline)} baseline readings, {len(now)} now")
    n = len(now)
    if n < 2:
        return 0.0
    diffs = [b - a for a, b in zip(baseline, now)]
    mean = math.fsum(diffs) / n
    var = math.fsum((d - mean) ** 2 for d in diffs) / (n - 1)
    sd = math.sqrt(var)
    scale = math.fsum(abs(d) for d in diffs) / n
    if sd <= SD_FLOOR * max(scale, 1e-12):
        if abs(mean) <= 1e-12:
            return 0.0
        return math.copysign(1e9, mean)
    return mean / (sd / math.sqrt(n))


def shift_stat(baseline: Sequence[float], now: Sequence[float]) -> float:
    """The mean per-prompt change `now[i] - baseline[i]` in units of the baseline's spread across
    prompts (population SD): an effect size, the projection's shift in "prompt SDs".

    The `probe_shift` monitor's statistic, next to `paired_stat`'s t. The two differ only in the
    unit: t divides by how unevenly the prompts moved, which collapses when a weight update moves
    every prompt alike (one GRPO step of a null run can give |t| ~ 30 for a shift of 0.01 SD), so
    t's null range differs by orders of magnitude between seeds; the shift divides by a fixed
    scale, so null runs stay within a few hundredths and one threshold fits every seed. 0 for
    fewer than 2 prompts or a baseline without spread."""
    if len(baseline) != len(now):
        raise ValueError(f"shift_stat: {len(baseline)} baseline readings, {len(now)} now")
    n = len(now)
    if n < 2:
        return 0.0
    mean_b = math.fsum(baseline) / n
    sd = math.sqrt(math.fsum((b - mean_b) ** 2 for b in baseline) / n)
    if sd <= 1e-12:
        return 0.0
    return (math.fsum(now) / n - mean_b) / sd


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of `values`, linear interpolation between order statistics
    (numpy's default); NaN for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile: q={q} is not in [0, 100]")
    xs = sorted(float(v) for v in values)
    if not xs:
        return float("nan")
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def high_fraction(values: Sequence[float], p99: float) -> float:
    """Fraction of `values` strictly above `p99` (the base model's 99th percentile); NaN if none."""
    if not values:
        return float("nan")
    return sum(1 for v in values if v > p99) / len(values)
