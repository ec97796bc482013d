"""Reproducible organisms: the CPU pins, published digests, and results that name their build.

The same seed builds the same weights on any x86-64 CPU with AVX2 at any thread count (the package
pins torch's AVX2 kernels and MKL's AVX2 path on import: `personadrift.CPU_PINS`); a build says
whether it is the published one, and a calibration fitted on another build is refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from personadrift.alarms.calibrate import Calibration, config_fingerprint, organism_fingerprint
from personadrift.config import ConfigError, load_config
from personadrift.organism import digests

from .conftest import ROOT, cli

GOLDEN = json.loads((ROOT / "tests/data/tiny_metrics_before.json").read_text())["organism_sha256"]


def best_kernels() -> str:
    """The widest CPU kernel family torch could pick here without the pins."""
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    return "avx512" if " avx512f" in flags else "avx2" if " avx2" in flags else "default"


def test_the_package_pins_torch_to_its_avx2_kernels():
    from personadrift.organism.digests import cpu_kernels

    if best_kernels() == "default":
        pytest.skip("no AVX2 on this CPU: torch chooses, the published digests do not apply")
    assert cpu_kernels() == "AVX2"  # on a CPU with AVX-512 too


def test_tiny_builds_one_digest_under_other_kernels_and_threads(tiny, tmp_path):
    """The session's tiny organism (torch's default thread count) and one built in another process
    that asks torch for its widest kernels and one thread: one weights digest, the published one."""
    if best_kernels() == "default":
        pytest.skip("no AVX2 on this CPU")
    env = {**os.environ, "ATEN_CPU_CAPABILITY": best_kernels(), "OMP_NUM_THREADS": "1"}
    cache = f"organism.cache_dir={tmp_path}"
    args = ["organism", "build", "personadrift/configs/organisms/tiny.yaml", cache, "--json"]
    res = subprocess.run(
        [sys.executable, "-m", "personadrift", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["cached"] is False and out["weights_digest"] == tiny.weights_digest == GOLDEN
    assert out["digest_matches"] is True and tiny.digest.matches is True
    assert "matches the published build" in res.stdout
    assert json.loads((tiny.path / "summary.json").read_text())["cpu_kernels"] == "AVX2"


def test_published_digests_cover_the_shipped_seeds():
    table = digests.published()
    shipped = {(e["size"], e["seed"]) for e in table.values()}
    small = {("small", s) for s in range(5)} | {("small_sycophant", s) for s in range(5)}
    assert {("tiny", 0)} | small <= shipped
    for name, entry in table.items():
        assert name.startswith(entry["size"] + "-")
        assert all(len(entry[p]) == 64 for p in digests.PARTS), name
    (tiny,) = [e for e in table.values() if e["size"] == "tiny"]
    assert tiny["weights"] == GOLDEN  # the golden metrics test's organism


def check_of(**changed) -> digests.DigestCheck:
    expected = {"corpus": "c" * 64, "tokenizer": "t" * 64, "weights": "w" * 64}
    return digests.DigestCheck("small-x", {**expected, **changed}, expected)


def test_a_mismatch_is_a_warning_naming_what_differs():
    same = check_of()
    assert same.matches is True and "matches the published build of small-x" in same.message()
    weights = check_of(weights="v" * 64)
    assert weights.matches is False and weights.differs == ["weights"]
    msg = weights.message()
    assert msg.startswith("WARNING") and "weights differs (corpus, tokenizer the same)" in msg
    assert "arithmetic" in msg
    world = check_of(corpus="d" * 64, tokenizer="u" * 64, weights="v" * 64)
    assert "corpus, tokenizer, weights differ:" in world.message()
    assert "world generator" in world.message()
    none = digests.DigestCheck("small-y", {"weights": "w" * 64}, None)
    assert none.matches is None and "no published digest" in none.message()


def test_an_organism_outside_the_published_table_has_no_verdict(tiny, tmp_path):
    res = cli(
        "organism", "build", "personadrift/configs/organisms/tiny.yaml", f"organism.cache_dir={tiny.path.parents[1]}",
        "organism.pretrain.steps=299", "organism.world.n_docs=500", "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["digest_matches"] is None and len(out["weights_digest"]) == 64


PUBLISHED = {"small-a": {"weights": "a" * 64}, "small-b": {"weights": "b" * 64}}


def test_foreign_builds(monkeypatch):
    monkeypatch.setattr(digests, "published", lambda: PUBLISHED)
    # this machine builds the published small-a: small-b is expected as published
    assert digests.foreign_builds({"small-b": "b" * 64}, "small-a", "a" * 64, {}) == []
    (line,) = digests.foreign_builds({"small-b": "x" * 64}, "small-a", "a" * 64, {})
    assert line.startswith("small-b") and "expected bbbb" in line
    # another build here of the run's own organism: the published table says nothing more,
    # but a calibration fitted on builds made here is this machine's
    assert digests.foreign_builds({"small-b": "x" * 64}, "small-a", "z" * 64, {}) == []
    assert (
        digests.foreign_builds({"small-b": "x" * 64}, "small-a", "z" * 64, {"small-b": "x" * 64})
        == []
    )
    assert digests.foreign_builds({"small-b": "y" * 64}, "small-a", "z" * 64, {"small-b": "x" * 64})
    # the run's own organism, fitted on another build of it
    assert digests.foreign_builds({"small-a": "b" * 64}, "small-a", "a" * 64, {})


def calibration_for(cfg, organisms) -> Calibration:
    return Calibration(
        {"probe": 1.0}, 0.1, 2, [1], organism_fingerprint(cfg), config_fingerprint(cfg),
        organisms=organisms,
    )  # fmt: skip


def tiny_run(cache_dir, tmp_path) -> tuple[list[str], object]:
    """A one-step tiny run's overrides and its config."""
    overrides = [
        f"organism.cache_dir={cache_dir}",
        f"out_dir={tmp_path / 'runs'}",
        "grpo.max_steps=1",
    ]
    return overrides, load_config(ROOT / "personadrift/configs/runs/tiny.yaml", overrides)


def refused_train(overrides: list[str], calibration) -> str:
    """`personadrift train tiny` with `calibration`: exit 2; its last stderr line."""
    res = cli(
        "train", "personadrift/configs/runs/tiny.yaml", *overrides,
        f"detect.calibration={calibration}",
    )  # fmt: skip
    assert res.returncode == 2, res.stderr[-2000:]
    return res.stderr.strip().splitlines()[-1]  # (above it: a library's FutureWarning)


def test_a_calibration_fitted_on_another_build_is_refused(tiny, cache_dir, tmp_path):
    overrides, cfg = tiny_run(cache_dir, tmp_path)
    path = calibration_for(cfg, {tiny.path.name: "0" * 64}).save(tmp_path / "other.json")
    line = refused_train(overrides, path)
    assert line.startswith("personadrift: config error")
    assert "fitted on another build of the organism" in line and tiny.path.name in line
    assert not (tmp_path / "runs").exists()  # nothing written
    with pytest.raises(ConfigError, match="another build"):
        calibration_for(cfg, {tiny.path.name: "0" * 64}).check_builds(
            tiny.path.name, tiny.weights_digest, {}
        )
    ok = calibration_for(cfg, {tiny.path.name: tiny.weights_digest})
    assert ok.check_builds(tiny.path.name, tiny.weights_digest, {}) is None
    legacy = calibration_for(cfg, {})  # fitted before builds were recorded: said, not refused
    assert "records no organism digests" in legacy.check_builds(tiny.path.name, "x", {})


def test_a_calibration_fitted_with_another_direction_is_refused(tiny, cache_dir, tmp_path):
    overrides, cfg = tiny_run(cache_dir, tmp_path)
    cal = calibration_for(cfg, {tiny.path.name: tiny.weights_digest})
    cal.directions = {tiny.path.name: "f" * 64}
    line = refused_train(overrides, cal.save(tmp_path / "other_direction.json"))
    assert line.startswith("personadrift: config error")
    assert "fitted with another direction" in line and tiny.path.name in line
    assert not any((tmp_path / "runs").glob("*"))  # the refused run left nothing behind
    with pytest.raises(ConfigError, match="another direction"):
        cal.check_direction(tiny.path.name, "0" * 64)
    assert cal.check_direction(tiny.path.name, "f" * 64) is None  # the same direction
    assert cal.check_direction("small-other", "0" * 64) is None  # no null run on this build
    legacy = calibration_for(cfg, {tiny.path.name: tiny.weights_digest})
    assert "records no direction digests" in legacy.check_direction(tiny.path.name, "0" * 64)
