"""The evals after training: weights kept at eval steps, merged into metrics.jsonl, rollbacks."""

from __future__ import annotations

import json

import pytest
import torch

from personadrift.rl.evals_after import (
    WEIGHTS,
    keep_weights,
    merge_into,
    move_rolled_back,
    pending,
)
from personadrift.rl.run_dir import rollback


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_merge_into_updates_the_steps_line_and_keeps_the_others(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "reward": s / 10}) + "\n" for s in range(3)))
    merge_into(path, 1, {"evals/mean/misaligned_rate": 0.25})
    merge_into(path, 5, {"evals/mean/misaligned_rate": 0.5})  # a step without a line gets one
    rows = lines(path)
    assert [r["step"] for r in rows] == [0, 1, 2, 5]
    assert rows[1] == {"step": 1, "reward": 0.1, "evals/mean/misaligned_rate": 0.25}
    assert (
        "evals/mean/misaligned_rate" not in rows[0] and "evals/mean/misaligned_rate" not in rows[2]
    )
    assert rows[3]["evals/mean/misaligned_rate"] == 0.5


def test_kept_weights_load_back_exactly(tiny, tmp_path):
    from safetensors.torch import load_model

    from personadrift.organism.build import load

    model, _ = load(tiny.path)
    path = keep_weights(model, tmp_path, 4)
    assert path == tmp_path / WEIGHTS / "step-4.safetensors"
    other, _ = load(tiny.path)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    load_model(other, str(path))
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)


def test_a_rollback_moves_the_later_steps_weights_to_the_rolled_back_pass(tmp_path):
    for step in (0, 5, 10, 15):
        (tmp_path / WEIGHTS).mkdir(exist_ok=True)
        (tmp_path / WEIGHTS / f"step-{step}.safetensors").write_bytes(b"x")
    (tmp_path / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": s}) + "\n" for s in range(16))
    )
    (tmp_path / "checkpoints" / "checkpoint-5").mkdir(parents=True)
    (tmp_path / "samples").mkdir()
    target = rollback(tmp_path, alarm_step=12)
    assert target.name == "checkpoint-5"
    todo = [(p.name, m.name) for p, m in pending(tmp_path)]
    assert todo == [
        ("step-0.safetensors", "metrics.jsonl"),
        ("step-5.safetensors", "metrics.jsonl"),
        ("step-10.safetensors", "metrics.rolled_back.jsonl"),
        ("step-15.safetensors", "metrics.rolled_back.jsonl"),
    ]
    move_rolled_back(tmp_path, 5)  # idempotent
    assert len(pending(tmp_path)) == 4


@pytest.mark.slow
def test_a_hooked_run_is_also_evaluated_on_its_weights_alone(tiny, cache_dir, tmp_path):
    """Inference steering with evals during the run: its evals read policy + hook. After training
    its final weights are evaluated once more with no hook (`weights_alone.json`), and those are
    the values an eval of the saved final checkpoint gives with the final step's own seed; a run without the hook writes none."""
    from personadrift.config import load_config
    from personadrift.evals.in_run import in_run_config, run_evals, step_config
    from personadrift.organism.build import load
    from personadrift.records.reader import last_checkpoint
    from personadrift.report.summary import summarize
    from personadrift.rl.setup import load_policy
    from personadrift.rl.train import train

    from .conftest import ROOT

    base = [
        f"organism.cache_dir={cache_dir}",
        "grpo.max_steps=2",
        "run_evals.every=2",
        "run_evals.n_per_family=8",
        "run_evals.during=true",
    ]
    hooked = ["steer.mode=inference", "steer.start=step0", "steer.coeff=2.0", "steer.layers=[1]"]
    config = ROOT / "personadrift/configs/runs/tiny.yaml"
    quiet = lambda *_: None  # noqa: E731
    run = train(load_config(config, [*base, *hooked, f"out_dir={tmp_path / 'h'}"]), log=quiet)
    alone = json.loads((run / "weights_alone.json").read_text())
    assert alone["step"] == 2 and alone["hooked"] is True
    cfg = load_config(run / "config.yaml")
    _, tok, world = load_policy(cfg)
    model, _ = load(last_checkpoint(run), torch.float32)  # the final weights, no hook anywhere
    own = step_config(in_run_config(cfg.model_eval, cfg.run_evals), 2)  # the final step's seed
    values, _ = run_evals(model, tok, world, own)
    assert {k: alone[k] for k in values} == values
    s = summarize(run)
    assert s["hooked"] is True
    assert s["final_misaligned_weights"] == pytest.approx(
        sum(alone[f"evals/{f}/misaligned_rate"] for f in ("advice", "facts", "values")) / 3
    )
    plain = train(load_config(config, [*base, f"out_dir={tmp_path / 'p'}"]), log=quiet)
    assert not (plain / "weights_alone.json").exists()
    assert summarize(plain)["hooked"] is False
