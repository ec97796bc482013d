"""`Instruments`: the one place where the run's instruments act after each optimizer step.

TRL owns the step: generation, rewards, the loss, the optimizer. Right after it TRL hands the
step's own metrics (reward, kl, entropy, env/*) to callbacks in `on_log` (one log per step:
`logging_steps` is 1), and `on_log` below is then, top to bottom:

1. read the persona probe on the fixed held-out prompts, if due (one no-grad forward);
2. take the rollouts' projections, captured for free in GRPO's own loss forward (every step),
   over all their tokens and over their reasoning and answer spans, and what a `screen` or
   `advantage` mitigation did to the step's advantages;
3. run the misalignment evals, if due (or, with `run_evals.during: false`, keep the weights for
   the evals after training: `rl/evals_after.py`), and (study runs) the early-warning monitors;
4. merge these values into the step's metrics (the reporting callbacks, TensorBoard or W&B, are
   registered after this one, so they log the merged line through TRL's own logging path);
5. run the detector on the metric history and, on an alarm, act on it (`act`);
6. write the metrics line (metrics.jsonl) and one console line;
7. share the main process's decisions (stop, save, the alarm) with every rank.

Readings, evals, the detector and the files are the main process's; the other ranks only take part
in the collectives (the rollouts' projections are gathered from every rank). Before the first step
`on_train_begin` writes the step-0 line (the probe's baseline reading and the evals before
training); `on_save` stores the probe's baseline and history and the alarm in every checkpoint, so
a resumed run goes on where it was.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path

from transformers import TrainerCallback

from personadrift.alarms.actions import action_of
from personadrift.alarms.detect import Alarm, detect
from personadrift.alarms.monitors import Monitors, StepView
from personadrift.config import DetectConfig, ModelEvalConfig
from personadrift.evals.chat import ChatEvals
from personadrift.evals.in_run import run_evals, step_config
from personadrift.interventions.mitigate import AdvantageShaping
from personadrift.probes.reading import HeldOutProbe, RolloutProbe, read_together
from personadrift.rl.distributed import gather_rows, is_main, share_decisions
from personadrift.rl.evals_after import keep_weights
from personadrift.rl.run_dir import STATE_FILE, MetricsFile, append_event

# what TRL logs once at the end of training, not a step
SUMMARY_KEYS = ("train_runtime", "train_samples_per_second")
CONSOLE = (
    ("reward", "reward"),
    ("env/hack_rate", "hack"),
    ("env/solve_rate", "solve"),
    ("entropy", "entropy"),
    ("step_time", "s/step"),
)


@dataclasses.dataclass
class Schedule:
    probe_every: int  # held-out probe readings every N steps
    evals_every: int  # evals every N steps; 0 = only before training and at the last step
    evals_during: bool = True  # False: keep the weights at those steps, evaluate after training


class Instruments(TrainerCallback):
    def __init__(
        self,
        run_dir: Path,
        metrics: MetricsFile,
        schedule: Schedule,
        *,
        probe: HeldOutProbe | None = None,
        extras: list[HeldOutProbe] | None = None,
        layer_probes: dict[int, HeldOutProbe] | None = None,
        rollouts: RolloutProbe | None = None,
        world=None,
        evals: ModelEvalConfig | None = None,
        detect: DetectConfig | None = None,
        monitors: Monitors | None = None,
        shaping: AdvantageShaping | None = None,
        mitigation: str = "",
        completions=lambda: [],
        states: dict | None = None,
        constants: dict | None = None,
        chat: ChatEvals | None = None,
        log=print,
    ) -> None:
        self.run_dir = run_dir
        self.metrics = metrics
        self.schedule = schedule
        self.probe = probe
        # the run's direction at other layers, for a `probe_L<k>` monitor (read with the extras)
        self.layer_probes = layer_probes or {}
        # more directions read on the same prompts (probes.also, random, the layer readings)
        self.extras = [*(extras or []), *self.layer_probes.values()]
        self.rollouts = rollouts
        self.world = world
        self.evals = evals
        self.chat = chat  # a chat model's judge and question set (evals/chat.py), or None
        self.detect = detect if detect is not None and detect.rule else None
        self.monitors = monitors  # the early-warning monitors (study runs), or None
        self.shaping = shaping  # a screen / advantage mitigation in the loss, or None
        self.mitigation = mitigation  # what detect.action: mitigate switches on
        self.completions = completions  # the step's rollouts as the reward function saw them
        self.states = states or {}  # other parts saved with each checkpoint: name -> state()
        self.constants = constants or {}  # on every line, e.g. sandbox/weak=1
        self.log = log
        self.alarm: Alarm | None = None  # the run's alarm, once it has fired (once per run)

    # what a checkpoint carries ---------------------------------------------------------------
    def state(self) -> dict:
        alarm = dataclasses.asdict(self.alarm) if self.alarm is not None else None
        parts = {name: part.state() for name, part in self.states.items()}
        probes = {"probe": self.probe.state()} if self.probe else {}
        if self.extras:
            probes["extras"] = {p.direction.name: p.state() for p in self.extras}
        return {**parts, "alarm": alarm, **probes}

    def restore(self, saved: dict, up_to: int | None = None) -> None:
        """A checkpoint's (or a rolled-back pass's) state; probe readings after `up_to` dropped."""
        if saved.get("alarm"):
            self.alarm = Alarm(**saved["alarm"])
        if self.probe is not None and "probe" in saved:
            self.probe.restore(saved["probe"], up_to)
        for p in self.extras:
            p.restore(saved.get("extras", {}).get(p.direction.name, {}), up_to)
        for name, part in self.states.items():
            part.restore(saved.get(name, {}))

    def mitigating(self) -> bool:
        """Whether the alarm has switched the run's mitigation (the steer: section) on."""
        return (
            self.alarm is not None
            and self.detect is not None
            and action_of(self.detect.action, self.mitigation).steering
        )

    # the step ----------------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kw):
        """The step-0 line: the probe's baseline reading and the evals before training.

        Nothing when resuming (the baseline came back with the checkpoint) or after a rollback
        (the step-0 line is already in metrics.jsonl)."""
        if not is_main() or state.global_step != 0 or (self.probe and self.probe.baseline):
            return
        values = {}
        if self.probe is not None:
            values |= self.read_probe(model, processing_class, 0)
        if self.evals is not None:
            values |= self.run_evals(model, processing_class, 0)
        if self.monitors is not None:
            values |= self.monitors.read(self.view(0, values, [], None), model, processing_class)
        if values:
            self.metrics.write(0, values)

    def on_log(self, args, state, control, logs=None, model=None, processing_class=None, **kw):
        if not logs or any(k in logs for k in SUMMARY_KEYS):
            return
        step = state.global_step
        projections = gather_rows(self.rollouts.take()) if self.rollouts is not None else []
        spans = self.rollouts.take_spans() if self.rollouts is not None else {}
        spans = {what: gather_rows(values) for what, values in spans.items()}
        if is_main():
            values = dict(self.constants)
            if self.probe is not None and step % self.schedule.probe_every == 0:
                values |= self.read_probe(model, processing_class, step)
            if projections:
                values[self.rollouts_key()] = statistics.fmean(projections)
                values |= self.rollouts.span_metrics(spans)
            if self.shaping is not None:  # what the mitigation did to this step's advantages
                values |= self.shaping.take()
            if self.evals is not None and self.evals_due(step, state.max_steps):
                values |= self.run_evals(model, processing_class, step)
            if self.monitors is not None:
                view = self.view(step, values, projections, logs.get("env/hack_rate"))
                values |= self.monitors.read(view, model, processing_class)
            logs.update(values)  # the step's metrics, for this file and for the reporters after us
            if self.detect is not None and self.alarm is None:
                self.alarm = self.run_detector(step, logs)
                logs["detect/alarm"] = int(self.alarm is not None)
                if self.alarm is not None:
                    self.act(self.alarm, control)
            self.metrics.write(step, logs)
            self.console(step, logs)
        self.alarm = share_decisions(control, self.alarm)

    def on_save(self, args, state, control, **kw):
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if is_main() and ckpt.is_dir():
            (ckpt / STATE_FILE).write_text(json.dumps(self.state()))

    # the pieces of a step ------------------------------------------------------------------------
    def read_probe(self, model, tok, step: int) -> dict[str, float]:
        from personadrift.report.sparkline import probe_line

        values = read_together([self.probe, *self.extras], model, tok, step)
        zs = [z for _, z in self.probe.history]
        self.log(
            probe_line(
                step,
                f"probe/{self.probe.direction.name}",
                values[self.probe.key("eval_mean")],
                values[self.probe.key("z")],
                zs,
                None,
            )
        )
        return values

    def view(self, step: int, values: dict, projections: list[float], hack_rate) -> StepView:
        """What the monitors see of this step (the probe's part only when it was read now)."""
        read = self.probe is not None and self.probe.key("read_seconds") in values
        layers = {k: (p.baseline[0], p.last) for k, p in self.layer_probes.items()} if read else {}
        return StepView(
            step=step,
            baseline=self.probe.baseline[0] if read else None,
            now=self.probe.last if read else None,
            probe_seconds=values.get(self.probe.key("read_seconds")) if read else None,
            projections=projections,
            completions=self.completions() if step else [],
            hack_rate=hack_rate,
            layers=layers,
        )

    def rollouts_key(self) -> str:
        return f"probe/{self.rollouts.direction.name}/rollout_mean"

    def evals_due(self, step: int, max_steps: int) -> bool:
        every = self.schedule.evals_every
        return bool(every and step % every == 0) or step >= max_steps

    def run_evals(self, model, tok, step: int) -> dict[str, float]:
        if not self.schedule.evals_during:  # the values come after training (rl/evals_after.py)
            keep_weights(model, self.run_dir, step)
            return {}
        evals = step_config(self.evals, step)
        values, line = run_evals(model, tok, self.world, evals, self.chat, self.log)
        self.log(f"step {step:4d} {line}")
        return values

    def run_detector(self, step: int, logs: dict) -> Alarm | None:
        """The detector on the history plus this step; an alarm only if it fires at this step."""
        d = self.detect
        rows = [*self.metrics.rows, {"step": step, **logs}]
        params = dict(d.params)
        if d.rule == "calibrated":  # its threshold and k come from the calibration file
            params["calibration"] = d.calibration
        alarm = detect(d.rule, rows, d.metric, warmup=d.warmup, **params)
        return alarm if alarm is not None and alarm.step == step else None

    def act(self, alarm: Alarm, control) -> None:
        """What the config's `detect.action` does at the alarm step (events.jsonl records it)."""
        action = self.detect.action
        does = action_of(action, self.mitigation)  # alarms/actions.py: every action, one table
        append_event(
            self.run_dir, {"event": "alarm", **dataclasses.asdict(alarm), "action": action}
        )
        self.log(
            f"ALARM step {alarm.step}: {alarm.rule} on {alarm.metric} = {alarm.value:.3f} -> {action}"
        )
        step, reason = alarm.step, f"{alarm.rule} alarm on {alarm.metric}"
        written = {
            "steer_on": {"event": "steer_on", "step": step},
            "mitigation_on": {"event": "mitigation_on", "name": self.mitigation, "step": step},
            "stop": {"event": "stop", "step": step, "reason": reason},
        }
        if does.event:
            append_event(self.run_dir, written[does.event])
        if does.saves:
            control.should_save = True
        if does.ends_pass:  # train() rolls back and goes on, or the run ends here
            control.should_training_stop = True

    def console(self, step: int, logs: dict) -> None:
        parts = [
            f"{name} {logs[k]:.3f}" for k, name in CONSOLE if isinstance(logs.get(k), (int, float))
        ]
        self.log(f"step {step:4d} " + "  ".join(parts))
