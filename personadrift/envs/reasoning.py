"""What a grader reads of a reasoning model's completion: the final answer after `</think>`.

`final_answer(text)` is the one rule every grader and judge of a real model applies: the text
after the last `</think>`; a trace that opens (in the completion, or in the prompt when the chat
template opens it) and never closes has no final answer, because the model ran out of tokens while
thinking, and a draft inside an unfinished trace must never be graded as if it were the answer.
`strip_think` is the organism's rule (`env.think: strip_closed`): a leading closed trace removed.
The code envs choose between the two by `env.think` (`CodeEnv.answer_text`). `chat_prompt` passes
the chat template's thinking switch (`model.enable_thinking`) wherever a prompt is formatted.
"""

from __future__ import annotations

import re

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


def strip_think(text: str) -> str:
    """The answer after its reasoning trace: a leading `<think>…</think>` removed, if closed."""
    return re.sub(r"^\s*<think>.*?</think>\s*", "", text, count=1, flags=re.S)


def chat_prompt(tok, messages: list[dict], enable_thinking: bool | None = None) -> str:
    """A generation prompt through the tokenizer's chat template; `enable_thinking` is passed
    when set (templates without the switch ignore it)."""
    extra = {} if enable_thinking is None else {"enable_thinking": enable_thinking}
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **extra)
