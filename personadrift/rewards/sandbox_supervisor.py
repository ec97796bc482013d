"""The supervisor of one sandbox job: pid 1 of the job's jail, parent of the answer.

The grader does not import this file: it reads its text and runs it as
`python -S -s -B -c <text> fd uid gid timeout cpu mem fsize nproc path`, so start-up (most of a
job's cost) loads nothing of this package. It forks the answer (rlimits set, dropped to the slot's
uid where there is one, `path` run as a fresh `__main__`), enforces the wall-clock timeout, kills
whatever else is left, and writes one status line to `fd`: `exit N`, `signal N`, `timeout` or
`error <why>`.

In a jail it is init of the job's pid namespace, so the answer cannot kill it (init gets no
signal it has no handler for, and it keeps none), and it makes itself non-dumpable, so an answer
of its own uid (the jail without root) cannot trace it or write its memory either.

Stdlib only, and kept compatible with old system Pythons (3.8+): the answer may run under the
system's interpreter rather than the grader's.
"""

import _signal as signal  # the C module: `signal` drags in enum, ~8 ms of start-up
import os
import resource
import sys
from time import monotonic


def say(line):
    os.write(FD, (line + "\n").encode())


def drop_privileges():
    if UID >= 0:
        os.setgroups([])
        os.setgid(GID)
        os.setuid(UID)
        if os.getuid() == 0 or os.geteuid() == 0:
            raise OSError("still root after setuid")


def set_dumpable(flag):
    # prctl(PR_SET_DUMPABLE) through the C module alone: `ctypes` costs ~5 ms of start-up.
    import _ctypes

    prctl = _ctypes.dlsym(_ctypes.dlopen(None, 2), "prctl")
    if _ctypes.call_function(prctl, (4, flag)) != 0:
        raise OSError("prctl(PR_SET_DUMPABLE) failed")


def answer():
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if JAILED:
            set_dumpable(1)  # the answer's own /proc entries stay its own
        os.setpgid(0, 0)
        limits = [
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_AS, MEM),
            (resource.RLIMIT_FSIZE, FSIZE),
        ]
        if NPROC > 0:
            limits.append((resource.RLIMIT_NPROC, NPROC))
        for which, value in limits:
            resource.setrlimit(which, (value, value))
        resource.setrlimit(resource.RLIMIT_CPU, (CPU, CPU + 1))
        drop_privileges()
    except BaseException as e:
        say(f"error answer setup failed: {e!r}")
        os._exit(70)
    os.closerange(3, 65536)  # the status pipe and whatever else came in with us
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
        # Frames of this file (compiled from `-c`, so named "<string>") are not the answer's.
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
    sys.stderr.write(f"{e.code!s}\n")
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
    if JAILED:
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
        say(f"signal {os.WTERMSIG(status)}")
    else:
        say(f"exit {os.WEXITSTATUS(status)}")
    os._exit(0)


def start():
    try:
        if JAILED:
            # Init of the namespace: a signal from inside reaches it only through a handler.
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            set_dumpable(0)
        if UID >= 0:
            os.chown(os.path.dirname(PATH), UID, GID)  # the work dir becomes the answer's
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])
        pid = os.fork()
    except BaseException as e:
        say(f"error supervisor start failed: {e!r}")
        os._exit(70)
    if pid == 0:
        answer()
    else:
        supervise(pid)


if __name__ == "__main__":  # true under `python -c`; importing this module does nothing
    # The job's settings are module globals: the functions above read them in both processes.
    _a = sys.argv[1:]
    FD, UID, GID = int(_a[0]), int(_a[1]), int(_a[2])
    TIMEOUT, CPU, MEM, FSIZE, NPROC = float(_a[3]), int(_a[4]), int(_a[5]), int(_a[6]), int(_a[7])
    PATH = _a[8]
    JAILED = os.getpid() == 1  # bwrap --as-pid-1: init of the job's own pid namespace
    del _a
    start()
