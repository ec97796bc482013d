"""The run directory: creation, `config.yaml` first, `metrics.jsonl` written line by line, and the
file surgery of a rollback.

runs/<name>-<timestamp>/  config.yaml · organism.json · direction.json · metrics.jsonl · samples/step_<n>.jsonl
                          directions/ · checkpoints/checkpoint-<n>/ · tb/ · events.jsonl · DONE
                          eval_weights/ (until the evals after training have read them)
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path

from personadrift.config import Config, ConfigError, to_yaml
from personadrift.organism.digests import RUN_RECORD
from personadrift.records.reader import (
    DIRECTION,
    checkpoint_step,
    checkpoints,
    read_events,
    read_metrics,
    sample_files,
)
from personadrift.rl.distributed import is_main, on_main
from personadrift.rl.evals_after import move_rolled_back

STATE_FILE = "personadrift_state.json"


def new_run_dir(cfg: Config) -> Path:
    """A fresh run directory with config.yaml; under a launcher the main process makes it for all."""
    return on_main(lambda: _make_run_dir(cfg))


def _make_run_dir(cfg: Config) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(cfg.out_dir) / f"{cfg.name}-{stamp}"
    n = 1
    while path.exists():  # two runs started in the same second
        n += 1
        path = Path(cfg.out_dir) / f"{cfg.name}-{stamp}-{n}"
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(to_yaml(cfg))
    return path


def write_organism(run_dir: Path, built) -> None:
    """The organism build the run trains (cache name, weights sha256, whether it is the published
    build): what calibrations and studies fitted on this run record (`organism.digests`)."""
    if not is_main():
        return
    record = {
        "name": built.path.name,
        "weights_digest": built.weights_digest,
        "digest_matches": built.digest.matches,
    }
    (run_dir / RUN_RECORD).write_text(json.dumps(record, indent=1))


def write_direction(run_dir: Path, direction) -> None:
    """The direction the run's probe reads (name, layer, sha256 of its vectors): what a
    calibration fitted on this run records, and what a run with that calibration must read."""
    if not is_main():
        return
    record = {"name": direction.name, "layer": direction.layer, "digest": direction.digest()}
    (run_dir / DIRECTION).write_text(json.dumps(record, indent=1))


def last_complete_checkpoint(run_dir: Path, log=print) -> Path | None:
    """The last checkpoint the trainer finished saving: its `STATE_FILE` is written last (the
    instruments' `on_save`, after the trainer's own files). Later folders, cut off by a kill while
    saving, are removed with a line in the log, so a resume never loads half a checkpoint."""
    ckpts = checkpoints(run_dir)
    done = [c for c in ckpts if (c / STATE_FILE).is_file()]
    last = done[-1] if done else None
    for c in ckpts:
        if checkpoint_step(c) > checkpoint_step(last):
            log(f"--resume: {c.name} was cut off while saving (no {STATE_FILE}): removed")
            shutil.rmtree(c)
    return last


def checkpoint_at(run_dir: Path, step: int | None, what: str) -> Path:
    """The run's checkpoint of `step` (None: its last); a ConfigError that names the saved steps
    (`what` says which command asked) when the run has no such checkpoint."""
    ckpts = checkpoints(run_dir)
    if not ckpts:
        raise ConfigError(f"{what}: {run_dir}: no checkpoint under checkpoints/")
    if step is None:
        return ckpts[-1]
    found = [c for c in ckpts if checkpoint_step(c) == step]
    if not found:
        saved = ", ".join(str(checkpoint_step(c)) for c in ckpts)
        raise ConfigError(f"{what}: {run_dir}: no checkpoint of step {step} (saved: {saved})")
    return found[0]


def _clean(value):
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


class MetricsFile:
    """Appends one JSON object per logged step; on resume drops lines past the checkpoint.

    Only the main process touches the file; the other ranks of a launched run write to /dev/null."""

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = path
        self.rows: list[dict] = []  # what the file holds, for detectors
        if not is_main():
            self._f = open(os.devnull, "w")
            return
        if resume_step is not None and path.exists():
            keep = []
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # a line cut by the crash
                if row.get("step", 0) <= resume_step:
                    keep.append(line)
            path.write_text("".join(k + "\n" for k in keep))
            self.rows = [json.loads(k) for k in keep]
        self._f = open(path, "a")

    def write(self, step: int, metrics: dict) -> None:
        row = {
            "step": step,
            "time": round(time.time(), 3),
            **{k: _clean(v) for k, v in metrics.items()},
        }
        self._f.write(json.dumps(row) + "\n")
        self._f.flush()
        self.rows.append(row)

    def close(self) -> None:
        self._f.close()


def append_event(run_dir: Path, event: dict) -> None:
    if not is_main():  # every rank steers and sees the same alarms; one writes them
        return
    with open(run_dir / "events.jsonl", "a") as f:
        f.write(json.dumps(event) + "\n")


def rolled_back(run_dir: Path) -> bool:
    """Whether this run has already rolled back (once per run, also across --resume)."""
    return any(e.get("event") == "rollback" for e in read_events(run_dir))


def rollback(run_dir: Path, alarm_step: int) -> Path | None:
    """The last checkpoint saved before `alarm_step` (None: the initial policy); later checkpoints
    are deleted, later metrics lines move to `metrics.rolled_back.jsonl` and later samples to
    `samples/rolled_back/`, so the run's main record stays one line per step."""
    ckpts = checkpoints(run_dir)
    before = [c for c in ckpts if checkpoint_step(c) < alarm_step]
    target = before[-1] if before else None
    step = checkpoint_step(target)
    for c in ckpts:
        if checkpoint_step(c) > step:
            shutil.rmtree(c)
    rows = read_metrics(run_dir)
    with open(run_dir / "metrics.rolled_back.jsonl", "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows if r.get("step", 0) > step)
    moved = run_dir / "samples" / "rolled_back"
    moved.mkdir(parents=True, exist_ok=True)
    for at, path in sample_files(run_dir).items():
        if at > step:
            path.rename(moved / path.name)
    move_rolled_back(run_dir, step)  # weights kept for the evals after training
    return target
