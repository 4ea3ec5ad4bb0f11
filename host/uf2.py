"""UF2, the USB flashing format of the Raspberry Pi Pico boot drive: writer, reader and checks.

A UF2 file is a sequence of 512-byte little-endian blocks:

    0   magic 0x0A324655 ("UF2\\n")   4  magic 0x9E5D5157     8  flags (0x2000: family ID present)
    12  target address                16 payload size (256)    20 block number
    24  total blocks                  28 family ID             32 data (476 bytes, payload first)
    508 magic 0x0AB16F30

Images come from an ELF file's loadable segments (PT_LOAD, at their *physical* addresses, so
initialised data goes where the startup code copies it from) or from a raw .bin and a base
address. Payloads are 256-byte pages at 256-byte-aligned addresses (what the RP2040/RP2350 boot
ROM writes to flash); bytes of a page that no segment covers are zero.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from .errors import HilkitError

__all__ = ["UF2Error", "Family", "FAMILIES", "BOARD_FAMILY", "BLOCK_SIZE", "PAYLOAD_SIZE",
           "MAGIC_START0", "MAGIC_START1", "MAGIC_END", "FLAG_FAMILY_ID", "load_segments",
           "elf_segments", "pages", "write_uf2", "read_uf2", "decode_memory", "family_for_board",
           "check_ranges", "boot_warnings", "crc32_mpeg2", "Block"]

BLOCK_SIZE = 512
PAYLOAD_SIZE = 256
DATA_AREA = 476
MAGIC_START0 = 0x0A324655
MAGIC_START1 = 0x9E5D5157
MAGIC_END = 0x0AB16F30
FLAG_NOT_MAIN_FLASH = 0x00000001
FLAG_FAMILY_ID = 0x00002000
_HEAD = struct.Struct("<8I")   # the eight words before the data


class UF2Error(HilkitError):
    """A UF2 file or image that is malformed, or does not fit the target's memory."""


@dataclass(frozen=True)
class Family:
    name: str
    id: int
    flash: tuple[int, int]      # [start, end) of the XIP flash a UF2 may write
    ram: tuple[int, int]        # [start, end) of SRAM (a UF2 may also load there)
    drive_board_id: str         # "Board-ID:" in INFO_UF2.TXT of the boot drive
    drive_label: str            # the boot drive's volume label


# RP2040 datasheet: XIP flash window 0x10000000 (16 MiB), SRAM 0x20000000 (264 KiB).
# RP2350 datasheet: XIP flash window 0x10000000 (16 MiB), SRAM 0x20000000 (520 KiB).
FAMILIES = {
    "rp2040": Family("rp2040", 0xE48BFF56, (0x10000000, 0x11000000), (0x20000000, 0x20042000),
                     "RPI-RP2", "RPI-RP2"),
    "rp2350-arm-s": Family("rp2350-arm-s", 0xE48BFF59, (0x10000000, 0x11000000), (0x20000000, 0x20082000),
                           "RP2350", "RP2350"),
}
BOARD_FAMILY = {"pico": "rp2040", "pico2": "rp2350-arm-s"}


def family_for_board(board) -> Family:
    """The UF2 family of a board (a Board or an id); UF2Error for boards that are not flashed by UF2."""
    bid = getattr(board, "id", board)
    name = getattr(board, "uf2_family", None) or BOARD_FAMILY.get(bid)
    if name is None:
        raise UF2Error(f"board {bid} is not flashed with UF2 (UF2 boards: {', '.join(BOARD_FAMILY)})")
    return FAMILIES[name]


# ------------------------------------------------------------------ images
PT_LOAD = 1


def elf_segments(path: Path) -> list[tuple[int, bytes]]:
    """(physical address, file bytes) of every PT_LOAD segment with file contents, in file order."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF":
        raise UF2Error(f"{path} is not an ELF file")
    if data[5] != 1:
        raise UF2Error(f"{path}: only little-endian ELF files are supported")
    try:
        if data[4] == 1:    # ELF32
            phoff, = struct.unpack_from("<I", data, 0x1C)
            phentsize, phnum = struct.unpack_from("<HH", data, 0x2A)
            fmt = "<IIIIIIII"   # type offset vaddr paddr filesz memsz flags align
            fields = lambda t: (t[0], t[1], t[3], t[4])  # noqa: E731
        elif data[4] == 2:  # ELF64
            phoff, = struct.unpack_from("<Q", data, 0x20)
            phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
            fmt = "<IIQQQQQQ"   # type flags offset vaddr paddr filesz memsz align
            fields = lambda t: (t[0], t[2], t[4], t[5])  # noqa: E731
        else:
            raise UF2Error(f"{path}: unknown ELF class {data[4]}")
        out = []
        for i in range(phnum):
            ptype, offset, paddr, filesz = fields(struct.unpack_from(fmt, data, phoff + i * phentsize))
            if ptype != PT_LOAD or filesz == 0:
                continue
            if offset + filesz > len(data):
                raise UF2Error(f"{path}: segment {i} runs past the end of the file")
            out.append((paddr, data[offset:offset + filesz]))
    except struct.error as e:
        raise UF2Error(f"{path}: malformed ELF program headers ({e})") from None
    if not out:
        raise UF2Error(f"{path} has no loadable segment with contents")
    return out


def load_segments(image: Path, base: int | None = None) -> list[tuple[int, bytes]]:
    """Segments of an ELF file, or of a raw binary placed at `base` (required for a non-ELF file)."""
    image = Path(image)
    try:
        head = image.read_bytes()[:4]
    except OSError as e:
        raise UF2Error(f"cannot read {image}: {e.strerror or e}") from None
    if head == b"\x7fELF":
        if base is not None:
            raise UF2Error(f"{image} is an ELF file: its segments carry their addresses, drop --base")
        return elf_segments(image)
    if base is None:
        raise UF2Error(f"{image} is a raw binary: give its load address (--base 0x10000000)")
    data = image.read_bytes()
    if not data:
        raise UF2Error(f"{image} is empty")
    return [(base, data)]


def pages(segments) -> list[tuple[int, bytes]]:
    """The segments as 256-byte pages at 256-byte-aligned addresses, sorted, zero-filled where no
    segment covers a byte. Overlapping segments are an error."""
    mem: dict[int, bytearray] = {}
    spans = sorted((a, a + len(d)) for a, d in segments)
    for (a0, a1), (b0, _b1) in zip(spans, spans[1:]):
        if b0 < a1:
            raise UF2Error(f"image segments overlap at 0x{b0:08x}")
    for addr, data in segments:
        if addr < 0 or addr + len(data) > 1 << 32:
            raise UF2Error(f"segment at 0x{addr:x} is outside the 32-bit address space")
        pos = 0
        while pos < len(data):
            a = addr + pos
            page = a - a % PAYLOAD_SIZE
            buf = mem.setdefault(page, bytearray(PAYLOAD_SIZE))
            k = min(PAYLOAD_SIZE - (a - page), len(data) - pos)
            buf[a - page:a - page + k] = data[pos:pos + k]
            pos += k
    return [(p, bytes(mem[p])) for p in sorted(mem)]


def check_ranges(segments, family: Family, flash_bytes: int | None = None) -> None:
    """Raise UF2Error unless every segment lies in the family's flash (within the board's flash
    size) or SRAM: the boot ROM ignores blocks anywhere else, so such a UF2 would do nothing."""
    f0, f1 = family.flash
    if flash_bytes:
        f1 = min(f1, f0 + flash_bytes)
    r0, r1 = family.ram
    for addr, data in segments:
        end = addr + len(data)
        if not (f0 <= addr and end <= f1) and not (r0 <= addr and end <= r1):
            raise UF2Error(f"the image loads 0x{addr:08x}-0x{end - 1:08x}, outside the {family.name} flash "
                           f"(0x{f0:08x}-0x{f1 - 1:08x}) and SRAM (0x{r0:08x}-0x{r1 - 1:08x})")


def crc32_mpeg2(data: bytes) -> int:
    """CRC-32/MPEG-2 (poly 0x04C11DB7, init 0xFFFFFFFF, not reflected, no final xor): the
    checksum the RP2040 boot ROM checks over the first 252 bytes of boot2."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
    return crc


PICOBIN_START, PICOBIN_END = 0xFFFFDED3, 0xAB123579   # RP2350 block markers (IMAGE_DEF)


def boot_warnings(segments, family: Family) -> list[str]:
    """Why the boot ROM would not start an image flashed at 0x10000000 (empty: it would). RP2040:
    boot2 in the first 256 bytes with its CRC; RP2350: an IMAGE_DEF block in the first 4 KiB."""
    f0 = family.flash[0]
    mem = dict(pages(segments))
    first = mem.get(f0)
    if family.name == "rp2040":
        if first is None or struct.unpack_from("<I", first, 252)[0] != crc32_mpeg2(first[:252]):
            return [f"no valid boot2 at 0x{f0:08x} (256 bytes ending in their CRC-32/MPEG-2): the RP2040 boot "
                    "ROM will not start this image"]
        return []
    head = b"".join(mem.get(f0 + k, bytes(PAYLOAD_SIZE)) for k in range(0, 4096, PAYLOAD_SIZE))
    words = struct.unpack(f"<{len(head) // 4}I", head)
    if PICOBIN_START not in words or PICOBIN_END not in words:
        return [f"no IMAGE_DEF block in the first 4 KiB at 0x{f0:08x}: the RP2350 boot ROM will not start "
                "this image"]
    return []


# ------------------------------------------------------------------ writer / reader
def write_uf2(segments, family_id: int) -> bytes:
    """UF2 bytes for these (address, bytes) segments, one block per 256-byte page."""
    pgs = pages(segments)
    total = len(pgs)
    out = bytearray()
    for n, (addr, payload) in enumerate(pgs):
        block = _HEAD.pack(MAGIC_START0, MAGIC_START1, FLAG_FAMILY_ID, addr, PAYLOAD_SIZE, n, total,
                           family_id)
        block += payload + bytes(DATA_AREA - PAYLOAD_SIZE) + struct.pack("<I", MAGIC_END)
        out += block
    return bytes(out)


@dataclass(frozen=True)
class Block:
    flags: int
    address: int
    payload: bytes
    number: int
    total: int
    family_id: int | None


def read_uf2(data: bytes) -> list[Block]:
    """Parse and check a whole UF2 file: magics, payload sizes, block numbers 0..total-1 in order."""
    data = bytes(data)
    if not data or len(data) % BLOCK_SIZE:
        raise UF2Error(f"a UF2 file is a whole number of 512-byte blocks, this one has {len(data)} bytes")
    blocks = []
    for i in range(len(data) // BLOCK_SIZE):
        b = data[i * BLOCK_SIZE:(i + 1) * BLOCK_SIZE]
        m0, m1, flags, addr, size, num, total, fam = _HEAD.unpack_from(b, 0)
        end, = struct.unpack_from("<I", b, 508)
        if (m0, m1, end) != (MAGIC_START0, MAGIC_START1, MAGIC_END):
            raise UF2Error(f"block {i}: bad magic numbers")
        if size > DATA_AREA:
            raise UF2Error(f"block {i}: payload size {size} exceeds {DATA_AREA}")
        if num != i or total != len(data) // BLOCK_SIZE:
            raise UF2Error(f"block {i}: numbered {num} of {total}, expected {i} of {len(data) // BLOCK_SIZE}")
        blocks.append(Block(flags, addr, b[32:32 + size], num, total,
                            fam if flags & FLAG_FAMILY_ID else None))
    return blocks


def decode_memory(data: bytes) -> dict[int, int]:
    """The memory a UF2 file writes: {address: byte} over every block that is meant for main flash."""
    mem: dict[int, int] = {}
    for b in read_uf2(data):
        if b.flags & FLAG_NOT_MAIN_FLASH:
            continue
        for k, v in enumerate(b.payload):
            mem[b.address + k] = v
    return mem
