"""UF2: the writer's blocks field by field, the reader's checks, and `hilkit flash --board pico`
writing a UF2 that decodes back to exactly the firmware's bytes at its flash addresses."""
from __future__ import annotations

import json
import shutil
import struct
from dataclasses import replace
from pathlib import Path

import pytest

from hilkit.host import uf2 as U
from hilkit.host.cli import main as cli

ROOT = Path(__file__).resolve().parent.parent
PROTO_MODEL = ROOT / "tests" / "c" / "proto_model"
PROTO_HASH = "0123456789abcdef"

# The RP2040's memory (datasheet): XIP flash at 0x10000000 (2 MiB on the Pico), SRAM at 0x20000000.
RP2040_LD = """MEMORY
{
    FLASH (rx) : ORIGIN = 0x10000000, LENGTH = 2M
    RAM (rw)   : ORIGIN = 0x20000000, LENGTH = 264K
}
REGION_ALIAS("CODE", FLASH);
REGION_ALIAS("RODATA", FLASH);
REGION_ALIAS("DATA", RAM);
HK_STACK_SIZE = 0x2000;
INCLUDE cortexm_sections.ld
"""


# Initialised data, kept by the linker (-u), so the image has a .data segment whose load address
# (in flash) differs from its run address (in SRAM).
DATA_C = "volatile unsigned hk_uf2_test_data[4] = {0x11223344u, 0x55667788u, 0x99aabbccu, 0xddeeff00u};\n"


def build_compiled_dir(root: Path, board_id: str, linker_script: str | None = None) -> Path:
    """A directory as `hilkit compile` makes it (manifest + image) for the protocol test model
    (plus some initialised data), built by the project's build driver; optionally linked with
    another script."""
    from hilkit.codegen import build
    from hilkit.host import boards

    board = boards.get_board(board_id)
    try:
        build.check_toolchain(board)
    except build.BuildError as e:
        pytest.skip(str(e))
    board = replace(board, ldflags=board.ldflags + ("-Wl,--undefined=hk_uf2_test_data",))
    if linker_script is not None:
        lds = root / "link.ld"
        lds.write_text(linker_script)
        board = replace(board, linker_script=str(lds))   # an absolute path wins over the board folder
    data_c = root / "data.c"
    data_c.write_text(DATA_C)
    out = root / "compiled"
    fw = ROOT / "firmware"
    image = build.build_firmware(PROTO_MODEL, board, build_dir=out / "build",
                                 sources=[fw / "main.c", fw / "hk_proto.c", PROTO_MODEL / "model.c", data_c])
    (out / "hilkit.json").write_text(json.dumps({
        "model": "proto-test", "model_hash": PROTO_HASH, "board": board_id, "exp": "libm",
        "image": str(image.relative_to(out))}))
    return out


@pytest.fixture(scope="module")
def rp2040_dir(tmp_path_factory) -> Path:
    return build_compiled_dir(tmp_path_factory.mktemp("rp2040"), "pico", RP2040_LD)


# ------------------------------------------------------------------ writer and reader
def _fields(block: bytes):
    return struct.unpack_from("<8I", block, 0), struct.unpack_from("<I", block, 508)[0]


def test_blocks_field_by_field():
    segs = [(0x10000010, bytes(range(1, 200))),          # starts mid-page
            (0x100000D7, b"\xAA" * 300),                 # continues the same page, spans two more
            (0x10001000, b"\x55" * 4)]                   # after a gap
    data = U.write_uf2(segs, 0xE48BFF56)
    assert len(data) % 512 == 0
    n = len(data) // 512
    addrs = []
    for i in range(n):
        (m0, m1, flags, addr, size, num, total, fam), end = _fields(data[i * 512:(i + 1) * 512])
        assert (m0, m1, end) == (0x0A324655, 0x9E5D5157, 0x0AB16F30)
        assert flags == 0x2000 and size == 256 and num == i and total == n and fam == 0xE48BFF56
        assert addr % 256 == 0
        assert data[i * 512 + 32 + 256:i * 512 + 508] == bytes(476 - 256)
        addrs.append(addr)
    assert addrs == [0x10000000, 0x10000100, 0x10000200, 0x10001000]
    mem = U.decode_memory(data)
    for a, d in segs:
        assert bytes(mem[a + k] for k in range(len(d))) == d
    covered = {a + k for a, d in segs for k in range(len(d))}
    assert all(v == 0 for a, v in mem.items() if a not in covered)   # page padding is zero
    assert len(mem) == 4 * 256


def test_raw_binary_needs_a_base(tmp_path):
    b = tmp_path / "x.bin"
    b.write_bytes(b"\x01\x02\x03")
    with pytest.raises(U.UF2Error, match="--base"):
        U.load_segments(b)
    assert U.load_segments(b, 0x10000000) == [(0x10000000, b"\x01\x02\x03")]


def test_overlapping_segments_are_refused():
    with pytest.raises(U.UF2Error, match="overlap"):
        U.write_uf2([(0x10000000, b"\x01" * 16), (0x10000008, b"\x02")], 1)


@pytest.mark.parametrize("damage, message", [
    (lambda d: d[:-1], "whole number"),
    (lambda d: d[:4] + b"\0" + d[5:], "magic"),
    (lambda d: d[:512 + 20] + struct.pack("<I", 7) + d[512 + 24:], "numbered 7"),
    (lambda d: d[:16] + struct.pack("<I", 477) + d[20:], "payload size"),
])
def test_reader_rejects_damaged_files(damage, message):
    data = U.write_uf2([(0x10000000, bytes(600))], 0xE48BFF56)
    with pytest.raises(U.UF2Error, match=message):
        U.read_uf2(damage(data))


def test_ranges_of_the_family():
    fam = U.FAMILIES["rp2040"]
    U.check_ranges([(0x10000000, bytes(16)), (0x20000000, bytes(16))], fam, 2 << 20)
    with pytest.raises(U.UF2Error, match="outside the rp2040 flash"):
        U.check_ranges([(0x00000000, bytes(16))], fam)
    with pytest.raises(U.UF2Error, match="outside"):
        U.check_ranges([(0x101FFFF0, bytes(32))], fam, 2 << 20)    # past the Pico's 2 MiB


def test_boot_rom_checks():
    rp2040, rp2350 = U.FAMILIES["rp2040"], U.FAMILIES["rp2350-arm-s"]
    assert U.crc32_mpeg2(b"123456789") == 0x0376E6E7          # the CRC catalogue's check value
    body = bytes(range(252))
    boot2 = body + struct.pack("<I", U.crc32_mpeg2(body))
    assert U.boot_warnings([(0x10000000, boot2 + b"app")], rp2040) == []
    bad = boot2[:-1] + bytes([boot2[-1] ^ 1])
    assert "no valid boot2 at 0x10000000" in U.boot_warnings([(0x10000000, bad)], rp2040)[0]
    image_def = struct.pack("<5I", 0xFFFFDED3, 0x10210142, 0x000001FF, 0x00000000, 0xAB123579)
    assert U.boot_warnings([(0x10000000, bytes(0x200) + image_def)], rp2350) == []
    assert "no IMAGE_DEF block" in U.boot_warnings([(0x10000000, bytes(0x2000))], rp2350)[0]


# ------------------------------------------------------------------ hilkit flash --board pico
def test_flash_pico_uf2_decodes_to_the_image(rp2040_dir, tmp_path, monkeypatch, capsys):
    from hilkit.host import flash
    monkeypatch.setattr(flash, "mount_points", lambda: [])       # no boot drive on this machine
    man = json.loads((rp2040_dir / "hilkit.json").read_text())
    elf = rp2040_dir / man["image"]
    out = tmp_path / "fw.uf2"
    assert cli(["flash", str(rp2040_dir), "--board", "pico", "--uf2", str(out)]) == 0
    data = out.read_bytes()
    blocks = U.read_uf2(data)
    assert {b.family_id for b in blocks} == {0xE48BFF56}
    mem = U.decode_memory(data)
    # The reference: binutils' flash image (objcopy -O binary lays sections out at their load
    # addresses from the lowest one), made by the build beside the ELF.
    flat = elf.with_name(elf.name + ".bin").read_bytes()
    assert min(mem) == 0x10000000
    assert bytes(mem.get(0x10000000 + k, -1) for k in range(len(flat))) == flat
    assert max(mem) < 0x10000000 + len(flat) + 256       # nothing beyond the last page
    # .data is stored at its load address in flash (the reset handler copies it to SRAM), so the
    # UF2 holds it there and never at its SRAM address.
    segs = U.elf_segments(elf)
    assert len(segs) >= 2 and all(0x10000000 <= a < 0x10200000 for a, _ in segs)
    assert not any(0x20000000 <= a < 0x30000000 for a in mem)
    marker = struct.pack("<4I", 0x11223344, 0x55667788, 0x99AABBCC, 0xDDEEFF00)
    at = flat.find(marker)
    assert at > 0 and any(a == 0x10000000 + at for a, _ in segs)   # .data's segment starts there
    err = capsys.readouterr().err
    assert f"{len(blocks)} blocks, family rp2040 (0xe48bff56)" in err
    # This test image has no boot2 (the hardware board layer would add it): said, not hidden.
    assert "warning: no valid boot2 at 0x10000000" in err


def test_flash_pico2_raw_binary_family(tmp_path, monkeypatch):
    from hilkit.host import flash
    monkeypatch.setattr(flash, "mount_points", lambda: [])
    b = tmp_path / "app.bin"
    payload = bytes((i * 7) & 0xFF for i in range(1000))
    b.write_bytes(payload)
    out = tmp_path / "app.uf2"
    assert cli(["flash", str(b), "--board", "pico2", "--base", "0x10000000", "--uf2", str(out)]) == 0
    blocks = U.read_uf2(out.read_bytes())
    assert [b.family_id for b in blocks] == [0xE48BFF59] * 4
    mem = U.decode_memory(out.read_bytes())
    assert bytes(mem[0x10000000 + k] for k in range(1000)) == payload


def test_qemu_twin_image_is_refused(tmp_path, monkeypatch, capsys):
    """The pico build that runs under QEMU (mps2-an385, code at 0) must never become a UF2."""
    from hilkit.host import flash
    monkeypatch.setattr(flash, "mount_points", lambda: [])
    twin = build_compiled_dir(tmp_path, "pico")
    out = tmp_path / "twin.uf2"
    assert cli(["flash", str(twin), "--board", "pico", "--uf2", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "outside the rp2040 flash" in err[0] and "QEMU twin -M mps2-an385" in err[0]
    assert not out.exists()


def test_uf2_files_are_copied_to_the_boot_drive(rp2040_dir, tmp_path, monkeypatch, capsys):
    from hilkit.host import flash
    drive = tmp_path / "RPI-RP2"
    drive.mkdir()
    (drive / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n")
    other = tmp_path / "OTHER"
    other.mkdir()
    (other / "INFO_UF2.TXT").write_text("UF2 Bootloader v1.0\nBoard-ID: RP2350\n")
    monkeypatch.setattr(flash, "mount_points", lambda: [other, drive, tmp_path / "none"])
    assert cli(["flash", str(rp2040_dir), "--board", "pico"]) == 0
    copied = (drive / "hilkit.uf2").read_bytes()
    man = json.loads((rp2040_dir / "hilkit.json").read_text())
    assert copied == (rp2040_dir / (man["image"] + ".uf2")).read_bytes()
    assert not (other / "hilkit.uf2").exists()
    shutil.rmtree(drive)
    assert cli(["flash", str(rp2040_dir), "--board", "pico"]) == 2
    assert "no RPI-RP2 drive found" in capsys.readouterr().err
