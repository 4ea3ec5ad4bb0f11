"""QEMU command lines for the boards: qemu-user for Linux boards, qemu-system for bare metal.

Every command is built here and nowhere else: the machine and CPU from board.toml, the emulated
UART as a TCP server that waits for the host (so no early byte is lost), semihosting for the exit
status, and the project's instruction-count plugin between the firmware's marker functions."""
from __future__ import annotations

import shutil
import socket
from pathlib import Path

from .errors import HilkitError

MARKERS = ("hk_mark_begin", "hk_mark_end")
PLUGIN_NAME = "hk_insn.so"
PACKAGES = {"qemu-aarch64": "qemu-user", "qemu-arm": "qemu-user",
            "qemu-system-arm": "qemu-system-arm", "qemu-system-aarch64": "qemu-system-arm"}


class QemuError(HilkitError):
    """QEMU is missing, failed to start, or its target did not come up."""


def find_qemu(binary: str) -> str:
    """The full path of a QEMU program, or a QemuError saying how to install it."""
    path = shutil.which(binary)
    if path is None:
        pkg = PACKAGES.get(binary, "qemu")
        raise QemuError(f"{binary} not found: run `make setup` (Debian package {pkg})")
    return path


def plugin_path() -> Path:
    """hk_insn.so, installed next to hilkit.host._kernels (wheel and editable installs)."""
    cands = []
    try:
        from hilkit.host import _kernels
        cands.append(Path(_kernels.__file__).resolve().parent / PLUGIN_NAME)
    except ImportError:
        pass
    import hilkit.host as host_pkg
    cands += [Path(p) / PLUGIN_NAME for p in host_pkg.__path__]
    for c in cands:
        if c.is_file():
            return c
    raise QemuError(f"the instruction-count plugin {PLUGIN_NAME} is not installed: run `make setup`")


def marker_addresses(image: Path) -> tuple[int, int] | None:
    """Entry addresses of hk_mark_begin/hk_mark_end from the image's symbol table (None if absent)."""
    from .elf import symbol_addresses
    syms = symbol_addresses(image, MARKERS)
    if len(syms) != 2:
        return None
    begin, end = syms[MARKERS[0]], syms[MARKERS[1]]
    if begin == end:
        raise QemuError(f"{image}: hk_mark_begin and hk_mark_end share an address (merged by the "
                        "compiler): give them different bodies")
    return begin, end


def plugin_args(image: Path, out: Path) -> list[str] | None:
    """`-plugin` arguments counting instructions between the markers into `out` (None: no markers)."""
    m = marker_addresses(image)
    if m is None:
        return None
    return ["-plugin", f"{plugin_path()},begin={m[0]:#x},end={m[1]:#x},out={out}"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the caller retries if QEMU loses the race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def user_command(board, image: Path, plugin: list[str] | None = None) -> list[str]:
    """qemu-aarch64/qemu-arm for a static Linux program (run it with an empty environment)."""
    q = board.qemu
    cmd = [find_qemu(q.binary)]
    if q.cpu:
        cmd += ["-cpu", q.cpu]
    cmd += list(q.args)
    cmd += plugin or []
    # A fixed argv[0]: the initial stack (and so a few counted instructions) depends on it.
    cmd += ["-0", "hk_firmware", str(image)]
    return cmd


def system_command(board, image: Path, port: int, plugin: list[str] | None = None) -> list[str]:
    """qemu-system-* for a bare-metal image, UART on tcp:127.0.0.1:port (server, waits for us)."""
    q = board.qemu
    cmd = [find_qemu(q.binary), "-M", q.machine]
    if q.cpu:
        cmd += ["-cpu", q.cpu]
    cmd += ["-display", "none", "-monitor", "none", "-parallel", "none",
            "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on",
            "-semihosting-config", "enable=on,target=native",
            "-kernel", str(image)]
    cmd += list(q.args)
    cmd += plugin or []
    return cmd
