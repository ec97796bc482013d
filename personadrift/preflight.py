"""Checks that need more than the config file, run before any work and before any run directory.

`preflight(cfg, judge=True)` checks that the model named by `model.name_or_path` can be loaded
(a folder with config.json, or a hub id this machine can resolve), that the question set and the
trait data exist, and, when a run evaluates with a remote judge, that its endpoint answers. Each
failure is one `ConfigError` line; the command line turns it into exit status 2. Import paths
(`env.name: mypkg.envs:MyEnv`) are resolved at config load, by the registries.
"""

from __future__ import annotations

from pathlib import Path

from personadrift.config import Config, ConfigError


def check_model(cfg: Config) -> None:
    from personadrift.models import resolve_organism

    name = cfg.model.name_or_path
    if resolve_organism(cfg) is not None:
        return
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ConfigError(f"model.name_or_path: {name} is not a model folder (no config.json)")
        return
    looks_like_path = name.startswith(("/", ".", "~")) or name.count("/") != 1
    if looks_like_path:
        raise ConfigError(f"model.name_or_path: no model folder at {name}")
    from transformers import AutoConfig

    try:  # a hub id: from the local hub cache, or fetched where there is network
        AutoConfig.from_pretrained(name)
    except Exception as e:  # OSError, connection errors, HTTP errors: all mean "cannot load"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(
            f"model.name_or_path: {name} is neither a local model folder nor a hub model "
            f"this machine can load ({first})"
        ) from None


def check_judge(cfg: Config, families: list[str], log=print):
    """The configured judge, built and checked (None for the organism's judges)."""
    from personadrift.evals.judges import make_judge
    from personadrift.evals.questions import check_families

    jc = cfg.evals.judge
    if jc.name == "organism":
        return None
    check_families(families, cfg.evals.questions)
    judge = make_judge(jc, log)
    if hasattr(judge, "check"):
        judge.check()
    return judge


def preflight(cfg: Config, families: list[str] | None = None, log=print):
    """Everything checkable before a command starts; returns the built judge (or None).

    `families`: the eval families the command will ask (None: the command judges nothing)."""
    check_model(cfg)
    if not cfg.probes.directions and cfg.probes.enabled:
        from personadrift.rl.setup import is_organism

        if not is_organism(cfg):
            from personadrift.evals.questions import load_trait

            load_trait(cfg.probes.trait)
    return check_judge(cfg, families, log) if families is not None else None
