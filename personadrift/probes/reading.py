"""One probe reading: projections of the residual stream onto a direction, under no_grad.

`read_prompts` projects the last prompt token of each text and the mean over a short greedy
answer; `read_completions` the mean over each completion's tokens, `read_completion_spans` also
over its reasoning span and its answer span (`probes.spans`). Hooks live only inside
`probes.capture` and are gone when these return.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from personadrift.envs.reasoning import opens_think
from personadrift.probes.capture import capture
from personadrift.probes.direction import Direction
from personadrift.probes.spans import reasoning_masks, span_means


def _device(model):
    return next(model.parameters()).device


@torch.no_grad()
def read_prompts(model, tok, texts: list[str], direction: Direction, answer_tokens: int,
                 batch_size: int = 64) -> tuple[list[float], list[float]]:  # fmt: skip
    """(last-prompt-token projection, mean projection over a greedy answer) per text."""
    layer, d = direction.layer, direction.vector().to(_device(model))
    was_training = model.training
    model.eval()
    last, answer = [], []
    try:
        for start in range(0, len(texts), batch_size):
            enc = tok(texts[start : start + batch_size], return_tensors="pt", padding=True,
                      add_special_tokens=False).to(_device(model))  # fmt: skip
            width = enc["input_ids"].shape[1]
            if answer_tokens > 0:
                seqs = model.generate(**enc, max_new_tokens=answer_tokens, do_sample=False,
                                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)  # fmt: skip
            else:
                seqs = enc["input_ids"]
            mask = torch.cat(
                [enc["attention_mask"], (seqs[:, width:] != tok.pad_token_id).long()], dim=1
            )
            with capture(model, [layer]) as acts:
                model(input_ids=seqs, attention_mask=mask)
            proj = acts[layer].float() @ d.float()  # (B, T)
            last += proj[:, width - 1].tolist()
            ans_mask = mask[:, width:].float()
            if answer_tokens > 0:
                means = (proj[:, width:] * ans_mask).sum(1) / ans_mask.sum(1).clamp(min=1)
                answer += means.tolist()
    finally:
        model.train(was_training)
    return last, answer


@dataclass
class SpanReading:
    """Per completion: mean projection over all its tokens, its reasoning span and its answer span
    (NaN where a span is empty)."""

    all: list[float]
    think: list[float]
    answer: list[float]


@torch.no_grad()
def read_completions(model, tok, prompts: list[str], completions: list[str], direction: Direction,
                     batch_size: int = 32) -> list[float]:  # fmt: skip
    """Mean projection over each completion's tokens (prompt + completion in one forward)."""
    return read_completion_spans(model, tok, prompts, completions, direction, batch_size).all


@torch.no_grad()
def read_completion_spans(
    model,
    tok,
    prompts: list[str],
    completions: list[str],
    direction: Direction,
    batch_size: int = 32,
) -> SpanReading:
    """`read_completions`, with the reasoning and answer spans read separately (same forward)."""
    layer, d = direction.layer, direction.vector().to(_device(model))
    was_training = model.training
    model.eval()
    out = SpanReading([], [], [])
    try:
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start : start + batch_size]
            p_ids = [tok(p, add_special_tokens=False)["input_ids"] for p in chunk]
            c_ids = [tok(c, add_special_tokens=False)["input_ids"] or [tok.eos_token_id]
                     for c in completions[start : start + batch_size]]  # fmt: skip
            rows = [p + c for p, c in zip(p_ids, c_ids)]
            width = max(map(len, rows))
            ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            comp = torch.zeros_like(ids, dtype=torch.float)
            for i, (r, c) in enumerate(zip(rows, c_ids)):  # left padding, like generation
                ids[i, width - len(r) :] = torch.tensor(r)
                mask[i, width - len(r) :] = 1
                comp[i, width - len(c) :] = 1
            dev = _device(model)
            with capture(model, [layer]) as acts:
                model(input_ids=ids.to(dev), attention_mask=mask.to(dev))
            proj = (acts[layer].float() @ d.float()).cpu()
            out.all += ((proj * comp).sum(1) / comp.sum(1)).tolist()
            tail = max(map(len, c_ids))  # the completion columns: (B, tail), right-aligned
            opened = [opens_think(p) for p in chunk]
            think, answer = reasoning_masks(tok, ids[:, -tail:], comp[:, -tail:], opened)
            out.think += span_means(proj[:, -tail:], think).tolist()
            out.answer += span_means(proj[:, -tail:], answer).tolist()
    finally:
        model.train(was_training)
    return out
