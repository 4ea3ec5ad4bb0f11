"""Build helpers for the protocol tests: the host firmware (firmware/main.c + hk_proto.c +
boards/common/board_linux.c + the test model in proto_model/) and the golden-byte driver."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

C_DIR = Path(__file__).resolve().parent
ROOT = C_DIR.parent.parent
FIRMWARE = ROOT / "firmware"
MODEL = C_DIR / "proto_model"

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]

# Every toolchain the firmware must compile warning-free with (one representative CPU each).
CROSS = {
    "gcc": ["gcc"],
    "m0plus": ["arm-none-eabi-gcc", "-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft"],
    "m4f": ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
    "m7": ["arm-none-eabi-gcc", "-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard"],
    "m33": ["arm-none-eabi-gcc", "-mcpu=cortex-m33", "-mthumb", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"],
    "m55": ["arm-none-eabi-gcc", "-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"],
    "aarch64": ["aarch64-linux-gnu-gcc", "-mcpu=cortex-a72"],
    "armhf": ["arm-linux-gnueabihf-gcc", "-mcpu=cortex-a7", "-mfpu=neon-vfpv4", "-mfloat-abi=hard"],
}

FIRMWARE_SOURCES = [FIRMWARE / "main.c", FIRMWARE / "hk_proto.c", ROOT / "boards" / "common" / "board_linux.c",
                    MODEL / "model.c"]


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def run_cc(cmd: list) -> None:
    cmd = [str(c) for c in cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, f"compile failed:\n{' '.join(cmd)}\n{p.stdout}{p.stderr}"
    assert p.stderr.strip() == "", f"compiler printed warnings:\n{' '.join(cmd)}\n{p.stderr}"


def build_firmware(out: Path, cc: list | None = None, flags: list | None = None,
                   board_id: str = "host-test", opt: str = "-O2") -> Path:
    """The board-independent firmware for a Linux target with the 4-in/3-out test model."""
    cc = cc or ["gcc"]
    run_cc([*cc, *STRICT, opt, *(flags or []), f'-DHK_BOARD_ID="{board_id}"',
            f"-I{FIRMWARE}", f"-I{MODEL}", "-o", out, *FIRMWARE_SOURCES])
    return Path(out)


def build_golden(out: Path) -> Path:
    run_cc(["gcc", *STRICT, "-O2", f"-I{FIRMWARE}", "-o", out, C_DIR / "proto_golden.c",
            FIRMWARE / "hk_proto.c"])
    return Path(out)


def model_reference(x):
    """The test model in numpy, float32 operation by operation (bit-identical to model.c)."""
    import numpy as np
    x = np.asarray(x, dtype=np.float32)
    x0, x1, x2, x3 = x
    with np.errstate(over="ignore", invalid="ignore"):
        return np.array([x0 + np.float32(2.0) * x1,
                         x2 * x3 - x0,
                         (((x0 + x1) + x2) + x3) * np.float32(0.25)], dtype=np.float32)


FAIL_INPUT = -12345.0  # proto_model/model.h: PROTO_MODEL_FAIL_INPUT
