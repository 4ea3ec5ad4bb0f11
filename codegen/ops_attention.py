"""Emitters of the vision-transformer operators (models/transformer.py; kernels_c/hk_attention.h,
hk_norm.h): patches, token_dense, layernorm, attention, token_mean. Tokens are [T, D] row-major.

`attention` runs its row softmax with the node's exp variant (`hk_attention_<exp>_f32`), like the
softmax/gelu/sigmoid emitters of ops_float; its scratch (qkv, the mixed heads, one score row) is a
static buffer of the layer, as the conv padding buffers are."""
from __future__ import annotations

import math

import numpy as np

from .emit_c import c_float
from .ops import register
from .ops_float import dims
from .ops_sparse import block_weights


def _f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


@register("patches", ["hk_attention.h"], note=lambda n: f"{n.attrs['height']}x{n.attrs['width']} patches")
def _patches(e, n) -> str:
    return (f"hk_patches_f32({e.ptr(n.inputs[0])}, {dims(n.in_shapes[0])}, {int(n.attrs['height'])}, "
            f"{int(n.attrs['width'])}, {e.ptr(n.name)});")


def _token_dense_arrays(n):
    return [("weight", block_weights(n.params["weight"])), ("bias", _f32(n.params["bias"]))]


def _token_dense_macs(n) -> int:
    return int(n.in_shapes[0][0] * n.params["weight"].size)


@register("token_dense", ["hk_attention.h"], arrays=_token_dense_arrays, macs=_token_dense_macs)
def _token_dense(e, n) -> str:
    t, d_in = n.in_shapes[0]
    ident = e.ident(n)
    return (f"hk_token_dense_f32({e.ptr(n.inputs[0])}, {t}, {d_in}, {ident}_weight, {ident}_bias, "
            f"{e.ptr(n.name)}, {n.out_shape[-1]});")


@register("layernorm", ["hk_norm.h"], inplace=True)
def _layernorm(e, n) -> str:
    d = int(n.out_shape[-1])
    ident = e.ident(n)
    return (f"hk_layernorm_f32({e.ptr(n.inputs[0])}, {e.ptr(n.name)}, {n.out_size // d}, {d}, "
            f"{ident}_weight, {ident}_bias);")


def _attention_arrays(n):
    p = n.params
    return [("qkv_weight", block_weights(p["qkv_weight"])), ("qkv_bias", _f32(p["qkv_bias"])),
            ("out_weight", block_weights(p["out_weight"])), ("out_bias", _f32(p["out_bias"]))]


def _attention_macs(n) -> int:
    t, d = n.in_shapes[0]
    return int(t * 3 * d * d + 2 * t * t * d + t * d * d)  # projections, q.k and p.v over all heads


def _attention_note(n) -> str:
    return f"{n.attrs.get('heads', 1)} heads, exp={n.attrs['exp']}"


def attention_scale(d: int, heads: int) -> np.float32:
    """1/sqrt(D/heads) as the reference rounds it (functional.attention)."""
    return np.float32(1.0 / math.sqrt(d // heads))


@register("attention", ["hk_attention.h"], arrays=_attention_arrays, macs=_attention_macs, note=_attention_note,
          inplace=True)
def _attention(e, n) -> str:
    t, d = n.in_shapes[0]
    heads = int(n.attrs.get("heads", 1))
    ident = e.ident(n)
    scratch = f"{ident}_scratch"
    return (f"{{\n    static float {scratch}[HK_ATTENTION_SCRATCH({t}, {d})]; /* qkv, heads, one score row */\n"
            f"    hk_attention_{n.attrs['exp']}_f32({e.ptr(n.inputs[0])}, {t}, {d}, {heads}, {ident}_qkv_weight, "
            f"{ident}_qkv_bias, {ident}_out_weight, {ident}_out_bias, {c_float(attention_scale(d, heads))}, "
            f"{e.ptr(n.name)}, {scratch});\n}}")


@register("token_mean", ["hk_attention.h"])
def _token_mean(e, n) -> str:
    t, d = n.in_shapes[0]
    return f"hk_token_mean_f32({e.ptr(n.inputs[0])}, {t}, {d}, {e.ptr(n.name)});"
