"""Write the RP2040 boot2 checksum into a linked ELF: `python rp2040_boot2_crc.py hk_firmware`.

The boot ROM runs the first 256 bytes of flash (the .boot2 section) only if their last 4 bytes hold
the CRC-32/MPEG-2 (poly 0x04C11DB7, init 0xFFFFFFFF, not reflected, no final xor) of the first 252,
little-endian (RP2040 datasheet, "Flash Second Stage", "Checksum"). The code is assembled and
linked first; the sum is known only then, so it is patched into the ELF file in place, before
objcopy makes the .bin. Standard library only: it runs from the firmware build (CMake POST_BUILD).
"""
from __future__ import annotations

import struct
import sys
from pathlib import Path

SECTION = ".boot2"
SIZE = 256


def crc32_mpeg2(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def section_offset(elf: bytes, name: str) -> tuple[int, int]:
    """(file offset, size) of a section of a little-endian ELF32 file."""
    if elf[:4] != b"\x7fELF" or elf[4] != 1 or elf[5] != 1:
        raise ValueError("not a little-endian ELF32 file")
    shoff, = struct.unpack_from("<I", elf, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x2E)

    def header(i):   # name, type, flags, addr, offset, size
        return struct.unpack_from("<IIIIII", elf, shoff + i * shentsize)

    strtab_off = header(shstrndx)[4]
    for i in range(shnum):
        sh_name, _, _, _, off, size = header(i)
        end = elf.index(b"\0", strtab_off + sh_name)
        if elf[strtab_off + sh_name:end].decode() == name:
            return off, size
    raise ValueError(f"no {name} section")


def patch(path: Path) -> int:
    """Write the checksum into the last word of .boot2 (in place); return it."""
    data = path.read_bytes()
    off, size = section_offset(data, SECTION)
    if size != SIZE:
        raise ValueError(f"{SECTION} is {size} bytes, the boot ROM loads exactly {SIZE}")
    crc = crc32_mpeg2(data[off:off + SIZE - 4])
    with open(path, "r+b") as f:
        f.seek(off + SIZE - 4)
        f.write(struct.pack("<I", crc))
    return crc


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: rp2040_boot2_crc.py ELF", file=sys.stderr)
        return 2
    try:
        patch(Path(argv[1]))
    except (OSError, ValueError, struct.error) as e:
        print(f"rp2040_boot2_crc: {argv[1]}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
