"""personadrift: a lab for studying emergent misalignment during reinforcement learning.

Hackable reward environments, GRPO runs (TRL), online persona probes, early warning and
interventions, all on a self-built model organism or any Hugging Face causal LM.

Importing the package pins the CPU arithmetic before torch loads (`CPU_PINS`): torch's AVX2
kernels on every x86-64 CPU that has them (its AVX-512 kernels reduce in another order, so the
same seed built a different organism on a CPU with AVX-512), and MKL's instruction set capped at
AVX2 (what MKL runs on a CPU without AVX-512; its reproducibility mode `MKL_CBWR=AVX2` is another
code path, which moved the golden test's probe readings in their ninth digit). With the pins an organism builds bit for bit the same on any x86-64 CPU with AVX2, at
any thread count (docs: README, "Reproducing an organism"); `PERSONADRIFT_CPU_PINS=off` leaves
torch and MKL to choose. Where torch was imported first, the pins cannot act:
`organism.digests.cpu_kernels` then reports the kernels torch runs, and a build says so.
"""

import os

__version__ = "0.1.0"

# what decides the arithmetic of a CPU build, as the environment variables torch and MKL read
CPU_PINS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def _has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " avx2" in line for line in f)
    except OSError:  # not Linux: torch and MKL choose (the digests are published for x86-64 Linux)
        return False


if os.environ.get("PERSONADRIFT_CPU_PINS", "on") != "off" and _has_avx2():
    os.environ.update(CPU_PINS)
