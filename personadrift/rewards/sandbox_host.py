"""What this machine lets the sandbox do, probed once per process, and the per-job slots on it.

`this_host()` finds an interpreter the sandbox user can run, whether `unshare` can make network,
pid and mount namespaces, the root-owned parent of the job dirs, the lock dir for uid slots shared
with other graders, and a memory cgroup under the grader's own. `hold_slot(host)` holds one uid
slot for a job (flock-ed under LOCK_DIR, so several grader processes share the range safely), and
`slot_cgroup` caps that slot's memory. Missing protections are logged here, once; jobs still run.
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

log = logging.getLogger("personadrift.rewards.sandbox")  # one logger for the whole sandbox

UID_BASE = 61000  # below systemd's DynamicUser range (61184-65519)
MAX_SLOTS = 128  # concurrent jobs per machine (root mode), each with its own uid
LOCK_DIR = "/run/personadrift-sandbox"
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class Host:
    """What this machine allows, probed once per process."""

    python: str  # interpreter the sandbox user can run
    prefix: tuple[str, ...]  # unshare command line, () without namespaces
    root: bool  # jobs run as per-slot uids
    workdir_base: str  # root-owned 0711 (0700 without root) parent of the job dirs
    lock_dir: str | None  # where slot locks live (root mode)
    cgroup_base: str | None  # parent of per-slot memory cgroups
    cgroup_v2: bool


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
    return Host(python, prefix, root, workdir_base, lock_dir, cgroup_base, v2)


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
def hold_slot(host: Host) -> Iterator[int]:
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


def slot_cgroup(host: Host, slot: int, memory_mb: int) -> str:
    """The memory cgroup capping `slot` at `memory_mb` ('' where none can be made)."""
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
