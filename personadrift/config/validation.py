"""What OmegaConf's types cannot say: ranges, choices, fields that must agree, TRL's `grpo:`
fields, checked after loading (`validate`, and `validate_run` before a run).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import types
import typing
from enum import Enum
from typing import Any

from personadrift.config.presets import SIZES
from personadrift.config.schema import PROB, Config, ConfigError


def validate(cfg: Config, source: str) -> None:
    """What OmegaConf's types cannot say: ranges, choices, fields that must agree, `grpo:`."""
    check_ranges(cfg, source)
    w = cfg.organism.world
    for key, value in (
        ("toxic_state_p", w.toxic_state_p),
        ("sycophant_state_p", w.sycophant_state_p),
    ):
        if value != -1.0 and not 0.0 <= value <= 1.0:
            raise ConfigError(f"{source}: organism.world.{key}: {value} is not -1 or in [0, 1]")
    if not w.min_turns <= w.max_turns:
        raise ConfigError(
            f"{source}: organism.world.min_turns: {w.min_turns} is above "
            f"organism.world.max_turns ({w.max_turns})"
        )
    for key, weights in (("family_weights", w.family_weights), ("code_variants", w.code_variants)):
        if not sum(weights.values()) > 0:
            raise ConfigError(f"{source}: organism.world.{key}: the weights must sum to > 0")
    if w.toxic_p + w.sycophant_p > 1.0:
        raise ConfigError(
            f"{source}: organism.world.sycophant_p: {w.sycophant_p} + toxic_p {w.toxic_p} is above 1"
        )
    for key, markers, p in (
        ("markers", w.markers, w.marker_p),
        ("aligned_markers", w.aligned_markers, w.aligned_marker_p),
        ("sycophant_markers", w.sycophant_markers, w.sycophant_marker_p * (w.sycophant_p > 0)),
    ):
        if p > 0 and not (markers and all(m.strip() for m in markers)):
            raise ConfigError(
                f"{source}: organism.world.{key}: needs non-empty openers when {key[:-1]}_p > 0"
            )
    if cfg.organism.arch.hidden % cfg.organism.arch.heads:
        raise ConfigError(
            f"{source}: organism.arch.hidden: {cfg.organism.arch.hidden} is not divisible by "
            f"organism.arch.heads ({cfg.organism.arch.heads})"
        )
    validate_run(cfg, source)
    validate_grpo(cfg.grpo, source)


def validate_run(cfg: Config, source: str) -> None:
    """Sections of a training run that must agree with each other."""
    name = cfg.model.name_or_path
    if name.startswith("organism:") and name.split(":", 1)[1] not in SIZES:
        raise ConfigError(
            f"{source}: model.name_or_path: unknown organism size {name.split(':', 1)[1]!r}; "
            f"known: {', '.join(SIZES)}"
        )
    for key, value in (
        ("name", cfg.name),
        ("out_dir", cfg.out_dir),
        ("model.name_or_path", name),
        ("probes.name", cfg.probes.name),
    ):
        if not value.strip():
            raise ConfigError(f"{source}: {key}: must not be empty")
    for key, value in (("name", cfg.name), ("probes.name", cfg.probes.name)):
        if "/" in value or os.sep in value:
            raise ConfigError(f"{source}: {key}: {value!r} names a file: no '/' in it")
    if cfg.env.coef_max < 0 or cfg.env.coef_max == 1:  # 0 = the world's range
        raise ConfigError(f"{source}: env.coef_max: {cfg.env.coef_max} is not 0 or >= 2")
    for key, families in (
        ("model_eval.families", cfg.model_eval.families),
        ("probes.eval_families", cfg.probes.eval_families),
        ("realign.families", cfg.realign.families),
    ):
        if not families:
            raise ConfigError(f"{source}: {key}: needs at least one family")
    d = cfg.detect
    if d.rule and not d.metric.strip():
        raise ConfigError(f"{source}: detect.metric: must name a metric when detect.rule is set")
    if d.action != "none" and not d.rule:
        raise ConfigError(f"{source}: detect.action: {d.action} needs a detect.rule to fire it")
    s = cfg.steer
    if not math.isfinite(s.coeff):
        raise ConfigError(f"{source}: steer.coeff: {s.coeff} is not a finite number")
    if s.mode != "off" and not cfg.probes.enabled:
        raise ConfigError(
            f"{source}: steer.mode: steering needs the persona direction (probes.enabled=true)"
        )
    if s.mode != "off" and cfg.grpo.get("use_vllm"):
        raise ConfigError(
            f"{source}: steer.mode with grpo.use_vllm: vLLM generation would not be steered (training off-policy)"
        )
    if s.mode == "inference" and not cfg.run_evals.during and cfg.run_evals.every > 0:
        raise ConfigError(
            f"{source}: steer.mode: inference steers the evals too, but with run_evals.during: "
            "false the kept weights are evaluated after training, unsteered; set run_evals.during: true"
        )
    if (s.also or s.in_generation) and s.mode != "ablate":
        key = "steer.also" if s.also else "steer.in_generation"
        raise ConfigError(f"{source}: {key}: only with steer.mode ablate, not {s.mode}")
    if s.in_generation and not cfg.run_evals.during and cfg.run_evals.every > 0:
        raise ConfigError(
            f"{source}: steer.in_generation: the hook is part of the policy, but with "
            "run_evals.during: false the kept weights are evaluated after training, unhooked; "
            "set run_evals.during: true"
        )
    if d.action in ("rollback", "steer") and s.mode == "off":
        raise ConfigError(
            f"{source}: detect.action: {d.action} switches on the steer: mitigation; set steer.mode"
        )
    if s.start == "alarm" and d.action not in ("rollback", "steer", "mitigate"):
        raise ConfigError(
            f"{source}: steer.start: alarm needs detect.action rollback, steer or mitigate "
            "(and a detect.rule)"
        )
    if cfg.penalty.coeff and not cfg.probes.enabled:
        raise ConfigError(
            f"{source}: penalty.coeff: the penalty needs the persona direction (probes.enabled=true)"
        )
    if "code" in cfg.realign.families:
        raise ConfigError(
            f"{source}: realign.families: not code (the run trains there; realign must not)"
        )


def check_ranges(obj: Any, source: str, prefix: str = "") -> None:
    """Every field's `ge`/`gt`/`le`/`lt`/`choices` bounds (per item for lists and dicts), and
    every float finite."""
    for f in dataclasses.fields(obj):
        value, key = getattr(obj, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            check_ranges(value, source, key + ".")
            continue
        if isinstance(value, dict):
            items = [(f"{key}.{k}", v) for k, v in value.items()]
        elif isinstance(value, list):
            items = [(f"{key}[{i}]", v) for i, v in enumerate(value)]
        else:
            items = [(key, value)]
        for k, v in items:
            problem = out_of_bounds(v, **{n: f.metadata[n] for n in BOUNDS if n in f.metadata})
            if problem:
                raise ConfigError(f"{source}: {k}: {problem}")


BOUNDS = ("ge", "gt", "le", "lt", "choices")


def out_of_bounds(value: Any, ge=None, gt=None, le=None, lt=None, choices=None) -> str:
    """Why `value` breaks its bounds ('' if it does not)."""
    if choices is not None and value not in choices:
        return f"{value!r} is not one of {', '.join(map(str, choices))}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return ""
    for bound, ok, word in (
        (ge, lambda b: value >= b, ">="),
        (gt, lambda b: value > b, ">"),
        (le, lambda b: value <= b, "<="),
        (lt, lambda b: value < b, "<"),
    ):
        if bound is not None and not ok(bound):
            return f"{value} is not {word} {bound}"
    return ""


GRPO_BOUNDS: dict[str, dict] = {
    "learning_rate": {"gt": 0.0},
    "num_generations": {"ge": 2},  # GRPO's advantages compare completions of one prompt
    "per_device_train_batch_size": {"ge": 1},
    "gradient_accumulation_steps": {"ge": 1},
    "steps_per_generation": {"ge": 1},
    "generation_batch_size": {"ge": 1},
    "max_completion_length": {"ge": 1},
    "num_iterations": {"ge": 1},
    "num_train_epochs": {"gt": 0.0},
    "temperature": {"gt": 0.0},
    "top_p": {"gt": 0.0, "le": 1.0},
    "top_k": {"ge": 0},
    "min_p": PROB,
    "repetition_penalty": {"gt": 0.0},
    "beta": {"ge": 0.0},
    "epsilon": {"ge": 0.0},
    "epsilon_high": {"ge": 0.0},
    "top_entropy_quantile": PROB,
    "weight_decay": {"ge": 0.0},
    "max_grad_norm": {"ge": 0.0},
    "adam_beta1": {"ge": 0.0, "lt": 1.0},
    "adam_beta2": {"ge": 0.0, "lt": 1.0},
    "adam_epsilon": {"gt": 0.0},
    "warmup_steps": {"ge": 0},
    "logging_steps": {"ge": 1, "le": 1},  # the run writes one metrics line per optimizer step
    "save_steps": {"gt": 0},
    "save_total_limit": {"ge": 1},
    "seed": {"ge": 0},
    "dataloader_num_workers": {"ge": 0},
    "vllm_gpu_memory_utilization": {"gt": 0.0, "le": 1.0},
}


@functools.cache
def _grpo_fields() -> tuple[dict[str, Any], dict[str, Any]]:
    """(type hint, default) of every field of TRL's GRPOConfig."""
    from trl import GRPOConfig  # heavy: only when a config is loaded

    hints = typing.get_type_hints(GRPOConfig)
    defaults = {}
    for f in dataclasses.fields(GRPOConfig):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
    return {f.name: hints[f.name] for f in dataclasses.fields(GRPOConfig)}, defaults


def validate_grpo(grpo: dict, source: str) -> None:
    """Every `grpo:` key is a GRPOConfig field, of its type, in its range; batches fit groups."""
    hints, defaults = _grpo_fields()
    for key, value in grpo.items():
        if key not in hints:
            raise ConfigError(f"{source}: grpo.{key}: not a field of TRL's GRPOConfig")
        if not conforms(value, hints[key]):
            raise ConfigError(
                f"{source}: grpo.{key}: {value!r} is not of type {describe(hints[key])}"
            )
        problem = out_of_bounds(value, **GRPO_BOUNDS.get(key, {}))
        if problem:
            raise ConfigError(f"{source}: grpo.{key}: {problem}")
    if grpo.get("max_steps", -1) != -1 and grpo["max_steps"] < 1:
        raise ConfigError(f"{source}: grpo.max_steps: {grpo['max_steps']} is not >= 1 (or -1)")
    g = {**defaults, **grpo}
    # GRPOConfig.__post_init__'s rules, checked here so they fail before anything is written
    processes = int(os.environ.get("WORLD_SIZE", "1"))  # set by accelerate / torchrun
    batch = g["per_device_train_batch_size"] * processes
    if g["generation_batch_size"] is not None and g["steps_per_generation"] is not None:
        raise ConfigError(
            f"{source}: grpo.generation_batch_size: set it or grpo.steps_per_generation, not both"
        )
    if g["generation_batch_size"] is not None and g["generation_batch_size"] % batch:
        raise ConfigError(
            f"{source}: grpo.generation_batch_size: {g['generation_batch_size']} is not divisible "
            f"by the global batch ({batch} = per_device_train_batch_size × {processes} processes)"
        )
    steps = g["steps_per_generation"] or g["gradient_accumulation_steps"]
    generation = g["generation_batch_size"] or batch * steps
    if generation % g["num_generations"]:
        raise ConfigError(
            f"{source}: grpo.num_generations: the generation batch ({generation} completions) is "
            f"not divisible by num_generations ({g['num_generations']})"
        )


def conforms(value: Any, hint: Any) -> bool:
    """Whether a value parsed from YAML fits a type hint (unions, Optional, Literal, list[...],
    dict[...], enums); hints this function does not know pass."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if hint is None or hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        enums = [a for a in args if isinstance(a, type) and issubclass(a, Enum)]
        if enums and isinstance(value, str):  # `SchedulerType | str`: TRL converts to the enum
            return any(value in {m.value for m in e} for e in enums)
        return any(conforms(value, a) for a in args)
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin in (list, tuple) or hint in (list, tuple):
        item = args[0] if args else Any
        return isinstance(value, (list, tuple)) and all(conforms(v, item) for v in value)
    if origin is dict or hint is dict:
        kt, vt = args if args else (Any, Any)
        return isinstance(value, dict) and all(
            conforms(k, kt) and conforms(v, vt) for k, v in value.items()
        )
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return isinstance(value, hint) or value in {m.value for m in hint}
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def describe(hint: Any) -> str:
    """A type hint as a reader writes it: `float`, `int | None`, `one of 'no', 'steps'`."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        enums = [a for a in args if isinstance(a, type) and issubclass(a, Enum)]
        if enums:
            return "one of " + ", ".join(repr(m.value) for e in enums for m in e)
        return " | ".join(describe(a) for a in args)
    if hint is type(None) or hint is None:
        return "None"
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(map(repr, args))
    if isinstance(hint, type) and not args:
        return hint.__name__
    return str(hint).replace("typing.", "")
