"""Shared test helpers: building small C programs with the project's strict flags."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1"]

def board_compilers() -> dict[str, list[str]]:
    """Every board's compiler command with its own flags (picolibc's specs for rpi3-bm): {board id: argv}."""
    from hilkit.codegen.build import TOOLCHAIN_COMPILERS
    from hilkit.host import boards

    out = {}
    for b in boards.list_boards():
        cc = "gcc" if b.toolchain == "host-gcc" else TOOLCHAIN_COMPILERS[b.toolchain]
        extra = ["--specs=picolibc.specs"] if b.toolchain == "aarch64-picolibc" else []
        out[b.id] = [cc, *extra, *b.cflags]
    return out


CROSS = board_compilers()


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def run_cc(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a compiler command; fail the test with the compiler's message if it does not succeed."""
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"{' '.join(cmd)}\n{p.stdout}\n{p.stderr}"
    return p
