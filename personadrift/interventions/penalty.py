"""Intervention `penalty`: the reward term −λ·(projection of each rollout on the persona direction).

`PersonaPenalty` is a TRL reward function (`fn(prompts, completions, **kw) -> list[float]`, named
`persona_penalty`). `train()` appends it to the env's reward functions when `penalty.coeff > 0`, so
TRL sums it into `reward` (env reward + penalty) and logs it as `rewards/persona_penalty/mean`.

Each completion is read with `probes.reading.read_completions`: one extra no-grad forward of
prompt + completion through the trainer's current policy, hooks removed after; the projection is the
mean over the completion's tokens at the direction's layer (the `probe/<dir>/rollout_mean` quantity).

Centring (`penalty.center`, on by default): projections are taken relative to the mean projection of
the first batch scored — the initial policy's own rollouts, before any update — so the penalty
averages 0 at step 1 and `reward` stays comparable with an unpenalised run. A constant offset does
not change GRPO's group-relative advantages: centring changes what is logged, not what is learned.
The baseline is saved with each checkpoint (`state()`/`restore()`) so a resumed run keeps it.
Also logged: `penalty/projection_mean` (raw, uncentred), `penalty/baseline`, `penalty/read_seconds`.
"""

from __future__ import annotations

import statistics
import time

from personadrift.config import PenaltyConfig
from personadrift.probes.direction import Direction
from personadrift.probes.reading import read_completions


class PersonaPenalty:
    def __init__(self, cfg: PenaltyConfig, trainer=None, direction: Direction | None = None):
        self.__name__ = "persona_penalty"  # TRL names the reward column and metric after it
        self.cfg = cfg
        self.trainer = trainer  # read through the trainer, so the reading sees the current policy
        self.direction = direction
        self.baseline: float | None = None  # mean projection of the first batch (None: not yet)

    def bind(self, trainer, direction: Direction) -> None:
        """The trainer is built with its reward functions, the direction after it: bind both here."""
        self.trainer, self.direction = trainer, direction

    def state(self) -> dict:
        return {"baseline": self.baseline}

    def restore(self, state: dict) -> None:
        self.baseline = state.get("baseline", self.baseline)

    def projections(self, prompts: list, completions: list) -> list[float]:
        tok = self.trainer.processing_class
        if not isinstance(prompts[0], str):  # conversational rows: render them as the policy saw
            kw = {"tokenize": False, "add_generation_prompt": True}
            prompts = [tok.apply_chat_template(p, **kw) for p in prompts]
            completions = [c[-1]["content"] for c in completions]
        return read_completions(
            self.trainer.model, tok, prompts, completions, self.direction, self.cfg.batch_size
        )

    def __call__(self, prompts, completions, log_metric=None, **_) -> list[float]:
        if self.trainer is None or self.direction is None:
            raise RuntimeError("persona_penalty: call bind(trainer, direction) before training")
        t0 = time.perf_counter()
        proj = self.projections(prompts, completions)
        mean = statistics.fmean(proj)
        if self.baseline is None:
            self.baseline = mean if self.cfg.center else 0.0
        if log_metric is not None:
            log_metric("penalty/projection_mean", mean)
            log_metric("penalty/baseline", self.baseline)
            log_metric("penalty/read_seconds", time.perf_counter() - t0)
        return [-self.cfg.coeff * (p - self.baseline) for p in proj]
