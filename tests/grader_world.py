"""The grader's side of the attack tests: what a model-written answer must not be able to touch.

`grader_world(secret)` makes a working directory and a HOME (with a sentinel and a 0600 secret), a
world-writable drop folder, a victim process and three listening sockets (TCP, abstract unix, and a
unix socket file anyone may connect to, like a container runtime's), chdirs and points HOME there
for the duration, and cleans all of it up. `mark` is a unique word that attacks put in the names of
what they leave behind, so the tests can look for it. `snapshot` records a directory's entries.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from personadrift.rewards import sandbox


def snapshot(path: str) -> dict[str, tuple]:
    """Names, modes, sizes, mtimes and contents of a directory's entries."""
    state = {}
    for entry in os.scandir(path):
        if entry.name == "__pycache__":
            continue
        st = entry.stat(follow_symlinks=False)
        content = b""
        if entry.is_file(follow_symlinks=False) and st.st_size < 2**20:
            with open(entry.path, "rb") as f:
                content = f.read()
        state[entry.name] = (st.st_mode, st.st_uid, st.st_size, st.st_mtime_ns, content)
    return state


@dataclass
class World:
    cwd: str  # the grader's working directory (0755, like a checkout), holding a sentinel
    home: str  # the grader's HOME, holding notes and a 0600 secret
    drop: str  # world-writable, so a surviving daemon could leave a mark
    package: str  # the installed personadrift/rewards
    victim: subprocess.Popen  # a process of the grader's
    tcp: socket.socket  # listening on 127.0.0.1
    unix: socket.socket  # listening on an abstract unix address
    sock: socket.socket  # listening on a unix socket file (mode 0777) in `drop`
    mark: str  # unique; attacks name what they leave behind with it

    def fields(self) -> dict:
        """What attack templates are formatted with."""
        return {
            "cwd": self.cwd,
            "home": self.home,
            "drop": self.drop,
            "pkg": self.package,
            "victim": self.victim.pid,
            "me": os.getpid(),
            "port": self.tcp.getsockname()[1],
            "unix": self.unix.getsockname()[1:].decode(),
            "sock": self.sock.getsockname(),
            "mark": self.mark,
        }

    def fill(self, template: str) -> str:
        return template.format(**self.fields())


@contextmanager
def grader_world(secret: str) -> Iterator[World]:
    cwd, home, drop = (tempfile.mkdtemp(prefix="pd-test-") for _ in range(3))
    os.chmod(cwd, 0o755)
    os.chmod(home, 0o755)
    os.chmod(drop, 0o1777)
    with open(os.path.join(cwd, "sentinel.txt"), "w") as f:
        f.write("do not touch\n")
    with open(os.path.join(home, "notes.txt"), "w") as f:
        f.write("plain notes\n")
    with open(os.path.join(home, ".netrc"), "w") as f:
        f.write(secret)
    os.chmod(os.path.join(home, ".netrc"), 0o600)
    victim = subprocess.Popen(["sleep", "120"])
    tcp = socket.create_server(("127.0.0.1", 0))
    tcp.setblocking(False)
    unix = socket.socket(socket.AF_UNIX)
    unix.bind("\0pd-test-" + secrets.token_hex(4))
    unix.listen()
    unix.setblocking(False)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.path.join(drop, "runtime.sock"))
    os.chmod(sock.getsockname(), 0o777)
    sock.listen()
    sock.setblocking(False)
    mark = "pd-mark-" + secrets.token_hex(6)
    package = os.path.dirname(os.path.abspath(sandbox.__file__))
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(cwd)
            mp.setenv("HOME", home)
            mp.setenv("PD_SECRET", secret)
            yield World(cwd, home, drop, package, victim, tcp, unix, sock, mark)
    finally:
        victim.kill()
        victim.wait()
        tcp.close()
        unix.close()
        sock.close()
        for d in (cwd, home, drop):
            shutil.rmtree(d, ignore_errors=True)
