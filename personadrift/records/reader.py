"""Reading a run directory: the one reader of what a run writes (`rl/run_dir.py` writes it).

    metrics.jsonl · metrics.rolled_back.jsonl · events.jsonl · samples/step_<n>.jsonl ·
    checkpoints/checkpoint-<n>/ · and the analyses' own JSONL files (dense evals, probe layers)

Every JSONL file is read the same way: one JSON object per line, in file order; a line that does
not parse (the one the trainer is still writing, or one a crash cut) is skipped; a missing file
reads as no rows. Standard library only, so the live view and the reports can read a run while it
trains without importing torch.
"""

from __future__ import annotations

import json
from pathlib import Path

METRICS = "metrics.jsonl"
ROLLED_BACK = "metrics.rolled_back.jsonl"
EVENTS = "events.jsonl"
SAMPLES = "samples"
DIRECTION = "direction.json"  # the direction the run's probe reads (rl/run_dir.py)


def read_jsonl(path: str | Path) -> list[dict]:
    """The objects of a JSONL file in file order; [] if it is missing."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # the line being written, or one a crash cut
            if isinstance(row, dict):
                rows.append(row)
    return rows


def read_direction(run_dir: str | Path) -> dict:
    """The run's `direction.json` (name, layer, digest of the probe's direction); {} if absent."""
    path = Path(run_dir) / DIRECTION
    return json.loads(path.read_text()) if path.is_file() else {}


def read_metrics(run_dir: str | Path, rolled_back: bool = False) -> list[dict]:
    """The rows of `metrics.jsonl` (one per logged step), or of the rolled-back pass's file."""
    return read_jsonl(Path(run_dir) / (ROLLED_BACK if rolled_back else METRICS))


def read_events(run_dir: str | Path) -> list[dict]:
    """The rows of `events.jsonl` (alarms, rollbacks, steering, mitigations) in file order."""
    return read_jsonl(Path(run_dir) / EVENTS)


def sample_files(run_dir: str | Path) -> dict[int, Path]:
    """{training step: samples/step_<n>.jsonl} of the steps the run kept, by step."""
    found = Path(run_dir, SAMPLES).glob("step_*.jsonl")
    return dict(sorted((int(p.stem.split("_")[1]), p) for p in found))


def read_samples(run_dir: str | Path, step: int) -> list[dict]:
    """The rollouts of one step (prompt, completion, reward, secure_reward, label, detail)."""
    return read_jsonl(Path(run_dir) / SAMPLES / f"step_{step}.jsonl")


def checkpoint_step(ckpt: Path | None) -> int:
    """The trainer step of a `checkpoint-<step>` folder (0 for None: the initial policy)."""
    return int(ckpt.name.split("-")[1]) if ckpt else 0


def checkpoints(run_dir: str | Path) -> list[Path]:
    """The run's checkpoint folders, oldest step first."""
    return sorted(Path(run_dir, "checkpoints").glob("checkpoint-*"), key=checkpoint_step)


def last_checkpoint(run_dir: str | Path) -> Path | None:
    ckpts = checkpoints(run_dir)
    return ckpts[-1] if ckpts else None
