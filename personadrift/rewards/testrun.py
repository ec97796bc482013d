"""Running model-written code with a grader's script appended, and reading what the script printed.

The grader's lines on stdout start with a nonce, a secret fresh for every batch, so what an answer
prints itself is not taken for the grader's. `call_many` appends a small harness that calls the
answer's function on test inputs and returns the JSON-serialised outputs per input. Comparison
with expected values happens in the grader's process (`same_value`): the answer never sees them,
and an object whose `__eq__` lies cannot be serialised, so it fails instead of passing.
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
    )  # per input: [value] or None (raised, or not serialisable); None: no result
    result: ExecResult


@dataclass(frozen=True)
class CheckRun:
    lines: list[str]  # what the grader's script printed after the nonce, line by line
    result: ExecResult


def new_nonce() -> str:
    return "@@pd-" + secrets.token_hex(8) + "@@"


def tagged_lines(stdout: str, nonce: str) -> list[str]:
    """The grader's lines of a job's stdout (those that start with the nonce), nonce removed."""
    return [ln[len(nonce) :] for ln in stdout.splitlines() if ln.startswith(nonce)]


def run_checks(
    sources: list[str], check: str, fields: list[dict], limits: Limits | None = None
) -> list[CheckRun]:
    """Each source followed by the grader's `check` script, formatted with its fields and `nonce`."""
    nonce = new_nonce()
    scripts = [s + check.format(nonce=nonce, **f) for s, f in zip(sources, fields)]
    results = run_many(scripts, limits or Limits())
    return [CheckRun(tagged_lines(r.stdout, nonce), r) for r in results]


def parse_outputs(lines: list[str], n: int) -> list | None:
    """The harness's outputs, from its last line; None unless it is a list of `n` outputs."""
    if not lines:
        return None
    try:
        outputs = json.loads(lines[-1])
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
    fields = [{"name": f, "inputs": i} for f, i in zip(func_names, inputs)]
    runs = run_checks(sources, HARNESS, fields, limits)
    return [TestRun(parse_outputs(r.lines, len(i)), r.result) for r, i in zip(runs, inputs)]


def same_value(out: list | None, expected) -> bool:
    """An output ([value] or None) equals the expected value, with bools never standing for ints."""
    if out is None:
        return False
    value = out[0]
    if isinstance(value, bool) != isinstance(expected, bool):
        return False
    return value == expected
