"""The training-forward mitigations (`ablate`, `preventative`) inside real runs: their hooks come
off at the end of every pass (the end of the run, a rollback, a resume), and nothing is hooked
when the run's weights are evaluated."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest

from personadrift.config import load_config
from personadrift.rl import train as train_module
from personadrift.rl.train import train

from .conftest import ROOT
from .test_probes import all_hooks

TINY = ROOT / "personadrift/configs/runs/tiny.yaml"


@pytest.fixture
def hooks_seen(monkeypatch):
    """Every steering context the run opens: (model, hooks before it, hooks while on, hooks after)."""
    seen = []
    real = train_module.steer

    @contextmanager
    def counted(model, *args, **kwargs):
        entry = {"model": model, "before": all_hooks(model)}
        seen.append(entry)
        with real(model, *args, **kwargs):
            entry["during"] = all_hooks(model)
            yield
        entry["after"] = all_hooks(model)

    monkeypatch.setattr(train_module, "steer", counted)
    return seen


def _events(run_dir):
    return [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("mode", ["ablate", "preventative"])
def test_hooks_come_off_at_the_rollback_and_the_end_and_nothing_is_hooked_at_evaluation(
    tiny, cache_dir, tmp_path, hooks_seen, mode
):
    overrides = [
        f"organism.cache_dir={cache_dir}",
        f"out_dir={tmp_path}",
        "run_evals.every=2",
        "detect.rule=threshold",
        "detect.metric=probe/toxic/eval_mean",
        "detect.warmup=2",
        "detect.params={threshold: -1.0e9}",
        "detect.action=rollback",
        f"steer.mode={mode}",
        "steer.start=alarm",
        "steer.coeff=0.5",
        "grpo.max_steps=4",
    ]
    run_dir = train(load_config(TINY, overrides), log=lambda *_: None)
    events = _events(run_dir)
    assert [e["event"] for e in events][:3] == ["steer", "alarm", "rollback"]
    assert all(e["on_at_eval"] is False for e in events if e["event"] == "steer")
    assert len(hooks_seen) == 2  # the pass before the rollback and the one after it
    for entry in hooks_seen:
        assert entry["during"] > entry["before"] and entry["after"] == entry["before"]
    assert not (run_dir / "weights_alone.json").exists()  # its evals already read the weights alone
    assert (run_dir / "DONE").is_file()


def test_a_resumed_run_puts_its_hooks_on_again_and_takes_them_off(
    tiny, cache_dir, tmp_path, hooks_seen
):
    overrides = [
        f"organism.cache_dir={cache_dir}",
        f"out_dir={tmp_path}",
        "run_evals.every=-1",
        "steer.mode=ablate",
        "steer.start=step0",
        "checkpoints.every=1",
    ]
    run_dir = train(load_config(TINY, [*overrides, "grpo.max_steps=2"]), log=lambda *_: None)
    (run_dir / "DONE").unlink()  # as if killed after its second checkpoint
    train(load_config(TINY, [*overrides, "grpo.max_steps=3"]), resume=run_dir, log=lambda *_: None)
    assert len(hooks_seen) == 2
    for entry in hooks_seen:
        assert entry["during"] > entry["before"] and entry["after"] == entry["before"]
    steps = [json.loads(x)["step"] for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 3]
