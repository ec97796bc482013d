"""Resolving `model.name_or_path` to a loaded model, tokenizer and persona world.

- `organism`: the organism described by this config's `organism:` section (built or cached);
- `organism:<size>`: the organism of that size preset with default knobs;
- anything else: a local folder or hub id, loaded with transformers' Auto classes.

An organism is built on first use (`build_organism`) and measured here, by the evals (base rates)
and the probes (persona readability), so that the organism package depends on neither.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import torch

from personadrift.config import Config, ModelEvalConfig, OrganismConfig, resolve_organism
from personadrift.organism.build import Built, build, load, world_of


def build_organism(
    org: OrganismConfig, eval_cfg: ModelEvalConfig | None = None, log=print
) -> Built:
    """The organism's checkpoint (built now or found in the cache), with its base rates and its
    persona readability measured at build time."""
    return build(org, functools.partial(measure_organism, eval_cfg=eval_cfg), log)


def measure_organism(model, tok, org: OrganismConfig, eval_cfg: ModelEvalConfig | None = None):
    """({file name: JSON}, summary entries): first-turn rates per family, per-layer AUROC."""
    from personadrift.evals.runner import evaluate

    eval_cfg = eval_cfg or ModelEvalConfig()
    if org.world.sycophant_p and "claims" not in eval_cfg.families:  # where the sycophant shows
        eval_cfg = dataclasses.replace(eval_cfg, families=[*eval_cfg.families, "claims"])
    base_rates, _ = evaluate(model, tok, org.world, eval_cfg)

    sweep = readability_sweep(model, tok, org, "toxic")
    keys = ("best_layer", "auroc", "best_pre_layer", "tracking_auroc")
    summary = {"base_rates": base_rates, **{k: sweep[k] for k in keys}}
    if org.world.sycophant_p:  # the second persona's readability, the same sweep
        sweep["sycophant"] = readability_sweep(model, tok, org, "sycophant")
        summary |= {f"sycophant_{k}": sweep["sycophant"][k] for k in keys}
    return {"base_rates.json": base_rates, "readability.json": sweep}, summary


def readability_sweep(model, tok, org: OrganismConfig, persona: str = "toxic") -> dict:
    """The persona's per-layer AUROC on the build's held-out documents (`probes.readability`;
    on covert documents alone too, where the world hides the persona)."""
    from personadrift.probes import readability

    docs = readability.probe_documents(org.world, org.probe_docs, org.seed + 1, persona)
    readout = readability.read_documents(model, tok, docs, persona=persona)
    return readability.layer_aurocs(readout, org.arch.layers)


def load_model(cfg: Config):
    """(model, tokenizer, world, display name)."""
    dtype = getattr(torch, cfg.model.dtype)
    org = resolve_organism(cfg)
    if org is not None:
        built = build_organism(org, cfg.model_eval)
        model, tok = load(built.path, dtype)
        return model, tok, world_of(built.path), built.path.name
    path = cfg.model.name_or_path
    model, tok = load(path, dtype)
    world = world_of(path) if (Path(path) / "world.json").is_file() else cfg.organism.world
    return model, tok, world, path
