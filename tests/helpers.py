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


def build_driver(gen_dir: Path, exe: Path, flags: list[str]) -> None:
    """Build a generated model (gen_dir/model.c) with tests/c/model_driver.c into `exe`."""
    from hilkit.codegen.build import resource_dir
    inc = [f"-I{resource_dir('kernels_c')}", f"-I{resource_dir('firmware')}", f"-I{gen_dir}"]
    run_cc(["gcc", *STRICT, *flags, *inc, str(gen_dir / "model.c"), str(ROOT / "tests" / "c" / "model_driver.c"),
            "-o", str(exe), "-lm"])


def run_driver(exe: Path, x, n_out: int, n_extra: int = 0):
    """Run the driver on a batch: (outputs float32 [N, n_out], counters uint32 [N, n_extra])."""
    import numpy as np
    p = subprocess.run([str(exe)], input=np.ascontiguousarray(x, np.float32).tobytes(), capture_output=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    raw = np.frombuffer(p.stdout, np.uint8).reshape(len(x), 4 * (n_out + n_extra))
    return raw[:, :4 * n_out].copy().view(np.float32), raw[:, 4 * n_out:].copy().view(np.uint32)
