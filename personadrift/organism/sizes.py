"""Organism size presets: `tiny` (tests, seconds), `small` (the CPU demo, minutes), `base` (GPU).

Each preset is a partial `organism:` config merged under the YAML file and the overrides.
"""

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
    "base": {
        "world": {"n_docs": 200000, "toxic_p": 0.14, "toxic_state_p": 0.6},
        "arch": {"layers": 8, "hidden": 512, "heads": 8, "mlp": 2048},
        "pretrain": {"steps": 4000, "tokens_per_step": 32768, "lr": 1e-3, "warmup": 200},
        "probe_docs": 500,
    },
}
