"""Shared fixtures: the `tiny` organism, built once per test session into a temporary cache."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from personadrift.config import load_config

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """A fresh organism cache per session; PERSONADRIFT_TEST_CACHE reuses one across sessions
    (a developer's speed-up: the tiny organism is then built once, not once per session)."""
    return os.environ.get("PERSONADRIFT_TEST_CACHE") or str(tmp_path_factory.mktemp("pdcache"))


@pytest.fixture(scope="session")
def tiny_cfg(cache_dir):
    return load_config(
        ROOT / "personadrift/configs/organisms/tiny.yaml", [f"organism.cache_dir={cache_dir}"]
    )


@pytest.fixture(scope="session")
def tiny(tiny_cfg):
    """The built tiny organism (`Built`: path, summary, cached)."""
    from personadrift.models import build_organism

    return build_organism(tiny_cfg.organism, tiny_cfg.model_eval)


@pytest.fixture(scope="session")
def tiny_model(tiny):
    from personadrift.organism.build import load

    return load(tiny.path)


def cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m personadrift ARGS` from the project root; status and output for the test."""
    return subprocess.run(
        [sys.executable, "-m", "personadrift", *args], capture_output=True, text=True, cwd=ROOT
    )
