"""Running untrusted, model-written Python in a separate, locked-down process.

One job = one process tree:

    grader ── bwrap (own pid, net, ipc, uts namespaces; its own read-only view of the system;
             │       private size-capped tmpfs for /tmp, /dev/shm and the work dir /job)
             └─ supervisor  (python, pid 1 of the jail; enforces the timeout)
                   └─ answer (forked, rlimits set, as root: dropped to the slot's uid; runs the source)

The supervisor outlives the answer, then kills everything else in the jail and reaps it, so daemons
started with setsid or double forks die with the job and no zombie is left; whatever the answer
wrote (its work dir, /tmp, /dev/shm) was in the jail's own tmpfs mounts and is gone with it. When
the grader runs as root, each concurrent job owns a slot with its own uid (61000 + slot, flock-ed
under /run so several grader processes share the range safely): RLIMIT_NPROC then caps a fork bomb
per job, and the answer has no rights over anything of the grader's. Without root the jail is a
user namespace: the answer keeps the grader's uid but sees none of its files, cannot make another
namespace, and RLIMIT_NPROC counts its processes in its own namespace (Linux >= 5.14). Where a
cgroup can be made under the grader's own, the whole tree is also capped at `memory_mb` (RLIMIT_AS
alone caps each process, not a fork bomb of big processes). sandbox_jail.py says why bubblewrap.

Where no jail can be made (no usable `bwrap`, user namespaces disabled) jobs still run, as plain
processes with rlimits (and slot uids as root): the host's warning says what is missing and how to
get it, and `sandbox_report.require_isolation` stops a training run unless it allows weak
isolation. The time a job waits for a slot does not count against its timeout; the wait has its
own deadline (`Limits.slot_wait_s`), after which the job is an `error`.

This module owns one job (spawn, collect capped output, interpret the supervisor's report) and
batches; the supervisor's program is sandbox_supervisor.py, the jail's command line
sandbox_jail.py, what the machine allows (bwrap, interpreter, uid slots, cgroups) sandbox_host.py,
and what a job is protected by (`isolation_report`, `require_isolation`) sandbox_report.py.
"""

from __future__ import annotations

import errno
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
from personadrift.rewards.sandbox_host import (
    UID_BASE,
    Host,
    SlotTimeout,
    hold_slot,
    slot_cgroup,
)
from personadrift.rewards.sandbox_host import this_host as _host
from personadrift.rewards.sandbox_jail import SAFE_PATH, WORKDIR, jail_command

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
    tmp_mb: int = 32  # size of each of the job's tmpfs mounts: /tmp, /dev/shm, the work dir
    slot_wait_s: float = 300.0  # longest wait for a free job slot; not part of timeout_s


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


_SH = shutil.which("sh", path=SAFE_PATH) or "/bin/sh"


def _env(workdir: str) -> dict[str, str]:
    # Nothing of the grader's environment: secrets and PYTHON* variables stay out.
    return {
        "PATH": SAFE_PATH,
        "HOME": workdir,
        "TMPDIR": workdir,
        "PWD": workdir,
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
    queued = time.monotonic()
    try:
        return _run(source, limits, queued, on_stale)
    except SlotTimeout as e:
        waited = time.monotonic() - queued
        return ExecResult("error", None, "", "", waited, f"sandbox: slot wait: {e} ({waited:.0f}s)")
    except Exception as e:  # the machinery failed, not the answer: say so instead of raising
        log.warning("sandbox: job failed to run: %r", e)
        return ExecResult("error", None, "", "", time.monotonic() - queued, f"sandbox: {e!r}")


def _run(
    source: str, limits: Limits, queued: float, on_stale: Callable[[], None] | None
) -> ExecResult:
    host = _host()
    with hold_slot(host, queued + limits.slot_wait_s) as slot:
        start = time.monotonic()  # the answer's clock starts once it has a slot
        uid = UID_BASE + slot if host.root else -1
        cgroup = slot_cgroup(host, slot, limits.memory_mb, limits.nproc)
        # Without root or a jail, RLIMIT_NPROC would count all of the grader user's processes.
        nproc = limits.nproc if host.root or host.bwrap else 0
        settings = [uid, uid, limits.timeout_s, limits.cpu_s, limits.memory_mb * 2**20]
        settings += [limits.file_mb * 2**20, nproc]
        if host.bwrap is not None:
            return _run_jailed(host, source, settings, cgroup, limits, start, on_stale)
        workdir = tempfile.mkdtemp(prefix="job-", dir=host.workdir_base)
        try:
            path = os.path.join(workdir, "main.py")
            with open(path, "wb") as f:
                f.write(source.encode("utf-8", "surrogatepass"))
            cmd = _supervisor(host, settings, path)
            return _spawn_and_collect(cmd, workdir, workdir, cgroup, (), limits, start, on_stale)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def _run_jailed(
    host: Host,
    source: str,
    settings: list,
    cgroup: str,
    limits: Limits,
    start: float,
    on_stale: Callable[[], None] | None,
) -> ExecResult:
    # The source reaches the jail's private work dir through an fd: nothing of it on the host.
    fd = os.memfd_create("main.py")
    try:
        os.write(fd, source.encode("utf-8", "surrogatepass"))
        os.lseek(fd, 0, os.SEEK_SET)
        jail = jail_command(host.bwrap, host.root, host.python_dirs, limits.tmp_mb * 2**20, fd)
        cmd = jail + _supervisor(host, settings, f"{WORKDIR}/main.py")
        return _spawn_and_collect(cmd, "/", WORKDIR, cgroup, (fd,), limits, start, on_stale)
    finally:
        os.close(fd)


def _supervisor(host: Host, settings: list, path: str) -> list[str]:
    args = [str(a) for a in settings] + [path]
    return [host.python, "-S", "-s", "-B", "-c", _SUPERVISOR, "{fd}", *args]


def _spawn_and_collect(
    cmd: list[str],
    cwd: str,  # where the grader starts it
    workdir: str,  # the answer's work dir, as it sees it
    cgroup: str,
    pass_fds: tuple[int, ...],
    limits: Limits,
    start: float,
    on_stale: Callable[[], None] | None,
) -> ExecResult:
    status_r, status_w = os.pipe()
    cmd = [str(status_w) if a == "{fd}" else a for a in cmd]
    if cgroup:
        # Join the job's cgroup before anything of it starts (the jail has no /sys to do it from).
        cmd = [_SH, "-c", 'echo $$ > "$0" && exec "$@"', f"{cgroup}/cgroup.procs", *cmd]
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(status_w, *pass_fds),
            cwd=cwd,
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
    # The session is ours to kill while its leader (our child) is unreaped; the jail dies with
    # bwrap (--die-with-parent).
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

    A source that appears several times runs once and every copy gets its result: a job sees
    nothing but its source, so a rerun could differ only where the program itself is random or
    timed (a GRPO group's rollouts repeat each other often: about a third of a run's are copies).
    `workers` jobs start at a time (default: 4 per core). A job still running after STALE_S hands
    its permit on, so hung answers wait out their timeouts side by side (up to MAX_CONCURRENT in
    flight) instead of stalling the batch one after another.
    """
    if not sources:
        return []
    unique = list(dict.fromkeys(sources))
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

    with ThreadPoolExecutor(max_workers=min(len(unique), MAX_CONCURRENT)) as pool:
        result_of = dict(zip(unique, pool.map(job, unique)))
    return [result_of[source] for source in sources]
