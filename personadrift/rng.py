"""`rng_untouched()`: run a block without moving torch's random streams.

Probe readings and evals sample (evals at temperature 1) in the middle of training; inside this
block they draw from a forked copy of the RNG state, so an instrumented run samples exactly the
rollouts the bare run would have sampled, and its overhead can be measured side by side.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def rng_untouched() -> Iterator[None]:
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        yield
