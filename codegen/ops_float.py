"""Emitters of the float32 operators of model-file version 1."""
from __future__ import annotations

import numpy as np

from .ops import register


def dims(shape) -> str:
    c, h, w = shape
    return f"(hk_dims){{{c}, {h}, {w}}}"


def _dense_macs(n) -> int:
    return int(n.params["weight"].size)


def _conv_macs(n) -> int:
    f, c, k, _ = n.params["weight"].shape
    return int(np.prod(n.out_shape) * c * k * k)


def _conv_note(n) -> str:
    return f"k{n.attrs['kernel']} s{n.attrs.get('stride', 1)} {n.attrs.get('padding', 'same')}"


def _blocked_arrays(n):
    # The blocked kernels read the weights of 4 rows/filters for one input/tap from adjacent floats.
    from .ops_sparse import block_weights
    return [("weight", block_weights(n.params["weight"])), ("bias", np.asarray(n.params["bias"], np.float32))]


@register("dense", ["hk_dense.h"], arrays=_blocked_arrays, macs=_dense_macs)
def _dense(e, n) -> str:
    ident = e.ident(n)
    return (f"hk_dense_blocked_f32({e.ptr(n.inputs[0])}, {n.params['weight'].shape[1]}, {ident}_weight, "
            f"{ident}_bias, {e.ptr(n.name)}, {n.out_size}, {int(n.fused_relu)});")


@register("conv2d", ["hk_conv.h"], arrays=_blocked_arrays, macs=_conv_macs, note=_conv_note)
def _conv2d(e, n) -> str:
    from .ops_sparse import node_geometry, scratch_block
    ident = e.ident(n)
    g = node_geometry(n)
    call = (f"hk_conv2d_blocked_f32({e.ptr(n.inputs[0])}, {dims(n.in_shapes[0])}, {ident}_weight, {ident}_bias, "
            f"{e.ptr(n.name)}, {dims(n.out_shape)}, (hk_conv_params){{{g.kernel}, {g.stride}, {g.pad_top}, "
            f"{g.pad_left}}}, {int(n.fused_relu)}, @SCRATCH@);")
    return scratch_block(e, n, g, call)


def _pool(e, n) -> str:
    size = int(n.attrs["size"])
    stride = int(n.attrs.get("stride", size))
    return (f"hk_{n.op}_f32({e.ptr(n.inputs[0])}, {dims(n.in_shapes[0])}, {e.ptr(n.name)}, "
            f"{dims(n.out_shape)}, {size}, {stride});")


register("maxpool2d", ["hk_pool.h"])(_pool)
register("avgpool2d", ["hk_pool.h"])(_pool)


@register("relu", ["hk_eltwise.h"], inplace=True)
def _relu(e, n) -> str:
    return f"hk_relu_f32({e.ptr(n.inputs[0])}, {e.ptr(n.name)}, {n.out_size});"


@register("flatten", ["hk_eltwise.h"])
def _flatten(e, n) -> str:
    if e.plan.storage[n.name] == e.plan.storage[n.inputs[0]]:
        return "/* a view of its input: no code */"
    return f"hk_copy_f32({e.ptr(n.inputs[0])}, {e.ptr(n.name)}, {n.out_size});"  # the model output


@register("add", ["hk_eltwise.h"], inplace=True)
def _add(e, n) -> str:
    return f"hk_add_f32({e.ptr(n.inputs[0])}, {e.ptr(n.inputs[1])}, {e.ptr(n.name)}, {n.out_size});"


def _exp_note(n) -> str:
    return f"exp={n.attrs['exp']}"


def _exp_op(kernel_of):
    def call(e, n) -> str:
        return f"hk_{kernel_of(n)}_{n.attrs['exp']}_f32({e.ptr(n.inputs[0])}, {e.ptr(n.name)}, {n.out_size});"
    return call


register("softmax", ["hk_exp.h"], note=_exp_note, inplace=True)(_exp_op(lambda n: "softmax"))
register("sigmoid", ["hk_exp.h"], note=_exp_note, inplace=True)(_exp_op(lambda n: "logistic"))
register("gelu", ["hk_exp.h"], note=_exp_note, inplace=True)(
    _exp_op(lambda n: "gelu_tanh" if n.attrs.get("approx", "sigmoid") == "tanh" else "gelu"))
