"""Config loading: every shipped YAML loads; bad input fails naming the key and the file."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from personadrift.checks import load_checked
from personadrift.config import Config, ConfigError, load_config

from .conftest import ROOT

CONFIGS = sorted((ROOT / "personadrift/configs").rglob("*.yaml"))
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
    loaded = ast.literal_eval(out.stdout.strip())
    assert all(m == "personadrift" or m.startswith("personadrift.config") for m in loaded), loaded


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


# shipped configs by short name, and `base:` chains -------------------------------------------
def test_a_shipped_config_is_named_by_its_short_name():
    from personadrift.config import SHIPPED, find_config

    assert find_config("visible_tests") == SHIPPED / "runs/visible_tests.yaml"
    assert find_config("stop") == SHIPPED / "interventions/stop.yaml"
    assert find_config("tiny") == SHIPPED / "runs/tiny.yaml"  # runs come first
    assert find_config("organisms/tiny") == SHIPPED / "organisms/tiny.yaml"
    assert find_config("tiny", ("organisms", "runs")) == SHIPPED / "organisms/tiny.yaml"
    assert load_config("visible_tests") == load_config(SHIPPED / "runs/visible_tests.yaml")
    with pytest.raises(ConfigError, match="nope: config file not found"):
        find_config("nope")


def test_base_chains_merge_under_the_file(tmp_path):
    (tmp_path / "a.yaml").write_text("name: a\nseed: 3\nprobes:\n  every: 7\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\nname: b\nprobes:\n  n_docs: 11\n")
    (tmp_path / "c.yaml").write_text("base: b.yaml\nname: c\n")
    cfg = load_config(tmp_path / "c.yaml", ["seed=4"])
    assert (cfg.name, cfg.seed, cfg.probes.every, cfg.probes.n_docs) == ("c", 4, 7, 11)
    shipped = tmp_path / "mine.yaml"  # a short name reaches the shipped configs
    shipped.write_text("base: visible_tests\nname: mine\ngrpo:\n  max_steps: 3\n")
    mine = load_config(shipped)
    assert mine.env.name == "visible_tests" and mine.grpo["max_steps"] == 3
    assert mine.grpo["learning_rate"] == load_config("visible_tests").grpo["learning_rate"]


@pytest.mark.parametrize(
    "files, needle",
    [
        ({"x.yaml": "base: x.yaml\n"}, "includes itself"),
        ({"x.yaml": "base: y.yaml\n", "y.yaml": "base: x.yaml\n"}, "includes itself"),
        ({"x.yaml": "base: nowhere\n"}, "nowhere: config file not found"),
        ({"x.yaml": "base: [1]\n"}, "base: must name"),
        ({"x.yaml": "base: y.yaml\n", "y.yaml": "probes:\n  evry: 1\n"}, "evry"),
    ],
)
def test_a_bad_base_names_the_file(tmp_path, files, needle):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=needle) as err:
        load_config(tmp_path / "x.yaml")
    assert "x.yaml" in str(err.value)


def leaves(data: dict, prefix: str = "") -> set[tuple[str, str]]:
    out = set()
    for key, value in data.items():
        if isinstance(value, dict):
            out |= leaves(value, f"{prefix}{key}.")
        elif key not in ("base", "name"):
            out.add((prefix + key, repr(value)))
    return out


def test_no_intervention_config_repeats_more_than_8_lines_of_another():
    """What an intervention config writes (its own lines, not what its base gives it) shares at
    most 8 settings with any other shipped config: it says what differs, `base:` the rest."""
    import yaml

    from personadrift.config import SHIPPED

    written = {
        p: leaves(yaml.safe_load(p.read_text()) or {})
        for p in SHIPPED.rglob("*.yaml")
        if "accelerate" not in p.parts
    }
    interventions = [p for p in written if p.parent.name == "interventions"]
    assert len(interventions) >= 10
    for p in interventions:
        text = p.read_text()
        assert text.startswith("# Intervention `"), p  # one word for them all
        for other, settings in written.items():
            if other != p:
                shared = written[p] & settings
                assert len(shared) <= 8, (p.name, other.name, sorted(shared))


def test_the_config_docs_are_current():
    """docs/config-reference.md and docs/configs.md are what the schema and the shipped configs
    say now: `personadrift configs --write-docs docs` rewrites them."""
    from personadrift.config.reference import INDEX, REFERENCE, index, reference

    assert (ROOT / "docs" / REFERENCE).read_text() == reference()
    assert (ROOT / "docs" / INDEX).read_text() == index()
    assert "| `probes.every` | int |" in reference() and "| `stop` | `visible_tests` |" in index()


def test_configs_command_lists_the_shipped_configs(tmp_path):
    from .conftest import cli

    res = cli("configs")
    assert res.returncode == 0 and "interventions/" in res.stdout and "  stop " in res.stdout
    res = cli("configs", "--write-docs", str(tmp_path))
    assert res.returncode == 0 and (tmp_path / "configs.md").is_file()


def test_a_calibration_folder_gives_each_seed_the_calibration_fitted_without_it(tmp_path):
    """The shipped default (`detect.calibration: calibrations/coin`) and any `study warning` folder:
    except_seed<s>.json for a seed the study had, all.json for another; a folder with neither is
    refused."""
    from personadrift.config import ConfigError, load_config

    for seed in (0, 3):
        cfg = load_config("visible_tests", [f"organism.seed={seed}"])
        assert cfg.detect.calibration.endswith(f"calibrations/coin/except_seed{seed}.json")
    cfg = load_config("visible_tests", ["organism.seed=7"])
    assert cfg.detect.calibration.endswith("calibrations/coin/all.json")
    cfg = load_config(
        "visible_tests", ["organism.seed=2", "detect.calibration=calibrations/secure"]
    )
    assert cfg.detect.calibration.endswith("calibrations/secure/except_seed2.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="neither except_seed1.json nor all.json"):
        load_config(
            "visible_tests", ["organism.seed=1", f"detect.calibration={tmp_path / 'empty'}"]
        )
