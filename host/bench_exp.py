"""`hilkit bench exp`: the exp kernels of kernels_c/hk_exp.h on one board, per exp variant.

    from hilkit.host import bench_exp
    result = bench_exp.run("mps2-an386", n=1024)   # {"board", "n", "results": [...]} (see run())

Builds the bench program (bench/exp/exp_bench.c, found with `resource_dir("bench")`, so it works
from a checkout and from an installed wheel) for the board, runs it (natively, or under QEMU with
the hk_insn plugin counting the instructions between the two marker functions around each kernel
call), and reads back every kernel's outputs, so the errors are those of the board's own results.
Boards: host (ns/element: median of interleaved rounds in one process), mps2-an386 (Cortex-M4F,
bare metal, semihosting), mps2-an500 (Cortex-M7), mps3-an547 (Cortex-M55 with Helium), rpi4
(Cortex-A72, static aarch64 binary under qemu-aarch64), rpi2 (Cortex-A7 NEON, static armhf binary
under qemu-arm). The bare-metal images use bench/exp's own startup and linker script.
The errors are against float64 formulas written out below (independent of hilkit.models).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .errors import HilkitError, UsageError

OPS = ("softmax", "logistic", "gelu", "gelu_tanh")
EXPS = ("libm", "quake1", "quake2")
COMMON = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]
QEMU_SYS = ["-display", "none", "-monitor", "none", "-serial", "none",
            "-semihosting-config", "enable=on,target=native"]

BOARDS = {
    "host": {"cc": "gcc", "flags": ["-DHK_BENCH_TIMING"], "libs": ["-lm"]},
    "mps2-an386": {"cc": "arm-none-eabi-gcc",
                   "flags": ["-mthumb", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
                   "bare": "mps2_an386.ld", "qemu": ["qemu-system-arm", "-M", "mps2-an386"]},
    "mps2-an500": {"cc": "arm-none-eabi-gcc",
                   "flags": ["-mthumb", "-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard"],
                   "bare": "mps2_an386.ld", "qemu": ["qemu-system-arm", "-M", "mps2-an500"]},
    "mps3-an547": {"cc": "arm-none-eabi-gcc", "flags": ["-mthumb", "-mcpu=cortex-m55", "-mfloat-abi=hard"],
                   "bare": "mps3_an547.ld", "qemu": ["qemu-system-arm", "-M", "mps3-an547"]},
    "rpi4": {"cc": "aarch64-linux-gnu-gcc", "flags": ["-mcpu=cortex-a72", "-static"], "libs": ["-lm"],
             "qemu": ["qemu-aarch64", "-cpu", "cortex-a72"]},
    "rpi2": {"cc": "arm-linux-gnueabihf-gcc",
             "flags": ["-mcpu=cortex-a7", "-mfpu=neon-vfpv4", "-mfloat-abi=hard", "-static"], "libs": ["-lm"],
             "qemu": ["qemu-arm", "-cpu", "cortex-a7"]},
}


class BenchError(HilkitError):
    """The bench could not be built or run (missing tool, compiler error, QEMU failure)."""


def bench_dir() -> Path:
    """bench/exp/ (exp_bench.c, exp_error.c, the bare-metal startup and linker scripts)."""
    from hilkit.codegen.build import resource_dir
    d = resource_dir("bench") / "exp"
    if not (d / "exp_bench.c").is_file():
        raise BenchError(f"{d / 'exp_bench.c'} not found: reinstall hilkit (`make setup`)")
    return d


def kernels_dir() -> Path:
    """kernels_c/ of the checkout or of the installed package data."""
    from hilkit.codegen.build import resource_dir
    return resource_dir("kernels_c")


def check_board(board: str) -> dict:
    if board not in BOARDS:
        raise UsageError(f"`bench exp` has no build for board {board!r}: use one of {', '.join(BOARDS)}")
    return BOARDS[board]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BenchError(f"{name} not found: run `make setup`")
    return path


def _plugin() -> Path:
    from .qemu import plugin_path
    return plugin_path()


def _markers(image: Path) -> tuple[int, int]:
    from .elf import symbol_addresses
    syms = symbol_addresses(image, ("hk_bench_begin", "hk_bench_end"))
    if len(syms) != 2:
        raise BenchError(f"{image}: marker functions hk_bench_begin/hk_bench_end not found")
    return syms["hk_bench_begin"], syms["hk_bench_end"]


def bare_metal_args(b: dict) -> list[str]:
    """Link arguments of a bare-metal bench image: bench/exp's startup and linker script, semihosting."""
    d = bench_dir()
    return ["-nostartfiles", "-T", str(d / b["bare"]), str(d / "m_startup.c"), "-lm", "-lc", "-lgcc"]


def build(board: str, out_dir: Path, n: int = 1024) -> Path:
    """Compile the bench program for `board` into out_dir; returns the executable/ELF."""
    b = check_board(board)
    exe = Path(out_dir) / f"exp_bench_{board}.elf"
    cmd = [_tool(b["cc"]), *COMMON, *b["flags"], f"-DHK_BENCH_N={n}", f"-I{kernels_dir()}",
           "-o", str(exe), str(bench_dir() / "exp_bench.c")]
    cmd += bare_metal_args(b) if "bare" in b else b.get("libs", [])
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise BenchError(f"building the exp bench for {board} failed:\n{' '.join(cmd)}\n{p.stderr}")
    return exe


def qemu_command(board: str, exe: Path, plugin: list[str]) -> list[str]:
    """The QEMU command that runs a bench program of `board` (with `-plugin ...` arguments)."""
    b = BOARDS[board]
    qemu = [_tool(b["qemu"][0]), *b["qemu"][1:]]
    if "bare" in b:
        return [*qemu, *QEMU_SYS, "-kernel", str(exe), *plugin]
    return ["env", "-i", *qemu, *plugin, str(exe)]  # env -i: the environment changes the count


def run_program(board: str, cmd: list[str], timeout: float) -> str:
    """Run a bench program's command; its output (semihosting output comes on stderr)."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"the bench on {board} timed out after {timeout:.0f} s") from None
    if p.returncode != 0:
        raise BenchError(f"the bench on {board} exited with {p.returncode}:\n{' '.join(cmd)}\n{p.stderr[-2000:]}")
    # QEMU's semihosting console writes to stderr when stdout is not a terminal
    return p.stdout + "\n" + p.stderr if "bare" in BOARDS[board] else p.stdout


def execute(board: str, exe: Path, counts: Path | None, timeout: float = 600) -> str:
    """Run the bench; with `counts`, under QEMU with the plugin writing the span counts there."""
    b = BOARDS[board]
    if "qemu" not in b:
        return run_program(board, [str(exe)], timeout)
    plug = []
    if counts is not None:
        begin, end = _markers(exe)
        plug = ["-plugin", f"{_plugin()},begin={begin:#x},end={end:#x},out={counts}"]
    return run_program(board, qemu_command(board, exe, plug), timeout)


def parse(stdout: str) -> tuple[list[tuple[str, str]], dict[tuple[str, str], np.ndarray], dict]:
    """Kernel order, outputs (float32 arrays) and host timings (ns/element) from the bench's stdout."""
    order, outs, ns = [], {}, {}
    words: list[int] = []
    for line in stdout.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "K":
            words = []
            order.append((f[1], f[2]))
            outs[(f[1], f[2])] = words
        elif f[0] == "Y":
            words.extend(int(w, 16) for w in f[1:])
        elif f[0] == "T":
            ns[(f[1], f[2])] = float(f[3])
    arrays = {k: np.array(v, dtype=np.uint32).view(np.float32) for k, v in outs.items()}
    return order, arrays, ns


def bench_input(n: int) -> np.ndarray:
    """The bench's input, as exp_bench.c makes it (LCG, uniform in [-8, 8))."""
    s = 12345
    out = np.empty(n, dtype=np.float32)
    for i in range(n):
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        out[i] = np.float32(s >> 8) * np.float32(16.0 / 16777216.0) - np.float32(8.0)
    return out


def exact(op: str, x: np.ndarray) -> np.ndarray:
    """The kernel in float64 with the exact exp."""
    x = x.astype(np.float64)
    if op == "softmax":
        e = np.exp(x - x.max())
        return e / e.sum()
    if op == "logistic":
        return 1.0 / (1.0 + np.exp(-x))
    if op == "gelu":
        return x / (1.0 + np.exp(-1.702 * x))
    if op == "gelu_tanh":
        # 0.5 x (1 + tanh(u)) = x / (1 + e^(-2u)): no cancellation for x << 0
        return x / (1.0 + np.exp(-2.0 * np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))
    raise ValueError(op)


def rel_errors(op: str, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Max and RMS relative error of y against the exact kernel (elements whose exact value is 0
    are skipped)."""
    ref = exact(op, x)
    ok = ref != 0
    r = np.abs(y.astype(np.float64)[ok] - ref[ok]) / np.abs(ref[ok])
    return float(r.max()), float(np.sqrt(np.mean(r * r)))


def run(board: str, n: int = 1024, workdir: str | os.PathLike | None = None) -> dict:
    """Measure every kernel x exp variant on `board` over n floats.

    Returns {"board", "n", "results": [{"kernel", "exp", "max_rel_err", "rms_rel_err",
    "insns_per_elt" (QEMU boards, else None), "ns_per_elt" (host, else None),
    "matches_host_c" (the outputs are bit-identical to this host's build of the same kernel)}]}.
    Instructions per element are (span - empty span) / n, counted exactly by the hk_insn plugin."""
    check_board(board)
    with tempfile.TemporaryDirectory(prefix="hk_expbench_") as tmp:
        out_dir = Path(workdir) if workdir else Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        exe = build(board, out_dir, n)
        counts_file = out_dir / "counts.txt" if "qemu" in BOARDS[board] else None
        stdout = execute(board, exe, counts_file)
        order, outs, ns = parse(stdout)
        insns = None
        if counts_file is not None:
            spans = [int(v) for v in counts_file.read_text().split()]
            if len(spans) != len(order) + 1:
                raise BenchError(f"expected {len(order) + 1} spans from the plugin, got {len(spans)}")
            insns = {k: (c - spans[0]) / n for k, c in zip(order, spans[1:])}
    x = bench_input(n)
    host = _host_outputs(x)
    results = []
    for op in OPS:
        for exp in EXPS:
            y = outs[(op, exp)]
            mx, rms = rel_errors(op, x, y)
            h = host.get((op, exp))
            results.append({
                "kernel": op, "exp": exp, "max_rel_err": mx, "rms_rel_err": rms,
                "insns_per_elt": None if insns is None else round(insns[(op, exp)], 3),
                "ns_per_elt": ns.get((op, exp)),
                "matches_host_c": None if h is None else bool(np.array_equal(h.view(np.uint32), y.view(np.uint32))),
            })
    return {"board": board, "n": n, "results": results}


def print_table(res: dict, console) -> None:
    """The result of `run` as a table: one row per kernel and exp variant."""
    from rich.table import Table
    t = Table(title=f"exp kernels over {res['n']} floats on {res['board']}")
    for col in ("kernel", "exp", "max rel. error", "RMS rel. error", "insns/elt", "ns/elt", "= host C"):
        t.add_column(col, justify="left" if col in ("kernel", "exp") else "right")
    for r in res["results"]:
        t.add_row(r["kernel"], r["exp"], f"{r['max_rel_err']:.3e}", f"{r['rms_rel_err']:.3e}",
                  "n/a" if r["insns_per_elt"] is None else f"{r['insns_per_elt']:.2f}",
                  "n/a" if r["ns_per_elt"] is None else f"{r['ns_per_elt']:.3f}",
                  "n/a" if r["matches_host_c"] is None else ("yes" if r["matches_host_c"] else "NO"))
    console.print(t)


def exhaustive_errors(curve: str | os.PathLike | None = None, timeout: float = 3600) -> dict:
    """Build and run exp_error.c on the host: max/RMS relative error of quake1, quake2 and libm
    expf over every float32 in [-87, 0] and [0, 88] (about 2.2e9 values: ~2 minutes). With
    `curve`, also writes the binned error curves that plot_errors.py --curve reads."""
    with tempfile.TemporaryDirectory(prefix="hk_experr_") as tmp:
        exe = Path(tmp) / "exp_error"
        cmd = [_tool("gcc"), *COMMON, f"-I{kernels_dir()}", "-o", str(exe), str(bench_dir() / "exp_error.c"), "-lm"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise BenchError(f"building exp_error failed:\n{' '.join(cmd)}\n{p.stderr}")
        run_cmd = [str(exe)] + (["--curve", str(curve)] if curve else [])
        p = subprocess.run(run_cmd, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise BenchError(f"exp_error failed ({p.returncode}): {p.stderr[-2000:]}")
    return json.loads(p.stdout)


def _host_outputs(x: np.ndarray) -> dict:
    try:
        from hilkit.host import _kernels
    except ImportError:
        return {}
    return {(op, exp): np.frombuffer(_kernels.exp_kernel(f"{op}_{exp}", x), dtype=np.float32)
            for op in OPS for exp in EXPS}
