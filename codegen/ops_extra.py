"""Emitters of the operators added for model interchange (.tflite import; docs/interchange.md)."""
from __future__ import annotations

from hilkit.models.functional import conv_padding

from .ops import register
from .ops_float import dims


def _dwconv_macs(n) -> int:
    k = int(n.attrs["kernel"])
    return int(n.out_size * k * k)


def _dwconv_note(n) -> str:
    return (f"k{n.attrs['kernel']} s{n.attrs.get('stride', 1)} {n.attrs.get('padding', 'same')}"
            f" x{n.attrs.get('multiplier', 1)}")


@register("dwconv2d", ["hk_dwconv.h"], macs=_dwconv_macs, note=_dwconv_note)
def _dwconv2d(e, n) -> str:
    ident = e.ident(n)
    k = int(n.attrs["kernel"])
    stride = int(n.attrs.get("stride", 1))
    _, h, w = n.in_shapes[0]
    top, _, left, _ = conv_padding(h, w, k, stride, n.attrs.get("padding", "same"))
    return (f"hk_dwconv2d_f32({e.ptr(n.inputs[0])}, {dims(n.in_shapes[0])}, {ident}_weight, {ident}_bias, "
            f"{e.ptr(n.name)}, {dims(n.out_shape)}, (hk_conv_params){{{k}, {stride}, {top}, {left}}}, "
            f"{int(n.attrs.get('multiplier', 1))});")


@register("pad", ["hk_shape.h"], note=lambda n: "t{top} b{bottom} l{left} r{right}".format(**n.attrs))
def _pad(e, n) -> str:
    return (f"hk_pad2d_f32({e.ptr(n.inputs[0])}, {dims(n.in_shapes[0])}, {e.ptr(n.name)}, {dims(n.out_shape)}, "
            f"{int(n.attrs['top'])}, {int(n.attrs['left'])});")


@register("mean", ["hk_shape.h"])
def _mean(e, n) -> str:
    return f"hk_mean_hw_f32({e.ptr(n.inputs[0])}, {dims(n.in_shapes[0])}, {e.ptr(n.name)});"


@register("flatten_hwc", ["hk_shape.h"])
def _flatten_hwc(e, n) -> str:
    return f"hk_chw_to_hwc_f32({e.ptr(n.inputs[0])}, {dims(n.in_shapes[0])}, {e.ptr(n.name)});"


@register("concat", ["hk_eltwise.h"])
def _concat(e, n) -> str:
    # Channels-first buffers: joining along the first axis is copying the inputs one after another.
    lines, off = [], 0
    for src, shape in zip(n.inputs, n.in_shapes):
        size = 1
        for d in shape:
            size *= int(d)
        lines.append(f"hk_copy_f32({e.ptr(src)}, {e.ptr(n.name)} + {off}, {size});")
        off += size
    return "\n".join(lines)


@register("mul", ["hk_act.h"], inplace=True)
def _mul(e, n) -> str:
    return f"hk_mul_f32({e.ptr(n.inputs[0])}, {e.ptr(n.inputs[1])}, {e.ptr(n.name)}, {n.out_size});"


@register("add_const", ["hk_eltwise.h"], inplace=True)
def _add_const(e, n) -> str:
    return f"hk_add_f32({e.ptr(n.inputs[0])}, {e.ident(n)}_value, {e.ptr(n.name)}, {n.out_size});"


@register("mul_const", ["hk_act.h"], inplace=True)
def _mul_const(e, n) -> str:
    return f"hk_mul_f32({e.ptr(n.inputs[0])}, {e.ident(n)}_value, {e.ptr(n.name)}, {n.out_size});"


def _unary(kernel: str):
    def call(e, n) -> str:
        return f"hk_{kernel}_f32({e.ptr(n.inputs[0])}, {e.ptr(n.name)}, {n.out_size});"
    return call


for _op in ("relu6", "relu1", "tanh", "gelu_erf"):
    register(_op, ["hk_act.h"], inplace=True)(_unary(_op))
