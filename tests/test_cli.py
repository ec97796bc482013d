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
        "configs/organism/tiny.yaml",
        f"organism.cache_dir={cache_dir}",
        "--json",
    )
    data = json.loads(stdout.strip().splitlines()[-1])
    assert data["path"] == str(tiny.path) and data["cached"] is True
    assert set(data) >= {"build_seconds", "base_rates", "best_layer", "auroc", "tracking_auroc"}
    assert data["base_rates"]["code"]["n"] == 50
    assert "base rates" in stdout and "AUROC" in stdout


def test_eval_json(tiny, cache_dir):
    stdout = _run(
        "eval", "configs/organism/tiny.yaml", f"organism.cache_dir={cache_dir}",
        "eval.n_per_family=8", "eval.families=[advice,code]", "--json",
    )  # fmt: skip
    table = json.loads(stdout.strip().splitlines()[-1])
    assert set(table) == {"advice", "code"}
    assert table["advice"]["n"] == 8 and set(table["code"]) >= {"solved", "hacked", "failed"}


def test_eval_on_a_checkpoint_path(tiny):
    stdout = _run(
        "eval", "configs/organism/tiny.yaml", f"model.name_or_path={tiny.path}",
        "eval.n_per_family=4", "eval.families=[facts]", "--json",
    )  # fmt: skip
    assert json.loads(stdout.strip().splitlines()[-1])["facts"]["n"] == 4
