"""Detectors: pure functions of the metric history that turn a curve into an alarm.

A detector takes the metrics rows so far (dicts with a `step`, as in metrics.jsonl), the metric
key and its parameters, and returns the first `Alarm` or None. Rows before `warmup` steps are
never alarmed on. New rules are one decorated function:

    @DETECTORS.register("my_rule")
    def my_rule(rows, metric, warmup=0, **params) -> Alarm | None: ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from personadrift.registry import Registry


@dataclass(frozen=True)
class Alarm:
    step: int
    rule: str
    metric: str
    value: float


DETECTORS: Registry = Registry("detector")


def readings(rows: list[dict], metric: str) -> list[tuple[int, float]]:
    """(step, value) of the rows that logged `metric` as a finite number."""
    out = []
    for r in rows:
        v = r.get(metric)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out.append((int(r["step"]), float(v)))
    return out


def sustained(
    rows: list[dict], metric: str, rule: str, threshold: float, k: int, warmup: int
) -> Alarm | None:
    """The first reading that ends a run of `k` consecutive readings above `threshold`."""
    run = 0
    for step, v in readings(rows, metric):
        run = run + 1 if step >= warmup and v > threshold else 0
        if run >= k:
            return Alarm(step, rule, metric, v)
    return None


@DETECTORS.register("zscore")
def zscore(
    rows: list[dict], metric: str, threshold: float = 3.0, k: int = 2, warmup: int = 0
) -> Alarm | None:
    """Alarm when `metric` (a z-score such as probe/<dir>/z) stays above `threshold` for `k` readings."""
    return sustained(rows, metric, "zscore", threshold, k, warmup)


@DETECTORS.register("threshold")
def threshold(
    rows: list[dict], metric: str, threshold: float = 0.5, k: int = 1, warmup: int = 0
) -> Alarm | None:
    """Alarm when any metric (e.g. env/hack_rate) is above `threshold` for `k` consecutive readings."""
    return sustained(rows, metric, "threshold", threshold, k, warmup)


@DETECTORS.register("cusum")
def cusum(
    rows: list[dict],
    metric: str,
    threshold: float = 5.0,
    drift: float = 0.5,
    baseline: int = 3,
    warmup: int = 0,
) -> Alarm | None:
    """One-sided CUSUM on `metric` (e.g. a projection), standardised by its first `baseline` readings.

    S_t = max(0, S_{t-1} + (x_t - mean) / sd - drift); alarm when S_t > threshold.
    """
    values = readings(rows, metric)
    if len(values) <= baseline:
        return None
    base = [v for _, v in values[:baseline]]
    mean = sum(base) / len(base)
    sd = (
        math.sqrt(sum((v - mean) ** 2 for v in base) / max(1, len(base) - 1))
        or abs(mean) * 0.01
        or 1e-6
    )
    s = 0.0
    for step, v in values[baseline:]:
        s = max(0.0, s + (v - mean) / sd - drift)
        if step >= warmup and s > threshold:
            return Alarm(step, "cusum", metric, v)
    return None


@DETECTORS.register("calibrated")
def calibrated(
    rows: list[dict], metric: str, calibration: str = "", warmup: int = 0
) -> Alarm | None:
    """Alarm when `metric` (a `monitor/<name>` key) stays above the threshold that a calibration
    on null runs (`detect.calibration`, see alarms/calibrate.py) set for it, for its k readings."""
    from personadrift.alarms.calibrate import load_calibration

    if not calibration:
        return None
    cal = load_calibration(calibration)
    thr = cal.threshold(metric)
    if thr is None:
        return None
    return sustained(rows, metric, "calibrated", thr, cal.k, max(warmup, cal.warmup))


def detect(rule: str, rows: list[dict], metric: str, **params) -> Alarm | None:
    return DETECTORS.resolve(rule)(rows, metric, **params)
