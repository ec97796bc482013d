"""The command line on the tiny organism: machine-readable output of build and eval."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import ROOT


def _run(*args):
    out = subprocess.run(
        [sys.executable, "-m", "personadrift", *args], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_organism_build_json(tiny, cache_dir):
    stdout = _run(
        "organism",
        "build",
        "personadrift/configs/organisms/tiny.yaml",
        f"organism.cache_dir={cache_dir}",
        "--json",
    )
    data = json.loads(stdout.strip().splitlines()[-1])
    assert data["path"] == str(tiny.path) and data["cached"] is True
    assert set(data) >= {"build_seconds", "base_rates", "best_layer", "auroc", "tracking_auroc"}
    assert data["base_rates"]["code"]["n"] == 50
    assert "base rates" in stdout and "AUROC" in stdout


def test_organism_readability_measures_the_build_again(tiny, cache_dir):
    stdout = _run(
        "organism",
        "readability",
        "personadrift/configs/organisms/tiny.yaml",
        f"organism.cache_dir={cache_dir}",
        "--json",
    )
    data = json.loads(stdout.strip().splitlines()[-1])
    saved = json.loads((tiny.path / "readability.json").read_text())
    assert data["path"] == str(tiny.path)
    assert data["layers"]["pre"] == {str(k): v for k, v in saved["layers"]["pre"].items()}
    assert "covert" not in data  # the tiny world's persona never hides


def test_eval_json(tiny, cache_dir, tmp_path):
    stdout = _run(
        "eval",
        "personadrift/configs/organisms/tiny.yaml",
        f"organism.cache_dir={cache_dir}",
        f"out_dir={tmp_path}",
        "model_eval.n_per_family=8",
        "model_eval.families=[advice,code]",
        "--json",
    )
    table = json.loads(stdout.strip().splitlines()[-1])
    assert set(table) == {"advice", "code"}
    written = [
        line.split("written: ")[1] for line in stdout.splitlines() if line.startswith("written: ")
    ]
    assert written[0].startswith(str(tmp_path))
    assert json.loads(open(written[0]).read())["rates"] == table
    assert table["advice"]["n"] == 8 and set(table["code"]) >= {"solved", "hacked", "failed"}


def test_eval_on_a_checkpoint_path(tiny, tmp_path):
    stdout = _run(
        "eval",
        "personadrift/configs/organisms/tiny.yaml",
        f"model.name_or_path={tiny.path}",
        f"out_dir={tmp_path}",
        "model_eval.n_per_family=4",
        "model_eval.families=[facts]",
        "--json",
    )
    assert json.loads(stdout.strip().splitlines()[-1])["facts"]["n"] == 4


def test_envs_list_names_every_env_with_its_loophole():
    from personadrift.envs import ENVS

    lines = _run("envs", "list").strip().splitlines()
    assert len(lines) == len(ENVS.names())
    assert any(line.startswith("exit_code") and "sys.exit" in line for line in lines)


def test_envs_try_grades_the_models_answers(tiny, cache_dir):
    stdout = _run(
        "envs",
        "try",
        "visible_tests",
        "personadrift/configs/organisms/tiny.yaml",
        f"organism.cache_dir={cache_dir}",
        "-n",
        "2",
        "--samples",
        "8",
    )
    assert stdout.count("prompt:") == 2 and "env/hack_rate" in stdout


def test_directions_extract_saves_a_loadable_direction(tiny, cache_dir, tmp_path):
    stdout = _run(
        "directions",
        "extract",
        "personadrift/configs/runs/tiny.yaml",
        f"organism.cache_dir={cache_dir}",
        "--out",
        str(tmp_path),
        "--json",
    )
    data = json.loads(stdout.strip().splitlines()[-1])
    from personadrift.organism.build import load
    from personadrift.probes.direction import Direction

    model, tok = load(tiny.path)
    d = Direction.load(data["path"], model, tok)
    assert d.layer == data["layer"] and set(d.meta["auroc"]) == {"1", "2"}
