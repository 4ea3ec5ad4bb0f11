"""Byte links to a target: one small interface, two implementations.

- `SerialLink` over anything pyserial's `serial_for_url` opens: `/dev/ttyUSB0`, `socket://host:port`
  (QEMU's emulated UART), `rfc2217://host:port`, `loop://`. Use `open_url(url, baud)`.
- `PipeLink` over a subprocess's stdin/stdout (host-native firmware, qemu-user).

`read(n, timeout)` returns as soon as any bytes are there (at most n), or b"" at the timeout; it
never blocks longer than the timeout. A link whose other end has gone raises `LinkClosed`.
"""
from __future__ import annotations

import os
import select
import subprocess
import threading
import time
from collections import deque

from .errors import HilkitError

__all__ = ["LinkError", "LinkClosed", "Link", "SerialLink", "PipeLink", "open_url"]


class LinkError(HilkitError):
    """The byte link failed: cannot open, closed by the other end, or no answer in time."""


class LinkClosed(LinkError):
    """The other end of the link has gone (process exited, socket closed, port unplugged)."""


class Link:
    """A byte stream to a target."""

    def write(self, data: bytes) -> None:
        """Send all of data (raises LinkError if that is impossible)."""
        raise NotImplementedError

    def read(self, n: int, timeout: float) -> bytes:
        """Up to n bytes: returns as soon as any are available, b"" after timeout seconds."""
        raise NotImplementedError

    def reset_input(self) -> None:
        """Discard everything received and not yet read."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the link; safe to call twice."""
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ------------------------------------------------------------------ pyserial
class SerialLink(Link):
    """A link over an open pyserial object (a port, socket://, rfc2217://, loop://).

    The port is put in non-blocking mode once (timeout 0), and waiting is done with select() on
    its file descriptor where it has one (POSIX ports, sockets), else by polling every
    millisecond. This avoids changing pyserial's timeout per read, which reconfigures a real port
    (and sends a negotiation over the network for rfc2217)."""

    POLL_S = 0.001

    def __init__(self, ser, url: str = ""):
        self._ser = ser
        self.url = url or getattr(ser, "port", "") or ""
        try:
            if ser.timeout != 0:
                ser.timeout = 0
            self._fd = ser.fileno()
        except Exception:  # no fileno(): loop://, rfc2217://, Windows ports
            self._fd = None

    def write(self, data: bytes) -> None:
        import serial
        try:
            self._ser.write(bytes(data))
        except serial.SerialException as e:
            raise LinkClosed(f"cannot write to {self.url}: {e}") from e
        except OSError as e:
            raise LinkClosed(f"cannot write to {self.url}: {e}") from e

    def read(self, n: int, timeout: float) -> bytes:
        import serial
        deadline = time.monotonic() + max(0.0, timeout)
        try:
            while True:
                data = self._ser.read(n)
                if data:
                    return data
                left = deadline - time.monotonic()
                if left <= 0:
                    return b""
                if self._fd is not None:
                    select.select([self._fd], [], [], left)
                else:
                    time.sleep(min(self.POLL_S, left))
        except serial.SerialException as e:
            raise LinkClosed(f"{self.url}: {e}") from e
        except (OSError, ValueError) as e:  # ValueError: select() on a closed fd
            raise LinkClosed(f"{self.url}: {e}") from e

    def reset_input(self) -> None:
        self._ser.reset_input_buffer()

    def close(self) -> None:
        try:
            self._ser.close()
        except Exception:
            pass


def open_url(url: str, baud: int = 115200, **kwargs) -> SerialLink:
    """Open a pyserial URL or device path (`/dev/ttyUSB0`, `socket://127.0.0.1:4444`,
    `rfc2217://host:port`, `loop://`) as a link."""
    import serial
    try:
        ser = serial.serial_for_url(url, baudrate=baud, timeout=0, **kwargs)
    except (serial.SerialException, OSError, ValueError) as e:
        raise LinkError(f"cannot open {url}: {e} (check the port name, permissions (dialout group) "
                        "and that nothing else holds the port)") from e
    return SerialLink(ser, url)


# ------------------------------------------------------------------ subprocess pipes
class PipeLink(Link):
    """A link over a subprocess's stdin/stdout (create it with stdin=PIPE, stdout=PIPE).

    A reader thread drains stdout (and stderr, if piped, into a bounded tail kept for error
    messages) so the child never blocks on a full pipe while the host is writing; writes are
    non-blocking with a deadline, so a child that stops reading cannot hang the host."""

    STDERR_KEEP = 64 * 1024

    def __init__(self, popen: subprocess.Popen, write_timeout: float = 10.0, close_timeout: float = 3.0):
        if popen.stdin is None or popen.stdout is None:
            raise ValueError("PipeLink needs a Popen with stdin=PIPE and stdout=PIPE")
        self.proc = popen
        self.write_timeout = write_timeout
        self.close_timeout = close_timeout
        self._in_fd = popen.stdin.fileno()
        os.set_blocking(self._in_fd, False)
        self._buf = bytearray()
        self._eof = False
        self._cond = threading.Condition()
        self._stderr = deque()
        self._stderr_len = 0
        self._stderr_lock = threading.Lock()
        self._closed = False
        self._threads = [threading.Thread(target=self._pump_stdout, name="PipeLink-stdout", daemon=True)]
        if popen.stderr is not None:
            self._threads.append(threading.Thread(target=self._pump_stderr, name="PipeLink-stderr",
                                                  daemon=True))
        for t in self._threads:
            t.start()

    @classmethod
    def spawn(cls, argv, env=None, cwd=None, **kwargs) -> "PipeLink":
        """Start argv with piped stdin/stdout/stderr and return a link to it."""
        try:
            p = subprocess.Popen(list(map(str, argv)), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, bufsize=0, env=env, cwd=cwd)
        except OSError as e:
            raise LinkError(f"cannot start {argv[0]}: {e}") from e
        return cls(p, **kwargs)

    def _pump_stdout(self) -> None:
        fd = self.proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self._cond:
                if chunk:
                    self._buf += chunk
                else:
                    self._eof = True
                self._cond.notify_all()
            if not chunk:
                return

    def _pump_stderr(self) -> None:
        fd = self.proc.stderr.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self._stderr_lock:
                self._stderr.append(chunk)
                self._stderr_len += len(chunk)
                while self._stderr_len > self.STDERR_KEEP and len(self._stderr) > 1:
                    self._stderr_len -= len(self._stderr.popleft())

    @property
    def stderr_text(self) -> str:
        """The last 64 KiB the process wrote to stderr (if stderr was piped)."""
        with self._stderr_lock:
            return b"".join(self._stderr).decode("utf-8", errors="replace")

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def _gone(self, what: str) -> LinkClosed:
        rc = self.proc.poll()
        status = "still running" if rc is None else f"exit status {rc}"
        tail = self.stderr_text.strip().splitlines()[-5:]
        args = self.proc.args
        prog = args[0] if isinstance(args, (list, tuple)) else args
        msg = f"{what}: target process {prog} ({status})"
        if tail:
            msg += "; its stderr ends with:\n  " + "\n  ".join(tail)
        return LinkClosed(msg)

    def write(self, data: bytes) -> None:
        if self._closed:
            raise LinkClosed("write on a closed PipeLink")
        view = memoryview(bytes(data))
        deadline = time.monotonic() + self.write_timeout
        while view:
            try:
                k = os.write(self._in_fd, view)
                view = view[k:]
                continue
            except BlockingIOError:
                pass
            except (BrokenPipeError, OSError) as e:
                raise self._gone(f"cannot write ({e.strerror or e})") from e
            left = deadline - time.monotonic()
            if left <= 0:
                raise LinkError(f"target did not read its input for {self.write_timeout:g} s "
                                f"({len(view)} bytes left unsent)")
            select.select([], [self._in_fd], [], min(left, 0.1))

    def read(self, n: int, timeout: float) -> bytes:
        with self._cond:
            if not self._buf and not self._eof:
                self._cond.wait_for(lambda: self._buf or self._eof, max(0.0, timeout))
            if self._buf:
                out = bytes(self._buf[:n])
                del self._buf[:n]
                return out
            if self._eof:
                raise self._gone("link closed")
            return b""

    def reset_input(self) -> None:
        with self._cond:
            self._buf.clear()

    def close(self) -> None:
        """Close stdin (the firmware exits 0 on end of input), wait a little, then terminate and
        kill if needed; the process is always reaped."""
        if self._closed:
            return
        self._closed = True
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(self.close_timeout)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(1.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for t in self._threads:
            t.join(1.0)
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
