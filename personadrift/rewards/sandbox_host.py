"""What this machine lets the sandbox do, probed once per process, and the per-job slots on it.

`this_host()` finds a `bwrap` that can jail a job here (sandbox_jail.py), an interpreter the
answer can run inside the jail (or, without one, on the host), the lock dir for uid slots shared
with other graders (root), and a memory cgroup under the grader's own. `hold_slot(host, deadline)`
holds one slot for a job: as root a uid of its own (flock-ed under LOCK_DIR, so several grader
processes share the range safely), otherwise just the name of its cgroup. `slot_cgroup` caps a
slot's memory (and, on cgroup v2, its process count). What is missing is logged here at warning
level, once, with the cause; jobs still run, and `sandbox_report.require_isolation` decides
whether a run may.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from personadrift.rewards.sandbox_jail import HOW_TO_GET, SAFE_PATH, find_bwrap, jail_command

log = logging.getLogger("personadrift.rewards.sandbox")  # one logger for the whole sandbox

UID_BASE = 61000  # below systemd's DynamicUser range (61184-65519)
MAX_SLOTS = 128  # concurrent jobs per machine (root mode), each with its own uid
LOCK_DIR = "/run/personadrift-sandbox"
CGROUP_HOW = (
    "run the grader as root, or in a delegated cgroup v2 "
    "(e.g. `systemd-run --user --scope -p Delegate=yes personadrift train ...`)"
)


class SlotTimeout(TimeoutError):
    """No job slot came free before the job's slot deadline."""


@dataclass(frozen=True)
class Host:
    """What this machine allows, probed once per process."""

    python: str  # interpreter the answer runs under
    python_dirs: tuple[str, ...]  # what the jail binds read-only so that interpreter runs
    root: bool  # jobs run as per-slot uids
    bwrap: str | None  # the jail's bwrap; None: jobs run without a jail (weak)
    jail_problem: str  # why there is no jail ('' when there is one)
    workdir_base: str  # without a jail: root-owned 0711 (0700 without root) parent of job dirs
    lock_dir: str | None  # where slot locks live (root mode)
    cgroup_base: str | None  # parent of per-slot cgroups
    cgroup_v2: bool
    cgroup_problem: str  # why there is no cgroup ('' when there is one)


_host_lock = threading.Lock()
_host_cache: list[Host] = []


def this_host() -> Host:
    """This machine's `Host`, probed on first use."""
    with _host_lock:
        if not _host_cache:
            _host_cache.append(_probe_host())
        return _host_cache[0]


def _probe_host() -> Host:
    root = os.geteuid() == 0
    bwrap, jail_problem = find_bwrap()
    python, dirs = _pick_python(root, jailed=bwrap is not None)
    if bwrap is not None:
        jail_problem = _try_jail(bwrap, root, python, dirs)
        if jail_problem:
            bwrap = None
            python, dirs = _pick_python(root, jailed=False)
    if bwrap is None:
        log.warning(
            "sandbox: no jail (%s): answers run without namespaces or a private filesystem; "
            "to get one, %s",
            jail_problem,
            HOW_TO_GET,
        )
    workdir_base = tempfile.mkdtemp(prefix="personadrift-sandbox-")
    os.chmod(workdir_base, 0o711 if root else 0o700)
    atexit.register(shutil.rmtree, workdir_base, True)
    lock_dir = _make_lock_dir() if root else None
    cgroup_base, v2, cgroup_problem = _make_cgroup_base(root)
    if cgroup_base is None:
        log.warning(
            "sandbox: no cgroup per job (%s): memory is capped per process only; to cap each "
            "job's whole tree, %s",
            cgroup_problem,
            CGROUP_HOW,
        )
    return Host(
        python,
        dirs,
        root,
        bwrap,
        jail_problem,
        workdir_base,
        lock_dir,
        cgroup_base,
        v2,
        cgroup_problem,
    )


def _try_jail(bwrap: str, root: bool, python: str, dirs: tuple[str, ...]) -> str:
    """'' if a job's jail starts here, else why not (bwrap's own words)."""
    fd = os.memfd_create("main.py")
    try:
        cmd = jail_command(bwrap, root, dirs, 2**20, fd) + [python, "-S", "-c", "pass"]
        probe = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env={"PATH": SAFE_PATH},
            pass_fds=(fd,),
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as e:
        return f"{bwrap}: {e}"
    finally:
        os.close(fd)
    if probe.returncode == 0:
        return ""
    return probe.stderr.decode(errors="replace").strip()[:300] or f"exit {probe.returncode}"


def _others_can(path: str, need: int, below: str = "/") -> bool:
    """`path` has the `need` bits for others, and every directory from `below` down to it is
    searchable by others (the jail makes the directories above `below` itself)."""
    try:
        if os.stat(path).st_mode & need != need:
            return False
        parent = os.path.dirname(path)
        while len(parent) >= len(below):
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
            if parent == os.path.dirname(parent):
                break
            parent = os.path.dirname(parent)
        return True
    except OSError:
        return False


def _pick_python(root: bool, jailed: bool) -> tuple[str, tuple[str, ...]]:
    """(interpreter, the directories it needs) for the answer."""
    own = os.path.realpath(getattr(sys, "_base_executable", "") or sys.executable)
    prefix = os.path.realpath(sys.base_prefix)
    dirs = (prefix,) if own.startswith(prefix + "/") else (prefix, os.path.dirname(own))
    if not root:
        return own, dirs
    # The answer runs as another uid, so it must be able to read the interpreter and its stdlib
    # (one under a private home directory is not, unless the jail shows only its prefix).
    stdlib = os.path.realpath(os.path.dirname(os.__file__))
    below = prefix if jailed else "/"
    if _others_can(own, stat.S_IXOTH, below) and _others_can(stdlib, stat.S_IROTH, below):
        return own, dirs
    for candidate in ("/usr/local/bin/python3", "/usr/bin/python3"):
        if _others_can(candidate, stat.S_IXOTH):
            log.info("sandbox: %s is not readable by the sandbox user; using %s", own, candidate)
            real = os.path.realpath(candidate)
            return real, (os.path.dirname(os.path.dirname(real)),)
    log.warning("sandbox: no interpreter readable by the sandbox user; answers may fail to import")
    return own, dirs


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


def _make_cgroup_base(root: bool) -> tuple[str | None, bool, str]:
    """(dir under this process's own cgroup for per-slot children, v2?, '') or (None, False, why)."""
    try:
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split() for line in f]
        with open("/proc/self/cgroup") as f:
            own = {
                c: path
                for _, cs, path in (ln.rstrip("\n").split(":", 2) for ln in f)
                for c in cs.split(",")
            }
    except (OSError, ValueError) as e:
        return None, False, f"cannot read this process's cgroups: {e}"
    candidates = []
    for fields in mounts:
        fstype, options = fields[fields.index("-") + 1], fields[fields.index("-") + 3].split(",")
        if fstype == "cgroup" and "memory" in options and "memory" in own and root:
            candidates.insert(0, (fields[3], fields[4], own["memory"], False))  # v1 first
        elif fstype == "cgroup2" and "" in own:
            candidates.append((fields[3], fields[4], own[""], True))
    # A user's graders may share one cgroup: their per-slot children must not.
    name = "personadrift-sandbox" if root else f"personadrift-sandbox-{os.getpid()}"
    why = "no memory cgroup mounted" + ("" if root else " that this user may delegate")
    for mount_root, mount_point, path, v2 in candidates:
        if not path.startswith(mount_root):
            continue
        rel = os.path.relpath(path, mount_root)
        base = os.path.normpath(os.path.join(mount_point, rel, name))
        try:
            if v2:
                # v2 lets only a cgroup without processes of its own (or the root) delegate memory.
                _write(os.path.join(os.path.dirname(base), "cgroup.subtree_control"), "+memory")
            os.makedirs(base, exist_ok=True)
            _created_bases.add(base)
            if v2:
                _write(os.path.join(base, "cgroup.subtree_control"), "+memory")
                _enable_pids(os.path.dirname(base), base)
            return base, v2, ""
        except OSError as e:
            why = f"{base}: {e.strerror or e}"
    return None, False, why


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _enable_pids(parent: str, base: str) -> None:
    # A process-count cap per job where the pids controller is delegated too; RLIMIT_NPROC
    # stands in for it where it is not.
    try:
        _write(os.path.join(parent, "cgroup.subtree_control"), "+pids")
        _write(os.path.join(base, "cgroup.subtree_control"), "+pids")
    except OSError:
        pass


_slots_lock = threading.Lock()
_slots_busy: set[int] = set()
_slot_cgroups: set[str] = set()
_created_bases: set[str] = set()
_warned: set[str] = set()


@contextmanager
def hold_slot(host: Host, deadline: float) -> Iterator[int]:
    """A slot held by nobody else (as root: in this process or another grader on the machine).

    Raises SlotTimeout if none comes free before `deadline` (time.monotonic()).
    """
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
        if time.monotonic() >= deadline:
            raise SlotTimeout(f"no free job slot of {MAX_SLOTS} before the slot deadline")
        time.sleep(0.01)
    try:
        yield slot
    finally:
        with _slots_lock:
            _slots_busy.discard(slot)
            if fd >= 0:
                os.close(fd)


def _try_lock(host: Host, slot: int) -> int | None:
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


def slot_cgroup(host: Host, slot: int, memory_mb: int, nproc: int) -> str:
    """The cgroup capping `slot` at `memory_mb` (and `nproc` tasks on v2); '' where none can be."""
    if host.cgroup_base is None:
        return ""
    path = os.path.join(host.cgroup_base, f"slot-{slot}")
    limit = str(memory_mb * 2**20)
    try:
        os.makedirs(path, exist_ok=True)
        _slot_cgroups.add(path)
        if host.cgroup_v2:
            writes = [("memory.max", limit), ("memory.swap.max", "0")]
            if os.path.exists(os.path.join(path, "pids.max")):
                writes.append(("pids.max", str(nproc)))
        else:
            writes = [("memory.limit_in_bytes", limit)]
            if os.path.exists(os.path.join(path, "memory.memsw.limit_in_bytes")):
                # memory+swap may never sit below memory alone: lift it first, then pin it.
                memsw = "memory.memsw.limit_in_bytes"
                writes = [(memsw, "-1"), *writes, (memsw, limit)]
        for name, value in writes:
            if name == "memory.swap.max" and not os.path.exists(os.path.join(path, name)):
                continue  # no swap accounting on this kernel: nothing to pin
            _write(os.path.join(path, name), value)
    except OSError as e:
        if "slot" not in _warned:  # once per process: every slot fails the same way
            _warned.add("slot")
            log.warning(
                "sandbox: cgroup of slot %d unusable (%s): its jobs run with per-process "
                "memory limits only",
                slot,
                e,
            )
        return ""
    return path


@atexit.register
def _remove_cgroups() -> None:
    # Slots another grader still uses stay (rmdir fails on a busy cgroup), and so does their parent.
    for path in [*_slot_cgroups, *_created_bases]:
        try:
            os.rmdir(path)
        except OSError:
            pass
