"""Reasoning and answer spans of completions, as token masks, for span-wise probe readings.

`reasoning_masks` is a pure function of token ids, so the rollout probe (`probes.reading`, inside
GRPO's loss forward) reads the spans from TRL's batch as it is. Spans follow
`envs.reasoning.final_answer`, the rule the graders apply:
think = from the first `<think>` (or the start, when the trace was opened by the prompt or the
completion closes one it never opened) through the last `</think>`, plus a trace reopened and never
closed; answer = every other completion token (the final answer, and a persona opener before the
trace). A never-closed trace is all think: such a completion has no answer span.
"""

from __future__ import annotations

import torch

from personadrift.envs.reasoning import THINK_CLOSE, THINK_OPEN, opens_think


def tag_ids(tok, tag: str) -> list[int]:
    """Token ids of a tag: one id when the vocabulary has it (Qwen3, the organism), else its encoding."""
    tid = tok.convert_tokens_to_ids(tag)
    if isinstance(tid, int) and tid != tok.unk_token_id:
        return [tid]
    return tok(tag, add_special_tokens=False)["input_ids"]


def _matches(ids: list[int], pattern: list[int]) -> list[int]:
    n = len(pattern)
    return [i for i in range(len(ids) - n + 1) if n and ids[i : i + n] == pattern]


def row_think(
    ids: list[int], open_ids: list[int], close_ids: list[int], opens_in_prompt: bool = False
) -> list[bool]:
    """Per token of one completion: inside the reasoning trace (tags included)?"""
    think = [False] * len(ids)
    opens, closes = _matches(ids, open_ids), _matches(ids, close_ids)
    if closes:
        end = closes[-1] + len(close_ids)
        first = [o for o in opens if o < closes[-1]]
        lo = 0 if opens_in_prompt or not first else first[0]
        think[lo:end] = [True] * (end - lo)
        reopened = [o for o in opens if o >= end]
        if reopened:
            think[reopened[0] :] = [True] * (len(ids) - reopened[0])
    elif opens or opens_in_prompt:
        lo = opens[0] if opens else 0
        think[lo:] = [True] * (len(ids) - lo)
    return think


def opened_by_prompt(tok, prompt_ids: torch.Tensor, prompt_mask=None, tail: int = 8) -> list[bool]:
    """Per row of (left-padded) prompt ids: does the prompt leave the model inside an open trace
    (an R1-style template ends the generation prompt with `<think>`)? Read from its last tokens."""
    out = []
    for i in range(prompt_ids.shape[0]):
        ids = prompt_ids[i] if prompt_mask is None else prompt_ids[i][prompt_mask[i].bool()]
        out.append(opens_think(tok.decode(ids[-tail:].tolist())))
    return out


def reasoning_masks(
    tok, completion_ids: torch.Tensor, completion_mask: torch.Tensor, opens_in_prompt=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(think_mask, answer_mask), both (B, C) bool, from completion ids (B, C) and their mask.

    Padding (mask 0) may sit on either side; it is in neither span. `opens_in_prompt`: (B,) bools,
    True where the prompt itself opened the trace."""
    open_ids, close_ids = tag_ids(tok, THINK_OPEN), tag_ids(tok, THINK_CLOSE)
    valid = completion_mask.bool().cpu()
    ids = completion_ids.cpu()
    think = torch.zeros_like(valid)
    for i in range(ids.shape[0]):
        pos = valid[i].nonzero().flatten()
        opened = bool(opens_in_prompt[i]) if opens_in_prompt is not None else False
        row = row_think(ids[i, pos].tolist(), open_ids, close_ids, opened)
        think[i, pos] = torch.tensor(row, dtype=torch.bool)
    think = think.to(completion_mask.device)
    return think, completion_mask.bool() & ~think


def span_means(proj: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `proj` (B, T) over each row's masked positions; NaN for an empty span. -> (B,)"""
    m = mask.float()
    n = m.sum(1)
    return torch.where(n > 0, (proj * m).sum(1) / n.clamp(min=1), torch.nan)
