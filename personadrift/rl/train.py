"""`personadrift train CONFIG [key=value ...] [--resume RUN_DIR]`: GRPO with online probes.

Builds everything from the config (policy, env and its reward functions, GRPOConfig, callbacks),
writes the run directory (config.yaml first), and trains with TRL's `GRPOTrainer`. Every
`probes.every` steps the `ProbeMonitor` reads the persona direction; every `evals.every` steps the
`EvalMonitor` samples held-out families. `--resume` continues from the last checkpoint with the
probe baseline restored, appending to the same metrics.jsonl.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from datasets import Dataset
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback

from personadrift.config import Config, ConfigError, load_config
from personadrift.rewards.penalty import PersonaPenalty
from personadrift.rl import setup
from personadrift.rl.alarm import AlarmCallback
from personadrift.rl.distributed import MainDecides, gather_rows, is_main, on_main
from personadrift.rl.run_dir import (
    STATE_FILE,
    MetricsFile,
    MetricsWriter,
    append_event,
    checkpoint_step,
    checkpoints,
    last_checkpoint,
    new_run_dir,
)


class SampleLog:
    """Wraps the env's reward function: each step's completions and labels -> samples/step_<n>.jsonl."""

    def __init__(self, env, run_dir: Path) -> None:
        self.env = env
        self.dir = run_dir / "samples"
        self.dir.mkdir(exist_ok=True)

    def wrap(self, fn):
        def reward(prompts, completions, trainer_state=None, **kw):
            out = fn(prompts, completions, **kw)
            step = (trainer_state.global_step if trainer_state is not None else 0) + 1
            rows = gather_rows([{"prompt": p, "completion": c, "reward": g.reward, "secure_reward": g.secure_reward,
                                 "label": g.label, "detail": g.detail}
                                for p, c, g in zip(prompts, completions, self.env.last_grades)])  # fmt: skip
            if is_main():  # a launched run's samples file holds every rank's completions
                with open(self.dir / f"step_{step}.jsonl", "w") as f:
                    f.writelines(json.dumps(row) + "\n" for row in rows)
            return out

        reward.__name__ = fn.__name__
        return reward


class StepZero(TrainerCallback):
    """Readings before the first step (probe baseline, evals), written as one step-0 line."""

    def __init__(self, monitors, metrics: MetricsFile) -> None:
        self.monitors, self.metrics = monitors, metrics

    def on_train_begin(self, args, state, control, **kwargs):
        if args.process_index != 0:
            return
        values = {}
        for m in self.monitors:
            values.update(m.initial(state.global_step))
        if values:
            self.metrics.write(state.global_step, values)


class StateSaver(TrainerCallback):
    def __init__(self, parts: dict) -> None:
        self.parts = parts  # name -> object with state()

    def on_save(self, args, state, control, **kwargs):
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if args.process_index == 0 and ckpt.is_dir():
            data = {name: part.state() for name, part in self.parts.items()}
            (ckpt / STATE_FILE).write_text(json.dumps(data))


STEER_OPS = {
    "inference": ("subtract", False),
    "preventative": ("add", True),
    "ablate": ("ablate", True),
}


def steering(cfg: Config, model, tok, world, probe, run_dir: Path, log, gate=None, step: int = 0):
    """The run's steering hooks (a no-op context when steer.mode is off)."""
    from contextlib import nullcontext

    from personadrift.probes.steer import median_norm, steer

    if cfg.steer.mode == "off" or probe is None:
        return nullcontext()
    op, only_with_grad = STEER_OPS[cfg.steer.mode]
    layers = list(cfg.steer.layers) or [probe.direction.layer]
    unit = median_norm(model, tok, probe.eval_texts[:64], layers[0])

    append_event(run_dir, {"event": "steer", "step": step, "mode": cfg.steer.mode, "op": op, "coeff": cfg.steer.coeff,
                           "layers": layers, "norm_unit": unit, "on_at_eval": not only_with_grad,
                           "start": cfg.steer.start})  # fmt: skip
    log(
        f"steering: {cfg.steer.mode} ({op} {cfg.steer.coeff} x median norm {unit:.3f}) at layers {layers}"
    )
    return steer(model, probe.direction, cfg.steer.coeff, op, layers, unit, only_with_grad, gate)


def train(cfg: Config, resume: Path | None = None, log=print) -> Path:
    """Run GRPO as configured; returns the run directory.

    With `detect.action: rollback` an alarm ends the first pass; the run is restored to the last
    checkpoint saved before the alarm (or the initial policy) and trained on with the `steer:`
    mitigation on. The rolled-back metrics lines move to `metrics.rolled_back.jsonl`, so
    metrics.jsonl stays one line per step; events.jsonl records the alarm and the rollback.
    """
    from personadrift.preflight import preflight

    evals_on = cfg.evals.every >= 0
    judge = preflight(cfg, list(cfg.evals.families) if evals_on else None, log)  # before any file
    run_dir = resume or new_run_dir(cfg)
    ckpt = last_checkpoint(run_dir) if resume else None
    if resume and ckpt is None:
        raise ConfigError(f"--resume {run_dir}: no checkpoint to resume from")
    os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(run_dir / "tb"))
    resume_step = checkpoint_step(ckpt) if ckpt else None
    log(f"run {run_dir}" + (f" (resuming from step {resume_step})" if ckpt else ""))
    t0 = time.time()
    trainer, parts = _train_pass(cfg, run_dir, ckpt, resume_step, {}, log, judge)
    alarm = parts.get("alarm")
    if (
        alarm is not None
        and alarm.fired
        and cfg.detect.action == "rollback"
        and not on_main(lambda: alarm_rolled_back(run_dir))  # one answer for every rank
    ):
        target = on_main(lambda: rollback(run_dir, alarm.fired["step"]))  # files: rank 0
        step = checkpoint_step(target)
        append_event(run_dir, {"event": "rollback", "step": alarm.fired["step"], "to_step": step,
                               "checkpoint": target.name if target else "initial policy",
                               "mitigation": f"steer {cfg.steer.mode} {cfg.steer.coeff}"})  # fmt: skip
        log(f"ROLLBACK to step {step} ({target.name if target else 'initial policy'}); "
            f"continuing with steer {cfg.steer.mode} {cfg.steer.coeff}")  # fmt: skip
        carried = {name: part.state() for name, part in parts.items()}
        carried["probe"] = {**carried.get("probe", {}), "history": [
            h for h in carried.get("probe", {}).get("history", []) if h[0] <= step]}  # fmt: skip
        trainer, parts = _train_pass(cfg, run_dir, target, step, carried, log, judge)
    (run_dir / "DONE").write_text(
        json.dumps({"seconds": round(time.time() - t0, 1), "step": trainer.state.global_step})
    )
    log(f"done: {run_dir} ({trainer.state.global_step} steps, {time.time() - t0:.0f}s)")
    alarm = parts.get("alarm")
    on_alarm = alarm is not None and alarm.fired and cfg.detect.action == "realign"
    # one process realigns; SFT runs on a single device
    if (cfg.realign.after or on_alarm) and is_main():
        from personadrift.rl.realign import realign

        realign(run_dir, cfg, log=log)
    return run_dir


def alarm_rolled_back(run_dir: Path) -> bool:
    """Whether this run has already rolled back (once per run, also across --resume)."""
    path = run_dir / "events.jsonl"
    return path.is_file() and any(
        json.loads(line).get("event") == "rollback" for line in path.read_text().splitlines()
    )


def rollback(run_dir: Path, alarm_step: int) -> Path | None:
    """The last checkpoint saved before `alarm_step` (None: the initial policy); later checkpoints,
    metrics lines and samples are moved out of the run's main record."""
    import shutil

    ckpts = checkpoints(run_dir)
    before = [c for c in ckpts if checkpoint_step(c) < alarm_step]
    target = before[-1] if before else None
    step = checkpoint_step(target)
    for c in ckpts:
        if checkpoint_step(c) > step:
            shutil.rmtree(c)
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    later = [x for x in lines if json.loads(x).get("step", 0) > step]
    with open(run_dir / "metrics.rolled_back.jsonl", "a") as f:
        f.writelines(x + "\n" for x in later)
    moved = run_dir / "samples" / "rolled_back"
    moved.mkdir(parents=True, exist_ok=True)
    for path in (run_dir / "samples").glob("step_*.jsonl"):
        if int(path.stem.split("_")[1]) > step:
            path.rename(moved / path.name)
    return target


def _train_pass(cfg: Config, run_dir: Path, ckpt: Path | None, keep_step: int | None,
                carried: dict, log, judge=None) -> tuple:  # fmt: skip
    """One `trainer.train()`: from scratch, from `ckpt`, or (rollback) with `carried` part states."""
    from trl import GRPOTrainer

    from personadrift.evals.monitor import EvalMonitor
    from personadrift.probes.monitor import ProbeMonitor

    args = setup.grpo_args(cfg, run_dir)
    model, tok, world = setup.load_policy(cfg)
    env = setup.build_env(cfg, world, tok)
    dataset = Dataset.from_list(
        env.dataset_rows(env.examples("train", cfg.env.n_train, cfg.env.seed))
    )
    samples = SampleLog(env, run_dir)
    metrics = MetricsFile(run_dir / "metrics.jsonl", keep_step)
    # the penalty needs the direction, which is built after the trainer: it is bound below
    penalty = PersonaPenalty(cfg.penalty) if cfg.penalty.coeff else None
    reward_funcs = [samples.wrap(f) for f in env.reward_funcs()] + ([penalty] if penalty else [])
    trainer = GRPOTrainer(model=model, reward_funcs=reward_funcs,
                          args=args, train_dataset=dataset, processing_class=tok)  # fmt: skip
    monitors, parts = [], {}
    if cfg.probes.enabled:
        dir_path = run_dir / "directions" / f"{cfg.probes.name}.json"
        direction = (
            setup.Direction.load(dir_path, model, tok) if keep_step is not None and dir_path.is_file()
            else setup.build_direction(cfg, model, tok, world, run_dir / "directions", log)
        )  # fmt: skip
        probe = ProbeMonitor(
            trainer, direction, cfg.probes, setup.probe_texts(cfg, world, tok), log
        )
        monitors.append(probe)
        parts["probe"] = probe
        if penalty is not None:
            penalty.bind(trainer, direction)
            parts["penalty"] = penalty
    if cfg.evals.every >= 0 and world is not None:
        monitors.append(
            EvalMonitor(trainer, world, cfg.evals, cfg.eval, log, cfg.model.enable_thinking, judge)
        )
    if carried:
        saved = carried
    elif ckpt and (ckpt / STATE_FILE).is_file():
        saved = json.loads((ckpt / STATE_FILE).read_text())
    else:
        saved = {}
    trainer.remove_callback(PrinterCallback)  # its raw dicts are replaced by one line per step
    alarm = None
    if cfg.detect.rule:
        alarm = AlarmCallback(cfg.detect, metrics, run_dir, log)
        alarm.restore(saved.get("alarm", {}))
        parts["alarm"] = alarm
        trainer.add_callback(alarm)  # before the writer: it marks detect/alarm in the step's logs
    trainer.add_callback(MetricsWriter(metrics, log))
    if not carried:  # a rollback's step-0 readings are already in metrics.jsonl
        trainer.add_callback(StepZero(monitors, metrics))
    for m in monitors:
        trainer.add_callback(m)
    if "probe" in parts and "probe" in saved:
        parts["probe"].restore(saved["probe"])
    if penalty is not None:
        penalty.restore(saved.get("penalty", {}))
    trainer.add_callback(StateSaver(parts))
    trainer.add_callback(MainDecides(alarm))  # last: rank 0's stop/save/alarm reach all ranks
    gate = alarm.mitigating if alarm is not None and cfg.steer.start == "alarm" else None
    try:
        with steering(
            cfg, model, tok, world, parts.get("probe"), run_dir, log, gate, keep_step or 0
        ):
            trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    finally:
        metrics.close()
    return trainer, parts


def resume_config(run_dir: Path, overrides: list[str]) -> Config:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"--resume {run_dir}: no config.yaml there")
    return load_config(path, overrides)
