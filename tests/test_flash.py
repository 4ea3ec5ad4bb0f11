"""`hilkit flash`: the exact probe command lines (--dry-run), running them bounded in time, the
error paths (no probe tool, no drive, busy port, unknown board) exiting 2 with one line, the
check that the board answers with the flashed model, and the SD card / ssh / QEMU ways."""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import struct
import subprocess
import sys
import tty
from pathlib import Path

import pytest
import serial

from hilkit.host import flash as F
from hilkit.host.cli import main as cli
from hilkit.host.uf2 import crc32_mpeg2

sys.path.insert(0, str(Path(__file__).resolve().parent / "c"))
import protobuild as pb  # noqa: E402

PROTO_HASH = "0123456789abcdef"


def tiny_elf(path: Path, segments) -> Path:
    """A minimal little-endian ELF32 (EM_ARM) with one PT_LOAD per (paddr, bytes)."""
    n = len(segments)
    phoff, data_off = 52, 52 + 32 * n
    head = b"\x7fELF" + bytes([1, 1, 1]) + bytes(9)
    head += struct.pack("<HHIIIIIHHHHHH", 2, 40, 1, segments[0][0], phoff, 0, 0x5000400, 52, 32, n, 40, 0, 0)
    ph, blob, off = b"", b"", data_off
    for addr, data in segments:
        ph += struct.pack("<8I", 1, off, addr, addr, len(data), len(data), 5, 4)
        blob += data
        off += len(data)
    path.write_bytes(head + ph + blob)
    return path


def compiled_dir(root: Path, board: str, image_bytes: bytes | None = None, *, elf_at: int | None = None,
                 model_hash: str = PROTO_HASH) -> Path:
    """A directory shaped like `hilkit compile`'s output, with a stand-in image."""
    d = root / f"compiled-{board}"
    (d / "build").mkdir(parents=True)
    img = d / "build" / "hk_firmware"
    if elf_at is not None:   # a valid RP2040 boot2 (so no boot ROM warning), then 256 more bytes
        body = bytes(range(252))
        tiny_elf(img, [(elf_at, body + struct.pack("<I", crc32_mpeg2(body)) + bytes(range(256)))])
    else:
        img.write_bytes(image_bytes or b"\x7fELF-not-really")
    (d / "build" / "hk_firmware.bin").write_bytes(b"BIN!" * 8)
    (d / "hilkit.json").write_text(json.dumps({"model": "proto-test", "model_hash": model_hash, "board": board,
                                               "exp": "libm", "image": "build/hk_firmware"}))
    return d


@pytest.fixture
def pico_dir(tmp_path):
    return compiled_dir(tmp_path, "pico", elf_at=0x10000000)


@pytest.fixture
def no_drives(monkeypatch):
    monkeypatch.setattr(F, "mount_points", lambda: [])


def _one_error_line(capsys, after_running: bool = False) -> str:
    """The one error line (after the "running: CMD" progress line when a tool was started)."""
    err = capsys.readouterr().err.strip().splitlines()
    if after_running:
        assert len(err) == 2 and err[0].startswith("running: "), err
        return err[1]
    assert len(err) == 1, err
    return err[0]


# ------------------------------------------------------------------ dry runs: exact commands
def test_dry_run_pyocd(pico_dir, capsys):
    assert cli(["flash", str(pico_dir), "--board", "pico", "--probe", "pyocd", "--dry-run"]) == 0
    image = (pico_dir / "build" / "hk_firmware").resolve()
    assert capsys.readouterr().out == f"pyocd load --target rp2040 --format elf {image}\n"


def test_dry_run_openocd(pico_dir, capsys):
    assert cli(["flash", str(pico_dir), "--board", "pico", "--probe", "openocd", "--dry-run"]) == 0
    image = (pico_dir / "build" / "hk_firmware").resolve()
    assert capsys.readouterr().out == (
        "openocd -f interface/cmsis-dap.cfg -f target/rp2040.cfg -c 'adapter speed 5000' "
        f"-c 'program {{{image}}} verify reset exit'\n")


def test_dry_run_raw_binary_and_pico2(tmp_path, capsys):
    b = tmp_path / "app.bin"
    b.write_bytes(b"\1" * 64)
    assert cli(["flash", str(b), "--board", "pico", "--probe", "pyocd", "--base", "0x10000000", "--dry-run"]) == 0
    assert capsys.readouterr().out == (f"pyocd load --target rp2040 --format bin --base-address 0x10000000 "
                                       f"{b.resolve()}\n")
    assert cli(["flash", str(b), "--board", "pico2", "--probe", "openocd", "--base", "0x10000000",
                "--dry-run"]) == 0
    assert capsys.readouterr().out == (
        "openocd -f interface/cmsis-dap.cfg -f target/rp2350.cfg -c 'adapter speed 5000' "
        f"-c 'program {{{b.resolve()}}} 0x10000000 verify reset exit'\n")


def test_dry_run_port_and_uf2_drive(pico_dir, tmp_path, monkeypatch, capsys):
    drive = tmp_path / "RPI-RP2"
    drive.mkdir()
    (drive / "INFO_UF2.TXT").write_text("Board-ID: RPI-RP2\n")
    monkeypatch.setattr(F, "mount_points", lambda: [drive])
    assert cli(["flash", str(pico_dir), "--board", "pico", "--port", "/dev/ttyACM7", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    uf2 = pico_dir / "build" / "hk_firmware.uf2"
    assert out == [f"# write {uf2} (2 blocks, family rp2040 0xe48bff56)",
                   shlex.join(["cp", str(uf2), str(drive / "hilkit.uf2")]),
                   f"# then: INFO on /dev/ttyACM7 at 115200 baud must report model {PROTO_HASH}"]
    assert not uf2.exists() and not (drive / "hilkit.uf2").exists()   # a dry run writes nothing


def test_dry_run_ssh_and_sdcard(tmp_path, capsys):
    rpi4 = compiled_dir(tmp_path, "rpi4")
    assert cli(["flash", str(rpi4), "--board", "rpi4", "--ssh", "pi@raspberrypi", "--dry-run"]) == 0
    img = (rpi4 / "build" / "hk_firmware").resolve()
    out = capsys.readouterr().out.splitlines()
    opts = "-o BatchMode=yes -o ConnectTimeout=10 -o ServerAliveInterval=5 -o ServerAliveCountMax=3"
    name = f"hk_firmware-rpi4-{hashlib.sha256(img.read_bytes()).hexdigest()[:16]}"
    assert out == [f"scp {opts} {img} pi@raspberrypi:{name}.part",
                   f"ssh {opts} -T pi@raspberrypi 'chmod 755 {name}.part && mv -f {name}.part {name}'",
                   f"ssh {opts} -T pi@raspberrypi ./{name}",
                   f"# INFO over its stdin/stdout must report model {PROTO_HASH}"]
    bm = compiled_dir(tmp_path, "rpi3-bm")
    card = tmp_path / "boot"
    card.mkdir()
    assert cli(["flash", str(bm), "--board", "rpi3-bm", "--drive", str(card), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == shlex.join(["cp", str(bm / "build" / "hk_firmware.bin"), str(card / "hilkit8.img")])
    assert out[1] == f"# add to {card / 'config.txt'}: arm_64bit=1  kernel=hilkit8.img  enable_uart=1  dtoverlay=disable-bt"
    assert not (card / "hilkit8.img").exists()


# ------------------------------------------------------------------ error paths: exit 2, one line
@pytest.mark.parametrize("args, message", [
    (["--board", "nope"], "hilkit: error: unknown board 'nope': valid boards are "),
    (["--board", "host"], "hilkit: error: board host runs as a local process: there is nothing to flash"),
    (["--board", "pico2"], "hilkit: error: "),   # compiled for pico, not pico2
    (["--board", "pico", "--drive", "{tmp}/nodrive"], "hilkit: error: drive {tmp}/nodrive is not a mounted folder"),
    (["--board", "pico"], "hilkit: error: no RPI-RP2 drive found (looked for INFO_UF2.TXT in the mounted drives)"),
    (["--board", "pico", "--drive", "{tmp}"], "hilkit: error: {tmp} is not a UF2 boot drive (no INFO_UF2.TXT)"),
])
def test_errors_exit_2(pico_dir, tmp_path, no_drives, capsys, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert cli(["flash", str(pico_dir), *args]) == 2
    assert _one_error_line(capsys).startswith(message.replace("{tmp}", str(tmp_path)))


def test_no_probe_tool_exits_2(pico_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert cli(["flash", str(pico_dir), "--board", "pico", "--probe", "pyocd"]) == 2
    assert _one_error_line(capsys) == ("hilkit: error: pyocd not found: install it (pip install pyocd) "
                                       "or use --dry-run to see the command")
    assert cli(["flash", str(pico_dir), "--board", "pico", "--probe", "openocd"]) == 2
    assert _one_error_line(capsys).startswith("hilkit: error: openocd not found: install it (apt-get install openocd")


def test_no_probe_recipe_and_no_sd_card(tmp_path, capsys):
    an386 = compiled_dir(tmp_path, "mps2-an386")
    assert cli(["flash", str(an386), "--board", "mps2-an386", "--probe", "openocd", "--dry-run"]) == 2
    assert _one_error_line(capsys).startswith("hilkit: error: no OpenOCD recipe for board mps2-an386")
    bm = compiled_dir(tmp_path, "rpi3-bm")
    assert cli(["flash", str(bm), "--board", "rpi3-bm"]) == 2
    assert _one_error_line(capsys) == ("hilkit: error: rpi3-bm boots from an SD card: give --drive PATH of its "
                                       "mounted boot partition")
    assert cli(["flash", str(bm), "--board", "rpi3-bm", "--drive", str(tmp_path)]) == 2
    assert "is not a Raspberry Pi boot partition" in _one_error_line(capsys)


# ------------------------------------------------------------------ running the probe tool
def fake_tool(bindir: Path, name: str, body: str) -> Path:
    bindir.mkdir(exist_ok=True)
    t = bindir / name
    t.write_text(f"#!{sys.executable}\nimport sys, time, json, os\n{body}\n")
    t.chmod(0o755)
    return t


def test_probe_tool_runs_the_printed_command(pico_dir, tmp_path, monkeypatch, capsys):
    record = tmp_path / "argv.json"
    fake_tool(tmp_path / "bin", "pyocd", f"json.dump(sys.argv[1:], open({str(record)!r}, 'w'))")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert cli(["flash", str(pico_dir), "--board", "pico", "--probe", "pyocd", "--dry-run"]) == 0
    printed = shlex.split(capsys.readouterr().out)
    assert cli(["flash", str(pico_dir), "--board", "pico", "--probe", "pyocd"]) == 0
    assert json.loads(record.read_text()) == printed[1:]


def test_probe_tool_failure_and_timeout(pico_dir, tmp_path, monkeypatch, capsys):
    bindir = tmp_path / "bin"
    fake_tool(bindir, "openocd", "print('Info : CMSIS-DAP: SWD supported'); print('Error: unable to find a "
                                 "matching CMSIS-DAP device'); sys.exit(1)")
    fake_tool(bindir, "pyocd", "time.sleep(30)")
    monkeypatch.setenv("PATH", str(bindir))
    assert cli(["flash", str(pico_dir), "--board", "pico", "--probe", "openocd"]) == 2
    assert _one_error_line(capsys, True) == ("hilkit: error: openocd failed (exit 1): Info : CMSIS-DAP: SWD supported | "
                                       "Error: unable to find a matching CMSIS-DAP device")
    monkeypatch.setattr(F, "PROBE_TIMEOUT_S", 0.5)
    assert cli(["flash", str(pico_dir), "--board", "pico", "--probe", "pyocd"]) == 2
    assert _one_error_line(capsys, True) == ("hilkit: error: pyocd did not finish within 0.5 s and was stopped (is the "
                                       "probe connected and the board powered?)")


# ------------------------------------------------------------------ the port: busy, and checked after
@pytest.fixture
def pty_board(tmp_path):
    """A pty whose far end is the host build of the firmware with the protocol test model: to
    the host it looks like a board on a USB-serial port."""
    fw = pb.build_firmware(tmp_path / "hk_fw")
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    proc = subprocess.Popen([str(fw)], stdin=master, stdout=master, stderr=subprocess.DEVNULL)
    yield path
    proc.kill()
    proc.wait()
    os.close(slave)
    os.close(master)


def test_busy_port_exits_2_before_flashing(pico_dir, tmp_path, monkeypatch, pty_board, capsys):
    record = tmp_path / "ran"
    fake_tool(tmp_path / "bin", "pyocd", f"open({str(record)!r}, 'w').write('ran')")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    holder = serial.Serial(pty_board, 115200, timeout=0, exclusive=True)
    try:
        assert cli(["flash", str(pico_dir), "--board", "pico", "--probe", "pyocd", "--port", pty_board]) == 2
    finally:
        holder.close()
    assert _one_error_line(capsys) == (f"hilkit: error: port {pty_board} is busy: another program holds it "
                                       "(close the terminal or test that has it open)")
    assert not record.exists()           # nothing was flashed


def test_board_must_answer_with_the_flashed_model(tmp_path, monkeypatch, pty_board, capsys):
    fake_tool(tmp_path / "bin", "pyocd", "pass")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    good = compiled_dir(tmp_path / "a", "pico", elf_at=0x10000000)
    assert cli(["flash", str(good), "--board", "pico", "--probe", "pyocd", "--port", pty_board]) == 0
    assert f"pico on {pty_board} answers: model {PROTO_HASH}, firmware 0.1.0" in capsys.readouterr().err
    other = compiled_dir(tmp_path / "b", "pico", elf_at=0x10000000, model_hash="fedcba9876543210")
    assert cli(["flash", str(other), "--board", "pico", "--probe", "pyocd", "--port", pty_board]) == 1
    assert f"runs model {PROTO_HASH}, not fedcba9876543210" in capsys.readouterr().err


# ------------------------------------------------------------------ copies
def test_sd_card_copy(tmp_path, capsys):
    bm = compiled_dir(tmp_path, "rpi3-bm")
    card = tmp_path / "boot"
    card.mkdir()
    (card / "start.elf").write_bytes(b"x")
    (card / "config.txt").write_text("arm_64bit=1\nenable_uart=1\n")
    assert cli(["flash", str(bm), "--board", "rpi3-bm", "--drive", str(card)]) == 0
    assert (card / "hilkit8.img").read_bytes() == b"BIN!" * 8
    assert not list(card.glob("*.tmp"))
    assert f"add to {card / 'config.txt'}: kernel=hilkit8.img  dtoverlay=disable-bt" in capsys.readouterr().err


@pytest.mark.qemu
def test_qemu_board_is_loaded_and_answers(tmp_path, capsys):
    from test_uf2 import build_compiled_dir
    d = build_compiled_dir(tmp_path, "mps2-an386")
    assert cli(["flash", str(d), "--board", "mps2-an386"]) == 0
    assert f"answers INFO with model {PROTO_HASH}" in capsys.readouterr().err
    assert cli(["flash", str(d), "--board", "mps2-an386", "--dry-run"]) == 0
    line = capsys.readouterr().out.strip()
    assert "-M mps2-an386" in line and line.endswith(f"-kernel {(d / 'build' / 'hk_firmware').resolve()}")


def test_linux_board_over_ssh(tmp_path, monkeypatch, capsys):
    """scp then ssh, both stand-ins: scp copies into a folder playing the Pi's home, ssh runs the
    program from there with its stdin/stdout as the link (the host build of the firmware)."""
    home = tmp_path / "pi-home"
    home.mkdir()
    bindir = tmp_path / "bin"
    fake_tool(bindir, "scp", f"import shutil; shutil.copy(sys.argv[-2], os.path.join({str(home)!r}, "
                             "sys.argv[-1].split(':', 1)[1]))")
    fake_tool(bindir, "ssh", f"os.chdir({str(home)!r}); os.execve('/bin/sh', ['sh', '-c', sys.argv[-1]], "
                             "{'PATH': '/usr/bin:/bin'})")
    d = compiled_dir(tmp_path, "rpi4")
    pb.build_firmware(d / "build" / "hk_firmware")          # runs here, as the Pi would run its build
    other = compiled_dir(tmp_path / "x", "rpi4", model_hash="fedcba9876543210")
    pb.build_firmware(other / "build" / "hk_firmware")
    monkeypatch.setenv("PATH", str(bindir))
    assert cli(["flash", str(d), "--board", "rpi4", "--ssh", "pi@raspberrypi"]) == 0
    [copied] = home.glob("hk_firmware-rpi4-*")
    assert copied.read_bytes() == (d / "build" / "hk_firmware").read_bytes()
    assert f"rpi4 at pi@raspberrypi answers: model {PROTO_HASH}" in capsys.readouterr().err
    assert cli(["flash", str(other), "--board", "rpi4", "--ssh", "pi@raspberrypi"]) == 1
    assert f"runs model {PROTO_HASH}, not fedcba9876543210" in capsys.readouterr().err
    assert cli(["flash", str(d), "--board", "rpi4", "--ssh=-oProxyCommand=x"]) == 2
    assert "is not USER@HOST[:PORT]" in capsys.readouterr().err
