"""Shared test helpers: building small C programs with the project's strict flags."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1"]

# Every toolchain the boards use, with the flags of one representative CPU each.
CROSS = {
    "arm-none-eabi-gcc m4f": ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16",
                              "-mfloat-abi=hard"],
    "arm-none-eabi-gcc m0+": ["arm-none-eabi-gcc", "-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft"],
    "arm-none-eabi-gcc m7": ["arm-none-eabi-gcc", "-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16",
                             "-mfloat-abi=hard"],
    "arm-none-eabi-gcc m33": ["arm-none-eabi-gcc", "-mcpu=cortex-m33", "-mthumb", "-mfpu=fpv5-sp-d16",
                              "-mfloat-abi=hard"],
    "arm-none-eabi-gcc m55": ["arm-none-eabi-gcc", "-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"],
    "aarch64-linux-gnu-gcc a72": ["aarch64-linux-gnu-gcc", "-mcpu=cortex-a72"],
    "aarch64-linux-gnu-gcc a53 (bare metal flags)": ["aarch64-linux-gnu-gcc", "-mcpu=cortex-a53",
                                                     "-mgeneral-regs-only"],
    "arm-linux-gnueabihf-gcc a7": ["arm-linux-gnueabihf-gcc", "-mcpu=cortex-a7", "-mfpu=neon-vfpv4",
                                   "-mfloat-abi=hard"],
    "gcc host": ["gcc"],
}


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def run_cc(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a compiler command; fail the test with the compiler's message if it does not succeed."""
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"{' '.join(cmd)}\n{p.stdout}\n{p.stderr}"
    return p
