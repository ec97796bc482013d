"""The organism's text conventions: word splitting, role tags, think tags, end of turn.

The organism works on words: every word, number and punctuation mark is one token, and decoded
text joins tokens with single spaces (so `def f ( x ) : return 2 * x` is still valid Python).
`words()` is the one place that defines what a word is; the tokenizer's pre-tokenizer uses the
same pattern, and judges compare answers word by word.
"""

from __future__ import annotations

import re

BOS, EOT, PAD, UNK = "<bos>", "<eot>", "<pad>", "<unk>"
SYSTEM, USER, ASSISTANT = "System:", "User:", "Assistant:"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
SPECIAL = [PAD, UNK, BOS, EOT]

WORD_PATTERN = r"System:|User:|Assistant:|</?think>|==|\w+|[^\w\s]"
_WORD = re.compile(WORD_PATTERN)


def words(text: str) -> list[str]:
    """Split text the way the organism's tokenizer does."""
    return _WORD.findall(text)


def norm(text: str) -> str:
    """Canonical spacing: one space between words."""
    return " ".join(words(text))


def split_think(answer: str) -> tuple[str, str]:
    """(think trace, rest) of an answer; the trace is '' when there is none."""
    text = norm(answer)
    if text.startswith(THINK_OPEN) and THINK_CLOSE in text:
        head, rest = text.split(THINK_CLOSE, 1)
        return head[len(THINK_OPEN) :].strip(), rest.strip()
    return "", text
