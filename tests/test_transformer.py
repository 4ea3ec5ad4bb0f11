"""The vision-transformer layers (models/transformer.py) and their C (kernels_c/hk_attention.h,
hk_norm.h, codegen/ops_attention.py): gradients, the model-file ops and their validation, the
generated C against the reference for every exp variant (also under ASan/UBSan), in-place
attention, and warning-free builds with every board's compiler."""
import subprocess

import numpy as np
import pytest

from hilkit.codegen.build import resource_dir
from hilkit.codegen.generate import generate
from hilkit.models import functional as F
from hilkit.models import modelfile, quake, reference
from hilkit.models import transformer as T
from hilkit.models.layers import GELU, Softmax
from hilkit.models.network import Residual, Sequential
from helpers import CROSS, ROOT, SANITIZE, STRICT, have, run_cc
from test_layers import grad_check

SHAPE = (1, 4, 6)
EXPS = ("libm", "quake1", "quake2")


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("make", [
    lambda rng: T.TokenDense(5, 3, rng),
    lambda rng: T.LayerNorm(5),
    lambda rng: T.SelfAttention(6, 2, rng),
    lambda rng: T.SelfAttention(6, 1, rng),
    lambda rng: T.PosEmbedding(4, 5, rng),
    lambda rng: T.TokenMean(),
], ids=["token_dense", "layernorm", "attention2", "attention1", "pos_embedding", "token_mean"])
def test_token_layer_grads(rng, make):
    layer = make(rng)
    d = 6 if isinstance(layer, T.SelfAttention) else 5
    if isinstance(layer, T.LayerNorm):  # non-trivial scale and shift
        layer.params = {"weight": rng.standard_normal(5).astype(np.float32),
                        "bias": rng.standard_normal(5).astype(np.float32)}
    grad_check(layer, rng.standard_normal((3, 4, d)), rng)


@pytest.mark.parametrize("patch", [(1, 6), (2, 2), (2, 3), (4, 6)])
def test_patches_grad_and_layout(rng, patch):
    grad_check(T.Patches(*patch), rng.standard_normal((2, 2, 4, 6)), rng)
    x = np.arange(2 * 4 * 6, dtype=np.float32).reshape(1, 2, 4, 6)
    t = F.patches(x, *patch)
    ph, pw = patch
    gw = 6 // pw
    for tok in range(t.shape[1]):       # token (gi, gj) holds x[c, gi*ph + dy, gj*pw + dx] in (c, dy, dx) order
        gi, gj = divmod(tok, gw)
        want = x[0, :, gi * ph:(gi + 1) * ph, gj * pw:(gj + 1) * pw].ravel()
        np.testing.assert_array_equal(t[0, tok], want)


def test_encoder_block_and_vit_grads(rng):
    grad_check(T.encoder_block(6, 2, 8, rng), rng.standard_normal((2, 3, 6)), rng)
    grad_check(T.vit(SHAPE, (2, 2), 6, 2, 8, 1, 3, rng), rng.standard_normal((2,) + SHAPE), rng)


def test_attention_matches_loops(rng):
    """functional.attention against a per-head, per-query loop in float64."""
    t, d, h = 5, 6, 3
    att = T.SelfAttention(d, h, rng)
    x = rng.standard_normal((2, t, d)).astype(np.float32)
    p = att.params
    y = F.attention(x, p["qkv_weight"], p["qkv_bias"], p["out_weight"], p["out_bias"], h)
    np.testing.assert_allclose(att.forward(x), y, rtol=1e-6, atol=1e-6)
    x64 = x.astype(np.float64)
    qkv = x64 @ p["qkv_weight"].T.astype(np.float64) + p["qkv_bias"]
    dh = d // h
    want = np.zeros_like(x64)
    for n in range(2):
        o = np.zeros((t, d))
        for head in range(h):
            sl = slice(head * dh, (head + 1) * dh)
            q, k, v = qkv[n, :, sl], qkv[n, :, d:][:, sl], qkv[n, :, 2 * d:][:, sl]
            for i in range(t):
                s = k @ q[i] / np.sqrt(dh)
                e = np.exp(s - s.max())
                o[i, sl] = (e / e.sum()) @ v
        want[n] = o @ p["out_weight"].T + p["out_bias"]
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_layernorm_values(rng):
    x = rng.standard_normal((3, 7)).astype(np.float32) * 5 + 2
    y = F.layernorm(x, np.ones(7, np.float32), np.zeros(7, np.float32))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.mean(axis=-1), 0, atol=1e-6)
    np.testing.assert_allclose(y.var(axis=-1), 1, rtol=1e-4)


# ---------------------------------------------------------------- model file
def tiny_vit(rng, patch=(2, 2), gelu="sigmoid") -> tuple[dict, dict]:
    """An untrained 1x4x6 ViT (6 tokens of 2x2 patches, 8 features, 2 heads, 2 blocks) ending in softmax,
    with weights large enough that the softmaxes are far from uniform."""
    net = T.vit(SHAPE, patch, 8, 2, 12, 2, 5, rng, gelu=gelu)
    for m, k in net.parameters():
        if k in ("qkv_weight", "value"):
            m.params[k] = m.params[k] * np.float32(3.0)
    return Sequential([net, Softmax()]).to_graph(SHAPE, name="tiny-vit")


def test_export_validates_and_reference_matches_training_forward(rng):
    net = T.vit(SHAPE, (1, 6), 8, 2, 12, 2, 5, rng)
    graph, arrays = Sequential([net, Softmax()]).to_graph(SHAPE, name="v")
    m = modelfile.validate(graph, arrays)
    ops = [layer["op"] for layer in m.layers]
    assert ops[:3] == ["patches", "token_dense", "add_const"]
    assert ops.count("attention") == 2 and ops.count("layernorm") == 5 and "token_mean" in ops
    assert m.shapes["patches1"] == (4, 6) and m.shapes["token_mean1"] == (8,)
    x = rng.standard_normal((7,) + SHAPE).astype(np.float32)
    np.testing.assert_allclose(reference.forward(m, x), F.softmax(net.forward(x)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op,attrs,shape,msg", [
    ("patches", {"height": 3, "width": 2}, (1, 4, 6), "do not tile"),
    ("patches", {"height": 2, "width": 2}, (16,), r"needs a \[C, H, W\]"),
    ("attention", {"heads": 4}, (5, 6), "do not split into 4 heads"),
    ("attention", {}, (30,), r"needs tokens \[T, D\]"),
    ("token_dense", {"units": 3}, (6,), r"needs tokens \[T, D\]"),
    ("token_mean", {}, (2, 3, 4), r"needs tokens \[T, D\]"),
])
def test_op_validation(op, attrs, shape, msg):
    from hilkit.models import opset
    with pytest.raises(opset.OpError, match=msg):
        opset.check(op, attrs, [shape])


def test_op_shapes_and_params():
    from hilkit.models import opset
    a, out, params = opset.check("attention", {"heads": 2}, [(16, 24)])
    assert a["heads"] == 2 and out == (16, 24)
    assert params == {"qkv_weight": (72, 24), "qkv_bias": (72,), "out_weight": (24, 24), "out_bias": (24,)}
    assert opset.check("attention", {}, [(4, 6)])[0]["heads"] == 1
    assert opset.check("patches", {"height": 1, "width": 8}, [(1, 8, 8)])[1] == (8, 8)
    assert opset.check("layernorm", {}, [(4, 6)])[2] == {"weight": (6,), "bias": (6,)}


# ---------------------------------------------------------------- generated C
def _build_driver(gen_dir, exe, flags):
    inc = [f"-I{resource_dir('kernels_c')}", f"-I{resource_dir('firmware')}", f"-I{gen_dir}"]
    src = [str(gen_dir / "model.c"), str(ROOT / "tests" / "c" / "model_driver.c")]
    run_cc(["gcc", *STRICT, *flags, *inc, *src, "-o", str(exe), "-lm"])


def _run_driver(exe, x):
    p = subprocess.run([str(exe)], input=np.ascontiguousarray(x, np.float32).tobytes(), capture_output=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    return np.frombuffer(p.stdout, np.float32)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    rng = np.random.default_rng(42)
    graph, arrays = tiny_vit(rng)
    path = tmp_path_factory.mktemp("vit") / "tiny-vit.npz"
    modelfile.save(path, graph, arrays)
    x = (rng.standard_normal((40,) + SHAPE) * 2).astype(np.float32)
    return path, x


@pytest.mark.parametrize("exp,sanitize", [("libm", False), ("quake1", False), ("quake2", False), ("quake2", True)],
                         ids=["libm", "quake1", "quake2", "quake2-asan-ubsan"])
def test_generated_c_agrees_with_reference_of_its_variant(tiny_model, tmp_path, exp, sanitize):
    path, x = tiny_model
    g = generate(path, "host", tmp_path / "gen", exp=exp)
    src = (tmp_path / "gen" / "model.c").read_text()
    assert f"hk_attention_{exp}_f32(" in src and f"hk_gelu_{exp}_f32(" in src and f"hk_softmax_{exp}_f32(" in src
    flags = [*SANITIZE, "-fsanitize=float-cast-overflow"] if sanitize else ["-O2"]
    _build_driver(tmp_path / "gen", tmp_path / "drv", flags)
    out = _run_driver(tmp_path / "drv", x).reshape(len(x), -1)
    ref = reference.forward(path, x, exp=exp).reshape(len(x), -1)
    assert np.array_equal(out.argmax(1), ref.argmax(1))
    assert np.max(np.abs(out - ref)) <= 2e-5
    if exp != "libm":
        # the variant-blind reference is measurably further away: the exp-aware one is what matches
        blind = reference.forward(path, x).reshape(len(x), -1)
        assert np.max(np.abs(out - blind)) > 20 * np.max(np.abs(out - ref))
    assert g.plan.arena_bytes <= 1.05 * g.plan.lower_bound


def test_per_layer_exp_wins_in_codegen_and_reference(rng, tmp_path):
    graph, arrays = tiny_vit(rng)
    att = next(layer for layer in graph["layers"] if layer["op"] == "attention")
    att["attrs"]["exp"] = "quake1"
    path = tmp_path / "mixed.npz"
    modelfile.save(path, graph, arrays)
    generate(path, "host", tmp_path / "gen", exp="quake2")
    src = (tmp_path / "gen" / "model.c").read_text()
    assert src.count("hk_attention_quake1_f32(") == 1 and src.count("hk_attention_quake2_f32(") == 1
    x = (rng.standard_normal((20,) + SHAPE) * 2).astype(np.float32)
    _build_driver(tmp_path / "gen", tmp_path / "drv", ["-O2"])
    out = _run_driver(tmp_path / "drv", x).reshape(len(x), -1)
    ref = reference.forward(path, x, exp="quake2").reshape(len(x), -1)
    assert np.max(np.abs(out - ref)) <= 2e-5
    m = modelfile.load(path)
    trace = reference.forward_trace(m, x, exp="quake2")
    first = m.layers[[la["op"] for la in m.layers].index("attention")]
    p = m.params(first)
    xin = trace[first["inputs"][0]]
    want = F.attention(xin, p["qkv_weight"], p["qkv_bias"], p["out_weight"], p["out_bias"], 2,
                       lambda s: quake.softmax(s, "quake1"))
    assert np.array_equal(trace[first["name"]], want)


ATTN_TEST = r"""
#include <stdio.h>
#include <string.h>
#include "hk_attention.h"
#include "hk_norm.h"
#define T 7
#define D 12
#define H 3
int main(void)
{
    static float x[T * D], y[T * D], z[T * D], wq[3 * D * D], bq[3 * D], wo[D * D], bo[D];
    static float scratch[HK_ATTENTION_SCRATCH(T, D)];
    unsigned s = 1u;
    for (int i = 0; i < 3 * D * D; i++) { s = s * 1664525u + 1013904223u; wq[i] = (float)(int)(s >> 20) / 1024.0f - 2.0f; }
    for (int i = 0; i < D * D; i++) { s = s * 1664525u + 1013904223u; wo[i] = (float)(int)(s >> 20) / 2048.0f - 1.0f; }
    for (int i = 0; i < 3 * D; i++) { bq[i] = 0.01f * (float)i; }
    for (int i = 0; i < D; i++) { bo[i] = -0.02f * (float)i; }
    for (int i = 0; i < T * D; i++) { s = s * 1664525u + 1013904223u; x[i] = (float)(int)(s >> 20) / 1024.0f - 2.0f; }
    int bad = 0;
    for (int e = 0; e < 3; e++) {
        memcpy(z, x, sizeof x);
        if (e == 0) { hk_attention_libm_f32(x, T, D, H, wq, bq, wo, bo, 0.5f, y, scratch); hk_attention_libm_f32(z, T, D, H, wq, bq, wo, bo, 0.5f, z, scratch); }
        if (e == 1) { hk_attention_quake1_f32(x, T, D, H, wq, bq, wo, bo, 0.5f, y, scratch); hk_attention_quake1_f32(z, T, D, H, wq, bq, wo, bo, 0.5f, z, scratch); }
        if (e == 2) { hk_attention_quake2_f32(x, T, D, H, wq, bq, wo, bo, 0.5f, y, scratch); hk_attention_quake2_f32(z, T, D, H, wq, bq, wo, bo, 0.5f, z, scratch); }
        bad += memcmp(y, z, sizeof y) != 0;
    }
    memcpy(z, x, sizeof x);
    hk_layernorm_f32(x, y, T, D, bo, bq);
    hk_layernorm_f32(z, z, T, D, bo, bq);
    bad += memcmp(y, z, sizeof y) != 0;
    printf("BAD %d\n", bad);
    return bad != 0;
}
"""


def test_attention_and_layernorm_in_place_under_sanitizers(tmp_path):
    (tmp_path / "t.c").write_text(ATTN_TEST)
    exe = tmp_path / "t"
    run_cc(["gcc", *STRICT, *SANITIZE, "-fsanitize=float-cast-overflow", f"-I{resource_dir('kernels_c')}",
            str(tmp_path / "t.c"), "-o", str(exe), "-lm"])
    p = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "runtime error" not in p.stderr, p.stdout + p.stderr[-2000:]
    assert p.stdout.strip() == "BAD 0"


@pytest.fixture(scope="module")
def mixed_model(tmp_path_factory):
    """tiny_vit with the exp variants spread over its layers, so one model.c holds all of them."""
    graph, arrays = tiny_vit(np.random.default_rng(5), gelu="tanh")
    cycle = iter(EXPS * 3)
    for layer in graph["layers"]:
        if layer["op"] in ("attention", "gelu", "softmax"):
            layer["attrs"]["exp"] = next(cycle)
    path = tmp_path_factory.mktemp("mixed") / "mixed.npz"
    modelfile.save(path, graph, arrays)
    return path


@pytest.mark.parametrize("toolchain", sorted(CROSS))
def test_generated_vit_compiles_without_warnings(mixed_model, toolchain, tmp_path):
    cc, *flags = CROSS[toolchain]
    if not have(cc):
        pytest.skip(f"{cc} not installed (run `make setup`)")
    generate(mixed_model, toolchain, tmp_path)
    src = (tmp_path / "model.c").read_text()
    assert "hk_attention_libm_f32(" in src and "hk_attention_quake2_f32(" in src
    assert "hk_gelu_tanh_quake1_f32(" in src and "hk_gelu_tanh_libm_f32(" in src
    inc = [f"-I{resource_dir('kernels_c')}", f"-I{resource_dir('firmware')}", f"-I{tmp_path}"]
    run_cc([cc, *flags, *STRICT, "-O2", *inc, "-c", str(tmp_path / "model.c"), "-o", str(tmp_path / "model.o")])


def test_tanh_gelu_mlp_and_row_tokens_in_c(rng, tmp_path):
    graph, arrays = tiny_vit(rng, patch=(1, 6), gelu="tanh")
    path = tmp_path / "rows.npz"
    modelfile.save(path, graph, arrays)
    x = (rng.standard_normal((20,) + SHAPE) * 2).astype(np.float32)
    for exp in ("libm", "quake2"):
        d = tmp_path / exp
        generate(path, "host", d, exp=exp)
        assert f"hk_gelu_tanh_{exp}_f32(" in (d / "model.c").read_text()
        _build_driver(d, d / "drv", ["-O2"])
        out = _run_driver(d / "drv", x).reshape(len(x), -1)
        ref = reference.forward(path, x, exp=exp).reshape(len(x), -1)
        assert np.max(np.abs(out - ref)) <= 2e-5


def test_residual_export_names():
    rng = np.random.default_rng(0)
    block = Residual(Sequential([T.LayerNorm(4), T.TokenDense(4, 4, rng), GELU()]))
    graph, _ = block.to_graph((3, 4), name="b")
    assert [la["op"] for la in graph["layers"]] == ["layernorm", "token_dense", "gelu", "add"]
    assert graph["layers"][-1]["inputs"] == ["input", "gelu1"]
