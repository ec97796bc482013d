"""The names a config gives to plug-ins, resolved before any work: `check(cfg, source)`.

`load_config` checks types and ranges; it knows no registry. This pass looks every registry name
up where it is resolved (families, code variants, envs, detectors and the detector's parameters)
and every path the run will open (the model folder, a saved direction), so that a bad name fails
with a `ConfigError` naming the key and the file, before a model is loaded or a run directory is
written. Every command-line entry point calls `load_checked`; library users call `check` after
`load_config`.

A plug-in may also be named by import path (`env.name: mypkg.envs:MyEnv`, `run_evals.judge.name`,
`detect.rule`): the registry imports it here (`Registry.check`). A model that is not an organism
is evaluated on a question set (`run_evals.questions`, checked for the families asked) and its
direction extracted from trait data (`probes.trait`). `ready_judge` goes one step further for the
commands that judge answers: it builds the configured judge and asks its endpoint whether it
answers, still before anything is written.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import typing
from pathlib import Path

from personadrift.alarms.actions import SHAPING
from personadrift.alarms.detect import DETECTORS
from personadrift.config import Config, ConfigError, conforms, describe, find_config, load_config
from personadrift.envs import ENVS
from personadrift.evals.judges import JUDGES
from personadrift.organism.families import FAMILIES
from personadrift.organism.families.code import VARIANTS

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")  # `gpt2`, `Qwen/Qwen2.5-0.5B-Instruct`


def load_checked(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """`load_config` then `check`: what every entry point runs before any work."""
    path = find_config(path) if path is not None else None  # a short name: name the file
    cfg = load_config(path, overrides)
    check(cfg, str(path) if path is not None else "<defaults>")
    return cfg


def check(cfg: Config, source: str = "<config>") -> None:
    """Raise `ConfigError` (naming the key and `source`) on the first name nothing resolves."""
    check_families(cfg, source)
    for key, registry, name in (
        ("env.name", ENVS, cfg.env.name),
        ("run_evals.judge.name", JUDGES, cfg.run_evals.judge.name),
    ):
        if (why := registry.check(name)) is not None:
            raise ConfigError(f"{source}: {key}: {why}")
    check_detector(cfg, source)
    check_model(cfg.model.name_or_path, source)
    check_chat_data(cfg, source)
    if cfg.probes.directions and not Path(cfg.probes.directions).is_file():
        raise ConfigError(f"{source}: probes.directions: no such file: {cfg.probes.directions}")
    check_also(cfg, source)
    check_calibration(cfg, source)
    check_mitigation(cfg, source)
    check_realign(cfg, source)


def check_also(cfg: Config, source: str) -> None:
    """`probes.also` and `steer.also`: saved directions, each with a name of its own."""
    p = cfg.probes
    names = [p.name] + (["random"] if p.random else [])
    for path in p.also:
        name = _saved_direction(path, source, "probes.also")
        if name in names:
            raise ConfigError(f"{source}: probes.also: two directions named {name!r} ({path})")
        names.append(name)
    for path in cfg.steer.also:
        _saved_direction(path, source, "steer.also")


def _saved_direction(path: str, source: str, key: str) -> str:
    """The name of the saved direction at `path`; ConfigError when there is none."""
    if not Path(path).is_file():
        raise ConfigError(f"{source}: {key}: no such file: {path}")
    try:
        return json.loads(Path(path).read_text())["name"]
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{source}: {key}: {path} is not a saved direction") from None


def check_realign(cfg: Config, source: str) -> None:
    """An organism's re-alignment leaves at least one eval family it does not train on."""
    if not (cfg.realign.after or cfg.detect.action == "realign") or cfg.realign.dataset:
        return
    scored = [f for f in cfg.run_evals.families if f not in cfg.realign.families]
    if not scored:
        raise ConfigError(
            f"{source}: realign.families: {list(cfg.realign.families)} covers every eval family "
            f"({list(cfg.run_evals.families)}); re-alignment is scored on families it does not train on"
        )


def check_mitigation(cfg: Config, source: str) -> None:
    """`mitigate:` and `detect.action: mitigate` agree; screen/advantage can see whole groups."""
    m, d = cfg.mitigate, cfg.detect
    if d.action == "mitigate" and d.rule and not m.name:
        raise ConfigError(f"{source}: mitigate.name: detect.action mitigate needs a mitigation")
    if d.action == "mitigate" and d.rule and m.start != "alarm":
        raise ConfigError(f"{source}: mitigate.start: {m.start} with detect.action mitigate")
    if m.name and m.start == "alarm" and (d.action != "mitigate" or not d.rule):
        raise ConfigError(
            f"{source}: mitigate.start: alarm needs a detector with detect.action: mitigate "
            "(or mitigate.start: step0)"
        )
    if m.name in SHAPING:
        if not cfg.probes.enabled:
            raise ConfigError(f"{source}: mitigate.name: {m.name} reads the probe's direction")
        g = cfg.grpo
        if (
            g.get("generation_batch_size")
            or (g.get("steps_per_generation") or g.get("gradient_accumulation_steps") or 1) != 1
        ):
            raise ConfigError(
                f"{source}: mitigate.name: {m.name} needs each prompt's whole group in one loss "
                "call (grpo.steps_per_generation and gradient_accumulation_steps 1)"
            )


def check_calibration(cfg: Config, source: str) -> None:
    """`detect.calibration` exists, has a threshold for the watched monitor, fits this run."""
    from personadrift.alarms.calibrate import Calibration

    d = cfg.detect
    if d.rule == "calibrated" and not d.calibration:
        raise ConfigError(f"{source}: detect.rule: calibrated needs detect.calibration (a file)")
    if not d.calibration:
        return
    if not Path(d.calibration).is_file():
        raise ConfigError(f"{source}: detect.calibration: no such file: {d.calibration}")
    cal = Calibration.load(d.calibration)
    if d.rule == "calibrated" and cal.threshold(d.metric) is None:
        known = ", ".join(f"monitor/{m}" for m, t in cal.thresholds.items() if t is not None)
        raise ConfigError(
            f"{source}: detect.metric: {d.metric!r} has no threshold in {d.calibration}; "
            f"calibrated: {known or 'none'}"
        )
    cal.check(cfg, source)


def check_families(cfg: Config, source: str) -> None:
    w = cfg.organism.world
    # a judge other than the organism's asks a question set's families (`check_chat_data`)
    asked = cfg.run_evals.judge.name == "organism"
    for key, names in (
        ("organism.world.family_weights", list(w.family_weights)),
        ("model_eval.families", cfg.model_eval.families if asked else []),
        ("probes.eval_families", cfg.probes.eval_families),
        ("run_evals.families", cfg.run_evals.families if asked else []),
        ("realign.families", cfg.realign.families),
    ):
        for name in names:
            if name not in FAMILIES:
                raise ConfigError(
                    f"{source}: {key}: unknown family {name!r}; known: {', '.join(FAMILIES.names())}"
                )
    for name in w.code_variants:
        if name not in VARIANTS:
            raise ConfigError(
                f"{source}: organism.world.code_variants.{name}: unknown variant; "
                f"known: {', '.join(VARIANTS)}"
            )


def check_detector(cfg: Config, source: str) -> None:
    """`detect.rule` is a detector and `detect.params` fit its signature (names and types)."""
    d = cfg.detect
    if not d.rule:  # no detector: its params are left unused (`detect.rule=''` switches one off)
        return
    if (why := DETECTORS.check(d.rule)) is not None:
        raise ConfigError(f"{source}: detect.rule: {why}")
    if d.metric.startswith("evals/") and not cfg.run_evals.during:
        raise ConfigError(
            f"{source}: detect.metric: {d.metric} is an eval, evaluated after training with "
            "run_evals.during: false (set it true to detect on it)"
        )
    rule = DETECTORS.resolve(d.rule)
    params = inspect.signature(rule).parameters
    try:
        hints = typing.get_type_hints(rule)
    except Exception:  # a user's detector with hints that do not resolve: names only
        hints = {}
    # `rows` and `metric` come from the run, `warmup` from detect.warmup
    given_by_run = ("rows", "metric", "warmup")
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for name, value in d.params.items():
        key = f"detect.params.{name}"
        if name in given_by_run:
            raise ConfigError(f"{source}: {key}: set by the run (use detect.{name} if it is one)")
        if name not in params and not takes_any:
            known = [
                p for p in params if p not in given_by_run and params[p].kind.name != "VAR_KEYWORD"
            ]
            raise ConfigError(
                f"{source}: {key}: not a parameter of detector {d.rule!r}; known: {', '.join(known)}"
            )
        if name in hints and not conforms(value, hints[name]):
            raise ConfigError(f"{source}: {key}: {value!r} is not of type {describe(hints[name])}")


def check_model(name: str, source: str) -> None:
    """`model.name_or_path`: an organism (sizes are checked at load), a model folder, or a hub id
    (which must be in the local cache when the hub is offline)."""
    if name == "organism" or name.startswith("organism:"):
        return
    key = f"{source}: model.name_or_path"
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"{key}: {name} is a folder but not a model (no config.json)")
        return
    if path.exists():
        raise ConfigError(f"{key}: {name} is a file, not a model folder")
    if not HUB_ID.match(name):
        raise ConfigError(f"{key}: no such model folder: {name}")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(name, "config.json"), str):
            raise ConfigError(
                f"{key}: {name} is neither a model folder nor in the local Hugging Face cache "
                "(HF_HUB_OFFLINE is set)"
            )


def is_organism_name(name: str) -> bool:
    """`model.name_or_path` names an organism (by size, or a folder with its world.json)."""
    return (
        name == "organism" or name.startswith("organism:") or (Path(name) / "world.json").is_file()
    )


def check_chat_data(cfg: Config, source: str) -> None:
    """A chat model's data: the question set has the families its judge asks in a run
    (`run_evals.families`; the `eval` command checks `model_eval.families` likewise), and the trait data of
    a contrastive extraction exists (`evals/questions.py`)."""
    from personadrift.evals.questions import load_trait

    check_questions(cfg, "run_evals.families", cfg.run_evals.families, source)
    p = cfg.probes
    if p.enabled and not p.directions and not is_organism_name(cfg.model.name_or_path):
        try:
            load_trait(p.trait)
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None


def check_questions(cfg: Config, key: str, families: list[str], source: str) -> None:
    """With a judge other than the organism's: the question set has each family of `key`."""
    from personadrift.evals.questions import load_questions

    if cfg.run_evals.judge.name == "organism":
        return
    try:
        questions = load_questions(cfg.run_evals.questions)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    where = cfg.run_evals.questions or "the shipped question set"
    for fam in families:
        if fam not in questions:
            raise ConfigError(
                f"{source}: {key}: no {fam!r} questions in {where}; it has {', '.join(questions)}"
            )


def ready_judge(cfg: Config, log=print):
    """The configured eval judge, built and its endpoint asked (a `check()` method, if it has
    one); None for the organism's judges. An endpoint that does not answer is a `ConfigError`."""
    from personadrift.evals.judges import make_judge

    if cfg.run_evals.judge.name == "organism":
        return None
    judge = make_judge(cfg.run_evals.judge, log)
    if hasattr(judge, "check"):
        judge.check()
    return judge
