"""Resolving `model.name_or_path` to a loaded model, tokenizer and persona world.

- `organism`: the organism described by this config's `organism:` section (built or cached);
- `organism:<size>`: the organism of that size preset with default knobs;
- anything else: a local folder or hub id, loaded with transformers' Auto classes.
"""

from __future__ import annotations

from pathlib import Path

import torch

from personadrift.config import Config, organism_of_size


def resolve_organism(cfg: Config):
    """The OrganismConfig that `model.name_or_path` names, or None for other models."""
    name = cfg.model.name_or_path
    if name == "organism":
        return cfg.organism
    if name.startswith("organism:"):  # the size was checked at load
        return organism_of_size(name.split(":", 1)[1], cfg.organism.cache_dir)
    return None


def load_model(cfg: Config):
    """(model, tokenizer, world, display name)."""
    from personadrift.organism.build import build, load, world_of

    dtype = getattr(torch, cfg.model.dtype)
    org = resolve_organism(cfg)
    if org is not None:
        built = build(org, cfg.eval)
        model, tok = load(built.path, dtype)
        return model, tok, world_of(built.path), built.path.name
    path = cfg.model.name_or_path
    model, tok = load(path, dtype)
    world = world_of(path) if (Path(path) / "world.json").is_file() else cfg.organism.world
    return model, tok, world, path
