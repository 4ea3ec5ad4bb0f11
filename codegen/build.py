"""Build driver: CMake + Ninja over firmware/CMakeLists.txt for one board and one generated model.

`build_firmware(model_dir, board)` returns the firmware image (ELF or static Linux executable).
The CMake cache is kept in the build directory, and configure runs again only when the inputs that
CMake sees (toolchain, flags, file lists) change: a rebuild is one Ninja call."""
from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from hilkit.host.errors import HilkitError

TOOLCHAIN_COMPILERS = {
    "host-gcc": None,
    "arm-none-eabi": "arm-none-eabi-gcc",
    "aarch64-linux-gnu": "aarch64-linux-gnu-gcc",
    "arm-linux-gnueabihf": "arm-linux-gnueabihf-gcc",
    "aarch64-picolibc": "aarch64-linux-gnu-gcc",
}
PICOLIBC_AARCH64_SPECS = Path("/usr/lib/picolibc/aarch64-linux-gnu/picolibc.specs")
IMAGE_NAME = "hk_firmware"


class BuildError(HilkitError):
    """A firmware build that could not run or failed (missing tool, compile or link error)."""


def resource_dir(name: str) -> Path:
    """The project folder `name` (kernels_c, firmware, boards, bench) from a checkout or an installed wheel.

    A checkout wins: in editable mode `hilkit.host.__path__` lists both the site-packages stub and
    the checkout's host/, and the checkout's siblings are the live sources. A wheel ships them under
    <dir of hilkit.host._kernels>/share/<name>."""
    import hilkit.host as host_pkg

    for entry in host_pkg.__path__:
        cand = Path(entry).resolve().parent / name
        if cand.is_dir() and (cand.parent / "host" / "qemu_plugin").is_dir():
            return cand
    try:
        from hilkit.host import _kernels
        cand = Path(_kernels.__file__).resolve().parent / "share" / name
        if cand.is_dir():
            return cand
    except ImportError:
        pass
    for entry in host_pkg.__path__:
        cand = Path(entry).resolve() / "share" / name
        if cand.is_dir():
            return cand
    raise BuildError(f"cannot find hilkit's {name}/ (neither a checkout nor an installed share/{name}): "
                     "reinstall hilkit (`make setup`)")


@functools.lru_cache(maxsize=None)
def source_identity() -> str:
    """A hash of everything of hilkit's that a firmware build depends on: the Python packages that
    generate the C and the C resources (kernels, firmware, boards). Two installations with other
    sources never share a cached build."""
    import hilkit

    h = hashlib.sha256()
    roots = [Path(p) for p in hilkit.__path__]
    files = []
    for pkg in ("core", "ops", "codegen", "host", "models"):
        for root in roots:
            files += sorted((root / pkg).rglob("*.py")) if (root / pkg).is_dir() else []
    for name in ("kernels_c", "firmware", "boards"):
        files += sorted(f for f in resource_dir(name).rglob("*") if f.is_file() and "__pycache__" not in f.parts)
    for f in files:
        h.update(str(f).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def _tool(name: str) -> str:
    """cmake/ninja: beside this Python (the venv), then from the Python package, then PATH."""
    cand = Path(sys.executable).parent / name
    if cand.is_file() and os.access(cand, os.X_OK):
        return str(cand)
    try:
        mod = __import__(name)
        d = getattr(mod, "BIN_DIR", None) or getattr(mod, "CMAKE_BIN_DIR", None)
        if d and (Path(d) / name).is_file():
            return str(Path(d) / name)
    except ImportError:
        pass
    found = shutil.which(name)
    if found:
        return found
    raise BuildError(f"{name} not found: run `make setup` (it installs the {name} Python package)")


def check_toolchain(board) -> None:
    """Raise BuildError naming the missing compiler (or C library) of this board, if any."""
    cc = TOOLCHAIN_COMPILERS.get(board.toolchain)
    if board.toolchain == "host-gcc":
        if not any(shutil.which(c) for c in ("gcc", "cc", "clang")):
            raise BuildError("no host C compiler (gcc, cc or clang) found: run `make setup`")
        return
    if cc is None or shutil.which(cc) is None:
        raise BuildError(f"{cc or board.toolchain} not found: run `make setup`")
    if board.toolchain == "aarch64-picolibc" and not PICOLIBC_AARCH64_SPECS.is_file():
        raise BuildError("picolibc for aarch64 not found (board rpi3-bm): "
                         "install the Debian package picolibc-aarch64-linux-gnu (`make setup`)")


def _configure_args(board, model_dir: Path | None, sources) -> list[str]:
    boards = resource_dir("boards")
    defs = [f"{k}={v}" for k, v in sorted(board.defines.items())]
    files = [str(boards / f) for f in board.files]
    args = [f"-DCMAKE_TOOLCHAIN_FILE={boards / 'cmake' / (board.toolchain + '.cmake')}",
            f"-DHK_BOARD={board.id}",
            f"-DHK_MODEL_DIR={model_dir.resolve() if model_dir else ''}",
            f"-DHK_BOARD_CFLAGS={';'.join(board.cflags)}",
            f"-DHK_BOARD_LDFLAGS={';'.join(board.ldflags)}",
            f"-DHK_BOARD_SOURCES={';'.join(files)}",
            f"-DHK_BOARD_DEFINES={';'.join(defs)}",
            f"-DHK_LINKER_SCRIPT={board.dir / board.linker_script if board.linker_script else ''}",
            f"-DHK_IMAGE_FORMATS={';'.join(board.image_formats)}",
            f"-DHK_APP_SOURCES={';'.join(str(Path(s).resolve()) for s in sources or [])}",
            f"-DHK_KERNELS_DIR={resource_dir('kernels_c')}",
            f"-DHK_BOARDS_DIR={boards}"]
    # A board's post-link script (the RP2040 boot2 checksum) run on the ELF; always given, so a cached
    # value never outlives the board that set it.
    post = getattr(board, "post_link", None)
    args.append(f"-DHK_POST_LINK={sys.executable + ';' + str(boards / post) if post else ''}")
    return args


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    """Run one build step; it and its children die with hilkit (core.proc.run_group)."""
    from hilkit.core.proc import run_group
    try:
        p = run_group(cmd, cwd=cwd)
    except OSError as e:
        raise BuildError(f"{what}: cannot run {cmd[0]}: {e}") from None
    if p.returncode != 0:
        tail = "\n".join(p.stdout.strip().splitlines()[-40:])
        raise BuildError(f"{what} failed (exit {p.returncode}):\n{tail}")


def build_firmware(model_dir, board, build_dir=None, jobs: int = 2, *, sources=None) -> Path:
    """Build the firmware for `board` (a Board or an id) and the model in `model_dir`; return the image.

    `build_dir` defaults to <model_dir>/build/<board id> (<board id>-hw for a board's hardware image,
    `board.hardware`). `sources` replaces firmware/*.c (and the model) with other programs, e.g. the
    board bring-up test in boards/test/."""
    from hilkit.host.boards import get_board

    board = get_board(board)
    model_dir = Path(model_dir) if model_dir is not None else None
    if sources is None and (model_dir is None or not (model_dir / "model.h").is_file()):
        raise BuildError(f"{model_dir} holds no generated model.h: run `hilkit compile` first")
    if build_dir is None:
        if model_dir is None:
            raise BuildError("give build_dir when building without a model directory")
        build_dir = model_dir / "build" / getattr(board, "build_name", board.id)
    given = Path(build_dir)  # the image is returned under the directory as the caller gave it
    build_dir = given.resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    check_toolchain(board)
    cmake, ninja = _tool("cmake"), _tool("ninja")

    args = _configure_args(board, model_dir, sources)
    listing = sorted(p.name for p in model_dir.glob("*.c")) if model_dir and sources is None else []
    key = hashlib.sha256(json.dumps([args, listing, cmake, ninja]).encode()).hexdigest()
    stamp = build_dir / "hk_configure.json"
    fresh = (build_dir / "build.ninja").is_file() and stamp.is_file() and \
        json.loads(stamp.read_text()).get("key") == key
    if not fresh:
        # Configure from scratch: a cache made elsewhere (another hilkit install, a folder that was
        # built under a temporary name and renamed) makes CMake refuse to configure.
        stamp.unlink(missing_ok=True)
        (build_dir / "CMakeCache.txt").unlink(missing_ok=True)
        shutil.rmtree(build_dir / "CMakeFiles", ignore_errors=True)
        _run([cmake, "-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}", "-S", str(resource_dir("firmware")),
              "-B", str(build_dir), *args], build_dir, f"configuring the firmware for {board.id}")
        stamp.write_text(json.dumps({"key": key, "board": board.id}))
    _run([ninja, "-C", str(build_dir), f"-j{max(1, int(jobs))}"], build_dir, f"building the firmware for {board.id}")
    image = given / IMAGE_NAME
    if not image.is_file():
        raise BuildError(f"the build for {board.id} produced no {image}")
    return image


def image_sizes(image, board) -> tuple[int | None, int | None]:
    """(flash_bytes, ram_bytes) the image uses: text+rodata+data initialisers, and data+bss (+TLS).

    Read from the ELF section headers; (None, None) when the image cannot be read."""
    from hilkit.host.elf import ElfError, read_sections

    try:
        secs = read_sections(Path(image))
    except (OSError, ElfError):
        return None, None
    flash = ram = 0
    for s in secs:
        if not s.alloc or s.size == 0:
            continue
        if s.nobits:
            ram += s.size
        elif s.write:
            ram += s.size
            flash += s.size
        else:
            flash += s.size
    return flash, ram
