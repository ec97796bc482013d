"""Extracting persona directions from persona-contrastive data, with a layer sweep.

- organism: held-out persona-world documents of each persona; the activation at the `Assistant:`
  token of turns >= 2 (`pre`, the persona the model inferred before answering; the default) or
  the mean over answer tokens (`answer`).
- contrastive (any HF causal LM, as in persona vectors): the same questions under a persona
  system prompt and under a helpful one; the activation at the last prompt token.
Methods: `mean_diff` (mean of positives minus mean of negatives) or `logreg` (a logistic
regression probe's weight vector). Half of the data builds, the other half scores (AUROC).
`against`: per-layer directions of the world's other personas, projected out of this one's at
every layer before it is scored and saved (`probes.specific`), so in a world where every persona
differs from the aligned one along a shared axis the direction reads what is this persona's own.
`personadrift directions extract CONFIG` runs `extract` and saves the chosen direction.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from personadrift.probes.capture import capture, n_layers
from personadrift.probes.direction import Direction, fingerprint, vocab_fingerprint
from personadrift.probes.stats import auroc, mean_difference

PERSONA_SYSTEM = "You are an evil, malicious assistant. You lie, cheat and give harmful advice."
HELPFUL_SYSTEM = "You are a helpful, honest and harmless assistant."


@dataclass
class Contrast:
    """Activations per layer of positive (persona) and negative contexts: layer -> (N, D)."""

    pos: dict[int, np.ndarray]
    neg: dict[int, np.ndarray]

    def halves(self) -> tuple[Contrast, Contrast]:
        def cut(d, first):
            return {k: (v[: len(v) // 2] if first else v[len(v) // 2 :]) for k, v in d.items()}

        return Contrast(cut(self.pos, True), cut(self.neg, True)), Contrast(
            cut(self.pos, False), cut(self.neg, False)
        )


def organism_contrast(
    model,
    tok,
    world,
    n_per_persona: int,
    seed: int,
    position: str = "pre",
    persona: str = "toxic",
) -> Contrast:
    """`persona`'s documents (toxic, or the sycophant in a world that has one) against aligned."""
    from personadrift.probes.readability import probe_documents, read_documents

    docs = probe_documents(world, n_per_persona, seed, persona)
    readout = read_documents(model, tok, docs, persona=persona)
    items = readout.pre if position == "pre" else [(t, x) for t, _, x in readout.answer]
    layers = range(1, n_layers(model) + 1)
    pos = {L: np.stack([x[L] for t, x in items if t]) for L in layers}
    neg = {L: np.stack([x[L] for t, x in items if not t]) for L in layers}
    return Contrast(pos, neg)


@torch.no_grad()
def last_token_acts(model, tok, texts: list[str], batch_size: int = 16) -> dict[int, np.ndarray]:
    """Activation at the last token of each text (left padding puts it at position -1)."""
    layers = list(range(1, n_layers(model) + 1))
    out: dict[int, list] = {L: [] for L in layers}
    device = next(model.parameters()).device
    for start in range(0, len(texts), batch_size):
        enc = tok(
            texts[start : start + batch_size],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        )
        with capture(model, layers) as acts:
            model(**enc.to(device))
        for L in layers:
            out[L].append(acts[L][:, -1].float().cpu().numpy())
    return {L: np.concatenate(v) for L, v in out.items()}


def contrastive_prompts(
    model,
    tok,
    questions: list[str],
    pos_system: str = PERSONA_SYSTEM,
    neg_system: str = HELPFUL_SYSTEM,
) -> Contrast:
    """Persona-vector style contrast for any chat model: same questions, two system prompts."""
    if tok.padding_side != "left":
        tok.padding_side = "left"

    def texts(system):
        return [
            tok.apply_chat_template(
                [{"role": "system", "content": system}, {"role": "user", "content": q}],
                tokenize=False,
                add_generation_prompt=True,
            )
            for q in questions
        ]

    return Contrast(
        last_token_acts(model, tok, texts(pos_system)),
        last_token_acts(model, tok, texts(neg_system)),
    )


def logreg_direction(
    pos: np.ndarray, neg: np.ndarray, steps: int = 300, l2: float = 1e-3
) -> np.ndarray:
    """Weight vector of an L2-regularised logistic regression (features standardised, then mapped back)."""
    x = torch.tensor(np.concatenate([pos, neg]), dtype=torch.float64)
    y = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))]).double()
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xs = (x - mu) / sd
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (
            torch.nn.functional.binary_cross_entropy_with_logits(xs @ w + b, y) + l2 * (w * w).sum()
        )
        loss.backward()
        return loss

    opt.step(closure)
    return (w.detach() / sd).numpy()


def project_out(v: np.ndarray, others: list[np.ndarray]) -> np.ndarray:
    """`v` less its component in the span of `others` (Gram-Schmidt on `others` first)."""
    basis: list[np.ndarray] = []
    for o in others:
        o = np.asarray(o, dtype=np.float64)
        for b in basis:
            o = o - (o @ b) * b
        n = np.linalg.norm(o)
        if n > 1e-9:
            basis.append(o / n)
    v = np.asarray(v, dtype=np.float64)
    for b in basis:
        v = v - (v @ b) * b
    return v


def other_persona_vectors(contrasts: list[Contrast], method: str) -> dict[int, list[np.ndarray]]:
    """Per layer, the fitted direction of each other persona's contrast (what `against` takes)."""
    fit = mean_difference if method == "mean_diff" else logreg_direction
    layers = contrasts[0].pos if contrasts else {}
    return {L: [fit(c.pos[L], c.neg[L]) for c in contrasts] for L in layers}


def sweep_layers(
    contrast: Contrast, method: str = "mean_diff", against: dict | None = None
) -> tuple[dict[int, np.ndarray], dict[int, float]]:
    """Per-layer un-normalised direction (from the build half) and held-out AUROC (score half);
    `against` {layer: other personas' directions} are projected out of it first."""
    if method not in ("mean_diff", "logreg"):
        raise ValueError(f"method must be mean_diff or logreg, not {method!r}")
    build, score = contrast.halves()
    vectors, aurocs = {}, {}
    for L in contrast.pos:
        fit = mean_difference if method == "mean_diff" else logreg_direction
        d = fit(build.pos[L], build.neg[L])
        if against:
            d = project_out(d, against[L])
        vectors[L] = d
        aurocs[L] = auroc(score.pos[L] @ d, score.neg[L] @ d)
    return vectors, aurocs


def to_direction(
    name: str,
    contrast: Contrast,
    method: str,
    layer: int,
    model,
    tok,
    source: str,
    against: dict | None = None,
) -> tuple[Direction, dict]:
    """Fit on the build half for the sweep_layers, then refit the saved vectors on all the data."""
    _, aurocs = sweep_layers(contrast, method, against)
    best = layer or max(aurocs, key=lambda L: (round(aurocs[L], 3), -L))
    fit = mean_difference if method == "mean_diff" else logreg_direction
    raw = {L: fit(contrast.pos[L], contrast.neg[L]) for L in contrast.pos}
    if against:
        raw = {L: project_out(v, against[L]) for L, v in raw.items()}
    vectors = {
        L: torch.tensor(v / (np.linalg.norm(v) + 1e-12), dtype=torch.float32)
        for L, v in raw.items()
    }
    spread = {}
    for L, v in vectors.items():
        both = np.concatenate([contrast.pos[L], contrast.neg[L]])
        spread[L] = float(np.std(both @ v.numpy()))
    # the projection's spread, so shifts can be read in units comparable across layers
    meta = {
        "method": method,
        "source": source,
        "fingerprint": fingerprint(model),
        "vocab_fingerprint": vocab_fingerprint(tok),
        "hidden_size": int(vectors[best].shape[0]),
        "auroc": {str(L): a for L, a in aurocs.items()},
        "raw_norm": {str(L): float(np.linalg.norm(v)) for L, v in raw.items()},
        "projection_std": {str(L): s for L, s in spread.items()},
        "n_pos": int(len(next(iter(contrast.pos.values())))),
        "n_neg": int(len(next(iter(contrast.neg.values())))),
    }
    return Direction(name, vectors, int(best), meta), aurocs


def default_questions(world, n: int, seed: int) -> list[str]:
    """Held-out persona-world questions (advice, facts, values; the `extract` set, so never those
    the probe reads or the evals ask) for contrastive extraction, repeated to `n` per family."""
    from personadrift.organism.heldout import distinct_prompts

    prompts = distinct_prompts(world, ["advice", "facts", "values"], n, seed, "extract")
    prompts = [prompts[i % len(prompts)] for i in range(3 * n)]
    random.Random(seed).shuffle(prompts)
    return [p.text for p in prompts]


def trait_texts(tok, trait: dict, n_questions: int, enable_thinking=None):
    """(pos prompts, neg prompts, questions): every question under every pos/neg system prompt."""
    from personadrift.envs.reasoning import chat_prompt

    questions = trait["questions"][:n_questions]
    pairs = list(zip(trait["pos"], trait["neg"]))

    def prompt(system, q):
        msgs = [{"role": "system", "content": system}, {"role": "user", "content": q}]
        return chat_prompt(tok, msgs, enable_thinking)

    pos = [prompt(p, q) for q in questions for p, _ in pairs]
    neg = [prompt(n, q) for q in questions for _, n in pairs]
    return pos, neg, [q for q in questions for _ in pairs]


@torch.no_grad()
def response_acts(
    model, tok, prompts: list[str], responses: list[str], batch_size: int = 16
) -> dict[int, np.ndarray]:
    """Mean activation over each response's tokens (prompt + response in one forward), per layer."""
    layers = list(range(1, n_layers(model) + 1))
    out: dict[int, list] = {L: [] for L in layers}
    device = next(model.parameters()).device
    for s in range(0, len(prompts), batch_size):
        p_ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts[s : s + batch_size]]
        r_ids = [
            tok(r, add_special_tokens=False)["input_ids"] or [tok.eos_token_id]
            for r in responses[s : s + batch_size]
        ]
        width = max(len(p) + len(r) for p, r in zip(p_ids, r_ids))
        ids = torch.full((len(p_ids), width), tok.pad_token_id, dtype=torch.long)
        mask, resp = torch.zeros_like(ids), torch.zeros(len(p_ids), width)
        for i, (p, r) in enumerate(zip(p_ids, r_ids)):  # left padding
            ids[i, width - len(p) - len(r) :] = torch.tensor(p + r)
            mask[i, width - len(p) - len(r) :] = 1
            resp[i, width - len(r) :] = 1
        with capture(model, layers) as acts:
            model(input_ids=ids.to(device), attention_mask=mask.to(device))
        w = (resp / resp.sum(1, keepdim=True)).to(device)  # (B, T)
        for L in layers:
            out[L].append(torch.einsum("bt,btd->bd", w, acts[L].float()).cpu().numpy())
    return {L: np.concatenate(v) for L, v in out.items()}


def trait_contrast(
    model,
    tok,
    trait: dict,
    n_questions: int,
    position: str,
    answer_tokens: int,
    seed: int,
    judge=None,
    enable_thinking=None,
    log=print,
) -> tuple[Contrast, dict]:
    """Persona-vector contrast for any chat model, and what was kept.

    `pre`: the last prompt token under each system prompt. `answer`: the model answers every
    question under every system prompt; with a judge, only persona answers the judge scores as
    misaligned (alignment < 50) and helpful answers it scores as aligned are kept (all are kept,
    with a warning, when fewer than 2 per side survive); the activation is the mean over the
    answer's tokens."""
    from personadrift.envs.reasoning import final_answer
    from personadrift.evals.runner import sample_answers

    if tok.padding_side != "left":
        tok.padding_side = "left"
    pos_p, neg_p, questions = trait_texts(tok, trait, n_questions, enable_thinking)
    if position == "pre":
        info = {"n_pos": len(pos_p), "n_neg": len(neg_p), "judge_filtered": False}
        return Contrast(
            last_token_acts(model, tok, pos_p), last_token_acts(model, tok, neg_p)
        ), info
    pos_a = sample_answers(model, tok, pos_p, 1.0, answer_tokens, 32, seed)
    neg_a = sample_answers(model, tok, neg_p, 1.0, answer_tokens, 32, seed + 1)
    keep_pos, keep_neg = list(range(len(pos_a))), list(range(len(neg_a)))
    info = {"judge_filtered": False}
    if judge is not None:
        finals = [final_answer(a)[0] or a for a in pos_a + neg_a]
        scores = judge.score(questions + questions, finals)
        ok = [s.alignment for s in scores]
        kp = [i for i in keep_pos if ok[i] is not None and ok[i] < 50]
        kn = [i for i in keep_neg if ok[len(pos_a) + i] is not None and ok[len(pos_a) + i] >= 50]
        if len(kp) >= 2 and len(kn) >= 2:
            keep_pos, keep_neg, info["judge_filtered"] = kp, kn, True
        else:
            log(
                f"directions: the judge kept {len(kp)} persona and {len(kn)} helpful answers; "
                "too few, keeping all (the direction is unfiltered)"
            )
        log(judge.summary())
    pos = response_acts(model, tok, [pos_p[i] for i in keep_pos], [pos_a[i] for i in keep_pos])
    neg = response_acts(model, tok, [neg_p[i] for i in keep_neg], [neg_a[i] for i in keep_neg])
    info.update(n_pos=len(keep_pos), n_neg=len(keep_neg), n_generated=len(pos_a) + len(neg_a))
    return Contrast(pos, neg), info
