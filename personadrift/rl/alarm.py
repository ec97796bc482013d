"""The alarm callback: runs the configured detector on the metric history at every logged step.

It sees the history plus the step being logged, marks `detect/alarm` = 1 on the alarm step (it runs
before the metrics writer), appends the event to `events.jsonl`, prints one console line, and acts:
`stop` asks the trainer to checkpoint this step and end the run (exit status 0, stop reason in
events.jsonl); `rollback` ends this pass of training so that `train` restores the last checkpoint
saved before the alarm and continues with the mitigation on; `steer` switches the mitigation on
from this step (`mitigating()` is the gate of the steering hooks). An alarm fires once per run; a
resumed run knows it fired from its saved state.
"""

from __future__ import annotations

from pathlib import Path

from transformers import TrainerCallback

from personadrift.config import DetectConfig
from personadrift.probes.detect import detect
from personadrift.rl.run_dir import MetricsFile, append_event


class AlarmCallback(TrainerCallback):
    def __init__(self, cfg: DetectConfig, metrics: MetricsFile, run_dir: Path, log=print) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.run_dir = run_dir
        self.log = log
        self.fired: dict | None = None

    def mitigating(self) -> bool:
        """Whether the alarm has switched the run's mitigation (the steer: section) on."""
        return self.fired is not None and self.cfg.action in ("rollback", "steer")

    def state(self) -> dict:
        return {"fired": self.fired}

    def restore(self, state: dict) -> None:
        self.fired = state.get("fired")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "train_runtime" in logs or args.process_index != 0 or self.fired:
            return
        rows = [*self.metrics.rows, {"step": state.global_step, **logs}]
        params = dict(self.cfg.params)
        if self.cfg.rule == "calibrated":  # its threshold and k come from the calibration file
            params["calibration"] = self.cfg.calibration
        alarm = detect(self.cfg.rule, rows, self.cfg.metric, warmup=self.cfg.warmup, **params)
        if alarm is None or alarm.step != state.global_step:
            logs["detect/alarm"] = 0
            return
        logs["detect/alarm"] = 1
        self.fired = {"step": alarm.step, "rule": alarm.rule, "metric": alarm.metric,
                      "value": alarm.value, "action": self.cfg.action}  # fmt: skip
        append_event(self.run_dir, {"event": "alarm", **self.fired})
        self.log(
            f"ALARM step {alarm.step}: {alarm.rule} on {alarm.metric} = {alarm.value:.3f} -> {self.cfg.action}"
        )
        if self.cfg.action == "rollback":
            control.should_training_stop = True  # train() restores the checkpoint and goes on
        if self.cfg.action == "steer":
            append_event(self.run_dir, {"event": "steer_on", "step": alarm.step})
        if self.cfg.action == "stop":
            control.should_save = True
            control.should_training_stop = True
            append_event(self.run_dir, {"event": "stop", "step": alarm.step,
                                        "reason": f"{alarm.rule} alarm on {alarm.metric}"})  # fmt: skip
