"""Mitigations that act on the rollouts' advantages: `screen` and `advantage` (`mitigate:`).

Both read each rollout's persona projection (the mean over its completion tokens at the
direction's layer, as the rollout probe reads it) in one no-grad forward that stops at that layer,
just before GRPO's loss, and change the advantages the loss is about to use (`ProbedGRPOTrainer.compute_loss`
hands them the batch TRL built: `prompt_ids`, `completion_ids`, their masks and `advantages`):

- `screen`: a rollout whose projection is above the base model's `quantile` percentile gets zero
  advantage, so it neither pulls the policy towards it nor away; the cut is the percentile of the
  first step's rollouts, sampled and read under the initial weights.
- `advantage` (and `inoculate_advantage`, with the inoculation prompt): each rollout's advantage
  minus `coeff` times its projection standardised within its group (the rollouts of the same prompt), so that within every group the more persona-like
  rollouts are pushed down and the less persona-like ones up, by an amount that does not depend on
  the reward's scale.

How `advantage` differs from the `penalty:` reward term: the penalty subtracts coeff·projection
from the *reward*, which GRPO then normalises together with the task reward, so the policy trades
one against the other and the penalty's weight changes with the group's reward spread (a group
where all rollouts hack equally is normalised by the penalty's spread alone). Advantage shaping
leaves the reward and its normalisation alone and moves the advantage by a fixed number of
within-group standard deviations of the projection.

Rollouts are grouped by identical prompt tokens: the loss sees a whole generation batch at once
(`steps_per_generation` is 1, checked in `checks.py`), shuffled, so the groups are found again by
their prompt. The step's counts are taken by the instruments (`take`): `mitigate/active`,
`mitigate/screened` (rollouts zeroed), `mitigate/shift` (mean |change| of the advantages). The
projection forward runs only while the mitigation is on (and, for `screen`, at the first step).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from personadrift.alarms.actions import SHAPING
from personadrift.config import MitigateConfig
from personadrift.probes.capture import layer_output
from personadrift.probes.direction import Direction
from personadrift.probes.paired import percentile


@torch.no_grad()
def rollout_projections(model, inputs: dict, direction: Direction) -> torch.Tensor:
    """(B,) mean projection over each rollout's completion tokens, from a forward up to the layer."""
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
    mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
    acts = layer_output(model, direction.layer, input_ids=ids, attention_mask=mask)
    proj = acts.float() @ direction.vector().to(acts.device).float()  # (B, T)
    comp = inputs["completion_mask"].to(proj.device).float()
    width = inputs["prompt_ids"].shape[1]
    return (proj[:, width:] * comp).sum(1) / comp.sum(1).clamp(min=1)


def group_ids(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> torch.Tensor:
    """(B,) the index of each row's group: rows with the same (unpadded) prompt share one."""
    keys = [tuple(ids[m.bool()].tolist()) for ids, m in zip(prompt_ids, prompt_mask)]
    index: dict[tuple, int] = {}
    return torch.tensor([index.setdefault(k, len(index)) for k in keys])


def within_group_z(values: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """`values` centred and divided by their standard deviation within each group (0 where a
    group has one row or no spread)."""
    z = torch.zeros_like(values)
    for g in groups.unique():
        rows = groups == g
        v = values[rows]
        if v.numel() < 2:
            continue
        sd = v.std()
        if sd > 1e-8:
            z[rows] = (v - v.mean()) / sd
    return z


def screen(advantages: torch.Tensor, proj: torch.Tensor, cut: float) -> torch.Tensor:
    return torch.where(proj.to(advantages.device) > cut, torch.zeros_like(advantages), advantages)


def shift(advantages: torch.Tensor, proj: torch.Tensor, groups: torch.Tensor, coeff: float):
    return advantages - coeff * within_group_z(proj, groups).to(advantages.device)


class AdvantageShaping:
    """`apply(model, inputs)` -> the inputs with the mitigated advantages (or as they were while
    the `gate` says the mitigation is off)."""

    def __init__(self, cfg: MitigateConfig, direction: Direction, gate: Callable[[], bool]) -> None:
        if cfg.name not in SHAPING:
            raise ValueError(f"AdvantageShaping: {cfg.name!r} shapes no advantage")
        self.cfg = cfg
        self.direction = direction
        self.gate = gate
        self.cut: float | None = None  # the base model's rollout percentile (screen)
        self.step: dict[str, float] = {}

    def state(self) -> dict:
        return {"cut": self.cut}

    def restore(self, state: dict) -> None:
        self.cut = state.get("cut", self.cut)

    def apply(self, model, inputs: dict) -> dict:
        active = bool(self.gate())
        self.step["mitigate/active"] = float(active)
        needs_cut = self.cfg.name == "screen" and self.cut is None  # the first step's rollouts
        if not (active or needs_cut):  # before the alarm: no extra forward
            return inputs
        proj = rollout_projections(model, inputs, self.direction)
        if needs_cut:
            self.cut = percentile(proj.tolist(), self.cfg.quantile)
        if not active:
            return inputs
        adv = inputs["advantages"]
        if self.cfg.name == "screen":
            new = screen(adv, proj, self.cut)
            self.step["mitigate/screened"] = self.step.get("mitigate/screened", 0.0) + float(
                (proj > self.cut).sum()
            )
        else:
            groups = group_ids(inputs["prompt_ids"], inputs["prompt_mask"])
            new = shift(adv, proj, groups, self.cfg.coeff)
        self.step["mitigate/shift"] = float((new - adv).abs().mean())
        return {**inputs, "advantages": new}

    def take(self) -> dict[str, float]:
        values, self.step = self.step, {}
        return values
