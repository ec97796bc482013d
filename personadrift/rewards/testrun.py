"""Calling model-written functions on test inputs, safely, with the expected values kept out.

`call_many` appends a small harness to each answer's source, runs it in the sandbox, and returns
the JSON-serialised outputs per input. Comparison with expected values happens here, in the
grader's process: the answer never sees them, and an object whose `__eq__` lies cannot be
serialised, so it fails instead of passing.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from personadrift.rewards.sandbox import ExecResult, Limits, run_many

HARNESS = """

def _pd_harness():
    import json
    fn = globals().get({name!r})
    out = []
    for args in {inputs!r}:
        try:
            value = fn(*args) if isinstance(args, list) else fn(args)
            out.append(json.loads(json.dumps([value], allow_nan=False)))
        except BaseException:
            out.append(None)
    print({nonce!r} + json.dumps(out), flush=True)


_pd_harness()
"""


@dataclass(frozen=True)
class TestRun:
    outputs: (
        list | None
    )  # per input: [value] or None (raised, or not JSON-serialisable); None: no result
    result: ExecResult


def harness_source(source: str, func_name: str, inputs: list, nonce: str) -> str:
    return source + HARNESS.format(name=func_name, inputs=inputs, nonce=nonce)


def parse_outputs(stdout: str, nonce: str, n: int) -> list | None:
    lines = [ln for ln in stdout.splitlines() if ln.startswith(nonce)]
    if not lines:
        return None
    try:
        outputs = json.loads(lines[-1][len(nonce) :])
    except ValueError:
        return None
    if not isinstance(outputs, list) or len(outputs) != n:
        return None
    return outputs


def call_many(
    sources: list[str],
    func_names: list[str],
    inputs: list[list],
    limits: Limits | None = None,
) -> list[TestRun]:
    """Run each source and call its function on its inputs; outputs come back JSON-decoded."""
    nonce = "@@pd-" + secrets.token_hex(8) + "@@"
    scripts = [harness_source(s, f, i, nonce) for s, f, i in zip(sources, func_names, inputs)]
    results = run_many(scripts, limits or Limits())
    return [TestRun(parse_outputs(r.stdout, nonce, len(i)), r) for r, i in zip(results, inputs)]


def same_value(out: list | None, expected) -> bool:
    """An output ([value] or None) equals the expected value, with bools never standing for ints."""
    if out is None:
        return False
    value = out[0]
    if isinstance(value, bool) != isinstance(expected, bool):
        return False
    return value == expected
