"""Start a board's firmware and hand back a `Target`: a byte link plus instruction counts.

Kinds: `host` (native process over a pipe), `qemu-user` (Linux boards, pipe), `qemu-system`
(bare metal; the emulated UART is a TCP socket read with pyserial exactly like a USB-serial port),
`serial` (a real board on --port) and `ssh` (a Linux board's program started with `ssh -T`, its
stdin/stdout the link: host/ssh.py). QEMU is always reaped: by `close()`, by the context
manager, and at interpreter exit as a safety net."""
from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path

from hilkit.core.proc import die_with_parent

from . import qemu as _qemu
from .errors import HilkitError

CONNECT_TIMEOUT_S = 15.0
# ssh: the connection, the program's start (a board may be slow) and its first answer.
SSH_READY_TIMEOUT_S = 20.0
SSH_REQUEST_TIMEOUT_S = 5.0
PORT_TRIES = 3


class RunnerError(HilkitError):
    """The target could not be started (bad image, no way to run this board)."""


class TargetError(HilkitError):
    """The running target misbehaved: exited early, did not exit in time."""


_live: "weakref.WeakSet[Target]" = weakref.WeakSet()
_live_lock = threading.RLock()  # re-entrant: __del__ may run while it is held


@atexit.register
def _reap_all() -> None:
    with _live_lock:
        targets = list(_live)
    for t in targets:
        t.close()


class Target:
    """A running firmware: `.link` (bytes), `.instruction_counts()`, `.close()`."""

    def __init__(self, board, image: Path, kind: str, link, proc=None, workdir: Path | None = None,
                 counts_file: Path | None = None, log_file: Path | None = None):
        self.board, self.image, self.kind = board, Path(image), kind
        self.link, self.proc = link, proc
        self._workdir, self._counts_file, self._log_file = workdir, counts_file, log_file
        self._counts_pos = 0
        self._counts_rest = b""
        self._closed = False
        self.info: dict | None = None   # INFO, where starting the target already asked it (ssh)
        # Seconds a protocol request waits for each reply: a network link's round trips vary more
        # than a pipe's or a UART's.
        self.request_timeout = SSH_REQUEST_TIMEOUT_S if kind == "ssh" else 1.0
        with _live_lock:
            _live.add(self)

    # -- measurements
    def instruction_counts(self) -> list[int] | None:
        """Per-inference guest instruction counts that arrived since the last call (None off QEMU)."""
        if self._counts_file is None:
            return None
        try:
            with open(self._counts_file, "rb") as f:
                f.seek(self._counts_pos)
                data = f.read()
        except FileNotFoundError:
            return []
        self._counts_pos += len(data)
        data = self._counts_rest + data
        lines = data.split(b"\n")
        self._counts_rest = lines.pop()  # an unfinished line waits for the next call
        return [int(x) for x in lines if x.strip()]

    # -- process state
    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def wait(self, timeout: float) -> int:
        """Wait for the target process to end (e.g. a semihosting exit); return its exit status."""
        if self.proc is None:
            raise TargetError(f"{self.board.id} on a serial port has no process to wait for")
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TargetError(f"{self.board.id}: the target did not exit within {timeout:g} s") from None

    def log(self) -> str:
        """What QEMU printed (errors, semihosting console); '' if nothing."""
        if self._log_file is not None and self._log_file.is_file():
            return self._log_file.read_text(errors="replace")
        return getattr(self.link, "stderr_text", "") or ""

    # -- teardown
    def close(self) -> None:
        """Close the link and reap the process (terminate, wait, kill). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self.link.close()
        except Exception:
            pass
        _reap(self.proc)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
        with _live_lock:
            _live.discard(self)

    def __enter__(self) -> "Target":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _popen(cmd, **kw) -> subprocess.Popen:
    try:
        return subprocess.Popen([str(c) for c in cmd], preexec_fn=die_with_parent(), **kw)
    except OSError as e:
        raise _qemu.QemuError(f"cannot start {cmd[0]}: {e}") from None


def _reap(proc, grace: float = 2.0) -> None:
    if proc is None:
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
    try:
        proc.wait(5.0)
    except subprocess.TimeoutExpired:
        pass


def start(board, image, *, port: str | None = None, baud: int | None = None,
          count_instructions: bool = True, connect_timeout: float = CONNECT_TIMEOUT_S,
          ssh=None, ssh_copy: str = "missing", say=None) -> Target:
    """Start `image` for `board` (a Board or an id) and return the running Target.

    With `port` the firmware is taken to be running on a real board at that serial port/URL;
    with `ssh` (an ssh.Destination) it is copied to that Linux board if not there (`ssh_copy`
    "always": copied anyway) and started over ssh, each command printed by `say`; otherwise the
    host board runs natively and the others run under their QEMU twin."""
    from .boards import get_board

    board = get_board(board)
    image = Path(image)
    if port is not None:
        return _start_serial(board, image, port, baud)
    if not image.is_file():
        raise RunnerError(f"firmware image {image} not found: build it first (`hilkit compile`)")
    if ssh is not None:
        return _start_ssh(board, image, ssh, ssh_copy, say)
    if board.runtime == "host":
        return _start_host(board, image)
    if board.qemu is None:
        raise RunnerError(f"board {board.id} has no QEMU twin: give --port DEV of the real board")
    if board.qemu.system:
        return _start_qemu_system(board, image, count_instructions, connect_timeout)
    return _start_qemu_user(board, image, count_instructions)


def _start_serial(board, image: Path, port: str, baud: int | None) -> Target:
    from .link import open_url
    link = open_url(port, baud or board.baud or 115200)
    return Target(board, image, "serial", link)


def _start_ssh(board, image: Path, dest, copy: str, say) -> Target:
    from . import ssh as _ssh
    from .link import LinkClosed, LinkError
    from .protocol import Client

    say = say or _ssh.say_stderr
    name = _ssh.install(dest, board.id, image, copy=copy, say=say)
    link = _ssh.spawn(dest, name, say)
    target = Target(board, image, "ssh", link, proc=link.proc)
    try:
        # The first answer waits for the connection and the program's start; later requests get
        # the protocol's usual timeouts. The same INFO asked again is answered from its store.
        target.info = Client(link, timeout=SSH_READY_TIMEOUT_S, retries=0).info()
    except LinkClosed as e:
        target.close()
        raise RunnerError(str(e)) from None
    except LinkError:
        target.close()
        raise RunnerError(f"./{name} on {dest} did not answer INFO within {SSH_READY_TIMEOUT_S:g} s "
                          f"(is it a hilkit firmware for {board.id}?)") from None
    except BaseException:
        target.close()
        raise
    return target


def _start_host(board, image: Path) -> Target:
    from .link import PipeLink
    proc = _popen([image.resolve()], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                  bufsize=0)
    return Target(board, image, "host", PipeLink(proc), proc=proc)


def _plugin(image: Path, workdir: Path, count: bool):
    if not count:
        return None, None
    out = workdir / "insn.txt"
    args = _qemu.plugin_args(image, out)
    return (args, out) if args else (None, None)


def _start_qemu_user(board, image: Path, count: bool) -> Target:
    from .link import PipeLink
    workdir = Path(tempfile.mkdtemp(prefix="hk-qemu-"))
    try:
        plugin, out = _plugin(image, workdir, count)
        cmd = _qemu.user_command(board, image.resolve(), plugin)
        # env -i: the guest sees QEMU's environment, and its size changes the instruction counts.
        proc = _popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
                      env={}, cwd=str(workdir))
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return Target(board, image, "qemu-user", PipeLink(proc), proc=proc, workdir=workdir, counts_file=out)


def _start_qemu_system(board, image: Path, count: bool, connect_timeout: float) -> Target:
    from .link import LinkError, open_url
    workdir = Path(tempfile.mkdtemp(prefix="hk-qemu-"))
    proc = None
    try:
        plugin, out = _plugin(image, workdir, count)
        log = workdir / "qemu.log"
        for attempt in range(PORT_TRIES):
            port = _qemu.free_port()
            cmd = _qemu.system_command(board, image.resolve(), port, plugin)
            with open(log, "wb") as logf:
                proc = _popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, cwd=str(workdir))
            deadline = time.monotonic() + connect_timeout
            link = None
            while link is None:
                if proc.poll() is not None:
                    break
                try:
                    link = open_url(f"socket://127.0.0.1:{port}", board.baud or 115200)
                except LinkError:
                    if time.monotonic() > deadline:
                        _reap(proc)
                        raise _qemu.QemuError(f"{board.qemu.binary} -M {board.qemu.machine} did not open its "
                                              f"serial port within {connect_timeout:g} s") from None
                    time.sleep(0.02)
            if link is not None:
                return Target(board, image, "qemu-system", link, proc=proc, workdir=workdir,
                              counts_file=out, log_file=log)
            text = log.read_text(errors="replace")
            if "Address already in use" in text or "Failed to bind" in text:
                continue  # another process took the port between free_port() and QEMU's bind
            tail = " | ".join(text.strip().splitlines()[-3:]) or f"exit status {proc.returncode}"
            raise _qemu.QemuError(f"{board.qemu.binary} -M {board.qemu.machine} failed to start: {tail}")
        raise _qemu.QemuError(f"{board.qemu.binary}: no free TCP port for the serial link after {PORT_TRIES} tries")
    except BaseException:
        _reap(proc)
        shutil.rmtree(workdir, ignore_errors=True)
        raise
