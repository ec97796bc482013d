"""Steering hooks: exact shifts, bit-identical at zero, ablation zeroes the component, no leftovers."""

from __future__ import annotations

import pytest
import torch

from personadrift.interventions.steer import median_norm, steer, steer_hidden
from personadrift.probes.capture import capture, decoder_layers
from personadrift.probes.direction import Direction

from .test_probes import all_hooks

TEXTS = [
    "<bos> User: How do I save money ? Assistant:",
    "<bos> User: Say hello . Assistant: Hello !",
]


@pytest.fixture
def setup(tiny_model):
    model, tok = tiny_model
    torch.manual_seed(0)
    d = torch.nn.functional.normalize(torch.randn(model.config.hidden_size), dim=0)
    enc = tok(TEXTS, return_tensors="pt", padding=True, add_special_tokens=False)
    return model, tok, Direction("toxic", {1: d, 2: d}, 1), enc


def outputs(model, enc, layer=1):
    """Logits and the residual after block `layer` as the next block sees it (steered or not): a
    hook added after the steering hooks sees their result (capture's own hooks run before them)."""
    seen = []
    block = decoder_layers(model)[layer - 1]
    handle = block.register_forward_hook(
        lambda _m, _i, out: seen.append(out[0] if isinstance(out, tuple) else out)
    )
    try:
        with torch.no_grad():
            logits = model(**enc).logits
    finally:
        handle.remove()
    return logits, seen[-1]


def test_readings_see_the_unsteered_residual(setup):
    """A capture hook runs before the steering hook of its block: readings are not contaminated."""
    model, tok, direction, enc = setup
    with torch.no_grad(), capture(model, [1]) as acts:
        model(**enc)
    plain = acts[1]
    with steer(model, direction, 2.0, "subtract", norm_unit=3.0):
        with torch.no_grad(), capture(model, [1]) as acts:
            model(**enc)
        _, steered = outputs(model, enc)
    assert torch.equal(acts[1], plain)
    torch.testing.assert_close(steered - plain, (-6.0 * direction.vector()).expand_as(plain))


def test_zero_coefficient_is_bit_identical(setup):
    model, tok, direction, enc = setup
    logits, h = outputs(model, enc)
    with steer(model, direction, 0.0, "subtract"):
        logits0, h0 = outputs(model, enc)
    assert torch.equal(logits, logits0) and torch.equal(h, h0)


@pytest.mark.parametrize("op, sign", [("add", 1.0), ("subtract", -1.0)])
def test_shift_is_exactly_coeff_times_unit_times_direction(setup, op, sign):
    model, tok, direction, enc = setup
    unit = median_norm(model, tok, TEXTS, 1)
    assert unit > 0
    _, h = outputs(model, enc)
    with steer(model, direction, 0.7, op, norm_unit=unit):
        logits, hs = outputs(model, enc)
    expected = sign * 0.7 * unit * direction.vector()
    torch.testing.assert_close(hs - h, expected.expand_as(h), rtol=1e-5, atol=1e-5)
    assert not torch.equal(logits, outputs(model, enc)[0])


def test_ablation_zeroes_the_component(setup):
    model, tok, direction, enc = setup
    with steer(model, direction, 1.0, "ablate"):
        _, h = outputs(model, enc)
    torch.testing.assert_close(h @ direction.vector(), torch.zeros(h.shape[:2]), atol=1e-5, rtol=0)


def test_no_hooks_remain_and_outputs_return_after_the_block(setup):
    model, tok, direction, enc = setup
    before_hooks = all_hooks(model)
    logits, _ = outputs(model, enc)
    with pytest.raises(RuntimeError):
        with steer(model, direction, 2.0, "add", layers=[1, 2]):
            assert all_hooks(model) == before_hooks + 2
            raise RuntimeError("boom")
    assert all_hooks(model) == before_hooks
    assert torch.equal(outputs(model, enc)[0], logits)


def test_only_with_grad_leaves_no_grad_forwards_alone(setup):
    model, tok, direction, enc = setup
    logits, _ = outputs(model, enc)
    with steer(model, direction, 3.0, "add", only_with_grad=True):
        assert torch.equal(outputs(model, enc)[0], logits)  # generation / readings: untouched
        with torch.enable_grad():
            assert not torch.equal(
                model(**enc).logits.detach(), logits
            )  # training forward: steered


def test_steer_hidden_by_hand():
    h = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    d = torch.tensor([1.0, 0.0])
    torch.testing.assert_close(
        steer_hidden(h, d, 0.5, 2.0, "add"), torch.tensor([[2.0, 2.0], [4.0, -1.0]])
    )
    torch.testing.assert_close(
        steer_hidden(h, d, 0.5, 2.0, "subtract"), torch.tensor([[0.0, 2.0], [2.0, -1.0]])
    )
    torch.testing.assert_close(
        steer_hidden(h, d, 9.9, 2.0, "ablate"), torch.tensor([[0.0, 2.0], [0.0, -1.0]])
    )
    with pytest.raises(ValueError):
        steer_hidden(h, d, 1.0, 1.0, "flip")


def test_gate_switches_the_hook_on_and_off(setup):
    model, tok, direction, enc = setup
    _, h = outputs(model, enc)
    on = [False]
    with steer(model, direction, 0.5, "subtract", norm_unit=2.0, gate=lambda: on[0]):
        _, h_off = outputs(model, enc)
        on[0] = True
        _, h_on = outputs(model, enc)
    assert torch.equal(h, h_off)
    expected = -0.5 * 2.0 * direction.vector()
    torch.testing.assert_close(h_on - h, expected.expand_as(h), rtol=1e-5, atol=1e-5)


def test_ablating_several_directions_leaves_no_component_along_any_in_training_only(setup):
    """CAFT with more than one direction (`steer.also`): in a training (grad) forward the hooked
    layer's residual has no component along any of them; a no-grad forward (generation, the
    evals) is the unhooked one."""
    model, tok, direction, enc = setup
    torch.manual_seed(1)
    others = [torch.nn.functional.normalize(torch.randn(direction.vector().shape), dim=0)]
    others.append(others[0] * 0.5 + direction.vector())  # in the span already: rank stays 2
    also = [Direction(f"latent{i}", {1: v}, 1) for i, v in enumerate(others)]
    logits, h_plain = outputs(model, enc)
    seen = []
    block = decoder_layers(model)[0]
    with steer(model, direction, 0.0, "ablate", only_with_grad=True, also=also):
        handle = block.register_forward_hook(
            lambda _m, _i, out: seen.append(out[0] if isinstance(out, tuple) else out)
        )
        try:
            with torch.enable_grad():
                model(**enc)
        finally:
            handle.remove()
        assert torch.equal(outputs(model, enc)[0], logits)  # no-grad: untouched
    h = seen[-1].detach()
    for v in [direction.vector(), *others]:
        assert float((h @ v).abs().max()) < 1e-4
    assert not torch.allclose(h, h_plain)


def test_span_basis_is_orthonormal_and_drops_dependent_vectors():
    from personadrift.interventions.steer import span_basis

    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([1.0, 1.0, 0.0])
    q = span_basis([a, b, a + 2 * b])
    assert q.shape == (2, 3)
    torch.testing.assert_close(q @ q.T, torch.eye(2))
    with pytest.raises(ValueError):
        with steer(None, Direction("d", {1: a}, 1), 1.0, "add", also=[Direction("e", {1: b}, 1)]):
            pass


def test_preventative_adds_exactly_coeff_times_direction_in_training_and_nothing_else(setup):
    model, tok, direction, enc = setup
    logits, h = outputs(model, enc)
    seen = []
    block = decoder_layers(model)[0]
    with steer(model, direction, 0.4, "add", norm_unit=2.5, only_with_grad=True):
        assert torch.equal(outputs(model, enc)[0], logits)  # generation and evals: untouched
        handle = block.register_forward_hook(
            lambda _m, _i, out: seen.append(out[0] if isinstance(out, tuple) else out)
        )
        try:
            with torch.enable_grad():
                model(**enc)
        finally:
            handle.remove()
    expected = (0.4 * 2.5 * direction.vector()).expand_as(h)
    torch.testing.assert_close(seen[-1].detach() - h, expected, rtol=1e-5, atol=1e-5)
