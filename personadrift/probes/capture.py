"""Reading the residual stream with forward hooks that never outlive the reading.

Layer convention (as transformers' `hidden_states`): layer L is the output of decoder block L-1,
L = 1..n_layers (0 would be the embeddings). `capture(model, layers)` installs one forward hook per
requested block, records its output, and removes every hook in `finally`; `capture_each` keeps a
reduced copy of every forward the block runs while it is installed (a loss computed in chunks).

`layer_output` runs one forward only as far as the block it reads: a hook raises when the block
has run, so the later blocks and the head cost nothing (the held-out probe reads layer 1 of 4).

Capture hooks are put in front of any hook already on the block (`prepend=True`), so a reading sees
the block's own output, not the output after a steering hook has moved it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch


def unwrap(model):
    """The bare transformers model under DDP / accelerate / peft wrappers."""
    while hasattr(model, "module"):
        model = model.module
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


def decoder_layers(model) -> list[torch.nn.Module]:
    """The decoder blocks of an HF causal LM (Llama/Qwen/Mistral/Gemma, GPT-2/NeoX style)."""
    m = unwrap(model)
    for path in ("model.layers", "model.model.layers", "transformer.h", "gpt_neox.layers"):
        obj = m
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, torch.nn.ModuleList):
            return list(obj)
    raise ValueError(f"cannot find the decoder layers of {type(m).__name__}")


def n_layers(model) -> int:
    return len(decoder_layers(model))


def _hidden(output) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


@contextmanager
def capture(model, layers: list[int]) -> Iterator[dict[int, torch.Tensor]]:
    """`with capture(model, [2]) as acts: model(**batch)` -> acts[2] is (B, T, D), detached."""
    blocks = decoder_layers(model)
    acts: dict[int, torch.Tensor] = {}
    handles = []
    try:
        for layer in layers:
            if not 1 <= layer <= len(blocks):
                raise ValueError(f"layer {layer} outside 1..{len(blocks)}")

            def hook(_module, _inputs, output, layer=layer):
                acts[layer] = _hidden(output).detach()

            handles.append(blocks[layer - 1].register_forward_hook(hook, prepend=True))
        yield acts
    finally:
        for h in handles:
            h.remove()


@contextmanager
def capture_each(
    model, layer: int, reduce: Callable[[torch.Tensor], torch.Tensor]
) -> Iterator[list[torch.Tensor]]:
    """`reduce(output)` of every forward through block `layer` inside the block, in order, detached.

    For readings taken inside a forward that is not ours (GRPO's loss runs the policy in chunks):
    `reduce` keeps what the reading needs, e.g. the projection (B, T) instead of the (B, T, D)
    activations, so nothing large is held."""
    blocks = decoder_layers(model)
    if not 1 <= layer <= len(blocks):
        raise ValueError(f"layer {layer} outside 1..{len(blocks)}")
    out: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        out.append(reduce(_hidden(output).detach()))

    handle = blocks[layer - 1].register_forward_hook(hook, prepend=True)
    try:
        yield out
    finally:
        handle.remove()


class _Stop(Exception):
    """Raised by `layer_output`'s hook once the block it reads has run."""


def layer_output(model, layer: int, **inputs) -> torch.Tensor:
    """Block `layer`'s output (B, T, D), detached, from a forward that stops right after it.

    The blocks up to `layer` compute exactly what they compute in a full forward; the blocks after
    it and the LM head never run. Call it under `torch.no_grad()`; a prepended hook, so a steering
    hook on the same block is not applied to what is returned."""
    blocks = decoder_layers(model)
    if not 1 <= layer <= len(blocks):
        raise ValueError(f"layer {layer} outside 1..{len(blocks)}")
    out: dict[str, torch.Tensor] = {}

    def hook(_module, _inputs, output):
        out["h"] = _hidden(output).detach()
        raise _Stop

    handle = blocks[layer - 1].register_forward_hook(hook, prepend=True)
    try:
        model(**inputs, use_cache=False)
    except _Stop:
        pass
    finally:
        handle.remove()
    return out["h"]
