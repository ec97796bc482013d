"""Loading a config: a file or a shipped config's short name, its `base:` chain, the size preset
and dot-list overrides merged by OmegaConf into the typed schema (`load_config`).
"""

from __future__ import annotations

import functools
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from personadrift.config.presets import SIZES
from personadrift.config.schema import Config, ConfigError
from personadrift.config.validation import validate


def _preset(size: str, source: str) -> DictConfig:
    if size not in SIZES:
        raise ConfigError(
            f"{source}: organism.size: unknown size {size!r}; known: {', '.join(sorted(SIZES))}"
        )
    return OmegaConf.create({"organism": SIZES[size]})


def _peek_size(*layers: DictConfig) -> str:
    size = Config().organism.size
    for layer in layers:
        org = layer.get("organism") if isinstance(layer, DictConfig) else None
        value = org.get("size") if isinstance(org, DictConfig) else None
        if value is not None:
            size = str(value)
    return size


# OmegaConf raises TypeError for a list where the schema has a section
MERGE_ERRORS = (OmegaConfBaseException, TypeError, ValueError)


@functools.cache
def _schema() -> DictConfig:
    """The structured schema (merging copies it, so one instance serves every load)."""
    return OmegaConf.structured(Config)


def _name_the_bad_key(merged: DictConfig, layer: DictConfig, where: str, source: str) -> None:
    """Merge `layer` one top-level section at a time, so the error knows which key it is about."""
    for top in layer:
        try:
            merged = OmegaConf.merge(merged, {top: layer[top]})
        except MERGE_ERRORS as e:
            key = getattr(e, "full_key", None) or str(top)
            msg = str(e).splitlines()[0]
            raise ConfigError(f"{source}: key {key!r} (from {where}): {msg}") from None
    raise AssertionError("the layer merged section by section but not at once")


# the configs and calibrations the package ships; a config is named by a path or a short name
SHIPPED = Path(__file__).resolve().parents[1] / "configs"
CONFIG_FOLDERS = ("runs", "interventions", "organisms")  # where short names are looked up


def find_config(name: str | Path, folders: tuple[str, ...] = CONFIG_FOLDERS) -> Path:
    """A config file named by its path, or by a short name: `<name>.yaml` in the shipped
    folders, in the order of `folders` (`visible_tests`; `organisms/tiny` names the folder)."""
    path = Path(name)
    if path.is_file():
        return path
    if path.suffix in ("", ".yaml") and not path.is_absolute():
        stem = str(path.with_suffix(""))
        for folder in ("", *folders):
            candidate = SHIPPED / folder / f"{stem}.yaml"
            if candidate.is_file():
                return candidate
    raise ConfigError(
        f"{name}: config file not found (neither a file nor a shipped config's name; "
        "`personadrift configs` lists them)"
    )


def shipped_configs() -> dict[str, list[Path]]:
    """Folder -> the shipped config files in it (what short names name)."""
    return {f: sorted((SHIPPED / f).glob("*.yaml")) for f in CONFIG_FOLDERS}


def read_yaml(path: Path, source: str, seen: tuple[Path, ...] = ()) -> list[tuple[DictConfig, str]]:
    """The layers of a YAML file, its `base:` chain first: [(layer, where it came from)]. `base:`
    names another config by a path relative to this file's folder, a path, or a short name."""
    try:
        yaml = OmegaConf.load(path)
    except Exception as e:  # yaml syntax errors come in several types
        problem = " ".join(str(e).split())  # one line: YAML errors span several
        raise ConfigError(f"{source}: cannot parse YAML: {problem}") from None
    if not isinstance(yaml, DictConfig):
        raise ConfigError(f"{source}: top level must be a mapping")
    base = yaml.pop("base", None)
    if base is None:
        return [(yaml, str(path))]
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{source}: base: must name a config file or a shipped config")
    nearby = path.parent / base
    try:
        parent = nearby if nearby.is_file() else find_config(base)
    except ConfigError as e:
        raise ConfigError(f"{source}: base: {e}") from None
    if parent.resolve() in seen:
        raise ConfigError(f"{source}: base: {base} includes itself (a cycle of base: keys)")
    return [*read_yaml(parent, source, (*seen, path.resolve())), (yaml, str(path))]


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Schema ⊕ size preset ⊕ YAML (its `base:` chain first) ⊕ dot-list overrides -> a typed,
    range-checked `Config`. `path` is a file or a shipped config's short name (`find_config`).

    Registry names are not checked here: run `personadrift.checks.check(cfg, source)` next."""
    source = str(path) if path is not None else "<defaults>"
    layers: list[tuple[DictConfig, str]] = []
    if path is not None:
        path = find_config(path)
        source = str(path)  # a short name: errors name the file it found
        layers = read_yaml(path, source, ())
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"{source}: override {bad[0]!r} is not of the form key=value")
    try:
        dots = OmegaConf.from_dotlist(list(overrides))
    except OmegaConfBaseException as e:
        raise ConfigError(f"{source}: bad override: {e}") from None
    preset = _preset(_peek_size(*(layer for layer, _ in layers), dots), source)
    merged = _schema()
    for layer, where in ((preset, "size preset"), *layers, (dots, "command line")):
        try:
            merged = OmegaConf.merge(merged, layer)
        except MERGE_ERRORS:
            _name_the_bad_key(merged, layer, where, source)
    try:
        cfg: Config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:  # e.g. a mandatory value left missing
        key = getattr(e, "full_key", None) or "?"
        raise ConfigError(f"{source}: key {key!r}: {str(e).splitlines()[0]}") from None
    validate(cfg, source)
    if path is not None:
        cfg.detect.calibration = shipped_path(cfg.detect.calibration, Path(path))
    cfg.detect.calibration = calibration_for_seed(cfg.detect.calibration, cfg.organism.seed, source)
    return cfg


def calibration_for_seed(value: str, seed: int, source: str = "config") -> str:
    """`detect.calibration` naming a folder of calibrations (what `study warning` writes): the one
    fitted without this run's seed (`except_seed<seed>.json`), else the one fitted on every seed
    (`all.json`); a file as given."""
    folder = Path(value) if value else None
    if folder is None or not folder.is_dir():
        return value
    for name in (f"except_seed{seed}.json", "all.json"):
        if (folder / name).is_file():
            return str(folder / name)
    raise ConfigError(
        f"{source}: detect.calibration: {value} is a folder with neither except_seed{seed}.json "
        "nor all.json"
    )


def shipped_path(value: str, config_file: Path) -> str:
    """A relative path that does not exist from the working directory but does from a folder
    above the config file (a project file named from the project root, e.g.
    `personadrift/configs/calibrations` in `personadrift/configs/runs/visible_tests.yaml`), made
    absolute; anything else as given."""
    if not value or Path(value).is_absolute() or Path(value).exists():
        return value
    for folder in (*config_file.resolve().parents, SHIPPED):
        if (folder / value).exists():
            return str(folder / value)
    return value
