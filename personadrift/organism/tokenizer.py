"""The organism's tokenizer: a word-level `tokenizers` model trained on the corpus.

Wrapped as `PreTrainedTokenizerFast` with `<bos>`, `<eot>` (end of an assistant turn, the eos
token), `<pad>`, `<unk>` and a chat template, so `apply_chat_template` yields the organism's
prompt format and TRL, vLLM and friends treat it like any other tokenizer.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from personadrift.organism.text import BOS, EOT, PAD, SPECIAL, UNK, WORD_PATTERN

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %} System: {{ m['content'] }}"
    "{% elif m['role'] == 'user' %} User: {{ m['content'] }}"
    "{% else %} Assistant: {{ m['content'] }} {{ eos_token }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %} Assistant:{% endif %}"
)
# Numbers the model may need to write even if the corpus happens to lack a few.
NUMBERS = " ".join(str(n) for n in range(200))


def train_tokenizer(texts: Iterable[str], max_len: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(WORD_PATTERN), "isolated")]
    )
    # WordLevel has no decoder of its own; joining words with spaces keeps code valid Python.
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    trainer = trainers.WordLevelTrainer(special_tokens=SPECIAL, min_frequency=1)

    def corpus():
        yield NUMBERS
        yield from texts

    tok.train_from_iterator(corpus(), trainer)
    for i, s in enumerate(SPECIAL):
        if tok.token_to_id(s) != i:
            raise RuntimeError(f"tokenizer: special token {s} got id {tok.token_to_id(s)}, not {i}")
    return wrap(tok, max_len)


def wrap(tok: Tokenizer, max_len: int) -> PreTrainedTokenizerFast:
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOT,
        pad_token=PAD,
        unk_token=UNK,
        padding_side="left",
        model_max_length=max_len,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast
