"""What an alarm does (`detect.action`), in one place.

| action | at the alarm step (`rl/instruments.py`) | after the pass (`rl/train.py`) |
|---|---|---|
| `none` | an `alarm` event, nothing else | – |
| `stop` | a checkpoint, a `stop` event; training ends | – |
| `rollback` | training ends | back to the last checkpoint before the alarm, on with `steer:` |
| `steer` | a `steer_on` event: the `steer:` hooks that wait for the alarm switch on | – |
| `mitigate` | `inoculate`, `inoculate_advantage`: training ends; any other: a `mitigation_on` event, it acts from the next step | `inoculate`, `inoculate_advantage`: back to the last checkpoint, on with the inoculation prompt (with the advantage shift; and `steer:` if it waits for the alarm) |
| `realign` | an `alarm` event | SFT on benign samples after training (`rl/realign.py`) |

The config checks (`config/validation.py`, `checks.py`) say which sections each action needs.
"""

from __future__ import annotations

from dataclasses import dataclass

INOCULATING = ("inoculate", "inoculate_advantage")  # mitigations that roll back and inoculate
SHAPING = ("screen", "advantage", "inoculate_advantage")  # mitigations that change advantages


@dataclass(frozen=True)
class Action:
    ends_pass: bool = False  # the trainer stops at the alarm step
    rolls_back: bool = False  # train() restores the checkpoint before the alarm and goes on
    saves: bool = False  # a checkpoint at the alarm step
    event: str = ""  # the event written next to the alarm's: steer_on, mitigation_on, stop
    steering: bool = False  # switches on the `steer:` hooks that wait for the alarm
    realigns: bool = False  # SFT after training


def action_of(action: str, mitigation: str = "") -> Action:
    """What `detect.action` does, with `mitigate.name` for `mitigate`."""
    if action == "stop":
        return Action(ends_pass=True, saves=True, event="stop")
    if action == "rollback":
        return Action(ends_pass=True, rolls_back=True, steering=True)
    if action == "steer":
        return Action(event="steer_on", steering=True)
    if action == "mitigate" and mitigation in INOCULATING:
        return Action(ends_pass=True, rolls_back=True, steering=True)
    if action == "mitigate":
        return Action(event="mitigation_on", steering=True)
    if action == "realign":
        return Action(realigns=True)
    return Action()
