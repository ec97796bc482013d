"""The job runner the experiments share: a seed's organism and direction made once, then
`personadrift train` runs in subprocesses, `parallel` at a time, one thread each, their console
lines streamed with a prefix (`[hackable s0] ...`) and kept in a log file per run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from personadrift.config import find_config, load_config


def prepare_seed(config: str, seed: int, out: Path, overrides: list[str], log) -> Path:
    """Build or load the seed's organism of `config`, extract its persona direction; the
    direction's path."""
    from personadrift.rl import setup

    cfg = load_config(config, [*overrides, f"seed={seed}", f"organism.seed={seed}"])
    t0 = time.time()
    model, tok, world = setup.load_policy(cfg)
    log(f"[seed {seed}] organism ready ({time.time() - t0:.0f}s)")
    t0 = time.time()
    direction = setup.build_direction(cfg, model, tok, world, out / "directions", log)
    log(f"[seed {seed}] direction extracted ({time.time() - t0:.0f}s)")
    return out / "directions" / f"{direction.name}.json"


def _stream(proc: subprocess.Popen, prefix: str, log, sink) -> None:
    for line in proc.stdout:
        sink.write(line)
        line = line.rstrip()
        keep = ("step", "ALARM", "ROLLBACK", "done", "run ", "steering", "Error", "error")
        if line and any(k in line for k in keep) and "Warning" not in line:
            log(f"{prefix} {line}")


def train_command(config: str, overrides: list[str]) -> list[str]:
    """`personadrift train <shipped config> <overrides>` in this interpreter, for `run_jobs`."""
    return [sys.executable, "-m", "personadrift", "train", str(find_config(config)), *overrides]


def run_jobs(jobs: list[tuple[str, list[str], Path]], log, parallel: int) -> dict[str, int]:
    """Run (label, command, log file) jobs, `parallel` at a time, 1 thread each; exit codes."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    pending, running, codes = list(jobs), [], {}
    while pending or running:
        while pending and len(running) < parallel:
            label, cmd, log_path = pending.pop(0)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            sink = open(log_path, "a")
            proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
            )
            t = threading.Thread(target=_stream, args=(proc, f"[{label}]", log, sink))
            t.start()
            running.append((label, proc, t, sink, time.time()))
            log(f"[{label}] started: {' '.join(cmd[2:])}")
        for job in list(running):
            label, proc, t, sink, t0 = job
            if proc.poll() is None:
                continue
            t.join()
            sink.close()
            running.remove(job)
            codes[label] = proc.returncode
            status = "finished" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
            log(f"[{label}] {status} in {time.time() - t0:.0f}s; log: {sink.name}")
        time.sleep(0.5)
    return codes
