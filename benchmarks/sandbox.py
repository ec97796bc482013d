"""Sandbox throughput: answers graded per second, honest batch vs. a batch with hung answers.

    python benchmarks/sandbox.py [--n 64] [--hung 8] [--timeout 2] [--workers W] [--repeat 3]
                                 [--user nobody]

Run as root it measures both modes, each in a process of its own: root (per-job uids) and
unprivileged (a user namespace, as `--user`), and their ratio (the unprivileged mode should keep
at least 0.8x root's throughput); run as any other user, that user's mode only. Each batch runs
`--repeat` times after one warm-up job, and the best time counts (the machine may be shared). The
hung batch replaces every n/hung-th answer with a hang (half busy loops, half sleeps); it should
take at most about one timeout longer than the honest one. The copies batch is the honest one with
every third answer a copy of the one before (a GRPO group's rollouts repeat each other: a third of
the demo's are copies); `run_many` runs each distinct source once, so it should take about its
share of distinct answers of the honest batch's time.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from personadrift.rewards import sandbox_host  # noqa: E402
from personadrift.rewards.sandbox import Limits, run, run_many  # noqa: E402
from personadrift.rewards.sandbox_report import isolation_report  # noqa: E402

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


def measure(args: argparse.Namespace) -> dict:
    """Both batches in this process's mode: seconds (best of --repeat) and statuses."""
    limits = Limits(timeout_s=args.timeout)
    report = isolation_report()
    run("pass", limits)  # warm-up
    honest = [honest_answer(i) for i in range(args.n)]
    every = max(1, args.n // max(1, args.hung))
    hung_at = list(range(0, args.n, every))[: args.hung]
    mixed = list(honest)
    for k, i in enumerate(hung_at):  # each hang a job of its own: run_many runs copies once
        mixed[i] = HANGS[k % 2] + f"# {i}\n"
    copies = [honest[i - 1] if i % 3 == 2 else honest[i] for i in range(args.n)]
    out = {"report": report, "uid": os.getuid(), "hung": len(hung_at), "distinct": len(set(copies))}
    for name, sources in (("honest", honest), ("mixed", mixed), ("copies", copies)):
        runs = [batch(sources, limits, args.workers) for _ in range(args.repeat)]
        seconds, results = min(runs, key=lambda r: r[0])
        out[name] = seconds
        out[name + "_status"] = {
            s: sum(r.status == s for r in results)
            for s in ("ok", "timeout", "signal", "exit", "error")
        }
    return out


def as_user(name: str) -> None:
    """Become `name` (in a child process, after the imports: nothing more needs reading)."""
    entry = pwd.getpwnam(name)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    own = getattr(sys, "_base_executable", "") or sys.executable
    if not os.access(own, os.X_OK) or not os.access(os.path.dirname(os.__file__), os.R_OK):
        # This interpreter is under a directory the user cannot enter: answers get the system's.
        def system_python(root, jailed):
            return "/usr/bin/python3", ("/usr",)

        sandbox_host._pick_python = system_python


def in_child(args: argparse.Namespace, user: str | None) -> dict:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            if user:
                as_user(user)
            os.write(w, json.dumps(measure(args)).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def show(mode: str, m: dict, args: argparse.Namespace) -> None:
    weak = [k for k, v in m["report"].items() if not v]
    print(f"{mode} mode (uid {m['uid']}; not holding here: {', '.join(weak) or 'none'})")
    print(
        f"  honest batch: {args.n} answers in {m['honest']:.2f} s = "
        f"{args.n / m['honest']:.1f} answers/s ({m['honest_status']['ok']} ok)"
    )
    print(
        f"  hung batch:   {args.n} answers ({m['hung']} hung) in {m['mixed']:.2f} s = "
        f"{args.n / m['mixed']:.1f} answers/s ({m['mixed_status']})"
    )
    print(
        f"  hung - honest: +{m['mixed'] - m['honest']:.2f} s (timeout {args.timeout:.1f} s, "
        "target: at most about one timeout extra)"
    )
    print(
        f"  copies batch: {args.n} answers ({m['distinct']} distinct) in {m['copies']:.2f} s; "
        f"copies / honest time {m['copies'] / m['honest']:.2f} "
        f"(target: about {m['distinct'] / args.n:.2f}, each distinct answer run once)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="answers per batch")
    parser.add_argument("--hung", type=int, default=8, help="hung answers in the second batch")
    parser.add_argument("--timeout", type=float, default=2.0, help="wall-clock limit, seconds")
    parser.add_argument(
        "--workers", type=int, default=None, help="run_many workers (default: its own)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per batch; the best counts")
    parser.add_argument("--user", default="nobody", help="unprivileged user (when run as root)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        show("unprivileged", in_child(args, None), args)
        return
    root = in_child(args, None)
    show("root", root, args)
    user = in_child(args, args.user)
    show("unprivileged", user, args)
    for name in ("honest", "mixed"):
        print(
            f"unprivileged / root throughput, {name} batch: {root[name] / user[name]:.2f} "
            "(target >= 0.8)"
        )


if __name__ == "__main__":
    main()
