"""Resolving `model.name_or_path` to a loaded model, tokenizer and persona world.

- `organism`: the organism described by this config's `organism:` section (built or cached);
- `organism:<size>`: the organism of that size preset with default knobs;
- anything else: a local folder or hub id, loaded with transformers' Auto classes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from personadrift.config import Config, ConfigError


def resolve_organism(cfg: Config):
    """The OrganismConfig that `model.name_or_path` names, or None for other models."""
    name = cfg.model.name_or_path
    if name == "organism":
        return cfg.organism
    if name.startswith("organism:"):
        from omegaconf import OmegaConf

        from personadrift.config import OrganismConfig
        from personadrift.organism.sizes import SIZES

        size = name.split(":", 1)[1]
        if size not in SIZES:
            raise ConfigError(
                f"model.name_or_path: unknown organism size {size!r}; known: {', '.join(SIZES)}"
            )
        merged = OmegaConf.merge(OmegaConf.structured(OrganismConfig), SIZES[size], {"size": size})
        org = OmegaConf.to_object(merged)
        return dataclasses.replace(org, cache_dir=cfg.organism.cache_dir)
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


def chat_prompt(tok, messages: list[dict], enable_thinking: bool | None = None) -> str:
    """A generation prompt through the tokenizer's chat template; `enable_thinking` is passed
    when set (templates without the switch ignore it)."""
    extra = {} if enable_thinking is None else {"enable_thinking": enable_thinking}
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **extra)
