"""Boards as data: every `boards/<id>/board.toml` loaded, validated and exposed as a `Board`.

A board says what CPU it has and how to build for it (toolchain, flags, board-layer files, linker
script), how it runs (host process, Linux user program, bare metal; QEMU machine if any), its real
memory sizes and clock, how it is flashed and linked, and its energy model with the sources of
those figures. Where the QEMU machine only runs a twin of the board (pico, pico2), a [hardware]
table describes the real board's image (`Board.hardware`, built by `hilkit flash`)."""
from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import HilkitError

RUNTIMES = ("host", "linux-user", "bare-metal")
TOOLCHAINS = ("host-gcc", "aarch64-linux-gnu", "arm-linux-gnueabihf", "arm-none-eabi", "aarch64-picolibc")
FLASH_METHODS = ("none", "qemu", "copy", "sdcard", "uf2")


class BoardError(HilkitError):
    """An unknown board id or an invalid board.toml."""


@dataclass(frozen=True)
class QemuSpec:
    binary: str                      # qemu-aarch64, qemu-arm, qemu-system-arm, qemu-system-aarch64
    machine: str | None = None       # -M for qemu-system; None for qemu-user
    cpu: str | None = None           # -cpu (None: the machine's default)
    args: tuple[str, ...] = ()       # extra arguments

    @property
    def system(self) -> bool:
        return self.binary.startswith("qemu-system-")


@dataclass(frozen=True)
class LinkEnergy:
    """Sending bytes off the board over one link (MEANet offload): the power drawn while sending
    and the bit rate, so a byte costs mw * bits_per_byte / bps and takes bits_per_byte / bps."""
    name: str                        # uart | ble | wifi
    mw: float
    bps: float
    bits_per_byte: int = 8           # 10 on a UART (8N1: start and stop bits)

    @property
    def nj_per_byte(self) -> float:
        return self.mw * self.bits_per_byte / self.bps * 1e6

    def seconds(self, n_bytes: float) -> float:
        return n_bytes * self.bits_per_byte / self.bps

    def energy_uj(self, n_bytes: float) -> float:
        return n_bytes * self.nj_per_byte * 1e-3


@dataclass(frozen=True)
class Board:
    id: str
    name: str
    cpu: str
    runtime: str                     # host | linux-user | bare-metal
    toolchain: str                   # boards/cmake/<toolchain>.cmake
    cflags: tuple[str, ...]
    ldflags: tuple[str, ...]
    clock_mhz: float
    flash_bytes: int | None          # of the real board; None = not limited
    ram_bytes: int | None
    qemu: QemuSpec | None
    flash_method: str
    baud: int
    active_mw: float | None
    cpi: float
    sources: tuple[str, ...]         # where the clock/power/memory figures come from
    files: tuple[str, ...]           # board-layer sources, relative to boards/
    linker_script: str | None        # relative to the board's folder
    defines: dict = field(default_factory=dict, compare=False, hash=False)
    image_formats: tuple[str, ...] = ()   # extra outputs beside the ELF: "bin"
    dir: Path | None = field(default=None, compare=False)
    link_energy: dict = field(default_factory=dict, compare=False, hash=False)  # name -> LinkEnergy
    link_energy_sources: tuple[str, ...] = ()
    # [hardware]: the image for the real board when the QEMU machine above is only a twin (pico, pico2).
    hardware: Board | None = field(default=None, compare=False, hash=False, repr=False)
    variant: str = ""                # "hw" for that image: built in build/<id>-hw
    post_link: str | None = None     # a script (relative to boards/) run on the linked ELF

    @property
    def build_name(self) -> str:
        """The build folder's name: the id, plus the variant (pico-hw) for a hardware image."""
        return f"{self.id}-{self.variant}" if self.variant else self.id

    @property
    def can_emulate(self) -> bool:
        """True when the board has a QEMU twin that runs its firmware image."""
        return self.qemu is not None

    @property
    def run_kind(self) -> str:
        """How `runner.start` runs it by default: host, qemu-user or qemu-system."""
        if self.runtime == "host":
            return "host"
        if self.qemu is None:
            return "serial"
        return "qemu-system" if self.qemu.system else "qemu-user"

    def summary(self) -> dict:
        """A JSON-able row for `hilkit boards`."""
        q = cmd = None
        if self.qemu is not None:
            cmd = " ".join([self.qemu.binary] + (["-M", self.qemu.machine] if self.qemu.machine else [])
                           + (["-cpu", self.qemu.cpu] if self.qemu.cpu else []))
            q = self.qemu.machine if self.qemu.system else f"{self.qemu.binary} {self.qemu.cpu or ''}".strip()
        return {"id": self.id, "name": self.name, "cpu": self.cpu, "runtime": self.runtime,
                "toolchain": self.toolchain, "flash_bytes": self.flash_bytes, "ram_bytes": self.ram_bytes,
                "clock_mhz": self.clock_mhz, "qemu": q, "qemu_command": cmd,
                "qemu_twin": q is not None and self.hardware is not None,  # QEMU runs a stand-in image
                "flash": self.flash_method, "baud": self.baud,
                "active_mw": self.active_mw, "cpi": self.cpi, "sources": list(self.sources),
                "link_energy": {k: {"mw": v.mw, "bps": v.bps, "nj_per_byte": round(v.nj_per_byte, 3)}
                                for k, v in self.link_energy.items()}}


def boards_dir() -> Path:
    from hilkit.codegen.build import resource_dir
    return resource_dir("boards")


def _req(d: dict, key: str, typ, where: str):
    if key not in d:
        raise BoardError(f"{where}: missing '{key}'")
    v = d[key]
    if typ is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if not isinstance(v, typ) or isinstance(v, bool):
        raise BoardError(f"{where}: '{key}' must be {typ.__name__}, not {type(v).__name__}")
    return v


def _str_list(d: dict, key: str, where: str) -> tuple[str, ...]:
    v = d.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise BoardError(f"{where}: '{key}' must be a list of strings")
    return tuple(v)


def _opt_size(mem: dict, key: str, where: str) -> int | None:
    if key not in mem:
        return None
    v = mem[key]
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise BoardError(f"{where}: memory.{key} must be a positive integer (bytes)")
    return v


def parse_board(path: Path) -> Board:
    """Load and validate one board.toml."""
    where = str(path)
    try:
        d = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise BoardError(f"{where}: {e}") from None
    bid = _req(d, "id", str, where)
    if bid != path.parent.name:
        raise BoardError(f"{where}: id '{bid}' does not match its folder '{path.parent.name}'")
    runtime = _req(d, "runtime", str, where)
    if runtime not in RUNTIMES:
        raise BoardError(f"{where}: runtime must be one of {', '.join(RUNTIMES)}")
    toolchain = _req(d, "toolchain", str, where)
    if toolchain not in TOOLCHAINS:
        raise BoardError(f"{where}: toolchain must be one of {', '.join(TOOLCHAINS)}")
    clock = _req(d, "clock_mhz", float, where)
    if clock <= 0:
        raise BoardError(f"{where}: clock_mhz must be positive")
    sources = _str_list(d, "sources", where)
    if not sources:
        raise BoardError(f"{where}: 'sources' must cite where the clock/power figures come from")
    mem = d.get("memory", {})
    flash_b, ram_b = _opt_size(mem, "flash_bytes", where), _opt_size(mem, "ram_bytes", where)
    if runtime == "bare-metal" and ram_b is None:
        raise BoardError(f"{where}: a bare-metal board needs memory.ram_bytes")
    q = d.get("qemu")
    qemu = None
    if q is not None:
        binary = _req(q, "binary", str, where + " [qemu]")
        if not binary.startswith("qemu-"):
            raise BoardError(f"{where}: qemu.binary must name a QEMU program")
        qemu = QemuSpec(binary, q.get("machine"), q.get("cpu"), _str_list(q, "args", where + " [qemu]"))
        if qemu.system and not qemu.machine:
            raise BoardError(f"{where}: qemu.machine is needed with {binary}")
        if runtime == "linux-user" and qemu.system:
            raise BoardError(f"{where}: a linux-user board runs under qemu-user, not {binary}")
    if runtime == "bare-metal" and qemu is not None and not qemu.system:
        raise BoardError(f"{where}: a bare-metal board runs under qemu-system-*")
    b = d.get("build", {})
    files = _str_list(b, "files", where + " [build]")
    root = path.parent.parent
    for f in files:
        if not (root / f).is_file() and f != "common/board_linux.c":
            raise BoardError(f"{where}: build file {f} not found under {root}")
    lds = b.get("linker_script")
    if runtime == "bare-metal":
        if not isinstance(lds, str) or not (path.parent / lds).is_file():
            raise BoardError(f"{where}: a bare-metal board needs build.linker_script (a file in its folder)")
    defines = b.get("defines", {})
    if not isinstance(defines, dict) or not all(isinstance(v, (str, int)) for v in defines.values()):
        raise BoardError(f"{where}: build.defines must map names to strings or integers")
    image = b.get("image")
    formats = () if image is None else (image,) if isinstance(image, str) else tuple(image)
    flash = d.get("flash", {}).get("method", "none")
    if flash not in FLASH_METHODS:
        raise BoardError(f"{where}: flash.method must be one of {', '.join(FLASH_METHODS)}")
    baud = d.get("link", {}).get("baud", 115200)
    if not isinstance(baud, int) or baud < 0:
        raise BoardError(f"{where}: link.baud must be a non-negative integer")
    e = d.get("energy", {})
    active = e.get("active_mw")
    if active is not None and (not isinstance(active, (int, float)) or active <= 0):
        raise BoardError(f"{where}: energy.active_mw must be positive")
    cpi = _req(e, "cpi", float, where + " [energy]")
    if cpi <= 0:
        raise BoardError(f"{where}: energy.cpi must be positive")
    board = Board(id=bid, name=_req(d, "name", str, where), cpu=_req(d, "cpu", str, where), runtime=runtime,
                  toolchain=toolchain, cflags=_str_list(d, "cflags", where), ldflags=_str_list(d, "ldflags", where),
                  clock_mhz=clock, flash_bytes=flash_b, ram_bytes=ram_b, qemu=qemu, flash_method=flash,
                  baud=baud, active_mw=None if active is None else float(active), cpi=cpi, sources=sources,
                  files=files, linker_script=lds, defines=dict(defines), image_formats=formats, dir=path.parent,
                  link_energy=_link_energy(d.get("link_energy", {}), baud, where),
                  link_energy_sources=_str_list(d.get("link_energy", {}), "sources", where + " [link_energy]"))
    if "hardware" in d:
        board = replace(board, hardware=_hardware(board, d["hardware"], root, where + " [hardware]"))
    return board


def _hardware(board: Board, h, root: Path, where: str) -> Board:
    """[hardware]: the real board's image when QEMU runs a twin (its own files, linker script, defines,
    image formats and post-link script); the same board otherwise, with no QEMU machine."""
    if not isinstance(h, dict):
        raise BoardError(f"{where} must be a table")
    files = _str_list(h, "files", where)
    for f in files:
        if not (root / f).is_file():
            raise BoardError(f"{where}: file {f} not found under {root}")
    lds = h.get("linker_script")
    if not isinstance(lds, str) or not (board.dir / lds).is_file():
        raise BoardError(f"{where}: linker_script must name a file in {board.dir}")
    defines = h.get("defines", {})
    if not isinstance(defines, dict) or not all(isinstance(v, (str, int)) for v in defines.values()):
        raise BoardError(f"{where}: defines must map names to strings or integers")
    image = h.get("image")
    formats = () if image is None else (image,) if isinstance(image, str) else tuple(image)
    post = h.get("post_link")
    if post is not None and (not isinstance(post, str) or not (root / post).is_file()):
        raise BoardError(f"{where}: post_link must name a script under {root}")
    return replace(board, files=files, linker_script=lds, defines=dict(defines), image_formats=formats,
                   qemu=None, variant="hw", post_link=post)


def _link_energy(t: dict, baud: int, where: str) -> dict:
    """[link_energy]: <link>_mw (power while sending) and <link>_bps (bit rate) per link; a UART
    sends at [link] baud, 10 bits a byte."""
    where += " [link_energy]"
    if not isinstance(t, dict):
        raise BoardError(f"{where} must be a table")
    out = {}
    for key, v in t.items():
        if key == "sources":
            continue
        name, _, unit = key.rpartition("_")
        if unit not in ("mw", "bps") or not name:
            raise BoardError(f"{where}: unknown key '{key}' (use <link>_mw, <link>_bps and sources)")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise BoardError(f"{where}: '{key}' must be a positive number")
    for name in sorted({k.rpartition("_")[0] for k in t if k.endswith("_mw")}):
        bps = t.get(f"{name}_bps", baud if name == "uart" else None)
        if not bps:
            raise BoardError(f"{where}: '{name}_mw' needs '{name}_bps'" + (" (or a [link] baud)" if name == "uart" else ""))
        out[name] = LinkEnergy(name, float(t[f"{name}_mw"]), float(bps), 10 if name == "uart" else 8)
    if out and not t.get("sources"):
        raise BoardError(f"{where}: 'sources' must cite where the link figures come from")
    return out


@functools.lru_cache(maxsize=None)
def _load_all() -> dict[str, Board]:
    root = boards_dir()
    out = {}
    for p in sorted(root.glob("*/board.toml")):
        b = parse_board(p)
        out[b.id] = b
    if not out:
        raise BoardError(f"no boards found under {root}")
    return out


def list_boards() -> list[Board]:
    """Every board, sorted by id."""
    return list(_load_all().values())


def board_ids() -> list[str]:
    return list(_load_all())


def get_board(board) -> Board:
    """The board with this id (a Board passes through). Unknown ids raise BoardError listing the valid ones."""
    if isinstance(board, Board):
        return board
    boards = _load_all()
    if board not in boards:
        raise BoardError(f"unknown board '{board}': valid boards are {', '.join(boards)}")
    return boards[board]
