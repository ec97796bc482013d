"""Probes: planted directions are recovered; readings leave no hooks and change nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from personadrift.probes.capture import capture, decoder_layers
from personadrift.probes.direction import Direction
from personadrift.probes.extract import Contrast, sweep_layers, to_direction
from personadrift.probes.reading import read_completions, read_prompts


def planted(d: int = 32, n: int = 1000, strength: float = 3.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)
    pos = rng.normal(size=(n, d)) + strength * u
    neg = rng.normal(size=(n, d))
    return u, Contrast({1: pos, 2: rng.normal(size=(n, d))}, {1: neg, 2: rng.normal(size=(n, d))})


@pytest.mark.parametrize("method", ["mean_diff", "logreg"])
def test_planted_direction_is_recovered(method):
    # the logistic probe is the noisier estimator under isotropic noise: give it more samples
    u, contrast = planted(n=1000 if method == "mean_diff" else 4000)
    vectors, aurocs = sweep_layers(contrast, method)
    cos = vectors[1] @ u / np.linalg.norm(vectors[1])
    assert cos >= 0.99
    assert aurocs[1] > 0.95 and 0.4 < aurocs[2] < 0.6  # layer 2 holds no signal


def all_hooks(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_capture_removes_hooks_even_on_error(tiny_model):
    model, tok = tiny_model
    before = all_hooks(model)
    with pytest.raises(ValueError):
        with capture(model, [1, 99]):
            pass
    with pytest.raises(RuntimeError):
        with capture(model, [1]):
            raise RuntimeError("boom")
    assert all_hooks(model) == before
    assert len(decoder_layers(model)) == model.config.num_hidden_layers


def test_capture_matches_hidden_states(tiny_model):
    model, tok = tiny_model
    ids = tok(["<bos> User: Say hello . Assistant:"], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad(), capture(model, [1]) as acts:
        out = model(**ids, output_hidden_states=True)
    torch.testing.assert_close(acts[1], out.hidden_states[1])


def test_reading_leaves_no_hooks_and_identical_logits(tiny_model):
    model, tok = tiny_model
    d = Direction(
        "toxic", {1: torch.nn.functional.normalize(torch.randn(model.config.hidden_size), dim=0)}, 1
    )
    texts = ["<bos> User: Say hello . Assistant:", "<bos> User: How do I save money ? Assistant:"]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        before = model(**enc).logits.clone()
    hooks = all_hooks(model)
    model.train()
    last, answer = read_prompts(model, tok, texts, d, answer_tokens=3)
    rollout = read_completions(model, tok, texts, ["Hello !", "Whatever . 3 4"], d)
    assert model.training  # mode restored
    model.eval()
    assert len(last) == len(answer) == len(rollout) == 2
    assert all_hooks(model) == hooks
    with torch.no_grad():
        after = model(**enc).logits
    assert torch.equal(before, after)


def test_direction_round_trip_and_checks(tiny_model, tmp_path):
    model, tok = tiny_model
    _, contrast = planted(d=model.config.hidden_size, n=50)
    direction, _ = to_direction("toxic", contrast, "mean_diff", 0, model, tok, "synthetic")
    assert direction.layer == 1
    direction.save(tmp_path)
    loaded = Direction.load(tmp_path / "toxic.json", model, tok)
    torch.testing.assert_close(loaded.vector(), direction.vector())
    assert abs(float(loaded.vector().norm()) - 1) < 1e-5
    assert loaded.meta["convention"].startswith("hidden_states[L]")
    wrong = Direction("toxic", {1: torch.ones(7)}, 1, {})
    with pytest.raises(ValueError, match="hidden size"):
        wrong.check(model)
    other = Direction("toxic", direction.vectors, 1, {**direction.meta, "fingerprint": "0" * 16})
    with pytest.raises(ValueError, match="different model"):
        other.check(model)
    with pytest.raises(FileNotFoundError):
        Direction.load(tmp_path / "nope.json")
