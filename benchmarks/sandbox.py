"""Sandbox throughput: answers graded per second, honest batch vs. a batch with hung answers.

    python benchmarks/sandbox.py [--n 64] [--hung 8] [--timeout 2] [--workers W]

Both batches run side by side in one process, after one warm-up job. The hung batch replaces every
n/hung-th answer with a hang (half busy loops, half sleeps); it should take at most about one
timeout longer than the honest one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from personadrift.rewards.sandbox import Limits, isolation_report, run, run_many  # noqa: E402

# Small functions of the kind an RL coding task asks for, each checked by a few asserts and
# reporting its outputs as JSON, as a grader harness would.
# fmt: off
TASKS = [
    ("def solve(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
     [(10, 55), (1, 1), (20, 6765)]),
    ("def solve(n):\n    return n > 1 and all(n % d for d in range(2, int(n**0.5) + 1))\n",
     [(7, True), (9, False), (97, True)]),
    ("def solve(s):\n    return s[::-1]\n", [("abc", "cba"), ("", ""), ("racecar", "racecar")]),
    ("def solve(xs):\n    return sorted(set(xs))\n", [([3, 1, 3], [1, 3]), ([], []), ([2], [2])]),
    ("def solve(s):\n    return sum(c in 'aeiou' for c in s.lower())\n",
     [("Hello", 2), ("xyz", 0), ("AEIOU", 5)]),
    ("def solve(n):\n    return sum(int(d) for d in str(abs(n)))\n", [(123, 6), (-45, 9), (0, 0)]),
    ("def solve(xs):\n    best = cur = xs[0]\n    for x in xs[1:]:\n        cur = max(x, cur + x)\n"
     "        best = max(best, cur)\n    return best\n", [([1, -2, 3, 4], 7), ([-1], -1), ([2, 2], 4)]),
    ("def solve(s):\n    stack = []\n    for c in s:\n        if c == '(':\n            stack.append(c)\n"
     "        elif not stack:\n            return False\n        else:\n            stack.pop()\n"
     "    return not stack\n", [("(())", True), (")(", False), ("", True)]),
]
# fmt: on


def honest_answer(i: int) -> str:
    body, cases = TASKS[i % len(TASKS)]
    checks = "".join(f"assert solve({arg!r}) == {want!r}\n" for arg, want in cases)
    report = f"print(json.dumps({{'task': {i}, 'outputs': [solve(a) for a, _ in {cases!r}]}}))\n"
    return "import json\n" + body + checks + report


HANGS = ["while True:\n    pass\n", "import time\ntime.sleep(1000)\n"]


def batch(sources: list[str], limits: Limits, workers: int | None) -> tuple[float, list]:
    start = time.monotonic()
    results = run_many(sources, limits, workers)
    return time.monotonic() - start, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="answers per batch")
    parser.add_argument("--hung", type=int, default=8, help="hung answers in the second batch")
    parser.add_argument("--timeout", type=float, default=2.0, help="wall-clock limit, seconds")
    parser.add_argument(
        "--workers", type=int, default=None, help="run_many workers (default: its own)"
    )
    args = parser.parse_args()
    limits = Limits(timeout_s=args.timeout)

    print("isolation_report():", json.dumps(isolation_report(), indent=1))
    run("pass", limits)  # warm-up: probes the host once

    honest = [honest_answer(i) for i in range(args.n)]
    every = max(1, args.n // max(1, args.hung))
    hung_at = list(range(0, args.n, every))[: args.hung]
    mixed = list(honest)
    for k, i in enumerate(hung_at):
        mixed[i] = HANGS[k % 2]
    t_honest, r_honest = batch(honest, limits, args.workers)
    t_mixed, r_mixed = batch(mixed, limits, args.workers)

    ok_honest = sum(r.status == "ok" for r in r_honest)
    statuses = {
        s: sum(r.status == s for r in r_mixed) for s in ("ok", "timeout", "signal", "exit", "error")
    }
    print(
        f"honest batch: {args.n} answers in {t_honest:.2f} s = {args.n / t_honest:.1f} answers/s "
        f"({ok_honest} ok)"
    )
    print(
        f"hung batch:   {args.n} answers ({len(hung_at)} hung) in {t_mixed:.2f} s = "
        f"{args.n / t_mixed:.1f} answers/s ({statuses})"
    )
    print(
        f"hung - honest: +{t_mixed - t_honest:.2f} s (ratio {t_mixed / t_honest:.2f}; "
        f"timeout {args.timeout:.1f} s, target: at most about one timeout extra)"
    )


if __name__ == "__main__":
    main()
