"""`personadrift train CONFIG [key=value ...] [--resume RUN_DIR]`: GRPO with online probes.

How one run goes (the files a reader follows: cli.py -> rl/train.py -> rl/setup.py for the pieces
-> TRL's GRPOTrainer for the step -> rl/instruments.py after it -> probes/reading.py ->
probes/capture.py):
1. `train` makes the run directory (config.yaml first) and runs one `train_pass`, or two when an
   alarm asks for a rollback;
2. `train_pass` builds the policy, the env and its reward functions (wrapped by `SampleLog`, which
   writes each step's rollouts), TRL's `GRPOConfig`, the persona direction and the `Instruments`
   callback, and trains with `ProbedGRPOTrainer`: TRL's `GRPOTrainer` whose loss forward also hands the
   rollouts' activations to the rollout probe (`compute_loss`);
3. after every optimizer step, `Instruments.on_log` reads the probes, runs the evals and the
   detector, acts on an alarm and writes the metrics line.
`--resume` continues from the last checkpoint with the probe baseline restored, appending to the
same metrics.jsonl.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from contextlib import nullcontext
from pathlib import Path

from datasets import Dataset
from transformers.trainer_callback import PrinterCallback
from trl import GRPOTrainer

from personadrift.alarms.actions import SHAPING, action_of
from personadrift.alarms.monitors import Monitors, is_monitor, monitor_layer
from personadrift.checks import check, ready_judge
from personadrift.config import Config, ConfigError, load_config
from personadrift.evals.chat import chat_evals
from personadrift.evals.in_run import in_run_config
from personadrift.interventions.mitigate import AdvantageShaping
from personadrift.interventions.penalty import PersonaPenalty
from personadrift.interventions.steer import median_norm, steer
from personadrift.organism.digests import read_organism
from personadrift.probes.capture import unwrap
from personadrift.probes.direction import Direction
from personadrift.probes.reading import HeldOutProbe, RolloutProbe
from personadrift.records.reader import checkpoint_step
from personadrift.rewards.sandbox_report import require_isolation
from personadrift.rl import setup
from personadrift.rl.distributed import gather_rows, is_main, on_main
from personadrift.rl.evals_after import evals_after_training
from personadrift.rl.instruments import Instruments, Schedule
from personadrift.rl.run_dir import (
    STATE_FILE,
    MetricsFile,
    append_event,
    last_complete_checkpoint,
    new_run_dir,
    rollback,
    rolled_back,
    write_direction,
    write_organism,
)


class SampleLog:
    """Wraps the env's reward function: each step's completions and labels -> samples/step_<n>.jsonl."""

    def __init__(self, env, run_dir: Path) -> None:
        self.env = env
        self.dir = run_dir / "samples"
        self.dir.mkdir(exist_ok=True)
        self.completions: list = []  # the last step's, for the monitors

    def wrap(self, fn):
        def reward(prompts, completions, trainer_state=None, **kw):
            out = fn(prompts, completions, trainer_state=trainer_state, **kw)
            step = (trainer_state.global_step if trainer_state is not None else 0) + 1
            rows = gather_rows(
                [
                    {
                        "prompt": p,
                        "completion": c,
                        "reward": g.reward,
                        "secure_reward": g.secure_reward,
                        "label": g.label,
                        "detail": g.detail,
                    }
                    for p, c, g in zip(prompts, completions, self.env.last_grades)
                ]
            )
            if is_main():  # a launched run's samples file holds every rank's completions
                with open(self.dir / f"step_{step}.jsonl", "w") as f:
                    f.writelines(json.dumps(row) + "\n" for row in rows)
                self.completions = [row["completion"] for row in rows]
            return out

        reward.__name__ = fn.__name__
        return reward

    def texts(self) -> list[str]:
        """The last step's completions as text (a conversational completion's last message)."""
        return [c if isinstance(c, str) else c[-1]["content"] for c in self.completions]


class ProbedGRPOTrainer(GRPOTrainer):
    """TRL's GRPOTrainer; its loss forward also feeds the rollout probe (no extra forward).

    `compute_loss` is the trainer's public extension point: the probe's hook is installed only
    while the loss's forward runs, so the backward (and gradient checkpointing's recomputation)
    is never read. A `screen` or `advantage` mitigation changes the batch's advantages first."""

    rollout_probe: RolloutProbe | None = None
    shaping: AdvantageShaping | None = None  # screen / advantage (interventions/mitigate.py)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.shaping is not None:  # the advantages this loss uses, mitigated
            inputs = self.shaping.apply(model, inputs)
        reading = self.rollout_probe.during(model, inputs) if self.rollout_probe else nullcontext()
        with reading:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


STEER_OPS = {
    "inference": ("subtract", False),
    "preventative": ("add", True),
    "ablate": ("ablate", True),
}


def steering(cfg: Config, model, tok, probe, run_dir: Path, log, gate=None, step: int = 0):
    """The run's steering hooks (a no-op context when steer.mode is off)."""
    if cfg.steer.mode == "off" or probe is None:
        return nullcontext()
    op, only_with_grad = STEER_OPS[cfg.steer.mode]
    only_with_grad = only_with_grad and not cfg.steer.in_generation
    also = [Direction.load(path, model, tok) for path in cfg.steer.also]  # ablated with it
    layers = list(cfg.steer.layers) or [probe.direction.layer]
    unit = median_norm(model, tok, probe.texts[:64], layers[0])

    append_event(
        run_dir,
        {
            "event": "steer",
            "step": step,
            "mode": cfg.steer.mode,
            "op": op,
            "coeff": cfg.steer.coeff,
            "layers": layers,
            "norm_unit": unit,
            "on_at_eval": not only_with_grad,
            "start": cfg.steer.start,
            "also": [d.name for d in also],
        },
    )
    how = "projected out" if op == "ablate" else f"{op} {cfg.steer.coeff} x median norm {unit:.3f}"
    log(
        f"steering: {cfg.steer.mode} ({how}) at layers {layers}"
        + (f" with {', '.join(d.name for d in also)}" if also else "")
    )
    coeff = cfg.steer.coeff
    return steer(model, probe.direction, coeff, op, layers, unit, only_with_grad, gate, also)


def train(cfg: Config, resume: Path | None = None, log=print) -> Path:
    """Run GRPO as configured; returns the run directory.

    With `detect.action: rollback` an alarm ends the first pass; the run is restored to the last
    checkpoint saved before the alarm (or the initial policy) and trained on with the `steer:`
    mitigation on. The rolled-back metrics lines move to `metrics.rolled_back.jsonl`, so
    metrics.jsonl stays one line per step; events.jsonl records the alarm and the rollback.
    """
    check(cfg)  # names nothing resolves, and TRL's own argument checks: before anything is written
    setup.grpo_args(cfg, Path(cfg.out_dir))
    # a sandbox without the protections the run needs stops it here (ConfigError: exit 2)
    weak = require_isolation(cfg.sandbox.needs, cfg.sandbox.allow_weak, log)
    # a chat model's judge, built once; an endpoint that does not answer stops the run here too
    judge = ready_judge(cfg, log) if cfg.run_evals.every >= 0 else None
    # the organism (built now or cached), and a calibration fitted on another build refused
    built = setup.organism_build(cfg, log)
    if built is not None:  # a prepared direction: checked against the calibration here too
        setup.check_prepared_direction(cfg, built.path.name, log)
    run_dir = resume or new_run_dir(cfg)
    if built is not None:
        write_organism(run_dir, built)
    ckpt = last_complete_checkpoint(run_dir, log) if resume else None
    if resume and ckpt is None:
        raise ConfigError(f"--resume {run_dir}: no checkpoint to resume from")
    resume_step = checkpoint_step(ckpt) if ckpt else None
    log(f"run {run_dir}" + (f" (resuming from step {resume_step})" if ckpt else ""))
    t0 = time.time()
    # inoculation switched on by an alarm: the pass after the rollback (also when resuming it)
    does = action_of(cfg.detect.action, cfg.mitigate.name)  # alarms/actions.py
    inoculating = does.rolls_back and cfg.detect.action == "mitigate"
    if inoculating and on_main(lambda: rolled_back(run_dir)):
        cfg = inoculated(cfg)
    trainer, instruments = first_pass(cfg, run_dir, ckpt, resume_step, weak, log, judge)
    alarm = instruments.alarm
    if (
        alarm is not None
        and does.rolls_back
        and not on_main(lambda: rolled_back(run_dir))  # one answer for every rank
    ):
        target = on_main(lambda: rollback(run_dir, alarm.step))  # files: rank 0
        step = checkpoint_step(target)
        mitigation = switched_on(cfg, inoculating)
        append_event(
            run_dir,
            {
                "event": "rollback",
                "step": alarm.step,
                "to_step": step,
                "checkpoint": target.name if target else "initial policy",
                "mitigation": mitigation,
            },
        )
        log(
            f"ROLLBACK to step {step} ({target.name if target else 'initial policy'}); "
            f"continuing with {mitigation}"
        )
        if inoculating:
            cfg = inoculated(cfg)
            append_event(
                run_dir,
                {"event": "mitigation_on", "name": "inoculate", "step": step, "alarm": alarm.step},
            )
        carried = (instruments.state(), step)
        trainer, instruments = train_pass(cfg, run_dir, target, step, carried, weak, log, judge)
    seconds = round(time.time() - t0, 1)
    if is_main():  # the evals after training: the run's own model, the weights kept, one process
        policy = (unwrap(trainer.model), trainer.processing_class, instruments.world)
        step = trainer.state.global_step
        after = round(evals_after_training(run_dir, cfg, judge, log, policy, step), 1)
        done = {"seconds": seconds, "evals_after_seconds": after}
        (run_dir / "DONE").write_text(json.dumps({**done, "step": trainer.state.global_step}))
    log(f"done: {run_dir} ({trainer.state.global_step} steps, {time.time() - t0:.0f}s)")
    on_alarm = instruments.alarm is not None and does.realigns
    # one process realigns; SFT runs on a single device
    if (cfg.realign.after or on_alarm) and is_main():
        from personadrift.rl.realign import realign

        realign(run_dir, cfg, log=log)
    return run_dir


def first_pass(cfg: Config, run_dir: Path, ckpt, resume_step, weak, log, judge):
    """The run's first `train_pass`; a fresh run refused before its first step (a ConfigError:
    the direction it extracted does not match its calibration) leaves nothing behind."""
    try:
        return train_pass(cfg, run_dir, ckpt, resume_step, None, weak, log, judge)
    except ConfigError:
        metrics = run_dir / "metrics.jsonl"
        if ckpt is None and (not metrics.is_file() or not metrics.stat().st_size):
            on_main(lambda: shutil.rmtree(run_dir))
        raise


def switched_on(cfg: Config, inoculating: bool) -> str:
    """What an alarm switches on after its rollback: the inoculation prompt, steering (the
    `steer:` section, when it waits for the alarm), or both, joined by "+"."""
    parts = ["inoculate"] if inoculating else []
    if inoculating and cfg.mitigate.name in SHAPING:
        parts.append(f"advantage {cfg.mitigate.coeff}")
    if cfg.steer.mode != "off" and (cfg.steer.start == "alarm" or not inoculating):
        coeff = "" if cfg.steer.mode == "ablate" else f" {cfg.steer.coeff}"  # ablation has none
        parts.append(f"steer {cfg.steer.mode}{coeff}")
    return "+".join(parts)


def inoculated(cfg: Config) -> Config:
    """The run's config with the env's inoculation prompt on."""
    return dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, inoculate=True))


def train_pass(
    cfg: Config,
    run_dir: Path,
    ckpt: Path | None,
    keep_step: int | None,
    carried: tuple[dict, int] | None,
    weak: list[str],
    log,
    judge=None,
) -> tuple[ProbedGRPOTrainer, Instruments]:
    """One `trainer.train()`: from scratch, from `ckpt`, or (rollback) with the `carried`
    (state, step) of the pass before. `weak`: sandbox protections missing (allowed by config).
    `judge`: a chat model's eval judge (`checks.ready_judge`; None for the organism's judges)."""
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
    trainer = ProbedGRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=args,
        train_dataset=dataset,
        processing_class=tok,
    )
    probe, extras, layer_probes = None, [], {}
    if cfg.probes.enabled:
        probe, extras, layer_probes = run_probes(
            cfg, model, tok, world, run_dir, keep_step is not None, log, judge
        )
        trainer.rollout_probe = RolloutProbe(probe.direction, tok)  # with tok: think/answer spans
        if penalty is not None:
            penalty.bind(trainer, probe.direction)
    evals = cfg.run_evals.every >= 0 and world is not None
    shaping = None
    if cfg.mitigate.name in SHAPING and probe is not None:
        step0 = cfg.mitigate.start == "step0"
        # the instruments (below) say when an alarm has switched it on
        gate = (lambda: True) if step0 else (lambda: instruments.mitigating())
        shaping = trainer.shaping = AdvantageShaping(cfg.mitigate, probe.direction, gate)
    if cfg.mitigate.name and cfg.mitigate.start == "step0" and keep_step is None:
        mitigation_from_step0(cfg, run_dir)
    monitors = run_monitors(cfg, world)
    parts = {"penalty": penalty, "monitors": monitors, "mitigate": shaping}
    instruments = Instruments(
        run_dir,
        metrics,
        Schedule(cfg.probes.every, cfg.run_evals.every, cfg.run_evals.during),
        probe=probe,
        extras=extras,
        layer_probes=layer_probes,
        rollouts=trainer.rollout_probe,
        world=world,
        evals=in_run_config(cfg.model_eval, cfg.run_evals) if evals else None,
        detect=cfg.detect,
        monitors=monitors,
        shaping=shaping,
        mitigation=cfg.mitigate.name,
        completions=samples.texts,
        states={name: part for name, part in parts.items() if part is not None},
        constants={"sandbox/weak": 1} if weak else {},
        chat=chat_evals(cfg, judge),
        log=log,
    )
    restore(instruments, carried, ckpt)
    setup.add_callbacks(trainer, instruments, run_dir)
    trainer.remove_callback(PrinterCallback)  # its raw dicts are replaced by one line per step
    gate = instruments.mitigating if cfg.steer.start == "alarm" else None
    try:
        with steering(cfg, model, tok, probe, run_dir, log, gate, keep_step or 0):
            trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    finally:
        metrics.close()
    return trainer, instruments


def mitigation_from_step0(cfg: Config, run_dir: Path) -> None:
    append_event(
        run_dir, {"event": "mitigation_on", "name": cfg.mitigate.name, "step": 0, "start": "step0"}
    )


def restore(instruments: Instruments, carried: tuple[dict, int] | None, ckpt: Path | None) -> None:
    """The instruments' state: carried over a rollback, or saved with the checkpoint resumed."""
    if carried is not None:
        instruments.restore(*carried)
    elif ckpt and (ckpt / STATE_FILE).is_file():
        instruments.restore(json.loads((ckpt / STATE_FILE).read_text()))


def run_probes(cfg: Config, model, tok, world, run_dir: Path, resuming: bool, log, judge):
    """The held-out probe on the run's direction, one more per `probes.also` direction, and
    {layer: probe} of the direction at the layer a `probe_L<k>` detector watches.
    A direction extracted now is checked against the calibration here (ConfigError)."""
    direction = setup.run_direction(cfg, model, tok, world, run_dir, resuming, log, judge)
    if not resuming:
        if not cfg.probes.directions:
            setup.check_run_direction(cfg, direction, read_organism(run_dir).get("name", ""), log)
        write_direction(run_dir, direction)
    probe = HeldOutProbe(
        direction,
        setup.probe_texts(cfg, world, tok),
        cfg.probes.answer_tokens,
        cfg.probes.baseline_readings,
    )
    extras = [
        HeldOutProbe(d, probe.texts, 0, cfg.probes.baseline_readings)
        for d in setup.also_directions(cfg, model, tok, direction, run_dir)
    ]
    layers = {}
    layer = monitor_layer(cfg.detect.metric.removeprefix("monitor/")) if cfg.detect.rule else None
    if layer is not None:
        if layer not in direction.vectors:
            raise ConfigError(
                f"detect.metric: {cfg.detect.metric} reads layer {layer}; the direction has "
                f"layers {', '.join(map(str, sorted(direction.vectors)))}"
            )
        at = direction.at_layer(layer)
        layers[layer] = HeldOutProbe(at, probe.texts, 0, cfg.probes.baseline_readings)
    return probe, extras, layers


def run_monitors(cfg: Config, world) -> Monitors | None:
    """Every text monitor (`monitors.record`), or the detector's own monitor alone (the
    calibrated alarm on a monitor), or none."""
    watched = cfg.detect.metric.removeprefix("monitor/") if cfg.detect.rule else ""
    if cfg.monitors.record:
        return Monitors(cfg.monitors, world, cfg.model_eval)
    if is_monitor(watched):
        return Monitors(cfg.monitors, world, cfg.model_eval, names=[watched])
    return None


def resume_config(run_dir: Path, overrides: list[str]) -> Config:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"--resume {run_dir}: no config.yaml there")
    return load_config(path, overrides)
