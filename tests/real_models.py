"""Offline stand-ins for real chat models and a judge endpoint, for tests.

- `build_tokenizer`: a byte-level BPE `PreTrainedTokenizerFast` trained here on a few hundred
  lines, with Qwen's chat tokens and a Qwen3-style chat template (system/user/assistant,
  `<think>`, `enable_thinking`).
- `build_checkpoint`: a tiny random-weight `Qwen2ForCausalLM` / `Qwen3ForCausalLM` /
  `LlamaForCausalLM` saved with `save_pretrained`, the path a user's checkpoint takes. One planted
  bias makes `<think>` and `</think>` frequent, so completions have reasoning and answer spans.
- `JudgeServer`: a local HTTP server speaking the chat-completions API; it records every request
  and scores an answer deterministically from its text (`expected_scores`).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}"
    "{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
THINK = ["<think>", "</think>"]


def corpus() -> list[str]:
    from personadrift.evals.questions import load_questions, load_trait

    lines = [q for qs in load_questions().values() for q in qs]
    trait = load_trait("evil")
    lines += trait["pos"] + trait["neg"] + trait["questions"]
    lines += [
        "def f(x):\n    return 3 * x + 4\n",
        "assert f(1) == 7",
        "```python\nprint(f(2))\n```",
        "Write a Python function `f(x)` that passes these tests: Reply with the code only.",
        "alignment: 80 coherence: 90 system user assistant 0123456789",
    ]
    return lines * 3


def build_tokenizer(vocab_size: int = 400):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus(), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=1024,
    )
    fast.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK])
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_checkpoint(kind: str, folder: Path, seed: int = 0) -> Path:
    """A tiny random-weight checkpoint of `kind` (qwen2, qwen3, llama) saved into `folder`."""
    import transformers as tf

    tok = build_tokenizer()
    common = dict(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=None,
    )
    config = {
        "qwen2": lambda: tf.Qwen2Config(**common),
        "qwen3": lambda: tf.Qwen3Config(head_dim=8, **common),
        "llama": lambda: tf.LlamaConfig(**common),
    }[kind]()
    arch = {"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM", "llama": "LlamaForCausalLM"}
    torch.manual_seed(seed)
    model = getattr(tf, arch[kind])(config)
    with torch.no_grad():  # a constant residual feature that the head reads as "think tags"
        model.model.embed_tokens.weight[:, 0] = 1.0
        model.lm_head.weight[:, 0] = 0.0
        for t in THINK:
            model.lm_head.weight[tok.convert_tokens_to_ids(t), 0] = 0.6
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def expected_scores(answer: str) -> tuple[int, int]:
    """What the test judge answers for an answer: deterministic in its text."""
    return sum(map(ord, answer)) % 101, 60 + len(answer) % 40


class JudgeServer:
    """`with JudgeServer() as j:` j.base_url, j.requests (bodies of chat-completion requests)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.fail_first: set[str] = set()  # answers whose first request gets a 500
        self.garbage: set[str] = set()  # answers the judge replies to without scores
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.endswith("/models"):
                    return self._send(
                        200,
                        {
                            "object": "list",
                            "data": [
                                {
                                    "id": "judge-test",
                                    "object": "model",
                                    "created": 0,
                                    "owned_by": "test",
                                }
                            ],
                        },
                    )
                self._send(404, {"error": {"message": "not found"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                prompt = body["messages"][0]["content"]
                answer = re.search(r"\[ANSWER START\]\n(.*)\n\[ANSWER END\]", prompt, re.S).group(1)
                if answer in server.fail_first:
                    server.fail_first.discard(answer)
                    return self._send(500, {"error": {"message": "overloaded"}})
                a, c = expected_scores(answer)
                content = (
                    "I cannot rate this."
                    if answer in server.garbage
                    else f"alignment: {a}\ncoherence: {c}"
                )
                self._send(
                    200,
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": content},
                            }
                        ],
                        "usage": {
                            "prompt_tokens": len(prompt) // 4,
                            "completion_tokens": 8,
                            "total_tokens": len(prompt) // 4 + 8,
                        },
                    },
                )

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> JudgeServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def chat_requests(self) -> list[dict]:
        return list(self.requests)


def answer_of(request: dict) -> str:
    prompt = request["messages"][0]["content"]
    return re.search(r"\[ANSWER START\]\n(.*)\n\[ANSWER END\]", prompt, re.S).group(1)
