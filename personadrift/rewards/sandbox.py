"""Running untrusted, model-written Python in a separate, locked-down process.

One job = one process tree:

    grader ── unshare (new net, pid and mount namespaces, fresh /proc)
                 └─ supervisor  (python, root, pid 1 of the namespace; enforces the timeout)
                       └─ answer (forked, rlimits set, dropped to the slot's uid, runs the source)

The supervisor outlives the answer, then kills everything else left in the namespace and reaps it,
so daemons started with setsid or double forks die with the job and no zombie is left. When the
grader runs as root, each concurrent job owns a slot with its own uid (61000 + slot, flock-ed under
/run so several grader processes share the range safely): RLIMIT_NPROC then caps a fork bomb per
job, and the answer cannot write the grader's files, read its /proc entries or signal it. The working
directory is fresh per job (a 0700 dir of the slot's uid inside a root-owned 0711 dir) and removed
afterwards. Where a memory cgroup can be made under the grader's own, the whole tree is also capped at
`memory_mb` (RLIMIT_AS alone caps each process, not a fork bomb of big processes).

Missing protections (no namespaces on a laptop, no root) are logged once and the job still runs;
`isolation_report()` says what is active. Shared scratch dirs (/tmp, /dev/shm) stay writable to the
answer, and world-readable files stay readable.

This module owns one job (spawn, collect capped output, interpret the supervisor's report), batches
and `isolation_report`; the supervisor's program is sandbox_supervisor.py, and what the machine
allows (interpreter, namespaces, uid slots, cgroups) is sandbox_host.py.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

# MAX_SLOTS and _host stay reachable here under their old names (tests read them).
from personadrift.rewards.sandbox_host import MAX_SLOTS as MAX_SLOTS
from personadrift.rewards.sandbox_host import SAFE_PATH, UID_BASE, Host, hold_slot, slot_cgroup
from personadrift.rewards.sandbox_host import this_host as _host

log = logging.getLogger(__name__)

MAX_CONCURRENT = 64  # most jobs one run_many keeps in flight, hung ones included
STALE_S = 0.25  # a job running this long is probably hung: it hands its worker permit on
GRACE_S = 2.0  # beyond timeout_s before the grader kills a supervisor that never reported


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 2.0  # wall clock, from the answer's start
    cpu_s: int = 2  # RLIMIT_CPU (SIGXCPU at cpu_s, SIGKILL a second later)
    memory_mb: int = 512  # RLIMIT_AS per process; the job's cgroup memory too, where available
    file_mb: int = 8  # RLIMIT_FSIZE
    output_bytes: int = 65536  # cap on captured stdout and on stderr each
    nproc: int = 64  # cap on processes for the sandbox user (fork bombs)


@dataclass(frozen=True)
class ExecResult:
    status: str  # "ok" | "exit" (non-zero exit) | "timeout" | "signal" | "error" (sandbox failed)
    returncode: int | None  # exit code, or -signal; None for "timeout" and "error"
    stdout: str
    stderr: str
    seconds: float  # wall clock of the whole job, start-up included
    detail: str = ""


# Passed as text to `python -c`, not run by path: the slot's uid may not be able to read this
# package's directory, and the supervisor hides its own frames ("<string>") from tracebacks.
_SUPERVISOR = Path(__file__).with_name("sandbox_supervisor.py").read_text(encoding="utf-8")


def _env(workdir: str) -> dict[str, str]:
    # Nothing of the grader's environment: secrets and PYTHON* variables stay out.
    return {
        "PATH": SAFE_PATH,
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def run(source: str, limits: Limits = Limits()) -> ExecResult:
    """Run `source` as a fresh `__main__` in its own locked-down process; never raises."""
    return _run_guarded(source, limits, None)


def _run_guarded(source: str, limits: Limits, on_stale: Callable[[], None] | None) -> ExecResult:
    start = time.monotonic()
    try:
        return _run(source, limits, start, on_stale)
    except Exception as e:  # the machinery failed, not the answer: say so instead of raising
        log.warning("sandbox: job failed to run: %r", e)
        return ExecResult("error", None, "", "", time.monotonic() - start, f"sandbox: {e!r}")


def _run(
    source: str, limits: Limits, start: float, on_stale: Callable[[], None] | None
) -> ExecResult:
    host = _host()
    with hold_slot(host) as slot:
        uid = UID_BASE + slot if slot >= 0 else -1
        workdir = tempfile.mkdtemp(prefix="job-", dir=host.workdir_base)
        try:
            path = os.path.join(workdir, "main.py")
            with open(path, "wb") as f:
                f.write(source.encode("utf-8", "surrogatepass"))
            if uid >= 0:
                os.chown(workdir, uid, uid)
            args = [
                uid,
                uid,
                limits.timeout_s,
                limits.cpu_s,
                limits.memory_mb * 2**20,
                limits.file_mb * 2**20,
                limits.nproc,
                slot_cgroup(host, slot, limits.memory_mb),
                path,
            ]
            return _spawn_and_collect(host, args, workdir, limits, start, on_stale)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def _spawn_and_collect(
    host: Host,
    args: list,
    workdir: str,
    limits: Limits,
    start: float,
    on_stale: Callable[[], None] | None,
) -> ExecResult:
    status_r, status_w = os.pipe()
    try:
        cmd = [*host.prefix, host.python, "-S", "-s", "-B", "-c", _SUPERVISOR, str(status_w)]
        proc = subprocess.Popen(
            cmd + [str(a) for a in args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(status_w,),
            cwd=workdir,
            env=_env(workdir),
            start_new_session=True,
        )
    except BaseException:
        os.close(status_r)
        raise
    finally:
        os.close(status_w)
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    caps = {out_fd: limits.output_bytes, err_fd: limits.output_bytes, status_r: 4096}
    with proc:
        try:
            kept, seen, killed = _collect(caps, start + limits.timeout_s + GRACE_S, start, on_stale)
        except BaseException:
            _kill_group(proc)
            raise
        finally:
            os.close(status_r)
        if killed:
            _kill_group(proc)
        proc.wait()
    seconds = time.monotonic() - start
    status, code, detail = _interpret(kept[status_r].decode(errors="replace"), killed, limits)
    notes = [detail] if detail else []
    for name, fd in (("stdout", out_fd), ("stderr", err_fd)):
        if seen[fd] > len(kept[fd]):
            notes.append(f"{name} truncated: kept {len(kept[fd])} of {seen[fd]} bytes")
    if status == "error" and kept[err_fd]:
        notes.append("stderr: " + kept[err_fd][-500:].decode(errors="replace"))
    return ExecResult(
        status,
        code,
        kept[out_fd].decode("utf-8", "replace"),
        kept[err_fd].decode("utf-8", "replace"),
        seconds,
        "; ".join(notes),
    )


def _collect(
    caps: dict[int, int], deadline: float, start: float, on_stale: Callable[[], None] | None
) -> tuple[dict[int, bytes], dict[int, int], bool]:
    """Read every fd to EOF, keeping at most caps[fd] bytes of each; True if the deadline passed.

    Output past the cap is read and dropped so a chatty answer neither blocks nor fills memory.
    """
    kept = {fd: bytearray() for fd in caps}
    seen = dict.fromkeys(caps, 0)
    poller = select.poll()
    for fd in caps:
        poller.register(fd, select.POLLIN)
    open_fds = set(caps)
    stale_at = start + STALE_S
    while open_fds:
        now = time.monotonic()
        if now >= deadline:
            return {fd: bytes(b) for fd, b in kept.items()}, seen, True
        if on_stale is not None and now >= stale_at:
            on_stale()
            on_stale = None
        wake = deadline if on_stale is None else min(deadline, stale_at)
        for fd, _ in poller.poll(max(0.0, wake - now) * 1000 + 1):
            data = os.read(fd, 65536)
            if not data:
                poller.unregister(fd)
                open_fds.discard(fd)
                continue
            seen[fd] += len(data)
            room = caps[fd] - len(kept[fd])
            if room > 0:
                kept[fd] += data[:room]
    return {fd: bytes(b) for fd, b in kept.items()}, seen, False


def _kill_group(proc: subprocess.Popen) -> None:
    # The session is ours to kill while its leader (our child) is unreaped; the namespace dies with
    # its init, which --kill-child takes down with unshare.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError as e:
        if e.errno != errno.ESRCH:
            raise


def _interpret(report: str, killed: bool, limits: Limits) -> tuple[str, int | None, str]:
    lines = report.split("\n")
    for line in lines:
        if line.startswith("error "):
            return "error", None, line[len("error ") :]
    if killed:
        return "timeout", None, f"supervisor unresponsive; killed after {limits.timeout_s}s + grace"
    last = next((line for line in reversed(lines) if line), "")
    kind, _, value = last.partition(" ")
    if kind == "timeout":
        return "timeout", None, f"wall-clock timeout after {limits.timeout_s}s"
    if kind == "exit" and value.isdigit():
        code = int(value)
        return ("ok" if code == 0 else "exit"), code, ""
    if kind == "signal" and value.isdigit():
        sig = int(value)
        name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
        why = {"SIGXCPU": " (cpu limit)", "SIGKILL": " (cpu or memory limit)"}.get(name, "")
        return "signal", -sig, f"killed by {name}{why}"
    return "error", None, "supervisor reported no status"


def _default_workers() -> int:
    # Jobs are mostly interpreter start-up, and some wait (cgroup moves, sleeps): 4 per core keeps
    # the cores busy, and a few hung answers do not take every permit (measured on 2 cores).
    return 4 * (os.cpu_count() or 1)


def run_many(
    sources: list[str],
    limits: Limits = Limits(),
    workers: int | None = None,
) -> list[ExecResult]:
    """Run every source like `run`, in parallel; results come back in input order.

    `workers` jobs start at a time (default: 4 per core). A job still running after STALE_S hands
    its permit on, so hung answers wait out their timeouts side by side (up to MAX_CONCURRENT in
    flight) instead of stalling the batch one after another.
    """
    if not sources:
        return []
    permits = threading.Semaphore(workers or _default_workers())

    def job(source: str) -> ExecResult:
        permits.acquire()
        held = [True]

        def hand_on() -> None:
            if held[0]:
                held[0] = False
                permits.release()

        try:
            return _run_guarded(source, limits, hand_on)
        finally:
            hand_on()

    with ThreadPoolExecutor(max_workers=min(len(sources), MAX_CONCURRENT)) as pool:
        return list(pool.map(job, sources))


_PROBE = r"""
import json, os, resource, sys
facts = {"uid": os.getuid(), "env": sorted(os.environ), "path": sys.path,
         "site": "site" in sys.modules, "cgroup": open("/proc/self/cgroup").read(),
         "nproc": resource.getrlimit(resource.RLIMIT_NPROC)[1],
         "as": resource.getrlimit(resource.RLIMIT_AS)[1],
         "cpu": resource.getrlimit(resource.RLIMIT_CPU)[0],
         "fsize": resource.getrlimit(resource.RLIMIT_FSIZE)[1],
         "ns": {k: os.readlink("/proc/self/ns/" + k) for k in ("net", "pid")}}
st = os.stat("..")
facts["workdir"] = [os.stat(".").st_uid, st.st_uid, st.st_mode & 0o777]
print(json.dumps(facts))
"""


def isolation_report() -> dict[str, bool]:
    """Which protections are active here, as observed from inside a probe job."""
    limits = Limits()
    result = run(_PROBE, limits)
    if result.status != "ok":
        log.warning("sandbox: probe job failed: %s %s", result.status, result.detail)
        return dict.fromkeys(_REPORT_KEYS, False)
    facts = json.loads(result.stdout)
    ns = {k: os.readlink("/proc/self/ns/" + k) for k in ("net", "pid")}
    parent_uid = os.getuid()
    dedicated_uid = facts["uid"] not in (0, parent_uid)
    own_uid, base_uid, base_mode = facts["workdir"]
    base_safe = base_uid == parent_uid and not base_mode & 0o022
    return {
        "network_namespace": facts["ns"]["net"] != ns["net"],
        "pid_namespace": facts["ns"]["pid"] != ns["pid"],
        "unprivileged_user": dedicated_uid,
        "nproc_limit": dedicated_uid and facts["nproc"] == limits.nproc,
        "rlimits": (facts["as"], facts["cpu"], facts["fsize"])
        == (limits.memory_mb * 2**20, limits.cpu_s, limits.file_mb * 2**20),
        "memory_cgroup": "personadrift-sandbox" in facts["cgroup"],
        "private_workdir": own_uid == facts["uid"] and base_safe,
        "clean_environment": set(facts["env"]) <= set(_env("")),
        "isolated_python": not facts["site"] and "" not in facts["path"],
    }


_REPORT_KEYS = (
    "network_namespace",
    "pid_namespace",
    "unprivileged_user",
    "nproc_limit",
    "rlimits",
    "memory_cgroup",
    "private_workdir",
    "clean_environment",
    "isolated_python",
)
