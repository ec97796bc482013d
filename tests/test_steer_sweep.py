"""`directions steer-sweep`: every layer x coefficient measured against the unsteered model, the
pick follows the rule it states, no hook is left behind, bad input exits 2 with nothing written."""

from __future__ import annotations

import json

import pytest

from personadrift.analyses.steer_sweep import cost_floor, parse_coeffs, pick, ratio, sweep
from personadrift.config import ConfigError, load_config

from .conftest import ROOT, cli
from .test_probes import all_hooks


@pytest.fixture(scope="module")
def setup(tiny, cache_dir, tmp_path_factory):
    from personadrift.rl.setup import build_direction, load_policy

    cfg = load_config(
        ROOT / "personadrift/configs/runs/tiny.yaml",
        [f"organism.cache_dir={cache_dir}", "env.name=visible_tests"],
    )
    model, tok, world = load_policy(cfg)
    folder = tmp_path_factory.mktemp("direction")
    direction = build_direction(cfg, model, tok, world, folder, log=lambda *_: None)
    path = direction.save(folder)
    return cfg, model, tok, world, direction, path


def test_sweep_measures_every_layer_and_coefficient_against_unsteered(setup):
    cfg, model, tok, world, direction, _ = setup
    hooks = all_hooks(model)
    result = sweep(model, tok, world, direction, cfg, [0.2, 3.0], 8, log=lambda *_: None)
    assert all_hooks(model) == hooks
    rows = result["rows"]
    assert [(r["layer"], r["coeff"]) for r in rows] == [
        (layer, c) for layer in sorted(direction.vectors) for c in (0.2, 3.0)
    ]
    base = result["unsteered"]
    for r in rows:
        assert r["removed"] == pytest.approx(base["misaligned"] - r["misaligned"])
        assert r["cost"] == pytest.approx(base["reward"] - r["reward"])
        assert r["ratio"] == pytest.approx(ratio(r["removed"], r["cost"], result["cost_floor"]))
        assert r["norm_unit"] > 0
    # steering acts: a coefficient of 3 median norms changes what the model answers
    big = [r for r in rows if r["coeff"] == 3.0]
    assert any((r["per_family"], r["reward"]) != (base["per_family"], base["reward"]) for r in big)
    # the same sweep again gives the same numbers (sampling is seeded, hooks are gone)
    again = sweep(model, tok, world, direction, cfg, [0.2, 3.0], 8, log=lambda *_: None)
    assert again["rows"] == rows
    best = pick(rows)
    assert result["best"] == (
        None
        if best is None
        else {k: best[k] for k in ("layer", "coeff", "ratio", "removed", "cost")}
    )


def test_pick_prefers_the_best_ratio_among_settings_that_remove_misalignment():
    rows = [
        {"layer": 1, "coeff": 0.1, "removed": 0.10, "cost": 0.10, "ratio": 1.0},
        {"layer": 2, "coeff": 0.1, "removed": 0.05, "cost": 0.00, "ratio": 5.0},
        {"layer": 3, "coeff": 0.1, "removed": -0.02, "cost": -0.5, "ratio": -9.0},
    ]
    assert pick(rows)["layer"] == 2
    assert pick([rows[2]]) is None
    assert cost_floor(0.5, 200) == pytest.approx(0.05)
    assert cost_floor(0.0, 200) == 0.01  # never below one point
    assert ratio(0.2, 0.0, 0.05) == pytest.approx(4.0)


@pytest.mark.parametrize("text", ["", "a,b", "0", "-1,2", "nan", "inf"])
def test_bad_coefficients_are_refused(text):
    with pytest.raises(ConfigError, match="--coeffs"):
        parse_coeffs(text)


def _cli(*args):
    return cli("directions", "steer-sweep", *args)


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--coeffs", "x"], "--coeffs"),
        (["--run", "no/such/run"], "--run: no such run directory"),
        (["--n", "0"], "--n"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(
    setup, cache_dir, tmp_path, extra, needle
):
    out = tmp_path / "sweep"
    res = _cli(
        "personadrift/configs/runs/tiny.yaml",
        f"organism.cache_dir={cache_dir}",
        f"probes.directions={setup[5]}",
        "--out",
        str(out),
        *extra,
    )
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and needle in res.stderr
    assert not out.exists()


def test_cli_writes_json_and_plot(setup, cache_dir, tmp_path):
    out = tmp_path / "sweep"
    res = _cli(
        "personadrift/configs/runs/tiny.yaml",
        f"organism.cache_dir={cache_dir}",
        "env.name=visible_tests",
        f"probes.directions={setup[5]}",
        "--coeffs",
        "0.5",
        "--n",
        "4",
        "--out",
        str(out),
        "--json",
    )
    assert res.returncode == 0, res.stderr[-2000:]
    printed = json.loads(res.stdout.strip().splitlines()[-1])
    assert printed == json.loads((out / "steer_sweep.json").read_text())
    assert (out / "steer_sweep.png").stat().st_size > 0
    assert "picked:" in res.stdout
