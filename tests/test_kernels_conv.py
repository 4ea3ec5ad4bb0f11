"""The conv and dense kernels (kernels_c/hk_conv.h, hk_conv_sparse.h, hk_dense.h) against numpy:
every variant and path (portable C, Cortex-M FPU asm, NEON) on awkward shapes, under ASan/UBSan on
the host, strict warnings on every board's compiler, agreement between the paths on the boards
that have them, and exact instruction-count bounds on the Cortex-M4F (bench/pruning/kbench.c)."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from hilkit.codegen.build import BuildError, check_toolchain, resource_dir
from hilkit.host import boards
from hilkit.models import functional as F
from helpers import CROSS, ROOT, SANITIZE, STRICT, have, run_cc

sys.path.insert(0, str(ROOT / "bench" / "pruning"))
from kbench import ConvCase, DenseCase, KernelBench  # noqa: E402

# C, H, W, F, k, stride, padding: tails of filters (F % 4) and of pixels (OW % 4, % 8), strides,
# 'valid', 1x1 and 5x5, a single input channel.
CONV_SHAPES = [(3, 5, 7, 6, 3, 1, "same"), (2, 9, 9, 5, 3, 2, "same"), (4, 6, 10, 9, 3, 1, "valid"),
               (3, 8, 8, 7, 1, 1, "same"), (2, 7, 6, 4, 5, 1, "same"), (1, 8, 8, 8, 3, 1, "same"),
               (2, 6, 6, 3, 2, 2, "same"), (3, 4, 4, 12, 3, 1, "same")]
DENSE_SHAPES = [(7, 5), (33, 9), (16, 4), (5, 1)]


def _conv_data(rng, shape, density=0.6):
    c, h, w, f, k, _, _ = shape
    x = rng.standard_normal((c, h, w)).astype(np.float32)
    wt = rng.standard_normal((f, c, k, k)).astype(np.float32)
    wt *= rng.random(wt.shape) < density
    return x, wt, rng.standard_normal(f).astype(np.float32)


def _conv_ref(x, w, b, stride, padding, relu):
    y = F.conv2d(x[None], w, b, stride, padding)[0]
    return np.maximum(y, 0) if relu else y


def _check_all_variants(kb, rng, *, conv_variants, dense_variants):
    """Every kernel variant on every shape; returns {shape: {variant: output}} for path comparisons."""
    outs = {}
    for shape in CONV_SHAPES:
        x, w, b = _conv_data(rng, shape)
        for relu in (False, True):
            ref = _conv_ref(x, w, b, shape[5], shape[6], relu)
            got = {}
            for v in conv_variants:
                y, _ = kb.conv(v, x, w, b, stride=shape[5], padding=shape[6], relu=relu)
                assert np.max(np.abs(y - ref)) <= 1e-5 * (1 + np.max(np.abs(ref))), (shape, v, relu)
                got[v] = y
            outs[(shape, relu)] = got
    for n_in, n_out in DENSE_SHAPES:
        x = rng.standard_normal(n_in).astype(np.float32)
        w = rng.standard_normal((n_out, n_in)).astype(np.float32)
        b = rng.standard_normal(n_out).astype(np.float32)
        ref = np.maximum(w @ x + b, 0)
        got = {}
        for v in dense_variants:
            y, _ = kb.dense(v, x, w, b, relu=True)
            assert np.max(np.abs(y - ref)) <= 1e-5 * (1 + np.max(np.abs(ref))), (n_in, n_out, v)
            got[v] = y
        outs[("dense", n_in, n_out)] = got
    return outs


ALL_CONV = ("naive", "blocked", "blocked_c", "sparse")
ALL_DENSE = ("naive", "rowmajor", "rowmajor_c", "blocked", "blocked_c")


def test_kernels_under_asan_ubsan(rng, tmp_path):
    """The generic bench program, built natively with the sanitizers, on every shape and variant."""
    exe = tmp_path / "kbench_asan"
    inc = [f"-I{resource_dir('kernels_c')}", f"-I{resource_dir('firmware')}"]
    # -O0: the same sanitizer checks, a fifth of the compile time (the optimised builds run on the boards).
    run_cc(["gcc", *STRICT, *SANITIZE, "-O0", '-DHK_BOARD_ID="host"', *inc, str(ROOT / "bench" / "pruning" / "kbench.c"),
            str(resource_dir("boards") / "common" / "board_linux.c"), "-o", str(exe)])
    with KernelBench("host", tmp_path, image=exe) as kb:
        _check_all_variants(kb, rng, conv_variants=ALL_CONV, dense_variants=ALL_DENSE)
        # A conv whose weights are all zero: the sparse lists are empty.
        x, w, b = _conv_data(rng, CONV_SHAPES[0], density=0.0)
        y, _ = kb.conv("sparse", x, w, b, relu=False)
        assert np.array_equal(y, np.broadcast_to(b[:, None, None], y.shape))
    assert kb.target.returncode == 0


@pytest.mark.parametrize("toolchain", sorted(CROSS))
def test_kernel_headers_compile_strictly_on_every_board(toolchain, tmp_path):
    cc, *flags = CROSS[toolchain]
    if not have(cc):
        pytest.skip(f"{cc} not installed (run `make setup`)")
    src = tmp_path / "k.c"
    src.write_text('#include "hk_conv.h"\n#include "hk_conv_sparse.h"\n#include "hk_dense.h"\n'
                   "void f(const float *x, const float *w, const uint16_t *o, const int32_t *s, const float *b, "
                   "float *y, float *t);\n"
                   "void f(const float *x, const float *w, const uint16_t *o, const int32_t *s, const float *b, "
                   "float *y, float *t)\n{\n"
                   "    hk_dims in = {8, 4, 4}, out = {13, 4, 4};\n    hk_conv_params p = {3, 1, 1, 1};\n"
                   "    hk_conv2d_f32(x, in, w, b, y, out, p, 1);\n"
                   "    hk_conv2d_blocked_f32(x, in, w, b, y, out, p, 1, t);\n"
                   "    hk_conv2d_blocked_f32_c(x, in, w, b, y, out, p, 0, t);\n"
                   "    hk_conv2d_sparse_f32(x, in, w, o, s, b, y, out, p, 1, t);\n"
                   "    hk_dense_f32(x, 64, w, b, y, 10, 1);\n    hk_dense_f32_c(x, 64, w, b, y, 10, 0);\n"
                   "    hk_dense_blocked_f32(x, 64, w, b, y, 10, 1);\n    hk_dense_blocked_f32_c(x, 64, w, b, y, 10, 0);\n"
                   "}\n")
    run_cc([cc, *flags, *STRICT, "-O2", f"-I{resource_dir('kernels_c')}", "-c", str(src), "-o",
            str(tmp_path / "k.o")])


def _runnable(bid: str) -> str | None:
    b = boards.get_board(bid)
    try:
        check_toolchain(b)
    except BuildError as e:
        return str(e)
    if b.qemu is not None and not have(b.qemu.binary):
        return f"{b.qemu.binary} not installed"
    return None


@pytest.mark.qemu
@pytest.mark.parametrize("bid", ["rpi4", "rpi2"])
def test_neon_paths_agree_with_portable_c(bid, rng, tmp_path):
    """Cortex-A (qemu-user): the NEON paths give the reference's numbers and the C path's, and take
    fewer instructions than the C path."""
    why = _runnable(bid)
    if why:
        pytest.skip(why)
    with KernelBench(bid, tmp_path) as kb:
        outs = _check_all_variants(kb, rng, conv_variants=("blocked", "blocked_c"),
                                   dense_variants=("rowmajor", "rowmajor_c", "blocked", "blocked_c"))
        for got in outs.values():
            pairs = [("blocked", "blocked_c")] + ([("rowmajor", "rowmajor_c")] if "rowmajor" in got else [])
            for fast, portable in pairs:
                assert np.allclose(got[fast], got[portable], rtol=1e-5, atol=1e-5)
        x, w, b = _conv_data(rng, (8, 8, 8, 16, 3, 1, "same"), density=1.0)
        _, neon = kb.conv("blocked", x, w, b, relu=True)
        _, port = kb.conv("blocked_c", x, w, b, relu=True)
        assert neon < 0.6 * port, (neon, port)


# Compiled cases (constant shapes, as in model.c) on the Cortex-M4F: exact, deterministic counts.
M4_CASES = [ConvCase("naive", 16, 4, 4, 16), ConvCase("blocked", 16, 4, 4, 16), ConvCase("blocked_c", 16, 4, 4, 16),
            ConvCase("sparse", 16, 4, 4, 16), ConvCase("blocked", 6, 4, 4, 13),
            DenseCase("naive", 64, 8), DenseCase("blocked", 64, 8)]


@pytest.mark.qemu
def test_m4f_instruction_counts_and_asm_agrees_with_c(rng, tmp_path):
    why = _runnable("mps2-an386")
    if why:
        pytest.skip(why)
    x = rng.standard_normal((16, 4, 4)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    ref = _conv_ref(x, w, b, 1, "same", True)
    macs = M4_CASES[0].macs()  # 36864
    with KernelBench("mps2-an386", tmp_path, cases=M4_CASES) as kb:
        y_naive, n_naive = kb.run(0, x, w, b)
        y_fast, n_fast = kb.run(1, x, w, b)
        y_c, n_c = kb.run(2, x, w, b)
        for y in (y_naive, y_fast, y_c):
            assert np.max(np.abs(y - ref)) < 1e-4
        # The asm tile does the C tile's FMAs in the same order: the same bits.
        assert np.array_equal(y_fast, y_c)
        assert kb.run(1, x, w, b)[1] == n_fast  # deterministic
        assert n_naive / macs > 7.5                     # measured 7.84 (the kit's original loop)
        assert n_fast / macs < 1.40, n_fast / macs      # measured 1.33 (VFP asm tile)
        assert n_c / macs < 1.80, n_c / macs            # measured 1.75 (portable C tile)
        # Sparse at 10 % density: far fewer instructions than the dense kernel on the same weights.
        ws = w * (rng.random(w.shape) < 0.1)
        y_s, n_s = kb.run(3, x, ws, b)
        assert np.max(np.abs(y_s - _conv_ref(x, ws, b, 1, "same", True))) < 1e-4
        assert n_s < n_fast / 2.4, (n_s, n_fast)        # measured 2.56x
        # 13 filters of 6 channels: three blocks of 4 and a tail of 1.
        x6, w13 = x[:6], rng.standard_normal((13, 6, 3, 3)).astype(np.float32)
        y13, n13 = kb.run(4, x6, w13, b[:13])
        assert np.max(np.abs(y13 - _conv_ref(x6, w13, b[:13], 1, "same", True))) < 1e-4
        assert n13 / M4_CASES[4].macs() < 1.75          # measured 1.67
        xd = rng.standard_normal(64).astype(np.float32)
        wd = rng.standard_normal((8, 64)).astype(np.float32)
        bd = rng.standard_normal(8).astype(np.float32)
        yd0, nd0 = kb.run(5, xd, wd, bd)
        yd1, nd1 = kb.run(6, xd, wd, bd)
        assert np.max(np.abs(yd1 - (wd @ xd + bd))) < 1e-4
        assert nd0 / 512 > 6.0 and nd1 / 512 < 1.5, (nd0 / 512, nd1 / 512)  # measured 6.21, 1.40
