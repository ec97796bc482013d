"""Probe readings: projections of the residual stream onto a persona direction.

Two readings, two costs:
- `HeldOutProbe.read`: the fixed held-out prompts of families the run never trains on, in one
  extra no-grad forward (`read_prompts`: the last prompt token, and the mean over a short greedy
  answer, if asked for), tokenized once and run only as far as the direction's layer. It keeps the baseline (the first readings) and the history of its z statistic.
- `RolloutProbe`: the step's own rollouts, read for free inside the forward GRPO already runs to
  compute the loss (`during(model, inputs)`: a hook on the direction's layer, detached, installed
  only while that forward runs, so gradient checkpointing's recomputation in backward, which
  happens after, is never read). With the tokenizer it also reads each rollout's reasoning span
  and answer span apart (`probes.spans`: `<think>…</think>` and what follows).
`read_completions` (one extra no-grad forward over prompt + completion) remains for what must know
a rollout's projection before the loss (the projection penalty, a reward term). Hooks live only
inside `probes.capture` and are gone when these return.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from personadrift.probes.capture import capture_each, layer_output
from personadrift.probes.direction import Direction
from personadrift.probes.paired import shift_stat
from personadrift.probes.spans import opened_by_prompt, reasoning_masks, span_means
from personadrift.rng import rng_untouched


def _device(model):
    return next(model.parameters()).device


def encode(tok, texts: list[str], batch_size: int = 64) -> list[dict]:
    """The texts tokenized once, in batches (left padding as the tokenizer is set up)."""
    return [
        dict(
            tok(
                texts[s : s + batch_size],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            )
        )
        for s in range(0, len(texts), batch_size)
    ]


@torch.no_grad()
def last_token_projections(
    model, batches: list[dict], directions: list[Direction]
) -> dict[str, list[float]]:
    """Each direction's projection at every encoded text's last prompt token: one forward per
    batch and distinct layer, stopped there (`layer_output`), shared by the directions read at it."""
    dev = _device(model)
    vectors = {d.name: (d.layer, d.vector().to(dev).float()) for d in directions}
    out: dict[str, list[float]] = {name: [] for name in vectors}
    was_training = model.training
    model.eval()
    try:
        for enc in batches:
            enc = {k: v.to(dev) for k, v in enc.items()}
            width = enc["input_ids"].shape[1]
            for layer in sorted({layer for layer, _ in vectors.values()}):
                ids, mask = enc["input_ids"], enc["attention_mask"]
                acts = layer_output(model, layer, input_ids=ids, attention_mask=mask).float()
                for name, (at, d) in vectors.items():
                    if at == layer:
                        out[name] += (acts @ d)[:, width - 1].tolist()
    finally:
        model.train(was_training)
    return out


@torch.no_grad()
def read_batches(
    model, tok, batches: list[dict], direction: Direction, answer_tokens: int
) -> tuple[list[float], list[float]]:
    """(last-prompt-token projection, mean projection over a greedy answer) per encoded text.

    Without answer tokens the forward stops at the direction's layer (`last_token_projections`)."""
    if answer_tokens == 0:
        return last_token_projections(model, batches, [direction])[direction.name], []
    layer, dev = direction.layer, _device(model)
    d = direction.vector().to(dev)
    was_training = model.training
    model.eval()
    last, answer = [], []
    try:
        for enc in batches:
            enc = {k: v.to(dev) for k, v in enc.items()}
            width = enc["input_ids"].shape[1]
            seqs = model.generate(
                **enc,
                max_new_tokens=answer_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
            )
            mask = torch.cat(
                [enc["attention_mask"], (seqs[:, width:] != tok.pad_token_id).long()], dim=1
            )
            acts = layer_output(model, layer, input_ids=seqs, attention_mask=mask)
            proj = acts.float() @ d.float()  # (B, T)
            last += proj[:, width - 1].tolist()
            ans_mask = mask[:, width:].float()
            means = (proj[:, width:] * ans_mask).sum(1) / ans_mask.sum(1).clamp(min=1)
            answer += means.tolist()
    finally:
        model.train(was_training)
    return last, answer


def read_prompts(
    model, tok, texts: list[str], direction: Direction, answer_tokens: int, batch_size: int = 64
) -> tuple[list[float], list[float]]:
    """(last-prompt-token projection, mean projection over a greedy answer) per text."""
    return read_batches(model, tok, encode(tok, texts, batch_size), direction, answer_tokens)


@torch.no_grad()
def read_completions(
    model,
    tok,
    prompts: list[str],
    completions: list[str],
    direction: Direction,
    batch_size: int = 32,
) -> list[float]:
    """Mean projection over each completion's tokens (prompt + completion in one forward)."""
    layer, d = direction.layer, direction.vector().to(_device(model))
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, len(prompts), batch_size):
            p_ids = [
                tok(p, add_special_tokens=False)["input_ids"]
                for p in prompts[start : start + batch_size]
            ]
            c_ids = [
                tok(c, add_special_tokens=False)["input_ids"] or [tok.eos_token_id]
                for c in completions[start : start + batch_size]
            ]
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
            acts = layer_output(model, layer, input_ids=ids.to(dev), attention_mask=mask.to(dev))
            proj = (acts.float() @ d.float()).cpu()
            out += ((proj * comp).sum(1) / comp.sum(1)).tolist()
    finally:
        model.train(was_training)
    return out


class HeldOutProbe:
    """The persona direction read on fixed held-out prompts; `read` returns the step's values.

    - `probe/<dir>/eval_mean`: mean last-prompt-token projection over the held-out prompts;
      `probe/<dir>/eval_answer_mean`: the same over a short greedy answer;
    - `probe/<dir>/z`: shift of eval_mean from the baseline (the first `baseline_readings`
      readings) in units of the standard error of the mean over the prompts;
    - `probe/<dir>/shift`: the mean per-prompt change from the first reading in units of that
      reading's spread across prompts (`paired.shift_stat`, the statistic of `probe_shift`);
    - `probe/<dir>/read_seconds`: what the reading cost.
    `state()`/`restore()` carry the baseline and history across a resume or a rollback.
    """

    def __init__(
        self, direction: Direction, texts: list[str], answer_tokens: int, baseline_readings: int
    ) -> None:
        self.direction = direction
        self.texts = texts
        self.answer_tokens = answer_tokens
        self.baseline_readings = baseline_readings
        self.baseline: list[list[float]] = []  # per-prompt readings of the baseline readings
        self.history: list[tuple[int, float]] = []  # (step, z)
        self.last: list[float] = []  # the last reading's per-prompt projections
        self.batches: list[dict] | None = None  # the texts tokenized once, at the first reading

    def key(self, what: str) -> str:
        return f"probe/{self.direction.name}/{what}"

    def state(self) -> dict:
        return {"baseline": self.baseline, "history": self.history}

    def restore(self, state: dict, up_to: int | None = None) -> None:
        """The saved baseline and history (readings after step `up_to` dropped: a rollback)."""
        self.baseline = state.get("baseline", [])
        self.history = [tuple(h) for h in state.get("history", [])]
        if up_to is not None:
            self.history = [h for h in self.history if h[0] <= up_to]

    def encoded(self, tok) -> list[dict]:
        """The held-out prompts tokenized once, at the first reading."""
        if self.batches is None:
            self.batches = encode(tok, self.texts)
        return self.batches

    def read(self, model, tok, step: int) -> dict[str, float]:
        t0 = time.perf_counter()
        with rng_untouched():  # the run samples the same rollouts with or without readings
            last, answer = read_batches(
                model, tok, self.encoded(tok), self.direction, self.answer_tokens
            )
        return self.update(step, last, answer, time.perf_counter() - t0)

    def update(
        self, step: int, last: list[float], answer: list[float], seconds: float
    ) -> dict[str, float]:
        """The step's values from a reading's per-prompt projections (taken here or shared)."""
        self.last = last
        if len(self.baseline) < self.baseline_readings:
            self.baseline.append(last)
        base_mean = statistics.fmean([v for reading in self.baseline for v in reading])
        se = statistics.pstdev(self.baseline[0]) / math.sqrt(len(last)) or 1e-9
        mean = statistics.fmean(last)
        out = {self.key("eval_mean"): mean, self.key("z"): (mean - base_mean) / se}
        out[self.key("shift")] = shift_stat(self.baseline[0], last)
        if answer:
            out[self.key("eval_answer_mean")] = statistics.fmean(answer)
        out[self.key("read_seconds")] = seconds
        self.history.append((step, out[self.key("z")]))
        return out


def read_together(probes: list[HeldOutProbe], model, tok, step: int) -> dict[str, float]:
    """Every probe's values at one step. Probes of the same held-out prompts without answer tokens
    share one forward per layer (`last_token_projections`), and each reports that forward's time;
    a probe with answer tokens reads on its own."""
    shared = [p for p in probes if p.answer_tokens == 0 and p.texts == probes[0].texts]
    out: dict[str, float] = {}
    if shared:
        t0 = time.perf_counter()
        with rng_untouched():
            batches = shared[0].encoded(tok)
            lasts = last_token_projections(model, batches, [p.direction for p in shared])
        seconds = time.perf_counter() - t0
        for p in shared:
            p.batches = batches
            out |= p.update(step, lasts[p.direction.name], [], seconds)
    for p in probes:
        if p not in shared:
            out |= p.read(model, tok, step)
    return out


def random_direction(like: Direction, seed: int) -> Direction:
    """A seeded random unit vector at each layer of `like`: the null a persona direction's rise is
    compared with (a rise of the residual stream in every direction moves it too)."""
    g = torch.Generator().manual_seed(seed)
    vectors = {}
    for layer in sorted(like.vectors):
        v = torch.randn(like.vectors[layer].shape[0], generator=g)
        vectors[layer] = v / v.norm()
    meta = {k: like.meta[k] for k in ("fingerprint", "vocab_fingerprint") if k in like.meta}
    return Direction("random", vectors, like.layer, {**meta, "method": "random", "seed": seed})


class RolloutProbe:
    """Each rollout's mean projection over its completion tokens, taken in GRPO's loss forward.

    `during(model, inputs)` wraps one call of the trainer's `compute_loss` (inputs: TRL's batch
    with `prompt_ids`, `completion_ids`, `completion_mask`); `take()` returns the projections
    gathered since the last call (one step: every micro-batch of its gradient accumulation).
    Given the tokenizer, `take_spans()` returns the same over each rollout's reasoning span and its
    answer span (NaN for a rollout without that span)."""

    def __init__(self, direction: Direction, tok=None) -> None:
        self.direction = direction
        self.tok = tok
        self.values: list[float] = []
        self.spans: dict[str, list[float]] = {"think": [], "answer": []}

    @contextmanager
    def during(self, model, inputs: dict) -> Iterator[None]:
        d = self.direction.vector()

        def project(h: torch.Tensor) -> torch.Tensor:  # (b, T, D) -> (b, T)
            return h.float() @ d.to(h.device).float()

        with capture_each(model, self.direction.layer, project) as chunks:
            yield
        if not chunks:
            return
        width = inputs["prompt_ids"].shape[1]
        proj = torch.cat(chunks)[:, width:]  # (B, C): the completion tokens
        mask = inputs["completion_mask"].to(proj.device).float()
        self.values += ((proj * mask).sum(1) / mask.sum(1).clamp(min=1)).tolist()
        if self.tok is not None:
            opened = opened_by_prompt(self.tok, inputs["prompt_ids"], inputs.get("prompt_mask"))
            spans = reasoning_masks(
                self.tok, inputs["completion_ids"], inputs["completion_mask"], opened
            )
            for what, span in zip(("think", "answer"), spans):
                self.spans[what] += span_means(proj, span.to(proj.device)).tolist()

    def take(self) -> list[float]:
        values, self.values = self.values, []
        return values

    def take_spans(self) -> dict[str, list[float]]:
        spans, self.spans = self.spans, {"think": [], "answer": []}
        return spans

    def span_metrics(self, spans: dict[str, list[float]]) -> dict[str, float]:
        """`probe/<dir>/rollout_think_mean` and `rollout_answer_mean`: the mean over the rollouts
        that have the span; a span no rollout has is left out, not logged as 0."""
        out = {}
        for what, values in spans.items():
            present = [v for v in values if not math.isnan(v)]
            if present:
                out[f"probe/{self.direction.name}/rollout_{what}_mean"] = statistics.fmean(present)
        return out
