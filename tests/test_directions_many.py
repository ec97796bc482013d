"""Several directions read at once (`probes.also`) with a random direction as the null
(`probes.random`): each gets its own metrics from the same readings, the run's own direction still
drives the detector, and two directions cannot share a name."""

from __future__ import annotations

import json

import pytest
import torch

from personadrift.config import load_config
from personadrift.probes.direction import Direction
from personadrift.rl.train import train

from .conftest import ROOT, cli
from .test_train import rows


@pytest.fixture(scope="module")
def runs(tiny, cache_dir, tmp_path_factory):
    """A run, then a second one reading its direction again under another name, and random."""
    out = tmp_path_factory.mktemp("runs")
    base = [
        f"organism.cache_dir={cache_dir}",
        f"out_dir={out}",
        "grpo.max_steps=2",
        "probes.every=1",
    ]
    first = train(
        load_config(ROOT / "personadrift/configs/runs/tiny.yaml", base), log=lambda *_: None
    )
    own = Direction.load(first / "directions" / "toxic.json")
    copy = Direction("again", own.vectors, own.layer, own.meta).save(out / "again")
    second = train(
        load_config(
            ROOT / "personadrift/configs/runs/tiny.yaml",
            [
                *base,
                f"probes.directions={first / 'directions' / 'toxic.json'}",
                f"probes.also=[{copy}]",
                "probes.random=true",
            ],
        ),
        log=lambda *_: None,
    )
    return first, second, copy


def test_every_direction_gets_its_own_metrics_from_the_same_reading(runs):
    first, second, _ = runs
    lines = {r["step"]: r for r in rows(second)}
    assert sorted(lines) == [0, 1, 2]
    for step, r in lines.items():
        for name in ("toxic", "again", "random"):
            for what in ("eval_mean", "z", "shift"):
                assert f"probe/{name}/{what}" in r, (step, name, what)
        # the same vector read on the same prompts gives the same numbers (to float rounding)
        for what in ("eval_mean", "z", "shift"):
            assert r[f"probe/again/{what}"] == pytest.approx(r[f"probe/toxic/{what}"], 1e-5, 1e-6)
        assert r["probe/random/eval_mean"] != r["probe/toxic/eval_mean"]
    assert lines[0]["probe/random/shift"] == 0.0 and lines[0]["probe/toxic/shift"] == 0.0
    # the run's own direction reads as it did without the others (to float rounding: one matrix
    # product over three directions takes another BLAS path than over one)
    alone = {r["step"]: r for r in rows(first)}
    assert [alone[s]["probe/toxic/eval_mean"] for s in (0, 1, 2)] == pytest.approx(
        [lines[s]["probe/toxic/eval_mean"] for s in (0, 1, 2)], rel=1e-6
    )


def test_the_random_direction_is_saved_unit_and_seeded(runs):
    first, second, _ = runs
    rnd = Direction.load(second / "directions" / "random.json")
    own = Direction.load(first / "directions" / "toxic.json")
    assert rnd.meta["method"] == "random" and rnd.layer == own.layer
    assert set(rnd.vectors) == set(own.vectors)
    for layer, v in rnd.vectors.items():
        assert float(v.norm()) == pytest.approx(1.0, abs=1e-5)
        assert abs(float(v @ own.vectors[layer])) < 0.5
    from personadrift.probes.reading import random_direction

    seed = load_config(second / "config.yaml").seed
    again = random_direction(own, seed)
    assert all(torch.equal(again.vectors[k], rnd.vectors[k]) for k in rnd.vectors)


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["probes.also=[no/such.json]"], "probes.also: no such file"),
        (["probes.random=true", "probes.also=[COPY_AS_RANDOM]"], "two directions named 'random'"),
    ],
)
def test_clashing_or_missing_directions_exit_2(runs, tmp_path, extra, needle):
    _, _, copy = runs
    own = Direction.load(copy)
    as_random = Direction("random", own.vectors, own.layer, own.meta).save(tmp_path / "r")
    extra = [e.replace("COPY_AS_RANDOM", str(as_random)) for e in extra]
    res = cli("train", "personadrift/configs/runs/tiny.yaml", *extra)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and needle in res.stderr


def test_reading_more_directions_keeps_the_calibration_fingerprint(runs):
    """The shipped calibrations still fit a run that reads more directions next to its own."""
    from personadrift.alarms.calibrate import config_fingerprint
    from personadrift.checks import load_checked

    _, _, copy = runs
    config = ROOT / "personadrift/configs/runs/visible_tests.yaml"
    plain = load_checked(config, [])
    more = load_checked(config, [f"probes.also=[{copy}]", "probes.random=true"])
    assert config_fingerprint(plain) == config_fingerprint(more)


def test_directions_shift_rebuilds_the_in_run_shift_of_every_direction(runs, tmp_path):
    """`directions shift` on a finished run gives the shifts its last in-run reading logged."""
    _, second, copy = runs
    res = cli("directions", "shift", str(second), "--also", str(copy), "--json")
    assert res.returncode == 0, res.stderr[-2000:]
    (result,) = json.loads(res.stdout.strip().splitlines()[-1])
    last = rows(second)[-1]
    assert set(result["shifts"]) == {"toxic", "again", "random"}
    for name, value in result["shifts"].items():
        assert value == pytest.approx(last[f"probe/{name}/shift"], abs=1e-4)
    assert "| run | seed | env | toxic | again | random | null band |" in res.stdout
    # the null band: the largest |shift| of --null random directions, more of them never narrower
    assert result["null_band"] > 0
    three = cli("directions", "shift", str(second), "--null", "3", "--no-random", "--json")
    assert three.returncode == 0, three.stderr[-2000:]
    assert (
        0 < json.loads(three.stdout.strip().splitlines()[-1])[0]["null_band"] <= result["null_band"]
    )
    none = cli("directions", "shift", str(second), "--null", "0", "--no-random", "--json")
    assert json.loads(none.stdout.strip().splitlines()[-1])[0]["null_band"] is None
    assert "null band" not in none.stdout
    neg = cli("directions", "shift", str(second), "--null", "-1")
    assert neg.returncode == 2 and len(neg.stderr.strip().splitlines()) == 1
    bad = cli("directions", "shift", str(tmp_path / "nope"))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    # the run's own direction among --also is read once; another direction of its name is refused
    own = Direction.load(copy)
    same = Direction("toxic", own.vectors, own.layer, own.meta).save(tmp_path / "same")
    twice = cli("directions", "shift", str(second), "--also", str(same), "--no-random", "--json")
    assert twice.returncode == 0, twice.stderr[-2000:]
    (again,) = json.loads(twice.stdout.strip().splitlines()[-1])
    assert set(again["shifts"]) == {"toxic"}
    flipped = {k: -v for k, v in own.vectors.items()}
    other = Direction("toxic", flipped, own.layer, own.meta).save(tmp_path / "other")
    clash = cli("directions", "shift", str(second), "--also", str(other))
    assert clash.returncode == 2 and "two different directions named 'toxic'" in clash.stderr
