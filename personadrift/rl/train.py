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
from personadrift.rl import setup
from personadrift.rl.alarm import AlarmCallback
from personadrift.rl.run_dir import (
    STATE_FILE,
    MetricsFile,
    MetricsWriter,
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
            with open(self.dir / f"step_{step}.jsonl", "w") as f:
                for p, c, g in zip(prompts, completions, self.env.last_grades):
                    row = {"prompt": p, "completion": c, "reward": g.reward, "secure_reward": g.secure_reward,
                           "label": g.label, "detail": g.detail}  # fmt: skip
                    f.write(json.dumps(row) + "\n")
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


def steering(cfg: Config, model, tok, world, probe, run_dir: Path, log):
    """The run's steering hooks (a no-op context when steer.mode is off)."""
    from contextlib import nullcontext

    from personadrift.probes.steer import median_norm, steer

    if cfg.steer.mode == "off" or probe is None:
        return nullcontext()
    op, only_with_grad = STEER_OPS[cfg.steer.mode]
    layers = list(cfg.steer.layers) or [probe.direction.layer]
    unit = median_norm(model, tok, probe.eval_texts[:64], layers[0])
    from personadrift.rl.run_dir import append_event

    append_event(run_dir, {"event": "steer", "step": 0, "mode": cfg.steer.mode, "op": op, "coeff": cfg.steer.coeff,
                           "layers": layers, "norm_unit": unit, "on_at_eval": not only_with_grad})  # fmt: skip
    log(
        f"steering: {cfg.steer.mode} ({op} {cfg.steer.coeff} x median norm {unit:.3f}) at layers {layers}"
    )
    return steer(model, probe.direction, cfg.steer.coeff, op, layers, unit, only_with_grad)


def train(cfg: Config, resume: Path | None = None, log=print) -> Path:
    """Run GRPO as configured; returns the run directory."""
    from trl import GRPOTrainer

    from personadrift.evals.monitor import EvalMonitor
    from personadrift.probes.monitor import ProbeMonitor

    run_dir = resume or new_run_dir(cfg)
    ckpt = last_checkpoint(run_dir) if resume else None
    if resume and ckpt is None:
        raise ConfigError(f"--resume {run_dir}: no checkpoint to resume from")
    resume_step = int(ckpt.name.split("-")[1]) if ckpt else None
    args = setup.grpo_args(cfg, run_dir)
    os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(run_dir / "tb"))
    log(f"run {run_dir}" + (f" (resuming from step {resume_step})" if ckpt else ""))

    model, tok, world = setup.load_policy(cfg)
    env = setup.build_env(cfg, world, tok)
    dataset = Dataset.from_list(
        env.dataset_rows(env.examples("train", cfg.env.n_train, cfg.env.seed))
    )
    samples = SampleLog(env, run_dir)
    metrics = MetricsFile(run_dir / "metrics.jsonl", resume_step)
    trainer = GRPOTrainer(model=model, reward_funcs=[samples.wrap(f) for f in env.reward_funcs()],
                          args=args, train_dataset=dataset, processing_class=tok)  # fmt: skip
    monitors, parts = [], {}
    if cfg.probes.enabled:
        dir_path = run_dir / "directions" / f"{cfg.probes.name}.json"
        direction = (
            setup.Direction.load(dir_path, model, tok) if ckpt and dir_path.is_file()
            else setup.build_direction(cfg, model, tok, world, run_dir / "directions", log)
        )  # fmt: skip
        probe = ProbeMonitor(
            trainer, direction, cfg.probes, setup.probe_texts(cfg, world, tok), log
        )
        monitors.append(probe)
        parts["probe"] = probe
    if cfg.evals.every >= 0 and world is not None:
        monitors.append(EvalMonitor(trainer, world, cfg.evals, cfg.eval, log))
    if ckpt and (ckpt / STATE_FILE).is_file():
        saved = json.loads((ckpt / STATE_FILE).read_text())
    else:
        saved = {}
    trainer.remove_callback(PrinterCallback)  # its raw dicts are replaced by one line per step
    if cfg.detect.rule:
        alarm = AlarmCallback(cfg.detect, metrics, run_dir, log)
        alarm.restore(saved.get("alarm", {}))
        parts["alarm"] = alarm
        trainer.add_callback(alarm)  # before the writer: it marks detect/alarm in the step's logs
    trainer.add_callback(MetricsWriter(metrics, log))
    trainer.add_callback(StepZero(monitors, metrics))
    for m in monitors:
        trainer.add_callback(m)
    if "probe" in parts and "probe" in saved:
        parts["probe"].restore(saved["probe"])
    trainer.add_callback(StateSaver(parts))
    t0 = time.time()
    try:
        with steering(cfg, model, tok, world, parts.get("probe"), run_dir, log):
            trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    finally:
        metrics.close()
    (run_dir / "DONE").write_text(
        json.dumps({"seconds": round(time.time() - t0, 1), "step": trainer.state.global_step})
    )
    log(f"done: {run_dir} ({trainer.state.global_step} steps, {time.time() - t0:.0f}s)")
    return run_dir


def resume_config(run_dir: Path, overrides: list[str]) -> Config:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"--resume {run_dir}: no config.yaml there")
    return load_config(path, overrides)
