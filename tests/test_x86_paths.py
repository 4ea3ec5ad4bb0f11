"""The x86-64 SIMD paths (kernels_c/hk_dense_x86.h, hk_conv_x86.h, hk_attention_x86.h: token dense and
attention heads, hk_norm_x86.h: layer norm; hk_exp_x86.h: the QuAKE kernels) against the portable C of
the same build, bit for bit,
under SSE2 (the x86-64 baseline), AVX2, AVX + FMA and the host board's own flags (-march=native),
with and without FMA contraction; under ASan/UBSan; warning-free (and invisible) with every board's
compiler; and whole generated models on the host board against the portable build.

Only which NaN comes out may differ (the compiler picks the operand order of a commutative add
or multiply, and x86 returns the first NaN operand): outputs are compared with every NaN alike."""
from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hilkit.codegen.generate import generate
from hilkit.host.boards import get_board
from hilkit.models import data, modelfile
from helpers import CROSS, ROOT, STRICT, build_driver, have, run_cc, run_driver

pytestmark = pytest.mark.skipif(not (sys.platform.startswith("linux") and platform.machine() == "x86_64"),
                                reason="x86-64 Linux host only")

AGREE = ROOT / "bench" / "host" / "x86_agree.c"
KERNELS = ROOT / "kernels_c"
CPU_FLAGS = set()
if Path("/proc/cpuinfo").is_file():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            CPU_FLAGS = set(line.split(":", 1)[1].split())
            break

HOST_FLAGS = list(get_board("host").cflags)
# name -> (flags, CPU features they need, expected vector lanes of the NN path and of the exp path).
# The layer norm's x86 path runs wherever the NN path does, except in a GNU C mode with FMA
# contraction (host-board-contract on an FMA core), where it declines and the portable loop runs.
BUILDS = {
    "sse2": (["-O2"], set(), 4, 4),
    "avx2": (["-O2", "-mavx2"], {"avx2"}, 8, 8),
    "avx-fma": (["-O2", "-mavx", "-mfma"], {"avx", "fma"}, 8, 4),
    "host-board": (HOST_FLAGS, set(), None, None),
    "host-board-contract": ([*HOST_FLAGS, "-std=gnu99", "-ffp-contract=fast"], set(), None, None),
}


def _canon(words: np.ndarray) -> np.ndarray:
    """Output bits with every NaN written as 0x7FC00000."""
    nan = ((words & 0x7F800000) == 0x7F800000) & ((words & 0x007FFFFF) != 0)
    return np.where(nan, np.uint32(0x7FC00000), words)


def _agree_pair(tmp: Path, flags: list[str], sanitize: bool = False) -> tuple[tuple[str, dict], tuple[str, dict]]:
    """x86_agree.c built with `flags` twice (the x86 paths, and -DHK_NN_PORTABLE), both compiled at
    once; returns (PATH line, {case: canonical output bits}) of each."""
    san = ["-fsanitize=address,undefined,float-cast-overflow", "-fno-sanitize-recover=all", "-g"] if sanitize else []
    exes, procs = [], []
    for extra in ([], ["-DHK_NN_PORTABLE"]):
        exe = tmp / f"agree{len(extra)}"
        # a later -std wins: the contraction build's -std=gnu99 comes after STRICT's -std=c99
        cmd = ["gcc", *STRICT, *flags, *san, *extra, f"-I{KERNELS}", str(AGREE), "-o", str(exe), "-lm"]
        exes.append(exe)
        procs.append((cmd, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    for cmd, p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, f"{' '.join(cmd)}\n{out}\n{err}"
    return _agree_run(exes[0]), _agree_run(exes[1])


def _agree_run(exe: Path) -> tuple[str, dict]:
    p = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "runtime error" not in p.stderr, p.stderr[-3000:]
    lines = p.stdout.splitlines()
    assert lines[-1] == "DONE"
    cases, cur = {}, None
    for line in lines[1:-1]:
        if line.startswith("C "):
            cur = cases.setdefault(line[2:], [])
        else:
            cur.extend(int(w, 16) for w in line.split())
    return lines[0], {k: _canon(np.array(v, dtype=np.uint32)) for k, v in cases.items()}


def _compare(fast: dict, port: dict) -> None:
    assert fast.keys() == port.keys() and len(fast) > 1000
    bad = [k for k in fast if not np.array_equal(fast[k], port[k])]
    assert not bad, f"{len(bad)} cases differ from the portable C, e.g. {bad[:5]}"


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_nn_paths_match_the_portable_c(build, tmp_path):
    flags, needs, nn, ex = BUILDS[build]
    if needs - CPU_FLAGS:
        pytest.skip(f"this CPU lacks {', '.join(sorted(needs - CPU_FLAGS))}")
    (path_fast, fast), (path_port, port) = _agree_pair(tmp_path, flags)
    got = {k: int(v) for k, v in (kv.split("=") for kv in path_fast.split()[1:])}
    assert got["nn"] > 0 and got["exp"] > 0, f"the x86 paths are not in this build: {path_fast}"
    if nn is not None:
        assert (got["nn"], got["exp"]) == (nn, ex), path_fast
    if build != "host-board-contract":  # ISO C: nothing is contracted, so the layer norm's path runs
        assert got["norm"] == got["nn"], f"the layer norm does not take its x86 path: {path_fast}"
    assert path_port == f"PATH nn=0 exp={got['exp']} norm=0", path_port
    _compare(fast, port)


def test_nn_paths_under_sanitizers(tmp_path):
    flags = ["-O1", "-mavx2"] if "avx2" in CPU_FLAGS else ["-O1"]
    (_, fast), (_, port) = _agree_pair(tmp_path, flags, sanitize=True)
    _compare(fast, port)


# ---- the QuAKE kernels: bench/exp/exp_agree.c (fast path == portable C on the target) + numpy hashes
sys.path.insert(0, str(ROOT / "bench" / "exp"))
import exp_agree  # noqa: E402

EXP_BUILDS = {"sse2": ["-O2"], "avx2": ["-O2", "-mavx2"], "host-board": HOST_FLAGS,
              "host-board-contract": [*HOST_FLAGS, "-std=gnu99", "-ffp-contract=fast"],
              "sanitized": ["-O1", "-g", "-fsanitize=address,undefined,float-cast-overflow",
                            "-fno-sanitize-recover=all", *(["-mavx2"] if "avx2" in CPU_FLAGS else [])]}


@pytest.mark.parametrize("build", sorted(EXP_BUILDS))
def test_exp_paths_match_the_portable_c_and_numpy(build, monkeypatch):
    if "-mavx2" in EXP_BUILDS[build] and "avx2" not in CPU_FLAGS:
        pytest.skip("this CPU lacks avx2")
    target = f"x86-{build}"
    monkeypatch.setitem(exp_agree.TARGETS, target, {"cc": "gcc", "flags": EXP_BUILDS[build], "libs": ["-lm"]})
    rows = exp_agree.run(target)
    assert len(rows) == 27 * 10
    for r in rows:
        what = f"{build} set {r['set']} {r['op']}_{r['exp']}"
        assert r["bad"] == 0 and r["flushed"] == 0, f"{what}: the x86 path differs from the portable C"
        exact, _ = exp_agree.expected_hashes(r["set"], r["op"], r["exp"])
        assert r["hash_c"] == exact and r["hash_fast"] == exact, f"{what}: differs from numpy"


def test_exp_path_is_compiled_in(tmp_path):
    """hk_exp.h dispatches to hk_exp_x86.h on x86-64 (SSE2 without flags), unless HK_EXP_PORTABLE."""
    src = tmp_path / "which.c"
    src.write_text('#include "hk_exp.h"\n#include <stdio.h>\nint main(void) {\n#ifdef HK_EXP_X86\n'
                   '    printf("%d\\n", HK__XW);\n#else\n    printf("0\\n");\n#endif\n    return 0;\n}\n')
    for flags, want in ((["-O2"], "4"), (["-O2", "-DHK_EXP_PORTABLE"], "0")):
        run_cc(["gcc", *STRICT, *flags, f"-I{KERNELS}", str(src), "-o", str(tmp_path / "which"), "-lm"])
        assert subprocess.run([str(tmp_path / "which")], capture_output=True, text=True).stdout.strip() == want


# ---- every board's compiler: the x86 headers build warning-free (and are skipped) everywhere
@pytest.mark.parametrize("toolchain", sorted(CROSS))
def test_kernels_compile_without_warnings_on_every_board(toolchain, tmp_path):
    cc, *flags = CROSS[toolchain]
    if not have(cc):
        pytest.skip(f"{cc} not installed (run `make setup`)")
    run_cc([cc, *flags, *STRICT, f"-I{KERNELS}", "-c", str(AGREE), "-o", str(tmp_path / "agree.o")])


# ---- whole generated models: the host board's build against its portable build, bit for bit
def _models(tmp: Path) -> dict[str, Path]:
    from hilkit.models import recipes, transformer
    from hilkit.models.layers import Softmax
    from hilkit.models.network import Sequential

    rng = np.random.default_rng(11)
    out = {}
    nets = {"vit": Sequential([transformer.vit(data.DIGITS_SHAPE, (2, 2), 24, 2, 48, 1, 10, rng), Softmax()]),
            "gelu-cnn": Sequential([recipes.digits_gelu_cnn(rng), Softmax()]),
            "cnn": Sequential([recipes.digits_cnn(rng), Softmax()]),
            "mlp": Sequential([recipes.digits_mlp(rng), Softmax()])}
    for name, net in nets.items():
        shape = (64,) if name == "mlp" else data.DIGITS_SHAPE
        graph, arrays = net.to_graph(shape, name=f"x86-{name}")
        out[name] = tmp / f"{name}.npz"
        modelfile.save(out[name], graph, arrays)
    return out


@pytest.mark.parametrize("exp", ["libm", "quake2"])
def test_generated_models_match_their_portable_build(exp, tmp_path):
    _, _, x, _ = data.digits_split()
    xin = x.reshape(len(x), -1).astype(np.float32)
    for name, path in _models(tmp_path).items():
        gen = tmp_path / f"gen-{name}-{exp}"
        generate(path, "host", gen, exp=exp)
        outs = []
        for extra in ([], ["-DHK_NN_PORTABLE", "-DHK_EXP_PORTABLE"]):
            exe = tmp_path / f"drv-{name}-{exp}-{len(extra)}"
            build_driver(gen, exe, [*HOST_FLAGS, *extra])
            outs.append(run_driver(exe, xin, 10)[0].view(np.uint32))
        assert np.array_equal(outs[0], outs[1]), f"{name} ({exp}): the host build differs from its portable build"


# ---- the speed peer's measurement (host/litert.py)
def test_bench_vs_reports_both_call_floors(digits_models, tmp_path):
    pytest.importorskip("ai_edge_litert")
    from hilkit.host import litert

    r = litert.bench_vs(digits_models["digits-cnn"], n=60, warmup=10, workdir=tmp_path)
    assert r["cflags"] == HOST_FLAGS
    assert 0 < r["ctypes_floor_us"] < r["ours_us"] and 0 < r["litert_floor_us"] < r["litert_us"]
    assert r["speedup_net"] == pytest.approx((r["litert_us"] - r["litert_floor_us"]) /
                                             (r["ours_us"] - r["ctypes_floor_us"]))
    assert r["top1_agreement_ours_vs_litert"] == 1.0
