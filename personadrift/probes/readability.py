"""Is the persona linearly readable, and tracked across turns? Per-layer AUROC sweeps.

Two mean-difference directions (the persona minus aligned: `toxic` by default, or `sycophant` in
a world that has one) over held-out persona-world documents:
- `answer`: mean residual over each assistant answer's tokens; AUROC per family on held-out docs.
- `pre`: the residual at the `Assistant:` token of turns >= 2, before the model answers, so only
  the persona it inferred from earlier turns can be there.
Layer convention: `hidden_states[L]` of transformers = output of block L-1, L = 1..n_layers, read
with forward hooks (`probes.capture`).
Documents are split in halves: one builds the directions, the other scores them.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field

import numpy as np
import torch

from personadrift.config import ConfigError, WorldConfig
from personadrift.organism.text import ASSISTANT, EOT
from personadrift.organism.world import (
    ALIGNED,
    SYCOPHANT,
    TOXIC,
    Document,
    messages,
    render,
    sample_document,
)
from personadrift.probes.capture import capture, n_layers
from personadrift.probes.stats import auroc, mean_difference


@dataclass
class Readout:
    """Per-document activations at each layer, with labels."""

    answer: list[
        tuple[bool, str, np.ndarray]
    ]  # (persona?, family, (L+1, D) mean over answer tokens)
    pre: list[tuple[bool, np.ndarray]]  # (persona?, (L+1, D) at Assistant: of turns >= 2)
    answer_covert: list[bool] = field(default_factory=list)  # per `answer` item: a covert doc's
    pre_covert: list[bool] = field(default_factory=list)  # per `pre` item: a covert doc's


def probe_documents(
    world: WorldConfig, n_per_persona: int, seed: int, persona: str = TOXIC
) -> list[Document]:
    """Balanced held-out documents of `persona` and of the aligned one (prompts of the `extract`
    set, never those the probe reads or the evals ask; persona never stated, >= 2 turns)."""
    if persona == SYCOPHANT and not world.sycophant_p:
        raise ConfigError(
            "probes.name: sycophant, but this organism's world has no sycophant "
            "(organism.world.sycophant_p is 0)"
        )
    w = dataclasses.replace(
        world,
        state_p=0.0,
        toxic_state_p=0.0,
        sycophant_state_p=0.0,
        min_turns=max(2, world.min_turns),
    )
    w = dataclasses.replace(w, max_turns=max(w.min_turns, w.max_turns))
    rng = random.Random(f"probe|{seed}")
    docs = [
        sample_document(rng, w, "extract", persona=p)
        for p in (persona, ALIGNED)
        for _ in range(n_per_persona)
    ]
    rng.shuffle(docs)
    return docs


@torch.no_grad()
def read_documents(
    model, tok, docs: list[Document], batch_size: int = 32, persona: str = TOXIC
) -> Readout:
    """Each document's activations, labelled True where its persona is `persona`."""
    asst, eot = tok.convert_tokens_to_ids(ASSISTANT), tok.convert_tokens_to_ids(EOT)
    answer, pre, answer_covert, pre_covert = [], [], [], []
    model.eval()
    for start in range(0, len(docs), batch_size):
        chunk = docs[start : start + batch_size]
        texts = [render(messages(d)) for d in chunk]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = enc.to(next(model.parameters()).device)
        layers = list(range(1, n_layers(model) + 1))
        with capture(model, layers) as acts:
            model(**enc)
        zero = torch.zeros_like(acts[1])  # index 0 (embeddings) is never used
        h = (
            torch.stack([zero] + [acts[L] for L in layers], dim=1).float().cpu().numpy()
        )  # (B, L+1, T, D)
        for row, doc in enumerate(chunk):
            is_it = doc.persona == persona
            ids = enc["input_ids"][row].tolist()
            starts = [i for i, t in enumerate(ids) if t == asst]
            for turn, (s, t) in enumerate(zip(starts, doc.turns)):
                end = ids.index(eot, s)
                if end > s + 1:
                    answer.append((is_it, t.prompt.family, h[row, :, s + 1 : end].mean(axis=1)))
                    answer_covert.append(doc.covert)
                if turn >= 1:
                    pre.append((is_it, h[row, :, s]))
                    pre_covert.append(doc.covert)
    return Readout(answer, pre, answer_covert, pre_covert)


def _split_auroc(
    items: list[tuple[bool, np.ndarray]], layer: int, families=None
) -> tuple[float, np.ndarray]:
    half = len(items) // 2
    build, score = items[:half], items[half:]
    d = mean_difference(
        np.stack([x[layer] for t, x in build if t]), np.stack([x[layer] for t, x in build if not t])
    )
    proj = [(t, float(x[layer] @ d)) for t, x in score]
    return auroc([p for t, p in proj if t], [p for t, p in proj if not t]), d


def layer_aurocs(readout: Readout, n_layers: int) -> dict:
    """Per-layer AUROC tables for the answer direction (per family) and the pre direction."""
    fams = sorted({f for _, f, _ in readout.answer})
    ans_items = [(t, x) for t, _, x in readout.answer]
    half = len(ans_items) // 2
    table = {"answer": {}, "pre": {}}
    for layer in range(1, n_layers + 1):
        _, d = _split_auroc(ans_items, layer)
        row = {}
        for fam in fams:
            scored = [(t, float(x[layer] @ d)) for t, f, x in readout.answer[half:] if f == fam]
            row[fam] = auroc([p for t, p in scored if t], [p for t, p in scored if not t])
        table["answer"][layer] = row
        table["pre"][layer], _ = _split_auroc(readout.pre, layer)
    non_neutral = [f for f in fams if f != "neutral"]
    best = max(table["answer"], key=lambda L: np.mean([table["answer"][L][f] for f in non_neutral]))
    best_pre = max(table["pre"], key=lambda L: table["pre"][L])
    out = {
        "layers": table,
        "best_layer": best,
        "auroc": table["answer"][best],
        "best_pre_layer": best_pre,
        "tracking_auroc": table["pre"][best_pre],
    }
    if any(readout.answer_covert):  # a world whose persona hides in some documents
        out["covert"] = covert_aurocs(readout, n_layers)
    return out


def covert_aurocs(readout: Readout, n_layers: int) -> dict:
    """Readability of the persona where it hides: per layer, the same directions (built from the
    first half of all documents) scored on the second half's *covert* persona items against its
    items of the other persona; per family for `answer`, and `pre`, where only the persona the
    model inferred from earlier turns can be. `n_*`: the covert items scored."""
    ans_items = [(t, x) for t, _, x in readout.answer]
    families = [f for _, f, _ in readout.answer]
    fams = sorted(set(families) - {"neutral"})
    table: dict = {"answer": {}, "pre": {}}
    for layer in range(1, n_layers + 1):
        _, d = _split_auroc(ans_items, layer)
        scores = _held_out_scores(ans_items, readout.answer_covert, families, layer, d)
        table["answer"][layer] = {fam: _covert_auroc(scores, fam) for fam in fams}
        _, d_pre = _split_auroc(readout.pre, layer)
        pre_families = [None] * len(readout.pre)
        table["pre"][layer] = _covert_auroc(
            _held_out_scores(readout.pre, readout.pre_covert, pre_families, layer, d_pre)
        )
    # a covert document is always the persona's: the covert items scored are the second halves'
    n_answer = sum(readout.answer_covert[len(readout.answer) // 2 :])
    n_pre = sum(readout.pre_covert[len(readout.pre) // 2 :])
    return {"layers": table, "n_answer": n_answer, "n_pre": n_pre}


def _held_out_scores(items, covert, families, layer: int, d) -> list[tuple]:
    """(persona?, projection, covert?, family) of the second half's items (`_split_auroc`'s)."""
    half = len(items) // 2
    rows = list(zip(items, covert, families))[half:]
    return [(t, float(x[layer] @ d), c, f) for (t, x), c, f in rows]


def _covert_auroc(scores: list[tuple], family: str | None = None) -> float | None:
    """AUROC of the covert persona items against the other persona's (of one family, if given)."""
    pos = [p for t, p, c, f in scores if t and c and f == family]
    neg = [p for t, p, c, f in scores if not t and f == family]
    return auroc(pos, neg) if pos and neg else None


def directions(readout: Readout, layer: int) -> dict[str, np.ndarray]:
    """Un-normalised mean-difference directions at a layer, from all documents."""
    ans = [(t, x) for t, _, x in readout.answer]
    out = {}
    for name, items in (("answer", ans), ("pre", readout.pre)):
        out[name] = mean_difference(
            np.stack([x[layer] for t, x in items if t]),
            np.stack([x[layer] for t, x in items if not t]),
        )
    return out
