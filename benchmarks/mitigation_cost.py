"""What a training-forward mitigation costs: the same short GRPO run unmitigated and mitigated
from step 0, side by side.

    python benchmarks/mitigation_cost.py [--mode ablate|preventative|inoculate_advantage]
                                         [--steps 20] [key=value ...]

The hackable config (`visible_tests`) twice, in two processes with one thread each started
together (so both see the same load on a shared machine), evals off: once as shipped with its
detector off, once with `steer.mode=<mode>` on from step 0 at the shipped `<mode>_on_alarm`
config's layers and coefficient, or (`inoculate_advantage`) with the shipped
`inoculate_advantage_on_alarm` config's inoculation prompt and advantage shift on from step 0 (the
alarm-triggered arm pays the same per step once the alarm has fired, nothing before, plus the one
step its rollback repeats). Prints each run's mean wall time per step (start-up excluded), TRL's
`step_time`, and their ratio; last, one JSON object.
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

NO_DETECTOR = ["detect.rule=''", "detect.action=none", "detect.calibration=''"]


def run(config: str, steps: int, arm: str, out: str, extra: list[str]) -> dict:
    mitigated = [] if arm == "off" else _mitigation(arm)
    overrides = [
        f"grpo.max_steps={steps}",
        "run_evals.every=-1",
        f"out_dir={out}",
        f"name=cost-{arm}",
        "checkpoints.every=1000",
        "grpo.report_to=[]",
        *NO_DETECTOR,
        *mitigated,
        *extra,
    ]
    cfg = load_config(config, overrides)
    t0 = time.time()
    run_dir = train(cfg, log=lambda *_: None)
    wall = time.time() - t0
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in rows if "step_time" in r]
    per_step = (logged[-1]["time"] - logged[0]["time"]) / (len(logged) - 1)
    step_time = statistics.fmean(r["step_time"] for r in logged)
    return {"arm": arm, "wall_s": wall, "per_step": per_step, "step_time": step_time}


def _mitigation(mode: str) -> list[str]:
    """The shipped `<mode>_on_alarm` steering (or mitigation), switched on from step 0."""
    if mode == "inoculate_advantage":
        shipped = load_config(f"{mode}_on_alarm", NO_DETECTOR).mitigate
        return [
            f"mitigate.name={shipped.name}",
            "mitigate.start=step0",
            f"mitigate.coeff={shipped.coeff}",
        ]
    shipped = load_config(f"{mode}_on_alarm", [*NO_DETECTOR, "steer.start=step0"]).steer
    layers = ",".join(map(str, shipped.layers))
    return [
        f"steer.mode={shipped.mode}",
        "steer.start=step0",
        f"steer.layers=[{layers}]",
        f"steer.coeff={shipped.coeff}",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="visible_tests")
    ap.add_argument(
        "--mode", default="ablate", choices=("ablate", "preventative", "inoculate_advantage")
    )
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args()
    if a.one:  # one of the two processes: its result as the last line
        print(json.dumps(run(a.config, a.steps, a.one, a.out, a.overrides)))
        return
    with tempfile.TemporaryDirectory() as out:
        run(a.config, 2, "off", out, a.overrides)  # warm-up: organism cache, imports, sandbox
        off, on = side_by_side(__file__, a.config, a.steps, ("off", a.mode), out, a.overrides)
    for r in (off, on):
        print(
            f"{r['arm']:13s} {r['per_step']:.3f} s/step wall (TRL step_time "
            f"{r['step_time']:.3f}), run {r['wall_s']:.1f} s"
        )
    ratio = on["per_step"] / off["per_step"]
    print(f"ratio of mean step times ({a.mode}/unmitigated): {ratio:.3f}")
    print(json.dumps({"mode": a.mode, "steps": a.steps, "off": off, "on": on, "ratio": ratio}))


if __name__ == "__main__":
    main()
