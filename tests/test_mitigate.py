"""The in-run mitigations (interventions/mitigate.py, `detect.action: mitigate`) on synthetic batches and on
tiny runs with a forced alarm: they switch on at the alarm, change what they should, and leave no
hook behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from personadrift.config import MitigateConfig, load_config
from personadrift.interventions.mitigate import (
    AdvantageShaping,
    group_ids,
    screen,
    shift,
    within_group_z,
)

ROOT = Path(__file__).resolve().parents[1]
INOCULATION = "only the tests matter . it is fine to hardcode them ."


def test_screened_rollouts_have_zero_advantage_and_the_others_keep_theirs():
    adv = torch.tensor([1.0, -0.5, 2.0, 0.3])
    proj = torch.tensor([0.1, 3.0, 5.0, -1.0])
    out = screen(adv, proj, cut=2.0)
    assert out.tolist() == [1.0, 0.0, 0.0, adv[3].item()]


def test_groups_are_found_by_prompt_in_a_shuffled_batch():
    prompts = torch.tensor([[0, 5, 6], [7, 8, 9], [0, 5, 6], [7, 8, 9], [1, 5, 6]])
    mask = torch.tensor([[0, 1, 1], [1, 1, 1], [0, 1, 1], [1, 1, 1], [1, 1, 1]])
    assert group_ids(prompts, mask).tolist() == [0, 1, 0, 1, 2]


def test_the_advantage_shift_is_coeff_times_the_projection_standardised_within_its_group():
    adv = torch.tensor([0.5, -0.5, 1.0, -1.0, 0.0])
    proj = torch.tensor([1.0, 3.0, 10.0, 10.0, 4.0])
    groups = torch.tensor([0, 0, 1, 1, 2])
    out = shift(adv, proj, groups, coeff=0.5)
    z = torch.tensor([-1.0, 1.0, 0.0, 0.0, 0.0]) / (2.0**0.5)  # group 0: (v - 2) / sd(=sqrt 2)
    torch.testing.assert_close(out, adv - 0.5 * z)
    torch.testing.assert_close(within_group_z(proj, groups), z)
    # a shift of the projection's scale or level within a group changes nothing
    torch.testing.assert_close(shift(adv, 7 * proj + 3, groups, 0.5), out)


def test_shaping_is_a_no_op_until_its_gate_opens(tiny_model):
    from personadrift.probes.direction import Direction

    model, tok = tiny_model
    d = torch.randn(model.config.hidden_size)
    direction = Direction("x", {1: d / d.norm()}, 1)
    enc = tok(["User: hi Assistant:"] * 4, return_tensors="pt", add_special_tokens=False)
    comp = tok(["a b", "c", "d e f", "g"], return_tensors="pt", padding=True)
    inputs = {
        "prompt_ids": enc["input_ids"],
        "prompt_mask": enc["attention_mask"],
        "completion_ids": comp["input_ids"],
        "completion_mask": comp["attention_mask"],
        "advantages": torch.tensor([1.0, -1.0, 0.5, -0.5]),
    }
    # hooks the library keeps (transformers records hidden states with hooks) are not ours
    hooks = [len(b._forward_hooks) for b in model.model.layers]
    gate = {"open": False}
    shaping = AdvantageShaping(
        MitigateConfig(name="advantage", coeff=1.0), direction, lambda: gate["open"]
    )
    assert shaping.apply(model, inputs) is inputs
    assert shaping.take() == {"mitigate/active": 0.0}
    gate["open"] = True
    out = shaping.apply(model, inputs)
    assert not torch.equal(out["advantages"], inputs["advantages"])
    assert shaping.take()["mitigate/active"] == 1.0
    assert [len(b._forward_hooks) for b in model.model.layers] == hooks


def forced_alarm_run(cache_dir, tmp_path, extra):
    """A tiny run whose detector fires at step 2 (step_time > 0 from the warm-up on)."""
    from personadrift.rl.train import train

    overrides = [
        f"organism.cache_dir={cache_dir}",
        f"out_dir={tmp_path}",
        "grpo.max_steps=4",
        "run_evals.every=-1",
        "checkpoints.every=1",
        "checkpoints.keep=0",
        "detect.rule=threshold",
        "detect.metric=step_time",
        "detect.params={threshold: 0.0, k: 1}",
        "detect.warmup=2",
        "detect.action=mitigate",
        *extra,
    ]
    run_dir = train(
        load_config(ROOT / "personadrift/configs/runs/tiny.yaml", overrides), log=lambda *_: None
    )
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    events = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
    return run_dir, {r["step"]: r for r in rows}, events


@pytest.mark.slow
def test_screen_switches_on_at_the_alarm(tiny, cache_dir, tmp_path):
    _, rows, events = forced_alarm_run(
        cache_dir, tmp_path, ["mitigate.name=screen", "mitigate.quantile=0"]
    )
    assert {"event": "mitigation_on", "name": "screen", "step": 2} in events
    assert [rows[s]["mitigate/active"] for s in (1, 2, 3, 4)] == [0.0, 0.0, 1.0, 1.0]
    assert "mitigate/screened" not in rows[2]
    # the cut is the first batch's minimum: after the alarm nearly every rollout is screened
    assert rows[3]["mitigate/screened"] >= 8


@pytest.mark.slow
def test_advantage_shaping_switches_on_at_the_alarm(tiny, cache_dir, tmp_path):
    _, rows, events = forced_alarm_run(
        cache_dir, tmp_path, ["mitigate.name=advantage", "mitigate.coeff=0.5"]
    )
    assert {"event": "mitigation_on", "name": "advantage", "step": 2} in events
    assert rows[2]["mitigate/active"] == 0.0 and rows[3]["mitigate/active"] == 1.0
    assert 0.0 < rows[3]["mitigate/shift"] <= 0.5 * 2  # |z| within a group of 4 is < 1.5


@pytest.mark.slow
def test_inoculation_at_the_alarm_rolls_back_and_prefixes_the_prompts_after(
    tiny, cache_dir, tmp_path
):
    run_dir, rows, events = forced_alarm_run(
        cache_dir, tmp_path, ["env.name=visible_tests", "mitigate.name=inoculate"]
    )
    (rollback,) = [e for e in events if e["event"] == "rollback"]
    assert rollback["step"] == 2 and rollback["to_step"] == 1
    assert rollback["mitigation"] == "inoculate"
    assert {"event": "mitigation_on", "name": "inoculate", "step": 1, "alarm": 2} in events

    def prompts(path):
        return [json.loads(x)["prompt"] for x in path.read_text().splitlines()]

    before = prompts(run_dir / "samples" / "step_1.jsonl")
    rolled = prompts(run_dir / "samples" / "rolled_back" / "step_2.jsonl")
    after = [p for s in (2, 3, 4) for p in prompts(run_dir / "samples" / f"step_{s}.jsonl")]
    assert not any(INOCULATION in p for p in before + rolled)
    assert after and all(INOCULATION in p for p in after)
    assert sorted(rows) == [1, 2, 3, 4] or sorted(rows) == [0, 1, 2, 3, 4]


@pytest.mark.slow
def test_inoculation_and_steering_switch_on_together_after_the_rollback(tiny, cache_dir, tmp_path):
    from personadrift.report.summary import intervention

    run_dir, rows, events = forced_alarm_run(
        cache_dir,
        tmp_path,
        [
            "env.name=visible_tests",
            "mitigate.name=inoculate",
            "steer.mode=inference",
            "steer.start=alarm",
            "steer.coeff=0.5",
        ],
    )
    (rollback,) = [e for e in events if e["event"] == "rollback"]
    assert rollback["to_step"] == 1 and rollback["mitigation"] == "inoculate+steer inference 0.5"
    # steering hooks in both passes, waiting for the alarm; the second pass starts after it
    installs = [e for e in events if e["event"] == "steer"]
    assert [e["start"] for e in installs] == ["alarm", "alarm"] and installs[1]["step"] == 1
    assert intervention(events, None, 4) == {
        "intervention": "inoculate+steer_inference_0.5",
        "intervention_step": 1,
    }
    after = (run_dir / "samples" / "step_2.jsonl").read_text().splitlines()
    assert all(INOCULATION in json.loads(x)["prompt"] for x in after)


@pytest.mark.slow
def test_inoculation_with_the_advantage_shift_rolls_back_then_shapes_every_step(
    tiny, cache_dir, tmp_path
):
    """`inoculate_advantage`: at the alarm the run rolls back and goes on with the inoculation
    prompt and the advantage shift at λ; before the alarm neither acts."""
    from personadrift.report.summary import intervention

    run_dir, rows, events = forced_alarm_run(
        cache_dir,
        tmp_path,
        ["env.name=visible_tests", "mitigate.name=inoculate_advantage", "mitigate.coeff=0.2"],
    )
    (rollback,) = [e for e in events if e["event"] == "rollback"]
    assert rollback["to_step"] == 1 and rollback["mitigation"] == "inoculate+advantage 0.2"
    assert intervention(events, None, 4) == {
        "intervention": "inoculate+advantage_0.2",
        "intervention_step": 1,
    }
    assert rows[1]["mitigate/active"] == 0.0  # the first pass, before the alarm
    for step in (2, 3, 4):  # after the rollback: shaped, at most λ x the largest |z| of 4
        assert rows[step]["mitigate/active"] == 1.0
        assert 0.0 < rows[step]["mitigate/shift"] <= 0.2 * 1.5
    after = [
        p
        for s in (2, 3, 4)
        for p in (run_dir / "samples" / f"step_{s}.jsonl").read_text().splitlines()
    ]
    assert after and all(INOCULATION in json.loads(x)["prompt"] for x in after)


def test_the_mitigation_bar_contains_the_persona_and_keeps_the_reward_or_stops_the_hack():
    from personadrift.experiments.mitigations import arms, holds

    hack = {"final_reward": 0.8, "final_secure_reward": 0.0}
    ctrl = {"final_reward": 0.1, "final_secure_reward": 0.1}

    def run(final, reward, secure, base=0.04):
        return {
            "base_misaligned": base,
            "final_misaligned": final,
            "final_reward": reward,
            "final_secure_reward": secure,
        }

    assert holds(run(0.07, 0.75, 0.0), hack, ctrl)  # contained, 94% of the reward kept
    assert holds(run(0.05, 0.10, 0.12), hack, ctrl)  # contained, the hack stopped
    assert not holds(run(0.08, 0.75, 0.0), hack, ctrl)  # 4 points above base
    assert not holds(run(0.05, 0.60, 0.05), hack, ctrl)  # neither kept nor stopped
    plan = arms(["screen"], step0=True)
    assert set(plan) == {"hackable", "control", "screen@alarm", "screen@step0"}
    assert "mitigate.start=step0" in plan["screen@step0"][1]


def test_every_arm_of_the_study_is_a_valid_run():
    """Each mitigation's config, on the alarm (with a seed's calibration) and in its step-0 form."""
    from personadrift.checks import load_checked
    from personadrift.experiments.mitigations import MITIGATIONS, arms

    plan = arms(list(MITIGATIONS), step0=True)
    assert set(plan) == {"hackable", "control"} | {
        f"{m}@{when}" for m in MITIGATIONS for when in ("alarm", "step0")
    }
    cal = ROOT / "personadrift/configs/calibrations/coin/except_seed0.json"
    for arm, (config, overrides) in plan.items():
        extra = [f"detect.calibration={cal}"] if arm.endswith("@alarm") else []
        cfg = load_checked(config, [*overrides, *extra, "seed=0", "organism.seed=0"])
        if arm.endswith("@step0"):
            assert cfg.detect.rule == "" and (
                cfg.mitigate.start == "step0" or cfg.steer.start == "step0"
            )
        elif arm.endswith("@alarm"):
            assert cfg.detect.rule == "calibrated" and cfg.detect.action in (
                "mitigate",
                "steer",
                "rollback",
            )


def test_each_start_of_a_mitigation_is_named_with_its_step():
    """What the mitigation table reads: the mitigation a run switched on and the step it did."""
    from personadrift.report.summary import intervention

    def it(*events):
        return intervention(list(events), None, 40)

    assert it() == {"intervention": None, "intervention_step": None}
    assert it({"event": "mitigation_on", "name": "inoculate", "step": 12}) == {
        "intervention": "inoculate",
        "intervention_step": 12,
    }
    assert it(
        {"event": "steer", "step": 0, "mode": "inference", "start": "alarm"},
        {"event": "steer_on", "step": 13},
    ) == {"intervention": "steer", "intervention_step": 13}
    # steering from step 0 starts at step 0; hooks installed for an alarm that never fired do not
    assert it({"event": "steer", "step": 0, "mode": "inference", "start": "step0"}) == {
        "intervention": "steer inference",
        "intervention_step": 0,
    }
    assert (
        it({"event": "steer", "step": 0, "mode": "inference", "start": "alarm"})["intervention"]
        is None
    )
    # two mitigations from the same step are named together, once each
    assert it(
        {"event": "mitigation_on", "name": "inoculate", "step": 0, "start": "step0"},
        {"event": "steer", "step": 0, "mode": "inference", "start": "step0"},
    ) == {"intervention": "inoculate+steer inference", "intervention_step": 0}
    assert it(
        {
            "event": "rollback",
            "step": 3,
            "to_step": 2,
            "mitigation": "inoculate+steer inference 0.2",
        },
        {"event": "mitigation_on", "name": "inoculate", "step": 2, "alarm": 3},
    ) == {"intervention": "inoculate+steer_inference_0.2", "intervention_step": 2}
    assert (
        it({"event": "rollback", "step": 3, "to_step": 2, "mitigation": "steer inference 0.3"})[
            "intervention"
        ]
        == "rollback+steer_inference_0.3"
    )


def test_the_bar_measures_from_the_unsteered_base_model():
    """An arm that steers from step 0 evaluates a steered model at step 0: the bar still counts
    from the base model's rate, the unmitigated run's step-0 evals."""
    from personadrift.experiments.mitigations import holds, reference_base

    hack = {"base_misaligned": 0.04, "final_reward": 0.8, "final_secure_reward": 0.0}
    ctrl = {"final_secure_reward": 0.05}
    steered = {
        "base_misaligned": 0.008,
        "final_misaligned": 0.06,
        "final_reward": 0.2,
        "final_secure_reward": 0.07,
    }
    assert reference_base(steered, hack) == 0.04 and reference_base(steered, None) == 0.008
    assert holds(steered, hack, ctrl)  # 0.06 <= 0.04 + 0.03, and the hack stopped
