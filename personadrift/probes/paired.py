"""Per-reading statistics of the probe monitors: the paired shift and the exceedance fraction.

- `paired_stat(baseline, now)`: the `probe` monitor's statistic on the fixed held-out prompts;
  `shift_stat(baseline, now)`: the `probe_shift` monitor's (the same change, in prompt SDs).
- `high_fraction(values, p99)` with `percentile(values, q)`: the `probe_rollout` monitor's
  statistic on the step's own rollouts (the fraction above the base model's 99th percentile).
- `relative_shift(base, now)`: the `probe_relative` statistic, the persona direction's shift
  against the shifts of reference directions read on the same prompts at the same step (blind to
  drift that moves every direction alike).
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
    t grows only when the prompts move *together* by more than they scatter. With n *distinct*
    prompts, independent per-prompt noise and no shift it would follow Student's t(n - 1). The
    organism's probe reads each prompt of its held-out `probe` set once (268 distinct prompts at
    the default 100 per family; none shared with extraction or the evals), so n counts distinct
    prompts. Prompts of one template still share noise, so the calibration on null runs, not a
    t table, decides what counts as a shift.

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


def relative_shift(base: Sequence[tuple[float, float]], now: Sequence[float]) -> float:
    """How far the persona direction's shift stands out from the reference directions' shifts.

    `base[j]` = (mean, population SD) of direction j's projections over the probe prompts at step
    0, `now[j]` the mean at this step; j = 0 is the persona direction, j >= 1 the references
    (random unit directions at the same layer). Each direction's shift is taken in its own prompt
    SDs, e_j = (now_j - mean_j) / sd_j (`shift_stat`'s unit), and the statistic is
    (e_0 - mean(e_ref)) / sd(e_ref), sample SD over the references: a drift of the residual stream
    that moves every direction alike moves e_0 with the references and leaves it near 0; a rise
    along the persona alone stands out by many reference SDs. NaN with fewer than 2 references;
    0 (or ±1e9) when the references moved identically."""
    if len(base) != len(now):
        raise ValueError(f"relative_shift: {len(base)} baseline directions, {len(now)} now")
    effects = [(x - m) / sd if sd > 1e-12 else 0.0 for (m, sd), x in zip(base, now)]
    refs = effects[1:]
    if len(refs) < 2:
        return float("nan")
    mean = math.fsum(refs) / len(refs)
    sd = math.sqrt(math.fsum((e - mean) ** 2 for e in refs) / (len(refs) - 1))
    gap = effects[0] - mean
    if sd <= 1e-12:
        return 0.0 if abs(gap) <= 1e-12 else math.copysign(1e9, gap)
    return gap / sd


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
