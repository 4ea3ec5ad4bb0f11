"""Serial port discovery: what is plugged in, which board it probably is, and `--port auto`.

Ports come from pyserial's `serial.tools.list_ports`. The board guess is only a guess, from the
USB VID:PID of the adapter: a Pico's own USB (Pico SDK stdio), the Raspberry Pi Debug Probe
(whose UART is wired to a Pico), Arm's DAPLink/MPS boards, or a generic USB-UART cable (a
Raspberry Pi's GPIO UART). `resolve_port("auto", board)` picks the only candidate and refuses when
there are none or several, so a test never talks to the wrong board."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import HilkitError

AUTO = "auto"


class PortError(HilkitError):
    """No serial port, several candidates for `--port auto`, or a port that is busy."""


# VID:PID -> (what the adapter is, boards it is usually attached to). Sources: Raspberry Pi's
# USB PID list (github.com/raspberrypi/usb-pid), the adapters' vendor IDs (FTDI 0403, Silicon Labs
# 10c4, WCH 1a86, Prolific 067b, Arm/DAPLink 0d28).
KNOWN: dict[tuple[int, int], tuple[str, tuple[str, ...]]] = {
    (0x2E8A, 0x000A): ("Pico SDK USB stdio (RP2040)", ("pico",)),
    (0x2E8A, 0x0009): ("Pico SDK USB stdio (RP2350)", ("pico2",)),
    (0x2E8A, 0x000C): ("Raspberry Pi Debug Probe UART", ("pico", "pico2")),
    (0x2E8A, 0x0004): ("Picoprobe UART", ("pico", "pico2")),
    (0x0D28, 0x0204): ("Arm DAPLink / CMSIS-DAP UART", ("mps2-an386", "mps2-an500", "mps3-an547")),
    (0x0403, 0x6011): ("FTDI FT4232H (4 UARTs)", ("mps3-an547",)),
    (0x0403, 0x6001): ("FTDI FT232R USB-UART cable", ("rpi3-bm", "rpi4", "rpi-zero2", "rpi2")),
    (0x0403, 0x6015): ("FTDI FT231X USB-UART cable", ("rpi3-bm", "rpi4", "rpi-zero2", "rpi2")),
    (0x10C4, 0xEA60): ("Silicon Labs CP210x USB-UART cable", ("rpi3-bm", "rpi4", "rpi-zero2", "rpi2")),
    (0x1A86, 0x7523): ("WCH CH340 USB-UART cable", ("rpi3-bm", "rpi4", "rpi-zero2", "rpi2")),
    (0x067B, 0x2303): ("Prolific PL2303 USB-UART cable", ("rpi3-bm", "rpi4", "rpi-zero2", "rpi2")),
}


@dataclass(frozen=True)
class PortInfo:
    device: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    description: str
    manufacturer: str | None
    adapter: str | None            # what the VID:PID says the adapter is
    boards: tuple[str, ...]        # boards usually behind such an adapter (a guess)

    @property
    def vid_pid(self) -> str | None:
        return None if self.vid is None else f"{self.vid:04x}:{self.pid or 0:04x}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["vid_pid"] = self.vid_pid
        d["boards"] = list(self.boards)
        return d


def _info(p) -> PortInfo:
    vid, pid = getattr(p, "vid", None), getattr(p, "pid", None)
    adapter, boards = KNOWN.get((vid, pid), (None, ())) if vid is not None else (None, ())
    desc = getattr(p, "description", None) or ""
    return PortInfo(device=p.device, vid=vid, pid=pid, serial_number=getattr(p, "serial_number", None),
                    description="" if desc == "n/a" else desc, manufacturer=getattr(p, "manufacturer", None),
                    adapter=adapter, boards=tuple(boards))


def list_ports(include_non_usb: bool = False) -> list[PortInfo]:
    """Serial ports on this machine, sorted by device name. Ports without a USB VID:PID (built-in
    ttyS*, ttyAMA*) are left out unless include_non_usb."""
    from serial.tools import list_ports as lp
    out = [_info(p) for p in lp.comports()]
    if not include_non_usb:
        out = [p for p in out if p.vid is not None]
    return sorted(out, key=lambda p: p.device)


def candidates(board_id: str | None, ports: list[PortInfo] | None = None) -> list[PortInfo]:
    """Ports that may be this board: those whose adapter is known for it; with no board, every
    USB serial port."""
    ports = list_ports() if ports is None else ports
    if board_id is None:
        return list(ports)
    return [p for p in ports if board_id in p.boards]


def resolve_port(port: str | None, board_id: str | None = None, ports: list[PortInfo] | None = None) -> str | None:
    """`auto` -> the device of the only candidate port for this board; anything else unchanged.

    Refuses (PortError) when no port or several ports match, naming them, so that an unattended
    run never picks a board at random."""
    if port is None or port != AUTO:
        return port
    found = candidates(board_id, ports)
    what = f"board {board_id}" if board_id else "a board"
    if not found:
        every = list_ports() if ports is None else ports
        seen = ", ".join(f"{p.device} ({p.vid_pid})" for p in every) or "none"
        raise PortError(f"--port auto: no serial port looks like {what} (USB serial ports seen: {seen}); "
                        "give --port DEV")
    if len(found) > 1:
        names = ", ".join(f"{p.device} ({p.vid_pid} {p.adapter or p.description}"
                          f"{', serial ' + p.serial_number if p.serial_number else ''})" for p in found)
        raise PortError(f"--port auto: {len(found)} ports could be {what}: {names}; give --port DEV")
    return found[0].device


def check_free(device: str, baud: int = 115200) -> None:
    """Open the port exclusively and close it again: PortError if it is missing or held by another
    process (a terminal, another test worker). URLs (socket://, rfc2217://) are not checked."""
    if "://" in device:
        return
    import serial
    try:
        s = serial.Serial(device, baudrate=baud or 115200, timeout=0, exclusive=True)
    except serial.SerialException as e:
        text = str(e)
        if "lock" in text.lower() or "busy" in text.lower() or "Errno 16" in text:
            raise PortError(f"port {device} is busy: another program holds it (close the terminal or "
                            "test that has it open)") from None
        raise PortError(f"cannot open port {device}: {text}") from None
    except (OSError, ValueError) as e:
        raise PortError(f"cannot open port {device}: {e}") from None
    s.close()
