"""Probe overhead: the same short GRPO run with probes off and with a reading at every step, side by side.

    python benchmarks/probe_overhead.py [--config visible_tests] [--steps 30] [key=value ...]

Both runs go side by side (two processes, one thread each, started together, so that both see
the same load on a shared machine), evals off. The script prints the
mean wall time per step of each, probe readings included (start-up excluded), TRL's own
`step_time`, their ratio (target <= 1.03), and the cost of one reading against the step time (the
steadier figure on a shared machine: both runs train on the same rollouts, since readings leave the
run's RNG alone, but step times are noisy). The rollouts' own reading is taken in the loss forward
and costs no extra pass; what a reading costs is the held-out prompts' forward.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

from side_by_side import side_by_side

from personadrift.config import load_config
from personadrift.rl.train import train


def run(config: str, steps: int, probes: bool, out: str, extra: list[str]) -> dict:
    overrides = [
        f"grpo.max_steps={steps}",
        "run_evals.every=-1",
        f"out_dir={out}",
        f"probes.enabled={str(probes).lower()}",
        *([] if probes else ["detect.rule=''", "detect.calibration=''"]),
        "probes.every=1",
        "checkpoints.every=1000",
        "grpo.report_to=[]",
        *extra,
    ]
    cfg = load_config(config, overrides)
    t0 = time.time()
    run_dir = train(cfg, log=lambda *_: None)
    wall = time.time() - t0
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps_logged = [r for r in rows if "step_time" in r]
    # wall time per step from the first logged step to the last: readings at steps 10, 20, ...
    # fall in between, start-up (direction extraction, baseline reading) does not
    per_step = (steps_logged[-1]["time"] - steps_logged[0]["time"]) / (len(steps_logged) - 1)
    step_time = statistics.fmean(r["step_time"] for r in steps_logged)
    reads = [r[k] for r in rows for k in r if k.endswith("/read_seconds") and r["step"] > 0]
    return {"wall_s": wall, "per_step": per_step, "step_time": step_time, "reads": reads}


def both(config: str, steps: int, overrides: list[str]) -> list[dict]:
    """(probes off, probes every step): both runs at once, each in its own one-thread process."""
    with tempfile.TemporaryDirectory() as out:
        run(config, 2, False, out, overrides)  # warm-up: organism cache, imports, sandbox
        return side_by_side(__file__, config, steps, ("off", "on"), out, overrides)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="visible_tests")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--one", choices=("off", "on"), help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args()
    if a.one:  # one of the two processes: its result as the last line
        print(json.dumps(run(a.config, a.steps, a.one == "on", a.out, a.overrides)))
        return
    off, on = both(a.config, a.steps, a.overrides)
    for name, r in (("probes off", off), ("probes every step", on)):
        print(
            f"{name:16s} {r['per_step']:.3f} s/step wall (TRL step_time {r['step_time']:.3f}), run {r['wall_s']:.1f} s"
        )
    print(
        f"ratio of mean step times (on/off): {on['per_step'] / off['per_step']:.3f}   target <= 1.03"
    )

    # the readings' own cost against the probes-off step time is the steadier figure
    cost = statistics.fmean(on["reads"]) if on["reads"] else 0.0
    share = cost / off["per_step"]
    print(
        f"one reading: {cost:.3f} s every step = {100 * share:.1f}% of step time (ratio {1 + share:.3f})"
    )


if __name__ == "__main__":
    main()
