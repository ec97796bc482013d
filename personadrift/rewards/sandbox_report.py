"""What protects a sandbox job on this machine, and whether that is enough to start a run.

`isolation_report()` runs one probe job and says, protection by protection (`PROTECTIONS`), what
holds here, as seen from inside the job. `require_isolation(needs, allow_weak)` is what a training
run calls before it starts: a needed protection that is missing stops the run with one line
naming it, its cause and how to get it (`IsolationError`, a `ConfigError`: exit status 2), unless
the run allows weak isolation; then one loud warning, and the run's metrics carry
`sandbox/weak=1` (the training loop adds it to every line).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence

from personadrift.config import ConfigError
from personadrift.rewards.sandbox import Limits, _env, run
from personadrift.rewards.sandbox_host import CGROUP_HOW, Host, log
from personadrift.rewards.sandbox_host import this_host as _host
from personadrift.rewards.sandbox_jail import HOW_TO_GET

PROTECTIONS: dict[str, str] = {
    "network_namespace": "no network: the job has a network namespace of its own",
    "pid_namespace": "the answer sees and signals only its own processes; all die with the job",
    "private_filesystem": "a read-only system view with private, size-capped /tmp, /dev/shm and "
    "work dir; nothing of the grader's is visible, nothing written outlives the job",
    "grader_files_protected": "the answer has no rights over the grader's files",
    "supervisor_protected": "the answer can neither signal nor trace what times it",
    "nproc_limit": "a cap on the job's processes that counts only the job's (fork bombs)",
    "rlimits": "per-process caps on memory, CPU time and file size",
    "memory_cgroup": "one memory cap for the job's whole process tree (a cgroup)",
    "own_uid": "the answer runs as a uid of its own, one per concurrent job (root)",
    "clean_environment": "none of the grader's environment variables",
    "isolated_python": "no site-packages, no cwd on sys.path",
}
# What a run needs unless its config says otherwise: everything both modes (root, user namespace)
# give. A memory cgroup needs root or a delegated cgroup; RLIMIT_NPROC stands in for its cap on
# processes, and RLIMIT_AS with the tmpfs sizes bound the job's memory.
DEFAULT_NEEDS = tuple(k for k in PROTECTIONS if k not in ("memory_cgroup", "own_uid"))
_JAIL_KEYS = (
    "network_namespace",
    "pid_namespace",
    "private_filesystem",
    "grader_files_protected",
    "supervisor_protected",
)


class IsolationError(ConfigError):
    """A run needs a protection the sandbox cannot give here."""


_PROBE = r"""
import json, os, resource, sys

def mount(path):
    found = None
    for line in open("/proc/self/mountinfo"):
        f = line.split()
        if f[4] == path:
            sep = f.index("-")
            found = [f[sep + 1], f[sep + 3]]
    return found

def shows(path, allowed):
    try:
        return bool(set(os.listdir(path)) - set(allowed))
    except FileNotFoundError:
        return False
    except OSError:
        return True

def denied(act):
    try:
        act()
    except OSError:
        return True
    return False

facts = {"uid": os.getuid(), "env": sorted(os.environ), "path": sys.path,
         "site": "site" in sys.modules, "cgroup": open("/proc/self/cgroup").read(),
         "nproc": resource.getrlimit(resource.RLIMIT_NPROC)[1],
         "as": resource.getrlimit(resource.RLIMIT_AS)[1],
         "cpu": resource.getrlimit(resource.RLIMIT_CPU)[0],
         "fsize": resource.getrlimit(resource.RLIMIT_FSIZE)[1],
         "ns": {k: os.readlink("/proc/self/ns/" + k) for k in ("net", "pid", "user")},
         "mounts": [mount(p) for p in ("/tmp", "/dev/shm", os.getcwd())],
         "seen": [p for p, allowed in %(host_paths)r.items() if shows(p, allowed)],
         "root_read_only": denied(lambda: open("/pd-probe", "w")),
         "parent_memory": denied(lambda: open("/proc/%%d/mem" %% os.getppid(), "rb"))}
st = os.stat("..")
facts["workdir"] = [os.stat(".").st_uid, st.st_uid, st.st_mode & 0o777]
print(json.dumps(facts))
"""


def _host_paths(host: Host) -> dict[str, list[str]]:
    """The grader's own places, which a private filesystem must not show, each with the entries
    it may show: those on the way to what the jail shows read-only on purpose (the system, the
    interpreter's prefix)."""
    here = os.path.dirname(os.path.abspath(__file__))
    places = [os.getcwd(), os.path.expanduser("~"), here, host.workdir_base]
    shown = ("/usr", *host.python_dirs)
    out = {}
    for place in places:
        if place == "/" or any(place == s or place.startswith(s + "/") for s in shown):
            continue
        prefix = place.rstrip("/") + "/"
        out[place] = [s[len(prefix) :].split("/")[0] for s in shown if s.startswith(prefix)]
    return out


def isolation_report(limits: Limits | None = None) -> dict[str, bool]:
    """Which of `PROTECTIONS` hold here, as observed from inside a probe job."""
    limits = limits or Limits()
    host = _host()
    result = run(_PROBE % {"host_paths": _host_paths(host)}, limits)
    if result.status != "ok":
        log.warning("sandbox: probe job failed: %s %s", result.status, result.detail)
        return dict.fromkeys(PROTECTIONS, False)
    facts = json.loads(result.stdout)
    ns = {k: os.readlink("/proc/self/ns/" + k) for k in ("net", "pid", "user")}
    parent_uid = os.getuid()
    own_uid = facts["uid"] not in (0, parent_uid)
    own_userns = facts["ns"]["user"] != ns["user"]
    scratch_capped = all(
        m is not None and m[0] == "tmpfs" and "size=" in m[1] for m in facts["mounts"]
    )
    private_fs = scratch_capped and not facts["seen"] and facts["root_read_only"]
    return {
        "network_namespace": facts["ns"]["net"] != ns["net"],
        "pid_namespace": facts["ns"]["pid"] != ns["pid"],
        "private_filesystem": private_fs,
        "grader_files_protected": own_uid or (private_fs and own_userns),
        "supervisor_protected": facts["parent_memory"],
        "nproc_limit": facts["nproc"] == limits.nproc and (own_uid or own_userns),
        "rlimits": (facts["as"], facts["cpu"], facts["fsize"])
        == (limits.memory_mb * 2**20, limits.cpu_s, limits.file_mb * 2**20),
        "memory_cgroup": "personadrift-sandbox" in facts["cgroup"],
        "own_uid": own_uid,
        "clean_environment": set(facts["env"]) <= set(_env("")),
        "isolated_python": not facts["site"] and "" not in facts["path"],
    }


def _how(key: str, host: Host) -> str:
    if key in _JAIL_KEYS or (key == "nproc_limit" and host.bwrap is None):
        return f"({host.jail_problem or 'jail incomplete'}) {HOW_TO_GET}"
    if key == "nproc_limit":
        return "run on Linux >= 5.14 (process counts per user namespace) or as root"
    if key == "memory_cgroup":
        return f"({host.cgroup_problem or 'cgroup not joined'}) {CGROUP_HOW}"
    if key == "own_uid":
        return "run the grader as root"
    return "the sandbox always sets this: its absence is a bug"


def missing_line(missing: Sequence[str], host: Host) -> str:
    """One line: what is missing, why, and how to get it."""
    hows: list[str] = []
    for key in missing:
        how = _how(key, host)
        if how not in hows:
            hows.append(how)
    return (
        f"sandbox: missing protection {', '.join(missing)}: to get it, {'; '.join(hows)}; "
        "or set sandbox.allow_weak=true to train without it"
    )


def require_isolation(
    needs: Sequence[str] = DEFAULT_NEEDS,
    allow_weak: bool = False,
    warn: Callable[[str], object] = log.warning,
) -> list[str]:
    """The needed protections that are missing here ([] when all hold).

    Raises IsolationError (one line) when one is missing and `allow_weak` is false; with
    `allow_weak` it warns once through `warn` instead.
    """
    unknown = [k for k in needs if k not in PROTECTIONS]
    if unknown:
        raise ConfigError(
            f"sandbox.needs: unknown protection {', '.join(unknown)}; known: "
            + ", ".join(PROTECTIONS)
        )
    missing = weak_protections(needs)
    if not missing:
        return []
    line = missing_line(missing, _host())
    if not allow_weak:
        raise IsolationError(line)
    warn(f"WARNING: weak sandbox, training anyway (sandbox.allow_weak=true). {line}")
    return missing


def weak_protections(needs: Sequence[str] = DEFAULT_NEEDS) -> list[str]:
    """The needed protections that are missing here, without warning or raising."""
    report = isolation_report()
    return [k for k in needs if not report.get(k, False)]
