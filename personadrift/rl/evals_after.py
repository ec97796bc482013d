"""The run's evals after training: the weights kept at each eval step, evaluated when the run ends.

With `run_evals.during: false` the instruments do not sample evals inside the run (they cost more
than everything else the instruments do); at each eval step they only keep the policy's weights
(`keep_weights`: one safetensors file, milliseconds for the organism). When training is over,
`evaluate_kept` evaluates every kept step with the same eval settings and the same sampling seed
as an in-run eval, merges the values into that step's line of `metrics.jsonl` (the rolled-back
pass's steps into `metrics.rolled_back.jsonl`) and deletes the weights file. The values are the
ones an in-run eval gives, since the weights are the same and eval sampling has its own seed
(`tests/test_train.py` compares both). A run cut off before this ends with the kept files still
there; `python -m personadrift.rl.evals_after RUN_DIR` evaluates what is left.

A run whose in-run evals read the policy through a steering hook (inference steering, evals
during the run) measured policy + hook, not what it would ship. `evaluate_weights_alone` evaluates
its final weights once more with no hook (same settings and seed) into `weights_alone.json`;
`report/summary.py` gives it as `final_misaligned_weights` next to `hooked: true`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from safetensors.torch import load_model, save_model

from personadrift.probes.capture import unwrap
from personadrift.records.reader import read_events, read_jsonl

WEIGHTS = "eval_weights"  # run_dir/eval_weights/step-<n>.safetensors; rolled_back/ after a rollback
WEIGHTS_ALONE = "weights_alone.json"  # a hooked run's final weights evaluated with no hook


def weights_path(run_dir: Path, step: int) -> Path:
    return run_dir / WEIGHTS / f"step-{step}.safetensors"


def keep_weights(model, run_dir: Path, step: int) -> Path:
    """Save the policy's weights for the eval of `step` after training."""
    path = weights_path(run_dir, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(unwrap(model), str(path))
    return path


def move_rolled_back(run_dir: Path, after_step: int) -> None:
    """A rollback to `after_step`: the later steps' weights belong to the rolled-back pass."""
    moved = run_dir / WEIGHTS / "rolled_back"
    for path in (run_dir / WEIGHTS).glob("step-*.safetensors"):
        if _checkpoint_number(path) > after_step:
            moved.mkdir(parents=True, exist_ok=True)
            path.rename(moved / path.name)


def _checkpoint_number(path: Path) -> int:
    return int(path.stem.split("-")[1])


def merge_into(metrics: Path, step: int, values: dict) -> None:
    """`values` merged into the line of `step` (a line is added if the step has none)."""
    rows = read_jsonl(metrics)
    at = [i for i, r in enumerate(rows) if r.get("step") == step]
    if at:
        rows[at[-1]].update(values)
    else:
        rows.append({"step": step, **values})
        rows.sort(key=lambda r: r.get("step", 0))
    tmp = metrics.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, metrics)


def pending(run_dir: Path) -> list[tuple[Path, Path]]:
    """(weights file, metrics file it belongs to), in step order, the main pass first."""
    out = []
    for folder, metrics in (
        (run_dir / WEIGHTS, run_dir / "metrics.jsonl"),
        (run_dir / WEIGHTS / "rolled_back", run_dir / "metrics.rolled_back.jsonl"),
    ):
        out += [
            (p, metrics) for p in sorted(folder.glob("step-*.safetensors"), key=_checkpoint_number)
        ]
    return out


def evaluate_kept(run_dir: Path, cfg, judge=None, log=print, policy: tuple | None = None) -> float:
    """Evaluate every kept step, merge its values, delete its weights; the seconds it took.

    `policy`: (model, tokenizer, world) to load the kept weights into (the run's own model once
    training is over: one process, no collective); None loads the run's policy afresh."""
    from personadrift.evals.chat import chat_evals
    from personadrift.evals.in_run import in_run_config, run_evals, step_config

    todo = pending(run_dir)
    if not todo:
        return 0.0
    t0 = time.time()
    if policy is None:
        from personadrift.rl import setup

        policy = setup.load_policy(cfg)
    model, tok, world = policy
    eval_cfg = in_run_config(cfg.model_eval, cfg.run_evals)
    chat = chat_evals(cfg, judge)
    log(f"evals after training: {len(todo)} steps")
    for path, metrics in todo:
        load_model(unwrap(model), str(path))
        step_cfg = step_config(eval_cfg, _checkpoint_number(path))
        values, line = run_evals(model, tok, world, step_cfg, chat, log)
        merge_into(metrics, _checkpoint_number(path), values)
        path.unlink()
        log(
            f"step {_checkpoint_number(path):4d} {line}"
            + ("  (rolled back)" if "rolled" in metrics.name else "")
        )
    seconds = time.time() - t0
    log(f"evals after training: {len(todo)} steps in {seconds:.0f}s")
    return seconds


def hooked_evals(run_dir: Path, cfg) -> bool:
    """Whether the run's in-run evals read the policy through a steering hook: inference
    steering (on at evaluation) that acted (from step 0, or switched on by an alarm)."""
    if not cfg.run_evals.during or cfg.run_evals.every < 0:
        return False
    events = read_events(run_dir)
    on_at_eval = any(e.get("event") == "steer" and e.get("on_at_eval") for e in events)
    switched = cfg.steer.start == "step0" or any(
        e.get("event") in ("steer_on", "rollback", "mitigation_on") for e in events
    )
    return on_at_eval and switched


def evaluate_weights_alone(run_dir: Path, cfg, judge, log, policy: tuple, step: int) -> float:
    """A hooked run's final weights (those of `step`) evaluated with no hook
    (`weights_alone.json`); the seconds."""
    from personadrift.evals.chat import chat_evals
    from personadrift.evals.in_run import in_run_config, run_evals, step_config

    if not hooked_evals(run_dir, cfg):
        return 0.0
    t0 = time.time()
    model, tok, world = policy
    eval_cfg = step_config(in_run_config(cfg.model_eval, cfg.run_evals), step)  # the run's own
    values, line = run_evals(model, tok, world, eval_cfg, chat_evals(cfg, judge), log)
    record = {"step": step, "hooked": True, **values}
    (run_dir / WEIGHTS_ALONE).write_text(json.dumps(record, indent=1))
    log(f"weights alone (no hook), step {step}: {line}")
    return time.time() - t0


def evals_after_training(run_dir: Path, cfg, judge, log, policy: tuple, step: int) -> float:
    """The kept steps' evals, then a hooked run's final weights (step `step`) alone; seconds."""
    seconds = evaluate_kept(run_dir, cfg, judge, log, policy)
    seconds += evaluate_weights_alone(run_dir, cfg, judge, log, policy, step)
    return seconds


def main() -> None:
    from personadrift.checks import ready_judge
    from personadrift.config import load_config

    ap = argparse.ArgumentParser(description="Evaluate the weights a run kept for its evals.")
    ap.add_argument("run_dir")
    run_dir = Path(ap.parse_args().run_dir)
    cfg = load_config(run_dir / "config.yaml")
    evaluate_kept(run_dir, cfg, ready_judge(cfg, print))


if __name__ == "__main__":
    main()
