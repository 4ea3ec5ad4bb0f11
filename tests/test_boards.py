"""Boards as data (board.toml), the resource lookup, the ELF reader and the build driver."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from hilkit.codegen import build
from hilkit.host import boards, elf

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = {"host", "rpi4", "rpi-zero2", "rpi2", "rpi3-bm", "mps2-an386", "mps2-an500", "mps3-an547",
            "pico", "pico2"}
TEST_MODEL = ROOT / "boards" / "test" / "model"
ECHO = ROOT / "boards" / "test" / "hk_echo.c"


def test_every_board_loads_and_validates():
    got = {b.id: b for b in boards.list_boards()}
    assert set(got) == EXPECTED
    for b in got.values():
        assert b.name and b.cpu and b.sources, b.id
        assert b.clock_mhz > 0 and b.cpi > 0, b.id
        assert b.active_mw is None or b.active_mw > 0, b.id
        assert (ROOT / "boards" / "cmake" / f"{b.toolchain}.cmake").is_file(), b.id
        for f in b.files:
            assert (ROOT / "boards" / f).is_file(), (b.id, f)
        if b.runtime == "bare-metal":
            assert b.ram_bytes and (b.dir / b.linker_script).is_file(), b.id
            assert b.qemu is not None and b.qemu.system and b.run_kind == "qemu-system"
        elif b.runtime == "linux-user":
            assert "-static" in b.ldflags and b.run_kind == "qemu-user", b.id
        row = b.summary()
        assert row["id"] == b.id and set(row) >= {"cpu", "runtime", "flash_bytes", "ram_bytes", "clock_mhz", "qemu"}
    assert got["mps2-an386"].qemu.machine == "mps2-an386"
    assert got["pico"].qemu.machine == "mps2-an385" and "-mfloat-abi=soft" in got["pico"].cflags
    assert got["pico2"].qemu.machine == "mps2-an505"
    assert got["rpi2"].qemu.binary == "qemu-arm" and "-mfpu=neon-vfpv4" in got["rpi2"].cflags
    assert got["rpi4"].qemu.cpu == "cortex-a72" and got["rpi-zero2"].qemu.cpu == "cortex-a53"
    # Estimates must say so.
    for b in got.values():
        assert any("estimate" in s for s in b.sources), b.id


def test_unknown_board_lists_valid_ids():
    with pytest.raises(boards.BoardError) as e:
        boards.get_board("mps2-an999")
    msg = str(e.value)
    assert "mps2-an999" in msg and "mps2-an386" in msg and "pico2" in msg
    b = boards.get_board("pico")
    assert boards.get_board(b) is b


@pytest.mark.parametrize("edit, complaint", [
    (lambda s: s.replace('runtime = "bare-metal"', 'runtime = "rtos"'), "runtime must be one of"),
    (lambda s: s.replace("clock_mhz = 25.0", "clock_mhz = -1"), "clock_mhz"),
    (lambda s: s.replace("ram_bytes = 4194304", ""), "ram_bytes"),
    (lambda s: s.replace('machine = "mps2-an386"', ""), "qemu.machine"),
    (lambda s: s.replace('id = "mps2-an386"', 'id = "other"'), "does not match its folder"),
    (lambda s: s.replace("cpi = 1.25", 'cpi = "fast"'), "cpi"),
    (lambda s: s + "\n[[[", "board.toml"),
])
def test_invalid_board_toml_is_rejected(tmp_path, edit, complaint):
    src = ROOT / "boards" / "mps2-an386"
    d = tmp_path / "boards" / "mps2-an386"
    shutil.copytree(src, d)
    shutil.copytree(ROOT / "boards" / "common", tmp_path / "boards" / "common")
    p = d / "board.toml"
    p.write_text(edit(p.read_text()))
    with pytest.raises(boards.BoardError, match=complaint):
        boards.parse_board(p)


def test_qemu_machines_and_cpus_exist():
    for b in boards.list_boards():
        if b.qemu is None or shutil.which(b.qemu.binary) is None:
            continue
        if b.qemu.system:
            out = subprocess.run([b.qemu.binary, "-M", "help"], capture_output=True, text=True, timeout=30).stdout
            assert any(line.split()[:1] == [b.qemu.machine] for line in out.splitlines()), b.id
        if b.qemu.cpu:
            args = [b.qemu.binary] + (["-M", b.qemu.machine] if b.qemu.system else []) + ["-cpu", "help"]
            out = subprocess.run(args, capture_output=True, text=True, timeout=30).stdout
            assert b.qemu.cpu in out, b.id


def test_resource_dir_prefers_the_checkout():
    for name in ("boards", "firmware", "kernels_c"):
        assert build.resource_dir(name) == ROOT / name
    with pytest.raises(build.BuildError, match="cannot find"):
        build.resource_dir("no-such-folder")


def test_missing_compiler_is_a_clear_build_error(monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda n: None if n == "arm-none-eabi-gcc" else real_which(n))
    with pytest.raises(build.BuildError, match=r"arm-none-eabi-gcc not found: run `make setup`"):
        build.build_firmware(TEST_MODEL, "mps2-an386", build_dir=Path("/nonexistent-never-used"))


def test_build_without_model_is_a_clear_error(tmp_path):
    with pytest.raises(build.BuildError, match="no generated model.h"):
        build.build_firmware(tmp_path, "host")


def test_host_build_is_fast_and_cached(tmp_path):
    """Configure + build of the firmware with a small model for the host board, then a no-op rebuild."""
    t0 = time.perf_counter()
    image = build.build_firmware(TEST_MODEL, "host", build_dir=tmp_path / "b")
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = build.build_firmware(TEST_MODEL, "host", build_dir=tmp_path / "b")
    second = time.perf_counter() - t0
    assert image == again and image.is_file()
    assert first < 2.0, f"configure + build took {first:.2f} s"
    assert second < 0.5, f"a no-op rebuild took {second:.2f} s (configure cache not reused?)"


def test_compile_error_is_reported(tmp_path):
    bad = tmp_path / "bad.c"
    bad.write_text("int main(void) { int unused; return 0; }\n")  # -Werror: unused variable
    with pytest.raises(build.BuildError, match="unused"):
        build.build_firmware(None, "host", build_dir=tmp_path / "b", sources=[bad])


def _readelf_arch(image: Path) -> str:
    out = subprocess.run(["arm-none-eabi-readelf", "-A", str(image)], capture_output=True, text=True).stdout
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if "Tag_CPU_arch:" in ln), "")


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
def test_bare_metal_images_fit_their_memory_map(tmp_path):
    for bid, arch in (("pico", "v6S-M"), ("mps2-an386", "v7E-M"), ("pico2", "v8-M.mainline")):
        b = boards.get_board(bid)
        image = build.build_firmware(TEST_MODEL, bid, build_dir=tmp_path / bid)
        assert (image.parent / "hk_firmware.bin").is_file()
        secs = {s.name: s for s in elf.read_sections(image)}
        lds = (b.dir / b.linker_script).read_text()
        # The vector table sits where the core boots from: the first address of the code region.
        origin = int(lds.split("ORIGIN = ")[1].split(",")[0], 16)
        assert secs[".text"].addr == origin
        syms = elf.symbol_addresses(image, ["hk_vectors", "hk_mark_begin", "hk_mark_end", "__stack_top"])
        assert syms["hk_vectors"] == origin
        assert syms["hk_mark_begin"] % 2 == 0 and syms["hk_mark_begin"] != syms["hk_mark_end"]
        flash, ram = build.image_sizes(image, b)
        assert 0 < flash <= b.flash_bytes and 0 < ram <= b.ram_bytes
        if shutil.which("arm-none-eabi-readelf"):
            assert _readelf_arch(image) == arch, bid


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
def test_a_model_too_big_for_the_board_does_not_link(tmp_path):
    big = tmp_path / "big.c"
    big.write_text('#include "hk_board.h"\nstatic unsigned char huge[300u * 1024u];\n'
                   "int main(void) { hk_board_init(); huge[hk_board_getc()] = 1; hk_board_write(huge, 1); return 0; }\n")
    with pytest.raises(build.BuildError, match="do not fit|overflow|will not fit"):
        build.build_firmware(None, "pico", build_dir=tmp_path / "b", sources=[big])
