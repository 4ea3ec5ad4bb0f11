"""A small ELF reader: section sizes and symbol addresses, enough to find the firmware's
instruction markers and measure its memory use without binutils."""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from .errors import HilkitError

EM_ARM = 40
SHT_SYMTAB, SHT_NOBITS = 2, 8
SHF_WRITE, SHF_ALLOC = 0x1, 0x2
STT_FUNC = 2


class ElfError(HilkitError):
    """Not a readable little-endian ELF file."""


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    flags: int
    addr: int
    size: int

    @property
    def alloc(self) -> bool:
        return bool(self.flags & SHF_ALLOC)

    @property
    def write(self) -> bool:
        return bool(self.flags & SHF_WRITE)

    @property
    def nobits(self) -> bool:
        return self.type == SHT_NOBITS


class _Elf:
    def __init__(self, path: Path):
        self.data = data = Path(path).read_bytes()
        if data[:4] != b"\x7fELF":
            raise ElfError(f"{path} is not an ELF file")
        self.is64 = data[4] == 2
        if data[5] != 1:
            raise ElfError(f"{path}: only little-endian ELF is supported")
        if self.is64:
            (self.machine,) = struct.unpack_from("<H", data, 18)
            shoff, = struct.unpack_from("<Q", data, 0x28)
            shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        else:
            (self.machine,) = struct.unpack_from("<H", data, 18)
            shoff, = struct.unpack_from("<I", data, 0x20)
            shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)
        self.sh = []
        for i in range(shnum):
            off = shoff + i * shentsize
            if self.is64:
                name, typ, flags, addr, offset, size, link, info, _, entsize = \
                    struct.unpack_from("<IIQQQQIIQQ", data, off)
            else:
                name, typ, flags, addr, offset, size, link, info, _, entsize = \
                    struct.unpack_from("<IIIIIIIIII", data, off)
            self.sh.append((name, typ, flags, addr, offset, size, link, entsize))
        strtab = self.sh[shstrndx] if shnum else None
        self.names = [self._str(strtab[4], n) if strtab else "" for (n, *_rest) in self.sh]

    def _str(self, base: int, off: int) -> str:
        end = self.data.index(b"\0", base + off)
        return self.data[base + off:end].decode("utf-8", "replace")

    def sections(self) -> list[Section]:
        return [Section(self.names[i], t, f, a, s) for i, (_, t, f, a, _o, s, _l, _e) in enumerate(self.sh)]

    def symbols(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (_, typ, _f, _a, offset, size, link, entsize) in self.sh:
            if typ != SHT_SYMTAB or entsize == 0:
                continue
            strbase = self.sh[link][4]
            for k in range(size // entsize):
                o = offset + k * entsize
                if self.is64:
                    name, info, _other, _shndx, value, _sz = struct.unpack_from("<IBBHQQ", self.data, o)
                else:
                    name, value, _sz, info, _other, _shndx = struct.unpack_from("<IIIBBH", self.data, o)
                if not name:
                    continue
                if self.machine == EM_ARM and (info & 0xF) == STT_FUNC:
                    value &= ~1  # Thumb functions carry bit 0; the PC QEMU reports does not
                out.setdefault(self._str(strbase, name), value)
        return out


def read_sections(path: Path) -> list[Section]:
    """The section headers of an ELF file."""
    try:
        return _Elf(path).sections()
    except (struct.error, IndexError, ValueError) as e:
        raise ElfError(f"{path}: malformed ELF ({e})") from None


def symbol_addresses(path: Path, names) -> dict[str, int]:
    """Addresses of the named symbols (those present) from the ELF symbol table."""
    try:
        syms = _Elf(path).symbols()
    except (struct.error, IndexError, ValueError) as e:
        raise ElfError(f"{path}: malformed ELF ({e})") from None
    return {n: syms[n] for n in names if n in syms}
