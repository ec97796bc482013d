"""Steering: forward hooks that move the residual stream along a persona direction.

`with steer(model, direction, coeff, op="subtract"): ...` installs one hook per layer and removes
them in `finally`. Ops on a block's output h (unit direction d, coefficient c, norm unit u):
- `add`:      h + c·u·d   (preventative steering: push the persona in during training)
- `subtract`: h - c·u·d   (inference steering: pull the persona out)
- `ablate`:   h - (h·d) d  (CAFT-style: the component along d is removed); with `also` (more
  directions, e.g. the specific one or an SAE latent), the component in their span is removed:
  h - (h Qᵀ) Q, Q an orthonormal basis of d and the others at that layer
`u` is the layer's median residual norm (`median_norm`), so coefficients mean the same thing
across layers and models. `only_with_grad=True` makes the hook act only when autograd is on
(the training forward), not in no-grad generation or probe readings. `gate`, when given, is asked on
every forward: hooks stay installed but act only while it returns True (steering switched on by an
alarm mid-run).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from personadrift.probes.capture import capture, decoder_layers
from personadrift.probes.direction import Direction

OPS = ("add", "subtract", "ablate")


def steer_hidden(
    h: torch.Tensor, d: torch.Tensor, coeff: float, norm_unit: float, op: str
) -> torch.Tensor:
    """The steered residual; h is (..., D), d a unit vector (D,), or for `ablate` the (k, D)
    orthonormal rows of the span to remove."""
    d = d.to(h.dtype)
    if op == "ablate" and d.dim() == 2:
        return h - (h @ d.T) @ d
    if op == "add":
        return h + (coeff * norm_unit) * d
    if op == "subtract":
        return h - (coeff * norm_unit) * d
    if op == "ablate":
        return h - (h @ d).unsqueeze(-1) * d
    raise ValueError(f"steering op must be one of {', '.join(OPS)}, not {op!r}")


@torch.no_grad()
def median_norm(model, tok, texts: list[str], layer: int) -> float:
    """Median L2 norm of the residual at `layer` over the real tokens of `texts`."""
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    enc = enc.to(next(model.parameters()).device)
    with capture(model, [layer]) as acts:
        model(**enc)
    norms = acts[layer].float().norm(dim=-1)[enc["attention_mask"].bool()]
    return float(norms.median())


def span_basis(vectors: list[torch.Tensor]) -> torch.Tensor:
    """(k, D) orthonormal rows spanning `vectors` (each (D,)); k = their rank."""
    m = torch.stack([v.float() for v in vectors], dim=1)  # (D, n)
    q, r = torch.linalg.qr(m)
    keep = r.diagonal().abs() > 1e-6 * r.diagonal().abs().max()
    return q[:, keep].T.contiguous()


@contextmanager
def steer(
    model,
    direction: Direction,
    coeff: float,
    op: str = "subtract",
    layers: list[int] | None = None,
    norm_unit: float = 1.0,
    only_with_grad: bool = False,
    gate: Callable[[], bool] | None = None,
    also: list[Direction] = (),
) -> Iterator[None]:
    """Hooks on the given layers (default: the direction's layer) for the duration of the block.
    `also`: more directions whose span is ablated with `direction`'s (`ablate` only)."""
    if op not in OPS:
        raise ValueError(f"steering op must be one of {', '.join(OPS)}, not {op!r}")
    if also and op != "ablate":
        raise ValueError(f"more directions are ablated together; {op!r} takes one")
    blocks = decoder_layers(model)
    handles = []
    try:
        for layer in layers or [direction.layer]:
            d = direction.vector(layer if layer in direction.vectors else None)
            if also:
                others = [o.vector(layer if layer in o.vectors else None) for o in also]
                d = span_basis([d, *others])

            def hook(_module, _inputs, output, d=d):
                if (
                    (op != "ablate" and coeff == 0)
                    or (only_with_grad and not torch.is_grad_enabled())
                    or (gate is not None and not gate())
                ):
                    return output
                if isinstance(output, tuple):
                    return (
                        steer_hidden(output[0], d.to(output[0].device), coeff, norm_unit, op),
                        *output[1:],
                    )
                return steer_hidden(output, d.to(output.device), coeff, norm_unit, op)

            handles.append(blocks[layer - 1].register_forward_hook(hook))
        yield
    finally:
        for h in handles:
            h.remove()
