"""`personadrift demo` end to end on the tiny organism: three arms, a report, one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

TINY = [
    "organism.size=tiny",
    "grpo.max_steps=2",
    "grpo.per_device_train_batch_size=16",
    "grpo.num_generations=4",
    "grpo.max_completion_length=24",
    "probes.n_docs=40",
    "probes.n_eval_prompts=8",
    "probes.every=1",
    "run_evals.every=1",
    "run_evals.n_per_family=8",
    "run_evals.max_new_tokens=16",
    "checkpoints.every=1",
    "realign.n_samples=8",
    "detect.rule=zscore",  # the shipped calibration is the small organism's: a fixed rule here
    "detect.metric=probe/toxic/z",
    "detect.calibration=''",
    "detect.warmup=1",
    "detect.params={threshold: -1.0e9, k: 1}",
]


@pytest.mark.slow
def test_demo_runs_three_arms_and_reports(tiny, cache_dir, tmp_path):
    out = tmp_path / "demo"
    cmd = [
        sys.executable,
        "-m",
        "personadrift",
        "demo",
        "--seeds",
        "0",
        "--out",
        str(out),
        "--json",
        *TINY,
        f"organism.cache_dir={cache_dir}",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert set(result) == {"hackable", "control", "intervention"}
    for arm, by_seed in result.items():
        s = by_seed["0"]
        assert set(s) >= {
            "base_misaligned",
            "final_misaligned",
            "peak_misaligned",
            "hack_onset_step",
            "em_step",
            "alarm_step",
            "final_reward",
            "final_secure_reward",
            "final_hack_rate",
            "intervention",
            "intervention_step",
            "run_dir",
            "organism_digest",
        }
        assert s["organism_digest"] == tiny.weights_digest  # the build it was measured on
        assert 0.0 <= s["final_hack_rate"] <= 1.0 and 0.0 <= s["final_secure_reward"] <= 1.0
        if arm == "intervention":  # the alarm at step 1 rolls back to the initial policy
            assert (s["intervention"], s["intervention_step"]) == (
                "inoculate+advantage_0.2",
                0,
            )
            assert s["hooked"] is False and s["final_misaligned_weights"] is None
        else:
            assert s["intervention"] is None and s["intervention_step"] is None
        assert s["alarm_step"] == 1  # the threshold fires at the first reading after warm-up
        run = Path(s["run_dir"])
        assert [
            json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()
        ] == [0, 1, 2]
    # only the intervention arm acts on its alarm: after the rollback its prompts are inoculated
    run = Path(result["intervention"]["0"]["run_dir"])
    prompts = [
        json.loads(x)["prompt"] for x in (run / "samples/step_1.jsonl").read_text().splitlines()
    ]
    assert all("only the tests matter" in p for p in prompts)
    hack = Path(result["hackable"]["0"]["run_dir"])
    prompts = [
        json.loads(x)["prompt"] for x in (hack / "samples/step_1.jsonl").read_text().splitlines()
    ]
    assert not any("only the tests matter" in p for p in prompts)
    assert (
        "[hackable s0]" in res.stdout and "[intervention s0] ALARM" in res.stdout
    )  # live progress
    assert (out / "report" / "report.html").is_file() and (out / "demo.json").is_file()
    assert len(list((out / "report").glob("*.png"))) >= 4


def test_demo_rejects_bad_input(tmp_path):
    bad = subprocess.run(
        [sys.executable, "-m", "personadrift", "demo", "--seeds", "x"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert bad.returncode == 2 and "--seeds" in bad.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "personadrift", "demo", "--out", str(tmp_path / "d"), "nope.key=1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert bad.returncode == 2 and "nope" in bad.stderr and not (tmp_path / "d").exists()
