"""Build and run bench/exp/exp_agree.c on a target, and recompute its input sets and output hashes
on the host (from hilkit.models.quake), so a test can check every path on every target:
fast path == portable C on the target (exp_agree.c itself), and both == numpy (the hashes).

    rows = run("rpi4")                # [{"set", "op", "exp", "n", "bad", "flushed", "hash_c", "hash_fast"}]
    expected_hashes(set_id, op, exp)  # the same hash from the numpy reference (exact, denormals flushed)
"""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from exp_bench import BOARDS, COMMON, HERE, QEMU_SYS, BenchError, _tool, kernels_dir

TARGETS = dict(BOARDS)
TARGETS.pop("host")
TARGETS.update({
    "host": {"cc": "gcc", "flags": [], "libs": ["-lm"]},
    # the portable path on a core without an FPU (soft-float), run on the Cortex-M3 board
    "mps2-an385-m0plus": {"cc": "arm-none-eabi-gcc", "flags": ["-mthumb", "-mcpu=cortex-m0plus"],
                          "bare": "mps2_an386.ld", "qemu": ["qemu-system-arm", "-M", "mps2-an385"]},
    # FMA contraction allowed: the kernels must still give the same bits
    "rpi4-contract": {"cc": "aarch64-linux-gnu-gcc", "flags": ["-mcpu=cortex-a72", "-static",
                      "-std=gnu99", "-ffp-contract=fast"], "libs": ["-lm"],
                      "qemu": ["qemu-aarch64", "-cpu", "cortex-a72"]},
})

EDGE_BITS = [0xff800000, 0xc2c80000, 0xc2b00000, 0xc2ae0000, 0xc2b20000, 0x00000000, 0x80000000,
             0x42b00000, 0x42b20000, 0x42b17218, 0x42b18000, 0x7f800000, 0x00000001, 0x807fffff,
             0x00800000, 0x7f7fffff, 0xff7fffff, 0x3f800000, 0xbf800000, 0x4e6e6b28, 0xce6e6b28,
             0x43800000, 0x43808000, 0x7fc00000, 0xffc00000, 0x7f800001]


class _Lcg:
    def __init__(self, seed: int):
        self.s = seed & 0xFFFFFFFF

    def __call__(self) -> int:
        self.s = (self.s * 1664525 + 1013904223) & 0xFFFFFFFF
        return self.s


def _ints(rng: _Lcg, n: int, shift: int, offset: float) -> np.ndarray:
    v = np.array([(rng() >> 8) - 8388608 for _ in range(n)], dtype=np.float32)
    return (v * np.float32(2.0 ** -shift) + np.float32(offset)).astype(np.float32)


def make_set(k: int) -> np.ndarray | None:
    """Input set k of exp_agree.c (None past the last)."""
    rng = _Lcg(2024 + k)
    if k == 0:
        return _ints(rng, 1000, 19, 0.0)
    if k == 1:
        return _ints(rng, 1023, 16, 0.0)
    if k == 2:
        return np.array([rng() for _ in range(517)], dtype=np.uint32).view(np.float32)
    if k in (3, 4):
        bits = [b for b in EDGE_BITS
                if k == 3 or not ((b & 0x7F800000) == 0x7F800000 and b != 0xFF800000)]
        return np.array(bits, dtype=np.uint32).view(np.float32)
    if k == 5:
        return _ints(rng, 300, 21, 1000.0)
    if k == 6:
        x = _ints(rng, 333, 19, 0.0)
        x[::3] = -np.inf
        return x
    if k == 7:
        return _ints(rng, 1000, 14, -256.0)
    if 8 <= k < 8 + 19:
        return _ints(rng, k - 7, 19, 0.0)
    return None


def fnv(y: np.ndarray) -> int:
    """FNV-1a over the output bits, NaN written as 0x7FC00000 (as exp_agree.c)."""
    u = np.where(np.isnan(y), np.uint32(0x7FC00000), y.view(np.uint32)).astype("<u4")
    h = 2166136261
    for b in u.tobytes():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def expected_hashes(set_id: int, op: str, exp: str) -> tuple[int, int]:
    """The numpy reference's hash, and the hash with subnormal outputs flushed to (signed) zero,
    which is what cores whose SIMD flushes denormals produce (armv7 NEON; MVE under QEMU)."""
    from hilkit.models import quake
    y = quake.kernel(op, exp)(make_set(set_id))
    sub = (y != 0) & (np.abs(y) < np.finfo(np.float32).tiny)
    return fnv(y), fnv(np.where(sub, np.copysign(np.float32(0), y), y).astype(np.float32))


def build(target: str, out_dir: Path) -> Path:
    t = TARGETS[target]
    exe = out_dir / f"exp_agree_{target}.elf"
    flags = [f for f in COMMON if not (f.startswith("-std=") and any(g.startswith("-std=") for g in t["flags"]))]
    cmd = [_tool(t["cc"]), *flags, *t["flags"], f"-I{kernels_dir()}", "-o", str(exe), str(HERE / "exp_agree.c")]
    if "bare" in t:
        cmd += ["-nostartfiles", "-T", str(HERE / t["bare"]), str(HERE / "m_startup.c"), "-lm", "-lc", "-lgcc"]
    else:
        cmd += t.get("libs", [])
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise BenchError(f"building exp_agree for {target} failed:\n{' '.join(cmd)}\n{p.stderr}")
    return exe


def run(target: str, timeout: float = 300) -> list[dict]:
    """Build exp_agree.c for `target`, run it, return its R rows (raises if it did not finish)."""
    if target not in TARGETS:
        raise BenchError(f"unknown target {target!r}: use one of {', '.join(TARGETS)}")
    t = TARGETS[target]
    with tempfile.TemporaryDirectory(prefix="hk_expagree_") as tmp:
        exe = build(target, Path(tmp))
        if "qemu" not in t:
            cmd = [str(exe)]
        elif "bare" in t:
            cmd = [_tool(t["qemu"][0]), *t["qemu"][1:], *QEMU_SYS, "-kernel", str(exe)]
        else:
            cmd = ["env", "-i", _tool(t["qemu"][0]), *t["qemu"][1:], str(exe)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    text = p.stdout + "\n" + p.stderr
    rows = []
    done = None
    for line in text.splitlines():
        f = line.split()
        if f and f[0] == "R":
            rows.append({"set": int(f[1]), "op": f[2], "exp": f[3], "n": int(f[4]), "bad": int(f[5]),
                         "flushed": int(f[6]), "hash_c": int(f[7], 16), "hash_fast": int(f[8], 16)})
        elif f and f[0] == "DONE":
            done = int(f[1])
    if done is None:
        raise BenchError(f"exp_agree on {target} did not finish (exit {p.returncode}):\n{text[-2000:]}")
    return rows
