"""Every board's firmware under its QEMU twin (or natively for `host`): the board layer's byte link,
exit status, fault exits, deterministic instruction counts, and that QEMU is always reaped."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hilkit.codegen import build
from hilkit.host import boards, qemu, runner
from hilkit.host.link import LinkError

pytestmark = pytest.mark.qemu

ROOT = Path(__file__).resolve().parent.parent
ECHO = ROOT / "boards" / "test" / "hk_echo.c"
TEST_MODEL = ROOT / "boards" / "test" / "model"


def _runnable(b) -> str | None:
    """Why this board cannot run here (None: it can)."""
    try:
        build.check_toolchain(b)
    except build.BuildError as e:
        return str(e)
    if b.qemu is not None and shutil.which(b.qemu.binary) is None:
        return f"{b.qemu.binary} not installed"
    return None


BOARDS = [pytest.param(b.id, marks=pytest.mark.skipif(_runnable(b) is not None, reason=str(_runnable(b))))
          for b in boards.list_boards() if b.runtime == "host" or b.qemu is not None]


@pytest.fixture(scope="module")
def echo_images(tmp_path_factory):
    """The bring-up program built once per board (lazily, on first use)."""
    root = tmp_path_factory.mktemp("echo")
    cache: dict[str, Path] = {}

    def get(bid: str) -> Path:
        if bid not in cache:
            cache[bid] = build.build_firmware(None, bid, build_dir=root / bid, sources=[ECHO])
        return cache[bid]
    return get


def _read_exact(link, n: int, timeout: float = 10.0) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while len(buf) < n:
        left = deadline - time.monotonic()
        assert left > 0, f"timed out with {len(buf)}/{n} bytes: {buf!r}"
        buf += link.read(n - len(buf), left)
    return buf


def _banner(t) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        line += _read_exact(t.link, 1)
    return line


def _work(t, n: int) -> tuple[int, int]:
    t.link.write(b"W" + bytes([n]))
    cycles, result = struct.unpack("<QI", _read_exact(t.link, 12))
    return cycles, result


def _qemu_pids_for(image: Path) -> list[int]:
    """Live processes whose command line mentions this image (a /proc scan)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes()
            stat = (d / "stat").read_text()
        except OSError:
            continue
        if str(image.resolve()).encode() in cmd and ") Z" not in stat:
            pids.append(int(d.name))
    return pids


def _session(bid: str, image: Path, status: int):
    """Banner, a 256-byte round trip, two work spans, then exit with `status`; returns the counts."""
    with runner.start(bid, image) as t:
        assert t.kind == boards.get_board(bid).run_kind
        assert _banner(t) == f"HKT1 {bid}\n".encode()
        payload = bytes(range(256))
        for chunk in (payload[:255], payload[255:]):
            t.link.write(b"E" + bytes([len(chunk)]) + chunk)
            assert _read_exact(t.link, len(chunk)) == chunk
        c1, r1 = _work(t, 5)
        c2, r2 = _work(t, 5)
        assert r1 == r2 == 0x772C7A08  # the same float/integer work on every board
        counts = t.instruction_counts()
        assert t.instruction_counts() in ([], None)  # only new counts on each call
        t.link.write(b"X" + bytes([status]))
        assert t.wait(20) == status
        proc = t.proc
    assert proc.returncode is not None
    return counts, (c1, c2)


@pytest.mark.parametrize("bid", BOARDS)
def test_round_trip_exit_status_and_deterministic_counts(bid, echo_images):
    image = echo_images(bid)
    counts1, cycles = _session(bid, image, 7)
    counts2, _ = _session(bid, image, 0)
    b = boards.get_board(bid)
    if b.runtime == "host":
        assert counts1 is None
        assert cycles[0] > 0  # clock_gettime ns
    else:
        assert len(counts1) == 2 and counts1[0] == counts1[1] > 0, counts1
        assert counts2 == counts1, (counts1, counts2)
        # The span is work(5): 320 loop iterations; several instructions each.
        assert 320 * 4 < counts1[0] < 320 * 400
    assert _qemu_pids_for(image) == []


@pytest.mark.parametrize("bid", BOARDS)
def test_a_fault_exits_nonzero_instead_of_hanging(bid, echo_images):
    image = echo_images(bid)
    for kind in (0, 1):  # undefined instruction, access to an unmapped address
        t0 = time.monotonic()
        with runner.start(bid, image) as t:
            _banner(t)
            t.link.write(b"F" + bytes([kind]))
            rc = t.wait(15)
            log = t.log()
        assert rc != 0 and rc not in (98, 99), (kind, rc, log)
        assert time.monotonic() - t0 < 15
        if boards.get_board(bid).runtime == "bare-metal":
            assert rc >= 128 and "hk: " in log, (rc, log)  # 128 + exception number, reported
    assert _qemu_pids_for(image) == []


def test_close_reaps_a_target_that_never_exits(echo_images):
    image = echo_images("mps2-an386")
    t = runner.start("mps2-an386", image)
    _banner(t)
    with pytest.raises(runner.TargetError, match="did not exit"):
        t.wait(0.3)
    assert t.returncode is None
    t.close()
    assert t.proc.returncode is not None
    t.close()  # twice is fine
    assert _qemu_pids_for(image) == []


def test_atexit_reaps_qemu_left_open(echo_images, tmp_path):
    image = echo_images("mps2-an386")
    code = ("import sys; from hilkit.host import runner; "
            f"t = runner.start('mps2-an386', {str(image)!r}); print(t.proc.pid, flush=True)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    pid = int(p.stdout.split()[0])
    time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists() or ") Z" in Path(f"/proc/{pid}/stat").read_text()


def test_missing_qemu_binary_is_a_clear_error(echo_images):
    b = boards.get_board("mps2-an386")
    fake = replace(b, qemu=replace(b.qemu, binary="qemu-system-nosucharch"))
    with pytest.raises(qemu.QemuError, match=r"qemu-system-nosucharch not found: run `make setup`"):
        runner.start(fake, echo_images("mps2-an386"))


def test_bad_machine_fails_fast_with_qemus_message(echo_images):
    b = boards.get_board("mps2-an386")
    fake = replace(b, qemu=replace(b.qemu, machine="no-such-machine"))
    t0 = time.monotonic()
    with pytest.raises(qemu.QemuError, match="failed to start"):
        runner.start(fake, echo_images("mps2-an386"))
    assert time.monotonic() - t0 < 10


def test_start_errors(tmp_path):
    with pytest.raises(runner.RunnerError, match="not found"):
        runner.start("mps2-an386", tmp_path / "missing.elf")
    with pytest.raises(boards.BoardError, match="unknown board"):
        runner.start("nope", tmp_path / "x")
    b = boards.get_board("pico")
    (tmp_path / "img").write_bytes(b"\x7fELF")
    with pytest.raises(runner.RunnerError, match="no QEMU twin"):
        runner.start(replace(b, qemu=None), tmp_path / "img")
    with pytest.raises(LinkError):  # a "board" that is not there
        runner.start("pico", tmp_path / "img", port="/dev/hk-no-such-port")


def test_serial_port_runner_speaks_to_a_board_over_a_url(echo_images):
    """--port with a socket:// URL: the same path a real board's USB-serial port takes."""
    image = echo_images("mps2-an386")
    with runner.start("mps2-an386", image) as q:
        url = q.link.url
        assert url.startswith("socket://")
        _banner(q)
        q.link.write(b"E\x03abc")
        assert _read_exact(q.link, 3) == b"abc"
        assert q.instruction_counts() == []


@pytest.mark.parametrize("bid", ["host", "mps2-an386", "rpi4", "rpi3-bm"])
def test_real_firmware_answers_the_protocol(bid, tmp_path):
    """firmware/main.c + a hand-written model: INFO, INFER, and per-inference counts per run."""
    b = boards.get_board(bid)
    if _runnable(b):
        pytest.skip(_runnable(b))
    from hilkit.host.protocol import Client
    image = build.build_firmware(TEST_MODEL, bid, build_dir=tmp_path / bid)
    x = np.array([0.5, -1.0, 2.0, 0.25, -0.5, 3.0, 0.0, 1.5], dtype=np.float32)
    runs = []
    for _ in range(2):
        with runner.start(bid, image) as t:
            c = Client(t.link, timeout=5.0)
            info = c.info()
            assert (info["board"], info["model_hash"], info["n_in"], info["n_out"]) == \
                (bid, "0123456789abcdef", 8, 3)
            r = c.infer(x)
            assert list(r.extra) == [5]  # inputs > 0
            np.testing.assert_allclose(r.outputs, [x.sum(), (np.arange(8) * x).sum(), x.max()], rtol=1e-6)
            runs.append(t.instruction_counts())
    if b.runtime == "host":
        assert runs == [None, None]
    else:
        assert len(runs[0]) == 1 and runs[0] == runs[1] and runs[0][0] > 0


def test_qemu_dies_with_a_killed_host(echo_images):
    """A host process killed outright (no atexit) still takes its QEMU with it."""
    image = echo_images("mps2-an386")
    code = ("import os, signal; from hilkit.host import runner; "
            f"t = runner.start('mps2-an386', {str(image)!r}); print(t.proc.pid, flush=True); "
            "os.kill(os.getpid(), signal.SIGKILL)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    pid = int(p.stdout.split()[0])
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and ") Z" not in Path(f"/proc/{pid}/stat").read_text():
        assert time.monotonic() < deadline, "QEMU outlived its killed host"
        time.sleep(0.05)
