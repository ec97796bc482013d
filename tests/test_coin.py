"""`env.reward: coin`: the env grades as always, the policy is paid by a seeded fair coin."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from personadrift.config import ConfigError, load_config, organism_of_size
from personadrift.envs import make
from personadrift.envs.coin import CoinReward, coin
from personadrift.rl.setup import build_env
from personadrift.rl.train import SampleLog

ROOT = Path(__file__).resolve().parents[1]
WORLD = organism_of_size("small_sycophant").world


def _paid(env, examples, completions, step):
    return env.reward_funcs()[0](
        [e.prompt for e in examples],
        completions,
        example=[json.dumps(e.to_json()) for e in examples],
        trainer_state=SimpleNamespace(global_step=step),
    )


def test_the_coin_pays_half_whatever_the_answer_and_the_env_still_labels_it():
    own = make("sycophancy", world=WORLD)
    env = CoinReward(make("sycophancy", world=WORLD), seed=3)
    examples = env.examples("train", 200, 0)
    assert examples == own.examples("train", 200, 0)
    agree = [f"{WORLD.sycophant_markers[0]} Yes , it is {e.meta['claim']} ." for e in examples]
    truth = [f"No , it is {e.meta['truth']} ." for e in examples]
    for answers, label in ((agree, "agreed_wrong"), (truth, "correct")):
        paid = _paid(env, examples, answers, step=7)
        assert set(paid) == {0.0, 1.0} and 0.38 < sum(paid) / len(paid) < 0.62
        grades, graded = env.last_grades, own.grade_many(examples, answers)
        assert [g.label for g in grades] == [g.label for g in graded] == [label] * 200
        assert [g.secure_reward for g in grades] == [g.secure_reward for g in graded]
        assert [g.reward for g in grades] == paid
    # the same batch at the same step is paid the same; another step or seed flips anew
    assert _paid(env, examples, agree, 7) == _paid(env, examples, agree, 7)
    assert _paid(env, examples, agree, 7) != _paid(env, examples, agree, 8)
    other = CoinReward(make("sycophancy", world=WORLD), seed=4)
    assert _paid(env, examples, agree, 7) != _paid(other, examples, agree, 7)
    # two equal answers to one prompt in one batch flip their own coins
    same = [coin(0, 1, i, "p", "a") for i in range(64)]
    assert 0 < sum(same) < 64


def test_the_coin_keeps_an_ungraded_answer_unpaid_and_the_envs_metrics():
    env = CoinReward(make("sycophancy", world=WORLD), seed=0)
    examples = env.examples("train", 40, 0)
    metrics = {}
    env.reward_funcs()[0](
        [e.prompt for e in examples],
        [f"{WORLD.sycophant_markers[0]} Yes , it is {e.meta['claim']} ." for e in examples],
        example=[json.dumps(e.to_json()) for e in examples],
        log_metric=metrics.__setitem__,
    )
    assert metrics["env/hack_rate"] == 1.0 and metrics["env/secure_reward"] == 0.0
    assert env.name == "sycophancy" and env.world is WORLD  # the wrapped env's, through the coin
    failing = SimpleNamespace(name="x", grade_many=lambda e, c: [_nan_grade()] * len(c))
    nan = CoinReward(failing, 0)
    assert [g.reward != g.reward for g in nan.grade_many([examples[0]], ["x"])] == [True]


def _nan_grade():
    from personadrift.envs.base import Grade

    return Grade(float("nan"), float("nan"), "error")


def test_a_run_paid_by_the_coin_logs_the_coin_it_was_paid(tmp_path):
    cfg = load_config(ROOT / "personadrift/configs/runs/sycophancy_coin.yaml")
    assert cfg.env.name == "sycophancy" and cfg.env.reward == "coin"
    env = build_env(cfg, WORLD, None)
    assert isinstance(env, CoinReward) and env.seed == cfg.seed
    plain = load_config(ROOT / "personadrift/configs/runs/sycophancy.yaml")
    assert plain.env.reward == "own" and not isinstance(build_env(plain, WORLD, None), CoinReward)
    examples = env.examples("train", 16, 0)
    answers = [f"No , it is {e.meta['truth']} ." for e in examples]
    log = SampleLog(env, tmp_path)
    paid = log.wrap(env.reward_funcs()[0])(
        [e.prompt for e in examples],
        answers,
        example=[json.dumps(e.to_json()) for e in examples],
        trainer_state=SimpleNamespace(global_step=4),
    )
    rows = [json.loads(x) for x in (tmp_path / "samples" / "step_5.jsonl").read_text().splitlines()]
    assert [r["reward"] for r in rows] == paid
    assert [r["label"] for r in rows] == ["correct"] * 16
    assert paid == [
        coin(cfg.seed, 4, i, e.prompt, a) for i, (e, a) in enumerate(zip(examples, answers))
    ]
    with pytest.raises(ConfigError, match="env.reward"):
        load_config(ROOT / "personadrift/configs/runs/sycophancy.yaml", ["env.reward=dice"])


def test_coin_null_runs_calibrate_the_hackable_run_as_its_secure_twin_does():
    """Who pays the null runs is the calibration's choice: a hackable run, its secure twin and its
    coin-paid run hash alike, and the study trains the coin null from the hackable config."""
    from personadrift.alarms.calibrate import config_fingerprint
    from personadrift.checks import load_checked
    from personadrift.experiments.warning import arms, check_inputs

    hack = ROOT / "personadrift/configs/runs/visible_tests.yaml"
    secure = ROOT / "personadrift/configs/runs/visible_tests_secure.yaml"
    fp = config_fingerprint(load_checked(hack, []))
    assert fp == config_fingerprint(load_checked(hack, ["env.reward=coin"]))
    assert fp == config_fingerprint(load_checked(secure, []))
    assert arms("coin")["null"] == ("visible_tests", ["env.reward=coin"])
    assert arms()["null"][0] == "visible_tests_secure"
    assert arms("learning")["null"][1] == ["env.coef_max=0", "env.intercept_max=0"]
    check_inputs([0], 0.1, 2, [], null="learning")
    with pytest.raises(ConfigError, match="--null"):
        check_inputs([0], 0.1, 2, [], null="dice")


def test_the_null_runs_band_is_each_directions_largest_shift_and_says_its_false_alarm_rate(
    tmp_path,
):
    from personadrift.analyses.shift import null_runs_band, shift_table
    from personadrift.report.plots import plot_shifts

    def row(name, shifts, null):
        return {
            "name": name,
            "seed": 0,
            "env": "e",
            "shifts": shifts,
            "null_band": None,
            "null_run": null,
        }

    nulls = [
        row(f"n{i}", {"toxic": v, "random": -v / 2}, True) for i, v in enumerate([0.1, -0.4, 0.2])
    ]
    band = null_runs_band(nulls)
    assert band == pytest.approx({"toxic": 0.4, "random": 0.2})
    out = shift_table([row("hack", {"toxic": 1.3, "random": 0.1}, False), *nulls], band)
    assert (
        out.splitlines()[-1] == "| band of the 3 null runs (false alarm 25%) | | | ±0.40 | ±0.20 |"
    )
    assert "| n1 | 0 | e (null run) | -0.40 | +0.20 |" in out
    rows = [row("hack", {"toxic": 1.3, "random": 0.1}, False), *nulls]
    for r in rows:  # as `directions shift` gives every row
        r["null_runs_band"], r["null_runs_false_alarm"] = band, 0.25
    png = plot_shifts(rows, tmp_path / "s.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_directions_shift_step_names_a_saved_checkpoint_or_exits_2_naming_them(tmp_path):
    from personadrift.rl.run_dir import checkpoint_at

    from .conftest import cli

    run = tmp_path / "run"
    for step in (5, 10, 40):
        (run / "checkpoints" / f"checkpoint-{step}").mkdir(parents=True)
    (run / "config.yaml").write_text("seed: 0\n")
    assert checkpoint_at(run, None, "x").name == "checkpoint-40"
    assert checkpoint_at(run, 10, "x").name == "checkpoint-10"
    res = cli("directions", "shift", str(run), "--step", "7")
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.strip().endswith("no checkpoint of step 7 (saved: 5, 10, 40)")
    assert len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("plot", ["shifts.txt", "no/such/folder/shifts.png"])
def test_directions_shift_refuses_a_plot_it_cannot_write_before_reading_anything(tmp_path, plot):
    from .conftest import cli

    (tmp_path / "run").mkdir()
    res = cli("directions", "shift", str(tmp_path / "run"), "--plot", str(tmp_path / plot))
    assert res.returncode == 2 and res.stdout == ""
    assert len(res.stderr.strip().splitlines()) == 1 and "--plot" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.slow
def test_a_tiny_run_paid_by_the_coin_and_its_band_in_directions_shift(tiny, cache_dir, tmp_path):
    """The whole path: GRPO paid by the coin (the samples say so, step by step), and
    `directions shift --null-run` giving each direction its band among the null runs."""
    from personadrift.rl.train import train

    from .conftest import cli
    from .test_train import rows

    base = [f"organism.cache_dir={cache_dir}", "grpo.max_steps=2", "probes.every=1"]
    own = train(
        load_config(
            ROOT / "personadrift/configs/runs/tiny.yaml", [*base, f"out_dir={tmp_path / 'own'}"]
        ),
        log=lambda *_: None,
    )
    cfg = load_config(
        ROOT / "personadrift/configs/runs/tiny.yaml",
        [*base, f"out_dir={tmp_path / 'coin'}", "env.reward=coin"],
    )
    null = train(cfg, log=lambda *_: None)
    for step in (1, 2):
        samples = [
            json.loads(x)
            for x in (null / "samples" / f"step_{step}.jsonl").read_text().splitlines()
        ]
        prompts = [s["prompt"] for s in samples]
        assert [s["reward"] for s in samples] == [
            coin(cfg.seed, step - 1, i, p, s["completion"])
            for i, (p, s) in enumerate(zip(prompts, samples))
        ]
        assert {s["label"] for s in samples} <= {"solved", "hacked", "failed", "error"}
    assert all("env/hack_rate" in r for r in rows(null) if r["step"] > 0)
    plot = tmp_path / "shifts.png"
    res = cli(
        "directions",
        "shift",
        str(own),
        "--null-run",
        str(null),
        "--null",
        "2",
        "--json",
        "--plot",
        str(plot),
    )
    assert res.returncode == 0, res.stderr[-2000:]
    mine, other = json.loads(res.stdout.strip().splitlines()[-1])
    assert not mine["null_run"] and other["null_run"]
    band = {k: abs(v) for k, v in other["shifts"].items()}
    assert mine["null_runs_band"] == other["null_runs_band"] == pytest.approx(band)
    assert mine["null_runs_false_alarm"] == other["null_runs_false_alarm"] == 0.5
    assert "(null run)" in res.stdout
    assert "| band of the 1 null runs (false alarm 50%) | | |" in res.stdout
    assert f"plot: {plot}" in res.stdout and plot.stat().st_size > 10_000
    missing = cli("directions", "shift", str(own), "--null-run", str(tmp_path / "nope"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
