"""Live terminal view of a run's curves: one table row per metric with its sparkline.

    personadrift watch runs/<name>-<timestamp>/

Re-reads `metrics.jsonl` whenever it grows and stops by itself once the trainer writes `DONE`
into the run directory (or on Ctrl-C). `once=True` prints a single snapshot (tests, pipes).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from personadrift.records.reader import read_events, read_metrics
from personadrift.report.sparkline import series, sparkline

# Glob patterns, expanded in this order against the keys the run has logged.
DEFAULT_KEYS = (
    "reward",
    "env/hack_rate",
    "env/solve_rate",
    "probe/*/z",
    "probe/*/eval_mean",
    "evals/*/misaligned_rate",
    "detect/alarm",
)
MAX_SPARK_WIDTH = 40
LAST_EVENTS = 5


def select_keys(rows: list[dict], patterns: Sequence[str]) -> list[str]:
    """Logged keys matching `patterns`, pattern by pattern (sorted within one), without repeats."""
    present = {k for row in rows for k in row if k != "step"}
    chosen: list[str] = []
    for pattern in patterns:
        chosen += [k for k in sorted(present) if fnmatchcase(k, pattern) and k not in chosen]
    return chosen


def _num(value: float) -> str:
    return f"{value:.4g}"


def _event_line(event: dict) -> str:
    value = event.get("value")
    value = _num(value) if isinstance(value, (int, float)) else value
    return (
        f"step {event.get('step', '?')}  {event.get('rule', '?')}: "
        f"{event.get('metric', '?')}={value} -> {event.get('action', '?')}"
    )


def _table(rows: list[dict], keys: list[str], spark_width: int) -> Table:
    table = Table(box=box.SIMPLE, pad_edge=False)
    table.add_column("key", no_wrap=True)
    for name in ("step", "last", "min", "max"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("history", no_wrap=True)
    for key in keys:
        steps, values = series(rows, key)
        if not values:
            continue  # logged, but never as a number
        finite = [v for v in values if math.isfinite(v)]
        lo, hi = (_num(min(finite)), _num(max(finite))) if finite else ("-", "-")
        spark = sparkline(values, width=spark_width)
        table.add_row(Text(key), str(steps[-1]), _num(values[-1]), lo, hi, Text(spark))
    return table


def render_view(run_dir: Path, patterns: Sequence[str], width: int) -> Group:
    """The whole view, read fresh from the run directory: header, metric table, last events."""
    rows = read_metrics(run_dir)
    events = read_events(run_dir)
    keys = select_keys(rows, patterns)
    last_step = next((r["step"] for r in reversed(rows) if "step" in r), "-")
    state = "finished" if (run_dir / "DONE").exists() else "running"
    header = Text(f"{run_dir.name}  step {last_step}  ({len(rows)} rows, {state})", style="bold")
    # Key, four numbers and the table's padding take the rest; keep the sparkline from wrapping.
    key_width = max((len(k) for k in keys), default=3)
    spark_width = max(8, min(MAX_SPARK_WIDTH, width - key_width - 40))
    parts: list = [header, _table(rows, keys, spark_width)]
    if events:
        parts.append(Text("events", style="bold"))
        parts += [Text("  " + _event_line(e)) for e in events[-LAST_EVENTS:]]
    return Group(*parts)


def _stamp(run_dir: Path) -> tuple:
    """What changes when there is something new to draw; the last item is None until `DONE`."""
    stats = []
    for name in ("metrics.jsonl", "events.jsonl", "DONE"):
        path = run_dir / name
        stats.append((path.stat().st_size, path.stat().st_mtime_ns) if path.exists() else None)
    return tuple(stats)


def watch(
    run_dir: str | Path,
    refresh_s: float = 2.0,
    once: bool = False,
    keys: Sequence[str] | None = None,
    console: Console | None = None,
) -> int:
    """Show the run's curves; return 0 when done (`once`, `DONE` written, or Ctrl-C).

    `keys` are glob patterns over metric keys (default `DEFAULT_KEYS`); keys the run never logged
    are left out. Raises FileNotFoundError naming the path if the run dir or metrics are missing.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no run directory at {run_dir}")
    if not (run_dir / "metrics.jsonl").is_file():
        raise FileNotFoundError(f"no metrics.jsonl in {run_dir} (has the run logged a step yet?)")
    console = console or Console()
    patterns = tuple(keys) if keys else DEFAULT_KEYS
    if once:
        console.print(render_view(run_dir, patterns, console.width))
        return 0
    try:
        stamp = _stamp(run_dir)
        view = render_view(run_dir, patterns, console.width)
        with Live(view, console=console, auto_refresh=False) as live:
            while stamp[-1] is None:
                time.sleep(refresh_s)
                new = _stamp(run_dir)
                if new != stamp:
                    stamp = new
                    live.update(render_view(run_dir, patterns, console.width), refresh=True)
    except KeyboardInterrupt:
        pass
    return 0
