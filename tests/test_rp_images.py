"""The Pico (RP2040) and Pico 2 (RP2350) hardware images, proved statically: no RP2040/RP2350
emulator exists here, so `hilkit flash <model> --board pico|pico2 --uf2` is run for real and its
output is taken apart with readers written here and binutils, and compared with tables written from
the RP2040 and RP2350 datasheets: the UF2 blocks, boot2 and its CRC (RP2040), the IMAGE_DEF block
(RP2350), the vector tables, .data's load and run addresses, and the register programme that sets
up the crystal, PLL, clocks, resets, pins and UART0. What only a board can show is listed in
docs/real-boards.md."""
from __future__ import annotations

import contextlib
import io
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import CROSS, STRICT, run_cc
from hilkit.host.cli import main as cli

ROOT = Path(__file__).resolve().parent.parent
COMMON = ROOT / "boards" / "common"
OBJDUMP, NM = "arm-none-eabi-objdump", "arm-none-eabi-nm"

FLASH = 0x10000000                                  # XIP window, both chips
SRAM = {"pico": (0x20000000, 0x20042000),           # RP2040: 264 KiB
        "pico2": (0x20000000, 0x20082000)}          # RP2350: 520 KiB
FLASH_SIZE = {"pico": 2 << 20, "pico2": 4 << 20}    # the boards' QSPI flash
FAMILY = {"pico": 0xE48BFF56, "pico2": 0xE48BFF59}  # UF2 family: RP2040, RP2350 Arm Secure
VECTORS = {"pico": 0x10000100, "pico2": 0x10000000}
CLOCK_HZ = {"pico": 125_000_000, "pico2": 150_000_000}
UART0 = {"pico": 0x40034000, "pico2": 0x40070000}

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which(OBJDUMP) is None,
                                reason="arm-none-eabi toolchain not installed")


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """`hilkit train digits-mlp`, then `hilkit flash mlp.npz --board B --uf2 fw-B.uf2` for pico and
    pico2 (no boot drive mounted): {board: {"rc", "err", "uf2", "elf", "twin"}}."""
    from hilkit.host import flash

    root = tmp_path_factory.mktemp("rp")
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)                                   # hilkit's compile cache (out/run) goes here
        mp.setattr(flash, "mount_points", lambda: [])
        assert cli(["train", "digits-mlp", "-o", "mlp.npz"]) == 0
        for board in ("pico", "pico2"):
            uf2 = root / f"fw-{board}.uf2"
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                rc = cli(["flash", "mlp.npz", "--board", board, "--uf2", str(uf2)])
            assert rc == 0, err.getvalue()
            compiled = next((root / "out" / "run").glob(f"mlp-*-{board}-libm*"))
            out[board] = {"rc": rc, "err": err.getvalue(), "uf2": uf2.read_bytes() if uf2.exists() else b"",
                          "elf": compiled / "build" / f"{board}-hw" / "hk_firmware",
                          "twin": compiled / "build" / board / "hk_firmware"}
    return out


def uf2_memory(data: bytes, family: int) -> dict[int, bytes]:
    """An independent UF2 reader: check every block and return {address: 256-byte payload}."""
    assert len(data) > 0 and len(data) % 512 == 0
    n = len(data) // 512
    pages = {}
    for i in range(n):
        b = data[i * 512:(i + 1) * 512]
        m0, m1, flags, addr, size, num, total, fam = struct.unpack("<8I", b[:32])
        assert (m0, m1, struct.unpack("<I", b[508:])[0]) == (0x0A324655, 0x9E5D5157, 0x0AB16F30), i
        assert flags == 0x00002000 and fam == family, (i, hex(flags), hex(fam))   # family ID present
        assert size == 256 and num == i and total == n, (i, size, num, total)
        assert addr == FLASH + 256 * i, (i, hex(addr))      # contiguous pages from the flash base
        assert b[32 + 256:508] == bytes(476 - 256)          # unused data area is zero
        pages[addr] = b[32:32 + 256]
    return pages


def flat(pages: dict[int, bytes]) -> bytes:
    return b"".join(pages[a] for a in sorted(pages))


def words(mem: bytes, addr: int, n: int) -> tuple[int, ...]:
    off = addr - FLASH
    return struct.unpack_from(f"<{n}I", mem, off)


def symbols(elf: Path) -> dict[str, tuple[int, int]]:
    """{name: (address, size)} from binutils' nm."""
    out = {}
    for line in subprocess.run([NM, "-S", str(elf)], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 4:
            out[parts[3]] = (int(parts[0], 16), int(parts[1], 16))
        elif len(parts) == 3:
            out[parts[2]] = (int(parts[0], 16), 0)
    return out


def sections(elf: Path) -> dict[str, tuple[int, int, int, int]]:
    """{name: (size, VMA, LMA, file offset)} from `objdump -h`."""
    out = {}
    text = subprocess.run([OBJDUMP, "-h", str(elf)], capture_output=True, text=True, check=True).stdout
    for line in text.splitlines():
        m = re.match(r"\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s", line)
        if m:
            out[m.group(1)] = tuple(int(m.group(k), 16) for k in (2, 3, 4, 5))
    return out


def disassemble(elf: Path, what: str) -> list[str]:
    """The instruction lines of one function (or section, with `-j`) from `objdump -d`."""
    args = ["-j", what] if what.startswith(".") else [f"--disassemble={what}"]
    text = subprocess.run([OBJDUMP, "-d", *args, str(elf)], capture_output=True, text=True, check=True).stdout
    return [ln for ln in text.splitlines() if re.match(r"\s*[0-9a-f]+:\s", ln)]


# ------------------------------------------------------------------ the flash command
@pytest.mark.parametrize("board", ["pico", "pico2"])
def test_flash_builds_the_hardware_image_without_warnings(images, board):
    r = images[board]
    assert r["rc"] == 0, r["err"]
    assert "warning" not in r["err"], r["err"]
    fam = {"pico": "rp2040 (0xe48bff56)", "pico2": "rp2350-arm-s (0xe48bff59)"}[board]
    assert re.search(rf"wrote \S+fw-{board}\.uf2: \d+ blocks, family {re.escape(fam)}, 0x10000000-", r["err"])
    # The hardware image has its own build folder; the QEMU twin's build stays as it was (code at 0
    # on mps2-an385, 0x10000000 on mps2-an505 with data at 0x38000000).
    assert r["elf"].parent.name == f"{board}-hw" and r["twin"].is_file()
    twin = sections(r["twin"])
    assert twin[".text"][1] == {"pico": 0x00000000, "pico2": 0x10000000}[board]
    assert twin[".bss"][1] >= {"pico": 0x20000000, "pico2": 0x38000000}[board]


def test_twin_image_is_still_refused(images, tmp_path, monkeypatch, capsys):
    """Handing `hilkit flash` the QEMU twin's ELF itself still ends in the one-line refusal."""
    from hilkit.host import flash
    monkeypatch.setattr(flash, "mount_points", lambda: [])
    out = tmp_path / "twin.uf2"
    assert cli(["flash", str(images["pico"]["twin"]), "--board", "pico", "--uf2", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "linked for the QEMU twin -M mps2-an385" in err[0] and not out.exists()


@pytest.mark.parametrize("board", ["pico", "pico2"])
def test_uf2_holds_exactly_the_linked_flash_image(images, board):
    r = images[board]
    mem = flat(uf2_memory(r["uf2"], FAMILY[board]))
    # binutils' flat image (sections at their load addresses from 0x10000000), made by the build.
    ref = r["elf"].with_name("hk_firmware.bin").read_bytes()
    assert mem[:len(ref)] == ref and mem[len(ref):] == bytes(len(mem) - len(ref))
    assert len(mem) - len(ref) < 256 and len(ref) < FLASH_SIZE[board]


# ------------------------------------------------------------------ RP2040 boot2
def crc32_mpeg2_bitwise(data: bytes) -> int:
    """CRC-32/MPEG-2 as polynomial division, one message bit at a time (MSB first): shift the bit in,
    subtract (xor) the generator x^32 + 0x04C11DB7 when a 1 falls out of the 33-bit register."""
    reg = 0xFFFFFFFF
    for byte in data:
        for k in range(7, -1, -1):
            top = (reg >> 31) ^ ((byte >> k) & 1)
            reg = (reg << 1) & 0xFFFFFFFF
            if top:
                reg ^= 0x04C11DB7
    return reg


def test_crc_implementation_matches_the_catalogue():
    assert crc32_mpeg2_bitwise(b"123456789") == 0x0376E6E7     # CRC RevEng catalogue check value
    assert crc32_mpeg2_bitwise(b"") == 0xFFFFFFFF


def test_rp2040_boot2_checksum(images):
    mem = flat(uf2_memory(images["pico"]["uf2"], FAMILY["pico"]))
    boot2 = mem[:256]
    stored, = struct.unpack_from("<I", boot2, 252)
    assert stored == crc32_mpeg2_bitwise(boot2[:252])
    assert stored != 0 and crc32_mpeg2_bitwise(boot2[:251] + bytes([boot2[251] ^ 1])) != stored
    print(f"\nboot2 CRC-32/MPEG-2 = 0x{stored:08x}")


def test_rp2040_boot2_sets_up_xip_and_enters_the_vector_table(images):
    """Run boot2's instructions symbolically (objdump's listing): the SSI register writes, in order,
    and the jump. Every literal it loads lies inside the 256 bytes: it runs from its SRAM copy."""
    elf = images["pico"]["elf"]
    mem = flat(uf2_memory(images["pico"]["uf2"], FAMILY["pico"]))
    regs, stores, msp, entry = {}, [], None, None
    for line in disassemble(elf, ".boot2"):
        ins = line.split("\t", 2)[-1].strip() if "\t" in line else ""
        if re.match(r"\.word|\.\.\.", ins) or not ins:
            continue
        if m := re.match(r"ldr\s+(r\d), \[pc, #\d+\]\s+@ \(([0-9a-f]+)", ins):
            lit = int(m.group(2), 16)
            assert FLASH <= lit < FLASH + 252, f"literal outside boot2: {ins}"
            regs[m.group(1)] = words(mem, lit, 1)[0]
        elif m := re.match(r"movs\s+(r\d), #(\d+)", ins):
            regs[m.group(1)] = int(m.group(2))
        elif m := re.match(r"str\s+(r\d), \[(r\d), #(\d+)\]", ins):
            stores.append((regs[m.group(2)] + int(m.group(3)), regs[m.group(1)]))
        elif m := re.match(r"str\s+(r\d), \[(r\d), (r\d)\]", ins):
            stores.append((regs[m.group(2)] + regs[m.group(3)], regs[m.group(1)]))
        elif m := re.match(r"ldmia\s+(r\d), \{(r\d), (r\d)\}", ins):
            regs[m.group(2)], regs[m.group(3)] = words(mem, regs[m.group(1)], 2)
        elif m := re.match(r"msr\s+MSP, (r\d)", ins):
            msp = regs[m.group(1)]
        elif m := re.match(r"bx\s+(r\d)", ins):
            entry = regs[m.group(1)]
            break
        else:
            pytest.fail(f"boot2 uses an instruction this check does not model: {ins}")
    # RP2040 datasheet 4.10 (SSI, at 0x18000000): SSIENR +0x08, BAUDR +0x14, CTRLR0 +0x00,
    # CTRLR1 +0x04, SPI_CTRLR0 +0xf4, SER +0x10; M0+ VTOR at 0xe000ed08.
    ctrlr0 = (31 << 16) | (3 << 8)                   # SPI_FRF std, DFS_32 = 31 (32 clocks), TMOD EEPROM read
    spi_ctrlr0 = (0x03 << 24) | (2 << 8) | (6 << 2)  # XIP_CMD 03h, INST_L 8 bit, ADDR_L 24 bit, 1C1A
    assert stores == [(0x18000008, 0), (0x18000014, 4), (0x18000000, ctrlr0), (0x18000004, 0),
                      (0x180000F4, spi_ctrlr0), (0x18000010, 1), (0x18000008, 1), (0xE000ED08, 0x10000100)]
    assert (ctrlr0, spi_ctrlr0) == (0x001F0300, 0x03000218)
    assert CLOCK_HZ["pico"] / 4 <= 50e6              # SCK 31.25 MHz, W25Q16JV 03h reads up to 50 MHz
    sp, reset = words(mem, 0x10000100, 2)
    assert (msp, entry) == (sp, reset)


# ------------------------------------------------------------------ RP2350 IMAGE_DEF
def test_rp2350_image_def_block(images):
    mem = flat(uf2_memory(images["pico2"]["uf2"], FAMILY["pico2"]))
    head = struct.unpack_from("<1024I", mem, 0)                 # the first 4 KiB the boot ROM searches
    starts = [i for i, w in enumerate(head) if w == 0xFFFFDED3]
    assert len(starts) == 1
    at = starts[0]
    block = head[at:at + 5]
    # RP2350 datasheet 5.9.5.1, the minimum Arm IMAGE_DEF, word by word.
    assert block == (0xFFFFDED3, 0x10210142, 0x000001FF, 0x00000000, 0xAB123579)
    item = block[1]
    assert item & 0x80 == 0 and item & 0x7F == 0x42 and (item >> 8) & 0xFF == 1   # 1BS IMAGE_TYPE, 1 word
    flags = item >> 16
    assert flags & 0xF == 1                 # IMAGE_TYPE_EXE
    assert (flags >> 4) & 0x3 == 2          # EXE_SECURITY_S
    assert (flags >> 8) & 0x7 == 0          # EXE_CPU_ARM
    assert (flags >> 12) & 0x7 == 1         # EXE_CHIP_RP2350
    assert flags >> 15 == 0                 # not try-before-you-buy
    assert block[2] & 0xFF == 0xFF and (block[2] >> 8) & 0xFFFF == 1   # LAST item, items' total 1 word
    assert block[3] == 0                    # link: this block again, a loop of one
    assert 4 * at + 20 <= 4096 and 4 * at == symbols(images["pico2"]["elf"])["hk_image_def"][0] - FLASH
    # No VECTOR_TABLE or ENTRY_POINT item: the boot ROM takes SP and PC from a vector table at the
    # start of the image (5.9.3.3), which test_vector_tables checks is there.
    print(f"\nIMAGE_DEF at 0x{FLASH + 4 * at:08x}: " + " ".join(f"{w:08x}" for w in block))


# ------------------------------------------------------------------ vectors and .data
@pytest.mark.parametrize("board", ["pico", "pico2"])
def test_vector_tables(images, board):
    r = images[board]
    mem = flat(uf2_memory(r["uf2"], FAMILY[board]))
    sym = symbols(r["elf"])
    vt = VECTORS[board]
    assert sym["hk_vectors"][0] == vt
    n = 16 + 32 if board == "pico" else 16 + 52      # system exceptions + the chip's IRQs
    table = words(mem, vt, n)
    lo, hi = SRAM[board]
    sp, reset = table[0], table[1]
    assert lo < sp <= hi and sp % 8 == 0 and sp == sym["__stack_top"][0]
    code_end = FLASH + len(mem)
    for i, v in enumerate(table[1:], 1):              # every handler: Thumb, inside the image in flash
        assert v & 1 and FLASH <= (v & ~1) < code_end, (i, hex(v))
    assert reset & ~1 == sym["hk_reset_handler"][0]
    print(f"\n{board} vectors at 0x{vt:08x}: SP 0x{sp:08x}, reset 0x{reset:08x}")


@pytest.mark.parametrize("board", ["pico", "pico2"])
def test_data_is_loaded_from_flash_and_runs_in_sram(images, board):
    r = images[board]
    sec, sym = sections(r["elf"]), symbols(r["elf"])
    lo, hi = SRAM[board]
    size, vma, lma, _ = sec[".data"]
    assert size > 0                                   # the model run keeps initialised data (newlib)
    assert lo <= vma and vma + size <= hi
    assert FLASH <= lma and lma + size <= FLASH + FLASH_SIZE[board]
    assert (sym["__data_start"][0], sym["__data_load"][0]) == (vma, lma)
    bss_size, bss_vma, _, _ = sec[".bss"]
    assert vma + size <= bss_vma and bss_vma + bss_size <= sym["__stack_limit"][0] < hi
    # The bytes the reset handler copies are in the UF2 at the load address; nothing targets SRAM.
    pages = uf2_memory(r["uf2"], FAMILY[board])
    blob = subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", "-j", ".data", str(r["elf"]), "/dev/stdout"],
                          capture_output=True, check=True).stdout
    assert len(blob) == size and flat(pages)[lma - FLASH:lma - FLASH + size] == blob
    assert all(FLASH <= a < FLASH + FLASH_SIZE[board] for a in pages)
    print(f"\n{board} .data: {size} bytes, LMA 0x{lma:08x} -> VMA 0x{vma:08x}")


# ------------------------------------------------------------------ the register programme
def pll_hz(fbdiv, pd1, pd2, xosc=12_000_000, refdiv=1):
    return xosc // refdiv * fbdiv // (pd1 * pd2)


def pl011_divisor(clk: int, baud: int = 115200) -> tuple[int, int]:
    """Datasheets (UART, fractional baud rate divider): IBRD = int(clk / (16 baud)),
    FBRD = int(fraction x 64 + 0.5)."""
    div = clk / (16 * baud)
    return int(div), int((div - int(div)) * 64 + 0.5)


def expected_rp2040():
    """RP2040 datasheet: RESETS 0x4000c000 (RESET +0, RESET_DONE +8; IO_BANK0 bit 5, PADS_BANK0 8,
    PLL_SYS 12, UART0 22), CLOCKS 0x40008000 (CLK_REF_CTRL +0x30, _DIV +0x34, _SELECTED +0x38,
    CLK_SYS_CTRL +0x3c, _DIV +0x40, _SELECTED +0x44, CLK_PERI_CTRL +0x48), XOSC 0x40024000 (CTRL +0,
    STATUS +4, STARTUP +0xc), PLL_SYS 0x40028000 (CS, PWR, FBDIV_INT, PRIM), IO_BANK0 0x40014000
    (GPIOn_CTRL +4+8n), PADS_BANK0 0x4001c000 (GPIOn +4+4n), UART0 0x40034000 (IBRD +0x24, FBRD +0x28,
    LCR_H +0x2c, CR +0x30). +0x2000 / +0x3000: atomic set / clear aliases."""
    ibrd, fbrd = pl011_divisor(125_000_000)
    io = (1 << 5) | (1 << 8) | (1 << 22)
    return [
        (0x4002400C, 0, 47),                    # XOSC STARTUP: 12 MHz x 1 ms / 256, rounded up
        (0x40024000, 0, 0x00FABAA0),            # XOSC CTRL: ENABLE 0xfab, FREQ_RANGE 1-15 MHz 0xaa0
        (0x40024004, 1 << 31, 1 << 31),         # wait STATUS.STABLE
        (0x4000B03C, 0, 1),                     # clear CLK_SYS_CTRL.SRC: clk_sys <- clk_ref
        (0x40008044, 1, 1),                     # wait CLK_SYS_SELECTED = clk_ref
        (0x40008030, 0, 2),                     # CLK_REF_CTRL.SRC = xosc
        (0x40008038, 4, 4),                     # wait CLK_REF_SELECTED = xosc
        (0x40008034, 0, 1 << 8),                # CLK_REF_DIV = 1
        (0x4000E000, 0, 1 << 12),               # PLL_SYS into reset ...
        (0x4000F000, 0, 1 << 12),               # ... and out
        (0x4000C008, 1 << 12, 1 << 12),         # wait RESET_DONE.PLL_SYS
        (0x40028000, 0, 1),                     # CS.REFDIV = 1
        (0x40028008, 0, 125),                   # FBDIV_INT
        (0x4002B004, 0, (1 << 0) | (1 << 5)),   # clear PWR.PD, PWR.VCOPD
        (0x40028000, 1 << 31, 1 << 31),         # wait CS.LOCK
        (0x4002800C, 0, (6 << 16) | (2 << 12)), # PRIM: POSTDIV1 6, POSTDIV2 2
        (0x4002B004, 0, 1 << 3),                # clear PWR.POSTDIVPD
        (0x40008040, 0, 1 << 8),                # CLK_SYS_DIV = 1
        (0x4000803C, 0, 0),                     # CLK_SYS_CTRL: AUXSRC pll_sys, SRC still clk_ref
        (0x4000A03C, 0, 1),                     # set SRC: clk_sys <- aux (pll_sys)
        (0x40008044, 2, 2),                     # wait CLK_SYS_SELECTED = aux
        (0x40008048, 0, 1 << 11),               # CLK_PERI_CTRL: ENABLE, AUXSRC clk_sys
        (0x4000F000, 0, io),                    # IO_BANK0, PADS_BANK0, UART0 out of reset
        (0x4000C008, io, io),
        (0x4001C004, 0, 0x52),                  # GP0 pad: IE, 4 mA, Schmitt
        (0x4001C008, 0, 0x5A),                  # GP1 pad: same + pull-up
        (0x40014004, 0, 2),                     # GPIO0_CTRL FUNCSEL 2 = uart0_tx
        (0x4001400C, 0, 2),                     # GPIO1_CTRL FUNCSEL 2 = uart0_rx
        (0x40034024, 0, ibrd),
        (0x40034028, 0, fbrd),
        (0x4003402C, 0, (3 << 5) | (1 << 4)),   # LCR_H: WLEN 8, FEN
        (0x40034030, 0, (1 << 9) | (1 << 8) | 1),  # CR: RXE, TXE, UARTEN
    ]


def expected_rp2350():
    """RP2350 datasheet: RESETS 0x40020000 (IO_BANK0 bit 6, PADS_BANK0 9, PLL_SYS 14, UART0 26),
    CLOCKS 0x40010000 (same offsets; DIV.INT at bit 16; CLK_PERI_DIV +0x4c), XOSC 0x40048000,
    PLL_SYS 0x40050000, IO_BANK0 0x40028000, PADS_BANK0 0x40038000 (ISO bit 8), UART0 0x40070000."""
    ibrd, fbrd = pl011_divisor(150_000_000)
    io = (1 << 6) | (1 << 9) | (1 << 26)
    return [
        (0x4004800C, 0, 47),
        (0x40048000, 0, 0x00FABAA0),
        (0x40048004, 1 << 31, 1 << 31),
        (0x4001303C, 0, 1),
        (0x40010044, 1, 1),
        (0x40010030, 0, 2),
        (0x40010038, 4, 4),
        (0x40010034, 0, 1 << 16),
        (0x40022000, 0, 1 << 14),
        (0x40023000, 0, 1 << 14),
        (0x40020008, 1 << 14, 1 << 14),
        (0x40050000, 0, 1),
        (0x40050008, 0, 125),
        (0x40053004, 0, (1 << 0) | (1 << 5)),
        (0x40050000, 1 << 31, 1 << 31),
        (0x4005000C, 0, (5 << 16) | (2 << 12)), # POSTDIV1 5, POSTDIV2 2
        (0x40053004, 0, 1 << 3),
        (0x40010040, 0, 1 << 16),
        (0x4001003C, 0, 0),
        (0x4001203C, 0, 1),
        (0x40010044, 2, 2),
        (0x4001004C, 0, 1 << 16),               # CLK_PERI_DIV = 1
        (0x40010048, 0, 1 << 11),
        (0x40023000, 0, io),
        (0x40020008, io, io),
        (0x40038004, 0, 0x152),                 # GP0 pad: ISO still set, IE, 4 mA, Schmitt
        (0x40038008, 0, 0x15A),                 # GP1 pad: same + pull-up
        (0x40028004, 0, 2),
        (0x4002800C, 0, 2),
        (0x4003B004, 0, 1 << 8),                # clear GP0 pad ISO once the UART drives it
        (0x4003B008, 0, 1 << 8),
        (0x40070024, 0, ibrd),
        (0x40070028, 0, fbrd),
        (0x4007002C, 0, (3 << 5) | (1 << 4)),
        (0x40070030, 0, (1 << 9) | (1 << 8) | 1),
    ]


def programme(board, images) -> list[tuple[int, int, int]]:
    """The bring-up table as flashed: hk_rp_init's (addr, mask, value) triples, hk_rp_init_steps long."""
    r = images[board]
    mem, sym = flat(uf2_memory(r["uf2"], FAMILY[board])), symbols(r["elf"])
    addr, size = sym["hk_rp_init"]
    n, = words(mem, sym["hk_rp_init_steps"][0], 1)
    assert size == 12 * n
    w = words(mem, addr, 3 * n)
    return [tuple(w[3 * i:3 * i + 3]) for i in range(n)]


@pytest.mark.parametrize("board", ["pico", "pico2"])
def test_register_programme_matches_the_datasheet(images, board):
    steps = programme(board, images)
    assert steps == (expected_rp2040() if board == "pico" else expected_rp2350())
    writes = {a: v for a, m, v in steps if m == 0}
    base = {"pico": (0x40028000, 0x40008000), "pico2": (0x40050000, 0x40010000)}[board]
    pll, clocks = base
    # PLL: 12 MHz x FBDIV / (POSTDIV1 x POSTDIV2) is the board's clock, within the datasheet limits.
    fbdiv, prim = writes[pll + 8], writes[pll + 0xC]
    pd1, pd2 = (prim >> 16) & 7, (prim >> 12) & 7
    assert pll_hz(fbdiv, pd1, pd2) == CLOCK_HZ[board]
    assert 16 <= fbdiv <= 320 and 750e6 <= 12e6 * fbdiv <= 1600e6 and 1 <= pd2 <= pd1 <= 7
    # clk_peri runs from clk_sys, so the UART clock is the PLL's output: the baud rate it gives.
    assert writes[clocks + 0x48] == 1 << 11
    u = UART0[board]
    ibrd, fbrd, lcr_h, cr = writes[u + 0x24], writes[u + 0x28], writes[u + 0x2C], writes[u + 0x30]
    baud = CLOCK_HZ[board] / (16 * (ibrd + fbrd / 64))
    assert abs(baud / 115200 - 1) < 0.001
    assert (lcr_h >> 5) & 3 == 3 and lcr_h & (1 << 4) and not lcr_h & 0b1111  # 8 bits, FIFO, no parity, 1 stop
    assert cr == 0x301
    # Order: the divisor before LCR_H (which latches it); PLL locked before clk_sys switches to it;
    # clk_peri enabled before UART0 leaves reset; the UART enabled last.
    def first(cond):
        return next(i for i, step in enumerate(steps) if cond(*step))

    lcr = first(lambda a, m, v: a == u + 0x2C)
    assert first(lambda a, m, v: a == u + 0x24) < lcr and first(lambda a, m, v: a == u + 0x28) < lcr
    assert first(lambda a, m, v: a == u + 0x30) == len(steps) - 1
    assert first(lambda a, m, v: a == pll and m == 1 << 31) < first(lambda a, m, v: a == clocks + 0x203C and v == 1)
    uart_reset_bit = 1 << {"pico": 22, "pico2": 26}[board]
    assert first(lambda a, m, v: a == clocks + 0x48) < first(lambda a, m, v: m == 0 and a & 0x3000 == 0x3000
                                                              and v & uart_reset_bit)
    print(f"\n{board}: {len(steps)} steps, PLL 12 MHz x {fbdiv} / {pd1} / {pd2} = {CLOCK_HZ[board] / 1e6:.0f} MHz, "
          f"IBRD {ibrd} FBRD {fbrd} -> {baud:.1f} baud, LCR_H 0x{lcr_h:02x}, CR 0x{cr:03x}")


@pytest.mark.parametrize("board", ["pico", "pico2"])
def test_board_layer_code_uses_the_table_and_uart0(images, board):
    """The disassembly: hk_board_init loads the table and its length (literal pool) and calls the
    cycle counter's init; getc/write poll FR (+0x18: RXFE bit 4, TXFF bit 5) and use DR (+0) of
    UART0; nothing in the image is a semihosting call (`bkpt`), and exits park the core."""
    r = images[board]
    sym = symbols(r["elf"])
    mem = flat(uf2_memory(r["uf2"], FAMILY[board]))

    def pool(fn):
        lines = disassemble(r["elf"], fn)
        lits = {int(m.group(1), 16) for ln in lines if (m := re.search(r"\.word\s+0x([0-9a-f]+)", ln))}
        return lines, lits

    lines, lits = pool("hk_board_init")
    assert {sym["hk_rp_init"][0], sym["hk_rp_init_steps"][0]} <= lits
    assert any("<hk_cycles_init>" in ln for ln in lines)
    u = UART0[board]
    for fn in ("hk_board_getc", "hk_board_write"):   # FR at +0x18: from the pool, or as an offset from DR
        lines, lits = pool(fn)
        assert u in lits and (u + 0x18 in lits or any("#24]" in ln for ln in lines)), fn
    everything = subprocess.run([OBJDUMP, "-d", str(r["elf"])], capture_output=True, text=True, check=True).stdout
    assert "bkpt" not in everything
    exit_lines = [ln.split("\t", 2)[-1] for ln in disassemble(r["elf"], "hk_board_exit")]
    assert exit_lines[0].startswith("wfi") and exit_lines[1].startswith("b")
    assert words(mem, sym["hk_rp_init_steps"][0], 1)[0] > 0


# ------------------------------------------------------------------ strict C, the post-link step
HW_DEFINES = {"pico": ["-DHK_UART_BASE=0x40034000u", "-DHK_UART_CLOCK_HZ=125000000u", "-DHK_NO_SEMIHOSTING=1"],
              "pico2": ["-DHK_UART_BASE=0x40070000u", "-DHK_UART_CLOCK_HZ=150000000u", "-DHK_NO_SEMIHOSTING=1"]}
HW_C = {"pico": ["rp2040_board.c", "rp2040_init.c", "cortexm_startup.c", "cortexm_cycles.c"],
        "pico2": ["rp2040_board.c", "rp2350_init.c", "cortexm_startup.c", "cortexm_cycles.c"]}


@pytest.mark.parametrize("board", ["pico", "pico2"])
def test_board_layer_compiles_strictly(tmp_path, board):
    inc = [f"-I{ROOT / 'firmware'}", f"-I{COMMON}"]
    for f in HW_C[board]:
        run_cc([*CROSS[board], *STRICT, *HW_DEFINES[board], *inc, "-c", str(COMMON / f),
                "-o", str(tmp_path / (f + ".o"))])
    for f in {"pico": ["rp2040_boot2.S"], "pico2": ["rp2350_image_def.S"]}[board]:
        run_cc([*CROSS[board], "-c", str(COMMON / f), "-o", str(tmp_path / (f + ".o"))])
    # The programme refuses a UART clock that is not the PLL's output (a compile-time check).
    bad = [d if "CLOCK" not in d else "-DHK_UART_CLOCK_HZ=100000000u" for d in HW_DEFINES[board]]
    init = HW_C[board][1]
    p = subprocess.run([*CROSS[board], *STRICT, *bad, *inc, "-c", str(COMMON / init), "-o", str(tmp_path / "bad.o")],
                       capture_output=True, text=True, check=False)
    assert p.returncode != 0 and "clk_peri_is_clk_sys" in p.stderr


def test_boot2_crc_script_patches_and_refuses(images, tmp_path):
    script = COMMON / "rp2040_boot2_crc.py"
    elf = tmp_path / "fw.elf"
    shutil.copyfile(images["pico"]["elf"], elf)
    size, vma, _, off = sections(elf)[".boot2"]
    data = bytearray(elf.read_bytes())
    good = bytes(data[off:off + 256])
    data[off + 252:off + 256] = bytes(4)                       # wipe the checksum
    elf.write_bytes(bytes(data))
    assert subprocess.run([sys.executable, str(script), str(elf)], check=False).returncode == 0
    assert elf.read_bytes()[off:off + 256] == good and (size, vma) == (256, FLASH)
    p = subprocess.run([sys.executable, str(script), str(images["pico"]["twin"])], capture_output=True, text=True,
                       check=False)
    assert p.returncode == 1 and "no .boot2 section" in p.stderr


def test_boards_name_the_twins(capsys):
    import json

    from hilkit.host import boards
    assert cli(["boards", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert {i for i, r in rows.items() if r["qemu_twin"]} == {"pico", "pico2"}
    for bid, machine in (("pico", "mps2-an385"), ("pico2", "mps2-an505")):
        b = boards.get_board(bid)
        row = b.summary()
        assert row["qemu"] == machine and row["qemu_twin"] is True and b.run_kind == "qemu-system"
        hw = b.hardware
        assert hw.build_name == f"{bid}-hw" and hw.qemu is None and hw.linker_script == "link_hw.ld"
        assert hw.id == bid and hw.cflags == b.cflags and "HK_NO_SEMIHOSTING" in hw.defines
    assert boards.get_board("mps2-an386").summary()["qemu_twin"] is False
    assert boards.get_board("mps2-an386").hardware is None


def test_bad_hardware_table_is_refused(tmp_path):
    from hilkit.host import boards
    d = tmp_path / "boards" / "pico"
    d.mkdir(parents=True)
    (tmp_path / "boards" / "common").symlink_to(COMMON)
    shutil.copy(ROOT / "boards" / "pico" / "link.ld", d)
    text = (ROOT / "boards" / "pico" / "board.toml").read_text()
    (d / "board.toml").write_text(text)                              # link_hw.ld missing here
    with pytest.raises(boards.BoardError, match=r"\[hardware\]: linker_script"):
        boards.parse_board(d / "board.toml")
    shutil.copy(ROOT / "boards" / "pico" / "link_hw.ld", d)
    (d / "board.toml").write_text(text.replace("common/rp2040_boot2_crc.py", "common/nope.py"))
    with pytest.raises(boards.BoardError, match="post_link"):
        boards.parse_board(d / "board.toml")
    (d / "board.toml").write_text(text)
    assert boards.parse_board(d / "board.toml").hardware.post_link == "common/rp2040_boot2_crc.py"
