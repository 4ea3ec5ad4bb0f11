"""Conv kernels of the code generator beyond the plain loop: the layouts they read, and the sparse conv.

The dense conv2d emitter (ops_float) calls `hk_conv2d_blocked_f32`, which reads filter-blocked
weights (`block_weights`) and a zero-padded copy of its input in a scratch buffer. Layers whose
weights are mostly zeros (unstructured magnitude pruning) become `conv2d_sparse`, an IR-only op
chosen by `passes.choose_conv_kernels`: the model file keeps the dense weights, the C stores only
the nonzero taps (kernels_c/hk_conv_sparse.h).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hilkit.models.functional import conv_padding

from .ops import register

BLOCK = 4            # filters per weight block (HK_CONV_BLOCK)
MAX_SPARSE_SPAN = 65536  # the sparse kernel's tap offsets are uint16


@dataclass(frozen=True)
class ConvGeometry:
    """Where a conv kernel reads its input (mirrors hk__conv_prepare in hk_conv.h)."""

    kernel: int
    stride: int
    pad_top: int
    pad_left: int
    padded: bool     # the kernel copies the input into a zero-padded scratch buffer
    cs: int          # channel stride of what it reads, floats
    rs: int          # row stride, floats
    scratch: int     # floats of scratch (0 when not padded)


def conv_geometry(in_shape, out_shape, kernel: int, stride: int, padding: str) -> ConvGeometry:
    c, h, w = in_shape
    _, oh, ow = out_shape
    top, _, left, _ = conv_padding(h, w, kernel, stride, padding)
    hp, wp = (oh - 1) * stride + kernel, (ow - 1) * stride + kernel
    padded = not (top == 0 and left == 0 and hp <= h and wp <= w)
    if padded:
        return ConvGeometry(kernel, stride, top, left, True, hp * wp, wp, c * hp * wp)
    return ConvGeometry(kernel, stride, top, left, False, h * w, w, 0)


def node_geometry(n) -> ConvGeometry:
    return conv_geometry(n.in_shapes[0], n.out_shape, int(n.attrs["kernel"]), int(n.attrs.get("stride", 1)),
                         n.attrs.get("padding", "same"))


def block_weights(w: np.ndarray) -> np.ndarray:
    """[F, C, k, k] conv or [n_out, n_in] dense weights -> the blocked layout of hk_nn_block_weights
    (blocks of 4 filters/rows; the weights of one tap/input for a block are adjacent), flat float32."""
    w = np.asarray(w, dtype=np.float32)
    f = w.shape[0]
    flat = w.reshape(f, -1)
    parts = [flat[f0:f0 + BLOCK].T.ravel() for f0 in range(0, f, BLOCK)]  # [taps, n] per block
    return np.concatenate(parts).astype(np.float32) if parts else flat.ravel()


def density(w: np.ndarray) -> float:
    """Fraction of nonzero weights."""
    w = np.asarray(w)
    return float(np.count_nonzero(w)) / max(1, w.size)


def sparse_fits(n) -> bool:
    """The sparse kernel can run this conv (its 16-bit tap offsets reach the whole input)."""
    g = node_geometry(n)
    return n.in_shapes[0][0] * g.cs <= MAX_SPARSE_SPAN


def sparse_arrays(w: np.ndarray, g: ConvGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values f32, offsets u16, starts i32) of the nonzero taps of w [F, C, k, k], filter by filter,
    in (c, ky, kx) order; offsets are c * cs + ky * rs + kx for the input the kernel reads."""
    w = np.asarray(w, dtype=np.float32)
    f, c, k, _ = w.shape
    cc, ky, kx = np.meshgrid(np.arange(c), np.arange(k), np.arange(k), indexing="ij")
    tap_off = (cc * g.cs + ky * g.rs + kx).ravel()
    if tap_off.max(initial=0) >= MAX_SPARSE_SPAN:
        raise ValueError(f"sparse conv input span {tap_off.max() + 1} exceeds {MAX_SPARSE_SPAN} floats")
    flat = w.reshape(f, -1)
    nz = flat != 0
    values = flat[nz].astype(np.float32)
    offsets = np.broadcast_to(tap_off, flat.shape)[nz].astype(np.uint16)
    starts = np.concatenate([[0], np.cumsum(nz.sum(axis=1))]).astype(np.int32)
    return values, offsets, starts


def dims(shape) -> str:
    c, h, w = shape
    return f"(hk_dims){{{c}, {h}, {w}}}"


def scratch_block(e, n, g: ConvGeometry, call: str) -> str:
    """`call` with its scratch argument: NULL, or a static zero-padding buffer of this layer."""
    if not g.scratch:
        return call.replace("@SCRATCH@", "NULL")
    name = f"{e.ident(n)}_pad"
    return (f"{{\n    static float {name}[{g.scratch}]; /* zero-padded input */\n"
            f"    {call.replace('@SCRATCH@', name)}\n}}")


# ---------------------------------------------------------------- conv2d_sparse
def _sparse_arrays(n):
    values, offsets, starts = sparse_arrays(n.params["weight"], node_geometry(n))
    return [("weight", values), ("offset", offsets), ("start", starts),
            ("bias", np.asarray(n.params["bias"], dtype=np.float32))]


def _sparse_macs(n) -> int:
    return int(np.count_nonzero(n.params["weight"]) * n.out_shape[1] * n.out_shape[2])


def _sparse_note(n) -> str:
    d = density(n.params["weight"])
    return (f"k{n.attrs['kernel']} s{n.attrs.get('stride', 1)} {n.attrs.get('padding', 'same')}, "
            f"sparse: {np.count_nonzero(n.params['weight'])} nonzero weights ({d * 100:.1f} %)")


@register("conv2d_sparse", ["hk_conv_sparse.h"], arrays=_sparse_arrays, macs=_sparse_macs, note=_sparse_note)
def _conv2d_sparse(e, n) -> str:
    ident = e.ident(n)
    g = node_geometry(n)
    call = (f"hk_conv2d_sparse_f32({e.ptr(n.inputs[0])}, {dims(n.in_shapes[0])}, {ident}_weight, {ident}_offset, "
            f"{ident}_start, {ident}_bias, {e.ptr(n.name)}, {dims(n.out_shape)}, "
            f"(hk_conv_params){{{g.kernel}, {g.stride}, {g.pad_top}, {g.pad_left}}}, {int(n.fused_relu)}, @SCRATCH@);")
    return scratch_block(e, n, g, call)
