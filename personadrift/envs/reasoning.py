"""What a grader reads of a reasoning model's completion: the final answer after `</think>`.

`final_answer(text)` is the one rule every grader and judge applies: the text after the last
`</think>`; a trace that opens (in the completion, or in the prompt when the chat template opens
it) and never closes has no final answer, because the model ran out of tokens while thinking,
and a draft inside an unfinished trace must never be graded as if it were the answer.
"""

from __future__ import annotations

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
TRUNCATED = "truncated: the reasoning trace never closed (</think> missing), nothing graded"


def final_answer(text: str, opens_in_prompt: bool = False) -> tuple[str | None, str]:
    """(final answer, '') or (None, why) when the trace never closed."""
    if THINK_CLOSE in text:
        tail = text.rpartition(THINK_CLOSE)[2]
        if THINK_OPEN in tail:  # a second trace opened after the last close and never closed
            return None, TRUNCATED
        return tail.strip(), ""
    if THINK_OPEN in text or opens_in_prompt:
        return None, TRUNCATED
    return text, ""


def opens_think(prompt: str) -> bool:
    """Whether a formatted prompt leaves the model inside an open trace (R1-style templates)."""
    return prompt.rstrip().endswith(THINK_OPEN)
