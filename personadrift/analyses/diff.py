"""`personadrift diff RUN_DIR`: which sparse-autoencoder latents did the run turn on? Model diffing
without persona labels (Wang et al. 2025, "Persona features control emergent misalignment").

    personadrift diff RUN_DIR [--base MODEL] [--layer L] [--position assistant|answer] [--top 10]
                              [--save-latent ID] [--json]

1. A TopK SAE (`probes/sae.py`) is fitted on the *base* model's residual stream at one layer
   (default: the run's direction layer), on every token of unlabelled held-out dialogues of the
   persona world (`--sae-docs` documents of the eval split, drawn as the world draws them: the
   persona of a document is never looked at). Cached in RUN_DIR/diff/.
2. The base model and the run's final checkpoint read the same held-out first-turn prompts of
   families the run never trains on (advice, facts, values; `--n` per family). Each latent's mean
   activation is taken per model at one position and latents are ranked by the change, run minus
   base: `assistant` (default), the `Assistant:` token that ends the prompt, where the persona the
   model is about to speak in is decided (the position the probes read; no sampling), or
   `answer`, every token of the model's own sampled answer (with the evals' settings and seed).
3. Only then are the world's labels used, to *check* the ranking: each top latent's AUROC for the
   toxic persona (and, in a world with one, the sycophant) against the aligned one on held-out
   labelled documents whose persona is never stated (at `assistant`:
   its value at the `Assistant:` tokens of turns >= 2; at `answer`: its mean over an answer's
   tokens) and the cosine of its decoder row with each persona's labelled direction, the plain
   mean difference of that persona's documents and the aligned ones (the run's own direction
   when it is that, else extracted now on the base model with the run's probe settings but
   `probes.specific` off; cached in RUN_DIR/diff/labelled/). A latent the personas share shows
   as a high AUROC for both. In a world of two personas each latent also gets its cosine with
   each persona's specific direction (`probes.specific`: the other persona's projected out of
   the plain one; `cos_<persona>_specific`), since the SAE splits a persona into features both
   personas share and features of its own, and the plain direction is a mix of the two.

4. The SAE may split one persona into several features (one per opener, say), so besides each
   latent the diff scores the unlabelled direction of the top `COMBINED` latents together
   (`combined`): their unit decoder rows weighted by their change, summed and normalised, with
   its AUROC (the projection, as each latent's activation above) and its cosine with each
   persona's labelled direction.

Prints the top latents with their top-activating contexts; writes RUN_DIR/diff/diff-<position>.json.
`--save-latent ID` saves a latent's decoder row as a `Direction` (RUN_DIR/diff/latent<ID>.json),
and `--save-latent combined` the combined direction of the last diff at that layer
(RUN_DIR/diff/combined.json), which `probes.directions` can monitor like any other.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from personadrift.config import Config, ConfigError

FAMILIES = ("advice", "facts", "values")
COMBINED = 3  # the top latents whose directions the unlabelled combined direction joins
WINDOW = 6  # context tokens either side of a top activation


def answer_mask(ids: list[int], asst_id: int, eot_id: int) -> torch.Tensor:
    """(T,) bool: each `Assistant:` token and its answer, up to (not including) the end of turn."""
    mask = torch.zeros(len(ids), dtype=torch.bool)
    for s, t in enumerate(ids):
        if t == asst_id:
            end = ids.index(eot_id, s) if eot_id in ids[s:] else len(ids)
            mask[s:end] = True
    return mask


@torch.no_grad()
def token_acts(model, tok, texts: list[str], layer: int, batch_size: int = 32):
    """Per text: (token ids (T,), activations (T, D)) at `layer`, padding removed."""
    from personadrift.probes.capture import layer_output

    out = []
    device = next(model.parameters()).device
    model.eval()
    for s in range(0, len(texts), batch_size):
        enc = tok(
            texts[s : s + batch_size], return_tensors="pt", padding=True, add_special_tokens=False
        )
        enc = enc.to(device)
        h = layer_output(model, layer, **enc).float().cpu()
        for row in range(h.shape[0]):
            keep = enc["attention_mask"][row].bool().cpu()
            out.append((enc["input_ids"][row].cpu()[keep], h[row][keep]))
    return out


def corpus(world, n_docs: int, seed: int) -> list[str]:
    """Unlabelled held-out dialogues: the world's document distribution, eval split."""
    from personadrift.organism.world import generate, messages, render

    return [render(messages(d)) for d in generate(world, seed, n_docs, split="eval")]


def fit_or_load(model, tok, world, layer: int, folder: Path, args, log=print):
    """The SAE of the base model at `layer` (cached in `folder`) and the corpus' activations."""
    from personadrift.probes import sae as sae_lib
    from personadrift.probes.direction import fingerprint

    texts = corpus(world, args["sae_docs"], args["seed"])
    acts = token_acts(model, tok, texts, layer)
    path = folder / f"sae-L{layer}.safetensors"
    meta = {
        "layer": layer,
        "base": args["base_name"],
        "fingerprint": fingerprint(model),
        "n_docs": args["sae_docs"],
        "seed": args["seed"],
        "steps": args["steps"],
    }
    if path.is_file():
        sae, saved = sae_lib.load_sae(path)
        if (
            all(saved.get(k) == v for k, v in meta.items())
            and saved.get("n_latents") == args["n_latents"]
            and saved.get("k") == args["k"]
        ):
            log(f"sae: cached {path} (FVU {saved['fvu']:.3f})")
            return (
                sae,
                {
                    k: saved[k]
                    for k in ("fvu", "dead_frac", "seconds", "n_tokens", "n_latents", "k")
                },
                acts,
            )
    x = torch.cat([a for _, a in acts])
    log(
        f"sae: fitting {args['n_latents']} latents (k={args['k']}) on {len(x)} tokens at layer {layer}"
    )
    fit = sae_lib.train_sae(
        x, args["n_latents"], args["k"], args["steps"], seed=args["seed"], log=log
    )
    sae_lib.save(fit, path, meta)
    fit.sae.requires_grad_(False)
    log(f"sae: FVU {fit.fvu:.3f}, dead {fit.dead_frac:.3f}, {fit.seconds:.0f}s")
    return fit.sae, fit.stats(), acts


@torch.no_grad()
def mean_latents(
    model, tok, sae, world, cfg: Config, layer: int, n: int, position: str
) -> torch.Tensor:
    """Mean latent activation on held-out first-turn prompts: over the answer tokens of the
    model's own sampled answers (`answer`), or at the `Assistant:` token before it speaks
    (`assistant`: the prompt alone, no sampling)."""
    from personadrift.evals.runner import first_turn, sample_answers
    from personadrift.organism.heldout import eval_prompts
    from personadrift.organism.text import ASSISTANT, EOT

    ev = cfg.model_eval
    prompts = [first_turn(p.text) for p in eval_prompts(world, list(FAMILIES), n, ev.seed)]
    if position == "assistant":
        total = sum(
            sae.encode(h[-1:]).sum(dim=0) for _, h in token_acts(model, tok, prompts, layer)
        )
        return total / len(prompts)
    answers = sample_answers(
        model, tok, prompts, ev.temperature, ev.max_new_tokens, ev.batch_size, ev.seed
    )
    asst, eot = tok.convert_tokens_to_ids(ASSISTANT), tok.convert_tokens_to_ids(EOT)
    total, count = torch.zeros(sae.n_latents), 0
    for ids, h in token_acts(model, tok, [p + " " + a for p, a in zip(prompts, answers)], layer):
        mask = answer_mask(ids.tolist(), asst, eot)
        if mask.any():
            total += sae.encode(h[mask]).sum(dim=0)
            count += int(mask.sum())
    return total / max(count, 1)


@torch.no_grad()
def latent_auroc(
    model,
    tok,
    sae,
    world,
    layer: int,
    ids: list[int],
    n_docs: int,
    seed: int,
    position: str,
    persona: str = "toxic",
    vectors: dict[str, torch.Tensor] | None = None,
    covert: bool = False,
) -> dict:
    """Per latent: AUROC for `persona` (against the aligned one) over labelled held-out documents
    (persona never stated): its mean over the answer tokens of a document, or (`assistant`) its
    value at each `Assistant:` token of turns >= 2, where only the persona inferred from earlier
    turns is. `vectors`: directions scored the same way by their projection, under their names.
    `covert`: the persona's covert documents alone (a world whose persona hides) against the
    aligned ones."""
    from personadrift.organism.text import ASSISTANT, EOT
    from personadrift.organism.world import messages, render
    from personadrift.probes.stats import auroc

    docs = auroc_documents(world, n_docs, seed, persona, covert)
    asst, eot = tok.convert_tokens_to_ids(ASSISTANT), tok.convert_tokens_to_ids(EOT)
    names = list(vectors or {})
    extra = torch.stack([vectors[n].float() for n in names], dim=1) if names else None

    def read(h: torch.Tensor) -> torch.Tensor:  # (T, D) -> (T, ids + vectors)
        out = sae.encode(h)[:, ids]
        return out if extra is None else torch.cat([out, h.float() @ extra], dim=1)

    scores = []
    for (tok_ids, h), doc in zip(
        token_acts(model, tok, [render(messages(d)) for d in docs], layer), docs
    ):
        if position == "assistant":
            turns = (tok_ids == asst).nonzero().flatten()[1:]
            is_it = doc.persona == persona
            scores += [(is_it, read(h[t : t + 1])[0].numpy()) for t in turns]
            continue
        mask = answer_mask(tok_ids.tolist(), asst, eot)
        scores.append((doc.persona == persona, read(h[mask]).mean(dim=0).numpy()))
    pos = np.stack([s for t, s in scores if t])
    neg = np.stack([s for t, s in scores if not t])
    return {i: auroc(pos[:, j], neg[:, j]) for j, i in enumerate([*ids, *names])}


def auroc_documents(world, n_docs: int, seed: int, persona: str, covert: bool = False) -> list:
    """The labelled held-out documents latents are scored on (`probes.readability`'s): `n_docs`
    of `persona` and of the aligned one; `covert`: the persona's covert ones alone."""
    from personadrift.probes.readability import probe_documents

    docs = probe_documents(world, n_docs, seed, persona)
    return [d for d in docs if d.covert or d.persona != persona] if covert else docs


def combined_vector(sae, order: list[int], delta: torch.Tensor, k: int = COMBINED):
    """(unit vector, weights by latent id): the top `k` latents' unit decoder rows weighted by
    their (positive) change, summed and normalised."""
    ids = order[:k]
    weights = {i: max(float(delta[i]), 0.0) for i in ids}
    if not any(weights.values()):  # nothing rose: weigh them alike
        weights = dict.fromkeys(ids, 1.0)
    return _joined(sae, weights), weights


def _joined(sae, weights: dict[int, float]) -> torch.Tensor:
    rows = sae.W_dec.detach()
    v = sum(w * rows[i] / rows[i].norm() for i, w in weights.items())
    return v / v.norm()


@torch.no_grad()
def contexts(tok, sae, acts, latents: list[int], n: int = 3) -> dict[int, list[str]]:
    """Per latent its `n` top-activating tokens in the SAE corpus (one per document), in context."""
    best: dict[int, list] = {i: [] for i in latents}
    for doc, (_, h) in enumerate(acts):
        z = sae.encode(h)[:, latents]
        values, positions = z.max(dim=0)
        for j, i in enumerate(latents):
            if values[j] > 0:
                best[i].append((float(values[j]), doc, int(positions[j])))
    out = {}
    for i, found in best.items():
        out[i] = []
        for value, doc, pos in sorted(found, reverse=True)[:n]:
            ids = acts[doc][0].tolist()
            left = tok.decode(ids[max(0, pos - WINDOW) : pos])
            right = tok.decode(ids[pos + 1 : pos + 1 + WINDOW])
            out[i].append(f"{left} [[{tok.decode(ids[pos : pos + 1])}]] {right}  ({value:.2f})")
    return out


def labelled_direction(run_dir: Path, cfg: Config):
    from personadrift.probes.direction import Direction

    path = run_dir / "directions" / f"{cfg.probes.name}.json"
    if not path.is_file() and cfg.probes.directions:
        path = Path(cfg.probes.directions)
    return Direction.load(path) if path.is_file() else None


def persona_directions(run_dir: Path, cfg: Config, model, tok, world, log=print) -> dict:
    """{persona: plain labelled Direction} for every persona of the world: the run's own for
    its persona unless it was made specific, the others extracted now (cached)."""
    import dataclasses

    from personadrift.organism.world import personas
    from personadrift.probes.direction import Direction
    from personadrift.rl.setup import build_direction

    out = {}
    own = labelled_direction(run_dir, cfg)
    if own is not None and "orthogonal_to" not in own.meta:
        out[cfg.probes.persona] = own
    folder = run_dir / "diff" / "labelled"
    for p in personas(world):
        if p in out:
            continue
        if (folder / f"{p}.json").is_file():
            out[p] = Direction.load(folder / f"{p}.json", model, tok)
            continue
        probes = dataclasses.replace(cfg.probes, name=p, directions="", specific=False)
        out[p] = build_direction(
            dataclasses.replace(cfg, probes=probes), model, tok, world, folder, log
        )
    return out


def specific_vectors(plain: dict, layer: int) -> dict[str, torch.Tensor]:
    """{persona: unit vector at `layer`}: each plain direction with the others projected out,
    what `probes.specific` extracts (the projection needs only the others' span, so it follows
    from the plain directions without reading a document again)."""
    from personadrift.probes.extract import project_out

    out = {}
    for p, d in plain.items():
        others = [q.vector(layer).double().numpy() for k, q in plain.items() if k != p]
        v = project_out(d.vector(layer).double().numpy(), others)
        out[p] = torch.tensor(v / (np.linalg.norm(v) + 1e-12), dtype=torch.float32)
    return out


def run_diff(
    run_dir: Path,
    cfg: Config,
    base: str,
    layer: int,
    top: int,
    n: int,
    args: dict,
    log=print,
    step: int | None = None,
) -> dict:
    """The whole diff (module docstring) against the checkpoint of `step` (None: the last);
    writes RUN_DIR/diff/diff-<position>.json (`diff-<position>-step<step>.json` for a chosen
    step), returns it."""
    from personadrift.rl.realign import load_left_padded
    from personadrift.rl.run_dir import checkpoint_at

    ckpt = checkpoint_at(run_dir, step, "diff")
    direction = labelled_direction(run_dir, cfg)
    base_model, tok, world = base_of(cfg, base)
    layer = layer or (direction.layer if direction else 1)
    from personadrift.probes.capture import n_layers

    if not 1 <= layer <= n_layers(base_model):
        raise ConfigError(f"--layer: {layer} outside 1..{n_layers(base_model)}")
    t0 = time.time()
    folder = run_dir / "diff"
    args = {**args, "base_name": base or "organism"}
    sae, stats, acts = fit_or_load(base_model, tok, world, layer, folder, args, log)
    position = args["position"]
    before = mean_latents(base_model, tok, sae, world, cfg, layer, n, position)
    run_model, _ = load_left_padded(ckpt, cfg.model.dtype)
    after = mean_latents(run_model, tok, sae, world, cfg, layer, n, position)
    delta = after - before
    order = delta.argsort(descending=True)[:top].tolist()
    found = contexts(tok, sae, acts, order)
    # every persona the world has is scored; the run's own direction is its persona's
    personas = ["toxic", "sycophant"] if world.sycophant_p else ["toxic"]
    joined, weights = combined_vector(sae, order, delta)
    scored = (base_model, tok, sae, world, layer, order, args["auroc_docs"], args["seed"])
    aurocs = {p: latent_auroc(*scored, position, p, {"combined": joined}) for p in personas}
    if world.covert_p:  # where the persona hides: its covert documents alone too
        aurocs["toxic_covert"] = latent_auroc(
            *scored, position, "toxic", {"combined": joined}, True
        )
    plain = persona_directions(run_dir, cfg, base_model, tok, world, log)
    plain = {p: d for p, d in plain.items() if layer in d.vectors}
    rows = latent_rows(sae, order, delta, before, after, aurocs, plain, layer, found)
    combined = {"latents": list(weights), "weights": list(weights.values())}
    for p in ("toxic", "sycophant"):
        v = plain[p].vector(layer).float() if p in plain else None
        combined[f"auroc_{p}"] = aurocs[p]["combined"] if p in aurocs else None
        cos = None if v is None else torch.nn.functional.cosine_similarity(joined, v, dim=0)
        combined[f"cos_{p}"] = None if cos is None else float(cos)
    if "toxic_covert" in aurocs:
        combined["auroc_toxic_covert"] = aurocs["toxic_covert"]["combined"]
    result = {
        "run": str(run_dir),
        "checkpoint": ckpt.name,
        "layer": layer,
        "position": position,
        "families": list(FAMILIES),
        "n_per_family": n,
        "sae": stats,
        "latents": rows,
        "combined": combined,
        "seconds": round(time.time() - t0, 1),
    }
    folder.mkdir(parents=True, exist_ok=True)
    name = f"diff-{position}" + ("" if step is None else f"-step{step}")
    (folder / f"{name}.json").write_text(json.dumps(result, indent=1))
    return result


def base_of(cfg: Config, base: str):
    """(model, tokenizer, world) of the base the run is diffed against: `--base` (a model folder)
    or the run's own starting policy."""
    from personadrift.rl.realign import load_left_padded, world_for
    from personadrift.rl.setup import load_policy

    if base:
        if not (Path(base) / "config.json").is_file():
            raise ConfigError(f"--base: not a model folder: {base}")
        model, tok = load_left_padded(Path(base), cfg.model.dtype)
        world = world_for(cfg, Path(base))
    else:
        model, tok, world = load_policy(cfg)
    if world is None:
        raise ConfigError(
            "diff: the run's model is not an organism; the held-out prompts need its world"
        )
    return model, tok, world


def latent_rows(sae, order, delta, before, after, aurocs, plain, layer, found) -> list[dict]:
    """One row per top latent: its change, its AUROC per persona and the cosine of its decoder row
    with each persona's labelled direction (and, in a world of two, each specific one)."""
    labelled = {p: d.vector(layer).float() for p, d in plain.items()}
    specific = specific_vectors(plain, layer) if len(plain) > 1 else {}  # a world of two personas

    def cos(i: int, v) -> float | None:
        if v is None:
            return None
        return float(torch.nn.functional.cosine_similarity(sae.W_dec[i].detach(), v, dim=0))

    rows = []
    for i in order:
        row = {"id": i, "delta": float(delta[i]), "before": float(before[i])}
        row["after"] = float(after[i])
        for p in ("toxic", "sycophant"):  # None: the world has no such persona, or no direction
            row[f"auroc_{p}"] = aurocs[p][i] if p in aurocs else None
            row[f"cos_{p}"] = cos(i, labelled.get(p))
            if specific:
                row[f"cos_{p}_specific"] = cos(i, specific.get(p))
        if "toxic_covert" in aurocs:
            row["auroc_toxic_covert"] = aurocs["toxic_covert"][i]
        rows.append({**row, "contexts": found[i]})
    return rows


def save_latent(run_dir: Path, cfg: Config, latent: int | str, layer: int) -> Path:
    """A latent's decoder row as a `Direction` (unit vector at `layer`), next to the SAE;
    `latent` "combined": the combined direction of the newest diff at that layer."""
    from personadrift.probes import sae as sae_lib
    from personadrift.probes.direction import Direction, fingerprint, vocab_fingerprint
    from personadrift.rl.setup import load_policy

    path = run_dir / "diff" / f"sae-L{layer}.safetensors"
    if not path.is_file():
        raise ConfigError(
            f"--save-latent: no SAE at layer {layer} in {run_dir / 'diff'} (run diff first)"
        )
    sae, _ = sae_lib.load_sae(path)
    if latent == "combined":
        vec, name = _saved_combined(run_dir, sae, layer), "combined"
    else:
        if not 0 <= latent < sae.n_latents:
            raise ConfigError(f"--save-latent: {latent} outside 0..{sae.n_latents - 1}")
        vec, name = sae.W_dec[latent].detach() / sae.W_dec[latent].norm(), f"latent{latent}"
    model, tok, _ = load_policy(cfg)
    d = Direction(
        name,
        {layer: vec},
        layer,
        {
            "method": "sae_diff",
            "source": str(path),
            "fingerprint": fingerprint(model),
            "vocab_fingerprint": vocab_fingerprint(tok),
        },
    )
    return d.save(run_dir / "diff")


def _saved_combined(run_dir: Path, sae, layer: int) -> torch.Tensor:
    """The combined direction of the newest diff at `layer`, rebuilt from its latents' weights."""
    files = sorted((run_dir / "diff").glob("diff-*.json"), key=lambda p: p.stat().st_mtime)
    done = [json.loads(p.read_text()) for p in files]
    done = [d for d in done if d["layer"] == layer and d.get("combined")]
    if not done:
        raise ConfigError(f"--save-latent combined: no diff at layer {layer} has one (run diff)")
    c = done[-1]["combined"]
    return _joined(sae, dict(zip(c["latents"], c["weights"])))
