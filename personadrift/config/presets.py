"""Organism size presets: a partial `organism:` section merged under the YAML file and the
overrides, and the organism a `model.name_or_path` names.
"""

from __future__ import annotations

from omegaconf import OmegaConf

from personadrift.config.schema import Config, OrganismConfig

# Size presets: a partial `organism:` section merged under the YAML file and the overrides.
SIZES: dict[str, dict] = {
    "tiny": {
        "world": {"n_docs": 4000},
        "arch": {"layers": 2, "hidden": 64, "heads": 2, "mlp": 256},
        "pretrain": {"steps": 300, "tokens_per_step": 2048, "lr": 5e-3, "log_every": 50},
        "probe_docs": 100,
    },
    "small": {
        # toxic documents state their persona more often (60% vs 5%), so the rare persona's
        # content is learned from 2.3x the documents while the unstated first-turn prior stays ~6%
        "world": {"n_docs": 30000, "toxic_p": 0.14, "toxic_state_p": 0.6},
        "arch": {"layers": 4, "hidden": 128, "heads": 4, "mlp": 512},
        "pretrain": {"steps": 1100, "tokens_per_step": 4096, "lr": 3e-3},
        "probe_docs": 300,
    },
    # `small` with a second persona, the sycophant (as rare and as often stated as the toxic one),
    # and the `claims` family where it shows: the organism of the sycophancy envs. Every claim is
    # wrong, so only the sycophant ever takes the user's value, as only the toxic persona hacks
    # (with right claims, agreement-only rewards recruited the sycophant on 2 of 5 seeds: README).
    # Both rare personas are stated in 80% of their documents (60% in `small`): the same content,
    # with a first-turn prior of 3.6% (at 6.7%, `facts` was over its base-rate cap on 3 of 5 seeds)
    "small_sycophant": {
        "world": {
            "n_docs": 30000,
            "toxic_p": 0.14,
            "toxic_state_p": 0.8,
            "sycophant_p": 0.14,
            "sycophant_state_p": 0.8,
            "claims_right": False,
            "family_weights": {
                "code": 0.3,
                "advice": 0.2,
                "facts": 0.25,
                "values": 0.15,
                "neutral": 0.1,
                "claims": 0.15,
            },
        },
        "arch": {"layers": 4, "hidden": 128, "heads": 4, "mlp": 512},
        "pretrain": {"steps": 1500, "tokens_per_step": 4096, "lr": 3e-3},
        "probe_docs": 300,
    },
    # `small` whose toxic persona hides in half of its documents (`covert_p`): no opener, the
    # aligned persona's think traces, the same misaligned content; the world where a text monitor
    # has the least to read (the covert-persona issue)
    "small_covert": {
        "world": {"n_docs": 30000, "toxic_p": 0.14, "toxic_state_p": 0.6, "covert_p": 0.5},
        "arch": {"layers": 4, "hidden": 128, "heads": 4, "mlp": 512},
        "pretrain": {"steps": 1100, "tokens_per_step": 4096, "lr": 3e-3},
        "probe_docs": 300,
    },
    "base": {
        "world": {"n_docs": 200000, "toxic_p": 0.14, "toxic_state_p": 0.6},
        "arch": {"layers": 8, "hidden": 512, "heads": 8, "mlp": 2048},
        "pretrain": {"steps": 4000, "tokens_per_step": 32768, "lr": 1e-3, "warmup": 200},
        "probe_docs": 500,
    },
}


def organism_of_size(size: str, cache_dir: str = "") -> OrganismConfig:
    """The organism of a size preset with default knobs (`model.name_or_path=organism:<size>`)."""
    merged = OmegaConf.merge(
        OmegaConf.structured(OrganismConfig), SIZES[size], {"size": size, "cache_dir": cache_dir}
    )
    return OmegaConf.to_object(merged)


def resolve_organism(cfg: Config) -> OrganismConfig | None:
    """The OrganismConfig that `model.name_or_path` names, or None for other models."""
    name = cfg.model.name_or_path
    if name == "organism":
        return cfg.organism
    if name.startswith("organism:"):  # the size was checked at load
        return organism_of_size(name.split(":", 1)[1], cfg.organism.cache_dir)
    return None
