"""What each `detect.action` does at the alarm and after the pass: one table (`alarms/actions.py`)."""

from __future__ import annotations

from personadrift.alarms.actions import Action, action_of


def test_every_action_the_schema_allows_does_what_its_help_says():
    import re

    from personadrift.config.reference import reference

    allowed = re.search(r"\| `detect.action` \|[^\n]*", reference()).group(0)
    for action in ("none", "stop", "rollback", "steer", "realign", "mitigate"):
        assert f"{action} (" in allowed
    assert action_of("none") == Action() and action_of("realign") != Action()


def test_what_each_action_does():
    assert action_of("stop") == Action(ends_pass=True, saves=True, event="stop")
    assert action_of("rollback") == Action(ends_pass=True, rolls_back=True, steering=True)
    assert action_of("steer") == Action(event="steer_on", steering=True)
    assert action_of("realign") == Action(realigns=True)
    # `mitigate`: the inoculation prompt needs a rollback (the prompts change); others act in place
    assert action_of("mitigate", "inoculate").rolls_back
    assert action_of("mitigate", "screen") == Action(event="mitigation_on", steering=True)
