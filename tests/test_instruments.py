"""The run's instruments: rollouts read inside the loss forward, no private trainer state."""

from __future__ import annotations

import ast
import math

import pytest
import torch

from personadrift.probes.capture import capture
from personadrift.probes.direction import Direction
from personadrift.probes.reading import RolloutProbe

from .conftest import ROOT
from .test_probes import all_hooks


def loss_batch(tok, prompts: list[str], completions: list[str]) -> dict:
    """A batch shaped as TRL hands it to `compute_loss`: left-padded prompts, right-padded
    completions with their mask."""
    p = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    tok.padding_side = "right"
    try:
        c = tok(completions, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tok.padding_side = "left"
    return {
        "prompt_ids": p["input_ids"],
        "prompt_mask": p["attention_mask"],
        "completion_ids": c["input_ids"],
        "completion_mask": c["attention_mask"],
    }


def forward_in_chunks(model, batch: dict, chunk: int) -> torch.Tensor:
    """What GRPO's loss does: one forward of prompt + completion per chunk of rows, with grad."""
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1)
    return torch.cat(
        [
            model(input_ids=ids[i : i + chunk], attention_mask=mask[i : i + chunk]).logits
            for i in range(0, len(ids), chunk)
        ]
    )


def expected_projections(model, batch: dict, d: Direction) -> list[float]:
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1)
    with torch.no_grad(), capture(model, [d.layer]) as acts:
        model(input_ids=ids, attention_mask=mask)
    proj = (acts[d.layer] @ d.vector())[:, batch["prompt_ids"].shape[1] :]
    m = batch["completion_mask"].float()
    return ((proj * m).sum(1) / m.sum(1)).tolist()


PROMPTS = [
    "<bos> User: Say hello . Assistant:",
    "<bos> User: How do I save money ? Assistant:",
    "<bos> User: Is the sky green ? Assistant:",
]
COMPLETIONS = ["Hello !", "Whatever . 3 4 5", "No ."]


def direction_of(model) -> Direction:
    torch.manual_seed(0)
    d = torch.nn.functional.normalize(torch.randn(model.config.hidden_size), dim=0)
    return Direction("toxic", {1: d}, 1)


def test_rollout_probe_reads_every_chunk_of_the_loss_forward(tiny_model):
    model, tok = tiny_model
    d = direction_of(model)
    batch = loss_batch(tok, PROMPTS, COMPLETIONS)
    probe, hooks = RolloutProbe(d), all_hooks(model)
    with probe.during(model, batch):
        logits = forward_in_chunks(model, batch, chunk=2)  # 2 rows, then 1
    assert logits.requires_grad  # the training forward itself, not a copy of it
    assert all_hooks(model) == hooks
    got = probe.take()
    torch.testing.assert_close(
        torch.tensor(got), torch.tensor(expected_projections(model, batch, d)), rtol=1e-5, atol=1e-5
    )
    assert probe.take() == []  # taken once per step


def test_rollout_probe_does_not_read_checkpointing_recomputation(tiny_model):
    """Gradient checkpointing re-runs the blocks' forwards in backward; the probe is gone by then."""
    model, tok = tiny_model
    d = direction_of(model)
    batch = loss_batch(tok, PROMPTS, COMPLETIONS)
    probe = RolloutProbe(d)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    try:
        with probe.during(model, batch):
            logits = forward_in_chunks(model, batch, chunk=3)
        logits.float().mean().backward()
    finally:
        model.gradient_checkpointing_disable()
        model.zero_grad(set_to_none=True)
        model.eval()
    assert len(probe.take()) == len(PROMPTS)


def test_rollout_probe_reads_the_think_and_answer_spans_apart(tiny_model):
    """With the tokenizer, the same loss forward gives each rollout's reasoning and answer means."""
    model, tok = tiny_model
    d = direction_of(model)
    completions = ["<think> 3 4 </think> Hello !", "<think> 3 4 5", "No ."]
    batch = loss_batch(tok, PROMPTS, completions)
    probe = RolloutProbe(d, tok)
    with probe.during(model, batch):
        forward_in_chunks(model, batch, chunk=2)
    whole = expected_projections(model, batch, d)
    torch.testing.assert_close(
        torch.tensor(probe.take()), torch.tensor(whole), rtol=1e-5, atol=1e-5
    )
    spans = probe.take_spans()
    think, answer = spans["think"], spans["answer"]
    assert not math.isnan(think[0]) and not math.isnan(answer[0])
    assert math.isnan(answer[1]) and think[1] == pytest.approx(whole[1], abs=1e-5)  # never closed
    assert math.isnan(think[2]) and answer[2] == pytest.approx(whole[2], abs=1e-5)  # no trace
    assert set(probe.span_metrics(spans)) == {
        "probe/toxic/rollout_think_mean",
        "probe/toxic/rollout_answer_mean",
    }
    assert probe.span_metrics({"think": [math.nan], "answer": [1.0]}) == {
        "probe/toxic/rollout_answer_mean": 1.0
    }  # a span no rollout has is left out
    assert probe.take_spans() == {"think": [], "answer": []}


STDLIB = ("os", "sys", "atexit", "threading")


def test_no_private_trainer_state_in_the_package():
    """The project uses TRL/transformers through their public API only: no `x._attr` on a
    trainer, a model or anything else that is not the project's own object (the sandbox's forked
    child may call the standard library's exit machinery: `os._exit` and friends)."""
    offenders = []
    for path in sorted((ROOT / "personadrift").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                base = node.value
                if isinstance(base, ast.Name) and base.id in ("self", "cls", *STDLIB):
                    continue  # the project's own objects
                if isinstance(base, ast.Subscript) and ast.unparse(base.value) == "sys.modules":
                    continue  # a standard-library module looked up by name
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    assert not offenders, offenders


def test_study_runs_record_every_monitor_at_every_step(tiny, cache_dir, tmp_path):
    """`monitors.record`: probe (paired), probe_rollout, behaviour, trace and hack_rate as
    `monitor/<name>` lines, whatever detect: says; the rollouts sampled are the bare run's."""
    import json

    from personadrift.config import load_config
    from personadrift.rl.train import train

    overrides = [
        f"organism.cache_dir={cache_dir}",
        f"out_dir={tmp_path}",
        "grpo.max_steps=2",
        "monitors.record=true",
        "monitors.behaviour_n=2",
        "probes.every=1",
        "run_evals.every=-1",
    ]
    run_dir = train(
        load_config(ROOT / "personadrift/configs/runs/tiny.yaml", overrides), log=lambda *_: None
    )
    rows = {
        r["step"]: r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
    }
    assert rows[0]["monitor/probe"] == 0.0 and 0.0 <= rows[0]["monitor/behaviour"] <= 1.0
    for step in (1, 2):
        names = {k.split("/")[1] for k in rows[step] if k.startswith("monitor/")}
        assert {"probe", "probe_rollout", "behaviour", "trace", "hack_rate"} <= names, names
        assert rows[step]["monitor/hack_rate"] == rows[step]["env/hack_rate"]
    state = json.loads((run_dir / "checkpoints/checkpoint-2/personadrift_state.json").read_text())
    assert state["monitors"]["behaviour_n"] == 2 and state["monitors"]["rollout_cut"] is not None


def test_a_detector_on_a_monitor_reads_that_monitor_alone(tiny, cache_dir, tmp_path):
    """`detect.metric: monitor/probe` without `monitors.record`: the paired probe statistic is
    logged at every reading, and none of the other monitors (the behaviour sample costs time)."""
    import json

    from personadrift.config import load_config
    from personadrift.rl.train import train

    overrides = [
        f"organism.cache_dir={cache_dir}",
        f"out_dir={tmp_path}",
        "grpo.max_steps=2",
        "probes.every=1",
        "run_evals.every=-1",
        "detect.rule=zscore",
        "detect.metric=monitor/probe",
        "detect.params={threshold: 1.0e9, k: 1}",
    ]
    run_dir = train(
        load_config(ROOT / "personadrift/configs/runs/tiny.yaml", overrides), log=lambda *_: None
    )
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "monitor/probe" in r] == [0, 1, 2]
    assert {k for r in rows for k in r if k.startswith("monitor/")} == {"monitor/probe"}
    assert rows[1]["monitor/probe"] != 0.0


def test_a_detector_on_another_layer_reads_what_the_study_reads_there(tiny, cache_dir, tmp_path):
    """`detect.metric: monitor/probe_L<k>`: the run reads its direction at layer k too, and logs
    the paired statistic there; it equals the study's post-hoc `probe_L<k>` (the dense pass's
    reading of the saved checkpoints), so a calibration's `probe_L<k>` threshold fits it."""
    import json

    from personadrift.analyses.dense import layer_readings
    from personadrift.config import load_config
    from personadrift.evals.ground_truth import read_layers
    from personadrift.report.warning import _layer_series
    from personadrift.rl.train import train

    overrides = [
        f"organism.cache_dir={cache_dir}",
        f"out_dir={tmp_path}",
        "grpo.max_steps=2",
        "probes.every=1",
        "probes.layer=1",
        "run_evals.every=-1",
        "checkpoints.every=1",
        "checkpoints.keep=0",
        "detect.rule=zscore",
        "detect.metric=monitor/probe_L2",
        "detect.params={threshold: 1.0e9, k: 1}",
    ]
    run_dir = train(
        load_config(ROOT / "personadrift/configs/runs/tiny.yaml", overrides), log=lambda *_: None
    )
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    logged = {r["step"]: r["monitor/probe_L2"] for r in rows if "monitor/probe_L2" in r}
    assert sorted(logged) == [0, 1, 2]
    assert {k for r in rows for k in r if k.startswith("monitor/")} == {"monitor/probe_L2"}
    layer_readings(run_dir, log=lambda *_: None)
    post_hoc = dict(_layer_series(read_layers(run_dir)[2]))
    assert sorted(post_hoc) == [0, 1, 2]
    for step in (1, 2):
        assert logged[step] != 0.0
        assert abs(logged[step] - post_hoc[step]) <= 1e-3 * max(1.0, abs(post_hoc[step]))
    # and it is not the chosen layer's statistic
    layer1 = dict(_layer_series(read_layers(run_dir)[1]))
    assert any(abs(layer1[s] - logged[s]) > 1e-6 for s in (1, 2))


def test_a_detector_on_a_layer_the_direction_lacks_is_refused(tiny, cache_dir, tmp_path):
    from personadrift.config import ConfigError, load_config
    from personadrift.rl.train import train

    overrides = [
        f"organism.cache_dir={cache_dir}",
        f"out_dir={tmp_path}",
        "grpo.max_steps=1",
        "run_evals.every=-1",
        "detect.rule=zscore",
        "detect.metric=monitor/probe_L7",
        "detect.params={threshold: 1.0e9, k: 1}",
    ]
    with pytest.raises(ConfigError, match="reads layer 7; the direction has layers 1, 2"):
        train(load_config(ROOT / "personadrift/configs/runs/tiny.yaml", overrides), log=print)
    assert not [p for p in tmp_path.iterdir() if (p / "metrics.jsonl").exists()]
