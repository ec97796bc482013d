"""What an organism build is, as digests, and whether it is the published one.

Three sha256 digests name a build: `corpus` (every training document as rendered), `tokenizer`
(its `tokenizer.json`) and `weights` (`model.safetensors`). `published.json` beside this file holds
the digests of every shipped organism (by cache name: size, config hash and `BUILD_VERSION`), built
with the package's CPU pins (`personadrift.CPU_PINS`). A build is compared with it; a mismatch is a
warning naming what differs, never an error (the organism is still usable, but the published
numbers were not measured on it). Calibrations, study and demo JSON carry the weights digest of the
organisms they were measured on, and a calibration fitted on another build is refused
(`foreign_builds`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PUBLISHED = Path(__file__).with_name("published.json")
PARTS = ("corpus", "tokenizer", "weights")
RUN_RECORD = "organism.json"  # a run directory's record of its build (`rl/run_dir.write_organism`)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def corpus_digest(texts: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def cpu_kernels() -> str:
    """The CPU kernel family torch dispatches to in this process (e.g. AVX2, AVX512)."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


def published() -> dict[str, dict]:
    """Cache name -> {size, seed, corpus, tokenizer, weights} of every published organism."""
    return json.loads(PUBLISHED.read_text())["organisms"]


@dataclass(frozen=True)
class DigestCheck:
    name: str  # the organism's cache name
    digests: dict[str, str]  # part -> sha256 of this build
    expected: dict[str, str] | None  # the published digests; None where none is published

    @property
    def matches(self) -> bool | None:
        if self.expected is None:
            return None
        return all(self.digests.get(p) == self.expected.get(p) for p in PARTS)

    @property
    def differs(self) -> list[str]:
        if self.expected is None:
            return []
        return [p for p in PARTS if self.digests.get(p) != self.expected.get(p)]

    def message(self) -> str:
        short = self.digests["weights"][:16]
        if self.matches is None:
            return f"organism weights {short}: no published digest for {self.name}"
        if self.matches:
            return f"organism weights {short}: matches the published build of {self.name}"
        why = {
            "corpus": "the world generator made other documents",
            "tokenizer": "the tokenizer trained to another vocabulary",
            "weights": "pretraining's arithmetic differs (CPU kernels, BLAS, device)",
        }[self.differs[0]]
        same = [p for p in PARTS if p not in self.differs]
        same_note = f" ({', '.join(same)} the same)" if same else ""
        return (
            f"WARNING: this build of {self.name} is not the published one: "
            f"{', '.join(self.differs)} differ{'s' if len(self.differs) == 1 else ''}"
            f"{same_note}: {why}. Torch runs "
            f"{cpu_kernels()} kernels here (the published builds: AVX2, pinned on import of "
            "personadrift). The published numbers were not measured on this organism (README: "
            "Reproducing an organism)"
        )


def check_digests(path: str | Path, digests: Mapping[str, str]) -> DigestCheck:
    name = Path(path).name
    entry = published().get(name)
    expected = {p: entry[p] for p in PARTS} if entry else None
    return DigestCheck(name, dict(digests), expected)


def foreign_builds(
    fitted_on: Mapping[str, str], run_name: str, run_weights: str, local: Mapping[str, str]
) -> list[str]:
    """The organisms a calibration was fitted on (`fitted_on`: cache name -> weights digest) that
    are not the builds this run belongs with, one line each; empty when all are.

    An organism's expected weights are those of this machine's build where it has one (`local`,
    the run's own among them), else the published ones while this machine's build of the run's
    organism is the published one (this machine then builds what was published)."""
    table = published()
    own = table.get(run_name, {}).get("weights")
    trusts_published = own is None or own == run_weights
    local = {**local, run_name: run_weights}
    lines = []
    for name, weights in sorted(fitted_on.items()):
        expected = local.get(name)
        if expected is None and trusts_published:
            expected = table.get(name, {}).get("weights")
        if expected is not None and expected != weights:
            lines.append(f"{name} (fitted on weights {weights[:16]}, expected {expected[:16]})")
    return lines


def read_organism(run_dir: str | Path) -> dict:
    """A run's record of its organism build: {name, weights_digest, digest_matches}; {} for a run
    on another model or from before runs kept it."""
    path = Path(run_dir) / RUN_RECORD
    return json.loads(path.read_text()) if path.is_file() else {}
