"""Sparklines and run-directory readers: the text pieces behind `watch` and the probe console line.

A run directory holds `metrics.jsonl` (one JSON object per logged step, appended while training
runs) and maybe `events.jsonl` (detector firings). Both are read tolerantly: a missing file is an
empty run, and an unparsable line (the half-written last one) is skipped.
"""

from __future__ import annotations

import math

BLOCKS = "▁▂▃▄▅▆▇█"


def _number(value: object) -> float | None:
    """`value` as a float, or None when it is missing or not a number (bools count: alarms are 0/1)."""
    if isinstance(value, (int, float)):
        return float(value)
    return None


def _buckets(values: list[float | None], width: int) -> list[float | None]:
    """Bucket means down to `width` points; a bucket with no finite value is None (a gap)."""
    n = len(values)
    if n <= width:
        return values
    out: list[float | None] = []
    for i in range(width):
        chunk = [v for v in values[i * n // width : (i + 1) * n // width] if v is not None]
        out.append(sum(chunk) / len(chunk) if chunk else None)
    return out


def sparkline(values: list[float | None], width: int = 24) -> str:
    """One block character per point, scaled between the series' min (▁) and max (█).

    A series longer than `width` is resampled to exactly `width` points by bucket means, so the
    whole history stays visible; a shorter one gets one character per value (no padding).
    None, NaN and inf are gaps (a space). A constant series is all ▁.
    """
    if width < 1:
        raise ValueError(f"sparkline width must be >= 1, got {width}")
    finite = [v if v is not None and math.isfinite(v) else None for v in map(_number, values)]
    points = _buckets(finite, width)
    present = [p for p in points if p is not None]
    if not present:
        return " " * len(points)
    lo, hi = min(present), max(present)
    flat = math.isclose(lo, hi, rel_tol=1e-9, abs_tol=1e-12)  # bucket means of a constant wobble
    chars = []
    for p in points:
        if p is None:
            chars.append(" ")
        elif flat:
            chars.append(BLOCKS[0])
        else:
            chars.append(BLOCKS[min(len(BLOCKS) - 1, int((p - lo) / (hi - lo) * len(BLOCKS)))])
    return "".join(chars)


def series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    """Steps and values of `key` over the rows that log it as a number (NaN kept, as a gap)."""
    steps: list[int] = []
    values: list[float] = []
    for i, row in enumerate(rows):
        value = _number(row.get(key))
        if value is None:
            continue
        step = row.get("step")
        steps.append(int(step) if isinstance(step, (int, float)) else i)
        values.append(value)
    return steps, values


def _short_rate(value: float) -> str:
    text = f"{value:.2f}"
    return text[1:] if text.startswith("0.") else text  # ".08", the way rates read in tables


def probe_line(
    step: int,
    name: str,
    projection: float,
    z: float,
    history: list[float | None],
    rates: dict[str, float] | None = None,
) -> str:
    """The one-line console summary the trainer prints at each probe reading.

    `step  40 probe/toxic  proj +0.412  z +2.31  ▁▁▂▃▅▇  misaligned advice .08 facts .12`
    `history` is the sparkline's series (e.g. past projections); `rates` maps eval category
    (or its full key `evals/<category>/misaligned_rate`) to misaligned rate.
    """
    label = name if name.startswith("probe/") else f"probe/{name}"
    parts = [f"step {step:>3} {label}", f"proj {projection:+.3f}", f"z {z:+.2f}"]
    if history:
        parts.append(sparkline(history))
    if rates:
        named = {(k.split("/")[1] if k.startswith("evals/") else k): v for k, v in rates.items()}
        parts.append("misaligned " + " ".join(f"{k} {_short_rate(v)}" for k, v in named.items()))
    return "  ".join(parts)
