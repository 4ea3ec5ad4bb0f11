"""Port discovery: VID:PID and board guesses from pyserial's list, `--port auto` refusing to guess,
and a busy port (held by another process) reported as such."""
from __future__ import annotations

import json
import os
import tty

import pytest
import serial
from serial.tools import list_ports_common

from hilkit.host import ports as P
from hilkit.host.cli import main as cli


def _port(device, vid=None, pid=None, serial_number=None, description="n/a"):
    p = list_ports_common.ListPortInfo(device, skip_link_detection=True)
    p.vid, p.pid, p.serial_number, p.description = vid, pid, serial_number, description
    return p


FAKE = [_port("/dev/ttyACM1", 0x2E8A, 0x000C, "E6614C311B8C2F35", "Debug Probe (CMSIS-DAP)"),
        _port("/dev/ttyS0"),
        _port("/dev/ttyUSB0", 0x0403, 0x6001, "A50285BI", "FT232R USB UART"),
        _port("/dev/ttyACM0", 0x2E8A, 0x000A, "E660583883265027", "Board CDC")]


@pytest.fixture
def fake_ports(monkeypatch):
    from serial.tools import list_ports
    monkeypatch.setattr(list_ports, "comports", lambda *a, **k: list(FAKE))


def test_list_ports_guesses_boards(fake_ports):
    rows = P.list_ports()
    assert [r.device for r in rows] == ["/dev/ttyACM0", "/dev/ttyACM1", "/dev/ttyUSB0"]
    acm0, acm1, usb0 = rows
    assert (acm0.vid_pid, acm0.serial_number, acm0.boards) == ("2e8a:000a", "E660583883265027", ("pico",))
    assert acm1.adapter == "Raspberry Pi Debug Probe UART" and acm1.boards == ("pico", "pico2")
    assert usb0.vid_pid == "0403:6001" and "rpi3-bm" in usb0.boards
    assert [r.device for r in P.list_ports(include_non_usb=True)][-1] == "/dev/ttyUSB0"
    assert "/dev/ttyS0" in [r.device for r in P.list_ports(include_non_usb=True)]


def test_ports_command_json(fake_ports, capsys):
    assert cli(["ports", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0] == {"device": "/dev/ttyACM0", "vid": 0x2E8A, "pid": 0x000A, "serial_number": "E660583883265027",
                       "description": "Board CDC", "manufacturer": None, "adapter": "Pico SDK USB stdio (RP2040)",
                       "boards": ["pico"], "vid_pid": "2e8a:000a"}
    assert cli(["ports"]) == 0
    table = capsys.readouterr().out
    assert "/dev/ttyUSB0" in table and "0403:6001" in table and "A50285BI" in table


def test_port_auto_picks_the_only_candidate(fake_ports):
    assert P.resolve_port("auto", "pico2") == "/dev/ttyACM1"
    assert P.resolve_port("/dev/ttyXYZ", "pico") == "/dev/ttyXYZ"     # anything else is left alone
    assert P.resolve_port(None, "pico") is None


def test_port_auto_refuses_when_ambiguous(fake_ports):
    with pytest.raises(P.PortError) as e:
        P.resolve_port("auto", "pico")
    msg = str(e.value)
    assert "2 ports could be board pico" in msg and "/dev/ttyACM0" in msg and "/dev/ttyACM1" in msg
    with pytest.raises(P.PortError, match="3 ports could be a board"):
        P.resolve_port("auto", None)
    with pytest.raises(P.PortError, match="no serial port looks like board mps3-an547"):
        P.resolve_port("auto", "mps3-an547")


def test_flash_port_auto_ambiguous_exits_2(fake_ports, tmp_path, capsys):
    img = tmp_path / "app.bin"
    img.write_bytes(b"\0" * 16)
    rc = cli(["flash", str(img), "--board", "pico", "--base", "0x10000000", "--probe", "pyocd", "--port", "auto",
              "--dry-run"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hilkit: error: --port auto: 2 ports could be board pico")


@pytest.fixture
def pty_path():
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    yield path
    os.close(slave)
    os.close(master)


def test_busy_port_is_reported(pty_path):
    holder = serial.Serial(pty_path, 115200, timeout=0, exclusive=True)
    try:
        with pytest.raises(P.PortError, match=f"port {pty_path} is busy"):
            P.check_free(pty_path)
    finally:
        holder.close()
    P.check_free(pty_path)          # free again
    with pytest.raises(P.PortError, match="cannot open port /dev/does-not-exist"):
        P.check_free("/dev/does-not-exist")
