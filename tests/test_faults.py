"""Fault injection on a real socket: pyserial socket:// -> fault proxy -> firmware behind TCP.

The firmware (the host build of firmware/main.c with the test model) sits behind a TCP server
the way QEMU's `-serial tcp:...,server=on` exposes a UART; a frame-aware proxy between it and the
Client flips bits, drops bytes, truncates frames, duplicates them, adds garbage, or stops
forwarding. The Client must complete every request with the exact result, or raise LinkError in
bounded time; it must never accept a wrong result.
"""
from __future__ import annotations

import random
import socket
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "c"))
import protobuild as pb  # noqa: E402

from hilkit.host import protocol as P  # noqa: E402
from hilkit.host.link import LinkError, PipeLink, open_url  # noqa: E402

FAULTS = ("flip", "drop", "truncate", "duplicate", "garbage")
REQ, REP = "request", "reply"


def _listener() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    s.settimeout(10.0)
    return s


class FirmwareServer:
    """A firmware process whose stdin/stdout are served on one TCP connection (like QEMU's
    `-serial tcp:127.0.0.1:PORT,server=on,wait=on`)."""

    def __init__(self, exe: Path):
        self._ls = _listener()
        self.port = self._ls.getsockname()[1]
        self.link = PipeLink.spawn([exe])
        self._stop = threading.Event()
        self._conn: socket.socket | None = None
        self._threads = [threading.Thread(target=self._serve, daemon=True)]
        self._threads[0].start()

    def _serve(self) -> None:
        try:
            conn, _ = self._ls.accept()
        except OSError:
            return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(0.1)
        self._conn = conn
        out = threading.Thread(target=self._to_socket, daemon=True)
        out.start()
        self._threads.append(out)
        while not self._stop.is_set():
            try:
                data = conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            self.link.write(data)

    def _to_socket(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.link.read(65536, 0.1)
            except LinkError:
                return
            if data:
                try:
                    self._conn.sendall(data)
                except OSError:
                    return

    def close(self) -> int | None:
        self._stop.set()
        for s in (self._conn, self._ls):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
        self.link.close()
        for t in self._threads:
            t.join(2.0)
        return self.link.returncode


class FaultProxy:
    """A TCP proxy that cuts both directions into frames (at 0x00) and damages some of them.

    `p` is the probability that a frame gets one fault, chosen uniformly from `kinds`; `plan`
    (direction, frame index) -> kind or None overrides it for deterministic tests. `stall()` makes
    the device side go silent. `initial_garbage` is sent both ways before anything else."""

    HOLD = 8192  # bytes held while waiting for a 0x00; more than that is forwarded as is

    def __init__(self, upstream_port: int, p: float = 0.0, kinds=FAULTS, plan=None, seed: int = 0,
                 directions=(REQ, REP), initial_garbage: bytes = b""):
        self.p, self.kinds, self.plan, self.directions = p, tuple(kinds), plan, directions
        self.initial_garbage = initial_garbage
        self.counts: Counter = Counter()
        self.frames: Counter = Counter()
        self._rng = {REQ: random.Random(seed), REP: random.Random(seed + 1)}
        self._stalled = threading.Event()
        self._stop = threading.Event()
        self._ls = _listener()
        self.port = self._ls.getsockname()[1]
        self._up = socket.create_connection(("127.0.0.1", upstream_port), timeout=10)
        self._down: socket.socket | None = None
        self._threads = [threading.Thread(target=self._run, daemon=True)]
        self._threads[0].start()

    def stall(self) -> None:
        self._stalled.set()

    def _run(self) -> None:
        try:
            down, _ = self._ls.accept()
        except OSError:
            return
        self._down = down
        for s in (down, self._up):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.settimeout(0.1)
        if self.initial_garbage:
            down.sendall(self.initial_garbage)
            self._up.sendall(self.initial_garbage)
            self.counts[("both", "initial garbage")] += 1
        t = threading.Thread(target=self._pump, args=(self._up, down, REP), daemon=True)
        t.start()
        self._threads.append(t)
        self._pump(down, self._up, REQ)

    def _damage(self, direction: str, frame: bytes) -> bytes:
        idx = self.frames[direction]
        self.frames[direction] += 1
        rng = self._rng[direction]
        if self.plan is not None:
            kind = self.plan(direction, idx)
        elif direction in self.directions and rng.random() < self.p:
            kind = rng.choice(self.kinds)
        else:
            kind = None
        if kind is None:
            return frame
        self.counts[(direction, kind)] += 1
        b = bytearray(frame)
        if kind == "flip":
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif kind == "drop":
            del b[rng.randrange(len(b))]
        elif kind == "truncate":
            b = b[:rng.randrange(1, len(b) - 1)] + (b"\x00" if rng.random() < 0.5 else b"")
        elif kind == "duplicate":
            b = b + b
        elif kind == "garbage":
            b = bytearray(rng.randbytes(rng.randrange(1, 24))) + b
        return bytes(b)

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        held = bytearray()
        while not self._stop.is_set():
            try:
                data = src.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            held += data
            out = bytearray()
            while True:
                i = held.find(0)
                if i < 0:
                    break
                frame = bytes(held[:i + 1])
                del held[:i + 1]
                out += frame if len(frame) == 1 else self._damage(direction, frame)
            if len(held) > self.HOLD:
                out += held
                held.clear()
            if direction == REP and self._stalled.is_set():
                self.counts[(REP, "stalled bytes")] += len(out)
                continue
            try:
                dst.sendall(out)
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        for s in (self._down, self._up, self._ls):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
        for t in self._threads:
            t.join(2.0)

    def summary(self) -> str:
        return ", ".join(f"{d} {k}: {n}" for (d, k), n in sorted(self.counts.items())) or "none"


@pytest.fixture(scope="module")
def firmware(tmp_path_factory):
    return pb.build_firmware(tmp_path_factory.mktemp("fw") / "hk_fw_host")


@pytest.fixture
def rig(firmware):
    """Make (server, proxy, link) on demand; everything is closed, and the firmware reaped."""
    made = []

    def make(**proxy_kw):
        server = FirmwareServer(firmware)
        proxy = FaultProxy(server.port, **proxy_kw)
        link = open_url(f"socket://127.0.0.1:{proxy.port}")
        made.append((server, proxy, link))
        return server, proxy, link

    yield make
    for server, proxy, link in made:
        link.close()
        proxy.close()
        rc = server.close()
        assert rc == 0, server.link.stderr_text


def run_requests(client: P.Client, n: int, seed: int) -> None:
    """n INFER requests with random inputs; every result must be exact, and the model's call
    counter must show each request computed exactly once."""
    rng = np.random.default_rng(seed)
    xs = (rng.normal(size=(n, 4)) * 8).astype(np.float32)
    base = None
    for i, x in enumerate(xs):
        r = client.infer(x)
        np.testing.assert_array_equal(r.outputs, pb.model_reference(x))
        assert r.extra[1] == int(np.sum(x > 0))
        base = r.extra[0] - i if base is None else base
        assert r.extra[0] == base + i, "a request was computed twice or not at all"


@pytest.mark.parametrize("direction", [REQ, REP])
@pytest.mark.parametrize("kind", FAULTS)
def test_single_fault_is_recovered(rig, kind, direction):
    hit = {3, 7, 8}  # frames (counted per direction) to damage; 7 and 8 back to back
    server, proxy, link = rig(plan=lambda d, i: kind if d == direction and i in hit else None, seed=5)
    c = P.Client(link, timeout=0.3, retries=4)
    run_requests(c, 20, seed=1)
    assert proxy.counts[(direction, kind)] == 3
    if kind == "duplicate":
        # a duplicated request is answered twice from the stored reply; either way the extra
        # reply is ignored by seq, without a resend
        assert c.stats.ignored >= 3 and c.stats.retries == 0
    elif kind in ("flip", "drop", "truncate"):
        assert c.stats.retries >= 3
    print(f"\n{kind} {direction}: injected {proxy.summary()}; client {c.stats}")


def test_garbage_before_the_first_frame(rig):
    rng = random.Random(3)
    garbage = bytes(rng.randrange(256) for _ in range(300)) + b"\x55\xaa" * 50
    server, proxy, link = rig(initial_garbage=garbage)
    c = P.Client(link, timeout=0.3, retries=3)
    assert c.info()["board"] == "host-test"
    run_requests(c, 10, seed=2)


def test_device_that_stops_answering_raises_link_error_in_bounded_time(rig):
    server, proxy, link = rig()
    c = P.Client(link, timeout=0.2, retries=2)
    run_requests(c, 5, seed=3)
    proxy.stall()
    t = time.monotonic()
    with pytest.raises(LinkError, match=r"no valid reply to INFER8? .* after 3 attempts"):
        c.infer([1, 2, 3, 4])
    elapsed = time.monotonic() - t
    assert 0.55 < elapsed < 1.5, elapsed
    assert c.stats.timeouts == 3 and proxy.counts[(REP, "stalled bytes")] > 0


def test_device_that_disconnects_raises_link_error(rig):
    server, proxy, link = rig()
    c = P.Client(link, timeout=0.2, retries=2)
    run_requests(c, 3, seed=4)
    proxy.close()
    t = time.monotonic()
    with pytest.raises(LinkError):
        c.infer([1, 2, 3, 4])
    assert time.monotonic() - t < 1.5


@pytest.mark.slow
def test_10k_requests_at_1_percent_faults(rig):
    server, proxy, link = rig(p=0.01, seed=2024)
    c = P.Client(link, timeout=0.15, retries=8)
    n = 10_000
    t = time.monotonic()
    run_requests(c, n, seed=10)
    elapsed = time.monotonic() - t
    injected = sum(v for (d, k), v in proxy.counts.items())
    print(f"\n10k requests in {elapsed:.1f} s; frames seen: {dict(proxy.frames)}; "
          f"faults injected: {injected} ({proxy.summary()}); client: {c.stats}")
    assert c.stats.requests == n + 1  # + the INFO infer() asked first
    assert injected > 100  # about 1 % of ~20k frames
    assert c.stats.retries > 0
    assert elapsed < 60
