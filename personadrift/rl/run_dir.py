"""The run directory: creation, `config.yaml` first, `metrics.jsonl` written line by line.

runs/<name>-<timestamp>/  config.yaml · metrics.jsonl · samples/step_<n>.jsonl · directions/
                          checkpoints/checkpoint-<n>/ · tb/ · events.jsonl · DONE
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from transformers import TrainerCallback

from personadrift.config import Config, to_yaml
from personadrift.rl.distributed import is_main, on_main

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


def checkpoint_step(ckpt: Path | None) -> int:
    """The trainer step of a `checkpoint-<step>` folder (0 for None: the initial policy)."""
    return int(ckpt.name.split("-")[1]) if ckpt else 0


def checkpoints(run_dir: Path) -> list[Path]:
    """The run's checkpoint folders, oldest step first."""
    return sorted((run_dir / "checkpoints").glob("checkpoint-*"), key=checkpoint_step)


def last_checkpoint(run_dir: Path) -> Path | None:
    ckpts = checkpoints(run_dir)
    return ckpts[-1] if ckpts else None


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


class MetricsWriter(TrainerCallback):
    """TRL's logs (and everything pushed into them) -> metrics.jsonl, one flushed line per step."""

    SUMMARY_KEYS = ("train_runtime", "train_samples_per_second")

    CONSOLE = (("reward", "reward"), ("env/hack_rate", "hack"), ("env/solve_rate", "solve"),
               ("entropy", "entropy"), ("step_time", "s/step"))  # fmt: skip

    def __init__(self, metrics: MetricsFile, log=print) -> None:
        self.metrics = metrics
        self.log = log

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or any(k in logs for k in self.SUMMARY_KEYS) or args.process_index != 0:
            return
        self.metrics.write(state.global_step, logs)
        parts = [
            f"{name} {logs[k]:.3f}"
            for k, name in self.CONSOLE
            if isinstance(logs.get(k), (int, float))
        ]
        self.log(f"step {state.global_step:4d} " + "  ".join(parts))


def append_event(run_dir: Path, event: dict) -> None:
    if not is_main():  # every rank steers and sees the same alarms; one writes them
        return
    with open(run_dir / "events.jsonl", "a") as f:
        f.write(json.dumps(event) + "\n")
