"""The sandbox: plain behaviour, batches, and an attack suite of model-written sources.

Every attack must come back as an ExecResult without touching the grader: its working directory,
its HOME, the installed package, its processes, its secrets and its sockets stay as they were, and
nothing of the answer is still running afterwards.
"""

from __future__ import annotations

import os
import resource
import secrets
import time

import pytest

from personadrift.rewards import sandbox
from personadrift.rewards.sandbox import ExecResult, Limits, isolation_report, run, run_many
from tests.attacks import ATTACKS as ATTACK_SOURCES
from tests.grader_world import grader_world, snapshot

REPORT = isolation_report()
FAST = Limits(timeout_s=1.0, cpu_s=1)
SECRET = "pd-secret-" + secrets.token_hex(8)
SANDBOX_UIDS = range(sandbox.UID_BASE, sandbox.UID_BASE + sandbox.MAX_SLOTS)


def needs(*keys: str) -> pytest.MarkDecorator:
    missing = [k for k in keys if not REPORT[k]]
    return pytest.mark.skipif(bool(missing), reason=f"isolation_report(): {missing} inactive here")


def survivors(uid: int, since: float) -> list[int]:
    """Processes of `uid` started before `since` (seconds of uptime).

    A slot's uid is exclusive while a job holds it, so anything of that uid started before the job
    ended is the job's; later ones may be another grader's next job in the same slot.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                owner = next(int(ln.split()[1]) for ln in f if ln.startswith("Uid:"))
            with open(f"/proc/{name}/stat") as f:
                started = int(f.read().rsplit(")", 1)[1].split()[19]) / ticks
        except (OSError, StopIteration):
            continue
        if owner == uid and started <= since:
            found.append(int(name))
    return found


def uptime() -> float:
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def zombie_children() -> list[int]:
    zombies = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] == "Z" and int(fields[1]) == os.getpid():
                zombies.append(int(name))
    return zombies


@pytest.fixture
def world():
    with grader_world(SECRET) as w:
        yield w


# Each attack prints its uid first, so the test can look for its leftovers.
PRELUDE = "import os; print('uid=%d' % os.getuid(), flush=True)\n"

# What each attack from tests/attacks.py may come back as.
EXPECTED = {
    "infinite_loop": {"timeout", "signal"},
    "fork_bomb": {"timeout", "signal"},
    "memory_bomb": {"exit"},
    "memory_creep": {
        "exit",
        "signal",
        "timeout",
    },  # on a loaded machine the clock can beat the limit
    "forked_memory": {"timeout", "signal"},
    "stdout_flood": {"ok"},
    "stderr_flood": {"ok"},
    "delete_cwd": {"ok"},
    "write_cwd": {"ok"},
    "conftest_in_cwd": {"exit"},
    "write_home": {"ok"},
    "read_home_secret": {"exit"},
    "write_package": {"ok"},
    "environment": {"ok"},
    "proc_environ": {"ok"},
    "socket_localhost": {"exit"},
    "socket_outside": {"ok"},
    "unix_abstract_socket": {"exit"},
    "sys_exit_0": {"ok"},
    "os_exit_0": {"ok"},
    "kill_parents": {"ok"},
    "kill_everything": {"ok"},
    "signal_tampering": {"timeout"},
    "inspect_frames": {"ok"},
    "recursion_bomb": {"signal", "exit", "timeout"},
    "setsid_daemon": {"ok"},
    "os_system": {"ok"},
    "sleep_new_session": {"ok"},
    "huge_file": {"exit", "signal"},
    "chmod_tricks": {"ok"},
    "symlink_escape": {"ok"},
    "raise_limits_and_uid": {"ok"},
    "ptrace_victim": {"ok"},
    "hang_in_atexit": {"timeout"},
}
ATTACKS = {name: (template, EXPECTED[name]) for name, template in ATTACK_SOURCES}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_is_contained(name, world):
    template, expected = ATTACKS[name]
    before = {d: snapshot(d) for d in (world.cwd, world.home, world.package, world.drop)}
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    result = run(world.fill(PRELUDE + template), FAST)
    returned = uptime()

    assert isinstance(result, ExecResult)
    assert result.status in expected, result
    assert world.victim.poll() is None, "the grader's process was killed"
    os.kill(os.getpid(), 0)
    output = result.stdout + result.stderr + result.detail
    assert SECRET not in output
    assert len(result.stdout) <= FAST.output_bytes and len(result.stderr) <= FAST.output_bytes
    uid = int(result.stdout.split("uid=", 1)[1].split()[0]) if "uid=" in result.stdout else None
    if REPORT["unprivileged_user"]:
        assert uid in SANDBOX_UIDS
        assert not survivors(uid, returned), "a process of the answer survived"
    if REPORT["private_workdir"]:
        assert os.stat(sandbox._host().workdir_base).st_mode & 0o777 == 0o711
    with open(f"/proc/{world.victim.pid}/stat") as f:
        assert f.read().rsplit(")", 1)[1].split()[0] in "SR", "the grader's process was stopped"
    assert not zombie_children()
    for listener in (world.tcp, world.unix):
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    # 'drop' is world-writable: a surviving daemon would write there after a while.
    time.sleep(1.2 if name in ("setsid_daemon", "os_system") else 0)
    assert {d: snapshot(d) for d in before} == before
    # Reading 100 MB of output must not have grown the grader.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 50 * 1024


def test_attack_suite_is_large_enough():
    assert len(ATTACKS) >= 25


def test_stdout_flood_is_truncated_and_quick(world):
    result = run("import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 2**20)\n", FAST)
    assert result.status == "ok"
    assert result.stdout == "x" * FAST.output_bytes
    assert "truncated" in result.detail and str(100 * 2**20) in result.detail


@needs("unprivileged_user")
def test_answer_cannot_read_the_graders_secret_files(world):
    result = run(world.fill("print(open({home!r} + '/.netrc').read())"), FAST)
    assert result.status == "exit" and "PermissionError" in result.stderr


@needs("network_namespace")
def test_network_is_unreachable(world):
    src = "import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=0.5)\n"
    result = run(world.fill(src), FAST)
    assert result.status == "exit" and "Network is unreachable" in result.stderr


@needs("nproc_limit")
def test_fork_bomb_hits_the_process_cap():
    src = (
        "import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n"
        "            time.sleep(5)\n            os._exit(0)\n        n += 1\n"
        "except OSError:\n    print(n)\n"
    )
    result = run(src, FAST)
    assert result.status == "ok"
    assert 0 < int(result.stdout) < FAST.nproc


@needs("rlimits")
def test_huge_file_is_cut_at_the_size_limit():
    result = run("open('big', 'wb').write(b'0' * 20 * 2**20)", FAST)
    assert result.status == "exit" and "File too large" in result.stderr


@needs("memory_cgroup")
def test_many_big_processes_share_one_memory_cap():
    src = (
        "import os, time\npids = []\nfor _ in range(6):\n    pid = os.fork()\n    if pid == 0:\n"
        "        x = bytearray(100 * 2**20)\n        time.sleep(1)\n        os._exit(0)\n"
        "    pids.append(pid)\n"
        "print(sum(os.WIFSIGNALED(os.waitpid(p, 0)[1]) for p in pids))\n"
    )
    result = run(src, Limits(timeout_s=5, memory_mb=256))
    assert result.status == "ok"  # the cgroup's OOM killer takes children, not the whole job
    assert int(result.stdout) >= 3  # 600 MB asked, 256 MB for the job


@needs("pid_namespace")
def test_daemon_dies_with_the_job(world):
    src = (
        "import os, time\n"
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        time.sleep(0.3)\n        open({drop!r} + '/late', 'w').write('x')\n"
        "    os._exit(0)\n"
    )
    assert run(world.fill(src), FAST).status == "ok"
    time.sleep(0.8)
    assert os.listdir(world.drop) == []


def test_print_ok():
    result = run("print(1+1)")
    assert (result.status, result.returncode, result.stdout, result.stderr) == ("ok", 0, "2\n", "")


def test_exception_is_exit_with_traceback():
    result = run("def f():\n    raise ValueError('boom')\nf()\n")
    assert (result.status, result.returncode) == ("exit", 1)
    assert result.stderr.startswith("Traceback")
    assert 'main.py", line 2, in f' in result.stderr and "ValueError: boom" in result.stderr
    assert "<string>" not in result.stderr  # the supervisor's frames are hidden


def test_syntax_error_is_exit():
    result = run("def f(:\n")
    assert result.status == "exit" and "SyntaxError" in result.stderr


def test_exit_codes_follow_python():
    assert run("import sys; sys.exit(3)").returncode == 3
    message = run("import sys; sys.exit('bye')")
    assert (message.status, message.returncode, message.stderr) == ("exit", 1, "bye\n")
    assert run("import os; os._exit(5)").returncode == 5


def test_atexit_and_threads_run_before_exit():
    src = (
        "import atexit, threading, time\natexit.register(print, 'atexit')\n"
        "threading.Thread(target=lambda: (time.sleep(0.1), print('thread'))).start()\n"
    )
    assert run(src).stdout == "thread\natexit\n"


def test_timeout():
    limits = Limits(timeout_s=1.0)
    result = run("import time\ntime.sleep(100)\n", limits)
    assert (result.status, result.returncode) == ("timeout", None)
    assert limits.timeout_s <= result.seconds < limits.timeout_s + 1


def test_cpu_limit_kills_a_busy_loop():
    result = run("while True:\n    pass\n", Limits(timeout_s=10, cpu_s=1))
    assert result.status == "signal" and result.returncode in (-24, -9)  # SIGXCPU, then SIGKILL
    assert result.seconds < 4


def test_stdin_is_empty():
    result = run("input()")
    assert result.status == "exit" and "EOFError" in result.stderr


def test_output_is_decoded_leniently():
    result = run(
        "import sys\nsys.stdout.buffer.write(b'\\xff ok \\xc3\\xa9')\nprint('é', file=sys.stderr)"
    )
    assert result.stdout == "\ufffd ok é" and result.stderr == "é\n"


def test_environment_is_clean(monkeypatch):
    monkeypatch.setenv("PD_SECRET", SECRET)
    result = run("import os, json\nprint(json.dumps(dict(os.environ)))")
    env = __import__("json").loads(result.stdout)
    assert SECRET not in result.stdout
    assert env["PYTHONHASHSEED"] == "0" and env["HOME"] == env["TMPDIR"]
    assert set(env) <= {
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "LC_ALL",
        "PYTHONIOENCODING",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONHASHSEED",
        "OPENBLAS_NUM_THREADS",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
    }


def test_hashing_is_deterministic():
    src = "print(hash('persona'), list({'a', 'b', 'c', 'd'}))"
    assert run(src).stdout == run(src).stdout


def test_python_is_isolated():
    src = (
        "import os, sys\nprint('site' in sys.modules, '' in sys.path, os.getcwd() in sys.path)\n"
        "import pytest\n"
    )
    result = run(src)
    assert result.stdout == "False False False\n"
    assert "ModuleNotFoundError: No module named 'pytest'" in result.stderr


def test_workdir_is_fresh_private_and_removed():
    src = "import os\nprint(os.getcwd())\nprint(sorted(os.listdir('.')))\nprint(os.stat('.').st_mode & 0o777)"
    first, second = run(src), run(src)
    cwd, listing, mode = first.stdout.split("\n")[:3]
    assert listing == "['main.py']" and mode == str(0o700)
    assert cwd != second.stdout.split("\n")[0]
    assert not os.path.exists(cwd)


def test_no_grader_fds_leak():
    result = run("import os\nprint(sorted(int(fd) for fd in os.listdir('/proc/self/fd')))")
    assert result.stdout == "[0, 1, 2, 3]\n"  # 3 is listdir's own


def test_sandbox_failure_is_an_error_result(monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("no processes left")

    monkeypatch.setattr(sandbox.subprocess, "Popen", broken)
    result = run("print(1)")
    assert result.status == "error" and "no processes left" in result.detail
    assert run_many(["print(1)"] * 3)[0].status == "error"


def test_run_many_keeps_order():
    results = run_many([f"print({i})" for i in range(12)])
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(12)]
    assert run_many([]) == []


def test_hung_answers_do_not_stall_the_batch():
    limits = Limits(timeout_s=1.0)
    hung = [i % 6 == 0 for i in range(24)]
    sources = ["import time\ntime.sleep(100)" if h else f"print({i})" for i, h in enumerate(hung)]
    start = time.monotonic()
    results = run_many(sources, limits, workers=2)  # more hung answers than workers
    elapsed = time.monotonic() - start
    assert [r.status for r in results] == ["timeout" if h else "ok" for h in hung]
    assert elapsed < limits.timeout_s + 1.5, elapsed
    assert not zombie_children()


def test_isolation_report_shape():
    assert set(REPORT) == set(sandbox._REPORT_KEYS)
    assert all(isinstance(v, bool) for v in REPORT.values())
    assert REPORT["clean_environment"] and REPORT["isolated_python"] and REPORT["rlimits"]
