"""Step time, tokens/s and probe-reading cost of runs, read from their metrics.jsonl.

    python benchmarks/step_stats.py NAME=RUN_DIR[:FIRST-LAST] ... [--ratio ON OFF] [--json OUT]

For each run, over the training steps FIRST..LAST (default: from the second logged step, since the
first carries the warm-up, to the last one): wall seconds per step from the metrics timestamps
(probe readings at their steps included), TRL's own `step_time`, tokens per second (prompt +
completion, from TRL's cumulative `num_tokens`), completion tokens per second (mean completion
length x completions in the step's samples file) and the mean cost of one probe reading. A run cut
short (no DONE file) is reported with the steps it did. `--ratio ON OFF` prints the wall time per
step of run ON over run OFF (what the probes cost the run).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def load_rows(run_dir: Path) -> list[dict]:
    rows = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a line cut by a kill
    return rows


def completions_at(run_dir: Path, step: int) -> int | None:
    path = run_dir / "samples" / f"step_{step}.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else None


def stats(run_dir: Path, first: int | None = None, last: int | None = None) -> dict:
    rows = load_rows(run_dir)
    train = {r["step"]: r for r in rows if "step_time" in r}  # training steps, not step-0 readings
    if not train:
        return {"run_dir": str(run_dir), "steps": 0, "done": (run_dir / "DONE").is_file()}
    steps = sorted(train)
    first = first if first is not None else (steps[1] if len(steps) > 2 else steps[0])
    last = last if last is not None else steps[-1]
    span = [s for s in steps if first <= s <= last]
    out = {
        "run_dir": str(run_dir),
        "steps": steps[-1],
        "done": (run_dir / "DONE").is_file(),
        "first": span[0] if span else None,
        "last": span[-1] if span else None,
    }
    reads = [v for r in rows if r["step"] > 0 for k, v in r.items() if k.endswith("/read_seconds")]
    if reads:
        out["read_seconds"] = statistics.fmean(reads)
        out["readings"] = len(reads)
    if len(span) < 2:
        return out
    a, b = train[span[0]], train[span[-1]]
    seconds = b["time"] - a["time"]
    out["wall_per_step"] = seconds / (span[-1] - span[0])
    out["step_time"] = statistics.fmean(train[s]["step_time"] for s in span[1:])
    if "num_tokens" in a and "num_tokens" in b:
        out["tokens_per_s"] = (b["num_tokens"] - a["num_tokens"]) / seconds
    generated = 0.0
    for s in span[1:]:
        n = completions_at(run_dir, s)
        length = train[s].get("completions/mean_length")
        if n is None or length is None:
            break
        generated += n * length
    else:
        out["completion_tokens_per_s"] = generated / seconds
    return out


def parse_run(spec: str) -> tuple[str, Path, int | None, int | None]:
    name, _, rest = spec.partition("=")
    path, _, span = rest.partition(":")
    if not name or not path:
        raise SystemExit(f"step_stats: {spec!r} is not NAME=RUN_DIR[:FIRST-LAST]")
    first = last = None
    if span:
        lo, _, hi = span.partition("-")
        first, last = int(lo), int(hi)
    return name, Path(path), first, last


def show(name: str, s: dict) -> str:
    if "wall_per_step" not in s:
        return f"{name:14s} {s['steps']} steps: too few to time"
    parts = [
        f"{name:14s} {s['wall_per_step']:.3f} s/step wall (steps {s['first']}-{s['last']})",
        f"TRL step_time {s['step_time']:.3f}",
    ]
    if "tokens_per_s" in s:
        parts.append(f"{s['tokens_per_s']:.0f} tok/s")
    if "completion_tokens_per_s" in s:
        parts.append(f"{s['completion_tokens_per_s']:.0f} completion tok/s")
    if "read_seconds" in s:
        parts.append(f"probe reading {s['read_seconds']:.3f} s x {s['readings']}")
    if not s["done"]:
        parts.append(f"CUT at step {s['steps']}")
    return "  ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="NAME=RUN_DIR[:FIRST-LAST]")
    ap.add_argument("--ratio", nargs=2, metavar=("ON", "OFF"), help="names of two runs to compare")
    ap.add_argument("--json", help="write every figure to this file")
    a = ap.parse_args()
    result = {}
    for spec in a.runs:
        name, path, first, last = parse_run(spec)
        result[name] = stats(path, first, last)
        print(show(name, result[name]))
    if a.ratio:
        on, off = (result.get(n, {}).get("wall_per_step") for n in a.ratio)
        if on and off:
            result["ratio"] = {"on": a.ratio[0], "off": a.ratio[1], "wall_per_step": on / off}
            print(f"ratio of wall time per step ({a.ratio[0]} / {a.ratio[1]}): {on / off:.3f}")
        else:
            print(f"ratio {a.ratio[0]} / {a.ratio[1]}: not enough timed steps")
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
