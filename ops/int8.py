"""int8 reference operators, bit-exact with TensorFlow Lite Micro's reference kernels.

Layouts are TFLite's: activations NHWC with a batch axis, conv weights [O, KH, KW, I], depthwise
[1, KH, KW, C*M], fully connected [O, I], bias int32. Each op is split like TFLM's Prepare/Eval:
`<op>_params(...)` turns float scales and zero points into integers exactly as TFLM's Prepare does
(scales are float32 in a .tflite file, so they are rounded to float32 first), and the op itself
takes integers only. Fused activations arrive as act_min/act_max (core.quant.activation_range).
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hilkit.core import quant as q
from hilkit.core.errors import HilkitError

_F32 = np.float32


class Int8Error(HilkitError, ValueError):
    """Parameters or shapes that TFLite Micro's int8 kernels refuse."""


def _activation_range(act: str, out_scale, out_zp: int) -> tuple[int, int]:
    try:
        return q.activation_range(act, out_scale, out_zp)
    except ValueError as e:
        raise Int8Error(str(e)) from None


def _f64(scale) -> float:
    """A scale as TFLM sees it: the float32 stored in the file, widened to double."""
    return float(_F32(scale))


# ---------------------------------------------------------------- geometry
def padding_offsets(in_h: int, in_w: int, k_h: int, k_w: int, stride=(1, 1), dilation=(1, 1),
                    padding: str = "same") -> tuple[int, int, int, int]:
    """ComputePaddingHeightWidth: (pad_top, pad_left, out_h, out_w). SAME puts the odd pixel of
    padding at the bottom/right; VALID pads nothing."""
    if padding not in ("same", "valid"):
        raise Int8Error(f"padding must be 'same' or 'valid', not {padding!r}")
    stride, dilation = _pair(stride), _pair(dilation)
    out, pads = [], []
    for size, k, s, d in ((in_h, k_h, stride[0], dilation[0]), (in_w, k_w, stride[1], dilation[1])):
        if size < 0 or k <= 0 or s <= 0 or d <= 0:
            raise Int8Error(f"bad window: size {size}, kernel {k}, stride {s}, dilation {d}")
        eff = (k - 1) * d + 1
        o = (size + s - 1) // s if padding == "same" else (size + s - eff) // s
        if o <= 0:
            raise Int8Error(f"a {k}-tap window (dilation {d}) does not fit {padding} in {size} pixels")
        out.append(o)
        pads.append(max((o - 1) * s + eff - size, 0) // 2)
    return pads[0], pads[1], out[0], out[1]


def _windows(x: np.ndarray, k_h: int, k_w: int, stride, dilation, padding: str, fill) -> np.ndarray:
    """Sliding windows of x [N, H, W, C] padded with `fill`: a view [N, OH, OW, C, KH, KW]."""
    n, h, w, c = x.shape
    pt, pl, oh, ow = padding_offsets(h, w, k_h, k_w, stride, dilation, padding)
    eh, ew = (k_h - 1) * dilation[0] + 1, (k_w - 1) * dilation[1] + 1
    need_h, need_w = (oh - 1) * stride[0] + eh, (ow - 1) * stride[1] + ew
    xp = np.full((n, max(need_h, pt + h), max(need_w, pl + w), c), fill, dtype=x.dtype)
    xp[:, pt:pt + h, pl:pl + w] = x
    win = sliding_window_view(xp[:, :need_h, :need_w], (eh, ew), axis=(1, 2))
    return win[:, ::stride[0], ::stride[1], :, ::dilation[0], ::dilation[1]][:, :oh, :ow]


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.ndim(v) == 0 else (int(v[0]), int(v[1]))


def _requantize(acc, bias, mult, shift, out_zp, act_min, act_max) -> np.ndarray:
    acc = q.wrap32(acc)                      # TFLM accumulates in int32
    if bias is not None:
        acc = q.wrap32(acc + np.asarray(bias, np.int64))
    return q.requantize(acc, mult, shift, out_zp, act_min, act_max)


# ---------------------------------------------------------------- conv / depthwise / FC
def conv_params(in_scale, w_scales, out_scale, out_zp: int, act: str = "none") -> dict:
    """PopulateConvolutionQuantizationParams (CONV_2D, DEPTHWISE_CONV_2D): per channel
    M, shift = QuantizeMultiplier((double)in_scale * (double)w_scale[c] / (double)out_scale)."""
    w = np.asarray(w_scales, _F32).astype(np.float64)
    mult, shift = q.quantize_multipliers(_f64(in_scale) * w / _f64(out_scale))
    act_min, act_max = _activation_range(act, out_scale, out_zp)
    return dict(mult=mult, shift=shift, act_min=act_min, act_max=act_max)


def conv2d(x, w, bias=None, *, stride=(1, 1), dilation=(1, 1), padding="same", in_zp: int, out_zp: int,
           mult, shift, act_min: int = -128, act_max: int = 127) -> np.ndarray:
    """CONV_2D int8 (ConvPerChannel): x [N, H, W, C], w [O, KH, KW, C / groups] -> [N, OH, OW, O].
    acc = sum w * (x - in_zp) (padding taps contribute 0) + bias, requantized per channel."""
    x = np.asarray(x, np.int8)
    w = np.asarray(w, np.int8)
    stride, dilation = _pair(stride), _pair(dilation)
    o, kh, kw, ci = w.shape
    c = x.shape[3]
    if c % ci or o % (c // ci):
        raise Int8Error(f"conv2d: input has {c} channels, weights expect {ci} per group and {o} outputs")
    groups = c // ci
    win = _windows(x.astype(np.int16) - in_zp, kh, kw, stride, dilation, padding, 0)  # [N,OH,OW,C,KH,KW]
    n, oh, ow = win.shape[:3]
    win = win.reshape(n, oh, ow, groups, ci, kh, kw).astype(np.int64)
    wg = w.reshape(groups, o // groups, kh, kw, ci).astype(np.int64)
    acc = np.einsum("nyxgcij,goijc->nyxgo", win, wg, optimize=True).reshape(n, oh, ow, o)
    return _requantize(acc, bias, mult, shift, out_zp, act_min, act_max)


def depthwise_conv2d(x, w, bias=None, *, multiplier: int = 1, stride=(1, 1), dilation=(1, 1), padding="same",
                     in_zp: int, out_zp: int, mult, shift, act_min: int = -128, act_max: int = 127) -> np.ndarray:
    """DEPTHWISE_CONV_2D int8 (DepthwiseConvPerChannel): w [1, KH, KW, C*M]; output channel
    c*M + m reads input channel c."""
    x = np.asarray(x, np.int8)
    w = np.asarray(w, np.int8)
    stride, dilation = _pair(stride), _pair(dilation)
    _, kh, kw, cm = w.shape
    c = x.shape[3]
    if cm != c * multiplier:
        raise Int8Error(f"depthwise_conv2d: weights have {cm} channels, input {c} x multiplier {multiplier}")
    win = _windows(x.astype(np.int16) - in_zp, kh, kw, stride, dilation, padding, 0).astype(np.int64)
    wr = w.reshape(kh, kw, c, multiplier).astype(np.int64)
    acc = np.einsum("nyxcij,ijcm->nyxcm", win, wr, optimize=True)
    n, oh, ow = acc.shape[:3]
    return _requantize(acc.reshape(n, oh, ow, cm), bias, mult, shift, out_zp, act_min, act_max)


def fc_params(in_scale, w_scales, out_scale, out_zp: int, act: str = "none", *,
              float32_product: bool = False) -> dict:
    """FULLY_CONNECTED's Prepare. Per-channel weights (more than one scale): as conv, all in double.
    Per-tensor weights: GetQuantizedConvolutionMultipler. The pip tflite-micro oracle
    (0.dev20261023, g8f6596d; checked in its machine code) widens both scales to double before
    multiplying, like the per-channel path. TFLM sources up to Aug 2026 multiplied
    in_scale * w_scale in float32 first: `float32_product=True` reproduces those builds."""
    w = np.asarray(w_scales, _F32).ravel()
    act_min, act_max = _activation_range(act, out_scale, out_zp)
    if w.size > 1:
        mult, shift = q.quantize_multipliers(_f64(in_scale) * w.astype(np.float64) / _f64(out_scale))
    else:
        product = float(_F32(in_scale) * w[0]) if float32_product else _f64(in_scale) * float(w[0])
        mult, shift = q.quantize_multiplier(product / _f64(out_scale))
    return dict(mult=mult, shift=shift, act_min=act_min, act_max=act_max)


def fully_connected(x2d, w, bias=None, *, in_zp: int, out_zp: int, mult, shift, act_min: int = -128,
                    act_max: int = 127, w_zp: int = 0) -> np.ndarray:
    """FULLY_CONNECTED int8: x [..., I] (rows of I), w [O, I] -> [rows, O]. mult/shift are scalars
    (per tensor) or [O] arrays (per channel)."""
    w = np.asarray(w, np.int8)
    i = w.shape[1]
    x = np.asarray(x2d, np.int8).reshape(-1, i).astype(np.int64) - in_zp
    acc = x @ (w.astype(np.int64) - w_zp).T
    return _requantize(acc, bias, mult, shift, out_zp, act_min, act_max)


# ---------------------------------------------------------------- pooling
def pool_params(out_scale, out_zp: int, act: str = "none") -> dict:
    """Pooling's Prepare: input and output share scale and zero point; only the clamp remains."""
    act_min, act_max = _activation_range(act, out_scale, out_zp)
    return dict(act_min=act_min, act_max=act_max)


def avg_pool2d(x, *, size, stride, padding="valid", act_min: int = -128, act_max: int = 127) -> np.ndarray:
    """AVERAGE_POOL_2D int8: mean of the raw values inside the image (padding not counted),
    rounded half away from zero: acc > 0 ? (acc + n/2) / n : (acc - n/2) / n."""
    x = np.asarray(x, np.int8)
    kh, kw = _pair(size)
    win = _windows(x.astype(np.int32), kh, kw, _pair(stride), (1, 1), padding, 0)
    ones = _windows(np.ones((1, *x.shape[1:3], 1), np.int32), kh, kw, _pair(stride), (1, 1), padding, 0)
    acc = win.sum(axis=(4, 5), dtype=np.int64)
    n = ones.sum(axis=(4, 5), dtype=np.int64)           # taps inside the image, [1, OH, OW, 1]
    half = n // 2
    r = np.where(acc > 0, (acc + half) // n, -((half - acc) // n))   # C division truncates to zero
    return np.clip(r, act_min, act_max).astype(np.int8)


def max_pool2d(x, *, size, stride, padding="valid", act_min: int = -128, act_max: int = 127) -> np.ndarray:
    """MAX_POOL_2D int8: max over the taps inside the image, then the activation clamp."""
    x = np.asarray(x, np.int8)
    kh, kw = _pair(size)
    win = _windows(x.astype(np.int16), kh, kw, _pair(stride), (1, 1), padding, -1000)
    return np.clip(win.max(axis=(4, 5)), act_min, act_max).astype(np.int8)


# ---------------------------------------------------------------- add
ADD_LEFT_SHIFT = 20


def add_params(in1_scale, in1_zp: int, in2_scale, in2_zp: int, out_scale, out_zp: int, act: str = "none") -> dict:
    """ADD's Prepare (add_common.cc): inputs are brought to twice the larger input scale, shifted
    left by 20 bits, summed, and rescaled by twice_max / (2^20 * out_scale)."""
    twice_max = 2.0 * float(max(_F32(in1_scale), _F32(in2_scale)))
    m1, s1 = q.quantize_multiplier_smaller_than_one(_f64(in1_scale) / twice_max)
    m2, s2 = q.quantize_multiplier_smaller_than_one(_f64(in2_scale) / twice_max)
    real_out = twice_max / (float(1 << ADD_LEFT_SHIFT) * _f64(out_scale))
    if not real_out < 1.0:
        raise Int8Error(f"add: output scale {out_scale} is too small for input scales {in1_scale}, "
                         f"{in2_scale} (TFLM needs out_scale > 2 * max(in scales) / 2^20)")
    mo, so = q.quantize_multiplier_smaller_than_one(real_out)
    act_min, act_max = _activation_range(act, out_scale, out_zp)
    return dict(in1_zp=int(in1_zp), in2_zp=int(in2_zp), out_zp=int(out_zp), left_shift=ADD_LEFT_SHIFT,
                in1_mult=m1, in1_shift=s1, in2_mult=m2, in2_shift=s2, out_mult=mo, out_shift=so,
                act_min=act_min, act_max=act_max)


def add(x1, x2, *, in1_zp: int, in2_zp: int, out_zp: int, left_shift: int = ADD_LEFT_SHIFT, in1_mult: int,
        in1_shift: int, in2_mult: int, in2_shift: int, out_mult: int, out_shift: int, act_min: int = -128,
        act_max: int = 127) -> np.ndarray:
    """ADD int8 (AddFunc), numpy broadcasting as TFLM's BroadcastAdd (same arithmetic per element)."""
    a = (np.asarray(x1, np.int64) - in1_zp) << left_shift
    b = (np.asarray(x2, np.int64) - in2_zp) << left_shift
    sa = q.multiply_by_quantized_multiplier_smaller_than_one_exp(a, in1_mult, in1_shift).astype(np.int64)
    sb = q.multiply_by_quantized_multiplier_smaller_than_one_exp(b, in2_mult, in2_shift).astype(np.int64)
    raw = q.multiply_by_quantized_multiplier_smaller_than_one_exp(q.wrap32(sa + sb), out_mult, out_shift)
    return np.clip(raw.astype(np.int64) + out_zp, act_min, act_max).astype(np.int8)


# ---------------------------------------------------------------- softmax / logistic
SOFTMAX_OUT_SCALE = 1.0 / 256
SOFTMAX_OUT_ZP = -128
_SOFTMAX_DIFF_BITS = 5      # the scaled difference is Q5.26
_SOFTMAX_ACCUM_BITS = 12    # the sum of exps is Q12.19


def softmax_params(in_scale, beta: float = 1.0) -> dict:
    """SOFTMAX's Prepare (int8 -> int8): PreprocessSoftmaxScaling(beta, in_scale, 5) and
    diff_min = -CalculateInputRadius(5, left_shift). The output is scale 1/256, zero point -128."""
    try:
        mult, left_shift = q.preprocess_softmax_scaling(_f64(beta), _f64(in_scale), _SOFTMAX_DIFF_BITS)
    except ValueError:
        raise Int8Error(f"softmax: beta * input scale = {beta} * {in_scale} is below 2^-26 "
                        "(TFLM's input multiplier must exceed 1)") from None
    diff_min = -q.calculate_input_radius(_SOFTMAX_DIFF_BITS, left_shift)
    return dict(mult=mult, left_shift=left_shift, diff_min=diff_min)


def softmax(x, *, mult: int, left_shift: int, diff_min: int) -> np.ndarray:
    """SOFTMAX int8 over the last axis (gemmlowp fixed point, reference_ops::Softmax)."""
    x = np.asarray(x, np.int8)
    diff = x.astype(np.int64) - x.max(axis=-1, keepdims=True)
    live = diff >= diff_min
    scaled = q.multiply_by_quantized_multiplier_greater_than_one(diff, mult, left_shift)
    e = q.exp_on_negative_values(scaled, _SOFTMAX_DIFF_BITS)                       # Q0.31
    e_acc = q.rescale(e, 0, _SOFTMAX_ACCUM_BITS).astype(np.int64)                  # Q12.19
    total = q.wrap32(np.where(live, e_acc, 0).sum(axis=-1, keepdims=True))
    recip, bits_over_unit = q.get_reciprocal(total, _SOFTMAX_ACCUM_BITS)
    exponent = bits_over_unit + 31 - 8
    out = q.rounding_divide_by_pot(q.srdhm(recip, e), exponent).astype(np.int64) - 128
    return np.where(live, np.clip(out, -128, 127), -128).astype(np.int8)


_LOGISTIC_IN_BITS = 4       # the input is Q4.27


def logistic_params(in_scale, in_zp: int) -> dict:
    """LOGISTIC's Prepare (int8): frexp of in_scale * 2^27 (no QuantizeMultiplier corrections) and
    the input radius beyond which the output saturates."""
    real = _f64(in_scale) * float(1 << (31 - _LOGISTIC_IN_BITS))
    frac, left_shift = math.frexp(real)
    if left_shift < 0:
        raise Int8Error(f"logistic: input scale {in_scale} is below 2^-28 (TFLM's radius is undefined there)")
    mult = int(math.copysign(math.floor(abs(frac) * (1 << 31) + 0.5), frac))
    radius = q.calculate_input_radius(_LOGISTIC_IN_BITS, left_shift, 31)
    return dict(in_zp=int(in_zp), mult=mult, left_shift=left_shift, radius=radius)


def logistic(x, *, in_zp: int, mult: int, left_shift: int, radius: int) -> np.ndarray:
    """LOGISTIC int8 (reference_integer_ops::Logistic): output scale 1/256, zero point -128."""
    v = np.asarray(x, np.int8).astype(np.int64) - in_zp
    x_q4 = q.multiply_by_quantized_multiplier(v, mult, left_shift)
    y = q.rounding_divide_by_pot(q.logistic_fixed(x_q4, _LOGISTIC_IN_BITS), 31 - 8).astype(np.int64) - 128
    y = np.clip(y, -128, 127)
    y = np.where(v <= -radius, -128, np.where(v >= radius, 127, y))
    return y.astype(np.int8)


# ---------------------------------------------------------------- mean
def mean_params(in_scale, in_zp: int, out_scale, out_zp: int) -> dict:
    """MEAN's Prepare (int8): QuantizeMultiplier((double)in_scale / (double)out_scale)."""
    mult, shift = q.quantize_multiplier(_f64(in_scale) / _f64(out_scale))
    return dict(in_zp=int(in_zp), out_zp=int(out_zp), mult=mult, shift=shift)


def mean(x, axes=(1, 2), keepdims: bool = True, *, in_zp: int, out_zp: int, mult: int, shift: int) -> np.ndarray:
    """MEAN int8 (QuantizedMeanOrSum; TFLM takes this one path for every axis set and for equal or
    different quantization): the int32 sum of raw values, minus in_zp * n, times the multiplier
    folded with 1/n: shift' = min(floor(log2 n), 32, 31 + shift), M' = (M << shift') / n."""
    x = np.asarray(x, np.int8)
    axes = tuple(sorted({a % x.ndim for a in np.atleast_1d(axes).tolist()}))
    n = int(np.prod([x.shape[a] for a in axes]))
    total = q.wrap32(x.astype(np.int64).sum(axis=axes, keepdims=keepdims))
    s = min(n.bit_length() - 1, 32, 31 + int(shift))
    m2 = (int(mult) << s) // n                          # non-negative: C and Python division agree
    v = q.wrap32(total - int(in_zp) * n)
    y = q.multiply_by_quantized_multiplier(v, m2, int(shift) - s).astype(np.int64) + out_zp
    return np.clip(y, -128, 127).astype(np.int8)


# ---------------------------------------------------------------- data movement, (de)quantize
def pad(x, pads, pad_value: int) -> np.ndarray:
    """PAD / PADV2 int8: pads [[before, after], ...] per axis; the fill is the output zero point
    (PAD) or the constant_values tensor (PADV2). Values are copied, never requantized."""
    return np.pad(np.asarray(x, np.int8), np.asarray(pads, np.int64), constant_values=np.int8(pad_value))


def concatenation(xs, axis: int = -1) -> np.ndarray:
    """CONCATENATION int8: TFLM requires every input to share the output's scale and zero point
    and no fused activation, so this is a plain copy."""
    return np.concatenate([np.asarray(a, np.int8) for a in xs], axis=axis)


def quantize_op(x, scale, zero_point: int) -> np.ndarray:
    """QUANTIZE float32 -> int8."""
    return q.quantize(x, _F32(scale), zero_point)


def dequantize_op(x, scale, zero_point: int) -> np.ndarray:
    """DEQUANTIZE int8 -> float32."""
    return q.dequantize(x, _F32(scale), zero_point)


def requantize_params(in_scale, in_zp: int, out_scale, out_zp: int) -> dict:
    """QUANTIZE int8 -> int8's Prepare: QuantizeMultiplier((double)in_scale / (double)out_scale)."""
    mult, shift = q.quantize_multiplier(_f64(in_scale) / _f64(out_scale))
    return dict(in_zp=int(in_zp), out_zp=int(out_zp), mult=mult, shift=shift)


def requantize_op(x, *, in_zp: int, out_zp: int, mult: int, shift: int) -> np.ndarray:
    """QUANTIZE int8 -> int8 (reference_ops::Requantize): MBQM(x - in_zp) + out_zp, clamped."""
    v = np.asarray(x, np.int8).astype(np.int64) - in_zp
    return q.requantize(v, mult, shift, out_zp, -128, 127)
