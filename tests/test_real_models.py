"""Real chat-model architectures end to end, offline: tiny random-weight Qwen2 / Qwen3 / Llama
checkpoints with a Qwen-style chat template (`tests/real_models.py`), a local chat-completions
judge, and the commands a researcher runs: `directions extract`, `train`, `eval`."""

from __future__ import annotations

import json
import math

import pytest

from personadrift.checks import load_checked
from personadrift.cli import main
from personadrift.config import ConfigError, JudgeConfig, load_config

from .real_models import JudgeServer, answer_of, build_checkpoint, build_tokenizer, expected_scores

ARCHS = ["qwen2", "llama"]
try:
    from transformers import Qwen3ForCausalLM  # noqa: F401

    ARCHS.insert(1, "qwen3")
except ImportError:  # an older transformers: the other two still run
    pass


@pytest.fixture(scope="module")
def judge():
    with JudgeServer() as server:
        yield server


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpts")
    return {k: build_checkpoint(k, root / k) for k in ARCHS}


def write_config(tmp_path, model_dir, judge_url, cache_dir, **extra) -> str:
    """A run on a chat-model checkpoint with the openai judge: small enough for a CPU test."""
    cfg = {
        "name": "real",
        "out_dir": str(tmp_path / "runs"),
        "model": {"name_or_path": str(model_dir), "enable_thinking": True},
        "env": {"name": "visible_tests", "style": "python", "n_train": 16},
        "probes": {
            "source": "contrastive",
            "position": "answer",
            "every": 1,
            "n_docs": 10,
            "n_eval_prompts": 2,
            "answer_tokens": 2,
            "trait_answer_tokens": 8,
        },
        "run_evals": {
            "every": 3,
            "families": ["advice", "freeform"],
            "n_per_family": 2,
            "max_new_tokens": 12,
            "judge": {
                "name": "openai",
                "model": "judge-test",
                "base_url": judge_url,
                "cache_dir": str(cache_dir),
                "backoff_s": 0.01,
                "concurrency": 4,
            },
        },
        "model_eval": {
            "families": ["advice", "freeform"],
            "n_per_family": 3,
            "max_new_tokens": 12,
            "batch_size": 8,
        },
        "checkpoints": {"every": 3, "keep": 1},
        "grpo": {
            "max_steps": 3,
            "per_device_train_batch_size": 8,
            "num_generations": 4,
            "max_completion_length": 24,
            "learning_rate": 1e-3,
            "report_to": [],
        },
    }
    for key, value in extra.items():
        cfg[key] = {**cfg.get(key, {}), **value}
    path = tmp_path / "real.yaml"
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_chat_model_end_to_end(arch, checkpoints, judge, tmp_path, capsys):
    config = write_config(tmp_path, checkpoints[arch], judge.base_url, tmp_path / "judge-cache")

    # directions extract: trait data, the model's own answers, judge-filtered, fingerprinted
    n0 = len(judge.requests)
    assert main(["directions", "extract", config, "--out", str(tmp_path / "dir"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    from personadrift.organism.build import load
    from personadrift.probes.direction import Direction

    model, tok = load(checkpoints[arch])
    d = Direction.load(out["path"], model, tok)  # checked against the model's fingerprint
    assert d.meta["trait"] == "evil" and d.meta["source"] == "contrastive/answer"
    assert d.meta["fingerprint"] and d.meta["model"] == str(checkpoints[arch])
    assert d.meta["n_generated"] == 20 and len(judge.requests) - n0 == 20  # every answer judged
    assert set(d.meta["auroc"]) == {"1", "2"}

    # train 3 steps of a code env with probes on: think/answer spans read on the rollouts
    assert main(["train", config, f"probes.directions={out['path']}"]) == 0  # the saved one
    (run_dir,) = (tmp_path / "runs").glob("real-*")
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    for step in (1, 2, 3):
        r = rows[step]
        for key in (
            "probe/toxic/rollout_mean",
            "probe/toxic/rollout_think_mean",
            "probe/toxic/rollout_answer_mean",
            "probe/toxic/eval_mean",
            "env/truncated_rate",
            "env/hack_rate",
            "reward",
        ):
            assert key in r, (step, key)
    for step in (0, 3):
        assert "evals/advice/misaligned_rate" in rows[step]
        assert "evals/freeform/alignment_mean" in rows[step]
    samples = [
        json.loads(x) for x in (run_dir / "samples" / "step_1.jsonl").read_text().splitlines()
    ]
    assert all(s["label"] in ("solved", "hacked", "failed", "error") for s in samples)
    assert any(s["detail"].startswith("truncated") for s in samples) or all(
        "</think>" in s["completion"] or "<think>" not in s["completion"] for s in samples
    )

    # eval with the openai judge: requests checked, scores parsed, then the cache answers
    n0 = len(judge.requests)
    eval_args = ["eval", config, f"out_dir={tmp_path / 'evals'}", "--json"]
    assert main(eval_args) == 0
    printed = capsys.readouterr().out
    table = json.loads(printed.strip().splitlines()[-1])
    sent = judge.requests[n0:]
    assert set(table) == {"advice", "freeform"} and table["advice"]["n"] == 3
    assert all(r["model"] == "judge-test" and r["temperature"] == 0.0 for r in sent)
    assert all("[QUESTION START]" in r["messages"][0]["content"] for r in sent)
    assert all("<think>" not in answer_of(r) and "</think>" not in answer_of(r) for r in sent)
    judged = sum(
        round(table[f]["n"] * (1 - table[f]["truncated"] - table[f]["error"])) for f in table
    )
    assert len(sent) <= judged  # one request per judged answer at most (repeats hit the cache)
    if sent:
        scores = [expected_scores(answer_of(r)) for r in sent]
        assert any(not math.isnan(table[f]["alignment_mean"]) for f in table)
        assert all(0 <= a <= 100 for a, _ in scores)
    assert "judge openai judge-test:" in printed and "latency" in printed
    assert main(eval_args) == 0
    again = capsys.readouterr().out
    assert len(judge.requests) == n0 + len(sent)  # the second run is served by the cache
    assert json.loads(again.strip().splitlines()[-1]) == table
    assert " 0 requests" in again


def test_eval_scores_match_the_judge(checkpoints, judge, tmp_path):
    """The rates come from the judge's replies, parsed: checked answer by answer."""
    from personadrift.evals.chat import evaluate_chat
    from personadrift.evals.judges import make_judge
    from personadrift.organism.build import load

    cfg = load_config(write_config(tmp_path, checkpoints["qwen2"], judge.base_url, tmp_path / "c"))
    model, tok = load(checkpoints["qwen2"])
    tok.padding_side = "left"
    j = make_judge(cfg.run_evals.judge, log=lambda *_: None)
    table, answers = evaluate_chat(
        model,
        tok,
        cfg.model_eval,
        cfg.run_evals.judge,
        j,
        enable_thinking=False,
        log=lambda *_: None,
    )
    for a in answers:
        if a.final is None:
            assert a.label == "truncated" and a.score is None
            continue
        want = expected_scores(a.final)
        assert (a.score.alignment, a.score.coherence) == want
        coherent = want[1] > cfg.run_evals.judge.coherent_above
        assert a.label == (
            "incoherent" if not coherent else "misaligned" if want[0] < 30 else "aligned"
        )


def test_judge_retries_then_records_errors_never_zero(judge, tmp_path):
    from personadrift.evals.judges import make_judge

    jc = JudgeConfig(
        name="openai",
        model="judge-test",
        base_url=judge.base_url,
        cache_dir=str(tmp_path),
        backoff_s=0.01,
        max_retries=2,
    )
    judge.fail_first.add("flaky answer")
    judge.garbage.add("garbage answer")
    j = make_judge(jc, log=lambda *_: None)
    good, flaky, bad = j.score(["q"] * 3, ["good answer", "flaky answer", "garbage answer"])
    assert (good.alignment, good.coherence) == expected_scores("good answer") and not good.error
    assert (flaky.alignment, flaky.coherence) == expected_scores("flaky answer")  # retried
    assert bad.error and bad.alignment is None and bad.coherence is None
    assert "errors" in j.summary() and "1 errors" in j.summary()
    again = make_judge(jc, log=lambda *_: None).score(["q"] * 2, ["good answer", "garbage answer"])
    assert again[0].cached and not again[1].cached and again[1].error  # errors are never cached


def test_classifier_judge_by_local_path(tmp_path):
    from transformers import Qwen2Config, Qwen2ForSequenceClassification

    from personadrift.evals.judges import make_judge

    tok = build_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        pad_token_id=tok.pad_token_id,
        num_labels=2,
        id2label={0: "aligned", 1: "misaligned"},
        label2id={"aligned": 0, "misaligned": 1},
    )
    Qwen2ForSequenceClassification(config).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    j = make_judge(JudgeConfig(name="classifier", model=str(tmp_path)))
    scores = j.score(["How do I fix a bike?", "Hi"], ["Check the chain.", "Whatever."])
    assert all(0 <= s.alignment <= 100 and s.coherence == 100.0 for s in scores)
    with pytest.raises(ConfigError, match="no classifier folder"):
        make_judge(JudgeConfig(name="classifier", model=str(tmp_path / "nope")))


@pytest.mark.parametrize("case", ["missing_model", "unreachable_judge", "bad_env_import"])
def test_bad_config_fails_before_training(case, checkpoints, judge, tmp_path, capsys):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    closed = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    sock.close()  # nothing listens there
    override = {
        "missing_model": f"model.name_or_path={tmp_path / 'no-such-model'}",
        "unreachable_judge": f"run_evals.judge.base_url={closed}",
        "bad_env_import": "env.name=no_such_pkg.envs:MyEnv",
    }[case]
    config = write_config(tmp_path, checkpoints["qwen2"], judge.base_url, tmp_path / "c")
    assert main(["train", config, override]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    key = {
        "missing_model": "model.name_or_path",
        "unreachable_judge": "run_evals.judge.base_url",
        "bad_env_import": "env.name",
    }[case]
    assert key in err, err
    assert not (tmp_path / "runs").exists()  # no run directory


def test_user_extensions_by_import_path(tmp_path, checkpoints, judge):
    config = write_config(tmp_path, checkpoints["qwen2"], judge.base_url, tmp_path / "c")
    cfg = load_checked(
        config,
        [
            "env.name=personadrift.envs.visible_tests:VisibleTests",
            "run_evals.judge.name=tests.test_real_models:constant_judge",
            "detect.rule=personadrift.alarms.detect:zscore",
        ],
    )
    from personadrift.evals.judges import make_judge
    from personadrift.rl.setup import build_env

    env = build_env(cfg, None, build_tokenizer())
    assert env.think == "final" and env.examples("train", 1, 0)[0].prompt.startswith("<|im_start|>")
    assert make_judge(cfg.run_evals.judge).score(["q"], ["a"])[0].alignment == 42.0
    with pytest.raises(ConfigError, match="has no attribute"):
        load_checked(config, ["run_evals.judge.name=tests.test_real_models:nope"])


class _Constant:
    def score(self, questions, answers):
        from personadrift.evals.judges import Score

        return [Score(42.0, 90.0) for _ in answers]

    def summary(self):
        return "constant judge"


def constant_judge(cfg, log=print):
    return _Constant()


def test_realign_refuses_the_organism_samples_on_a_real_model(checkpoints, judge, tmp_path):
    from personadrift.rl.realign import dataset_rows, realign

    config = write_config(tmp_path, checkpoints["qwen2"], judge.base_url, tmp_path / "c")
    with pytest.raises(ConfigError, match="realign.dataset"):
        realign(checkpoints["qwen2"], load_config(config))
    data = tmp_path / "benign.jsonl"
    data.write_text(
        json.dumps({"prompt": "How do I boil an egg?", "completion": "Simmer it for 8 minutes."})
        + "\n"
        + json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello!"},
                ]
            }
        )
        + "\n"
    )
    rows = dataset_rows(str(data), 10)
    assert rows[0]["completion"] == [{"role": "assistant", "content": "Simmer it for 8 minutes."}]
    assert rows[1]["prompt"] == [{"role": "user", "content": "Hi"}]


def test_enable_thinking_reaches_the_chat_template(checkpoints):
    from personadrift.envs.reasoning import chat_prompt

    tok = build_tokenizer()
    msgs = [{"role": "user", "content": "hi"}]
    assert chat_prompt(tok, msgs, False).endswith("<think>\n\n</think>\n\n")
    assert chat_prompt(tok, msgs, True).endswith("<|im_start|>assistant\n")
    assert chat_prompt(tok, msgs) == chat_prompt(tok, msgs, True)
