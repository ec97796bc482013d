"""Config loading: every shipped YAML loads; bad input fails naming the key and the file."""

from __future__ import annotations

import subprocess
import sys

import pytest

from personadrift.checks import load_checked
from personadrift.config import Config, ConfigError, load_config

from .conftest import ROOT

CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))
PERSONADRIFT_CONFIGS = [p for p in CONFIGS if "accelerate" not in p.parts]


def test_there_are_configs():
    assert len(PERSONADRIFT_CONFIGS) >= 3


@pytest.mark.parametrize("path", PERSONADRIFT_CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)


def test_size_preset_then_yaml_then_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("organism:\n  size: tiny\n  arch:\n    layers: 3\n")
    cfg = load_config(f, ["organism.pretrain.steps=7"])
    assert cfg.organism.arch.hidden == 64  # from the tiny preset
    assert cfg.organism.arch.layers == 3  # YAML beats preset
    assert cfg.organism.pretrain.steps == 7  # override beats YAML


@pytest.mark.parametrize(
    "yaml, overrides, needle",
    [
        ("organism:\n  wrold: {}\n", [], "wrold"),
        ("organism:\n  pretrain:\n    steps: many\n", [], "steps"),
        ("model_eval:\n  families: [advice, poetry]\n", [], "poetry"),
        ("organism:\n  world:\n    family_weights: {code: 1.0, jokes: 1.0}\n", [], "jokes"),
        ("organism:\n  size: huge\n", [], "huge"),
        ("", ["organism.arch.lyers=3"], "lyers"),
        ("", ["organism.world.toxic_p=1.5"], "toxic_p"),
        ("", ["organism.world.toxic_state_p=2"], "toxic_state_p"),
        ("", ["organism.seed"], "organism.seed"),
        ("organism: [1, 2]\n", [], "organism"),
    ],
)
def test_bad_config_names_key_and_file(tmp_path, yaml, overrides, needle):
    f = tmp_path / "bad.yaml"
    f.write_text(yaml)
    with pytest.raises(ConfigError) as err:
        load_checked(f, overrides)  # load_config, then the registry names
    assert needle in str(err.value)
    assert "bad.yaml" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_schema_knows_no_registry():
    """Loading a config imports no plug-in: names are resolved by personadrift.checks."""
    code = (
        "import sys; from personadrift.config import load_config; load_config(None); "
        "print(sorted(m for m in sys.modules if m.startswith('personadrift')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['personadrift', 'personadrift.config']"


def test_missing_file():
    with pytest.raises(ConfigError, match="not found"):
        load_config("configs/does_not_exist.yaml")


def test_cli_bad_config_exits_2_with_one_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("organism:\n  wrold: 1\n")
    out = subprocess.run(
        [sys.executable, "-m", "personadrift", "organism", "build", str(f)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "wrold" in lines[0] and "Traceback" not in out.stderr
    assert list(tmp_path.iterdir()) == [f]  # nothing written


@pytest.mark.parametrize("argv", [[], ["organism"], ["organism", "build"], ["eval"], ["demo"]])
def test_cli_help(argv):
    out = subprocess.run(
        [sys.executable, "-m", "personadrift", *argv, "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "usage" in out.stdout
