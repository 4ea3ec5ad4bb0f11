"""Child processes that do not outlive hilkit.

`die_with_parent(sig)` is a preexec_fn that asks Linux to send `sig` to the child when the thread
that started it dies, even by SIGKILL, so an orphaned QEMU never spins on its UART forever and an
interrupted build does not keep compiling. Ninja, sent SIGTERM, stops and kills the process groups
of the jobs it is running; QEMU gets SIGKILL. Only from the main thread (the signal follows the
thread that forked); elsewhere, and off Linux, None (no such guarantee)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL):
    if threading.current_thread() is not threading.main_thread() or not sys.platform.startswith("linux"):
        return None

    def set_pdeathsig():
        try:
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
        except Exception:
            pass
    return set_pdeathsig


# A shell that runs the command in the background of its own process group and, when it gets
# SIGTERM (hilkit died: die_with_parent) or hilkit kills the group, takes the whole group down:
# CMake's compiler checks and Ninja's jobs included.
_GUARD = 'trap "trap - TERM; kill -TERM -$$ 2>/dev/null" TERM HUP; "$@" & wait $!'


def run_group(cmd, *, cwd=None, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run `cmd` (stdout and stderr together, as text) so that it and everything it starts die with
    hilkit: on SIGKILL of hilkit (the kernel's parent-death signal), on Ctrl-C and on any exception
    here (the process group is killed before the exception goes on)."""
    p = subprocess.Popen(["/bin/sh", "-c", _GUARD, "hk-guard", *map(str, cmd)], cwd=cwd, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True,
                         preexec_fn=die_with_parent(signal.SIGTERM))
    try:
        out, _ = p.communicate(timeout=timeout)
    except BaseException:
        kill_group(p)
        raise
    return subprocess.CompletedProcess(p.args, p.returncode, out, None)


def kill_group(p: subprocess.Popen, grace: float = 2.0) -> None:
    """SIGTERM the process group led by p, then SIGKILL it if it has not gone after `grace` s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            break
        try:
            p.wait(grace)
            break
        except subprocess.TimeoutExpired:
            continue
