"""Two arms of a benchmark at once: the same script re-run as `--one ARM`, one thread each.

Started together, both arms see the same load on a shared machine, so their ratio is fair even
when the machine is busy. Each arm prints its result as one JSON object on its last line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def side_by_side(
    script: str, config: str, steps: int, arms: tuple[str, str], out: str, overrides: list[str]
) -> list[dict]:
    """The arms' results, in the order of `arms`."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    common = ["--config", config, "--steps", str(steps), "--out", out, *overrides]
    procs = [
        subprocess.Popen(
            [sys.executable, script, "--one", arm, *common],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for arm in arms
    ]
    return [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
