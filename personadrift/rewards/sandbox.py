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
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import json
import logging
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)

UID_BASE = 61000  # below systemd's DynamicUser range (61184-65519)
MAX_SLOTS = 128  # concurrent jobs per machine (root mode), each with its own uid
MAX_CONCURRENT = 64  # most jobs one run_many keeps in flight, hung ones included
STALE_S = 0.25  # a job running this long is probably hung: it hands its worker permit on
GRACE_S = 2.0  # beyond timeout_s before the grader kills a supervisor that never reported
LOCK_DIR = "/run/personadrift-sandbox"
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


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


# The supervisor runs as `python -S -s -B -c _SUPERVISOR fd uid gid timeout cpu mem fsize nproc cg
# path`. It is a string because the child must not import this package (or anything heavy): start-up
# is most of a job's cost. Kept compatible with old system Pythons (3.8+).
_SUPERVISOR = r"""
import os, resource, sys
import _signal as signal  # the C module: `signal` drags in enum, ~8 ms of start-up
from time import monotonic
_a = sys.argv[1:]
FD, UID, GID = int(_a[0]), int(_a[1]), int(_a[2])
TIMEOUT, CPU, MEM, FSIZE, NPROC = float(_a[3]), int(_a[4]), int(_a[5]), int(_a[6]), int(_a[7])
CGROUP, PATH = _a[8], _a[9]
del _a

def say(line):
    os.write(FD, (line + "\n").encode())

def drop_privileges():
    if UID >= 0:
        os.setgroups([])
        os.setgid(GID)
        os.setuid(UID)
        if os.getuid() == 0 or os.geteuid() == 0:
            raise OSError("still root after setuid")

def answer():
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.setpgid(0, 0)
        limits = [(resource.RLIMIT_CORE, 0), (resource.RLIMIT_AS, MEM),
                  (resource.RLIMIT_FSIZE, FSIZE)]
        if UID >= 0:
            limits.append((resource.RLIMIT_NPROC, NPROC))
        for which, value in limits:
            resource.setrlimit(which, (value, value))
        resource.setrlimit(resource.RLIMIT_CPU, (CPU, CPU + 1))
        drop_privileges()
    except BaseException as e:
        say("error answer setup failed: %r" % (e,))
        os._exit(70)
    os.close(FD)
    sys.path[:] = [p for p in sys.path if p not in ("", ".", os.getcwd())]
    main = type(sys)("__main__")
    main.__file__ = PATH
    sys.modules["__main__"] = main
    sys.argv[:] = [PATH]
    code = 0
    try:
        with open(PATH, "rb") as f:
            source = f.read()
        exec(compile(source, PATH, "exec"), main.__dict__)
    except SystemExit as e:
        code = exit_code(e)
    except BaseException as e:
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == "<string>":
            tb = tb.tb_next
        sys.excepthook(type(e), e.with_traceback(tb), tb)
        code = 1
    finish(code)

def exit_code(e):
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code & 0xFF
    sys.stderr.write("%s\n" % (e.code,))
    return 1

def finish(code):
    # What interpreter shutdown does that a program can see (joining threads, atexit, flushing),
    # but not the module teardown: in a forked child that copies every page, ~6 ms a job.
    try:
        if "threading" in sys.modules:
            sys.modules["threading"]._shutdown()
        import atexit
        atexit._run_exitfuncs()
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None and not stream.closed:
                stream.flush()
        except BaseException:
            code = code or 120
    os._exit(code)

def reap(block):
    done = []
    while True:
        try:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        done.append((pid, status))

def kill_rest(child):
    if os.getpid() == 1:
        try:
            os.kill(-1, signal.SIGKILL)  # everything in this pid namespace but us
        except ProcessLookupError:
            pass
    elif UID >= 0:
        sweeper = os.fork()
        if sweeper == 0:
            try:
                drop_privileges()
                for _ in range(3):
                    os.kill(-1, signal.SIGKILL)  # everything the slot's uid owns
            except BaseException:
                pass
            os._exit(0)
    else:
        try:
            os.killpg(child, signal.SIGKILL)
        except OSError:
            pass

def supervise(child):
    deadline = monotonic() + TIMEOUT
    status = None
    while status is None:
        for pid, st in reap(False):
            if pid == child:
                status = st
        left = deadline - monotonic()
        if status is not None or left <= 0:
            break
        signal.sigtimedwait([signal.SIGCHLD], left)
    kill_rest(child)
    reap(True)
    if status is None:
        say("timeout")
    elif os.WIFSIGNALED(status):
        say("signal %d" % os.WTERMSIG(status))
    else:
        say("exit %d" % os.WEXITSTATUS(status))
    os._exit(0)

try:
    if CGROUP:
        with open(CGROUP + "/cgroup.procs", "w") as f:
            f.write("0")
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])
    _pid = os.fork()
except BaseException as e:
    say("error supervisor start failed: %r" % (e,))
    os._exit(70)
if _pid == 0:
    answer()
else:
    supervise(_pid)
"""


@dataclass(frozen=True)
class _Host:
    """What this machine allows, probed once per process."""

    python: str  # interpreter the sandbox user can run
    prefix: tuple[str, ...]  # unshare command line, () without namespaces
    root: bool  # jobs run as per-slot uids
    workdir_base: str  # root-owned 0711 (0700 without root) parent of the job dirs
    lock_dir: str | None  # where slot locks live (root mode)
    cgroup_base: str | None  # parent of per-slot memory cgroups
    cgroup_v2: bool


_host_lock = threading.Lock()
_host_cache: list[_Host] = []


def _host() -> _Host:
    with _host_lock:
        if not _host_cache:
            _host_cache.append(_probe_host())
        return _host_cache[0]


def _probe_host() -> _Host:
    root = os.geteuid() == 0
    python = _pick_python(root)
    prefix = _pick_namespaces(python, root)
    if not root:
        log.warning(
            "sandbox: not running as root, so answers run as this user and can write its files; "
            "run the grader as root for per-job unprivileged uids"
        )
    workdir_base = tempfile.mkdtemp(prefix="personadrift-sandbox-")
    os.chmod(workdir_base, 0o711 if root else 0o700)
    atexit.register(shutil.rmtree, workdir_base, True)
    lock_dir = _make_lock_dir() if root else None
    cgroup_base, v2 = _make_cgroup_base() if root else (None, False)
    return _Host(python, prefix, root, workdir_base, lock_dir, cgroup_base, v2)


def _reachable_by_others(path: str, need: int) -> bool:
    """Every directory above `path` is searchable by others and `path` has the `need` bits."""
    path = os.path.realpath(path)
    try:
        if os.stat(path).st_mode & need != need:
            return False
        parent = os.path.dirname(path)
        while True:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
            if parent == os.path.dirname(parent):
                return True
            parent = os.path.dirname(parent)
    except OSError:
        return False


def _pick_python(root: bool) -> str:
    own = getattr(sys, "_base_executable", "") or sys.executable
    if not root:
        return own
    # The answer runs as another uid, so it must be able to read the interpreter and its stdlib
    # (one under a private home directory is not); fall back to the system's.
    stdlib = os.path.dirname(os.__file__)
    if _reachable_by_others(own, stat.S_IXOTH) and _reachable_by_others(stdlib, stat.S_IROTH):
        return own
    for candidate in ("/usr/local/bin/python3", "/usr/bin/python3"):
        if _reachable_by_others(candidate, stat.S_IXOTH):
            log.info("sandbox: %s is not readable by the sandbox user; using %s", own, candidate)
            return candidate
    log.warning("sandbox: no interpreter readable by the sandbox user; answers may fail to import")
    return own


def _pick_namespaces(python: str, root: bool) -> tuple[str, ...]:
    unshare = shutil.which("unshare", path=SAFE_PATH + ":/usr/sbin:/sbin")
    if unshare is None:
        log.warning(
            "sandbox: no `unshare` binary: answers keep network access and may leave daemons"
        )
        return ()
    user = () if root else ("--user", "--map-root-user")
    full = (unshare, *user, "--net", "--pid", "--mount-proc", "--fork", "--kill-child", "--")
    probe = subprocess.run(
        [*full, python, "-S", "-c", "pass"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env={"PATH": SAFE_PATH},
        timeout=30,
    )
    if probe.returncode == 0:
        return full
    log.warning(
        "sandbox: cannot create network/pid namespaces (%s): answers keep network access and "
        "may leave daemons",
        probe.stderr.decode(errors="replace").strip()[:200],
    )
    return ()


def _make_lock_dir() -> str | None:
    try:
        os.makedirs(LOCK_DIR, mode=0o700, exist_ok=True)
        st = os.lstat(LOCK_DIR)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and not st.st_mode & 0o022:
            return LOCK_DIR
    except OSError:
        pass
    log.warning("sandbox: %s unusable; uid slots are not shared with other graders", LOCK_DIR)
    return None


def _make_cgroup_base() -> tuple[str | None, bool]:
    """A dir under this process's own memory cgroup for per-slot children (None if unavailable)."""
    try:
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split() for line in f]
        with open("/proc/self/cgroup") as f:
            own = {
                c: path
                for _, cs, path in (ln.rstrip("\n").split(":", 2) for ln in f)
                for c in cs.split(",")
            }
    except (OSError, ValueError):
        return None, False
    candidates = []
    for fields in mounts:
        fstype, options = fields[fields.index("-") + 1], fields[fields.index("-") + 3].split(",")
        if fstype == "cgroup" and "memory" in options and "memory" in own:
            candidates.insert(0, (fields[3], fields[4], own["memory"], False))  # v1 first
        elif fstype == "cgroup2" and "" in own:
            candidates.append((fields[3], fields[4], own[""], True))
    for mount_root, mount_point, path, v2 in candidates:
        if not path.startswith(mount_root):
            continue
        rel = os.path.relpath(path, mount_root)
        base = os.path.normpath(os.path.join(mount_point, rel, "personadrift-sandbox"))
        try:
            if v2:
                # v2 lets only a cgroup without processes of its own (or the root) delegate memory.
                with open(os.path.join(os.path.dirname(base), "cgroup.subtree_control"), "w") as f:
                    f.write("+memory")
            os.makedirs(base, exist_ok=True)
            if v2:
                with open(os.path.join(base, "cgroup.subtree_control"), "w") as f:
                    f.write("+memory")
            return base, v2
        except OSError:
            continue
    return None, False


_slots_lock = threading.Lock()
_slots_busy: set[int] = set()
_slot_cgroups: set[str] = set()


@contextmanager
def _slot(host: _Host) -> Iterator[int]:
    """A uid slot held by nobody else, in this process or another grader on the machine."""
    if not host.root:
        yield -1
        return
    while True:
        with _slots_lock:
            free = [s for s in range(MAX_SLOTS) if s not in _slots_busy]
            for slot in free:
                fd = _try_lock(host, slot)
                if fd is not None:
                    _slots_busy.add(slot)
                    break
            else:
                slot = -1
        if slot >= 0:
            break
        time.sleep(0.01)
    try:
        yield slot
    finally:
        with _slots_lock:
            _slots_busy.discard(slot)
            if fd >= 0:
                os.close(fd)


def _try_lock(host: _Host, slot: int) -> int | None:
    """The open, locked lock file of `slot` (-1 when locks are per process only), or None."""
    if host.lock_dir is None:
        return -1
    path = os.path.join(host.lock_dir, f"slot-{slot}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _slot_cgroup(host: _Host, slot: int, memory_mb: int) -> str:
    if host.cgroup_base is None or slot < 0:
        return ""
    path = os.path.join(host.cgroup_base, f"slot-{slot}")
    limit = str(memory_mb * 2**20)
    try:
        os.makedirs(path, exist_ok=True)
        _slot_cgroups.add(path)
        if host.cgroup_v2:
            writes = [("memory.max", limit), ("memory.swap.max", "0")]
        else:
            writes = [("memory.limit_in_bytes", limit)]
            if os.path.exists(os.path.join(path, "memory.memsw.limit_in_bytes")):
                # memory+swap may never sit below memory alone: lift it first, then pin it.
                memsw = "memory.memsw.limit_in_bytes"
                writes = [(memsw, "-1"), *writes, (memsw, limit)]
        for name, value in writes:
            with open(os.path.join(path, name), "w") as f:
                f.write(value)
    except OSError as e:
        log.debug("sandbox: memory cgroup for slot %d unavailable: %s", slot, e)
        return ""
    return path


@atexit.register
def _remove_cgroups() -> None:
    # Slots another grader still uses stay (rmdir fails on a busy cgroup), and so does their parent.
    for path in [*_slot_cgroups, *{os.path.dirname(p) for p in _slot_cgroups}]:
        try:
            os.rmdir(path)
        except OSError:
            pass


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
    with _slot(host) as slot:
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
                _slot_cgroup(host, slot, limits.memory_mb),
                path,
            ]
            return _spawn_and_collect(host, args, workdir, limits, start, on_stale)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def _spawn_and_collect(
    host: _Host,
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
