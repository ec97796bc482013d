"""Experiment configuration: the typed schema, its ranges and `load_config`.

A config is the schema's defaults, then the organism size preset (if `organism.size` is set),
then the YAML file (after the files its `base:` key names), then dot-list overrides
(`key=value`), merged by OmegaConf into typed dataclasses. Anything wrong here (unknown key, wrong
type, a value out of its range, missing file) raises `ConfigError` naming the key and the file.
The schema knows no plug-in: names that a registry resolves (envs, families, detectors, ...) are
checked by `personadrift.checks.check`, which every entry point runs after loading, before any
work and before anything is written.

    schema.py      the dataclasses, their help lines and ranges; `to_yaml`, `config_hash`
    presets.py     organism size presets (`SIZES`), `organism_of_size`, `resolve_organism`
    loading.py     `load_config`, `base:` chains, shipped configs by short name (`find_config`)
    validation.py  ranges, choices, fields that must agree, TRL's `grpo:` fields
    reference.py   the config reference and the configs index in docs/, from the help lines
"""

from personadrift.config.loading import (  # noqa: F401
    CONFIG_FOLDERS,
    MERGE_ERRORS,
    SHIPPED,
    find_config,
    load_config,
    read_yaml,
    shipped_configs,
    shipped_path,
)
from personadrift.config.presets import (  # noqa: F401
    SIZES,
    organism_of_size,
    resolve_organism,
)
from personadrift.config.schema import (  # noqa: F401
    LATER_SYCOPHANT_DEFAULTS,
    PROB,
    SYCOPHANT_KEYS,
    ArchConfig,
    CheckpointsConfig,
    Config,
    ConfigError,
    DetectConfig,
    EnvConfig,
    JudgeConfig,
    MitigateConfig,
    ModelConfig,
    ModelEvalConfig,
    MonitorsConfig,
    OrganismConfig,
    PenaltyConfig,
    PretrainConfig,
    ProbesConfig,
    RealignConfig,
    RunEvalsConfig,
    SandboxConfig,
    SteerConfig,
    WorldConfig,
    config_hash,
    default_grpo,
    to_yaml,
    world_hash_leave_out,
)
from personadrift.config.validation import (  # noqa: F401
    BOUNDS,
    GRPO_BOUNDS,
    check_ranges,
    conforms,
    describe,
    out_of_bounds,
    validate,
    validate_grpo,
    validate_run,
)
