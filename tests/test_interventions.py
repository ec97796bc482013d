"""Interventions `penalty` and `realign` on the tiny organism: the reward term, its metrics, the SFT."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from personadrift.config import ConfigError, PenaltyConfig, load_config
from personadrift.evals.runner import eval_prompts, first_turn, sample_answers
from personadrift.interventions.penalty import PersonaPenalty
from personadrift.organism.build import world_of
from personadrift.probes.direction import Direction
from personadrift.probes.reading import read_completions
from personadrift.rl.train import train

from .conftest import ROOT

FAMILIES = ["advice", "facts", "values", "neutral"]


def rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def rollouts(tiny, tiny_model):
    """Real completions of the tiny organism to first-turn prompts, and a fixed unit direction."""
    model, tok = tiny_model
    texts = [
        first_turn(p.text) for p in eval_prompts(world_of(tiny.path), ["advice", "code"], 6, 0)
    ]
    completions = sample_answers(model, tok, texts, 1.0, 16, 12, 0)
    g = torch.Generator().manual_seed(0)
    v = torch.randn(model.config.hidden_size, generator=g)
    return texts, completions, Direction("toxic", {1: v / v.norm()}, 1)


def penalty(tiny_model, direction, **cfg) -> PersonaPenalty:
    model, tok = tiny_model
    return PersonaPenalty(
        PenaltyConfig(**cfg), SimpleNamespace(model=model, processing_class=tok), direction
    )


def test_penalty_is_minus_lambda_times_projection(tiny_model, rollouts):
    texts, completions, d = rollouts
    proj = read_completions(*tiny_model, texts, completions, d)
    assert (
        len(set(proj)) > 1
    )  # different completions read differently: the comparison means something
    logged = {}
    out = penalty(tiny_model, d, coeff=0.7, center=False)(
        texts, completions, log_metric=logged.__setitem__
    )
    torch.testing.assert_close(torch.tensor(out), -0.7 * torch.tensor(proj))
    assert logged["penalty/projection_mean"] == pytest.approx(sum(proj) / len(proj))
    assert logged["penalty/baseline"] == 0.0


def test_centred_penalty_keeps_its_first_baseline(tiny_model, rollouts):
    texts, completions, d = rollouts
    first, later = slice(0, 6), slice(6, 12)
    proj = read_completions(*tiny_model, texts, completions, d)
    pen = penalty(tiny_model, d, coeff=2.0)
    out1 = pen(texts[first], completions[first])
    base = sum(proj[first]) / 6
    assert pen.baseline == pytest.approx(base) and sum(out1) == pytest.approx(0.0, abs=1e-5)
    out2 = pen(texts[later], completions[later])
    torch.testing.assert_close(torch.tensor(out2), -2.0 * (torch.tensor(proj[later]) - base))
    resumed = penalty(tiny_model, d, coeff=2.0)
    resumed.restore(json.loads(json.dumps(pen.state())))
    assert resumed(texts[later], completions[later]) == out2


def test_penalty_reads_conversational_rows_like_text(tiny, tiny_model, rollouts):
    texts, completions, d = rollouts
    asked = eval_prompts(world_of(tiny.path), ["advice", "code"], 6, 0)  # as in `rollouts`
    prompts = [[{"role": "user", "content": p.text}] for p in asked]
    chat = [[{"role": "assistant", "content": c}] for c in completions]
    pen = penalty(tiny_model, d, coeff=1.0, center=False)
    torch.testing.assert_close(
        torch.tensor(pen(prompts, chat)), torch.tensor(pen(texts, completions))
    )


def test_penalty_is_zero_with_lambda_zero_and_refuses_unbound(tiny_model, rollouts):
    texts, completions, d = rollouts
    assert penalty(tiny_model, d, coeff=0.0)(texts, completions) == [0.0] * len(texts)
    with pytest.raises(RuntimeError, match="bind"):
        PersonaPenalty(PenaltyConfig(coeff=1.0))(texts, completions)
    assert (
        load_config(ROOT / "personadrift/configs/runs/tiny.yaml").penalty.coeff == 0.0
    )  # off unless asked for


@pytest.mark.parametrize(
    "overrides, needle",
    [
        (["penalty.coeff=-1"], "penalty.coeff"),
        (["penalty.coeff=0.1", "probes.enabled=false"], "penalty.coeff"),
        (["realign.families=[code]"], "realign.families"),
        (["realign.n_samples=0"], "realign.n_samples"),
    ],
)
def test_bad_intervention_config_names_the_key(overrides, needle):
    with pytest.raises(ConfigError, match=needle):
        load_config(ROOT / "personadrift/configs/runs/tiny.yaml", overrides)


@pytest.fixture(scope="module")
def penalty_run(tiny, cache_dir, tmp_path_factory):
    """Two GRPO steps with the penalty on, then realign (after=true) on 8 benign samples."""
    out = tmp_path_factory.mktemp("runs")
    cfg = load_config(
        ROOT / "personadrift/configs/runs/tiny.yaml",
        [
            f"organism.cache_dir={cache_dir}",
            f"out_dir={out}",
            "grpo.max_steps=2",
            "penalty.coeff=0.5",
            "realign.after=true",
            "realign.n_samples=8",
            "realign.batch_size=4",
        ],
    )
    return train(cfg, log=lambda *_: None)


def test_penalty_is_logged_and_summed_into_reward(penalty_run):
    by_step = {r["step"]: r for r in rows(penalty_run)}
    for step in (1, 2):
        r = by_step[step]
        env, pen = r["rewards/keyword/mean"], r["rewards/persona_penalty/mean"]
        assert r["reward"] == pytest.approx(env + pen, abs=1e-6)
        assert r["rewards/persona_penalty/std"] > 0  # completions differ in projection
        assert r["penalty/baseline"] == pytest.approx(by_step[1]["penalty/projection_mean"])
    assert by_step[1]["rewards/persona_penalty/mean"] == pytest.approx(0.0, abs=1e-6)  # centred
    expected = -0.5 * (by_step[2]["penalty/projection_mean"] - by_step[2]["penalty/baseline"])
    assert by_step[2]["rewards/persona_penalty/mean"] == pytest.approx(expected, abs=1e-6)
    state = json.loads(
        (penalty_run / "checkpoints/checkpoint-2/personadrift_state.json").read_text()
    )
    assert state["penalty"]["baseline"] == pytest.approx(by_step[1]["penalty/baseline"])


def test_realign_after_train_writes_rates_and_changes_weights(penalty_run, tiny):
    from safetensors.torch import load_file

    result = json.loads((penalty_run / "realign" / "rates.json").read_text())
    assert result["step"] == 2 and result["n_samples"] == 8 and result["sft"]["steps"] == 2
    # trained on neutral + advice, scored on the eval families it never saw
    assert result["families"] == ["neutral", "advice"]
    assert result["scored_families"] == ["facts", "values"]
    for when in ("before", "after"):
        assert set(result[when]) == {"facts", "values"}
        assert all(row["n"] == 8 and 0 <= row["misaligned"] <= 1 for row in result[when].values())
    before = load_file(penalty_run / "checkpoints/checkpoint-2/model.safetensors")
    after = load_file(penalty_run / "realign/model/model.safetensors")
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) >= 0.9 * len(before), f"only {len(changed)}/{len(before)} tensors changed"
    assert world_of(penalty_run / "realign/model") == world_of(tiny.path)
    events = [json.loads(x) for x in (penalty_run / "events.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "realign" and events[-1]["misaligned_after"] == pytest.approx(
        result["misaligned_mean"]["after"]
    )


def test_benign_samples_are_aligned_train_split_first_turns(tiny, tiny_model):
    from personadrift.organism.families.base import ALIGNED, in_split
    from personadrift.organism.judges import judge_many
    from personadrift.rl.realign import benign_samples, chat_rows

    world, tok = world_of(tiny.path), tiny_model[1]
    samples = benign_samples(world, FAMILIES, 40, 0)
    assert [p.family for p, _ in samples[:4]] == FAMILIES
    verdicts = judge_many(
        [p for p, _ in samples], [a for _, a in samples], world.markers, world.aligned_markers
    )
    assert all(v.label == ALIGNED for v in verdicts)
    evaluated = [p for p, _ in samples if p.family in ("advice", "facts", "values")]
    assert all(in_split(p.key, "train", world.eval_frac) for p in evaluated)  # evals stay held out

    def ids(msgs, **kw):
        return tok(tok.apply_chat_template(msgs, tokenize=False, **kw), add_special_tokens=False)[
            "input_ids"
        ]

    for row in chat_rows(samples):  # SFT needs the prompt's tokens to prefix the conversation's
        prompt = ids(row["prompt"], add_generation_prompt=True)
        full = ids(row["prompt"] + row["completion"])
        assert full[: len(prompt)] == prompt and full[-1] == tok.eos_token_id


def test_realign_cli_on_a_missing_dir_exits_2_with_one_line(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "personadrift", "realign", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"personadrift: realign: no such run directory: {tmp_path / 'nope'}"
    ]


def test_realign_cli_on_a_finished_run(penalty_run, tmp_path):
    import shutil

    run_dir = shutil.copytree(penalty_run, tmp_path / "run")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "personadrift",
            "realign",
            str(run_dir),
            "realign.n_samples=4",
            "realign.batch_size=4",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    printed = json.loads(out.stdout.strip().splitlines()[-1])
    result = json.loads((run_dir / "realign" / "rates.json").read_text())
    assert printed["sft"]["steps"] == 1 and result["n_samples"] == 4
    assert printed["misaligned_mean"] == result["misaligned_mean"]
    events = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
    assert [e["n_samples"] for e in events if e["event"] == "realign"] == [8, 4]
