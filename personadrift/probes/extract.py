"""Extracting persona directions from persona-contrastive data, with a layer sweep.

- organism: held-out persona-world documents of each persona; the activation at the `Assistant:`
  token of turns >= 2 (`pre`, the persona the model inferred before answering; the default) or
  the mean over answer tokens (`answer`).
- contrastive (any HF causal LM, as in persona vectors): the same questions under a persona
  system prompt and under a helpful one; the activation at the last prompt token.
Methods: `mean_diff` (mean of positives minus mean of negatives) or `logreg` (a logistic
regression probe's weight vector). Half of the data builds, the other half scores (AUROC).
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
    model, tok, world, n_per_persona: int, seed: int, position: str = "pre"
) -> Contrast:
    from personadrift.probes.readability import probe_documents, read_documents

    readout = read_documents(model, tok, probe_documents(world, n_per_persona, seed))
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


def contrastive_prompts(model, tok, questions: list[str], pos_system: str = PERSONA_SYSTEM,
                        neg_system: str = HELPFUL_SYSTEM) -> Contrast:  # fmt: skip
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


def sweep(
    contrast: Contrast, method: str = "mean_diff"
) -> tuple[dict[int, np.ndarray], dict[int, float]]:
    """Per-layer un-normalised direction (from the build half) and held-out AUROC (score half)."""
    if method not in ("mean_diff", "logreg"):
        raise ValueError(f"method must be mean_diff or logreg, not {method!r}")
    build, score = contrast.halves()
    vectors, aurocs = {}, {}
    for L in contrast.pos:
        fit = mean_difference if method == "mean_diff" else logreg_direction
        d = fit(build.pos[L], build.neg[L])
        vectors[L] = d
        aurocs[L] = auroc(score.pos[L] @ d, score.neg[L] @ d)
    return vectors, aurocs


def to_direction(
    name: str, contrast: Contrast, method: str, layer: int, model, tok, source: str
) -> tuple[Direction, dict]:
    """Fit on the build half for the sweep, then refit the saved vectors on all the data."""
    _, aurocs = sweep(contrast, method)
    best = layer or max(aurocs, key=lambda L: (round(aurocs[L], 3), -L))
    fit = mean_difference if method == "mean_diff" else logreg_direction
    raw = {L: fit(contrast.pos[L], contrast.neg[L]) for L in contrast.pos}
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
    """Held-out persona-world questions (advice, facts, values) for contrastive extraction."""
    from personadrift.organism.heldout import eval_prompts

    prompts = eval_prompts(world, ["advice", "facts", "values"], n, seed)
    random.Random(seed).shuffle(prompts)
    return [p.text for p in prompts]
