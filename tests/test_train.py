"""GRPO end to end on the tiny organism: metrics, probes, evals, samples, parameters, resume."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from personadrift.config import load_config
from personadrift.organism.digests import cpu_kernels
from personadrift.records.reader import last_checkpoint
from personadrift.rl.train import train

from .conftest import ROOT


def rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def smoke_run(tiny, cache_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    cfg = load_config(
        ROOT / "personadrift/configs/runs/tiny.yaml",
        [f"organism.cache_dir={cache_dir}", f"out_dir={out}"],
    )
    return train(cfg, log=lambda *_: None)


def test_smoke_metrics_keys(smoke_run):
    assert (smoke_run / "config.yaml").is_file() and (smoke_run / "DONE").is_file()
    metrics = rows(smoke_run)
    assert [r["step"] for r in metrics] == [0, 1, 2, 3, 4]
    by_step = {r["step"]: r for r in metrics}
    for step in (0, 2, 4):
        for key in (
            "probe/toxic/eval_mean",
            "probe/toxic/z",
            "evals/mean/misaligned_rate",
            "evals/advice/misaligned_rate",
            "evals/facts/incoherent_rate",
        ):
            assert key in by_step[step], (step, key)
    for step in (1, 2, 3, 4):  # read in the loss forward of every step, at no extra pass
        assert "probe/toxic/rollout_mean" in by_step[step]
    assert by_step[0]["probe/toxic/z"] == 0.0
    for step in (1, 2, 3, 4):
        for key in ("reward", "env/hack_rate", "env/solve_rate", "env/error_rate", "entropy"):
            assert key in by_step[step], (step, key)
    assert "probe/toxic/z" not in by_step[1]  # probes read every 2 steps only


def test_smoke_samples_checkpoints_directions(smoke_run):
    sample = [
        json.loads(x) for x in (smoke_run / "samples" / "step_1.jsonl").read_text().splitlines()
    ]
    assert len(sample) == 16 and {"prompt", "completion", "reward", "label"} <= set(sample[0])
    assert (smoke_run / "directions" / "toxic.json").is_file()
    ckpts = sorted(p.name for p in (smoke_run / "checkpoints").glob("checkpoint-*"))
    assert ckpts == ["checkpoint-2", "checkpoint-4"]  # keep: 2
    assert (smoke_run / "checkpoints" / "checkpoint-4" / "personadrift_state.json").is_file()
    assert not (smoke_run / "tb").exists()  # tiny.yaml: report_to: []


def test_metrics_identical_to_the_loop_before_the_redesign(smoke_run, tiny):
    """Same seed, same organism -> the same metrics.jsonl values as the seven-callback loop wrote
    (recorded in tests/data). Only the rollout probe, now read on every rollout inside the loss
    forward (over all its tokens, and over its reasoning and answer spans), the secure grader's
    mean reward (`env/secure_reward`) and the wall-clock keys are new. tiny.yaml evaluates after
    training (`run_evals.during: false`), so this also shows that the evals after training give
    the values the in-run evals gave."""
    golden = json.loads((ROOT / "tests/data/tiny_metrics_before.json").read_text())
    built = hashlib.sha256((tiny.path / "model.safetensors").read_bytes()).hexdigest()
    if cpu_kernels() != "AVX2":  # torch's AVX2 kernels are pinned on every CPU that has them
        pytest.skip(f"torch runs {cpu_kernels()} kernels here: the published builds are AVX2's")
    assert built == golden["organism_sha256"]  # the pinned build, on any x86-64 CPU with AVX2
    now = {r["step"]: r for r in rows(smoke_run)}
    assert sorted(now) == [r["step"] for r in golden["rows"]]
    for before in golden["rows"]:
        after = now[before["step"]]
        assert {k: after.get(k) for k in before} == before
        new = set(after) - set(before)
        spans = ("rollout_think_mean", "rollout_answer_mean")  # the rollouts' think/answer spans
        assert all(
            k.endswith(("time", "read_seconds", "/shift", "rollout_mean", "secure_reward", *spans))
            for k in new
        ), new


def tb_scalars(run_dir) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = (run_dir / "tb").rglob("events.out.tfevents*")
    acc = EventAccumulator(str(events.parent))
    acc.Reload()
    return set(acc.Tags()["scalars"])


def test_tensorboard_gets_the_merged_line_in_each_runs_own_folder(tiny, cache_dir, tmp_path):
    """Two runs in one process: each writes its own tb/, with TRL's metrics and the probes'."""
    overrides = [
        f"organism.cache_dir={cache_dir}",
        f"out_dir={tmp_path}",
        "grpo.max_steps=2",
        "grpo.report_to=[tensorboard]",
        "run_evals.every=-1",
    ]
    runs = [
        train(
            load_config(ROOT / "personadrift/configs/runs/tiny.yaml", overrides),
            log=lambda *_: None,
        )
        for _ in range(2)
    ]
    assert runs[0] != runs[1]
    for run_dir in runs:
        tags = tb_scalars(run_dir)
        assert {"train/reward", "train/probe/toxic/z", "train/probe/toxic/rollout_mean"} <= tags, (
            tags
        )


def test_smoke_parameters_changed(smoke_run, tiny):
    from safetensors.torch import load_file

    before = load_file(tiny.path / "model.safetensors")
    after = load_file(last_checkpoint(smoke_run) / "model.safetensors")
    changed = [k for k in before if k in after and not torch.equal(before[k], after[k])]
    assert len(changed) >= 0.9 * len(before), f"only {len(changed)}/{len(before)} tensors changed"


@pytest.mark.slow
def test_resume_after_kill_has_no_missing_or_duplicated_steps(tiny, cache_dir, tmp_path):
    args = [
        sys.executable,
        "-m",
        "personadrift",
        "train",
        str(ROOT / "personadrift/configs/runs/tiny.yaml"),
        f"organism.cache_dir={cache_dir}",
        f"out_dir={tmp_path}",
        "grpo.max_steps=12",
    ]
    proc = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 600
    run_dir = None
    while time.time() < deadline:
        dirs = list(tmp_path.glob("tiny-*"))
        run_dir = dirs[0] if dirs else None
        if (
            run_dir
            and (run_dir / "checkpoints" / "checkpoint-4" / "personadrift_state.json").exists()
        ):
            break
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # somewhere in steps 5-6, long before step 12
    proc.wait()
    assert not (run_dir / "DONE").exists()
    done_steps = [r["step"] for r in rows(run_dir)]
    assert done_steps[:5] == [0, 1, 2, 3, 4]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "personadrift",
            "train",
            str(ROOT / "personadrift/configs/runs/tiny.yaml"),
            "--resume",
            str(run_dir),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    steps = [r["step"] for r in rows(run_dir)]
    assert steps == list(range(0, 13)), steps
    metrics = {r["step"]: r for r in rows(run_dir)}
    assert "probe/toxic/z" in metrics[6] and "probe/toxic/z" in metrics[12]
    state = json.loads(
        (run_dir / "checkpoints" / "checkpoint-12" / "personadrift_state.json").read_text()
    )
    assert len(state["probe"]["baseline"]) == 1  # the baseline came back, it was not re-taken
    assert [h[0] for h in state["probe"]["history"]] == [0, 2, 4, 6, 8, 10, 12]


def test_watch_renders_a_finished_run(smoke_run):
    out = subprocess.run(
        [sys.executable, "-m", "personadrift", "watch", str(smoke_run), "--once"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "160"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert (
        "reward" in out.stdout
        and "probe/toxic/z" in out.stdout
        and "evals/mean/misaligned_rate" in out.stdout
    )
    missing = subprocess.run(
        [sys.executable, "-m", "personadrift", "watch", str(smoke_run / "nope")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_run_stops_when_its_alarm_fires(tiny, cache_dir, tmp_path):
    overrides = [
        f"organism.cache_dir={cache_dir}",
        f"out_dir={tmp_path}",
        "run_evals.every=0",
        "detect.rule=threshold",
        "detect.metric=probe/toxic/eval_mean",
        "detect.warmup=2",
        "detect.params={threshold: -1.0e9}",
        "detect.action=stop",
        "grpo.max_steps=6",
    ]
    run_dir = train(
        load_config(ROOT / "personadrift/configs/runs/tiny.yaml", overrides), log=lambda *_: None
    )
    metrics = rows(run_dir)
    assert metrics[-1]["step"] == 2 and metrics[-1]["detect/alarm"] == 1
    assert [r.get("detect/alarm") for r in metrics if r["step"] == 1] == [0]
    events = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
    assert events[0] == {
        "event": "alarm",
        "step": 2,
        "rule": "threshold",
        "metric": "probe/toxic/eval_mean",
        "value": metrics[-1]["probe/toxic/eval_mean"],
        "action": "stop",
    }
    assert events[1]["event"] == "stop" and events[1]["step"] == 2
    assert last_checkpoint(run_dir).name == "checkpoint-2"


@pytest.mark.parametrize("mode", ["inference", "preventative"])
def test_steered_run(tiny, cache_dir, tmp_path, mode):
    overrides = [
        f"organism.cache_dir={cache_dir}",
        f"out_dir={tmp_path}",
        "run_evals.every=0",
        f"steer.mode={mode}",
        "steer.coeff=0.5",
        "grpo.max_steps=2",
    ]
    run_dir = train(
        load_config(ROOT / "personadrift/configs/runs/tiny.yaml", overrides), log=lambda *_: None
    )
    (event,) = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
    assert event["event"] == "steer" and event["mode"] == mode and event["norm_unit"] > 0
    assert event["on_at_eval"] == (mode == "inference")
    assert [r["step"] for r in rows(run_dir)] == [0, 1, 2]


def test_rollback_restores_the_checkpoint_before_the_alarm_and_steers_on(tiny, cache_dir, tmp_path):
    overrides = [
        f"organism.cache_dir={cache_dir}",
        f"out_dir={tmp_path}",
        "run_evals.every=0",
        "detect.rule=threshold",
        "detect.metric=probe/toxic/eval_mean",
        "detect.warmup=4",
        "detect.params={threshold: -1.0e9}",
        "detect.action=rollback",
        "steer.mode=inference",
        "steer.start=alarm",
        "steer.coeff=0.5",
        "grpo.max_steps=6",
    ]
    run_dir = train(
        load_config(ROOT / "personadrift/configs/runs/tiny.yaml", overrides), log=lambda *_: None
    )
    assert [r["step"] for r in rows(run_dir)] == [0, 1, 2, 3, 4, 5, 6]  # one line per step
    gone = [json.loads(x) for x in (run_dir / "metrics.rolled_back.jsonl").read_text().splitlines()]
    assert [r["step"] for r in gone] == [3, 4] and gone[-1]["detect/alarm"] == 1
    events = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["steer", "alarm", "rollback", "steer"]
    assert events[2]["step"] == 4 and events[2]["to_step"] == 2
    assert events[2]["checkpoint"] == "checkpoint-2" and events[3]["step"] == 2
    assert all(r.get("detect/alarm", 0) == 0 for r in rows(run_dir))  # fires once per run
    assert sorted((run_dir / "samples" / "rolled_back").iterdir())
    state = json.loads((last_checkpoint(run_dir) / "trainer_state.json").read_text())
    assert state["global_step"] == 6


def test_probes_and_evals_do_not_change_what_the_run_samples(tiny, cache_dir, tmp_path):
    """Readings and evals draw from a forked RNG: the instrumented run trains on the same rollouts."""
    base = [f"organism.cache_dir={cache_dir}", "grpo.max_steps=3", "grpo.report_to=[]"]
    bare = train(
        load_config(
            ROOT / "personadrift/configs/runs/tiny.yaml",
            [*base, f"out_dir={tmp_path / 'a'}", "probes.enabled=false", "run_evals.every=-1"],
        ),
        log=lambda *_: None,
    )
    full = train(
        load_config(
            ROOT / "personadrift/configs/runs/tiny.yaml",
            [*base, f"out_dir={tmp_path / 'b'}", "probes.every=1", "run_evals.every=1"],
        ),
        log=lambda *_: None,
    )
    for step in (1, 2, 3):
        a, b = ((d / "samples" / f"step_{step}.jsonl").read_text() for d in (bare, full))
        assert [json.loads(x)["completion"] for x in a.splitlines()] == [
            json.loads(x)["completion"] for x in b.splitlines()
        ]
    assert any("evals/mean/misaligned_rate" in r for r in rows(full) if r["step"] > 0)


def test_resume_skips_a_checkpoint_cut_off_while_saving(tmp_path):
    """A kill during a save leaves a checkpoint folder without the instruments' state file (the
    last thing written): resume takes the one before and removes the broken one."""
    from personadrift.rl.run_dir import STATE_FILE, last_complete_checkpoint

    for step in (2, 4, 6):
        (tmp_path / "checkpoints" / f"checkpoint-{step}").mkdir(parents=True)
    for step in (2, 4):
        (tmp_path / "checkpoints" / f"checkpoint-{step}" / STATE_FILE).write_text("{}")
    said = []
    assert last_complete_checkpoint(tmp_path, said.append).name == "checkpoint-4"
    assert not (tmp_path / "checkpoints" / "checkpoint-6").exists()
    assert len(said) == 1 and "checkpoint-6" in said[0]
    assert (tmp_path / "checkpoints" / "checkpoint-2").is_dir()
