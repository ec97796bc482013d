"""Demo overhead: the hackable arm with and without its instruments, for the same steps.

    python benchmarks/demo_overhead.py [--config visible_tests] [--steps 20] [key=value ...]

Runs the same GRPO config twice, side by side (two processes, one thread each, started together,
so that both see the same load on a shared machine): bare (no probes,
no evals, no detector) and as configured (probe readings every `probes.every` steps, the rollouts'
projections at every step, the alarm; the evals of every `run_evals.every` steps as the config
says: inside the run, or with `run_evals.during: false`, as the demo's configs do, from the
weights kept at those steps, after training). Prints the wall time of each run (start-up
included: loading the organism, the step-0 readings; the persona direction is extracted once
before both, as the demo extracts it once per seed for its arms), the evals after
training apart, and the ratios: the run itself (the target) and the run with its evals after.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from side_by_side import side_by_side

from personadrift.config import load_config
from personadrift.rl.train import train


def run(config: str, steps: int, instrumented: bool, out: str, extra: list[str]) -> dict:
    bare = (
        []
        if instrumented
        else [
            "probes.enabled=false",
            "run_evals.every=-1",
            "detect.rule=''",
            "detect.calibration=''",
            "detect.action=none",
        ]
    )
    cfg = load_config(
        config,
        [
            f"grpo.max_steps={steps}",
            f"out_dir={out}",
            "grpo.report_to=[]",
            "checkpoints.every=1000",
            *bare,
            *extra,
        ],
    )
    t0 = time.time()
    run_dir = train(cfg, log=lambda *_: None)
    wall = time.time() - t0
    after = json.loads((run_dir / "DONE").read_text()).get("evals_after_seconds", 0.0)
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    reads = sum(r[k] for r in rows for k in r if k.endswith("/read_seconds"))
    evals = sum(1 for r in rows if "evals/mean/misaligned_rate" in r)
    return {"wall_s": wall - after, "after_s": after, "read_s": reads, "evals": evals}


def direction(config: str, out: str, overrides: list[str]) -> Path:
    from personadrift.rl import setup

    cfg = load_config(config, [*overrides, f"out_dir={out}"])
    model, tok, world = setup.load_policy(cfg)
    d = setup.build_direction(cfg, model, tok, world, Path(out) / "directions", lambda *_: None)
    return Path(out) / "directions" / f"{d.name}.json"


def both(config: str, steps: int, overrides: list[str]) -> list[dict]:
    """(bare, instrumented): both runs at once, each in its own one-thread process."""
    with tempfile.TemporaryDirectory() as out:
        run(config, 1, False, out, overrides)  # warm-up: organism cache, imports, sandbox
        # as the demo does: the seed's direction extracted once, before the arms start
        t0 = time.time()
        overrides = [*overrides, f"probes.directions={direction(config, out, overrides)}"]
        print(f"direction extracted once, before both runs: {time.time() - t0:.1f} s")
        return side_by_side(__file__, config, steps, ("bare", "instrumented"), out, overrides)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="visible_tests")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--one", choices=("bare", "instrumented"), help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args()
    if a.one:  # one of the two processes: its result as the last line
        print(json.dumps(run(a.config, a.steps, a.one == "instrumented", a.out, a.overrides)))
        return
    bare, full = both(a.config, a.steps, a.overrides)
    print(f"bare (no probes/evals/detector): {bare['wall_s']:.1f} s for {a.steps} steps")
    print(
        f"instrumented:                    {full['wall_s']:.1f} s for {a.steps} steps "
        f"(probe readings {full['read_s']:.1f} s in all)"
    )
    print(f"evals after training:            {full['after_s']:.1f} s ({full['evals']} eval steps)")
    ratio = full["wall_s"] / bare["wall_s"]
    print(f"ratio of wall times (instrumented run / bare): {ratio:.3f}   target <= 1.15")
    with_evals = (full["wall_s"] + full["after_s"]) / bare["wall_s"]
    print(f"ratio with the evals after training:           {with_evals:.3f}")


if __name__ == "__main__":
    main()
